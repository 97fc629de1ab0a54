//! The gateway over real sockets: a real SQLite store, the process runtime running Python and
//! Node functions (`/usr/bin/python3`, `/usr/bin/node`), the Wasm executor running a
//! `wasi:http` component, and reqwest as the client.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use gust_aws::sigv4::{Credentials, SigningParams};
use gust_gateway::{Gateway, GatewayConfig, GatewayDeps};
use gust_model::{
    ApiDefinition, CorsConfig, FunctionConfig, FunctionRecord, FunctionUrlConfig, MockResponse,
    PayloadFormat, RouteSpec,
};
use gust_runtime::{Invoker, ProcessInvoker, RoutingInvoker, RuntimeConfig};
use gust_store::{ApiStore, CodeStore, FunctionStore, SqliteStore, StoreOptions};
use gust_wasm::{WasmConfig, WasmInvoker};
use serde_json::Value;

const PY_APP: &str = r#"
import base64, json, time

def handler(event, context):
    qs = event.get("queryStringParameters") or {}
    mode = qs.get("mode", "echo")
    v2 = event.get("version") == "2.0"
    if mode == "echo":
        return {"statusCode": 200, "headers": {"content-type": "application/json", "x-echo": "1"},
                "body": json.dumps({"event": event, "request_id": context.aws_request_id})}
    if mode == "string":
        return "plain string"
    if mode == "object":
        return {"hello": "world"}
    if mode == "malformed":
        return {"statusCode": "not a number"} if v2 else {"body": "no status code"}
    if mode == "raise":
        raise RuntimeError("boom")
    if mode == "sleep":
        time.sleep(float(qs.get("s", "2")))
        return {"statusCode": 200, "body": "slept"}
    if mode == "cookies":
        if v2:
            return {"statusCode": 200, "cookies": ["a=1", "b=2; Path=/"], "body": "ok"}
        return {"statusCode": 200, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2; Path=/"]},
                "body": "ok"}
    if mode == "binary":
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if mode == "cors":
        return {"statusCode": 201, "headers": {"access-control-allow-origin": "https://evil.example"},
                "body": "created"}
    return {"statusCode": 400, "body": "unknown mode"}
"#;

const NODE_APP: &str = r#"
exports.handler = async (event, context) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ event, request_id: context.awsRequestId, runtime: "node" }),
});
"#;

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    invoker: Arc<RoutingInvoker>,
    base: String,
    addr: SocketAddr,
    client: reqwest::Client,
    creds: Credentials,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
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

fn wasm_guest(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../wasm/tests/guests/built")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn record(name: &str, runtime: &str, handler: &str, code_id: &str) -> FunctionRecord {
    let mut config = FunctionConfig::new(name, runtime, handler);
    config.timeout = 10;
    FunctionRecord {
        revision_id: "rev-1".into(),
        ..FunctionRecord::new(config, code_id)
    }
}

fn api(name: &str, format: PayloadFormat, routes: &[(&str, &str)]) -> ApiDefinition {
    ApiDefinition {
        schema_version: 1,
        name: name.into(),
        payload_format: format,
        stage: None,
        domains: vec![],
        cors: None,
        integration_timeout_ms: 29_000,
        stage_variables: BTreeMap::new(),
        routes: routes
            .iter()
            .map(|(k, f)| RouteSpec {
                route_key: k.to_string(),
                function: f.to_string(),
                mock: None,
            })
            .collect(),
        last_modified: String::new(),
    }
}

fn mock(key: &str, status: u16, body: &str) -> RouteSpec {
    RouteSpec {
        route_key: key.into(),
        function: String::new(),
        mock: Some(MockResponse {
            status,
            headers: BTreeMap::from([("content-type".to_string(), "text/plain".to_string())]),
            body: body.into(),
        }),
    }
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path(), StoreOptions::default()).unwrap());
        let runtime = RuntimeConfig {
            work_dir: dir.path().join("run"),
            python: Some(PathBuf::from("/usr/bin/python3")),
            node: Some(PathBuf::from("/usr/bin/node")),
            max_concurrency: 16,
            idle_timeout: Duration::from_secs(60),
            platform_env: BTreeMap::new(),
            region: "us-east-1".into(),
            sdk_dir: None,
        };
        let process = ProcessInvoker::new(runtime, store.clone(), store.clone()).unwrap();
        let mut wasm_config = WasmConfig::new(dir.path().join("wasm-cache"));
        wasm_config.max_concurrency = 8;
        wasm_config.pool.instances = 16;
        wasm_config.pool.memories = 16;
        wasm_config.pool.tables = 16;
        let wasm = WasmInvoker::new(wasm_config, store.clone(), store.clone()).unwrap();
        let invoker = RoutingInvoker::new(process, wasm.clone());
        let creds = Credentials {
            access_key_id: "AKIDGATEWAYTEST".into(),
            secret_access_key: "gateway-test-secret".into(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let gateway = Gateway::new(
            GatewayConfig::new("us-east-1", base.clone()),
            GatewayDeps {
                apis: store.clone(),
                functions: store.clone(),
                invoker: invoker.clone(),
                http: wasm,
                credentials: Arc::new(creds.clone()),
            },
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(gateway.serve(listener, async move {
            let _ = stopped.await;
        }));
        Harness {
            _dir: dir,
            store,
            invoker,
            base,
            addr,
            client: reqwest::Client::new(),
            creds,
            stop: Some(stop),
            served: Some(served),
        }
    }

    async fn deploy(
        &self,
        name: &str,
        runtime: &str,
        handler: &str,
        files: &[(&str, &[u8])],
        tweak: impl FnOnce(&mut FunctionRecord),
    ) {
        let code_id = self
            .store
            .put_code(&zip_of(files), 250 << 20)
            .await
            .unwrap();
        let mut r = record(name, runtime, handler, &code_id);
        tweak(&mut r);
        self.store.put_function(&r).await.unwrap();
        self.invoker.function_changed(name, Some(Arc::new(r))).await;
    }

    async fn python(&self, name: &str) {
        self.deploy(
            name,
            "python3.11",
            "app.handler",
            &[("app.py", PY_APP.as_bytes())],
            |_| {},
        )
        .await;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get_json(
        &self,
        path: &str,
    ) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, v)
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(20), h)
                .await
                .expect("serve returns after shutdown")
                .unwrap()
                .unwrap();
        }
        self.invoker.shutdown().await;
    }
}

/// Writes `request` on a fresh connection (from a task, so a server that answers early does
/// not block us) and reads one response: head and a `content-length` body.
async fn raw_exchange(addr: SocketAddr, request: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&request).await;
        wr
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), rd.read(&mut chunk))
            .await
            .expect("response in time")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
    }
    writer.abort();
    String::from_utf8_lossy(&buf).to_string()
}

async fn text(r: reqwest::Response) -> (u16, reqwest::header::HeaderMap, String) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_v2_events_and_responses() {
    let h = Harness::start().await;
    h.python("py").await;
    h.deploy(
        "node",
        "nodejs20.x",
        "index.handler",
        &[("index.js", NODE_APP.as_bytes())],
        |_| {},
    )
    .await;
    let mut def = api(
        "v2api",
        PayloadFormat::V2,
        &[
            ("GET /items/{id}", "py"),
            ("POST /upload", "py"),
            ("GET /modes", "py"),
            ("ANY /node/{proxy+}", "node"),
        ],
    );
    def.stage_variables = BTreeMap::from([("env".to_string(), "test".to_string())]);
    h.store.put_api(&def).await.unwrap();

    // Path parameters (decoded), repeated query keys, cookies, request ids.
    let r = h
        .client
        .get(h.url("/items/a%20b?x=1&x=2&y=z%21&empty="))
        .header("cookie", "c1=v1; c2=v2")
        .header("x-multi", "a")
        .header("user-agent", "gateway-test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["apigw-requestid"].to_str().unwrap().to_string();
    assert_eq!(r.headers()["x-echo"], "1");
    let body: Value = r.json().await.unwrap();
    let ev = &body["event"];
    assert_eq!(body["request_id"], rid.as_str());
    assert_eq!(ev["version"], "2.0");
    assert_eq!(ev["routeKey"], "GET /items/{id}");
    assert_eq!(ev["rawPath"], "/items/a%20b");
    assert_eq!(ev["rawQueryString"], "x=1&x=2&y=z%21&empty=");
    assert_eq!(ev["queryStringParameters"]["x"], "1,2");
    assert_eq!(ev["queryStringParameters"]["y"], "z!");
    assert_eq!(ev["queryStringParameters"]["empty"], "");
    assert_eq!(ev["pathParameters"]["id"], "a b");
    assert_eq!(ev["cookies"], serde_json::json!(["c1=v1", "c2=v2"]));
    assert!(ev["headers"].get("cookie").is_none());
    assert_eq!(ev["headers"]["x-multi"], "a");
    assert_eq!(ev["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(ev["headers"]["x-forwarded-proto"], "http");
    assert_eq!(ev["stageVariables"]["env"], "test");
    assert_eq!(ev["isBase64Encoded"], false);
    assert!(ev.get("body").is_none());
    let ctx = &ev["requestContext"];
    assert_eq!(ctx["requestId"], rid.as_str());
    assert_eq!(ctx["accountId"], "000000000000");
    assert_eq!(ctx["apiId"], "v2api");
    assert_eq!(ctx["stage"], "$default");
    assert_eq!(ctx["domainName"], "127.0.0.1");
    assert_eq!(ctx["http"]["method"], "GET");
    assert_eq!(ctx["http"]["path"], "/items/a%20b");
    assert_eq!(ctx["http"]["protocol"], "HTTP/1.1");
    assert_eq!(ctx["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["http"]["userAgent"], "gateway-test");
    assert!(ctx["timeEpoch"].as_i64().unwrap() > 1_600_000_000_000);
    assert!(ctx["time"].as_str().unwrap().ends_with(" +0000"));

    // Binary request bodies arrive base64-encoded; text bodies as they are.
    let bytes: Vec<u8> = (0..=255u8).collect();
    let r = h
        .client
        .post(h.url("/upload"))
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["event"]["isBase64Encoded"], true);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(body["event"]["body"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, bytes);
    let r = h
        .client
        .post(h.url("/upload"))
        .header("content-type", "application/json")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["event"]["isBase64Encoded"], false);
    assert_eq!(body["event"]["body"], r#"{"a":1}"#);

    // Response shortcuts, cookies and binary responses.
    let (s, hd, t) = text(
        h.client
            .get(h.url("/modes?mode=string"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, t.as_str()), (200, "plain string"));
    assert_eq!(hd["content-type"], "application/json");
    let (s, _, t) = text(
        h.client
            .get(h.url("/modes?mode=object"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(serde_json::from_str::<Value>(&t).unwrap()["hello"], "world");
    let r = h
        .client
        .get(h.url("/modes?mode=cookies"))
        .send()
        .await
        .unwrap();
    let cookies: Vec<_> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(cookies, vec!["a=1", "b=2; Path=/"]);
    let r = h
        .client
        .get(h.url("/modes?mode=binary"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);

    // A Node function behind a greedy route.
    let r = h
        .client
        .put(h.url("/node/a/b%2Fc"))
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["runtime"], "node");
    assert_eq!(body["event"]["routeKey"], "ANY /node/{proxy+}");
    assert_eq!(body["event"]["pathParameters"]["proxy"], "a/b/c");
    assert_eq!(body["event"]["requestContext"]["http"]["method"], "PUT");
    assert_eq!(body["event"]["body"], "hi");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_v1_events_and_responses() {
    let h = Harness::start().await;
    h.python("py").await;
    let mut def = api(
        "restapi",
        PayloadFormat::V1,
        &[
            ("GET /items/{id}", "py"),
            ("POST /upload", "py"),
            ("GET /modes", "py"),
        ],
    );
    def.stage = Some("prod".into());
    h.store.put_api(&def).await.unwrap();

    let r = h
        .client
        .get(h.url("/prod/items/42?x=1&x=2"))
        .header("cookie", "c1=v1")
        .header("x-multi", "a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-amzn-requestid"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(r.headers().get("apigw-requestid").is_none());
    let body: Value = r.json().await.unwrap();
    let ev = &body["event"];
    assert_eq!(body["request_id"], rid.as_str());
    assert_eq!(ev["version"], "1.0");
    assert_eq!(ev["resource"], "/items/{id}");
    assert_eq!(ev["path"], "/items/42");
    assert_eq!(ev["httpMethod"], "GET");
    assert_eq!(ev["queryStringParameters"]["x"], "2");
    assert_eq!(
        ev["multiValueQueryStringParameters"]["x"],
        serde_json::json!(["1", "2"])
    );
    assert_eq!(ev["headers"]["Cookie"], "c1=v1");
    assert_eq!(ev["headers"]["X-Multi"], "a");
    assert_eq!(ev["multiValueHeaders"]["X-Multi"], serde_json::json!(["a"]));
    assert_eq!(ev["pathParameters"]["id"], "42");
    assert_eq!(ev["stageVariables"], Value::Null);
    assert_eq!(ev["body"], Value::Null);
    assert_eq!(ev["isBase64Encoded"], false);
    let ctx = &ev["requestContext"];
    assert_eq!(ctx["requestId"], rid.as_str());
    assert_eq!(ctx["stage"], "prod");
    assert_eq!(ctx["path"], "/prod/items/42");
    assert_eq!(ctx["resourcePath"], "/items/{id}");
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["httpMethod"], "GET");

    // No query string: null, as REST APIs send it.
    let (_, _, v) = h.get_json("/prod/items/1").await;
    assert_eq!(v["event"]["queryStringParameters"], Value::Null);
    assert_eq!(v["event"]["multiValueQueryStringParameters"], Value::Null);

    // Binary body.
    let r = h
        .client
        .post(h.url("/prod/upload"))
        .header("content-type", "image/png")
        .body(vec![0u8, 159, 146, 150])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["event"]["isBase64Encoded"], true);
    assert_eq!(v["event"]["body"], "AJ+Slg==");

    // multiValueHeaders in the result, and REST's strictness and wording.
    let r = h
        .client
        .get(h.url("/prod/modes?mode=cookies"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
    let (s, _, t) = text(
        h.client
            .get(h.url("/prod/modes?mode=string"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, t.as_str()),
        (502, r#"{"message": "Internal server error"}"#)
    );
    let (s, _, t) = text(
        h.client
            .get(h.url("/prod/modes?mode=malformed"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, t.as_str()),
        (502, r#"{"message": "Internal server error"}"#)
    );

    // Outside the stage there is nothing.
    let (s, _, t) = text(h.client.get(h.url("/items/42")).send().await.unwrap()).await;
    assert_eq!((s, t.as_str()), (404, r#"{"message":"Not Found"}"#));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_precedence_hosts_and_mocks() {
    let h = Harness::start().await;
    let mut a = api("main", PayloadFormat::V2, &[]);
    a.routes = vec![
        mock("GET /users/me", 200, "literal"),
        mock("GET /users/{id}", 200, "param"),
        mock("ANY /users/{id}", 200, "any-param"),
        mock("GET /users/{id}/{rest+}", 200, "param-greedy"),
        mock("ANY /{proxy+}", 200, "greedy"),
        mock("GET /", 200, "root"),
        mock("POST /health", 204, ""),
    ];
    let mut b = api("custom", PayloadFormat::V2, &[]);
    b.domains = vec!["api.example.com".into()];
    b.routes = vec![
        mock("GET /users/me", 200, "custom-domain"),
        mock("$default", 200, "custom-default"),
    ];
    h.store.put_api(&a).await.unwrap();
    h.store.put_api(&b).await.unwrap();

    for (method, path, want) in [
        ("GET", "/users/me", "literal"),
        ("GET", "/users/7", "param"),
        ("DELETE", "/users/7", "any-param"),
        ("GET", "/users/7/a/b", "param-greedy"),
        ("GET", "/users", "greedy"),
        ("PATCH", "/x/y/z", "greedy"),
        ("GET", "/", "root"),
    ] {
        let r = h
            .client
            .request(method.parse().unwrap(), h.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method} {path}");
        assert!(r.headers().contains_key("apigw-requestid"));
        assert_eq!(r.text().await.unwrap(), want, "{method} {path}");
    }
    let r = h.client.post(h.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // Wrong method on the root (no greedy match for `/`): Not Found.
    let (s, _, t) = text(h.client.post(h.url("/")).send().await.unwrap()).await;
    assert_eq!((s, t.as_str()), (404, r#"{"message":"Not Found"}"#));

    // Custom domains pick their API, any port, any case; `$default` answers the rest.
    for host in ["api.example.com", "API.Example.com:8080"] {
        let r = h
            .client
            .get(h.url("/users/me"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "custom-domain", "{host}");
    }
    let r = h
        .client
        .get(h.url("/nothing/here"))
        .header("host", "api.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "custom-default");

    // Several APIs without domains: one under a stage, tried first for paths under it.
    let mut staged = api("staged", PayloadFormat::V2, &[]);
    staged.stage = Some("v1".into());
    staged.routes = vec![mock("GET /users/me", 200, "staged-me")];
    h.store.put_api(&staged).await.unwrap();
    for (path, want) in [
        ("/v1/users/me", "staged-me"),
        ("/users/me", "literal"),
        ("/v1/other", "greedy"),
    ] {
        let r = h.client.get(h.url(path)).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), want, "{path}");
    }

    // A new route appears without a restart (the configuration generation moved).
    a.routes.push(mock("GET /new", 200, "new"));
    h.store.put_api(&a).await.unwrap();
    let (s, _, v) = h.get_json("/new").await;
    assert_eq!((s.as_u16(), v), (200, Value::String("new".into())));
    h.store.delete_api("main").await.unwrap();
    let (s, _, _) = h.get_json("/new").await;
    assert_eq!(s, 404);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_paths() {
    let h = Harness::start().await;
    h.python("py").await;
    h.python("throttled").await;
    let mut r = record("throttled", "python3.11", "app.handler", "x");
    r = FunctionRecord {
        reserved_concurrency: Some(0),
        code_id: h
            .store
            .get_function("throttled")
            .await
            .unwrap()
            .unwrap()
            .code_id,
        ..r
    };
    h.store.put_function(&r).await.unwrap();
    h.invoker
        .function_changed("throttled", Some(Arc::new(r)))
        .await;
    let mut def = api(
        "errs",
        PayloadFormat::V2,
        &[
            ("GET /modes", "py"),
            ("POST /modes", "py"),
            ("GET /throttled", "throttled"),
            ("GET /ghost", "no-such-function"),
        ],
    );
    def.integration_timeout_ms = 500;
    h.store.put_api(&def).await.unwrap();

    let internal = r#"{"message":"Internal Server Error"}"#;
    let (s, _, t) = text(
        h.client
            .get(h.url("/modes?mode=malformed"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, t.as_str()), (502, internal));
    let (s, _, t) = text(
        h.client
            .get(h.url("/modes?mode=raise"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, t.as_str()), (502, internal));
    let t0 = std::time::Instant::now();
    let (s, _, _) = text(
        h.client
            .get(h.url("/modes?mode=sleep&s=3"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 504);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let (s, _, t) = text(h.client.get(h.url("/throttled")).send().await.unwrap()).await;
    assert_eq!((s, t.as_str()), (429, r#"{"message":"Too Many Requests"}"#));
    let (s, _, t) = text(h.client.get(h.url("/ghost")).send().await.unwrap()).await;
    assert_eq!((s, t.as_str()), (500, internal));
    let (s, _, t) = text(h.client.delete(h.url("/modes")).send().await.unwrap()).await;
    assert_eq!((s, t.as_str()), (404, r#"{"message":"Not Found"}"#));
    let (s, _, _) = text(h.client.get(h.url("/nope")).send().await.unwrap()).await;
    assert_eq!(s, 404);

    // Body over 10 MB: declared up front, or found while reading a chunked body.
    let resp = raw_exchange(
        h.addr,
        b"POST /modes HTTP/1.1\r\nhost: x\r\ncontent-length: 20000000\r\n\r\n".to_vec(),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(
        resp.ends_with(r#"{"message":"Request Entity Too Large"}"#),
        "{resp}"
    );
    let mut chunked =
        b"POST /modes HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..11 {
        chunked.extend_from_slice(format!("{:x}\r\n", 1 << 20).as_bytes());
        chunked.extend(std::iter::repeat_n(b'a', 1 << 20));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let resp = raw_exchange(h.addr, chunked).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    // Request line and headers over 10,240 bytes.
    let (s, _, _) = text(
        h.client
            .get(h.url("/modes"))
            .header("x-big", "b".repeat(11_000))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 431);
    let (s, _, _) = text(
        h.client
            .get(h.url(&format!("/modes?q={}", "q".repeat(11_000))))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 431);

    // Garbage on the wire does not take the gateway down.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut raw = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    raw.write_all(b"\x00\x01 garbage\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut buf)).await;
    let (s, _, _) = text(
        h.client
            .get(h.url("/modes?mode=string"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_and_headers() {
    let h = Harness::start().await;
    h.python("py").await;
    let mut def = api("corsapi", PayloadFormat::V2, &[("ANY /modes", "py")]);
    def.cors = Some(CorsConfig {
        allow_credentials: false,
        allow_headers: vec!["content-type".into(), "x-api-key".into()],
        allow_methods: vec!["GET".into(), "POST".into()],
        allow_origins: vec!["https://app.example.com".into()],
        expose_headers: vec!["x-echo".into()],
        max_age: Some(300),
    });
    h.store.put_api(&def).await.unwrap();

    // Answered by the gateway, even for a path with no route.
    for path in ["/modes", "/no/route"] {
        let r = h
            .client
            .request(reqwest::Method::OPTIONS, h.url(path))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{path}");
        let hd = r.headers();
        assert_eq!(hd["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(hd["access-control-allow-methods"], "GET,POST");
        assert_eq!(hd["access-control-allow-headers"], "content-type,x-api-key");
        assert_eq!(hd["access-control-max-age"], "300");
    }
    let r = h
        .client
        .request(reqwest::Method::OPTIONS, h.url("/modes"))
        .header("origin", "https://other.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // Normal responses: the function's own CORS header is replaced.
    let r = h
        .client
        .post(h.url("/modes?mode=cors"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(r.headers()["access-control-expose-headers"], "x-echo");
    let r = h
        .client
        .post(h.url("/modes?mode=cors"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_component_behind_a_route() {
    let h = Harness::start().await;
    let echo = wasm_guest("echo.wasm");
    let hello = wasm_guest("hello.wasm");
    h.deploy("wecho", "wasm", "", &[("app.wasm", &echo)], |_| {})
        .await;
    h.deploy("whello", "wasm", "", &[("app.wasm", &hello)], |_| {})
        .await;
    h.deploy(
        "wspin",
        "wasm",
        "",
        &[("app.wasm", &wasm_guest("spin.wasm"))],
        |r| {
            r.config.timeout = 3;
        },
    )
    .await;
    let mut def = api(
        "wasmapi",
        PayloadFormat::V2,
        &[
            ("POST /echo", "wecho"),
            ("GET /hello", "whello"),
            ("GET /spin", "wspin"),
        ],
    );
    def.integration_timeout_ms = 300;
    h.store.put_api(&def).await.unwrap();
    // The integration timeout applies to Wasm functions too.
    let t0 = std::time::Instant::now();
    let (s, _, t) = text(h.client.get(h.url("/spin")).send().await.unwrap()).await;
    assert_eq!(
        (s, t.as_str()),
        (504, r#"{"message":"Service Unavailable"}"#)
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let (s, hd, t) = text(
        h.client
            .post(h.url("/echo"))
            .body("raw request body, not an event")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, t.as_str()), (200, "raw request body, not an event"));
    assert!(hd.contains_key("apigw-requestid"));
    let (s, _, t) = text(h.client.get(h.url("/hello")).send().await.unwrap()).await;
    assert_eq!((s, t.as_str()), (200, "\"hello from wasm\""));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_urls() {
    let h = Harness::start().await;
    h.python("py").await;
    h.python("secure").await;
    h.deploy(
        "wecho",
        "wasm",
        "",
        &[("app.wasm", &wasm_guest("echo.wasm"))],
        |_| {},
    )
    .await;
    let url = |function: &str, id: &str, auth: &str| FunctionUrlConfig {
        schema_version: 1,
        function: function.into(),
        url_id: id.into(),
        auth_type: auth.into(),
        cors: None,
        invoke_mode: "BUFFERED".into(),
        creation_time: String::new(),
        last_modified_time: String::new(),
    };
    h.store
        .put_function_url(&FunctionUrlConfig {
            cors: Some(CorsConfig {
                allow_origins: vec!["*".into()],
                allow_methods: vec!["*".into()],
                ..Default::default()
            }),
            ..url("py", "abcdefghijklmnopqrstuvwxyz012345", "NONE")
        })
        .await
        .unwrap();
    h.store
        .put_function_url(&url("secure", "secure0000000000000000000000000", "AWS_IAM"))
        .await
        .unwrap();
    h.store
        .put_function_url(&url("wecho", "wasm00000000000000000000000000", "NONE"))
        .await
        .unwrap();

    // By Host.
    let r = h
        .client
        .get(h.url("/some/path?mode=echo&k=v"))
        .header(
            "host",
            "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.localhost:9999",
        )
        .header("origin", "https://anywhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-amzn-requestid"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let v: Value = r.json().await.unwrap();
    let ev = &v["event"];
    assert_eq!(v["request_id"], rid.as_str());
    assert_eq!(ev["version"], "2.0");
    assert_eq!(ev["routeKey"], "$default");
    assert_eq!(ev["rawPath"], "/some/path");
    assert_eq!(ev["queryStringParameters"]["k"], "v");
    assert!(ev.get("pathParameters").is_none());
    let ctx = &ev["requestContext"];
    assert_eq!(ctx["apiId"], "abcdefghijklmnopqrstuvwxyz012345");
    assert_eq!(ctx["accountId"], "anonymous");
    assert_eq!(
        ctx["domainName"],
        "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
    );
    assert_eq!(ctx["domainPrefix"], "abcdefghijklmnopqrstuvwxyz012345");
    assert_eq!(ctx["stage"], "$default");
    assert_eq!(ctx["requestId"], rid.as_str());

    // The URL's CORS settings answer preflights.
    let r = h
        .client
        .request(
            reqwest::Method::OPTIONS,
            h.url("/lambda-url/abcdefghijklmnopqrstuvwxyz012345/x"),
        )
        .header("origin", "https://anywhere.example")
        .header("access-control-request-method", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["access-control-allow-methods"], "*");

    // By path, for clients that cannot set Host: the function sees the rest as its path.
    let (s, _, v) = h
        .get_json("/lambda-url/abcdefghijklmnopqrstuvwxyz012345/x/y?mode=echo")
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["event"]["rawPath"], "/x/y");
    assert_eq!(v["event"]["requestContext"]["http"]["path"], "/x/y");
    let (s, _, _) = h
        .get_json("/lambda-url/abcdefghijklmnopqrstuvwxyz012345")
        .await;
    assert_eq!(s, 200);
    let (s, _, t) = text(
        h.client
            .get(h.url("/lambda-url/abcdefghijklmnopqrstuvwxyz012345/?mode=raise"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, t.as_str()),
        (502, r#"{"Message":"Internal Server Error"}"#)
    );
    let (s, _, _) = h.get_json("/lambda-url/unknownid/").await;
    assert_eq!(s, 404);
    // A Wasm function behind a URL gets the raw request with the rewritten path.
    let (s, _, t) = text(
        h.client
            .post(h.url("/lambda-url/wasm00000000000000000000000000/anything"))
            .body("wasm body")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, t.as_str()), (200, "wasm body"));

    // AWS_IAM: unsigned, wrongly signed and signed for another service are refused.
    let secure = h.url("/lambda-url/secure0000000000000000000000000/p?mode=echo");
    let (s, hd, t) = text(h.client.get(&secure).send().await.unwrap()).await;
    assert_eq!((s, t.as_str()), (403, r#"{"Message":"Forbidden"}"#));
    assert!(hd.contains_key("x-amzn-requestid"));
    let signed = |service: &'static str, secret: &str, body: &'static str| {
        let creds = Credentials {
            access_key_id: h.creds.access_key_id.clone(),
            secret_access_key: secret.to_string(),
        };
        let uri: http::Uri = secure.parse().unwrap();
        let mut headers = http::HeaderMap::new();
        gust_aws::sigv4::sign_headers(
            &http::Method::POST,
            &uri,
            &mut headers,
            body.as_bytes(),
            &creds,
            &SigningParams {
                region: "us-east-1",
                service,
                time: time::OffsetDateTime::now_utc(),
            },
        );
        h.client.post(&secure).headers(headers).body(body)
    };
    let (s, _, _) = text(signed("lambda", "wrong", "x").send().await.unwrap()).await;
    assert_eq!(s, 403);
    let (s, _, _) = text(
        signed("s3", &h.creds.secret_access_key, "x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 403);
    let r = signed("lambda", &h.creds.secret_access_key, "signed body")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let ctx = &v["event"]["requestContext"];
    assert_eq!(ctx["accountId"], "000000000000");
    assert_eq!(
        ctx["authorizer"]["iam"]["accessKey"],
        h.creds.access_key_id.as_str()
    );
    assert_eq!(v["event"]["body"], "signed body");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests() {
    let h = Harness::start().await;
    h.python("py").await;
    h.store
        .put_api(&api("slow", PayloadFormat::V2, &[("GET /modes", "py")]))
        .await
        .unwrap();
    // Warm up, so the slow request below is in the handler when shutdown starts.
    let (s, _, _) = h.get_json("/modes?mode=string").await;
    assert_eq!(s, 200);
    let client = h.client.clone();
    let url = h.url("/modes?mode=sleep&s=0.5");
    let pending = tokio::spawn(async move { client.get(url).send().await.unwrap().text().await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let addr = h.addr;
    h.stop().await;
    assert_eq!(pending.await.unwrap().unwrap(), "slept");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A `MakeWriter` collecting everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn one_access_log_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), StoreOptions::default()).unwrap());
    let mut wasm_config = WasmConfig::new(dir.path().join("wasm-cache"));
    wasm_config.pool.instances = 4;
    wasm_config.pool.memories = 4;
    wasm_config.pool.tables = 4;
    let wasm = WasmInvoker::new(wasm_config, store.clone(), store.clone()).unwrap();
    let gateway = Gateway::new(
        GatewayConfig::new("us-east-1", "http://127.0.0.1:8080"),
        GatewayDeps {
            apis: store.clone(),
            functions: store.clone(),
            invoker: wasm.clone(),
            http: wasm,
            credentials: Arc::new(Credentials {
                access_key_id: "A".into(),
                secret_access_key: "S".into(),
            }),
        },
    );
    let mut def = api("logged", PayloadFormat::V2, &[]);
    def.routes = vec![mock("GET /ping", 200, "pong")];
    store.put_api(&def).await.unwrap();

    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let conn = gust_gateway::ConnInfo {
        peer: "127.0.0.1:5555".parse().unwrap(),
        local: "127.0.0.1:8080".parse().unwrap(),
    };
    let mut ids = Vec::new();
    for path in ["/ping", "/missing"] {
        let req = http::Request::get(path)
            .header("host", "localhost")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let resp = gateway.handle(req, conn).await;
        ids.push(
            resp.headers()["apigw-requestid"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("gust::access"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, (path, status, id)) in lines
        .iter()
        .zip([("/ping", 200, &ids[0]), ("/missing", 404, &ids[1])])
    {
        assert!(line.contains(r#"method="GET""#), "{line}");
        assert!(line.contains(&format!(r#"path="{path}""#)), "{line}");
        assert!(line.contains(&format!("status={status}")), "{line}");
        assert!(line.contains(r#"api="logged""#), "{line}");
        assert!(line.contains("latency_us="), "{line}");
        assert!(line.contains("cold_start=false"), "{line}");
        assert!(line.contains(&format!(r#"request_id="{id}""#)), "{line}");
    }
}
