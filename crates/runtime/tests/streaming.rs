//! Integration tests of Lambda response streaming in the process runtime: Node functions
//! wrapped in `awslambda.streamifyResponse` run by the embedded bootstrap, driven through
//! `Invoker::invoke_stream` (and `invoke`, which collects a stream whole).
//!
//! Whether a chunk really arrives while the function is still running is checked with an
//! explicit signal: the function writes its first chunk, then waits for a file that the test
//! creates only once it has received that chunk.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gust_model::{FunctionConfig, FunctionRecord};
use gust_runtime::{InvokeStream, Invoker, ProcessInvoker, RuntimeConfig};
use gust_store::LogStore;
use serde_json::{json, Value};

mod common;
use common::{request, DirCode, MemLogs};

const NODE: &str = "/usr/bin/node";

/// One streaming handler; the event's `action` picks what it does.
const STREAMING_JS: &str = r#"
const fs = require('fs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
exports.handler = awslambda.streamifyResponse(async (event, stream, context) => {
  switch (event.action) {
    case 'signal': {
      stream.setContentType('text/plain');
      stream.write('chunk1');
      const until = Date.now() + 5000;
      while (!fs.existsSync(event.signal) && Date.now() < until) await sleep(5);
      stream.write(fs.existsSync(event.signal) ? 'chunk2' : 'no-signal');
      stream.end();
      return;
    }
    case 'sleepy':
      stream.write('chunk1');
      await sleep(300);
      stream.write('chunk2');
      stream.end();
      return;
    case 'http': {
      const s = awslambda.HttpResponseStream.from(stream, {
        statusCode: 201,
        headers: { 'x-a': 'b' },
        cookies: ['c=d'],
      });
      s.write('body');
      s.end();
      return;
    }
    case 'throw_mid':
      stream.write('partial');
      await sleep(20);
      throw new TypeError('boom');
    case 'throw_first':
      throw new RangeError('early');
    case 'pipeline': {
      const { pipeline } = require('stream/promises');
      const { Readable } = require('stream');
      stream.setContentType('application/json');
      await pipeline(Readable.from(['[', '1,', '2', ']']), stream);
      return;
    }
    case 'exit_mid':
      stream.write('x');
      await sleep(50);
      process.exit(3);
    case 'hang':
      stream.write('a');
      await new Promise(() => setInterval(() => {}, 1000));
      return;
    case 'flood': {
      const big = Buffer.alloc(64 * 1024, 120);
      for (let i = 0; i < event.n; i++) {
        if (!stream.write(big)) await new Promise((r) => stream.once('drain', r));
      }
      stream.end();
      return;
    }
    default:
      stream.end('quick:' + context.awsRequestId);
  }
});
"#;

/// A `provided` runtime that streams by hand: a raw chunked POST (the event's `parts`, `pause`
/// seconds apart) ending in error trailers when the event has an `error`, as AWS documents for
/// custom runtimes. It prints the Runtime API's status line to its log.
const RAW_BOOTSTRAP: &str = r#"#!/usr/bin/python3 -S
import base64, http.client, json, os, socket, time
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    ev = json.loads(r.read())
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    s = socket.create_connection((host, int(port)))
    s.sendall(("POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: rt\r\n"
               "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
               "Transfer-Encoding: chunked\r\nContent-Type: application/x-ndjson\r\n"
               "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
               "\r\n" % rid).encode())
    for part in ev["parts"]:
        data = part.encode()
        s.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        time.sleep(ev.get("pause", 0))
    tail = b"0\r\n"
    if ev.get("error"):
        doc = json.dumps({"errorMessage": ev["error"], "errorType": "Custom.Error"}).encode()
        tail += (b"Lambda-Runtime-Function-Error-Type: Custom.Error\r\n"
                 b"Lambda-Runtime-Function-Error-Body: " + base64.b64encode(doc) + b"\r\n")
    s.sendall(tail + b"\r\n")
    answer = b""
    while b"\r\n" not in answer:
        more = s.recv(4096)
        if not more:
            break
        answer += more
    print("runtime api said:", answer.split(b"\r\n")[0].decode(), flush=True)
    s.close()
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    code_root: PathBuf,
    logs: Arc<MemLogs>,
    invoker: Arc<ProcessInvoker>,
}

fn fixture() -> Option<Fixture> {
    if !Path::new(NODE).is_file() {
        eprintln!("SKIPPED: no {NODE}");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let code_root = dir.path().join("code");
    std::fs::create_dir_all(&code_root).unwrap();
    let cfg = RuntimeConfig {
        work_dir: dir.path().join("work"),
        python: Some(PathBuf::from("/usr/bin/python3")),
        node: Some(PathBuf::from(NODE)),
        max_concurrency: 8,
        idle_timeout: Duration::from_secs(60),
        platform_env: BTreeMap::new(),
        region: "us-east-1".into(),
        sdk_dir: None,
    };
    let logs = Arc::new(MemLogs::default());
    let code = Arc::new(DirCode {
        root: code_root.clone(),
    });
    let invoker = ProcessInvoker::new(cfg, code, logs.clone()).unwrap();
    let fx = Fixture {
        _dir: dir,
        code_root,
        logs,
        invoker,
    };
    fx.code("streamer", "index.js", STREAMING_JS);
    fx.code(
        "plain",
        "index.js",
        "exports.handler = async (event) => ({ ok: true, n: event.n });\n",
    );
    Some(fx)
}

impl Fixture {
    fn code(&self, code_id: &str, file: &str, text: &str) {
        let d = self.code_root.join(code_id);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(file), text).unwrap();
    }

    async fn lines(&self, function: &str) -> Vec<String> {
        self.invoker.flush_logs().await;
        self.logs
            .read_logs(function, 0, usize::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.entry.message)
            .collect()
    }

    async fn stream(&self, f: &FunctionRecord, event: Value) -> InvokeStream {
        self.invoker
            .invoke_stream(request(f, event))
            .await
            .expect("invoke_stream")
    }
}

fn record(name: &str, code_id: &str, timeout: u32) -> FunctionRecord {
    let mut config = FunctionConfig::new(name, "nodejs20.x", "index.handler");
    config.timeout = timeout;
    FunctionRecord {
        revision_id: "rev-1".into(),
        ..FunctionRecord::new(config, code_id)
    }
}

/// Reads the rest of a stream, bounded so a wedged stream fails the test instead of hanging it.
async fn rest(s: &mut InvokeStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(c) = s.chunks.recv().await {
            all.extend_from_slice(&c);
        }
    })
    .await
    .expect("the stream ended");
    all
}

fn error_doc(payload: &[u8]) -> Value {
    serde_json::from_slice(payload)
        .unwrap_or_else(|e| panic!("not json ({e}): {}", String::from_utf8_lossy(payload)))
}

#[tokio::test]
async fn chunks_arrive_while_the_function_is_still_running() {
    let Some(fx) = fixture() else { return };
    let f = record("sig", "streamer", 10);
    // Warm the environment, so the time to the first chunk below is a warm one.
    let mut warm = fx.stream(&f, json!({})).await;
    rest(&mut warm).await;
    warm.end.await.unwrap();

    let signal = fx._dir.path().join("go");
    let started = Instant::now();
    let mut s = fx
        .stream(&f, json!({"action": "signal", "signal": signal}))
        .await;
    assert!(s.streamed);
    assert_eq!(s.content_type.as_deref(), Some("text/plain"));
    let first = tokio::time::timeout(Duration::from_secs(5), s.chunks.recv())
        .await
        .expect("first chunk in time")
        .expect("a first chunk");
    let first_at = started.elapsed();
    assert_eq!(&first[..], b"chunk1");
    // The function cannot have finished: it is waiting for this file.
    std::fs::write(&signal, b"").unwrap();
    assert_eq!(rest(&mut s).await, b"chunk2");
    let end = s.end.await.unwrap();
    assert_eq!(end.function_error, None);
    assert!(end.payload.is_empty());
    assert!(!end.cold_start);
    assert!(end.log_tail.unwrap().contains("REPORT RequestId"));
    eprintln!("warm time to first chunk: {first_at:?}");
    fx.invoker.shutdown().await;
}

#[tokio::test]
async fn chunks_are_spaced_as_the_function_writes_them() {
    let Some(fx) = fixture() else { return };
    let f = record("sleepy", "streamer", 10);
    let mut s = fx.stream(&f, json!({"action": "sleepy"})).await;
    let c1 = s.chunks.recv().await.unwrap();
    let t1 = Instant::now();
    let c2 = s.chunks.recv().await.unwrap();
    let gap = t1.elapsed();
    assert_eq!((&c1[..], &c2[..]), (&b"chunk1"[..], &b"chunk2"[..]));
    assert!(gap >= Duration::from_millis(200), "gap {gap:?}");
    assert!(s.chunks.recv().await.is_none());
    assert_eq!(s.end.await.unwrap().function_error, None);

    // A plain invoke of the same function gets the stream whole.
    let r = fx
        .invoker
        .invoke(request(&f, json!({"action": "sleepy"})))
        .await
        .unwrap();
    assert_eq!(r.function_error, None);
    assert_eq!(&r.payload[..], b"chunk1chunk2");
    fx.invoker.shutdown().await;
}

#[tokio::test]
async fn http_response_stream_writes_the_prelude_then_eight_nuls() {
    let Some(fx) = fixture() else { return };
    let f = record("httpfn", "streamer", 10);
    let mut s = fx.stream(&f, json!({"action": "http"})).await;
    assert_eq!(
        s.content_type.as_deref(),
        Some("application/vnd.awslambda.http-integration-response")
    );
    let all = rest(&mut s).await;
    let nul = all
        .windows(8)
        .position(|w| w == [0u8; 8])
        .expect("delimiter");
    let prelude: Value = serde_json::from_slice(&all[..nul]).unwrap();
    assert_eq!(
        prelude,
        json!({"statusCode": 201, "headers": {"x-a": "b"}, "cookies": ["c=d"]})
    );
    assert_eq!(&all[nul + 8..], b"body");
    assert_eq!(s.end.await.unwrap().function_error, None);
    fx.invoker.shutdown().await;
}

#[tokio::test]
async fn an_error_mid_stream_ends_it_with_lambdas_error_document() {
    let Some(fx) = fixture() else { return };
    let f = record("thrower", "streamer", 10);
    let req = request(&f, json!({"action": "throw_mid"}));
    let id = req.request_id.clone();
    let mut s = fx.invoker.invoke_stream(req).await.unwrap();
    assert!(s.streamed);
    assert_eq!(rest(&mut s).await, b"partial");
    let end = s.end.await.unwrap();
    assert_eq!(end.function_error.as_deref(), Some("Unhandled"));
    let doc = error_doc(&end.payload);
    assert_eq!(doc["errorType"], "TypeError");
    assert_eq!(doc["errorMessage"], "boom");
    assert!(
        doc["trace"].as_array().is_some_and(|t| !t.is_empty()),
        "{doc}"
    );
    let lines = fx.lines("thrower").await;
    assert!(
        lines.iter().any(|l| l.contains("Invoke Error")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| *l == format!("END RequestId: {id}")),
        "{lines:?}"
    );

    // The environment is still good, and a failure before the first byte is a plain error.
    let mut s = fx.stream(&f, json!({"action": "throw_first"})).await;
    assert!(!s.streamed);
    assert!(rest(&mut s).await.is_empty());
    let end = s.end.await.unwrap();
    assert!(!end.cold_start);
    assert_eq!(end.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(error_doc(&end.payload)["errorType"], "RangeError");
    fx.invoker.shutdown().await;
}

#[tokio::test]
async fn a_timeout_mid_stream_ends_it_with_the_timeout_error() {
    let Some(fx) = fixture() else { return };
    let f = record("hanger", "streamer", 1);
    let started = Instant::now();
    let mut s = fx.stream(&f, json!({"action": "hang"})).await;
    assert!(s.streamed);
    assert_eq!(rest(&mut s).await, b"a");
    let end = s.end.await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert_eq!(end.function_error.as_deref(), Some("Unhandled"));
    let doc = error_doc(&end.payload);
    assert_eq!(doc["errorType"], "Sandbox.Timedout");
    assert!(
        doc["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Task timed out after 1.00 seconds"),
        "{doc}"
    );
    assert!(end.log_tail.unwrap().contains("Status: timeout"));
    // The timed-out environment was stopped; the next invocation gets a new one.
    let r = fx.invoker.invoke(request(&f, json!({}))).await.unwrap();
    assert_eq!(r.function_error, None);
    assert!(r.cold_start);
    fx.invoker.shutdown().await;
}

#[tokio::test]
async fn a_runtime_exiting_mid_stream_is_an_exit_error() {
    let Some(fx) = fixture() else { return };
    let f = record("quitter", "streamer", 10);
    let mut s = fx.stream(&f, json!({"action": "exit_mid"})).await;
    assert_eq!(rest(&mut s).await, b"x");
    let end = s.end.await.unwrap();
    assert_eq!(end.function_error.as_deref(), Some("Unhandled"));
    let doc = error_doc(&end.payload);
    assert_eq!(doc["errorType"], "Runtime.ExitError", "{doc}");
    assert!(
        doc["errorMessage"]
            .as_str()
            .unwrap()
            .contains("exit status 3"),
        "{doc}"
    );
    let r = fx.invoker.invoke(request(&f, json!({}))).await.unwrap();
    assert_eq!(r.function_error, None);
    assert!(r.cold_start);
    fx.invoker.shutdown().await;
}

#[tokio::test]
async fn a_caller_dropping_the_stream_does_not_wedge_the_environment() {
    let Some(fx) = fixture() else { return };
    let f = record("flood", "streamer", 10);
    let req = request(&f, json!({"action": "flood", "n": 256}));
    let id = req.request_id.clone();
    let mut s = fx.invoker.invoke_stream(req).await.unwrap();
    assert!(s.chunks.recv().await.is_some());
    drop(s);
    // The function writes its 16 MB into the void, finishes, and its environment is reused.
    let deadline = Instant::now() + Duration::from_secs(15);
    while fx.invoker.environments("flood").busy > 0 {
        assert!(Instant::now() < deadline, "the environment stayed busy");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = fx.invoker.invoke(request(&f, json!({}))).await.unwrap();
    assert_eq!(r.function_error, None);
    assert!(!r.cold_start);
    assert!(r.payload.starts_with(b"quick:"));
    let lines = fx.lines("flood").await;
    let report = lines
        .iter()
        .find(|l| l.starts_with(&format!("REPORT RequestId: {id}")))
        .expect("REPORT of the dropped stream");
    assert!(!report.contains("Status:"), "{report}");
    fx.invoker.shutdown().await;
}

#[tokio::test]
async fn a_custom_runtime_streams_with_raw_chunks_and_error_trailers() {
    let Some(fx) = fixture() else { return };
    fx.code("raw", "bootstrap", RAW_BOOTSTRAP);
    let exe = fx.code_root.join("raw/bootstrap");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut f = record("raw", "raw", 10);
    f.config.runtime = "provided.al2023".into();

    let mut s = fx
        .stream(
            &f,
            json!({"parts": ["{\"n\":1}\n", "{\"n\":2}\n"], "pause": 0.2}),
        )
        .await;
    assert!(s.streamed);
    assert_eq!(s.content_type.as_deref(), Some("application/x-ndjson"));
    let first = s.chunks.recv().await.unwrap();
    let t1 = Instant::now();
    assert_eq!(&first[..], b"{\"n\":1}\n");
    assert_eq!(rest(&mut s).await, b"{\"n\":2}\n");
    assert!(
        t1.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t1.elapsed()
    );
    assert_eq!(s.end.await.unwrap().function_error, None);

    let mut s = fx
        .stream(&f, json!({"parts": ["half"], "error": "went wrong"}))
        .await;
    assert_eq!(rest(&mut s).await, b"half");
    let end = s.end.await.unwrap();
    assert!(!end.cold_start);
    assert_eq!(end.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        error_doc(&end.payload),
        json!({"errorMessage": "went wrong", "errorType": "Custom.Error"})
    );
    // The runtime prints the answer to its second stream after the invocation ended.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = fx.lines("raw").await;
        let accepted = lines
            .iter()
            .filter(|l| l.as_str() == "runtime api said: HTTP/1.1 202 Accepted")
            .count();
        if accepted == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{lines:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fx.invoker.shutdown().await;
}

#[tokio::test]
async fn a_readable_piped_into_the_stream_arrives_whole() {
    let Some(fx) = fixture() else { return };
    let f = record("piper", "streamer", 10);
    let mut s = fx.stream(&f, json!({"action": "pipeline"})).await;
    assert_eq!(s.content_type.as_deref(), Some("application/json"));
    assert_eq!(rest(&mut s).await, b"[1,2]");
    assert_eq!(s.end.await.unwrap().function_error, None);
    // Twice on the same environment: the stream's connection is left ready for `next`.
    let mut s = fx.stream(&f, json!({"action": "pipeline"})).await;
    assert_eq!(rest(&mut s).await, b"[1,2]");
    let end = s.end.await.unwrap();
    assert!(!end.cold_start);
    assert_eq!(end.function_error, None);
    fx.invoker.shutdown().await;
}

#[tokio::test]
async fn a_function_that_does_not_stream_yields_one_chunk() {
    let Some(fx) = fixture() else { return };
    let f = record("plainfn", "plain", 10);
    let mut s = fx.stream(&f, json!({"n": 7})).await;
    assert!(!s.streamed);
    assert_eq!(s.content_type, None);
    let one = s.chunks.recv().await.unwrap();
    assert_eq!(error_doc(&one), json!({"ok": true, "n": 7}));
    assert!(s.chunks.recv().await.is_none());
    let end = s.end.await.unwrap();
    assert_eq!(end.function_error, None);
    assert!(end.payload.is_empty());
    fx.invoker.shutdown().await;
}

/// Warm time to the first chunk and stream throughput (run with
/// `cargo test -p gust-runtime --release --test streaming -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; prints numbers"]
async fn bench_first_chunk_and_throughput() {
    let Some(fx) = fixture() else { return };
    let f = record("benchfn", "streamer", 30);
    let mut warm = fx.stream(&f, json!({})).await;
    rest(&mut warm).await;
    let mut first = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let mut s = fx.stream(&f, json!({"action": "sleepy"})).await;
        s.chunks.recv().await.unwrap();
        first.push(t.elapsed());
        rest(&mut s).await;
        assert_eq!(s.end.await.unwrap().function_error, None);
        let t = Instant::now();
        let mut s = fx.stream(&f, json!({})).await;
        rest(&mut s).await;
        s.end.await.unwrap();
        whole.push(t.elapsed());
    }
    first.sort();
    whole.sort();
    let p = |v: &[Duration], q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    eprintln!(
        "warm time to first chunk: p50 {:?}, p99 {:?}",
        p(&first, 0.5),
        p(&first, 0.99)
    );
    eprintln!(
        "warm one-chunk stream, invoke_stream to end: p50 {:?}, p99 {:?}",
        p(&whole, 0.5),
        p(&whole, 0.99)
    );
    let n = 1024; // 64 MB in 64 KB writes
    let t = Instant::now();
    let mut s = fx.stream(&f, json!({"action": "flood", "n": n})).await;
    let got = rest(&mut s).await.len();
    let took = t.elapsed();
    assert_eq!(got, n * 64 * 1024);
    assert_eq!(s.end.await.unwrap().function_error, None);
    eprintln!(
        "64 MB streamed in {took:?}: {:.0} MB/s",
        got as f64 / 1e6 / took.as_secs_f64()
    );
    fx.invoker.shutdown().await;
}
