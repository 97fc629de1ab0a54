//! The Lambda API driven through its router without a socket, against in-memory fakes.
//! Expected codes, statuses and messages are Lambda's, as botocore's model and the AWS
//! documentation give them.

mod fakes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;
use fakes::{zip_with, FakeInvoker, MemStore};
use gust_lambda::{router, spawn_event_worker, LambdaState};
use gust_model::{LogEntry, LogStream};
use gust_store::{EventQueue as _, LogStore as _};
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt as _;

const REGION: &str = "us-east-1";
const ENDPOINT: &str = "http://127.0.0.1:9999";

struct Harness {
    app: Router,
    state: Arc<LambdaState>,
    store: Arc<MemStore>,
    invoker: Arc<FakeInvoker>,
}

fn harness_with_delays(delays: Vec<Duration>) -> Harness {
    let store = Arc::new(MemStore::new());
    let invoker = Arc::new(FakeInvoker::default());
    let state = Arc::new(LambdaState {
        store: store.clone(),
        invoker: invoker.clone(),
        region: REGION.into(),
        endpoint_url: ENDPOINT.into(),
        event_retry_delays: delays,
        code_url_credentials: None,
        gateway_url: None,
    });
    Harness {
        app: router(state.clone()),
        state,
        store,
        invoker,
    }
}

fn harness() -> Harness {
    harness_with_delays(vec![Duration::from_millis(10), Duration::from_millis(20)])
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn error_code(&self) -> &str {
        self.headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Harness {
    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.into()).expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn json(&self, method: Method, uri: &str, body: Value) -> Reply {
        self.send(
            method,
            uri,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, &[], Body::empty()).await
    }

    async fn create(&self, name: &str) -> Reply {
        self.json(Method::POST, "/2015-03-31/functions", create_body(name))
            .await
    }

    async fn invoke(
        &self,
        name: &str,
        headers: &[(&str, &str)],
        payload: impl Into<Body>,
    ) -> Reply {
        self.send(
            Method::POST,
            &format!("/2015-03-31/functions/{name}/invocations"),
            headers,
            payload,
        )
        .await
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn create_body(name: &str) -> Value {
    json!({
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": "arn:aws:iam::000000000000:role/lambda",
        "Handler": "app.handler",
        "Code": {"ZipFile": b64(&zip_with("app.py", "def handler(e, c): return e"))},
        "Description": "a test function",
        "Timeout": 10,
        "MemorySize": 256,
        "Publish": true,
        "Environment": {"Variables": {"GREETING": "hi"}},
        "Tags": {"team": "core"},
    })
}

/// Waits (bounded) until `cond` holds; for effects of the background worker.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn create_get_update_delete() {
    let h = harness();
    let r = h.create("echo").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let c = r.json();
    assert_eq!(c["FunctionName"], "echo");
    assert_eq!(
        c["FunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:echo"
    );
    assert_eq!(c["State"], "Active");
    assert_eq!(c["LastUpdateStatus"], "Successful");
    assert_eq!(c["PackageType"], "Zip");
    assert_eq!(c["Architectures"], json!(["x86_64"]));
    assert_eq!(c["Version"], "$LATEST");
    assert_eq!(c["Runtime"], "python3.12");
    assert_eq!(c["Handler"], "app.handler");
    assert_eq!(c["Role"], "arn:aws:iam::000000000000:role/lambda");
    assert_eq!(c["Description"], "a test function");
    assert_eq!(c["Timeout"], 10);
    assert_eq!(c["MemorySize"], 256);
    assert_eq!(c["Environment"], json!({"Variables": {"GREETING": "hi"}}));
    assert_eq!(c["EphemeralStorage"], json!({"Size": 512}));
    assert_eq!(c["TracingConfig"], json!({"Mode": "PassThrough"}));
    let zip = zip_with("app.py", "def handler(e, c): return e");
    use sha2::Digest as _;
    assert_eq!(c["CodeSha256"], b64(&sha2::Sha256::digest(&zip)));
    assert_eq!(c["CodeSize"], zip.len());
    assert!(c["LastModified"]
        .as_str()
        .is_some_and(|s| s.ends_with("+0000")));
    assert!(c["RevisionId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(r.header("x-amzn-requestid").is_some());
    assert_eq!(
        h.invoker.changes.lock().expect("changes").as_slice(),
        &[("echo".to_string(), true)]
    );

    let g = h.get("/2015-03-31/functions/echo").await;
    assert_eq!(g.status, StatusCode::OK);
    let g = g.json();
    assert_eq!(g["Configuration"], c);
    assert_eq!(g["Code"]["RepositoryType"], "S3");
    assert_eq!(
        g["Code"]["Location"],
        format!("{ENDPOINT}/2015-03-31/functions/echo/code")
    );
    assert_eq!(g["Tags"], json!({"team": "core"}));
    assert!(g.get("Concurrency").is_none());

    let code = h.get("/2015-03-31/functions/echo/code").await;
    assert_eq!(code.status, StatusCode::OK);
    assert_eq!(code.header("content-type"), Some("application/zip"));
    assert_eq!(code.body.as_ref(), zip.as_slice());

    let cfg = h.get("/2015-03-31/functions/echo/configuration").await;
    assert_eq!(cfg.status, StatusCode::OK);
    assert_eq!(cfg.json(), c);

    let d = h
        .send(
            Method::DELETE,
            "/2015-03-31/functions/echo",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.invoker.changes.lock().expect("changes").last(),
        Some(&("echo".to_string(), false))
    );
    let g = h.get("/2015-03-31/functions/echo").await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    assert_eq!(g.error_code(), "ResourceNotFoundException");
    assert_eq!(
        g.message(),
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:echo"
    );
    let d = h
        .send(
            Method::DELETE,
            "/2015-03-31/functions/echo",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(d.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn create_refusals() {
    let h = harness();
    assert_eq!(h.create("dup").await.status, StatusCode::CREATED);
    let r = h.create("dup").await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::CONFLICT, "ResourceConflictException")
    );
    assert_eq!(r.message(), "Function already exist: dup");

    let mut body = create_body("badzip");
    body["Code"]["ZipFile"] = json!(b64(b"not a zip"));
    let r = h.json(Method::POST, "/2015-03-31/functions", body).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::BAD_REQUEST, "InvalidParameterValueException")
    );
    assert_eq!(
        r.message(),
        "Could not unzip uploaded file. Please check your file, then try to upload again."
    );

    let mut body = create_body("s3");
    body["Code"] = json!({"S3Bucket": "b", "S3Key": "k.zip"});
    let r = h.json(Method::POST, "/2015-03-31/functions", body).await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    assert!(
        r.message().contains("not support code from S3"),
        "{}",
        r.message()
    );

    let mut body = create_body("image");
    body["Code"] = json!({"ImageUri": "x/y:latest"});
    let r = h.json(Method::POST, "/2015-03-31/functions", body).await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    assert!(r.message().contains("ImageUri"));

    let mut body = create_body("slowpoke");
    body["Timeout"] = json!(901);
    let r = h.json(Method::POST, "/2015-03-31/functions", body).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::BAD_REQUEST, "InvalidParameterValueException")
    );
    assert!(r.message().contains("'timeout'"), "{}", r.message());

    let mut body = create_body("java");
    body["Runtime"] = json!("java21");
    let r = h.json(Method::POST, "/2015-03-31/functions", body).await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");

    let r = h
        .json(
            Method::POST,
            "/2015-03-31/functions",
            create_body("bad name"),
        )
        .await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");

    let mut body = create_body("wrongtype");
    body["MemorySize"] = json!("lots");
    let r = h.json(Method::POST, "/2015-03-31/functions", body).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::BAD_REQUEST, "InvalidParameterValueException")
    );

    let r = h
        .send(Method::POST, "/2015-03-31/functions", &[], "{not json")
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::BAD_REQUEST, "SerializationException")
    );

    let mut body = create_body("arm");
    body["Architectures"] = json!(["arm64"]);
    let r = h.json(Method::POST, "/2015-03-31/functions", body).await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");

    // Nothing but the first function was created.
    let list = h.get("/2015-03-31/functions").await.json();
    assert_eq!(list["Functions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn list_functions_pages_by_name() {
    let h = harness();
    for name in ["e", "c", "a", "d", "b"] {
        assert_eq!(h.create(name).await.status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut uri = "/2015-03-31/functions/?MaxItems=2".to_string();
    let mut pages = 0;
    loop {
        let r = h.get(&uri).await;
        assert_eq!(r.status, StatusCode::OK);
        let v = r.json();
        pages += 1;
        for f in v["Functions"].as_array().expect("functions") {
            seen.push(f["FunctionName"].as_str().unwrap_or_default().to_string());
        }
        match v["NextMarker"].as_str() {
            Some(m) => uri = format!("/2015-03-31/functions/?MaxItems=2&Marker={m}"),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    assert_eq!(pages, 3);

    let all = h
        .get("/2015-03-31/functions?FunctionVersion=ALL")
        .await
        .json();
    assert_eq!(all["Functions"].as_array().map(Vec::len), Some(5));
    assert!(all.get("NextMarker").is_none());
    // An exactly full last page has no NextMarker.
    let full = h.get("/2015-03-31/functions?MaxItems=5").await.json();
    assert!(full.get("NextMarker").is_none());

    for bad in ["0", "10001", "x"] {
        let r = h
            .get(&format!("/2015-03-31/functions?MaxItems={bad}"))
            .await;
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::BAD_REQUEST, "InvalidParameterValueException")
        );
    }
}

#[tokio::test]
async fn update_code_checks_revision() {
    let h = harness();
    let created = h.create("echo").await.json();
    let rev = created["RevisionId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let new_zip = zip_with("app.py", "def handler(e, c): return 2");

    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/echo/code",
            json!({"ZipFile": b64(&new_zip), "RevisionId": "stale"}),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailedException"
        )
    );
    assert!(r
        .message()
        .starts_with("The Revision Id provided does not match the latest Revision Id"));

    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/echo/code",
            json!({"ZipFile": b64(&new_zip), "DryRun": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(r.json()["CodeSha256"], created["CodeSha256"]);
    let unchanged = h
        .get("/2015-03-31/functions/echo/configuration")
        .await
        .json();
    assert_eq!(unchanged["CodeSha256"], created["CodeSha256"]);
    assert_eq!(unchanged["RevisionId"], created["RevisionId"]);

    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/echo/code",
            json!({"ZipFile": b64(&new_zip), "RevisionId": rev}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let updated = r.json();
    assert_ne!(updated["RevisionId"], created["RevisionId"]);
    assert_ne!(updated["CodeSha256"], created["CodeSha256"]);
    assert_eq!(updated["CodeSize"], new_zip.len());
    let code = h.get("/2015-03-31/functions/echo/code").await;
    assert_eq!(code.body.as_ref(), new_zip.as_slice());
    assert_eq!(h.invoker.changes.lock().expect("changes").len(), 2);

    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/echo/code",
            json!({"ZipFile": b64(b"junk")}),
        )
        .await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/nope/code",
            json!({"ZipFile": b64(&new_zip)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/echo/code",
            json!({"S3Bucket": "b", "S3Key": "k"}),
        )
        .await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
}

#[tokio::test]
async fn update_configuration_is_partial() {
    let h = harness();
    let created = h.create("echo").await.json();
    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/echo/configuration",
            json!({"MemorySize": 512, "Environment": {"Variables": {"A": "1"}}, "GustProvisionedConcurrency": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let u = r.json();
    assert_eq!(u["MemorySize"], 512);
    assert_eq!(u["Environment"], json!({"Variables": {"A": "1"}}));
    assert_eq!(u["Timeout"], created["Timeout"]);
    assert_eq!(u["Handler"], created["Handler"]);
    assert_eq!(u["Description"], created["Description"]);
    assert_eq!(u["CodeSha256"], created["CodeSha256"]);
    assert_eq!(u["GustProvisionedConcurrency"], 2);
    assert_ne!(u["RevisionId"], created["RevisionId"]);
    let stored = h
        .state
        .store
        .get_function("echo")
        .await
        .ok()
        .flatten()
        .expect("stored");
    assert_eq!(stored.provisioned_concurrency, 2);

    // Clearing the variables removes Environment from the answer, as Lambda does.
    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/echo/configuration",
            json!({"Environment": {}}),
        )
        .await;
    assert!(r.json().get("Environment").is_none());

    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/echo/configuration",
            json!({"Timeout": 5, "RevisionId": created["RevisionId"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);

    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/echo/configuration",
            json!({"MemorySize": 64}),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::BAD_REQUEST, "InvalidParameterValueException")
    );
    assert_eq!(
        h.get("/2015-03-31/functions/echo/configuration")
            .await
            .json()["MemorySize"],
        512
    );

    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/echo:7/configuration",
            json!({"MemorySize": 256}),
        )
        .await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/nope/configuration",
            json!({"MemorySize": 256}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn concurrent_updates_are_serialized() {
    let h = Arc::new(harness());
    let rev = h.create("echo").await.json()["RevisionId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let h = h.clone();
        let rev = rev.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"Description": format!("writer {i}"), "RevisionId": rev});
            h.json(
                Method::PUT,
                "/2015-03-31/functions/echo/configuration",
                body,
            )
            .await
            .status
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            StatusCode::OK => ok += 1,
            s => assert_eq!(s, StatusCode::PRECONDITION_FAILED),
        }
    }
    assert_eq!(ok, 1, "exactly one writer holds the current revision");
}

#[tokio::test]
async fn reserved_concurrency() {
    let h = harness();
    h.create("echo").await;
    let r = h.get("/2019-09-30/functions/echo/concurrency").await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})));
    let r = h
        .json(
            Method::PUT,
            "/2017-10-31/functions/echo/concurrency",
            json!({"ReservedConcurrentExecutions": 3}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"ReservedConcurrentExecutions": 3}))
    );
    let r = h.get("/2019-09-30/functions/echo/concurrency").await;
    assert_eq!(r.json(), json!({"ReservedConcurrentExecutions": 3}));
    assert_eq!(
        h.get("/2015-03-31/functions/echo").await.json()["Concurrency"],
        json!({"ReservedConcurrentExecutions": 3})
    );
    // Provisioned concurrency may not exceed the reservation.
    let r = h
        .json(
            Method::PUT,
            "/2015-03-31/functions/echo/configuration",
            json!({"GustProvisionedConcurrency": 4}),
        )
        .await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    let r = h
        .json(
            Method::PUT,
            "/2017-10-31/functions/echo/concurrency",
            json!({"ReservedConcurrentExecutions": -1}),
        )
        .await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    let r = h
        .json(
            Method::PUT,
            "/2017-10-31/functions/echo/concurrency",
            json!({}),
        )
        .await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    let r = h
        .send(
            Method::DELETE,
            "/2017-10-31/functions/echo/concurrency",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get("/2019-09-30/functions/echo/concurrency").await.json(),
        json!({})
    );
    let r = h
        .json(
            Method::PUT,
            "/2017-10-31/functions/nope/concurrency",
            json!({"ReservedConcurrentExecutions": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Create, three concurrency changes: the runtime heard of each.
    assert_eq!(h.invoker.changes.lock().expect("changes").len(), 3);
}

#[tokio::test]
async fn tags_by_arn() {
    let h = harness();
    h.create("echo").await;
    let arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aecho";
    let r = h
        .json(
            Method::POST,
            &format!("/2017-03-31/tags/{arn}"),
            json!({"Tags": {"env": "dev", "x": "y"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h.get(&format!("/2017-03-31/tags/{arn}")).await;
    assert_eq!(
        r.json(),
        json!({"Tags": {"team": "core", "env": "dev", "x": "y"}})
    );
    let r = h
        .send(
            Method::DELETE,
            &format!("/2017-03-31/tags/{arn}?tagKeys=x&tagKeys=team"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get(&format!("/2017-03-31/tags/{arn}")).await.json(),
        json!({"Tags": {"env": "dev"}})
    );
    let r = h
        .get("/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Anope")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Tags are not the runtime's business.
    assert_eq!(h.invoker.changes.lock().expect("changes").len(), 1);
}

#[tokio::test]
async fn account_settings() {
    let h = harness();
    h.create("a").await;
    h.create("b").await;
    h.json(
        Method::PUT,
        "/2017-10-31/functions/a/concurrency",
        json!({"ReservedConcurrentExecutions": 4}),
    )
    .await;
    let r = h.get("/2016-08-19/account-settings").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["AccountUsage"]["FunctionCount"], 2);
    assert_eq!(v["AccountLimit"]["CodeSizeUnzipped"], 262_144_000);
    assert_eq!(v["AccountLimit"]["CodeSizeZipped"], 52_428_800);
    let total = v["AccountLimit"]["ConcurrentExecutions"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        v["AccountLimit"]["UnreservedConcurrentExecutions"].as_u64(),
        Some(total - 4)
    );
}

#[tokio::test]
async fn invoke_request_response() {
    let h = harness();
    h.create("echo").await;
    let r = h.invoke("echo", &[], r#"{"hello":"world"}"#).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_ref(), br#"{"hello":"world"}"#);
    assert_eq!(r.header("x-amz-executed-version"), Some("$LATEST"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("x-amz-function-error").is_none());
    assert!(r.header("x-amz-log-result").is_none());
    let rid = r.header("x-amzn-requestid").unwrap_or_default().to_string();
    let calls = h.invoker.calls.lock().expect("calls").clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].1, rid,
        "the runtime sees the request id the caller got"
    );

    // Empty payload is delivered as {}.
    let r = h
        .invoke(
            "echo",
            &[("x-amz-invocation-type", "RequestResponse")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.body.as_ref(), b"{}");

    // Full and partial ARNs (percent-encoded as botocore sends them) and $LATEST.
    for uri in [
        "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aecho/invocations",
        "000000000000%3Afunction%3Aecho/invocations",
        "echo%3A%24LATEST/invocations",
        "echo/invocations?Qualifier=%24LATEST",
    ] {
        let r = h
            .send(
                Method::POST,
                &format!("/2015-03-31/functions/{uri}"),
                &[],
                "1",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
    }
    let r = h
        .send(
            Method::POST,
            "/2015-03-31/functions/echo/invocations?Qualifier=1",
            &[],
            "1",
        )
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::NOT_FOUND, "ResourceNotFoundException")
    );
    assert_eq!(
        r.message(),
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:echo:1"
    );
}

#[tokio::test]
async fn invoke_tail_and_function_error() {
    let h = harness();
    h.create("echo").await;
    h.create("fail").await;
    let r = h.invoke("echo", &[("x-amz-log-type", "Tail")], "{}").await;
    let rid = r.header("x-amzn-requestid").unwrap_or_default().to_string();
    let tail = r.header("x-amz-log-result").expect("log result");
    let tail = base64::engine::general_purpose::STANDARD
        .decode(tail)
        .expect("base64");
    let tail = String::from_utf8(tail).expect("utf8");
    assert!(
        tail.starts_with(&format!("START RequestId: {rid}")),
        "{tail}"
    );

    let r = h.invoke("fail", &[], "{}").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(r.json()["errorMessage"], "boom");
}

#[tokio::test]
async fn invoke_refusals() {
    let h = harness();
    h.create("echo").await;
    let r = h.invoke("nope", &[], "{}").await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::NOT_FOUND, "ResourceNotFoundException")
    );
    assert_eq!(
        r.message(),
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"
    );
    assert_eq!(r.json()["Type"], "User");

    let r = h.invoke("echo", &[], "{not json").await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::BAD_REQUEST, "InvalidRequestContentException")
    );
    assert!(
        r.message()
            .starts_with("Could not parse request body into json:"),
        "{}",
        r.message()
    );

    let big = format!("\"{}\"", "x".repeat(6 * 1024 * 1024));
    let r = h.invoke("echo", &[], big).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLargeException")
    );
    assert_eq!(
        r.message(),
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    );
    // Exactly at the limit is accepted.
    let at_limit = format!("\"{}\"", "x".repeat(6 * 1024 * 1024 - 2));
    assert_eq!(h.invoke("echo", &[], at_limit).await.status, StatusCode::OK);

    let r = h
        .invoke("echo", &[("x-amz-invocation-type", "Sometimes")], "{}")
        .await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    let r = h.invoke("bad%20name", &[], "{}").await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    assert_eq!(h.invoker.calls_of("echo"), 1);
}

#[tokio::test]
async fn invoke_platform_errors() {
    let h = harness();
    for name in ["throttle", "noruntime", "down"] {
        h.create(name).await;
    }
    let r = h.invoke("throttle", &[], "{}").await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException")
    );
    assert_eq!(r.message(), "Rate Exceeded.");
    assert_eq!(
        r.json()["Reason"],
        "ReservedFunctionConcurrentInvocationLimitExceeded"
    );
    assert!(r.header("retry-after").is_some());
    let r = h.invoke("noruntime", &[], "{}").await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::BAD_GATEWAY, "InvalidRuntimeException")
    );
    assert_eq!(r.json()["Type"], "Service");
    assert!(r.message().contains("not installed"));
    let r = h.invoke("down", &[], "{}").await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::SERVICE_UNAVAILABLE, "ServiceException")
    );
}

#[tokio::test]
async fn dry_run() {
    let h = harness();
    h.create("echo").await;
    let r = h
        .invoke(
            "echo",
            &[("x-amz-invocation-type", "DryRun")],
            "not even json",
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert_eq!(h.invoker.calls_of("echo"), 0);
    let r = h
        .invoke("nope", &[("x-amz-invocation-type", "DryRun")], "{}")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn event_is_queued_before_202_then_run_by_the_worker() {
    let h = harness();
    h.create("echo").await;
    let r = h
        .invoke("echo", &[("x-amz-invocation-type", "Event")], r#"{"n":1}"#)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r.body.is_empty());
    let rid = r.header("x-amzn-requestid").unwrap_or_default().to_string();
    // No worker yet: the event is durably in the queue already.
    let queued = h.store.events();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].id.as_str(), queued[0].payload.as_slice()),
        (rid.as_str(), br#"{"n":1}"#.as_slice())
    );
    assert_eq!(h.invoker.calls_of("echo"), 0);

    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = spawn_event_worker(h.state.clone(), stop_rx);
    eventually("the event to complete", || h.store.events().is_empty()).await;
    let calls = h.invoker.calls.lock().expect("calls").clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].1.as_str(), calls[0].2.as_ref()),
        (rid.as_str(), br#"{"n":1}"#.as_slice())
    );

    // A later enqueue wakes the worker without waiting for a poll.
    let t0 = Instant::now();
    h.invoke("echo", &[("x-amz-invocation-type", "Event")], "{}")
        .await;
    eventually("the second event", || h.invoker.calls_of("echo") == 2).await;
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "woken, not polled: {:?}",
        t0.elapsed()
    );

    stop.send(true).expect("worker listening");
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("worker stops")
        .expect("no panic");
}

#[tokio::test]
async fn event_limits_and_refusals() {
    let h = harness();
    h.create("echo").await;
    let big = format!("\"{}\"", "x".repeat(256 * 1024));
    let r = h
        .invoke("echo", &[("x-amz-invocation-type", "Event")], big)
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLargeException")
    );
    assert_eq!(
        r.message(),
        "Request must be smaller than 262144 bytes for the InvokeFunction operation"
    );
    let r = h
        .invoke("echo", &[("x-amz-invocation-type", "Event")], "{nope")
        .await;
    assert_eq!(r.error_code(), "InvalidRequestContentException");
    let r = h
        .invoke("nope", &[("x-amz-invocation-type", "Event")], "{}")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(h.store.events().is_empty());
}

#[tokio::test]
async fn failed_events_are_retried_then_dropped() {
    let h = harness();
    h.create("flaky").await;
    h.create("fail").await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = spawn_event_worker(h.state.clone(), stop_rx);
    h.invoke("flaky", &[("x-amz-invocation-type", "Event")], "{}")
        .await;
    h.invoke("fail", &[("x-amz-invocation-type", "Event")], "{}")
        .await;
    eventually("both events to finish", || h.store.events().is_empty()).await;
    // flaky: two failures, then success on the second retry. fail: first try + two retries.
    assert_eq!(h.invoker.calls_of("flaky"), 3);
    assert_eq!(h.invoker.calls_of("fail"), 3);
    stop.send(true).expect("worker listening");
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("worker stops")
        .expect("no panic");
    assert_eq!(
        h.invoker.calls_of("fail"),
        3,
        "a dropped event is not run again"
    );
}

#[tokio::test]
async fn no_retries_when_none_are_configured() {
    let h = harness_with_delays(Vec::new());
    h.create("fail").await;
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = spawn_event_worker(h.state.clone(), stop_rx);
    h.invoke("fail", &[("x-amz-invocation-type", "Event")], "{}")
        .await;
    eventually("the event to be dropped", || h.store.events().is_empty()).await;
    assert_eq!(h.invoker.calls_of("fail"), 1);
    worker.abort();
}

#[tokio::test]
async fn throttled_events_keep_their_retries() {
    let h = harness();
    h.create("throttle").await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = spawn_event_worker(h.state.clone(), stop_rx);
    h.invoke("throttle", &[("x-amz-invocation-type", "Event")], "{}")
        .await;
    eventually("a throttled attempt", || {
        h.invoker.calls_of("throttle") >= 1
    })
    .await;
    eventually("the event to be rescheduled", || {
        h.store
            .events()
            .first()
            .is_some_and(|e| e.not_before_ms > e.enqueued_ms)
    })
    .await;
    let events = h.store.events();
    assert_eq!(events.len(), 1, "a throttled event stays queued");
    assert_eq!(events[0].attempts, 0, "throttles do not spend retries");
    stop.send(true).expect("worker listening");
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("worker stops")
        .expect("no panic");
}

#[tokio::test]
async fn events_of_deleted_functions_are_dropped() {
    let h = harness();
    h.create("echo").await;
    h.invoke("echo", &[("x-amz-invocation-type", "Event")], "{}")
        .await;
    h.send(
        Method::DELETE,
        "/2015-03-31/functions/echo",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(h.store.pending("echo").await.ok(), Some(1));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = spawn_event_worker(h.state.clone(), stop_rx);
    eventually("the event to be dropped", || h.store.events().is_empty()).await;
    assert_eq!(h.invoker.calls_of("echo"), 0);
    drop(stop);
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("worker stops")
        .expect("no panic");
}

#[tokio::test]
async fn shutdown_waits_for_running_events() {
    let h = harness();
    h.create("slow").await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = spawn_event_worker(h.state.clone(), stop_rx);
    h.invoke("slow", &[("x-amz-invocation-type", "Event")], "{}")
        .await;
    eventually("the slow event to start", || {
        h.invoker.calls_of("slow") == 1
    })
    .await;
    stop.send(true).expect("worker listening");
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("worker stops")
        .expect("no panic");
    assert!(
        h.store.events().is_empty(),
        "the running event finished before the worker returned"
    );
}

#[tokio::test]
async fn delete_with_qualifier() {
    let h = harness();
    h.create("echo").await;
    let r = h
        .send(
            Method::DELETE,
            "/2015-03-31/functions/echo?Qualifier=%24LATEST",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    let r = h
        .send(
            Method::DELETE,
            "/2015-03-31/functions/echo?Qualifier=3",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.get("/2015-03-31/functions/echo").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logs_extension() {
    let h = harness();
    h.create("echo").await;
    let line = |msg: &str, function: &str| LogEntry {
        ts_ms: 1,
        function: function.into(),
        request_id: "r1".into(),
        stream: LogStream::Stdout,
        message: msg.into(),
    };
    h.store
        .append_logs(vec![
            line("one", "echo"),
            line("other", "x"),
            line("two", "echo"),
            line("three", "echo"),
        ])
        .await
        .expect("append");
    let r = h.get("/gust/v1/functions/echo/logs").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    let msgs: Vec<_> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["message"].clone())
        .collect();
    assert_eq!(msgs, [json!("one"), json!("two"), json!("three")]);
    assert_eq!(
        v["events"][0],
        json!({"seq": 1, "ts_ms": 1, "request_id": "r1", "stream": "stdout", "message": "one"})
    );
    let v = h
        .get("/gust/v1/functions/echo/logs?after=1&limit=1")
        .await
        .json();
    assert_eq!(v["events"][0]["message"], "two");
    assert_eq!(v["events"].as_array().map(Vec::len), Some(1));
    let v = h.get("/gust/v1/functions/echo/logs?tail=2").await.json();
    assert_eq!(v["events"][0]["message"], "two");
    assert_eq!(v["events"][1]["message"], "three");
    let r = h.get("/gust/v1/functions/echo/logs?limit=0").await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");

    // Logs outlive their function, as CloudWatch log groups do.
    h.send(
        Method::DELETE,
        "/2015-03-31/functions/echo",
        &[],
        Body::empty(),
    )
    .await;
    let v = h.get("/gust/v1/functions/echo/logs").await.json();
    assert_eq!(v["events"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn oversized_code_upload_is_refused() {
    let h = harness();
    let body = vec![b' '; gust_lambda::request::MAX_CODE_REQUEST + 1];
    let r = h
        .send(Method::POST, "/2015-03-31/functions", &[], body)
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException"
        )
    );
    assert_eq!(
        r.message(),
        "Request must be smaller than 69905067 bytes for the CreateFunction operation"
    );
}

// ---------------------------------------------------------------------------------------------
// Function URLs (`/2021-10-31/functions/{name}/url[s]`)

fn harness_with_gateway(gateway: &str) -> Harness {
    let store = Arc::new(MemStore::new());
    let invoker = Arc::new(FakeInvoker::default());
    let state = Arc::new(LambdaState {
        store: store.clone(),
        invoker: invoker.clone(),
        region: REGION.into(),
        endpoint_url: ENDPOINT.into(),
        event_retry_delays: vec![],
        code_url_credentials: None,
        gateway_url: Some(gateway.into()),
    });
    Harness {
        app: router(state.clone()),
        state,
        store,
        invoker,
    }
}

const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:web";

#[tokio::test]
async fn function_url_lifecycle() {
    use gust_store::ApiStore as _;
    let h = harness_with_gateway("http://127.0.0.1:8080/");
    assert_eq!(h.create("web").await.status, StatusCode::CREATED);
    let gen0 = h.store.config_generation();

    let c = h
        .json(
            Method::POST,
            "/2021-10-31/functions/web/url",
            json!({"AuthType": "NONE", "Cors": {"AllowOrigins": ["*"], "MaxAge": 60}}),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    let c = c.json();
    let url = c["FunctionUrl"].as_str().expect("url").to_string();
    let id = url
        .strip_prefix("http://127.0.0.1:8080/lambda-url/")
        .and_then(|s| s.strip_suffix('/'))
        .expect("gateway form");
    assert_eq!(id.len(), 32);
    assert!(id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    assert_eq!(c["FunctionArn"], ARN);
    assert_eq!(c["AuthType"], "NONE");
    assert_eq!(c["InvokeMode"], "BUFFERED");
    assert_eq!(
        c["Cors"],
        json!({"AllowCredentials": false, "AllowOrigins": ["*"], "MaxAge": 60})
    );
    assert!(c.get("LastModifiedTime").is_none());
    let created = c["CreationTime"].as_str().expect("time").to_string();
    assert!(created.ends_with('Z') && created.len() == 27, "{created}");
    assert!(h.store.config_generation() > gen0);
    let stored = h.store.get_function_url("web").await.expect("get");
    assert_eq!(stored.map(|s| s.url_id), Some(id.to_string()));

    // A second create conflicts.
    let again = h
        .json(
            Method::POST,
            "/2021-10-31/functions/web/url",
            json!({"AuthType": "NONE"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "ResourceConflictException");
    assert_eq!(
        again.message(),
        format!("Failed to create function url config for [functionArn = {ARN}]. Error message:  FunctionUrlConfig exists for this Lambda function")
    );

    let g = h.get("/2021-10-31/functions/web/url").await;
    assert_eq!(g.status, StatusCode::OK);
    let g = g.json();
    assert_eq!(g["FunctionUrl"], url.as_str());
    assert_eq!(g["CreationTime"], created.as_str());
    assert_eq!(g["LastModifiedTime"], created.as_str());

    // Update changes only what it names, and the URL stays.
    let u = h
        .json(
            Method::PUT,
            "/2021-10-31/functions/web/url",
            json!({"AuthType": "AWS_IAM"}),
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{:?}", u.body);
    let u = u.json();
    assert_eq!(u["AuthType"], "AWS_IAM");
    assert_eq!(u["FunctionUrl"], url.as_str());
    assert_eq!(u["Cors"]["MaxAge"], 60);
    assert_eq!(u["CreationTime"], created.as_str());
    // An empty Cors clears the CORS settings.
    let u = h
        .json(
            Method::PUT,
            "/2021-10-31/functions/web/url",
            json!({"Cors": {}}),
        )
        .await
        .json();
    assert!(u.get("Cors").is_none(), "{u}");
    assert_eq!(u["AuthType"], "AWS_IAM");

    let l = h.get("/2021-10-31/functions/web/urls").await;
    assert_eq!(l.status, StatusCode::OK);
    let l = l.json();
    assert_eq!(l["FunctionUrlConfigs"].as_array().map(Vec::len), Some(1));
    assert_eq!(l["FunctionUrlConfigs"][0]["AuthType"], "AWS_IAM");

    let d = h
        .send(
            Method::DELETE,
            "/2021-10-31/functions/web/url",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    for (method, code) in [(Method::GET, 404), (Method::DELETE, 404)] {
        let r = h
            .send(method, "/2021-10-31/functions/web/url", &[], Body::empty())
            .await;
        assert_eq!(r.status.as_u16(), code);
        assert_eq!(r.error_code(), "ResourceNotFoundException");
        assert_eq!(r.message(), "The resource you requested does not exist.");
        assert_eq!(r.json()["Type"], "User");
    }
    let u = h
        .json(
            Method::PUT,
            "/2021-10-31/functions/web/url",
            json!({"AuthType": "NONE"}),
        )
        .await;
    assert_eq!(u.status, StatusCode::NOT_FOUND);
    let l = h.get("/2021-10-31/functions/web/urls").await.json();
    assert_eq!(l["FunctionUrlConfigs"], json!([]));
}

#[tokio::test]
async fn function_url_without_gateway_uses_lambdas_host_form() {
    let h = harness();
    h.create("web").await;
    let c = h
        .json(
            Method::POST,
            &format!("/2021-10-31/functions/{ARN}/url"),
            json!({"AuthType": "AWS_IAM", "InvokeMode": "RESPONSE_STREAM"}),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    let url = c.json()["FunctionUrl"].as_str().unwrap_or("").to_string();
    assert!(
        url.starts_with("https://")
            && url.ends_with(".lambda-url.us-east-1.on.aws/")
            && url.len() == "https://".len() + 32 + ".lambda-url.us-east-1.on.aws/".len(),
        "{url}"
    );
    assert_eq!(c.json()["InvokeMode"], "RESPONSE_STREAM");
}

#[tokio::test]
async fn function_url_errors() {
    let h = harness();
    // No function.
    let r = h
        .json(
            Method::POST,
            "/2021-10-31/functions/nope/url",
            json!({"AuthType": "NONE"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.message(), "Function does not exist");
    let r = h.get("/2021-10-31/functions/nope/url").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.message(), "The resource you requested does not exist.");
    let r = h.get("/2021-10-31/functions/nope/urls").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.message(), "Function does not exist");

    h.create("web").await;
    let post = |body: Value, query: &'static str| {
        let h = &h;
        async move {
            h.json(
                Method::POST,
                &format!("/2021-10-31/functions/web/url{query}"),
                body,
            )
            .await
        }
    };
    // Aliases do not exist in Gust; $LATEST and versions are refused by the model's pattern.
    let r = post(json!({"AuthType": "NONE"}), "?Qualifier=live").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.message(), "Function does not exist");
    for q in ["?Qualifier=%24LATEST", "?Qualifier=1"] {
        let r = post(json!({"AuthType": "NONE"}), q).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(r.error_code(), "ValidationException", "{q}");
    }
    let r = post(json!({}), "").await;
    assert_eq!(r.error_code(), "ValidationException");
    assert!(r.message().contains("'authType'"), "{}", r.message());
    let r = post(json!({"AuthType": "OPEN"}), "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "ValidationException");
    assert_eq!(r.message(), "1 validation error detected: Value 'OPEN' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: [AWS_IAM, NONE]");
    let r = post(json!({"AuthType": "NONE", "InvokeMode": "FAST"}), "").await;
    assert_eq!(r.error_code(), "ValidationException");
    let r = post(json!({"AuthType": "NONE", "Cors": {"MaxAge": 100000}}), "").await;
    assert_eq!(r.error_code(), "ValidationException");
    let r = post(
        json!({"AuthType": "NONE", "Cors": {"AllowCredentials": true, "AllowOrigins": ["*"]}}),
        "",
    )
    .await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    let r = post(json!({"AuthType": 5}), "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Nothing was created by the refused requests.
    let r = h.get("/2021-10-31/functions/web/url").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.get("/2021-10-31/functions/web/urls?MaxItems=51").await;
    assert_eq!(r.error_code(), "ValidationException");
}

#[tokio::test]
async fn deleting_a_function_deletes_its_url() {
    let h = harness();
    h.create("web").await;
    let r = h
        .json(
            Method::POST,
            "/2021-10-31/functions/web/url",
            json!({"AuthType": "NONE"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let d = h
        .send(
            Method::DELETE,
            "/2015-03-31/functions/web",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    h.create("web").await;
    let r = h.get("/2021-10-31/functions/web/url").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------
// The APIs extension (`/gust/v1/apis`)

#[tokio::test]
async fn apis_put_get_list_delete() {
    use gust_store::ApiStore as _;
    let h = harness();
    h.create("users").await;
    let gen0 = h.store.config_generation();
    let def = json!({
        "payload_format": "1.0",
        "stage": "prod",
        "domains": ["shop.localhost"],
        "cors": {"AllowOrigins": ["*"], "MaxAge": 300},
        "routes": [
            {"route_key": "GET /users/{id}", "function": "users"},
            {"route_key": "GET /health", "mock": {"status": 200, "body": "ok"}}
        ]
    });
    let p = h.json(Method::PUT, "/gust/v1/apis/shop", def.clone()).await;
    assert_eq!(p.status, StatusCode::CREATED, "{:?}", p.body);
    let stored = p.json();
    assert_eq!(stored["name"], "shop");
    assert_eq!(stored["payload_format"], "1.0");
    assert_eq!(stored["integration_timeout_ms"], 29_000);
    assert_eq!(stored["routes"][1]["mock"]["body"], "ok");
    assert!(stored["last_modified"]
        .as_str()
        .is_some_and(|s| s.ends_with("+0000")));
    assert!(h.store.config_generation() > gen0);

    let g = h.get("/gust/v1/apis/shop").await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.json(), stored);

    // Replacing answers 200.
    let mut changed = def.clone();
    changed["name"] = json!("shop");
    changed["payload_format"] = json!("2.0");
    let p = h.json(Method::PUT, "/gust/v1/apis/shop", changed).await;
    assert_eq!(p.status, StatusCode::OK, "{:?}", p.body);
    assert_eq!(p.json()["payload_format"], "2.0");

    let p = h
        .json(
            Method::PUT,
            "/gust/v1/apis/admin",
            json!({"routes": [{"route_key": "$default", "function": "users"}]}),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED);
    let l = h.get("/gust/v1/apis").await;
    assert_eq!(l.status, StatusCode::OK);
    let names: Vec<Value> = l.json()["apis"]
        .as_array()
        .map(|a| a.iter().map(|x| x["name"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(names, [json!("admin"), json!("shop")]);

    let d = h
        .send(Method::DELETE, "/gust/v1/apis/admin", &[], Body::empty())
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let d = h
        .send(Method::DELETE, "/gust/v1/apis/admin", &[], Body::empty())
        .await;
    assert_eq!(d.status, StatusCode::NOT_FOUND);
    assert_eq!(d.error_code(), "ResourceNotFoundException");
    assert_eq!(d.message(), "API not found: admin");
    let g = h.get("/gust/v1/apis/admin").await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn apis_refuse_bad_definitions() {
    let h = harness();
    h.create("users").await;
    let put = |name: &'static str, body: Value| {
        let h = &h;
        async move {
            h.json(Method::PUT, &format!("/gust/v1/apis/{name}"), body)
                .await
        }
    };
    let r = put(
        "shop",
        json!({"routes": [{"route_key": "GET /orders", "function": "orders"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "ResourceNotFoundException");
    assert!(
        r.message()
            .contains("arn:aws:lambda:us-east-1:000000000000:function:orders"),
        "{}",
        r.message()
    );
    let r = put(
        "shop",
        json!({"routes": [{"route_key": "GET users", "function": "users"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    assert!(r.message().contains("Invalid route key"), "{}", r.message());
    let r = put("shop", json!({"name": "other"})).await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    let r = put("shop", json!({"payload_format": "3.0"})).await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    let r = put("shop", json!({"integration_timeout_ms": 60_000})).await;
    assert_eq!(r.error_code(), "InvalidParameterValueException");
    let r = h
        .send(
            Method::PUT,
            "/gust/v1/apis/shop",
            &[("content-type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!(r.error_code(), "SerializationException");
    // Nothing above was stored.
    assert_eq!(h.get("/gust/v1/apis").await.json()["apis"], json!([]));

    // A domain belongs to one API.
    let r = put("a", json!({"domains": ["Shop.localhost"]})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = put("b", json!({"domains": ["shop.localhost"]})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "ResourceConflictException");
    // ...but the API itself may keep it.
    let r = put("a", json!({"domains": ["shop.localhost"]})).await;
    assert_eq!(r.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Resource policies (`/2015-03-31/functions/{name}/policy`)

#[tokio::test]
async fn permissions_add_get_remove() {
    let h = harness();
    h.create("web").await;
    let rev0 =
        h.get("/2015-03-31/functions/web").await.json()["Configuration"]["RevisionId"].clone();
    let none = h.get("/2015-03-31/functions/web/policy").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(none.error_code(), "ResourceNotFoundException");

    let add = h
        .json(
            Method::POST,
            "/2015-03-31/functions/web/policy",
            json!({"StatementId": "url", "Action": "lambda:InvokeFunctionUrl", "Principal": "*",
                   "FunctionUrlAuthType": "NONE"}),
        )
        .await;
    assert_eq!(add.status, StatusCode::CREATED, "{:?}", add.body);
    let stmt: Value =
        serde_json::from_str(add.json()["Statement"].as_str().unwrap_or("")).expect("json");
    assert_eq!(stmt["Sid"], "url");
    assert_eq!(stmt["Resource"], ARN);
    assert_eq!(
        stmt["Condition"]["StringEquals"]["lambda:FunctionUrlAuthType"],
        "NONE"
    );

    let got = h.get("/2015-03-31/functions/web/policy").await;
    assert_eq!(got.status, StatusCode::OK);
    let got = got.json();
    let rev1 =
        h.get("/2015-03-31/functions/web").await.json()["Configuration"]["RevisionId"].clone();
    assert_ne!(
        rev0, rev1,
        "a permission change gives the function a new RevisionId"
    );
    assert_eq!(got["RevisionId"], rev1);
    let policy: Value = serde_json::from_str(got["Policy"].as_str().unwrap_or("")).expect("json");
    assert_eq!(policy["Version"], "2012-10-17");
    assert_eq!(policy["Statement"].as_array().map(Vec::len), Some(1));

    let dup = h
        .json(
            Method::POST,
            "/2015-03-31/functions/web/policy",
            json!({"StatementId": "url", "Action": "lambda:InvokeFunction", "Principal": "*"}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.message(), "The statement id (url) provided already exists. Please provide a new statement id, or remove the existing statement.");
    let stale = h
        .json(
            Method::POST,
            "/2015-03-31/functions/web/policy",
            json!({"StatementId": "b", "Action": "lambda:InvokeFunction", "Principal": "*",
                   "RevisionId": rev0}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let latest = h
        .json(
            Method::POST,
            "/2015-03-31/functions/web/policy?Qualifier=%24LATEST",
            json!({"StatementId": "b", "Action": "lambda:InvokeFunction", "Principal": "*"}),
        )
        .await;
    assert_eq!(latest.error_code(), "InvalidParameterValueException");

    let rm = |sid: &'static str| {
        let h = &h;
        async move {
            h.send(
                Method::DELETE,
                &format!("/2015-03-31/functions/web/policy/{sid}"),
                &[],
                Body::empty(),
            )
            .await
        }
    };
    let missing = rm("nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.message(),
        "Statement nope is not found in resource policy."
    );
    assert_eq!(rm("url").await.status, StatusCode::NO_CONTENT);
    let gone = h.get("/2015-03-31/functions/web/policy").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let again = rm("url").await;
    assert_eq!(
        again.message(),
        "No policy is associated with the given resource."
    );

    let r = h
        .json(
            Method::POST,
            "/2015-03-31/functions/nope/policy",
            json!({"StatementId": "a", "Action": "lambda:InvokeFunction", "Principal": "*"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "ResourceNotFoundException");
}
