//! The database schema, its migrations, and the migration of persisted function records.
//!
//! The schema version is SQLite's `PRAGMA user_version`: migration `i` of [`MIGRATIONS`]
//! takes the database from version `i` to `i + 1`, inside one transaction together with the
//! version bump, so a crash mid-migration leaves the previous version intact. A database
//! written by a newer build is refused rather than guessed at.
//!
//! Function records are stored as the JSON of [`FunctionRecord`], which carries its own
//! `schema_version`; [`decode_record`] upgrades older layouts when they are read. APIs and
//! function URLs are stored the same way ([`ApiDefinition`], [`FunctionUrlConfig`], both at
//! [`API_SCHEMA_VERSION`]) and read through [`decode_document`].

use gust_model::api::API_SCHEMA_VERSION;
use gust_model::{ApiDefinition, FunctionRecord, FunctionUrlConfig, FUNCTION_SCHEMA_VERSION};
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Result, StoreError};

/// Each entry upgrades the schema by one version. Append only; never edit a shipped entry.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: functions, the event queue and logs.
    "
    CREATE TABLE functions (
        name   TEXT PRIMARY KEY NOT NULL,
        record TEXT NOT NULL
    );
    CREATE TABLE events (
        id             TEXT PRIMARY KEY NOT NULL,
        function       TEXT NOT NULL,
        payload        BLOB NOT NULL,
        attempts       INTEGER NOT NULL,
        not_before_ms  INTEGER NOT NULL,
        enqueued_ms    INTEGER NOT NULL,
        lease_until_ms INTEGER NOT NULL DEFAULT 0
    );
    -- `due` walks this in order and stops at its limit, instead of sorting the backlog.
    CREATE INDEX events_order ON events (enqueued_ms);
    CREATE INDEX events_function ON events (function);
    CREATE TABLE logs (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_ms      INTEGER NOT NULL,
        function   TEXT NOT NULL,
        request_id TEXT NOT NULL,
        stream     TEXT NOT NULL,
        message    TEXT NOT NULL
    );
    CREATE INDEX logs_function_seq ON logs (function, seq);
    CREATE INDEX logs_ts ON logs (ts_ms);
    ",
    // 1 -> 2: ordered key-value spaces (see `kv`), and their counters.
    "
    CREATE TABLE kv (
        space      INTEGER NOT NULL,
        p          BLOB NOT NULL,
        s          BLOB NOT NULL,
        u          BLOB NOT NULL,
        value      BLOB NOT NULL,
        weight     INTEGER NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (space, p, s, u)
    ) WITHOUT ROWID;
    CREATE INDEX kv_expiry ON kv (space, expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE kv_counters (
        name  TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
    );
    ",
    // 2 -> 3: HTTP APIs and function URLs (JSON documents with their own schema_version).
    "
    CREATE TABLE apis (
        name   TEXT PRIMARY KEY NOT NULL,
        record TEXT NOT NULL
    );
    CREATE TABLE function_urls (
        function TEXT PRIMARY KEY NOT NULL,
        url_id   TEXT NOT NULL UNIQUE,
        record   TEXT NOT NULL
    );
    ",
    // 3 -> 4: resource-based policies of functions (Lambda's AddPermission), opaque JSON.
    "
    CREATE TABLE function_policies (
        function TEXT PRIMARY KEY NOT NULL,
        policy   TEXT NOT NULL
    );
    ",
    // 4 -> 5: cheaper log lines. Function names are interned in `log_functions` (the writer
    // caches the ids) with their number of lines (kept exact in the transactions that add or
    // delete lines, so count retention needs no count), `stream` is 0 = stdout, 1 = stderr,
    // 2 = platform, and the `ts_ms` index is gone: age retention walks each function's lines
    // in seq order (see `writer::prune_logs`). Lines keep their seqs, and `sqlite_sequence` keeps the highest
    // seq ever handed out (possibly above every remaining line, after `delete_logs`), so no
    // seq is ever used twice. `DROP TABLE` removes the old table's `sqlite_sequence` row and
    // `RENAME` renames the new one's.
    "
    CREATE TABLE log_functions (
        id    INTEGER PRIMARY KEY,
        name  TEXT NOT NULL UNIQUE,
        lines INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO log_functions (name, lines)
        SELECT function, COUNT(*) FROM logs GROUP BY function ORDER BY function;
    CREATE TABLE logs_v5 (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_ms      INTEGER NOT NULL,
        fid        INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        stream     INTEGER NOT NULL,
        message    TEXT NOT NULL
    );
    INSERT INTO logs_v5 (seq, ts_ms, fid, request_id, stream, message)
        SELECT l.seq, l.ts_ms, f.id, l.request_id,
               CASE l.stream WHEN 'stdout' THEN 0 WHEN 'stderr' THEN 1 ELSE 2 END, l.message
        FROM logs l JOIN log_functions f ON f.name = l.function
        ORDER BY l.seq;
    DELETE FROM sqlite_sequence WHERE name = 'logs_v5';
    INSERT INTO sqlite_sequence (name, seq)
        SELECT 'logs_v5', seq FROM sqlite_sequence WHERE name = 'logs';
    DROP TABLE logs;
    ALTER TABLE logs_v5 RENAME TO logs;
    CREATE INDEX logs_function_seq ON logs (fid, seq);
    ",
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`], one transaction per step.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {current} is newer than this build supports ({SCHEMA_VERSION})"
        )));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
        tx.commit()?;
        tracing::info!(from, to = from + 1, "migrated store schema");
    }
    Ok(())
}

/// Serializes a record for storage.
pub(crate) fn encode_record(record: &FunctionRecord) -> Result<String> {
    serde_json::to_string(record)
        .map_err(|e| StoreError::Corrupt(format!("encoding function record: {e}")))
}

/// Parses a stored record, upgrading older layouts to the current one.
pub(crate) fn decode_record(name: &str, json: &str) -> Result<FunctionRecord> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("function {name}: {e}")))?;
    let version = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if version > u64::from(FUNCTION_SCHEMA_VERSION) {
        return Err(StoreError::Corrupt(format!(
            "function {name}: record schema version {version} is newer than this build supports ({FUNCTION_SCHEMA_VERSION})"
        )));
    }
    // Version 1 is the first persisted layout; upgrades of later versions go here, each
    // rewriting `value` from version n to n + 1.
    let mut record: FunctionRecord = serde_json::from_value(value)
        .map_err(|e| StoreError::Corrupt(format!("function {name}: {e}")))?;
    record.schema_version = FUNCTION_SCHEMA_VERSION;
    Ok(record)
}

/// Serializes an API or function URL document for storage.
pub(crate) fn encode_document(what: &str, doc: &impl Serialize) -> Result<String> {
    serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(format!("encoding {what}: {e}")))
}

/// A persisted API or function URL document: what it is called in errors, and how to stamp
/// the current schema version on it once read.
pub(crate) trait Document: DeserializeOwned {
    const KIND: &'static str;
    fn set_schema_version(&mut self, v: u32);
}

impl Document for ApiDefinition {
    const KIND: &'static str = "API";
    fn set_schema_version(&mut self, v: u32) {
        self.schema_version = v;
    }
}

impl Document for FunctionUrlConfig {
    const KIND: &'static str = "function URL of";
    fn set_schema_version(&mut self, v: u32) {
        self.schema_version = v;
    }
}

/// Parses a stored API or function URL, refusing layouts newer than this build.
pub(crate) fn decode_document<T: Document>(key: &str, json: &str) -> Result<T> {
    let corrupt =
        |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{} {key}: {e}", T::KIND));
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| corrupt(&e))?;
    let version = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if version > u64::from(API_SCHEMA_VERSION) {
        return Err(corrupt(&format!(
            "record schema version {version} is newer than this build supports ({API_SCHEMA_VERSION})"
        )));
    }
    // Version 1 is the first persisted layout; later upgrades rewrite `value` here.
    let mut doc: T = serde_json::from_value(value).map_err(|e| corrupt(&e))?;
    doc.set_schema_version(API_SCHEMA_VERSION);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_from_empty_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn).expect("first");
        migrate(&mut conn).expect("second");
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn refuses_newer_database() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("set");
        assert!(matches!(migrate(&mut conn), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn refuses_newer_documents() {
        let json = format!(
            r#"{{"schema_version": {}, "name": "a"}}"#,
            API_SCHEMA_VERSION + 1
        );
        assert!(matches!(
            decode_document::<ApiDefinition>("a", &json),
            Err(StoreError::Corrupt(_))
        ));
        let api: ApiDefinition = decode_document("a", r#"{"name":"a"}"#).expect("old layout");
        assert_eq!(api.schema_version, API_SCHEMA_VERSION);
    }

    #[test]
    fn refuses_newer_record() {
        let json = format!(r#"{{"schema_version": {}}}"#, FUNCTION_SCHEMA_VERSION + 1);
        assert!(matches!(
            decode_record("f", &json),
            Err(StoreError::Corrupt(_))
        ));
    }
}
