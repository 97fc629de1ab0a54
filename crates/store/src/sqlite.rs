//! The embedded SQLite implementation of the storage traits, with group commit.
//!
//! [`SqliteStore`] is a cheap handle (an `Arc`) over one data directory: `gust.db` (WAL,
//! `synchronous=FULL` except for batches of log lines only, see [`crate::writer`]), `code/`
//! (packages, see [`crate::code`]) and `gust.lock`, an advisory lock that keeps a second
//! process from opening the same directory.
//! Writes go to the writer thread ([`crate::writer`]) and are acknowledged only after their
//! group's commit; reads use a small pool of read-only connections on tokio's blocking pool,
//! so no method blocks the async runtime.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use gust_model::{
    ApiDefinition, FunctionRecord, FunctionUrlConfig, LogEntry, LogStream, QueuedEvent,
    StoredLogEntry,
};
use rusqlite::{params, Connection, OptionalExtension};

use crate::readers::Readers;
use crate::reply::{Closed, InFlight};
use crate::schema::{decode_document, decode_record, encode_document, encode_record};
use crate::writer::{self, Counters, Msg, WriterState};
use crate::{
    code, ApiStore, CodeStore, EventQueue, FunctionStore, LogStore, PolicyStore, Result,
    StoreError, StoreOptions,
};

/// How long a connection waits on a lock held by another connection (checkpoints, a second
/// process) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Write activity since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Transactions committed by the writer (each one fsync of the WAL, unless it held log
    /// lines only).
    pub commits: u64,
    /// Write operations acknowledged by those commits.
    pub ops: u64,
}

/// The embedded store. Clones share one writer thread and one reader pool; the writer stops
/// when [`SqliteStore::close`] is called or the last clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("data_dir", &self.inner.data_dir)
            .finish_non_exhaustive()
    }
}

struct Inner {
    data_dir: PathBuf,
    code_root: PathBuf,
    opts: StoreOptions,
    sender: RwLock<Option<Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<Readers>,
    counters: Arc<Counters>,
    /// Writes waiting for the writer (see [`crate::reply`]).
    in_flight: Arc<InFlight>,
    /// [`ApiStore::config_generation`]: advanced after every committed (or failed) write of an
    /// API, a function URL or a function record. Starts at 1, so 0 can mean "never seen".
    config_generation: AtomicU64,
    /// Held for the life of the store; the lock is released when the file is closed.
    _lock: File,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Inner {
    fn shutdown(&self) {
        // Readers first, so the writer's connection is the last one and checkpoints the WAL.
        self.readers.clear();
        let sender = match self.sender.write() {
            Ok(mut s) => s.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        // Dropping the only sender lets the writer drain what is queued, then stop.
        drop(sender);
        let handle = match self.thread.lock() {
            Ok(mut t) => t.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`: `gust.db`, `code/` and the lock.
    /// Fails if another process has the directory open.
    pub fn open(data_dir: &Path, opts: StoreOptions) -> Result<SqliteStore> {
        fs::create_dir_all(data_dir)?;
        let code_root = data_dir.join("code");
        fs::create_dir_all(&code_root)?;

        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join("gust.lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Io(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "data directory {} is in use by another gust process",
                        data_dir.display()
                    ),
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        code::clean_temporaries(&code_root);

        let db_path = data_dir.join("gust.db");
        let mut conn = Connection::open(&db_path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "cannot switch {} to WAL (got {mode})",
                db_path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", false)?;
        // Truncate the WAL after checkpoints instead of letting a burst leave it large forever.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        crate::schema::migrate(&mut conn)?;
        // The lock file makes this process the only user of the data dir, so any lease still
        // recorded belongs to a process that died: its events are due again right away instead
        // of after the lease (up to 16 minutes) runs out.
        let released = conn.execute(
            "UPDATE events SET lease_until_ms = 0 WHERE lease_until_ms > 0",
            [],
        )?;
        if released > 0 {
            tracing::info!(released, "re-queued events leased by a previous run");
        }

        let counters = Arc::new(Counters::default());
        let readers = Arc::new(Readers::new(db_path, BUSY_TIMEOUT));
        let (tx, rx) = mpsc::channel();
        let thread = {
            let counters = counters.clone();
            let readers = readers.clone();
            let opts = opts.clone();
            std::thread::Builder::new()
                .name("gust-store-writer".into())
                .spawn(move || writer::run(conn, rx, counters, readers, opts))?
        };
        tracing::debug!(data_dir = %data_dir.display(), "store opened");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                code_root,
                opts,
                sender: RwLock::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                readers,
                counters,
                in_flight: Arc::default(),
                config_generation: AtomicU64::new(1),
                _lock: lock,
            }),
        })
    }

    /// Stops accepting writes, waits for queued ones to commit and stops the writer thread.
    /// Later calls on any clone fail with [`StoreError::Closed`]. Idempotent. Blocks for at
    /// most one batch; call it from a blocking context or at shutdown.
    pub fn close(&self) {
        self.inner.shutdown();
    }

    /// The data directory this store lives in.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.opts
    }

    /// Commits and acknowledged write operations so far (group commit makes `commits` much
    /// smaller than `ops` under concurrency).
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            commits: self.inner.counters.commits.load(Ordering::Relaxed),
            ops: self.inner.counters.ops.load(Ordering::Relaxed),
        }
    }

    /// Runs log retention over every function now, after the writes already queued (the
    /// writer otherwise does it every 30 s or 10,000 appended lines); returns the number of
    /// deleted lines.
    pub async fn prune_logs(&self) -> Result<u64> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let sender = self.inner.sender.read().map_err(|_| StoreError::Closed)?;
            let sender = sender.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(Msg::Prune(tx))
                .map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Sends a write to the writer thread and waits for its group's (synced) commit.
    async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
    {
        self.write_job(op, true).await
    }

    /// Sends a write to the writer thread and waits for its group's commit, which is synced
    /// only if `durable` or another op of the group is (see [`crate::writer`]).
    async fn write_job<T, F>(&self, op: F, durable: bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let sender = self.inner.sender.read().map_err(|_| StoreError::Closed)?;
            let sender = sender.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(Msg::Job(writer::job(op, tx, durable)))
                .map_err(|_| StoreError::Closed)?;
        }
        if durable {
            self.wait_reply(rx).await.map_err(|_| StoreError::Closed)?
        } else {
            // Nobody waits on a log line's latency: no reason to keep a worker busy.
            rx.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// A write of routing configuration (function, API or URL): the generation moves once the
    /// write is settled, so whoever sees the new generation also sees the write.
    async fn config_write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
    {
        let result = self.write(op).await;
        self.inner.config_generation.fetch_add(1, Ordering::AcqRel);
        result
    }

    /// Waits for the writer's reply to a submitted durable job (see [`crate::reply`]).
    pub(crate) async fn wait_reply<T>(
        &self,
        rx: tokio::sync::oneshot::Receiver<T>,
    ) -> std::result::Result<T, Closed> {
        self.inner.in_flight.wait(rx).await
    }

    /// Queues a job for the writer thread.
    pub(crate) fn submit(&self, job: writer::Job) -> Result<()> {
        let sender = self.inner.sender.read().map_err(|_| StoreError::Closed)?;
        let sender = sender.as_ref().ok_or(StoreError::Closed)?;
        sender.send(Msg::Job(job)).map_err(|_| StoreError::Closed)
    }

    /// Runs a read on a pooled read-only connection on the calling thread.
    pub(crate) fn read_now<T, F>(&self, op: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        self.inner.readers.read(op)
    }

    /// Runs a read on a pooled read-only connection on the blocking pool.
    pub(crate) async fn read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.readers.read(op))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(format!("read task failed: {e}"))))?
    }
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl FunctionStore for SqliteStore {
    async fn put_function(&self, record: &FunctionRecord) -> Result<()> {
        let name = record.config.name.clone();
        let json = encode_record(record)?;
        self.config_write(move |conn, _| {
            conn.prepare_cached("INSERT OR REPLACE INTO functions (name, record) VALUES (?1, ?2)")?
                .execute(params![name, json])?;
            Ok(())
        })
        .await
    }

    async fn create_function(&self, record: &FunctionRecord) -> Result<bool> {
        let name = record.config.name.clone();
        let json = encode_record(record)?;
        self.config_write(move |conn, _| {
            let n = conn
                .prepare_cached("INSERT OR IGNORE INTO functions (name, record) VALUES (?1, ?2)")?
                .execute(params![name, json])?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>> {
        let name = name.to_string();
        self.read(move |conn| {
            let json: Option<String> = conn
                .prepare_cached("SELECT record FROM functions WHERE name = ?1")?
                .query_row([&name], |r| r.get(0))
                .optional()?;
            json.map(|j| decode_record(&name, &j)).transpose()
        })
        .await
    }

    async fn list_functions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FunctionRecord>> {
        // Names are never empty, so "after the empty string" is "from the start".
        let after = after.unwrap_or("").to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT name, record FROM functions WHERE name > ?1 ORDER BY name LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, sql_limit(limit)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (name, json) = row?;
                out.push(decode_record(&name, &json)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_function(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.config_write(move |conn, _| {
            let n = conn
                .prepare_cached("DELETE FROM functions WHERE name = ?1")?
                .execute([&name])?;
            // A function URL and a policy die with their function, in the same transaction.
            conn.prepare_cached("DELETE FROM function_urls WHERE function = ?1")?
                .execute([&name])?;
            conn.prepare_cached("DELETE FROM function_policies WHERE function = ?1")?
                .execute([&name])?;
            Ok(n > 0)
        })
        .await
    }
}

#[async_trait]
impl ApiStore for SqliteStore {
    async fn put_api(&self, api: &ApiDefinition) -> Result<()> {
        let name = api.name.clone();
        let json = encode_document("API", api)?;
        self.config_write(move |conn, _| {
            conn.prepare_cached("INSERT OR REPLACE INTO apis (name, record) VALUES (?1, ?2)")?
                .execute(params![name, json])?;
            Ok(())
        })
        .await
    }

    async fn get_api(&self, name: &str) -> Result<Option<ApiDefinition>> {
        let name = name.to_string();
        self.read(move |conn| {
            let json: Option<String> = conn
                .prepare_cached("SELECT record FROM apis WHERE name = ?1")?
                .query_row([&name], |r| r.get(0))
                .optional()?;
            json.map(|j| decode_document(&name, &j)).transpose()
        })
        .await
    }

    async fn list_apis(&self) -> Result<Vec<ApiDefinition>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT name, record FROM apis ORDER BY name")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (name, json) = row?;
                out.push(decode_document(&name, &json)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_api(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.config_write(move |conn, _| {
            let n = conn
                .prepare_cached("DELETE FROM apis WHERE name = ?1")?
                .execute([&name])?;
            Ok(n > 0)
        })
        .await
    }

    async fn put_function_url(&self, url: &FunctionUrlConfig) -> Result<()> {
        let function = url.function.clone();
        let url_id = url.url_id.clone();
        let json = encode_document("function URL", url)?;
        self.config_write(move |conn, _| {
            conn.prepare_cached(
                // Not `OR REPLACE`: a url_id taken by another function must fail, not evict it.
                "INSERT INTO function_urls (function, url_id, record) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (function) DO UPDATE SET url_id = excluded.url_id, record = excluded.record",
            )?
            .execute(params![function, url_id, json])?;
            Ok(())
        })
        .await
    }

    async fn get_function_url(&self, function: &str) -> Result<Option<FunctionUrlConfig>> {
        let function = function.to_string();
        self.read(move |conn| {
            let json: Option<String> = conn
                .prepare_cached("SELECT record FROM function_urls WHERE function = ?1")?
                .query_row([&function], |r| r.get(0))
                .optional()?;
            json.map(|j| decode_document(&function, &j)).transpose()
        })
        .await
    }

    async fn list_function_urls(&self) -> Result<Vec<FunctionUrlConfig>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT function, record FROM function_urls ORDER BY function")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (function, json) = row?;
                out.push(decode_document(&function, &json)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_function_url(&self, function: &str) -> Result<bool> {
        let function = function.to_string();
        self.config_write(move |conn, _| {
            let n = conn
                .prepare_cached("DELETE FROM function_urls WHERE function = ?1")?
                .execute([&function])?;
            Ok(n > 0)
        })
        .await
    }

    fn config_generation(&self) -> u64 {
        self.inner.config_generation.load(Ordering::Acquire)
    }
}

#[async_trait]
impl PolicyStore for SqliteStore {
    async fn put_function_policy(&self, function: &str, policy: &str) -> Result<()> {
        let function = function.to_string();
        let policy = policy.to_string();
        self.config_write(move |conn, _| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO function_policies (function, policy) VALUES (?1, ?2)",
            )?
            .execute(params![function, policy])?;
            Ok(())
        })
        .await
    }

    async fn get_function_policy(&self, function: &str) -> Result<Option<String>> {
        let function = function.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT policy FROM function_policies WHERE function = ?1")?
                .query_row([&function], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn delete_function_policy(&self, function: &str) -> Result<bool> {
        let function = function.to_string();
        self.config_write(move |conn, _| {
            let n = conn
                .prepare_cached("DELETE FROM function_policies WHERE function = ?1")?
                .execute([&function])?;
            Ok(n > 0)
        })
        .await
    }
}

#[async_trait]
impl CodeStore for SqliteStore {
    async fn put_code(&self, zip: &[u8], max_unzipped: u64) -> Result<String> {
        let root = self.inner.code_root.clone();
        let zip = zip.to_vec();
        tokio::task::spawn_blocking(move || code::put_code(&root, &zip, max_unzipped))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(format!("code task failed: {e}"))))?
    }

    fn code_dir(&self, code_id: &str) -> PathBuf {
        self.inner.code_root.join(code_id)
    }

    fn code_zip(&self, code_id: &str) -> PathBuf {
        self.inner.code_root.join(format!("{code_id}.zip"))
    }
}

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueuedEvent> {
    Ok(QueuedEvent {
        id: r.get(0)?,
        function: r.get(1)?,
        payload: r.get(2)?,
        attempts: r.get(3)?,
        not_before_ms: r.get(4)?,
        enqueued_ms: r.get(5)?,
    })
}

#[async_trait]
impl EventQueue for SqliteStore {
    async fn enqueue(&self, event: &QueuedEvent) -> Result<()> {
        let e = event.clone();
        self.write(move |conn, _| {
            conn.prepare_cached(
                "INSERT INTO events (id, function, payload, attempts, not_before_ms, enqueued_ms, lease_until_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
            )?
            .execute(params![e.id, e.function, e.payload, e.attempts, e.not_before_ms, e.enqueued_ms])?;
            Ok(())
        })
        .await
    }

    async fn due(&self, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<QueuedEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.write(move |conn, _| {
            let events: Vec<QueuedEvent> = conn
                .prepare_cached(
                    "SELECT id, function, payload, attempts, not_before_ms, enqueued_ms FROM events \
                     WHERE not_before_ms <= ?1 AND lease_until_ms <= ?1 \
                     ORDER BY enqueued_ms, rowid LIMIT ?2",
                )?
                .query_map(params![now_ms, sql_limit(limit)], event_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            let mut lease = conn.prepare_cached("UPDATE events SET lease_until_ms = ?2 WHERE id = ?1")?;
            let until = now_ms.saturating_add(lease_ms);
            for e in &events {
                lease.execute(params![e.id, until])?;
            }
            Ok(events)
        })
        .await
    }

    async fn complete(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write(move |conn, _| {
            conn.prepare_cached("DELETE FROM events WHERE id = ?1")?
                .execute([&id])?;
            Ok(())
        })
        .await
    }

    async fn retry(&self, id: &str, attempts: u32, not_before_ms: i64) -> Result<()> {
        let id = id.to_string();
        self.write(move |conn, _| {
            conn.prepare_cached(
                "UPDATE events SET attempts = ?2, not_before_ms = ?3, lease_until_ms = 0 WHERE id = ?1",
            )?
            .execute(params![id, attempts, not_before_ms])?;
            Ok(())
        })
        .await
    }

    async fn pending(&self, function: &str) -> Result<usize> {
        let function = function.to_string();
        self.read(move |conn| {
            let n: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM events WHERE function = ?1")?
                .query_row([&function], |r| r.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }
}

/// `logs.stream` as stored (schema version 5).
fn stream_code(s: LogStream) -> i64 {
    match s {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
        LogStream::Platform => 2,
    }
}

/// A row of `SELECT seq, ts_ms, request_id, stream, message` of `function`'s lines.
fn log_from_row(function: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredLogEntry> {
    let stream = match r.get::<_, i64>(3)? {
        0 => LogStream::Stdout,
        1 => LogStream::Stderr,
        2 => LogStream::Platform,
        other => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Integer,
                format!("unknown log stream {other}").into(),
            ))
        }
    };
    Ok(StoredLogEntry {
        seq: r.get(0)?,
        entry: LogEntry {
            ts_ms: r.get(1)?,
            function: function.to_string(),
            request_id: r.get(2)?,
            stream,
            message: r.get(4)?,
        },
    })
}

/// Rows per multi-row `INSERT` of log lines, largest first: an append of `n` lines runs
/// `n / 64` statements of 64 rows and at most three of each smaller size for the rest, each
/// a cached statement (one `sqlite_sequence` update per statement, not per row).
const LOG_INSERT_ROWS: [usize; 4] = [64, 16, 4, 1];

/// The statements for [`LOG_INSERT_ROWS`], built once.
static LOG_INSERT_SQL: OnceLock<[String; 4]> = OnceLock::new();

/// `INSERT INTO logs ... VALUES (...), (...)` with `rows` rows.
fn log_insert_sql(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO logs (ts_ms, fid, request_id, stream, message) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?)");
    }
    sql
}

/// Stores `entries` in order on the writer's connection.
fn insert_logs(conn: &Connection, state: &mut WriterState, entries: &[LogEntry]) -> Result<()> {
    // Function ids, one cache lookup per run of lines of the same function, and the lines
    // each function gets.
    let mut fids = Vec::with_capacity(entries.len());
    let mut counts: Vec<(i64, i64)> = Vec::new();
    let mut last: Option<(&str, i64)> = None;
    for e in entries {
        let fid = match last {
            Some((name, fid)) if name == e.function => fid,
            _ => {
                let fid = state.log_function_id(conn, &e.function)?;
                last = Some((&e.function, fid));
                fid
            }
        };
        match counts.iter_mut().find(|(f, _)| *f == fid) {
            Some((_, n)) => *n += 1,
            None => counts.push((fid, 1)),
        }
        fids.push(fid);
    }
    let mut count =
        conn.prepare_cached("UPDATE log_functions SET lines = lines + ?2 WHERE id = ?1")?;
    for (fid, n) in counts {
        count.execute(params![fid, n])?;
    }
    state.note_logs(entries.len());
    let sql = LOG_INSERT_SQL.get_or_init(|| LOG_INSERT_ROWS.map(log_insert_sql));
    let mut at = 0;
    for (rows, sql) in LOG_INSERT_ROWS.into_iter().zip(sql) {
        if entries.len() - at < rows {
            continue;
        }
        let mut insert = conn.prepare_cached(sql)?;
        while entries.len() - at >= rows {
            let mut param = 1;
            for (e, fid) in entries[at..at + rows].iter().zip(&fids[at..at + rows]) {
                insert.raw_bind_parameter(param, e.ts_ms)?;
                insert.raw_bind_parameter(param + 1, *fid)?;
                insert.raw_bind_parameter(param + 2, e.request_id.as_str())?;
                insert.raw_bind_parameter(param + 3, stream_code(e.stream))?;
                insert.raw_bind_parameter(param + 4, e.message.as_str())?;
                param += 5;
            }
            insert.raw_execute()?;
            at += rows;
        }
    }
    Ok(())
}

#[async_trait]
impl LogStore for SqliteStore {
    async fn append_logs(&self, entries: Vec<LogEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // Not durable on its own: see the writer's module comment.
        self.write_job(move |conn, state| insert_logs(conn, state, &entries), false)
            .await
    }

    async fn read_logs(
        &self,
        function: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredLogEntry>> {
        let function = function.to_string();
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT seq, ts_ms, request_id, stream, message FROM logs \
                     WHERE fid = (SELECT id FROM log_functions WHERE name = ?1) AND seq > ?2 \
                     ORDER BY seq LIMIT ?3",
                )?
                .query_map(params![function, after_seq, sql_limit(limit)], |r| {
                    log_from_row(&function, r)
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    async fn tail_logs(&self, function: &str, limit: usize) -> Result<Vec<StoredLogEntry>> {
        let function = function.to_string();
        self.read(move |conn| {
            let mut rows: Vec<StoredLogEntry> = conn
                .prepare_cached(
                    "SELECT seq, ts_ms, request_id, stream, message FROM logs \
                     WHERE fid = (SELECT id FROM log_functions WHERE name = ?1) \
                     ORDER BY seq DESC LIMIT ?2",
                )?
                .query_map(params![function, sql_limit(limit)], |r| {
                    log_from_row(&function, r)
                })?
                .collect::<rusqlite::Result<_>>()?;
            rows.reverse();
            Ok(rows)
        })
        .await
    }

    async fn delete_logs(&self, function: &str) -> Result<()> {
        let function = function.to_string();
        self.write(move |conn, state| {
            conn.prepare_cached(
                "DELETE FROM logs WHERE fid = (SELECT id FROM log_functions WHERE name = ?1)",
            )?
            .execute([&function])?;
            // The name goes too (a function created again gets a new id); `seq` stays unique
            // through `AUTOINCREMENT`, which never hands out a seq below one it gave before.
            conn.prepare_cached("DELETE FROM log_functions WHERE name = ?1")?
                .execute([&function])?;
            state.forget_log_function(&function);
            Ok(())
        })
        .await
    }
}
