//! Function logs in `SqliteStore`: the schema-5 migration of existing lines, seqs that are
//! never reused, retention by count and age, and log-only (unsynced) commits next to durable
//! data writes, across reopening and `kill -9`.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::record;
use gust_model::{LogEntry, LogStream};
use gust_store::{FunctionStore, LogStore, SqliteStore, StoreOptions};
use rusqlite::Connection;

fn line(function: &str, ts_ms: i64, stream: LogStream, message: &str) -> LogEntry {
    LogEntry {
        ts_ms,
        function: function.into(),
        request_id: format!("req-{message}"),
        stream,
        message: message.into(),
    }
}

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, StoreOptions::default()).expect("open store")
}

/// The stored line count of every function (which count retention relies on) is its number
/// of lines; returns how many functions there are. Reads the database beside the open store.
fn assert_line_counts(dir: &Path) -> usize {
    let conn = Connection::open_with_flags(
        dir.join("gust.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open db");
    let rows: Vec<(String, i64, i64)> = conn
        .prepare(
            "SELECT f.name, f.lines, (SELECT COUNT(*) FROM logs WHERE fid = f.id) \
             FROM log_functions f",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    for (name, stored, counted) in &rows {
        assert_eq!(stored, counted, "line count of {name}");
    }
    rows.len()
}

fn messages(lines: &[gust_model::StoredLogEntry]) -> Vec<&str> {
    lines.iter().map(|l| l.entry.message.as_str()).collect()
}

/// The schema as version 4 shipped it (migrations 0 -> 4, verbatim).
const SCHEMA_V4: &str = "
    CREATE TABLE functions (name TEXT PRIMARY KEY NOT NULL, record TEXT NOT NULL);
    CREATE TABLE events (
        id TEXT PRIMARY KEY NOT NULL, function TEXT NOT NULL, payload BLOB NOT NULL,
        attempts INTEGER NOT NULL, not_before_ms INTEGER NOT NULL, enqueued_ms INTEGER NOT NULL,
        lease_until_ms INTEGER NOT NULL DEFAULT 0
    );
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
    CREATE TABLE kv (
        space INTEGER NOT NULL, p BLOB NOT NULL, s BLOB NOT NULL, u BLOB NOT NULL,
        value BLOB NOT NULL, weight INTEGER NOT NULL, expires_at INTEGER,
        PRIMARY KEY (space, p, s, u)
    ) WITHOUT ROWID;
    CREATE INDEX kv_expiry ON kv (space, expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE kv_counters (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
    CREATE TABLE apis (name TEXT PRIMARY KEY NOT NULL, record TEXT NOT NULL);
    CREATE TABLE function_urls (
        function TEXT PRIMARY KEY NOT NULL, url_id TEXT NOT NULL UNIQUE, record TEXT NOT NULL
    );
    CREATE TABLE function_policies (function TEXT PRIMARY KEY NOT NULL, policy TEXT NOT NULL);
    PRAGMA user_version = 4;
";

#[tokio::test]
async fn a_version_4_database_keeps_its_lines_and_seqs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let now = gust_model::now_ms();
    {
        let conn = Connection::open(tmp.path().join("gust.db")).expect("create v4");
        conn.execute_batch("PRAGMA journal_mode = WAL;")
            .expect("wal");
        conn.execute_batch(SCHEMA_V4).expect("v4 schema");
        let mut insert = conn
            .prepare(
                "INSERT INTO logs (ts_ms, function, request_id, stream, message) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .expect("prepare");
        for (f, stream, msg) in [
            ("f", "platform", "f-start"),
            ("g", "stdout", "g-out"),
            ("f", "stdout", "f-out"),
            ("f", "stderr", "f-err"),
            ("g", "platform", "g-end"),
            ("h", "stdout", "h-gone"),
        ] {
            insert
                .execute(rusqlite::params![now, f, format!("req-{msg}"), stream, msg])
                .expect("insert");
        }
        // The newest line (seq 6) is gone, as after `delete_logs`: seq 6 must stay used.
        conn.execute("DELETE FROM logs WHERE function = 'h'", [])
            .expect("delete h");
    }

    let store = open(tmp.path());
    let f = store.read_logs("f", 0, 100).await.expect("f");
    assert_eq!(
        f.iter().map(|l| l.seq).collect::<Vec<_>>(),
        [1, 3, 4],
        "seqs kept"
    );
    assert_eq!(
        f.iter().map(|l| l.entry.clone()).collect::<Vec<_>>(),
        [
            line("f", now, LogStream::Platform, "f-start"),
            line("f", now, LogStream::Stdout, "f-out"),
            line("f", now, LogStream::Stderr, "f-err"),
        ]
    );
    let g = store.tail_logs("g", 10).await.expect("g");
    assert_eq!(g.iter().map(|l| l.seq).collect::<Vec<_>>(), [2, 5]);
    assert_eq!(messages(&g), ["g-out", "g-end"]);
    assert_eq!(g[1].entry.stream, LogStream::Platform);
    assert!(store.read_logs("h", 0, 10).await.expect("h").is_empty());

    store
        .append_logs(vec![
            line("h", now, LogStream::Stdout, "h-new"),
            line("f", now, LogStream::Stdout, "f-new"),
        ])
        .await
        .expect("append");
    let h = store.read_logs("h", 0, 10).await.expect("h");
    assert_eq!(h.iter().map(|l| l.seq).collect::<Vec<_>>(), [7]);
    let f = store.read_logs("f", 4, 10).await.expect("f after 4");
    assert_eq!(f.iter().map(|l| l.seq).collect::<Vec<_>>(), [8]);
    assert_eq!(assert_line_counts(tmp.path()), 3);
    store.close();

    let conn = Connection::open(tmp.path().join("gust.db")).expect("reopen");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, 5);
    let old_index: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('logs_ts', 'logs_v5')",
            [],
            |r| r.get(0),
        )
        .expect("schema");
    assert_eq!(
        old_index, 0,
        "the ts index and the temporary table are gone"
    );
}

#[tokio::test]
async fn seqs_are_never_reused_after_delete_and_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let now = gust_model::now_ms();
    let store = open(tmp.path());
    store
        .append_logs(vec![line("g", now, LogStream::Stdout, "g0")])
        .await
        .expect("g");
    store
        .append_logs(
            (0..5)
                .map(|i| line("f", now, LogStream::Stdout, &format!("f{i}")))
                .collect(),
        )
        .await
        .expect("f");
    let last = store.tail_logs("f", 1).await.expect("tail")[0].seq;
    // The newest lines of the whole store go, then the store restarts.
    store.delete_logs("f").await.expect("delete");
    assert!(store.read_logs("f", 0, 10).await.expect("f").is_empty());
    store.close();
    drop(store);

    let store = open(tmp.path());
    store
        .append_logs(vec![
            line("f", now, LogStream::Stdout, "again"),
            line("g", now, LogStream::Stdout, "g1"),
        ])
        .await
        .expect("after restart");
    let f = store.read_logs("f", last, 10).await.expect("follow f");
    assert_eq!(
        messages(&f),
        ["again"],
        "a follower after {last} sees the new line"
    );
    assert!(f[0].seq > last);
    let g = store.read_logs("g", 0, 10).await.expect("g");
    assert_eq!(messages(&g), ["g0", "g1"]);
    assert!(g[1].seq > f[0].seq);

    // And again without a restart: delete, append in one go.
    store.delete_logs("f").await.expect("delete again");
    store
        .append_logs(vec![line("f", now, LogStream::Stdout, "third")])
        .await
        .expect("third");
    let f2 = store.read_logs("f", 0, 10).await.expect("f");
    assert_eq!(messages(&f2), ["third"]);
    assert!(f2[0].seq > g[1].seq);
    assert_eq!(assert_line_counts(tmp.path()), 2);
}

#[tokio::test]
async fn retention_by_age_walks_each_function_in_seq_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = StoreOptions {
        log_retention_lines: 1_000,
        log_retention_ms: 60_000,
    };
    let store = SqliteStore::open(tmp.path(), opts).expect("open");
    let now = gust_model::now_ms();
    let old = now - 120_000;
    store
        .append_logs(vec![
            line("a", old, LogStream::Stdout, "a-old1"),
            line("b", now, LogStream::Stdout, "b-new"),
            line("a", old, LogStream::Stdout, "a-old2"),
            line("c", old, LogStream::Stdout, "c-old"),
            line("a", now, LogStream::Stdout, "a-new"),
            // Out of time order within `a`: kept until the line before it ages out too.
            line("a", old, LogStream::Stdout, "a-late"),
        ])
        .await
        .expect("append");
    let deleted = store.prune_logs().await.expect("prune");
    assert_eq!(deleted, 3);
    assert_eq!(
        messages(&store.read_logs("a", 0, 10).await.expect("a")),
        ["a-new", "a-late"]
    );
    assert_eq!(
        messages(&store.read_logs("b", 0, 10).await.expect("b")),
        ["b-new"]
    );
    assert!(store.read_logs("c", 0, 10).await.expect("c").is_empty());
    // A function whose every line aged out can log again.
    store
        .append_logs(vec![line("c", now, LogStream::Stdout, "c-new")])
        .await
        .expect("c again");
    assert_eq!(
        messages(&store.read_logs("c", 0, 10).await.expect("c")),
        ["c-new"]
    );
    assert_eq!(store.prune_logs().await.expect("prune again"), 0);
    assert_eq!(assert_line_counts(tmp.path()), 3);
}

#[tokio::test]
async fn retention_by_count_across_prunes_and_restarts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = StoreOptions {
        log_retention_lines: 4,
        log_retention_ms: 3_600_000,
    };
    let now = gust_model::now_ms();
    let batch = |f: &str, from: usize, to: usize| -> Vec<LogEntry> {
        (from..to)
            .map(|i| line(f, now, LogStream::Stdout, &format!("{f}{i}")))
            .collect()
    };
    let store = SqliteStore::open(tmp.path(), opts.clone()).expect("open");
    // Interleaved functions in one append.
    let mut mixed = batch("f", 0, 6);
    mixed.extend(batch("g", 0, 2));
    mixed.extend(batch("f", 6, 7));
    store.append_logs(mixed).await.expect("mixed");
    assert_eq!(store.prune_logs().await.expect("prune"), 3);
    assert_eq!(
        messages(&store.read_logs("f", 0, 10).await.expect("f")),
        ["f3", "f4", "f5", "f6"]
    );
    assert_eq!(store.read_logs("g", 0, 10).await.expect("g").len(), 2);
    store.append_logs(batch("g", 2, 9)).await.expect("g more");
    assert_eq!(store.prune_logs().await.expect("prune g"), 5);
    store.close();
    drop(store);

    // After a restart.
    let store = SqliteStore::open(tmp.path(), opts).expect("reopen");
    store.append_logs(batch("f", 7, 9)).await.expect("f more");
    assert_eq!(store.prune_logs().await.expect("prune after restart"), 2);
    assert_eq!(
        messages(&store.read_logs("f", 0, 10).await.expect("f")),
        ["f5", "f6", "f7", "f8"]
    );
    assert_eq!(
        messages(&store.read_logs("g", 0, 10).await.expect("g")),
        ["g5", "g6", "g7", "g8"]
    );
    assert_eq!(assert_line_counts(tmp.path()), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_prunes_on_its_own_after_many_lines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = StoreOptions {
        log_retention_lines: 1_000,
        log_retention_ms: 3_600_000,
    };
    let store = SqliteStore::open(tmp.path(), opts).expect("open");
    let now = gust_model::now_ms();
    for chunk in 0..10 {
        store
            .append_logs(
                (0..1_000)
                    .map(|i| {
                        line(
                            "f",
                            now,
                            LogStream::Stdout,
                            &format!("{}", chunk * 1_000 + i),
                        )
                    })
                    .collect(),
            )
            .await
            .expect("append");
    }
    // The pass runs after the 10,000th line's batch was answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = store.read_logs("f", 0, 20_000).await.expect("read").len();
        if n == 1_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {n} lines: no automatic prune"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tail = store.tail_logs("f", 1).await.expect("tail");
    assert_eq!(messages(&tail), ["9999"]);
    assert_eq!(assert_line_counts(tmp.path()), 1);
}

/// A log-only commit (not synced) followed by a durable data write: both are there when a
/// copy of the files taken while the store is still open (no clean close) is opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_only_commits_then_data_survive_reopening() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let store = open(&data);
    let now = gust_model::now_ms();
    store
        .append_logs(vec![line("f", now, LogStream::Stdout, "before")])
        .await
        .expect("logs");
    store.put_function(&record("f")).await.expect("data");
    store
        .append_logs(vec![line("f", now, LogStream::Stdout, "after")])
        .await
        .expect("logs after");

    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for file in ["gust.db", "gust.db-wal"] {
        if data.join(file).exists() {
            std::fs::copy(data.join(file), copy.join(file)).expect("copy");
        }
    }
    let copied = open(&copy);
    assert!(copied.get_function("f").await.expect("get").is_some());
    assert_eq!(
        messages(&copied.read_logs("f", 0, 10).await.expect("logs")),
        ["before", "after"]
    );
    copied.close();

    // And through a clean close and reopen.
    store.close();
    drop(store);
    let store = open(&data);
    assert!(store.get_function("f").await.expect("get").is_some());
    assert_eq!(
        messages(&store.read_logs("f", 0, 10).await.expect("logs")),
        ["before", "after"]
    );
}

const CHILD_ENV: &str = "GUST_STORE_LOG_DURABILITY_CHILD_DIR";

/// The child half of `acknowledged_logs_and_data_survive_kill_9`: appends log lines and
/// writes function records concurrently until killed, printing `log <n>` / `fn <n>` once
/// each has returned. Does nothing when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_durability_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Arc::new(open(Path::new(&dir)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for worker in 0..4u64 {
        let store = store.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let n = worker * 1_000_000 + i;
                let (kind, result) = if worker == 0 {
                    ("fn", store.put_function(&record(&format!("fn-{n}"))).await)
                } else {
                    let lines = (0..4)
                        .map(|k| line("f", 0, LogStream::Stdout, &format!("{n}-{k}")))
                        .collect();
                    ("log", store.append_logs(lines).await)
                };
                if result.is_err() || tx.send(format!("{kind} {n}")).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut out = std::io::stdout().lock();
    while let Some(msg) = rx.recv().await {
        let _ = writeln!(out, "{msg}");
        let _ = out.flush();
    }
}

/// A process crash loses no acknowledged write, whether synced (data) or not (logs): the
/// unsynced commits are in the kernel's page cache.
#[test]
fn acknowledged_logs_and_data_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let acked = common::acks_until_kill_9(
        "log_durability_child_writer",
        CHILD_ENV,
        tmp.path(),
        2_000,
        |line| {
            let (kind, n) = line.split_once(' ')?;
            Some((kind.to_string(), n.parse::<u64>().ok()?))
        },
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = open(tmp.path());
        let logged: std::collections::HashSet<String> = store
            .read_logs("f", 0, usize::MAX)
            .await
            .expect("logs")
            .into_iter()
            .map(|l| l.entry.message)
            .collect();
        let mut data = 0;
        for (kind, n) in &acked {
            if kind == "fn" {
                data += 1;
                assert!(
                    store
                        .get_function(&format!("fn-{n}"))
                        .await
                        .expect("get")
                        .is_some(),
                    "acknowledged function {n} lost"
                );
            } else {
                for k in 0..4 {
                    assert!(
                        logged.contains(&format!("{n}-{k}")),
                        "acknowledged log line {n}-{k} lost"
                    );
                }
            }
        }
        assert!(data > 0, "no data write acknowledged");
    });
}
