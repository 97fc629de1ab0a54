//! A throughput measurement of log appends, ignored by default: 200,000 lines in calls of
//! 1,600 (400 invocations × START, output, END, REPORT), one call per 10 ms as the Wasm
//! executor's log writer makes them, then the same lines as fast as the store takes them.
//! Prints lines/s and the CPU time of the store's writer and sync-ticker threads.
//!
//! Run with `cargo test --release -p gust-store --test log_throughput -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use gust_model::{LogEntry, LogStream};
use gust_store::{LogStore, SqliteStore, StoreOptions};

const LINES: usize = 200_000;
const PER_CALL: usize = 1_600;

/// CPU time (ns) of this process's threads named `name`, from `/proc/self/task/*/schedstat`.
fn thread_cpu_ns(name: &str) -> u64 {
    let mut total = 0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// The lines of invocation `i`, as the Wasm executor stores them.
fn invocation(i: usize) -> Vec<LogEntry> {
    let request_id = format!("{i:08x}-6f1c-4b4e-9d1a-{:012x}", i * 7919);
    let ts_ms = gust_model::now_ms();
    let line = |stream, message: String| LogEntry {
        ts_ms,
        function: "wasm-hello".into(),
        request_id: request_id.clone(),
        stream,
        message,
    };
    vec![
        line(
            LogStream::Platform,
            format!("START RequestId: {request_id} Version: $LATEST"),
        ),
        line(LogStream::Stdout, "hello from wasm".into()),
        line(LogStream::Platform, format!("END RequestId: {request_id}")),
        line(
            LogStream::Platform,
            format!(
                "REPORT RequestId: {request_id}\tDuration: 0.05 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 2 MB"
            ),
        ),
    ]
}

async fn run(paced: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(tmp.path(), StoreOptions::default()).expect("open");
    let calls: Vec<Vec<LogEntry>> = (0..LINES / PER_CALL)
        .map(|c| {
            (0..PER_CALL / 4)
                .flat_map(|i| invocation(c * PER_CALL / 4 + i))
                .collect()
        })
        .collect();
    let writer_before = thread_cpu_ns("gust-store-writ");
    let ticker_before = thread_cpu_ns("gust-store-tick");
    let started = Instant::now();
    for (i, call) in calls.into_iter().enumerate() {
        if paced {
            let due = started + Duration::from_millis(10 * i as u64);
            tokio::time::sleep_until(due.into()).await;
        }
        store.append_logs(call).await.expect("append");
    }
    let secs = started.elapsed().as_secs_f64();
    let writer = thread_cpu_ns("gust-store-writ") - writer_before;
    let ticker = thread_cpu_ns("gust-store-tick") - ticker_before;
    let tail = store.tail_logs("wasm-hello", 1).await.expect("tail");
    assert_eq!(tail.len(), 1);
    println!(
        "{}: {LINES} lines in {secs:.2} s = {:.0} lines/s; writer CPU {:.0} ms ({:.2} µs/line), ticker CPU {:.0} ms; stats {:?}",
        if paced { "paced (1 call / 10 ms)" } else { "unpaced" },
        LINES as f64 / secs,
        writer as f64 / 1e6,
        writer as f64 / 1e3 / LINES as f64,
        ticker as f64 / 1e6,
        store.stats(),
    );
    store.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn log_append_throughput() {
    run(true).await;
    run(false).await;
}
