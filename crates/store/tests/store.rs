//! Behaviour of `SqliteStore` through the storage traits: records, queue, logs, packages,
//! group commit and durability across `kill -9`.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use common::record;
use gust_model::{LogEntry, LogStream, QueuedEvent};
use gust_store::{
    CodeStore, EventQueue, FunctionStore, LogStore, SqliteStore, StoreError, StoreOptions,
};
use zip::write::SimpleFileOptions;

fn event(id: &str, function: &str, enqueued_ms: i64) -> QueuedEvent {
    QueuedEvent {
        id: id.into(),
        function: function.into(),
        payload: format!("{{\"id\":\"{id}\"}}").into_bytes(),
        attempts: 0,
        not_before_ms: enqueued_ms,
        enqueued_ms,
    }
}

fn log(function: &str, ts_ms: i64, message: &str) -> LogEntry {
    LogEntry {
        ts_ms,
        function: function.into(),
        request_id: "req".into(),
        stream: LogStream::Stdout,
        message: message.into(),
    }
}

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, StoreOptions::default()).expect("open store")
}

#[tokio::test]
async fn opening_an_empty_directory_is_fast() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let store = open(&tmp.path().join("data"));
    let elapsed = started.elapsed();
    println!("open empty data dir: {elapsed:?}");
    assert!(elapsed.as_millis() < 100, "open took {elapsed:?}");
    assert!(tmp.path().join("data/gust.db").is_file());
    assert!(tmp.path().join("data/code").is_dir());
    store.close();
}

#[tokio::test]
async fn functions_crud_and_pagination() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    assert_eq!(store.get_function("a").await.expect("get"), None);
    for name in ["delta", "alpha", "charlie", "bravo", "echo"] {
        store.put_function(&record(name)).await.expect("put");
    }
    let mut updated = record("bravo");
    updated.config.memory_size = 512;
    store.put_function(&updated).await.expect("replace");
    assert_eq!(
        store.get_function("bravo").await.expect("get"),
        Some(updated)
    );

    let page1: Vec<String> = store
        .list_functions(None, 2)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.config.name)
        .collect();
    assert_eq!(page1, ["alpha", "bravo"]);
    let page2: Vec<String> = store
        .list_functions(Some("bravo"), 2)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.config.name)
        .collect();
    assert_eq!(page2, ["charlie", "delta"]);
    let page3: Vec<String> = store
        .list_functions(Some("delta"), 2)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.config.name)
        .collect();
    assert_eq!(page3, ["echo"]);
    assert!(store
        .list_functions(Some("echo"), 2)
        .await
        .expect("list")
        .is_empty());

    assert!(store.delete_function("charlie").await.expect("delete"));
    assert!(!store
        .delete_function("charlie")
        .await
        .expect("delete again"));
    assert_eq!(
        store.list_functions(None, 100).await.expect("list").len(),
        4
    );

    // Survives a reopen.
    store.close();
    assert!(matches!(
        store.put_function(&record("x")).await,
        Err(StoreError::Closed)
    ));
    drop(store);
    let store = open(tmp.path());
    assert_eq!(
        store.list_functions(None, 100).await.expect("list").len(),
        4
    );
}

#[tokio::test]
async fn create_function_refuses_an_existing_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    assert!(store.create_function(&record("f")).await.expect("create"));
    let mut other = record("f");
    other.revision_id = "r2".into();
    assert!(!store.create_function(&other).await.expect("create again"));
    assert_eq!(
        store
            .get_function("f")
            .await
            .expect("get")
            .map(|r| r.revision_id),
        Some("r1".into())
    );
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    assert!(SqliteStore::open(tmp.path(), StoreOptions::default()).is_err());
    drop(store);
    open(tmp.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_share_commits() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(tmp.path()));
    let before = store.stats();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.enqueue(&event(&format!("e{i}"), "f", i)).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("enqueue");
    }
    let after = store.stats();
    let commits = after.commits - before.commits;
    println!("200 concurrent enqueues took {commits} commits");
    assert_eq!(after.ops - before.ops, 200);
    assert!(
        commits < 100,
        "group commit did not group: {commits} commits"
    );
    assert_eq!(store.pending("f").await.expect("pending"), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_op_does_not_fail_its_batch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(tmp.path()));
    store.enqueue(&event("dup", "f", 0)).await.expect("first");
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = store.clone();
            // Every tenth op re-uses the existing id and must fail alone.
            let id = if i % 10 == 0 {
                "dup".to_string()
            } else {
                format!("e{i}")
            };
            tokio::spawn(async move { store.enqueue(&event(&id, "f", i)).await })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        if t.await.expect("join").is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 10);
    assert_eq!(store.pending("f").await.expect("pending"), 91);
    assert!(store.stats().commits < 101);
}

#[tokio::test]
async fn queue_leases_expire_and_retries_back_off() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    store.enqueue(&event("a", "f", 100)).await.expect("a");
    store.enqueue(&event("b", "f", 200)).await.expect("b");
    store
        .enqueue(&event("later", "g", 5_000))
        .await
        .expect("later");

    // Oldest first, only what is due, and leased.
    let due = store.due(1_000, 500, 10).await.expect("due");
    assert_eq!(
        due.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(due[0], event("a", "f", 100));
    assert!(store.due(1_000, 500, 10).await.expect("leased").is_empty());
    assert!(store
        .due(1_499, 500, 10)
        .await
        .expect("still leased")
        .is_empty());

    // The lease expires (as if the process had died): due again.
    let again = store.due(1_500, 500, 1).await.expect("expired");
    assert_eq!(
        again.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["a"]
    );

    // A retry releases the lease and backs off.
    store.retry("a", 1, 3_000).await.expect("retry");
    let due = store.due(2_000, 5_000, 10).await.expect("due");
    assert_eq!(due.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["b"]);
    let due = store.due(3_000, 500, 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].id.as_str(), due[0].attempts, due[0].not_before_ms),
        ("a", 1, 3_000)
    );

    store.complete("a").await.expect("complete");
    store.complete("a").await.expect("complete is idempotent");
    assert_eq!(store.pending("f").await.expect("pending"), 1);
    assert_eq!(store.pending("g").await.expect("pending"), 1);
    assert!(store.due(0, 500, 0).await.expect("limit 0").is_empty());

    // Attempts survive a reopen; leases of the previous process are released at once.
    let leased = store.due(10_000, 1_000_000, 10).await.expect("lease all");
    assert_eq!(leased.len(), 2);
    drop(store);
    let store = open(tmp.path());
    let due = store.due(10_000, 500, 10).await.expect("due after reopen");
    assert_eq!(
        due.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["b", "later"]
    );
}

#[tokio::test]
async fn logs_read_tail_and_delete() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    let now = gust_model::now_ms();
    store
        .append_logs((0..10).map(|i| log("f", now, &format!("f{i}"))).collect())
        .await
        .expect("append f");
    store
        .append_logs(vec![log("g", now, "g0")])
        .await
        .expect("append g");
    store.append_logs(Vec::new()).await.expect("append nothing");

    let all = store.read_logs("f", 0, 100).await.expect("read");
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all[0].entry, log("f", now, "f0"));

    let page = store.read_logs("f", all[3].seq, 2).await.expect("page");
    assert_eq!(
        page.iter()
            .map(|l| l.entry.message.as_str())
            .collect::<Vec<_>>(),
        ["f4", "f5"]
    );

    let tail = store.tail_logs("f", 3).await.expect("tail");
    assert_eq!(
        tail.iter()
            .map(|l| l.entry.message.as_str())
            .collect::<Vec<_>>(),
        ["f7", "f8", "f9"]
    );

    store.delete_logs("f").await.expect("delete");
    assert!(store.read_logs("f", 0, 100).await.expect("read").is_empty());
    assert_eq!(store.tail_logs("g", 10).await.expect("g").len(), 1);
}

#[tokio::test]
async fn log_retention_keeps_the_newest_lines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = StoreOptions {
        log_retention_lines: 5,
        log_retention_ms: 60_000,
    };
    let store = SqliteStore::open(tmp.path(), opts).expect("open");
    let now = gust_model::now_ms();
    store
        .append_logs((0..12).map(|i| log("f", now, &format!("f{i}"))).collect())
        .await
        .expect("f");
    store
        .append_logs((0..3).map(|i| log("g", now, &format!("g{i}"))).collect())
        .await
        .expect("g");
    store
        .append_logs(vec![
            log("old", now - 120_000, "ancient"),
            log("old", now, "fresh"),
        ])
        .await
        .expect("old");

    let deleted = store.prune_logs().await.expect("prune");
    assert_eq!(deleted, 8);
    let f = store.read_logs("f", 0, 100).await.expect("f");
    assert_eq!(
        f.iter()
            .map(|l| l.entry.message.as_str())
            .collect::<Vec<_>>(),
        ["f7", "f8", "f9", "f10", "f11"]
    );
    assert_eq!(store.read_logs("g", 0, 100).await.expect("g").len(), 3);
    let old = store.read_logs("old", 0, 100).await.expect("old");
    assert_eq!(
        old.iter()
            .map(|l| l.entry.message.as_str())
            .collect::<Vec<_>>(),
        ["fresh"]
    );

    // Sequence numbers keep growing after pruning, so `--follow` never sees a line twice.
    let last = f.last().map(|l| l.seq).unwrap_or_default();
    store
        .append_logs(vec![log("f", now, "f12")])
        .await
        .expect("more");
    let next = store.read_logs("f", last, 10).await.expect("next");
    assert_eq!(next.len(), 1);
    assert!(next[0].seq > last);
}

#[test]
fn the_store_is_a_shareable_trait_object() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<SqliteStore>();
    let tmp = tempfile::tempdir().expect("tempdir");
    let _store: Arc<dyn gust_store::Store> = Arc::new(open(tmp.path()));
}

// ---- packages ----

fn zip_of(entries: &[(&str, &[u8], Option<u32>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data, mode) in entries {
        let mut opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        if let Some(mode) = mode {
            opts = opts.unix_permissions(*mode);
        }
        if name.ends_with('/') {
            w.add_directory(*name, opts).expect("dir");
        } else {
            w.start_file(*name, opts).expect("start");
            w.write_all(data).expect("write");
        }
    }
    w.finish().expect("finish").into_inner()
}

/// Rewrites every central directory entry as made by MS-DOS with no attributes, as some
/// Windows tools produce, so the reader sees no unix mode.
fn strip_unix_modes(mut zip: Vec<u8>) -> Vec<u8> {
    let sig = [0x50, 0x4b, 0x01, 0x02];
    let mut i = 0;
    while i + 46 <= zip.len() {
        if zip[i..i + 4] == sig {
            zip[i + 5] = 0; // "version made by" host: MS-DOS
            zip[i + 38..i + 42].copy_from_slice(&[0, 0, 0, 0]); // external attributes
            i += 46;
        } else {
            i += 1;
        }
    }
    zip
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test]
async fn put_code_unpacks_with_permissions_and_is_idempotent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    let zip = zip_of(&[
        ("bootstrap", b"#!/bin/sh\necho hi\n", Some(0o755)),
        ("lib/", b"", Some(0o755)),
        ("lib/data.txt", b"data", Some(0o666)),
        ("deep/nested/run.sh", b"#!/bin/sh\n", Some(0o775)),
    ]);
    let id = store.put_code(&zip, 1 << 20).await.expect("put");
    assert_eq!(id.len(), 64);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(std::fs::read(store.code_zip(&id)).expect("zip"), zip);
    let dir = store.code_dir(&id);
    assert_eq!(
        std::fs::read(dir.join("bootstrap")).expect("bootstrap"),
        b"#!/bin/sh\necho hi\n"
    );
    assert_eq!(mode(&dir.join("bootstrap")), 0o755);
    assert_eq!(
        mode(&dir.join("lib/data.txt")),
        0o644,
        "group/other write is dropped"
    );
    assert_eq!(mode(&dir.join("deep/nested/run.sh")), 0o755);
    assert_eq!(mode(&dir.join("deep")), 0o755);

    let again = store.put_code(&zip, 1 << 20).await.expect("put again");
    assert_eq!(again, id);
    // Nothing temporary is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("code"))
        .expect("read code dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[tokio::test]
async fn put_code_defaults_modes_when_the_zip_has_none() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    let zip = strip_unix_modes(zip_of(&[
        ("bootstrap", b"#!/bin/sh\n", Some(0o755)),
        ("sub/", b"", Some(0o755)),
        ("sub/bootstrap", b"x", Some(0o755)),
        ("app.py", b"def handler(e, c): return 1\n", Some(0o755)),
    ]));
    let id = store.put_code(&zip, 1 << 20).await.expect("put");
    let dir = store.code_dir(&id);
    assert_eq!(
        mode(&dir.join("bootstrap")),
        0o755,
        "a root bootstrap is executable"
    );
    assert_eq!(mode(&dir.join("app.py")), 0o644);
    assert_eq!(mode(&dir.join("sub/bootstrap")), 0o644);
    assert_eq!(mode(&dir.join("sub")), 0o755);
}

async fn rejected(zip: &[u8], max: u64) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    let err = store
        .put_code(zip, max)
        .await
        .expect_err("must be rejected");
    // A rejected package leaves nothing in the code directory.
    assert_eq!(
        std::fs::read_dir(tmp.path().join("code"))
            .expect("code dir")
            .count(),
        0
    );
    match err {
        StoreError::InvalidPackage(msg) => msg,
        other => panic!("expected InvalidPackage, got {other:?}"),
    }
}

#[tokio::test]
async fn put_code_rejects_malformed_zips() {
    let msg = rejected(b"this is not a zip", 1 << 20).await;
    assert_eq!(
        msg,
        "Could not unzip uploaded file. Please check your file, then try to upload again."
    );
    let mut truncated = zip_of(&[("a.txt", &[7u8; 4096], None)]);
    truncated.truncate(truncated.len() / 2);
    rejected(&truncated, 1 << 20).await;
    // Damaged compressed data behind an intact directory.
    let mut corrupt = zip_of(&[("a.txt", "hello world ".repeat(500).as_bytes(), None)]);
    for b in &mut corrupt[40..80] {
        *b ^= 0x5a;
    }
    rejected(&corrupt, 1 << 20).await;
}

#[tokio::test]
async fn put_code_rejects_path_traversal_and_symlinks() {
    let msg = rejected(
        &zip_of(&[("ok.txt", b"1", None), ("../evil", b"x", None)]),
        1 << 20,
    )
    .await;
    assert!(msg.contains("outside"), "{msg}");
    rejected(&zip_of(&[("a/../../evil", b"x", None)]), 1 << 20).await;
    rejected(&zip_of(&[("/etc/evil", b"x", None)]), 1 << 20).await;

    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.add_symlink("link", "/etc/passwd", SimpleFileOptions::default())
        .expect("symlink");
    let zip = w.finish().expect("finish").into_inner();
    let msg = rejected(&zip, 1 << 20).await;
    assert!(msg.contains("symbolic link"), "{msg}");
}

#[tokio::test]
async fn put_code_rejects_oversized_packages() {
    let zip = zip_of(&[
        ("a.bin", &vec![0u8; 300_000], None),
        ("b.bin", &vec![0u8; 300_000], None),
    ]);
    assert!(zip.len() < 10_000, "zeros compress well");
    let msg = rejected(&zip, 500_000).await;
    assert_eq!(msg, "Unzipped size must be smaller than 500000 bytes");

    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    store
        .put_code(&zip, 600_000)
        .await
        .expect("exactly at the limit");
}

// ---- durability ----

const CHILD_ENV: &str = "GUST_STORE_DURABILITY_CHILD_DIR";

/// The child half of `acknowledged_writes_survive_kill_9`: writes until killed, printing
/// `ack <n>` once each write has returned. Does nothing when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durability_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Arc::new(open(Path::new(&dir)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for worker in 0..8u64 {
        let store = store.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let n = worker * 1_000_000 + i;
                let result = if n % 2 == 0 {
                    store.put_function(&record(&format!("fn-{n}"))).await
                } else {
                    store.enqueue(&event(&format!("ev-{n}"), "f", 0)).await
                };
                if result.is_err() || tx.send(n).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut out = std::io::stdout().lock();
    while let Some(n) = rx.recv().await {
        // One write per line, flushed: the parent must never see an ack before the data.
        let _ = writeln!(out, "ack {n}");
        let _ = out.flush();
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let acked = common::acks_until_kill_9(
        "durability_child_writer",
        CHILD_ENV,
        tmp.path(),
        2_000,
        |line| line.strip_prefix("ack ")?.parse::<u64>().ok(),
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = open(tmp.path());
        let functions: std::collections::HashSet<String> = store
            .list_functions(None, usize::MAX)
            .await
            .expect("list")
            .into_iter()
            .map(|r| r.config.name)
            .collect();
        let events: std::collections::HashSet<String> = store
            .due(i64::MAX, 0, usize::MAX)
            .await
            .expect("due")
            .into_iter()
            .map(|e| e.id)
            .collect();
        for n in &acked {
            if n % 2 == 0 {
                assert!(
                    functions.contains(&format!("fn-{n}")),
                    "acknowledged function {n} lost"
                );
            } else {
                assert!(
                    events.contains(&format!("ev-{n}")),
                    "acknowledged event {n} lost"
                );
            }
        }
        println!(
            "{} acknowledged writes all present after kill -9 ({} functions, {} events stored)",
            acked.len(),
            functions.len(),
            events.len()
        );
    });
}

// ---- throughput (run with `cargo test -p gust-store --release -- --ignored --nocapture`) ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures throughput on the local disk"]
async fn throughput() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(tmp.path()));

    let n = 2_000;
    let started = Instant::now();
    for i in 0..n {
        store
            .put_function(&record(&format!("f{i}")))
            .await
            .expect("put");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "single writer: {n} puts in {secs:.2}s = {:.0} puts/s",
        n as f64 / secs
    );

    for writers in [8usize, 64, 256] {
        let per = 20_000 / writers;
        let before = store.stats();
        let started = Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..per {
                        store
                            .enqueue(&event(&format!("{writers}-{w}-{i}"), "f", 0))
                            .await
                            .expect("enqueue");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("join");
        }
        let secs = started.elapsed().as_secs_f64();
        let after = store.stats();
        let ops = after.ops - before.ops;
        let commits = after.commits - before.commits;
        println!(
            "{writers} concurrent writers: {ops} enqueues in {secs:.2}s = {:.0} enqueues/s, {commits} commits ({:.1} ops/commit)",
            ops as f64 / secs,
            ops as f64 / commits as f64
        );
    }

    // Leasing from a backlog of ~60,000 queued events.
    let started = Instant::now();
    let mut leased = 0;
    for _ in 0..100 {
        leased += store
            .due(i64::MAX - 1, 60_000, 100)
            .await
            .expect("due")
            .len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "due(limit 100) from a 60k backlog: {:.2} ms per call ({leased} leased)",
        secs * 10.0
    );

    let started = Instant::now();
    let batch: Vec<LogEntry> = (0..100)
        .map(|i| log("f", 0, &format!("line {i}")))
        .collect();
    for _ in 0..200 {
        store.append_logs(batch.clone()).await.expect("logs");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "logs, one writer, 100 lines per call: {:.0} lines/s",
        20_000.0 / secs
    );
}
