//! Integration tests of the process runtime: real child processes speaking the Runtime API,
//! with in-memory fakes of the code and log stores.
//!
//! Most functions are `provided.al2023` functions whose `bootstrap` is a small Python script
//! (stdlib `http.client`, run by `/usr/bin/python3`) that acts on the event's `action`.
//! Python and Node functions run the embedded bootstraps; those tests skip themselves while
//! the bootstraps are still placeholders.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gust_model::{FunctionConfig, FunctionRecord, LogEntry, LogStream};
use gust_runtime::{InvokeError, InvokeResponse, Invoker, ProcessInvoker, RuntimeConfig};
use gust_store::LogStore;
use serde_json::{json, Value};

mod common;
use common::{request, DirCode, MemLogs};

// ---------------------------------------------------------------------------------------
// Fakes and fixtures

/// The `provided` test runtime. `INIT_MODE` selects init behaviour; the event's `action` the
/// handler's.
const TEST_BOOTSTRAP: &str = r#"#!/usr/bin/python3 -S
import http.client, json, os, signal, sys, time
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
def call(method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r, r.read()
print("init line", flush=True)
mode = os.environ.get("INIT_MODE", "")
if mode == "error":
    call("POST", "/2018-06-01/runtime/init/error",
         json.dumps({"errorMessage": "bad import", "errorType": "Runtime.ImportModuleError"}),
         {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
    sys.exit(1)
if mode == "exit":
    sys.exit(3)
if mode == "slow":
    time.sleep(float(os.environ.get("INIT_SLEEP", "0.3")))
while True:
    r, body = call("GET", "/2018-06-01/runtime/invocation/next")
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    ev = json.loads(body) if body else {}
    act = ev.get("action", "echo") if isinstance(ev, dict) else "echo"
    out = b"{}"
    if act == "echo":
        out = json.dumps({"headers": {k.lower(): v for k, v in r.getheaders()}, "env": dict(os.environ),
                          "event": ev, "pid": os.getpid(), "cwd": os.getcwd()}).encode()
    elif act == "print":
        for line in ev["lines"]:
            print(line)
        sys.stderr.write("to stderr\n")
        sys.stdout.write("no newline at the end")
        sys.stdout.flush()
        sys.stderr.flush()
        out = b'"printed"'
    elif act == "sleep":
        time.sleep(ev["seconds"])
        out = b'"slept"'
    elif act == "loop":
        print("looping", flush=True)
        while True:
            pass
    elif act == "exit":
        os._exit(ev.get("code", 1))
    elif act == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif act == "alloc":
        chunks = []
        for _ in range(ev["mb"] // 8):
            chunks.append(b"x" * (8 << 20))
        out = b'"allocated"'
    elif act == "error":
        call("POST", "/2018-06-01/runtime/invocation/%s/error" % rid,
             json.dumps({"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []}),
             {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
        continue
    elif act == "error_text":
        call("POST", "/2018-06-01/runtime/invocation/%s/error" % rid, "plain text",
             {"Lambda-Runtime-Function-Error-Type": "Custom.Error"})
        continue
    elif act == "big":
        try:
            call("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, b'"' + b"a" * (7 << 20) + b'"')
        except Exception:
            conn.close()
            conn = http.client.HTTPConnection(host, int(port))
        continue
    elif act == "wrong_id":
        r2, b2 = call("POST", "/2018-06-01/runtime/invocation/not-the-id/response", b"{}")
        r3, b3 = call("GET", "/2018-06-01/runtime/nope")
        out = json.dumps({"status": r2.status, "body": b2.decode(), "unknown": r3.status}).encode()
    elif act == "tmp":
        p = os.path.join(os.environ["TMPDIR"], "f")
        existed = os.path.exists(p)
        open(p, "w").write("x")
        out = json.dumps({"existed": existed, "tmp": os.environ["TMPDIR"]}).encode()
    call("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, out)
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    code_root: PathBuf,
    work_dir: PathBuf,
    logs: Arc<MemLogs>,
    invoker: Arc<ProcessInvoker>,
}

fn config(work_dir: &Path) -> RuntimeConfig {
    RuntimeConfig {
        work_dir: work_dir.to_path_buf(),
        python: Some(PathBuf::from("/usr/bin/python3")),
        node: Some(PathBuf::from("/usr/bin/node")),
        max_concurrency: 8,
        idle_timeout: Duration::from_secs(60),
        platform_env: BTreeMap::from([
            (
                "AWS_ENDPOINT_URL".to_string(),
                "http://127.0.0.1:4566".to_string(),
            ),
            ("AWS_ACCESS_KEY_ID".to_string(), "test".to_string()),
            ("OVERRIDDEN".to_string(), "platform".to_string()),
        ]),
        region: "us-east-1".into(),
        sdk_dir: None,
    }
}

fn fixture_with(tweak: impl FnOnce(&mut RuntimeConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let code_root = dir.path().join("code");
    let work_dir = dir.path().join("work");
    std::fs::create_dir_all(&code_root).unwrap();
    let mut cfg = config(&work_dir);
    tweak(&mut cfg);
    let logs = Arc::new(MemLogs::default());
    let code = Arc::new(DirCode {
        root: code_root.clone(),
    });
    let invoker = ProcessInvoker::new(cfg, code, logs.clone()).unwrap();
    Fixture {
        _dir: dir,
        code_root,
        work_dir,
        logs,
        invoker,
    }
}

fn fixture() -> Fixture {
    fixture_with(|_| {})
}

impl Fixture {
    /// Writes a code directory with the given files (`bootstrap` made executable).
    fn code(&self, code_id: &str, files: &[(&str, &str)]) {
        let d = self.code_root.join(code_id);
        std::fs::create_dir_all(&d).unwrap();
        for (name, text) in files {
            let p = d.join(name);
            std::fs::write(&p, text).unwrap();
            if *name == "bootstrap" {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
    }

    /// A `provided` function running the test bootstrap.
    fn provided(&self, name: &str) -> FunctionRecord {
        self.code("testrt", &[("bootstrap", TEST_BOOTSTRAP)]);
        record(name, "provided.al2023", "testrt", "")
    }

    async fn invoke(
        &self,
        f: &FunctionRecord,
        event: Value,
    ) -> Result<InvokeResponse, InvokeError> {
        self.invoker.invoke(request(f, event)).await
    }

    async fn lines(&self, function: &str) -> Vec<LogEntry> {
        self.invoker.flush_logs().await;
        self.logs
            .read_logs(function, 0, usize::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.entry)
            .collect()
    }

    /// Shuts the invoker down and checks that nothing is left behind.
    async fn finish(self) {
        self.invoker.shutdown().await;
        let left: Vec<_> = std::fs::read_dir(self.work_dir.join("env"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(
            left.is_empty(),
            "environment directories left behind: {left:?}"
        );
    }

    /// Waits (bounded) until `cond` holds for the function's environment counts.
    async fn wait_envs(&self, name: &str, cond: impl Fn(gust_runtime::EnvironmentCounts) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let c = self.invoker.environments(name);
            if cond(c) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "environments of {name} never reached the state: {c:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn record(name: &str, runtime: &str, code_id: &str, handler: &str) -> FunctionRecord {
    let mut config = FunctionConfig::new(name, runtime, handler);
    config.timeout = 10;
    config.environment = BTreeMap::from([
        ("MY_VAR".to_string(), "mine".to_string()),
        ("OVERRIDDEN".to_string(), "user".to_string()),
        ("AWS_REGION".to_string(), "user-cannot-set-this".to_string()),
    ]);
    FunctionRecord {
        revision_id: "rev-1".into(),
        ..FunctionRecord::new(config, code_id)
    }
}

fn body(r: &InvokeResponse) -> Value {
    serde_json::from_slice(&r.payload)
        .unwrap_or_else(|e| panic!("not json ({e}): {:?}", String::from_utf8_lossy(&r.payload)))
}

// ---------------------------------------------------------------------------------------
// Round trips

#[tokio::test]
async fn round_trip_headers_and_environment() {
    let fx = fixture();
    let f = fx.provided("echo");
    let mut req = request(&f, json!({"hello": "world"}));
    req.client_context = Some("eyJjdXN0b20iOnt9fQ==".into());
    let id = req.request_id.clone();
    let before = gust_model::now_ms();
    let r = fx.invoker.invoke(req).await.unwrap();
    assert_eq!(
        r.function_error,
        None,
        "{:?}",
        String::from_utf8_lossy(&r.payload)
    );
    assert!(r.cold_start);
    let b = body(&r);
    assert_eq!(b["event"], json!({"hello": "world"}));
    let h = &b["headers"];
    assert_eq!(h["lambda-runtime-aws-request-id"], id.as_str());
    assert_eq!(
        h["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:echo"
    );
    assert_eq!(h["lambda-runtime-client-context"], "eyJjdXN0b20iOnt9fQ==");
    let deadline: i64 = h["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        deadline >= before + 9_000 && deadline <= gust_model::now_ms() + 10_000,
        "deadline {deadline}"
    );
    let trace = h["lambda-runtime-trace-id"].as_str().unwrap();
    assert!(
        trace.starts_with("Root=1-") && trace.ends_with(";Sampled=0") && trace.contains(";Parent="),
        "{trace}"
    );

    let env = b["env"].as_object().unwrap();
    let var = |k: &str| {
        env.get(k)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{k} missing: {env:?}"))
    };
    assert_eq!(var("MY_VAR"), "mine");
    assert_eq!(var("OVERRIDDEN"), "user");
    assert_eq!(var("AWS_ENDPOINT_URL"), "http://127.0.0.1:4566");
    assert_eq!(var("AWS_REGION"), "us-east-1");
    assert_eq!(var("AWS_DEFAULT_REGION"), "us-east-1");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_NAME"), "echo");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "128");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_VERSION"), "$LATEST");
    assert_eq!(var("AWS_LAMBDA_INITIALIZATION_TYPE"), "on-demand");
    assert_eq!(var("AWS_LAMBDA_LOG_GROUP_NAME"), "/aws/lambda/echo");
    let stream = var("AWS_LAMBDA_LOG_STREAM_NAME");
    assert!(
        stream.len() == "YYYY/MM/DD/[$LATEST]".len() + 32 && stream.contains("/[$LATEST]"),
        "{stream}"
    );
    assert!(var("AWS_LAMBDA_RUNTIME_API").starts_with("127.0.0.1:"));
    assert_eq!(
        var("LAMBDA_TASK_ROOT"),
        fx.code_root.join("testrt").to_str().unwrap()
    );
    assert_eq!(b["cwd"], fx.code_root.join("testrt").to_str().unwrap());
    assert_eq!(
        var("LAMBDA_RUNTIME_DIR"),
        fx.work_dir.join("bootstrap").to_str().unwrap()
    );
    assert_eq!(var("TZ"), ":UTC");
    assert_eq!(var("PATH"), "/usr/local/bin:/usr/bin:/bin");
    assert!(var("TMPDIR").starts_with(fx.work_dir.join("env").to_str().unwrap()));
    assert_eq!(var("HOME"), var("TMPDIR"));
    assert!(
        !env.contains_key("AWS_EXECUTION_ENV"),
        "provided runtimes have no AWS_EXECUTION_ENV"
    );
    assert!(!env.contains_key("CARGO"), "host variables must not leak");
    assert!(!env.contains_key("PYTHONPATH"));

    // Warm reuse: same process, not a cold start.
    let r2 = fx.invoke(&f, json!({})).await.unwrap();
    assert!(!r2.cold_start);
    assert_eq!(body(&r2)["pid"], b["pid"]);
    assert_eq!(fx.invoker.environments("echo").live, 1);
    fx.finish().await;
}

#[tokio::test]
async fn function_errors_pass_through() {
    let fx = fixture();
    let f = fx.provided("errors");
    let r = fx.invoke(&f, json!({"action": "error"})).await.unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        body(&r),
        json!({"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []})
    );
    let r = fx
        .invoke(&f, json!({"action": "error_text"}))
        .await
        .unwrap();
    assert_eq!(
        body(&r),
        json!({"errorMessage": "plain text", "errorType": "Custom.Error"})
    );
    // Errors are the handler's, not the environment's: it stays warm.
    let r = fx.invoke(&f, json!({"action": "wrong_id"})).await.unwrap();
    assert!(!r.cold_start);
    let b = body(&r);
    assert_eq!(b["status"], 400);
    assert!(b["body"].as_str().unwrap().contains("InvalidRequestID"));
    assert_eq!(b["unknown"], 404);
    fx.finish().await;
}

#[tokio::test]
async fn oversized_response_fails_the_invocation() {
    let fx = fixture();
    let f = fx.provided("big");
    let r = fx.invoke(&f, json!({"action": "big"})).await.unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body(&r)["errorType"], "Function.ResponseSizeTooLarge");
    assert_eq!(
        body(&r)["errorMessage"],
        "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
    );
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert_eq!(
        r.function_error,
        None,
        "{}",
        String::from_utf8_lossy(&r.payload)
    );
    fx.finish().await;
}

// ---------------------------------------------------------------------------------------
// Concurrency

#[tokio::test]
async fn reserved_concurrency_throttles() {
    let fx = fixture();
    let mut f = fx.provided("reserved");
    f.reserved_concurrency = Some(1);
    let (a, b) = tokio::join!(
        fx.invoke(&f, json!({"action": "sleep", "seconds": 0.5})),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            fx.invoke(&f, json!({"action": "sleep", "seconds": 0.5}))
                .await
        }
    );
    assert!(a.is_ok());
    match b {
        Err(InvokeError::Throttled { reason }) => {
            assert_eq!(reason, "ReservedFunctionConcurrentInvocationLimitExceeded")
        }
        other => panic!("expected throttling, got {other:?}"),
    }
    f.reserved_concurrency = Some(0);
    match fx.invoke(&f, json!({})).await {
        Err(InvokeError::Throttled { reason }) => {
            assert_eq!(reason, "ReservedFunctionConcurrentInvocationLimitExceeded")
        }
        other => panic!("expected throttling, got {other:?}"),
    }
    fx.finish().await;
}

#[tokio::test]
async fn global_limit_throttles() {
    let fx = fixture_with(|c| c.max_concurrency = 1);
    let f = fx.provided("g1");
    let g = fx.provided("g2");
    let (a, b) = tokio::join!(
        fx.invoke(&f, json!({"action": "sleep", "seconds": 0.5})),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            fx.invoke(&g, json!({})).await
        }
    );
    assert!(a.is_ok());
    assert!(
        matches!(
            b,
            Err(InvokeError::Throttled {
                reason: "ConcurrentInvocationLimitExceeded"
            })
        ),
        "{b:?}"
    );
    // With one slot, the idle environment of g1 is evicted to make room for g2.
    assert!(fx.invoke(&g, json!({})).await.is_ok());
    assert_eq!(fx.invoker.environments("g2").live, 1);
    fx.wait_envs("g1", |c| c.live == 0).await;
    fx.finish().await;
}

#[tokio::test]
async fn concurrent_invocations_get_separate_environments() {
    let fx = fixture();
    let f = fx.provided("parallel");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let invoker = fx.invoker.clone();
            let req = request(&f, json!({"action": "sleep", "seconds": 0.3}));
            tokio::spawn(async move { invoker.invoke(req).await })
        })
        .collect();
    for h in handles {
        let r = h.await.unwrap().unwrap();
        assert_eq!(r.function_error, None);
    }
    assert_eq!(fx.invoker.environments("parallel").idle, 4);
    fx.finish().await;
}

// ---------------------------------------------------------------------------------------
// Failures

#[tokio::test]
async fn timeout_kills_and_next_invoke_is_cold() {
    let fx = fixture();
    let mut f = fx.provided("slowpoke");
    f.config.timeout = 1;
    let warm = fx.invoke(&f, json!({})).await.unwrap();
    let first_pid = body(&warm)["pid"].clone();
    let mut req = request(&f, json!({"action": "loop"}));
    let id = req.request_id.clone();
    req.tail_log = true;
    let started = std::time::Instant::now();
    let r = fx.invoker.invoke(req).await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        std::str::from_utf8(&r.payload).unwrap(),
        format!(
            r#"{{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: {id} Error: Task timed out after 1.00 seconds"}}"#
        )
    );
    let tail = r.log_tail.unwrap();
    assert!(tail.contains("looping\n"), "{tail}");
    assert!(
        tail.contains(&format!(" {id} Task timed out after 1.00 seconds\n")),
        "{tail}"
    );
    assert!(tail.contains("Status: timeout"), "{tail}");
    let next = fx.invoke(&f, json!({})).await.unwrap();
    assert!(next.cold_start);
    assert_ne!(body(&next)["pid"], first_pid);
    fx.finish().await;
}

#[tokio::test]
async fn cold_start_init_has_its_own_limit() {
    // Init (1.5 s) longer than the function's timeout (1 s): Lambda gives init its own 10 s,
    // and the invocation's deadline runs from delivery.
    let fx = fixture();
    let mut f = fx.provided("slowinit");
    f.config.timeout = 1;
    f.config
        .environment
        .insert("INIT_MODE".into(), "slow".into());
    f.config
        .environment
        .insert("INIT_SLEEP".into(), "1.5".into());
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert_eq!(
        r.function_error,
        None,
        "{}",
        String::from_utf8_lossy(&r.payload)
    );
    assert!(r.cold_start);
    let b = body(&r);
    let deadline: i64 = b["headers"]["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let left = deadline - gust_model::now_ms();
    assert!(left > 500 && left <= 1000, "deadline {left} ms away");
    let tail = r.log_tail.clone().unwrap();
    assert!(tail.contains("Init Duration: 1"), "{tail}");
    assert!(!tail.contains("INIT_REPORT"), "{tail}");
    fx.finish().await;
}

#[tokio::test]
async fn init_overrunning_its_limit_continues_under_the_timeout() {
    let fx = fixture();
    fx.invoker.set_init_timeout(Duration::from_millis(300));
    let mut f = fx.provided("overrun");
    f.config.timeout = 1;
    f.config
        .environment
        .insert("INIT_MODE".into(), "slow".into());
    // Overruns the 0.3 s init limit but finishes within the 1 s that follow: the invocation
    // succeeds, its duration includes the rest of the init, and an INIT_REPORT records it.
    f.config
        .environment
        .insert("INIT_SLEEP".into(), "0.6".into());
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert_eq!(
        r.function_error,
        None,
        "{}",
        String::from_utf8_lossy(&r.payload)
    );
    assert!(r.duration >= Duration::from_millis(250), "{:?}", r.duration);
    let tail = r.log_tail.clone().unwrap();
    assert!(
        tail.contains("INIT_REPORT Init Duration: 3")
            && tail.contains("\tPhase: init\tStatus: timeout\n"),
        "{tail}"
    );
    let deadline: i64 = body(&r)["headers"]["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let left = deadline - gust_model::now_ms();
    assert!(
        left < 800,
        "deadline {left} ms away; the init's overrun counts"
    );

    // Overruns both: 0.3 s of init, then 1 s of timeout, while init needs 2 s.
    let mut g = fx.provided("overrun2");
    g.config.timeout = 1;
    g.config.environment = f.config.environment.clone();
    g.config.environment.insert("INIT_SLEEP".into(), "2".into());
    let started = std::time::Instant::now();
    let mut req = request(&g, json!({}));
    let id = req.request_id.clone();
    req.tail_log = true;
    let r = fx.invoker.invoke(req).await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1250) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert_eq!(
        std::str::from_utf8(&r.payload).unwrap(),
        format!(
            r#"{{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: {id} Error: Task timed out after 1.00 seconds"}}"#
        )
    );
    assert!(r.log_tail.unwrap().contains("Status: timeout"));
    fx.finish().await;
}

#[tokio::test]
async fn crash_mid_invocation_is_exit_error() {
    let fx = fixture();
    let f = fx.provided("crashy");
    let mut req = request(&f, json!({"action": "exit", "code": 1}));
    let id = req.request_id.clone();
    req.tail_log = true;
    let r = fx.invoker.invoke(req).await.unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        std::str::from_utf8(&r.payload).unwrap(),
        format!(
            r#"{{"errorType":"Runtime.ExitError","errorMessage":"RequestId: {id} Error: Runtime exited with error: exit status 1"}}"#
        )
    );
    let r = fx.invoke(&f, json!({"action": "segv"})).await.unwrap();
    assert!(body(&r)["errorMessage"]
        .as_str()
        .unwrap()
        .ends_with("Runtime exited with error: signal: segmentation fault"));
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert_eq!(r.function_error, None);
    assert!(r.cold_start);
    fx.finish().await;
}

#[tokio::test]
async fn init_failures() {
    let fx = fixture();
    let mut f = fx.provided("initerr");
    f.config
        .environment
        .insert("INIT_MODE".into(), "error".into());
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        body(&r),
        json!({"errorMessage": "bad import", "errorType": "Runtime.ImportModuleError"})
    );
    assert_eq!(fx.invoker.environments("initerr").idle, 0);

    let mut f = fx.provided("initexit");
    f.config
        .environment
        .insert("INIT_MODE".into(), "exit".into());
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert_eq!(body(&r)["errorType"], "Runtime.ExitError");
    assert!(body(&r)["errorMessage"]
        .as_str()
        .unwrap()
        .ends_with("Runtime exited with error: exit status 3"));

    fx.code("nobootstrap", &[("readme.txt", "no bootstrap here")]);
    let f = record("nobootstrap", "provided.al2", "nobootstrap", "");
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert_eq!(body(&r)["errorType"], "Runtime.InvalidEntrypoint");
    assert!(body(&r)["errorMessage"]
        .as_str()
        .unwrap()
        .contains("Couldn't find valid bootstrap(s)"));

    fx.code("notexec", &[("bootstrap.txt", "")]);
    std::fs::write(fx.code_root.join("notexec/bootstrap"), "#!/bin/sh\n").unwrap();
    let f = record("notexec", "provided", "notexec", "");
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert!(body(&r)["errorMessage"]
        .as_str()
        .unwrap()
        .ends_with("bootstrap: permission denied"));
    fx.finish().await;
}

#[tokio::test]
async fn missing_interpreter_is_runtime_unavailable() {
    let fx = fixture_with(|c| {
        c.python = None;
        c.node = Some(PathBuf::from("/nonexistent/node"));
    });
    fx.code("py", &[("app.py", "def handler(e, c): return 1\n")]);
    let r = fx
        .invoke(&record("py", "python3.12", "py", "app.handler"), json!({}))
        .await;
    match r {
        Err(InvokeError::RuntimeUnavailable(m)) => assert!(m.contains("--python"), "{m}"),
        other => panic!("{other:?}"),
    }
    let r = fx
        .invoke(&record("js", "nodejs20.x", "py", "app.handler"), json!({}))
        .await;
    match r {
        Err(InvokeError::RuntimeUnavailable(m)) => assert!(m.contains("--node"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fx.invoker.environments("js").busy, 0);
    fx.finish().await;
}

#[tokio::test]
async fn out_of_memory_is_reported_and_platform_survives() {
    let fx = fixture();
    let f = fx.provided("hungry");
    let small = fx
        .invoke(&f, json!({"action": "alloc", "mb": 16}))
        .await
        .unwrap();
    assert_eq!(small.function_error, None);
    let tail = small.log_tail.unwrap();
    let used: u64 = tail
        .split("Max Memory Used: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(
        (16..128).contains(&used),
        "max memory used {used} MB: {tail}"
    );
    let mut req = request(&f, json!({"action": "alloc", "mb": 400}));
    let id = req.request_id.clone();
    req.tail_log = true;
    let r = fx.invoker.invoke(req).await.unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        std::str::from_utf8(&r.payload).unwrap(),
        format!(
            r#"{{"errorType":"Runtime.OutOfMemory","errorMessage":"RequestId: {id} Error: Runtime exited with error: signal: killed"}}"#
        )
    );
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert_eq!(r.function_error, None);
    fx.finish().await;
}

// ---------------------------------------------------------------------------------------
// Pool life cycle

#[tokio::test]
async fn idle_environments_are_reaped() {
    let fx = fixture_with(|c| c.idle_timeout = Duration::from_millis(200));
    let f = fx.provided("reaped");
    let r = fx.invoke(&f, json!({"action": "tmp"})).await.unwrap();
    let tmp = PathBuf::from(body(&r)["tmp"].as_str().unwrap());
    assert!(tmp.join("f").exists());
    assert_eq!(fx.invoker.environments("reaped").idle, 1);
    fx.wait_envs("reaped", |c| c.live == 0).await;
    // The private /tmp goes with the environment (removed by the janitor right after).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while tmp.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!tmp.exists());
    let r = fx.invoke(&f, json!({"action": "tmp"})).await.unwrap();
    assert!(r.cold_start);
    assert_eq!(body(&r)["existed"], false);
    fx.finish().await;
}

#[tokio::test]
async fn provisioned_environments_start_before_invokes() {
    let fx = fixture();
    let mut f = fx.provided("prov");
    f.provisioned_concurrency = 2;
    fx.invoker
        .function_changed("prov", Some(Arc::new(f.clone())))
        .await;
    fx.wait_envs("prov", |c| c.idle == 2).await;
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert!(!r.cold_start);
    assert_eq!(
        body(&r)["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "provisioned-concurrency"
    );
    assert!(!r.log_tail.as_deref().unwrap().contains("Init Duration"));

    // A provisioned environment that dies is replaced.
    let crashed = fx.invoke(&f, json!({"action": "exit"})).await.unwrap();
    assert_eq!(body(&crashed)["errorType"], "Runtime.ExitError");
    fx.wait_envs("prov", |c| c.idle == 2 && c.live == 2).await;

    // A new revision drains the old environments and provisions new ones.
    let old_pid = body(&r)["pid"].clone();
    let mut g = f.clone();
    g.code_id = "testrt2".into();
    g.revision_id = "rev-2".into();
    fx.code("testrt2", &[("bootstrap", TEST_BOOTSTRAP)]);
    fx.invoker
        .function_changed("prov", Some(Arc::new(g.clone())))
        .await;
    fx.wait_envs("prov", |c| c.idle == 2 && c.live == 2).await;
    let r = fx.invoke(&g, json!({})).await.unwrap();
    assert!(!r.cold_start);
    assert_ne!(body(&r)["pid"], old_pid);
    assert!(body(&r)["env"]["LAMBDA_TASK_ROOT"]
        .as_str()
        .unwrap()
        .ends_with("testrt2"));

    fx.invoker.function_changed("prov", None).await;
    fx.wait_envs("prov", |c| c.live == 0).await;
    fx.finish().await;
}

#[tokio::test]
async fn changed_function_drains_busy_environment_after_its_invocation() {
    let fx = fixture();
    let f = fx.provided("drain");
    let (a, ()) = tokio::join!(
        fx.invoke(&f, json!({"action": "sleep", "seconds": 0.4})),
        async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let mut g = f.clone();
            g.revision_id = "rev-2".into();
            fx.invoker
                .function_changed("drain", Some(Arc::new(g)))
                .await;
        }
    );
    assert_eq!(a.unwrap().function_error, None);
    fx.wait_envs("drain", |c| c.live == 0).await;
    fx.finish().await;
}

// ---------------------------------------------------------------------------------------
// Logs

#[tokio::test]
async fn logs_are_stored_and_tailed() {
    let fx = fixture();
    let f = fx.provided("logger");
    let mut req = request(
        &f,
        json!({"action": "print", "lines": ["first line", "second line"]}),
    );
    let id = req.request_id.clone();
    req.tail_log = true;
    let r = fx.invoker.invoke(req).await.unwrap();
    let tail = r.log_tail.unwrap();
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines[0], format!("START RequestId: {id} Version: $LATEST"));
    for want in [
        "first line",
        "second line",
        "to stderr",
        "no newline at the end",
    ] {
        assert!(lines.contains(&want), "{want:?} missing from tail: {tail}");
    }
    assert_eq!(lines[lines.len() - 2], format!("END RequestId: {id}"));
    let report = lines[lines.len() - 1];
    assert!(
        report.starts_with(&format!("REPORT RequestId: {id}\tDuration: ")),
        "{report}"
    );
    assert!(
        report.contains("\tBilled Duration: ")
            && report.contains("\tMemory Size: 128 MB\tMax Memory Used: ")
    );
    assert!(
        report.contains("\tInit Duration: "),
        "cold start reports init: {report}"
    );

    let stored = fx.lines("logger").await;
    let of_req: Vec<&LogEntry> = stored.iter().filter(|l| l.request_id == id).collect();
    assert!(of_req
        .iter()
        .any(|l| l.message == "first line" && l.stream == LogStream::Stdout));
    assert!(of_req
        .iter()
        .any(|l| l.message == "to stderr" && l.stream == LogStream::Stderr));
    assert!(of_req
        .iter()
        .any(|l| l.message.starts_with("REPORT") && l.stream == LogStream::Platform));
    let pos = |m: &str| {
        of_req
            .iter()
            .position(|l| l.message.starts_with(m))
            .unwrap()
    };
    assert!(
        pos("START") < pos("first line")
            && pos("second line") < pos("END")
            && pos("END") < pos("REPORT")
    );
    assert!(stored
        .iter()
        .any(|l| l.message == "init line" && l.request_id.is_empty()));

    // Warm: no Init Duration, and the tail holds only this invocation.
    let mut req = request(&f, json!({"action": "print", "lines": ["warm"]}));
    req.tail_log = true;
    let tail = fx.invoker.invoke(req).await.unwrap().log_tail.unwrap();
    assert!(
        !tail.contains("Init Duration") && !tail.contains("first line") && tail.contains("warm\n"),
        "{tail}"
    );
    fx.finish().await;
}

#[tokio::test]
async fn tail_is_capped_at_4kb() {
    let fx = fixture();
    let f = fx.provided("chatty");
    let lines: Vec<String> = (0..500).map(|i| format!("line number {i:04}")).collect();
    let r = fx
        .invoke(&f, json!({"action": "print", "lines": lines}))
        .await
        .unwrap();
    let tail = r.log_tail.unwrap();
    assert!(tail.len() <= 4096 && tail.len() > 3000, "{}", tail.len());
    assert!(tail.contains("line number 0499\n") && tail.contains("REPORT RequestId"));
    fx.finish().await;
}

// ---------------------------------------------------------------------------------------
// Shutdown

#[tokio::test]
async fn shutdown_waits_for_in_flight_invocations() {
    let fx = fixture();
    let f = fx.provided("inflight");
    let warm = fx.invoke(&f, json!({})).await.unwrap();
    let tmp = PathBuf::from(body(&warm)["env"]["TMPDIR"].as_str().unwrap());
    let invoker = fx.invoker.clone();
    let f2 = f.clone();
    let running = tokio::spawn(async move {
        invoker
            .invoke(request(&f2, json!({"action": "sleep", "seconds": 0.5})))
            .await
    });
    fx.wait_envs("inflight", |c| c.busy == 1).await;
    let started = std::time::Instant::now();
    fx.invoker.shutdown().await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "shutdown returned before the invocation ended"
    );
    let r = running.await.unwrap().unwrap();
    assert_eq!(body(&r), json!("slept"));
    assert!(matches!(
        fx.invoke(&f, json!({})).await,
        Err(InvokeError::ShuttingDown)
    ));
    assert_eq!(fx.invoker.environments("inflight").live, 0);
    assert!(
        !tmp.exists(),
        "environment directories are removed at shutdown"
    );
    let leftover = std::fs::read_dir(fx.work_dir.join("env")).unwrap().count();
    assert_eq!(leftover, 0);
}

// ---------------------------------------------------------------------------------------
// Managed runtimes (need the embedded bootstraps)

fn bootstrap_ready(path: &str) -> bool {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_default();
    text.contains("AWS_LAMBDA_RUNTIME_API")
}

#[tokio::test]
async fn python_function_round_trip() {
    if !bootstrap_ready("bootstrap/python/bootstrap.py") {
        eprintln!("SKIPPED: bootstrap.py is still a placeholder");
        return;
    }
    let fx = fixture();
    fx.code(
        "pyapp",
        &[(
            "app.py",
            "import os\nprint('module loaded')\ndef handler(event, context):\n    print('handling', event['n'])\n    return {'n': event['n'] + 1, 'rid': context.aws_request_id, 'exec': os.environ['AWS_EXECUTION_ENV'], 'pp': os.environ['PYTHONPATH']}\n",
        )],
    );
    let f = record("pyfn", "python3.12", "pyapp", "app.handler");
    let mut req = request(&f, json!({"n": 41}));
    req.tail_log = true;
    let id = req.request_id.clone();
    let r = fx.invoker.invoke(req).await.unwrap();
    assert_eq!(
        r.function_error,
        None,
        "{}",
        String::from_utf8_lossy(&r.payload)
    );
    let b = body(&r);
    assert_eq!(b["n"], 42);
    assert_eq!(b["rid"], id.as_str());
    assert_eq!(b["exec"], "AWS_Lambda_python3.12");
    assert_eq!(b["pp"], fx.code_root.join("pyapp").to_str().unwrap());
    assert!(r.log_tail.unwrap().contains("handling"));
    let r = fx.invoke(&f, json!({"n": 1})).await.unwrap();
    assert!(!r.cold_start);
    fx.finish().await;
}

#[tokio::test]
async fn node_function_round_trip() {
    if !bootstrap_ready("bootstrap/node/bootstrap.js") {
        eprintln!("SKIPPED: bootstrap.js is still a placeholder");
        return;
    }
    let fx = fixture();
    fx.code(
        "jsapp",
        &[(
            "index.js",
            "exports.handler = async (event, context) => { console.log('handling', event.n); return { n: event.n + 1, rid: context.awsRequestId, exec: process.env.AWS_EXECUTION_ENV }; };\n",
        )],
    );
    let f = record("jsfn", "nodejs20.x", "jsapp", "index.handler");
    let mut req = request(&f, json!({"n": 41}));
    req.tail_log = true;
    let id = req.request_id.clone();
    let r = fx.invoker.invoke(req).await.unwrap();
    assert_eq!(
        r.function_error,
        None,
        "{}",
        String::from_utf8_lossy(&r.payload)
    );
    let b = body(&r);
    assert_eq!(b["n"], 42);
    assert_eq!(b["rid"], id.as_str());
    assert_eq!(b["exec"], "AWS_Lambda_nodejs20.x");
    assert!(r.log_tail.unwrap().contains("handling"));
    fx.finish().await;
}

// ---------------------------------------------------------------------------------------
// Measurements (run with `cargo test -p gust-runtime --release --test process -- --ignored --nocapture`)

/// A no-op custom runtime on raw sockets (`http.client` alone costs ~38 ms of imports), so the
/// numbers show Gust's share rather than the test runtime's.
const RAW_BOOTSTRAP: &str = r#"#!/usr/bin/python3 -S
import os, socket
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
s = socket.create_connection((host, int(port)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
def req(data):
    s.sendall(data)
    f.readline()
    h = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.partition(b":")
        h[k.strip().lower()] = v.strip()
    n = int(h.get(b"content-length", b"0"))
    return h, (f.read(n) if n else b"")
while True:
    h, body = req(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
    rid = h[b"lambda-runtime-aws-request-id"]
    req(b"POST /2018-06-01/runtime/invocation/" + rid + b"/response HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
"#;

/// Nanoseconds on CPU (scheduler statistics, all threads) of this process and of its child
/// processes (the environments).
fn cpu_ns() -> (u64, u64) {
    fn threads(pid: &str) -> u64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return 0;
        };
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }
    let me = std::process::id().to_string();
    let mut children = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid == Some(me.as_str()) {
            children += threads(&name);
        }
    }
    (threads("self"), children)
}

fn percentiles(v: &mut [Duration]) -> String {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    format!(
        "p50 {:.3} ms, p99 {:.3} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    )
}

async fn bench_function(fx: &Fixture, f: &FunctionRecord, label: &str) {
    let mut cold = Vec::new();
    for i in 0..20 {
        let mut g = f.clone();
        g.config.name = format!("{}-cold{i}", f.config.name);
        let t = std::time::Instant::now();
        let r = fx.invoke(&g, json!({"action": "noop"})).await.unwrap();
        assert!(
            r.cold_start && r.function_error.is_none(),
            "{}",
            String::from_utf8_lossy(&r.payload)
        );
        cold.push(t.elapsed());
        fx.invoker.function_changed(&g.config.name, None).await;
    }
    let mut warm = Vec::new();
    let mut inside = Vec::new();
    let mut overhead = Vec::new();
    fx.invoke(f, json!({"action": "noop"})).await.unwrap();
    let n = 2000;
    let cpu_before = cpu_ns();
    for _ in 0..n {
        let mut req = request(f, json!({"action": "noop"}));
        req.tail_log = false;
        let t = std::time::Instant::now();
        let r = fx.invoker.invoke(req).await.unwrap();
        let total = t.elapsed();
        warm.push(total);
        inside.push(r.duration);
        overhead.push(total.saturating_sub(r.duration));
    }
    let cpu_after = cpu_ns();
    let per = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / 1e3 / f64::from(n);
    eprintln!(
        "{label}: CPU per warm invoke: this process (invoker + test) {:.1} µs, environments {:.1} µs",
        per(cpu_before.0, cpu_after.0),
        per(cpu_before.1, cpu_after.1)
    );
    eprintln!("{label}: cold start end to end {}", percentiles(&mut cold));
    eprintln!("{label}: warm invoke end to end {}", percentiles(&mut warm));
    eprintln!(
        "{label}:   of which next->response (runtime + HTTP hop) {}",
        percentiles(&mut inside)
    );
    eprintln!(
        "{label}:   Gust's own time (end to end minus next->response) {}",
        percentiles(&mut overhead)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; prints numbers"]
async fn bench_warm_and_cold() {
    let fx = fixture();
    fx.code("raw", &[("bootstrap", RAW_BOOTSTRAP)]);
    bench_function(
        &fx,
        &record("raw", "provided.al2023", "raw", ""),
        "provided (raw-socket python -S)",
    )
    .await;
    if bootstrap_ready("bootstrap/python/bootstrap.py") {
        fx.code(
            "pyhello",
            &[(
                "app.py",
                "def handler(event, context):\n    return {'ok': True}\n",
            )],
        );
        bench_function(
            &fx,
            &record("pyhello", "python3.12", "pyhello", "app.handler"),
            "python3.12 hello",
        )
        .await;
    }
    if bootstrap_ready("bootstrap/node/bootstrap.js") {
        fx.code(
            "jshello",
            &[(
                "index.js",
                "exports.handler = async () => ({ ok: true });\n",
            )],
        );
        bench_function(
            &fx,
            &record("jshello", "nodejs20.x", "jshello", "index.handler"),
            "nodejs20.x hello",
        )
        .await;
    }
}

#[tokio::test]
async fn sdk_dir_is_importable_after_the_functions_own_code() {
    let sdk = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(sdk.path().join("python")).unwrap();
    std::fs::write(
        sdk.path().join("python/platform_sdk.py"),
        "WHO = 'platform'\n",
    )
    .unwrap();
    std::fs::write(sdk.path().join("python/bundled.py"), "WHO = 'platform'\n").unwrap();
    let nm = sdk.path().join("node/node_modules/platform-sdk");
    std::fs::create_dir_all(&nm).unwrap();
    std::fs::write(nm.join("index.js"), "module.exports = 'platform';\n").unwrap();
    let sdk_path = sdk.path().to_path_buf();
    let fx = fixture_with(move |c| c.sdk_dir = Some(sdk_path));

    // Python: the SDK dir is on sys.path, but a module the function bundles wins.
    fx.code(
        "py-sdk",
        &[
            ("bundled.py", "WHO = 'function'\n"),
            (
                "app.py",
                "import platform_sdk, bundled\n\
                 def handler(event, context):\n    return [platform_sdk.WHO, bundled.WHO]\n",
            ),
        ],
    );
    let f = record("py-sdk", "python3.11", "py-sdk", "app.handler");
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert_eq!(
        r.function_error,
        None,
        "{}",
        String::from_utf8_lossy(&r.payload)
    );
    assert_eq!(body(&r), json!(["platform", "function"]));

    // Node: require() finds packages in the SDK's node_modules.
    fx.code(
        "node-sdk",
        &[(
            "index.js",
            "exports.handler = async () => require('platform-sdk');\n",
        )],
    );
    let f = record("node-sdk", "nodejs20.x", "node-sdk", "index.handler");
    let r = fx.invoke(&f, json!({})).await.unwrap();
    assert_eq!(
        r.function_error,
        None,
        "{}",
        String::from_utf8_lossy(&r.payload)
    );
    assert_eq!(body(&r), json!("platform"));
    fx.finish().await;
}
