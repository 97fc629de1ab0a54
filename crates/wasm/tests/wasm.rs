//! Integration tests of the Wasm executor against the real SQLite store, with guests built
//! from source by `wat` and `wit-component` (see `support/guests.rs`).

mod support;

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gust_model::{FunctionConfig, FunctionRecord};
use gust_runtime::{HttpBody, InvokeError, InvokeRequest, InvokeResponse, Invoker};
use gust_store::{CodeStore, LogStore, SqliteStore, StoreOptions};
use gust_wasm::{WasmConfig, WasmInvoker};
use serde_json::Value;
use support::guests::{self, StreamEnd};

struct Harness {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    invoker: Arc<WasmInvoker>,
}

impl Harness {
    fn new() -> Harness {
        Self::with(|_| {})
    }

    fn with(f: impl FnOnce(&mut WasmConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (store, invoker) = open(dir.path(), f);
        Harness {
            dir,
            store,
            invoker,
        }
    }

    /// Stops this invoker and opens a new one on the same data directory (a restart).
    async fn restart(self) -> Harness {
        self.invoker.shutdown().await;
        drop(self.invoker);
        self.store.close();
        // The store's lock goes with its last reference; the aborted log writer holds one
        // until the runtime drops it.
        let weak = Arc::downgrade(&self.store);
        drop(self.store);
        let t0 = Instant::now();
        while weak.strong_count() > 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "store still referenced"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (store, invoker) = open(self.dir.path(), |_| {});
        Harness {
            dir: self.dir,
            store,
            invoker,
        }
    }

    async fn deploy(
        &self,
        name: &str,
        wasm: &[u8],
        f: impl FnOnce(&mut FunctionRecord),
    ) -> Arc<FunctionRecord> {
        let code_id = self
            .store
            .put_code(&zip_of(&[("app.wasm", wasm)]), 250 << 20)
            .await
            .unwrap();
        let mut r = record(name, &code_id);
        f(&mut r);
        let r = Arc::new(r);
        self.invoker.function_changed(name, Some(r.clone())).await;
        r
    }

    async fn invoke(&self, f: &Arc<FunctionRecord>, payload: &str) -> InvokeResponse {
        self.try_invoke(f, payload).await.expect("invocation runs")
    }

    async fn try_invoke(
        &self,
        f: &Arc<FunctionRecord>,
        payload: &str,
    ) -> Result<InvokeResponse, InvokeError> {
        self.invoker.invoke(request(f.clone(), payload, true)).await
    }

    async fn logs(&self, function: &str) -> Vec<String> {
        self.invoker.flush_logs().await;
        self.store
            .read_logs(function, 0, usize::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.entry.message)
            .collect()
    }
}

fn open(
    dir: &std::path::Path,
    f: impl FnOnce(&mut WasmConfig),
) -> (Arc<SqliteStore>, Arc<WasmInvoker>) {
    let store = Arc::new(SqliteStore::open(dir, StoreOptions::default()).unwrap());
    let mut config = WasmConfig::new(dir.join("wasm-cache"));
    config.max_concurrency = 8;
    config.pool.instances = 64;
    config.pool.memories = 64;
    config.pool.tables = 64;
    f(&mut config);
    let invoker = WasmInvoker::new(config, store.clone(), store.clone()).unwrap();
    (store, invoker)
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// An invocation of `function` with a fresh request id.
fn request(function: Arc<FunctionRecord>, payload: &str, tail_log: bool) -> InvokeRequest {
    InvokeRequest {
        function,
        payload: Bytes::from(payload.to_string()),
        request_id: gust_model::new_request_id(),
        client_context: None,
        tail_log,
    }
}

fn record(name: &str, code_id: &str) -> FunctionRecord {
    FunctionRecord {
        revision_id: "rev-1".into(),
        ..FunctionRecord::new(FunctionConfig::new(name, "wasm", ""), code_id)
    }
}

fn json(r: &InvokeResponse) -> Value {
    serde_json::from_slice(&r.payload)
        .unwrap_or_else(|e| panic!("payload is not JSON ({e}): {:?}", r.payload))
}

fn text(r: &InvokeResponse) -> String {
    String::from_utf8_lossy(&r.payload).into_owned()
}

#[tokio::test]
async fn hello_component_answers_and_logs() {
    let h = Harness::new();
    let f = h.deploy("hello", &guests::hello(), |_| {}).await;
    assert_eq!(h.invoker.stats().compiled, 1, "compiled at deploy");
    let r = h.invoke(&f, "{}").await;
    assert_eq!(r.function_error, None, "{}", text(&r));
    assert_eq!(json(&r), "hello from wasm");
    assert!(
        !r.cold_start,
        "compiled at deploy, so the first request is warm"
    );
    let tail = r.log_tail.unwrap();
    assert!(tail.starts_with("START RequestId: "), "{tail}");
    assert!(tail.contains("\nhello log line\n"), "{tail}");
    assert!(tail.contains("\nEND RequestId: "), "{tail}");
    assert!(
        tail.contains("REPORT RequestId: ") && tail.contains("Memory Size: 128 MB"),
        "{tail}"
    );
    let logs = h.logs("hello").await;
    assert_eq!(logs.len(), 4, "{logs:?}");
    assert!(logs[1] == "hello log line");
}

#[tokio::test]
async fn oversized_log_is_truncated_not_an_error() {
    let h = Harness::new();
    // 50,000 lines of 100 bytes: about 4.8 MiB, past the 4 MiB kept.
    let f = h.deploy("chatty", &guests::chatty(50_000), |_| {}).await;
    let r = h.invoke(&f, "{}").await;
    assert_eq!(r.function_error, None, "{}", text(&r));
    assert_eq!(json(&r), "ok");
    let logs = h.logs("chatty").await;
    // Lines and their newlines (the last, cut, line has none).
    let kept: usize = logs
        .iter()
        .filter(|l| l.starts_with('x'))
        .map(|l| l.len() + 1)
        .sum::<usize>()
        - 1;
    assert_eq!(kept, gust_wasm::MAX_LOG_BYTES, "{kept} bytes kept");
    let note = logs
        .iter()
        .find(|l| l.starts_with("log output truncated"))
        .expect("the log says it was truncated");
    let dropped = 50_000 * 100 - gust_wasm::MAX_LOG_BYTES;
    assert!(note.contains(&format!(" {dropped} bytes")), "{note}");
    assert!(logs.last().unwrap().starts_with("REPORT RequestId: "));
}

#[tokio::test]
async fn deleting_a_function_drops_its_module_unless_shared() {
    let h = Harness::new();
    let a = h.deploy("a", &guests::hello(), |_| {}).await;
    let b = h.deploy("b", &guests::hello(), |_| {}).await;
    assert_eq!(a.code_id, b.code_id, "same package");
    assert_eq!(h.invoker.stats().modules, 1, "shared by both functions");
    h.invoker.function_changed("a", None).await;
    assert_eq!(h.invoker.stats().modules, 1, "still used by b");
    assert_eq!(json(&h.invoke(&b, "{}").await), "hello from wasm");
    // A new package for b releases the old one.
    let b2 = h.deploy("b", &guests::echo(), |_| {}).await;
    assert_ne!(b2.code_id, b.code_id);
    assert_eq!(h.invoker.stats().modules, 1, "only the new package");
    h.invoker.function_changed("b", None).await;
    assert_eq!(h.invoker.stats().modules, 0, "nothing left in memory");
    // Deployed again, it loads from the artifact cache, without compiling.
    let compiled = h.invoker.stats().compiled;
    let b3 = h.deploy("b", &guests::echo(), |_| {}).await;
    assert_eq!(text(&h.invoke(&b3, "\"again\"").await), "\"again\"");
    assert_eq!(h.invoker.stats().compiled, compiled);
}

#[tokio::test]
async fn events_arrive_as_post_with_cloudevents_headers() {
    let h = Harness::new();
    let f = h.deploy("echo", &guests::echo(), |_| {}).await;
    let r = h.invoke(&f, r#"{"key":"value","n":[1,2,3]}"#).await;
    assert_eq!(r.function_error, None, "{}", text(&r));
    assert_eq!(json(&r), serde_json::json!({"key":"value","n":[1,2,3]}));
    // A big event survives the trip through the body streams.
    let big = format!("\"{}\"", "x".repeat(300_000));
    let r = h.invoke(&f, &big).await;
    assert_eq!(r.payload.len(), big.len());

    // The WAGI module prints what it got: the CloudEvents headers as HTTP_CE_*.
    let f = h
        .deploy("cgi", &guests::cgi_env_dump(0), |r| {
            r.config
                .environment
                .insert("MY_SETTING".into(), "from-config".into());
        })
        .await;
    let r = h.invoke(&f, r#"{"hello":"cgi"}"#).await;
    assert_eq!(r.function_error, None, "{}", text(&r));
    let out = text(&r);
    for expected in [
        "REQUEST_METHOD=POST",
        "PATH_INFO=/",
        "CONTENT_TYPE=application/json",
        "CONTENT_LENGTH=15",
        "HTTP_CE_SPECVERSION=1.0",
        "HTTP_CE_TYPE=com.amazonaws.lambda.invoke",
        "HTTP_CE_SOURCE=arn:aws:lambda:us-east-1:000000000000:function:cgi",
        "MY_SETTING=from-config",
        "AWS_LAMBDA_FUNCTION_NAME=cgi",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
        "\n---\n{\"hello\":\"cgi\"}",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(out.contains("HTTP_CE_ID="), "{out}");
    assert!(
        !out.contains("Content-Type: text/plain"),
        "CGI headers are not in the body"
    );
    let tail = r.log_tail.unwrap();
    assert!(
        tail.contains("\ncgi log line\n"),
        "stderr is the log: {tail}"
    );
}

#[tokio::test]
async fn host_environment_does_not_leak() {
    std::env::set_var("GUST_WASM_TEST_HOST_SECRET", "leaked");
    let h = Harness::new();
    let f = h.deploy("cgienv", &guests::cgi_env_dump(0), |_| {}).await;
    let out = text(&h.invoke(&f, "{}").await);
    assert!(!out.contains("GUST_WASM_TEST_HOST_SECRET"), "{out}");
    assert!(!out.contains("PATH=/"), "{out}");
}

#[tokio::test]
async fn a_caller_that_goes_away_does_not_cut_the_invocation_short() {
    let h = Harness::new();
    let spin = h
        .deploy("spin-gone", &guests::spin(), |r| r.config.timeout = 1)
        .await;
    let gone = tokio::time::timeout(Duration::from_millis(100), h.try_invoke(&spin, "{}")).await;
    assert!(gone.is_err(), "the caller gave up first");
    assert_eq!(h.invoker.stats().busy, 1, "the invocation runs on");
    let t0 = Instant::now();
    while h.invoker.stats().busy > 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let logs = h.logs("spin-gone").await;
    assert!(
        logs.iter()
            .any(|l| l.contains("Task timed out after 1.00 seconds")),
        "{logs:?}"
    );
    assert!(
        logs.last().unwrap().starts_with("REPORT RequestId: "),
        "{logs:?}"
    );
}

#[tokio::test]
async fn nothing_survives_between_requests() {
    let h = Harness::new();
    let f = h.deploy("counter", &guests::counter(), |_| {}).await;
    for _ in 0..5 {
        let r = h.invoke(&f, "{}").await;
        assert_eq!(json(&r), serde_json::json!([1, 1]));
    }
}

#[tokio::test]
async fn infinite_loop_times_out_and_host_stays_responsive() {
    let h = Harness::new();
    let spin = h
        .deploy("spin", &guests::spin(), |r| r.config.timeout = 1)
        .await;
    let hello = h.deploy("hello2", &guests::hello(), |_| {}).await;
    let t0 = Instant::now();
    // More spinning guests than the runtime has worker threads.
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let inv = h.invoker.clone();
            let spin = spin.clone();
            tokio::spawn(async move { inv.invoke(request(spin, "{}", true)).await.unwrap() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t1 = Instant::now();
    let r = h.invoke(&hello, "{}").await;
    assert_eq!(json(&r), "hello from wasm");
    assert!(
        t1.elapsed() < Duration::from_millis(300),
        "hello took {:?} while guests spin",
        t1.elapsed()
    );
    for s in spinners {
        let r = s.await.unwrap();
        assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
        let v = json(&r);
        assert_eq!(v["errorType"], "Sandbox.Timedout");
        let msg = v["errorMessage"].as_str().unwrap();
        assert!(
            msg.starts_with("RequestId: ")
                && msg.ends_with(" Error: Task timed out after 1.00 seconds"),
            "{msg}"
        );
        let tail = r.log_tail.unwrap();
        assert!(tail.contains("Status: timeout"), "{tail}");
    }
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(2500), "timeouts took {took:?}");
}

#[tokio::test]
async fn memory_growth_past_the_limit_is_out_of_memory() {
    let h = Harness::new();
    let f = h.deploy("grow", &guests::grow(), |_| {}).await;
    let r = h.invoke(&f, "{}").await;
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    let v = json(&r);
    assert_eq!(v["errorType"], "Runtime.OutOfMemory", "{v}");
    let tail = r.log_tail.unwrap();
    let report = tail.lines().find(|l| l.starts_with("REPORT")).unwrap();
    assert!(report.contains("Max Memory Used: 128 MB"), "{report}");
    // With more memory it gets further (and still fails: it grows until refused).
    let f = h
        .deploy("grow", &guests::grow(), |r| r.config.memory_size = 256)
        .await;
    let r = h.invoke(&f, "{}").await;
    let tail = r.log_tail.unwrap();
    assert!(tail.contains("Max Memory Used: 256 MB"), "{tail}");
}

#[tokio::test]
async fn trap_returns_lambda_error_with_trap_message() {
    let h = Harness::new();
    let f = h.deploy("trap", &guests::trap(), |_| {}).await;
    let r = h.invoke(&f, "{}").await;
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    let v = json(&r);
    assert_eq!(v["errorType"], "Runtime.WasmTrap");
    let msg = v["errorMessage"].as_str().unwrap();
    assert!(msg.starts_with("RequestId: "), "{msg}");
    assert!(msg.contains("unreachable"), "{msg}");
    // The instance is gone, the function works again.
    let r = h.invoke(&f, "{}").await;
    assert_eq!(json(&r)["errorType"], "Runtime.WasmTrap");
}

#[tokio::test]
async fn non_2xx_status_is_a_function_error() {
    let h = Harness::new();
    let f = h.deploy("fail", &guests::fail_500(), |_| {}).await;
    let r = h.invoke(&f, "{}").await;
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    let v = json(&r);
    assert_eq!(v["errorType"], "Runtime.HttpError");
    assert_eq!(v["errorMessage"], "status 500: boom");
    let f = h.deploy("exit3", &guests::cgi_env_dump(3), |_| {}).await;
    let v = json(&h.invoke(&f, "{}").await);
    assert_eq!(v["errorType"], "Runtime.ExitError");
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("exit status 3"),
        "{v}"
    );
}

/// A one-shot HTTP server counting its connections.
async fn upstream() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn outbound_http_only_to_allowed_hosts() {
    let h = Harness::new();
    let (addr, hits) = upstream().await;
    let authority = addr.to_string();
    let denied = h
        .deploy("denied", &guests::outbound(&authority), |_| {})
        .await;
    let r = h.invoke(&denied, "{}").await;
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(json(&r)["errorMessage"], "status 502: \"denied\"");
    assert!(r
        .log_tail
        .unwrap()
        .contains(&format!("outbound HTTP request to {authority} denied")),);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);

    let allowed = h
        .deploy("allowed", &guests::outbound(&authority), |r| {
            r.config.environment.insert(
                gust_wasm::ALLOWED_HOSTS_VAR.into(),
                format!("example.com, {authority}"),
            );
        })
        .await;
    let r = h.invoke(&allowed, "{}").await;
    assert_eq!(r.function_error, None, "{}", text(&r));
    assert_eq!(json(&r), "reached");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn malformed_and_oversized_modules_give_clear_errors() {
    let h = Harness::with(|c| c.max_module_bytes = 20_000);
    for (name, bytes) in [
        ("garbage", b"\0asm\x01\0\0\0this is not wasm".to_vec()),
        ("notwasm", b"print('hello')\n".to_vec()),
        ("toobig", vec![0u8; 30_000]),
    ] {
        let f = h.deploy(name, &bytes, |_| {}).await;
        let r = h.invoke(&f, "{}").await;
        assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
        let v = json(&r);
        assert_eq!(v["errorType"], "Runtime.InvalidWasm", "{name}: {v}");
        let msg = v["errorMessage"].as_str().unwrap().to_string();
        match name {
            "garbage" => assert!(msg.contains("invalid WebAssembly"), "{msg}"),
            "notwasm" => assert!(msg.contains("not a WebAssembly binary"), "{msg}"),
            _ => assert!(msg.contains("the limit is 20000 bytes"), "{msg}"),
        }
        let err = h.invoker.prepare(&f).await.unwrap_err();
        assert!(msg.contains(&err), "{err} vs {msg}");
    }
    // A core module that is not a command, and a package with two modules.
    let f = h
        .deploy(
            "lib",
            &wat::parse_str("(module (func (export \"f\")))").unwrap(),
            |_| {},
        )
        .await;
    let v = json(&h.invoke(&f, "{}").await);
    assert!(
        v["errorMessage"].as_str().unwrap().contains("_start"),
        "{v}"
    );
    let code_id = h
        .store
        .put_code(
            &zip_of(&[("a.wasm", &guests::hello()), ("b.wasm", &guests::trap())]),
            250 << 20,
        )
        .await
        .unwrap();
    let two = Arc::new(record("two", &code_id));
    let v = json(&h.invoke(&two, "{}").await);
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .contains("name the one to run with Handler"),
        "{v}"
    );
    let mut named = record("two", &code_id);
    named.config.handler = "b.wasm".into();
    let v = json(&h.invoke(&Arc::new(named), "{}").await);
    assert_eq!(v["errorType"], "Runtime.WasmTrap");
}

#[tokio::test]
async fn restart_loads_the_cached_artifact_without_compiling() {
    let h = Harness::new();
    let f = h.deploy("cached", &guests::hello(), |_| {}).await;
    assert_eq!(h.invoker.stats().compiled, 1);
    // Same package under another name: no second compilation.
    let mut other = (*f).clone();
    other.config.name = "cached2".into();
    h.invoker
        .function_changed("cached2", Some(Arc::new(other)))
        .await;
    assert_eq!(h.invoker.stats().compiled, 1);
    let h = h.restart().await;
    let r = h.invoke(&f, "{}").await;
    assert_eq!(json(&r), "hello from wasm");
    assert!(
        r.cold_start,
        "loaded on the first request after the restart"
    );
    let s = h.invoker.stats();
    assert_eq!((s.compiled, s.from_cache), (0, 1), "{s:?}");
    let tail = r.log_tail.unwrap();
    assert!(tail.contains("Init Duration: "), "{tail}");
    // A corrupt artifact is recompiled, not fatal. (Replaced by rename, as the cache itself
    // does: truncating a file that is mapped would fault the process using it.)
    let h = h.restart().await;
    for e in std::fs::read_dir(h.dir.path().join("wasm-cache")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "cwasm") {
            let tmp = p.with_extension("corrupt");
            std::fs::write(&tmp, b"corrupt").unwrap();
            std::fs::rename(&tmp, &p).unwrap();
        }
    }
    assert_eq!(json(&h.invoke(&f, "{}").await), "hello from wasm");
    assert_eq!(h.invoker.stats().compiled, 1);
}

#[tokio::test]
async fn concurrency_limits_throttle() {
    let h = Harness::with(|c| c.max_concurrency = 2);
    let hello = h.deploy("hello3", &guests::hello(), |_| {}).await;
    let spin = h
        .deploy("spin2", &guests::spin(), |r| {
            r.config.timeout = 2;
            r.reserved_concurrency = Some(1);
        })
        .await;
    let first = {
        let inv = h.invoker.clone();
        let spin = spin.clone();
        tokio::spawn(async move { inv.invoke(request(spin, "{}", false)).await })
    };
    while h.invoker.stats().busy == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match h.try_invoke(&spin, "{}").await {
        Err(InvokeError::Throttled { reason }) => {
            assert_eq!(reason, "ReservedFunctionConcurrentInvocationLimitExceeded")
        }
        other => panic!("expected throttling, got {:?}", other.map(|r| r.payload)),
    }
    let spin_b = h
        .deploy("spin3", &guests::spin(), |r| r.config.timeout = 2)
        .await;
    let second = {
        let inv = h.invoker.clone();
        tokio::spawn(async move { inv.invoke(request(spin_b, "{}", false)).await })
    };
    while h.invoker.stats().busy < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match h.try_invoke(&hello, "{}").await {
        Err(InvokeError::Throttled { reason }) => {
            assert_eq!(reason, "ConcurrentInvocationLimitExceeded")
        }
        other => panic!("expected throttling, got {:?}", other.map(|r| r.payload)),
    }
    let mut zero = (*hello).clone();
    zero.reserved_concurrency = Some(0);
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    assert!(matches!(
        h.try_invoke(&Arc::new(zero), "{}").await,
        Err(InvokeError::Throttled { .. })
    ));
    assert_eq!(json(&h.invoke(&hello, "{}").await), "hello from wasm");
}

#[tokio::test]
async fn raw_http_requests_reach_components_as_they_are() {
    let h = Harness::new();
    let f = h.deploy("rawecho", &guests::echo(), |_| {}).await;
    let req = http::Request::put("http://example.com/some/path?q=1")
        .header("x-custom", "1")
        .body(Bytes::from_static(b"raw body"))
        .unwrap();
    let resp = h.invoker.handle_http(f.clone(), req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.body(), &Bytes::from_static(b"raw body"));
    let t = h.deploy("rawtrap", &guests::trap(), |_| {}).await;
    let resp = h
        .invoker
        .handle_http(t, http::Request::new(Bytes::new()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["x-amz-function-error"], "Unhandled");
    // WAGI modules get the request line in their environment.
    let c = h.deploy("rawcgi", &guests::cgi_env_dump(0), |_| {}).await;
    let req = http::Request::get("http://fn.local:8080/a/b?x=1")
        .header("host", "fn.local:8080")
        .body(Bytes::new())
        .unwrap();
    let resp = h.invoker.handle_http(c, req).await.unwrap();
    assert_eq!(resp.headers()["x-gust-test"], "cgi");
    let body = String::from_utf8_lossy(resp.body()).into_owned();
    assert!(body.contains("REQUEST_METHOD=GET\n"), "{body}");
    assert!(body.contains("QUERY_STRING=x=1\n"), "{body}");
    assert!(
        body.contains("X_FULL_URL=http://fn.local:8080/a/b?x=1\n"),
        "{body}"
    );
}

/// The componentize-py component (`tests/guests/py-hello`), when built: `scripts/test.sh`
/// builds it and sets `GUST_WASM_PY_COMPONENT`; plain `cargo test` skips this test.
#[tokio::test]
async fn componentize_py_component() {
    let Some(path) = std::env::var_os("GUST_WASM_PY_COMPONENT") else {
        eprintln!(
            "skipped: GUST_WASM_PY_COMPONENT is not set (tests/guests/py-hello/build.sh builds it)"
        );
        return;
    };
    let wasm = std::fs::read(path).unwrap();
    let h = Harness::new();
    let t0 = Instant::now();
    let f = h.deploy("py", &wasm, |r| r.config.timeout = 30).await;
    eprintln!("componentize-py component compiled in {:?}", t0.elapsed());
    let r = h.invoke(&f, r#"{"from":"test"}"#).await;
    assert_eq!(r.function_error, None, "{}", text(&r));
    let v = json(&r);
    assert_eq!(v["hello"], "python");
    assert_eq!(v["path"], "/");
    assert_eq!(v["event"], serde_json::json!({"from": "test"}));
    assert!(v["ce_id"].is_string(), "{v}");
    assert!(r.log_tail.unwrap().contains("hello from python in wasm"));
}

/// `tests/guests/built/` holds the WAT-built guests the end-to-end suite deploys with boto3
/// (it has no Rust toolchain at hand). This test checks they match their source; rewrite
/// them with `GUST_WASM_WRITE_GUESTS=1 cargo test -p gust-wasm --test wasm committed_guests`.
#[test]
fn committed_guests_are_current() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/guests/built");
    let write = std::env::var_os("GUST_WASM_WRITE_GUESTS").is_some();
    for (name, bytes) in [
        ("hello.wasm", guests::hello()),
        ("echo.wasm", guests::echo()),
        ("counter.wasm", guests::counter()),
        ("spin.wasm", guests::spin()),
        ("trap.wasm", guests::trap()),
        ("grow.wasm", guests::grow()),
        ("cgi-env.wasm", guests::cgi_env_dump(0)),
    ] {
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(
                committed == bytes,
                "{} is stale; rerun with GUST_WASM_WRITE_GUESTS=1",
                path.display()
            );
        }
    }
}

/// `GET http://fn.local/`.
fn get() -> http::Request<Bytes> {
    http::Request::get("http://fn.local/")
        .body(Bytes::new())
        .expect("request")
}

/// The next piece of a streamed body: `Some(Ok(bytes))`, `None` at a clean end, or the cut.
async fn next_piece(body: &mut HttpBody) -> Option<Result<Bytes, String>> {
    use http_body_util::BodyExt as _;
    match body.frame().await? {
        Ok(frame) => Some(Ok(frame.into_data().unwrap_or_default())),
        Err(cut) => Some(Err(cut.0)),
    }
}

#[tokio::test]
async fn a_body_still_being_written_is_streamed_as_the_guest_writes_it() {
    let h = Harness::new();
    let f = h
        .deploy(
            "slow",
            &guests::stream_slowly(400, StreamEnd::Finish),
            |_| {},
        )
        .await;
    let t0 = Instant::now();
    let resp = h
        .invoker
        .handle_http_stream(f.clone(), get())
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    assert!(matches!(body, HttpBody::Stream(_)), "{body:?}");
    assert_eq!(
        next_piece(&mut body).await,
        Some(Ok(Bytes::from_static(b"first\n")))
    );
    // The head and the first chunk came while the guest was still pausing.
    assert!(
        t0.elapsed() < Duration::from_millis(400),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(
        next_piece(&mut body).await,
        Some(Ok(Bytes::from_static(b"second\n")))
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(next_piece(&mut body).await, None, "a clean end");
    let logs = h.logs("slow").await;
    assert!(logs.iter().any(|l| l.starts_with("REPORT ")), "{logs:?}");
    // The buffered path still answers the whole body at once.
    let whole = h.invoker.handle_http(f, get()).await.expect("response");
    assert_eq!(&whole.body()[..], b"first\nsecond\n");
}

#[tokio::test]
async fn a_quick_response_is_not_streamed() {
    let h = Harness::new();
    let f = h.deploy("quick", &guests::hello(), |_| {}).await;
    let resp = h
        .invoker
        .handle_http_stream(f, get())
        .await
        .expect("response");
    assert!(
        matches!(resp.body(), HttpBody::Full(b) if &b[..] == b"\"hello from wasm\""),
        "{:?}",
        resp.body()
    );
    // A failure before the head is the same 502 as on the buffered path.
    let t = h.deploy("quicktrap", &guests::trap(), |_| {}).await;
    let resp = h
        .invoker
        .handle_http_stream(t, get())
        .await
        .expect("response");
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["x-amz-function-error"], "Unhandled");
}

#[tokio::test]
async fn a_guest_that_fails_mid_stream_cuts_the_body_short() {
    let h = Harness::new();
    let trap = h
        .deploy(
            "midtrap",
            &guests::stream_slowly(100, StreamEnd::Trap),
            |_| {},
        )
        .await;
    let hang = h
        .deploy(
            "midhang",
            &guests::stream_slowly(100, StreamEnd::Hang),
            |r| {
                r.config.timeout = 1;
            },
        )
        .await;
    for (f, why) in [(trap, "wasm trap"), (hang, "timed out")] {
        let resp = h
            .invoker
            .handle_http_stream(f.clone(), get())
            .await
            .expect("response");
        assert_eq!(resp.status(), 200, "the head was sent before the failure");
        let mut body = resp.into_body();
        assert_eq!(
            next_piece(&mut body).await,
            Some(Ok(Bytes::from_static(b"first\n")))
        );
        let cut = next_piece(&mut body).await;
        assert!(
            matches!(&cut, Some(Err(m)) if m.contains(why)),
            "{}: {cut:?}",
            f.config.name
        );
        let logs = h.logs(&f.config.name).await;
        assert!(
            logs.iter()
                .any(|l| l.contains("Status: error") || l.contains("timed out")),
            "{logs:?}"
        );
    }
    // The slots were given back.
    assert_eq!(h.invoker.stats().busy, 0);
}

#[tokio::test]
async fn a_reader_that_goes_away_does_not_stop_the_guest() {
    let h = Harness::new();
    let f = h
        .deploy(
            "gone",
            &guests::stream_slowly(200, StreamEnd::Finish),
            |_| {},
        )
        .await;
    let resp = h
        .invoker
        .handle_http_stream(f, get())
        .await
        .expect("response");
    drop(resp);
    // The guest still finishes, is logged, and gives its slot back.
    let t0 = Instant::now();
    while !h
        .logs("gone")
        .await
        .iter()
        .any(|l| l.starts_with("REPORT "))
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "no REPORT line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.invoker.stats().busy, 0);
}
