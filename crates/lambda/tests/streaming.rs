//! `InvokeWithResponseStream` driven through the router without a socket, against a scripted
//! invoker whose streams the tests feed chunk by chunk. The body is decoded as botocore
//! decodes it (prelude, CRCs, string headers), and the ordering tests make the producer wait
//! for the client to have read a chunk before it writes the next one.

#[allow(dead_code)] // shared with api.rs; this binary uses only the store
mod fakes;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use fakes::MemStore;
use gust_lambda::{router, LambdaState};
use gust_model::{FunctionConfig, FunctionRecord, FUNCTION_SCHEMA_VERSION};
use gust_runtime::{
    InvokeError, InvokeRequest, InvokeResponse, InvokeStream, Invoker, StreamProducer,
};
use gust_store::FunctionStore as _;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tokio::sync::oneshot;
use tower::ServiceExt as _;

const PATH: &str = "/2021-11-15/functions/streamer/response-streaming-invocations";
const WAIT: Duration = Duration::from_secs(5);

/// Hands out the streams a test queued, in order, and records every request.
#[derive(Default)]
struct ScriptedInvoker {
    streams: Mutex<VecDeque<Result<InvokeStream, InvokeError>>>,
    calls: Mutex<Vec<InvokeRequest>>,
}

#[async_trait]
impl Invoker for ScriptedInvoker {
    async fn invoke(&self, _req: InvokeRequest) -> Result<InvokeResponse, InvokeError> {
        Err(InvokeError::Internal(
            "only invoke_stream is scripted".into(),
        ))
    }

    async fn invoke_stream(&self, req: InvokeRequest) -> Result<InvokeStream, InvokeError> {
        self.calls.lock().expect("calls").push(req);
        self.streams
            .lock()
            .expect("streams")
            .pop_front()
            .unwrap_or_else(|| Err(InvokeError::Internal("no stream queued".into())))
    }

    async fn function_changed(&self, _name: &str, _record: Option<Arc<FunctionRecord>>) {}

    async fn shutdown(&self) {}
}

fn streamed(content_type: &str) -> (InvokeStream, StreamProducer) {
    InvokeStream::open(Some(content_type.to_string()), 4)
}

fn outcome(payload: &[u8], function_error: Option<&str>, log: Option<&str>) -> InvokeResponse {
    InvokeResponse {
        payload: Bytes::copy_from_slice(payload),
        function_error: function_error.map(str::to_string),
        log_tail: log.map(str::to_string),
        cold_start: false,
        duration: Duration::from_millis(1),
    }
}

struct Harness {
    app: Router,
    invoker: Arc<ScriptedInvoker>,
}

async fn harness() -> Harness {
    let store = Arc::new(MemStore::new());
    store
        .put_function(&FunctionRecord {
            schema_version: FUNCTION_SCHEMA_VERSION,
            config: FunctionConfig {
                name: "streamer".into(),
                runtime: "nodejs20.x".into(),
                handler: "index.handler".into(),
                role: String::new(),
                description: String::new(),
                timeout: 10,
                memory_size: 128,
                ephemeral_storage: 512,
                environment: BTreeMap::new(),
            },
            code_sha256: String::new(),
            code_id: "code".into(),
            code_size: 0,
            last_modified: String::new(),
            revision_id: "rev".into(),
            reserved_concurrency: None,
            provisioned_concurrency: 0,
            tags: BTreeMap::new(),
        })
        .await
        .expect("put function");
    let invoker = Arc::new(ScriptedInvoker::default());
    let state = Arc::new(LambdaState {
        store,
        invoker: invoker.clone(),
        region: "us-east-1".into(),
        endpoint_url: "http://127.0.0.1:9999".into(),
        event_retry_delays: vec![],
        code_url_credentials: None,
        gateway_url: None,
    });
    Harness {
        app: router(state),
        invoker,
    }
}

impl Harness {
    fn queue(&self, s: Result<InvokeStream, InvokeError>) {
        self.invoker.streams.lock().expect("streams").push_back(s);
    }

    async fn post(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Response<Body> {
        let mut req = Request::builder().method("POST").uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.into()).expect("request");
        tokio::time::timeout(WAIT, self.app.clone().oneshot(req))
            .await
            .expect("the response head came in time")
            .expect("infallible")
    }
}

/// One decoded event stream message, its headers by name.
#[derive(Debug)]
struct Event {
    headers: HashMap<String, String>,
    payload: Bytes,
}

impl Event {
    fn kind(&self) -> &str {
        self.headers.get(":event-type").map_or("", String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

/// Splits `buf` into messages, checking lengths and both CRCs as botocore does (Gust's own
/// decoder, whose framing tests pin it to published encodings). Panics on anything
/// malformed (a test failure).
fn decode(buf: &[u8]) -> Vec<Event> {
    let mut d = gust_aws::eventstream::Decoder::new();
    d.push(buf);
    let mut out = Vec::new();
    while let Some(m) = d.next_message().expect("a well-formed event stream") {
        out.push(Event {
            headers: m.headers.into_iter().collect(),
            payload: m.payload,
        });
    }
    assert!(!d.has_partial(), "truncated message");
    out
}

/// The next body frame's events (one frame is one event here), or `None` at the end.
async fn next_events(body: &mut Body) -> Option<Vec<Event>> {
    let frame = tokio::time::timeout(WAIT, body.frame())
        .await
        .expect("the next frame came in time")?
        .expect("body frame");
    let data = frame.into_data().expect("a data frame");
    Some(decode(&data))
}

async fn all_events(body: Body) -> Vec<Event> {
    let bytes = tokio::time::timeout(WAIT, body.collect())
        .await
        .expect("the body ended in time")
        .expect("body")
        .to_bytes();
    decode(&bytes)
}

#[tokio::test]
async fn chunks_reach_the_client_as_the_function_writes_them() {
    let h = harness().await;
    let (stream, producer) = streamed("text/plain");
    h.queue(Ok(stream));
    let (got_first_tx, got_first) = oneshot::channel::<()>();
    // The function: writes a chunk, then waits until the client has it before writing more.
    let function = tokio::spawn(async move {
        producer
            .chunks
            .send(Bytes::from_static(b"one"))
            .await
            .expect("send one");
        tokio::time::timeout(WAIT, got_first)
            .await
            .expect("the client saw chunk 1 while the function was still running")
            .expect("signal");
        tokio::time::sleep(Duration::from_millis(20)).await;
        producer
            .chunks
            .send(Bytes::from_static(b"two"))
            .await
            .expect("send two");
        drop(producer.chunks);
        let _ = producer.end.send(outcome(b"", None, Some("START\nEND\n")));
    });
    let resp = h
        .post(
            PATH,
            &[
                ("x-amz-log-type", "Tail"),
                ("x-amz-client-context", "eyJhIjoxfQ=="),
            ],
            r#"{"n": 1}"#,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    assert_eq!(resp.headers()["x-amz-executed-version"], "$LATEST");
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let mut body = resp.into_body();

    let first = next_events(&mut body).await.expect("chunk 1");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind(), "PayloadChunk");
    assert_eq!(first[0].headers[":message-type"], "event");
    assert_eq!(
        first[0].headers[":content-type"],
        "application/octet-stream"
    );
    assert_eq!(&first[0].payload[..], b"one");
    got_first_tx.send(()).expect("the function is waiting");

    let second = next_events(&mut body).await.expect("chunk 2");
    assert_eq!(
        (second[0].kind(), &second[0].payload[..]),
        ("PayloadChunk", &b"two"[..])
    );
    let done = next_events(&mut body).await.expect("InvokeComplete");
    assert_eq!(done[0].kind(), "InvokeComplete");
    assert_eq!(done[0].headers[":content-type"], "application/json");
    let doc = done[0].json();
    assert!(doc.get("ErrorCode").is_none(), "{doc}");
    assert_eq!(doc["LogResult"], "U1RBUlQKRU5ECg==");
    assert!(next_events(&mut body).await.is_none());
    function.await.expect("function task");

    let calls = h.invoker.calls.lock().expect("calls");
    assert_eq!(calls.len(), 1);
    assert!(calls[0].tail_log);
    assert_eq!(calls[0].client_context.as_deref(), Some("eyJhIjoxfQ=="));
    assert_eq!(&calls[0].payload[..], br#"{"n": 1}"#);
}

#[tokio::test]
async fn an_error_mid_stream_ends_with_its_invoke_complete() {
    let h = harness().await;
    let (stream, producer) = streamed("application/octet-stream");
    h.queue(Ok(stream));
    producer
        .chunks
        .send(Bytes::from_static(b"partial"))
        .await
        .expect("send");
    drop(producer.chunks);
    let _ = producer.end.send(outcome(
        br#"{"errorMessage":"went wrong","errorType":"Error","stackTrace":[]}"#,
        Some("Unhandled"),
        None,
    ));
    let resp = h.post(PATH, &[], "{}").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let events = all_events(resp.into_body()).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        (events[0].kind(), &events[0].payload[..]),
        ("PayloadChunk", &b"partial"[..])
    );
    assert_eq!(events[1].kind(), "InvokeComplete");
    let doc = events[1].json();
    assert_eq!(doc["ErrorCode"], "Error");
    assert_eq!(doc["ErrorDetails"], "went wrong");
    assert!(doc.get("LogResult").is_none());
}

#[tokio::test]
async fn a_function_that_went_away_ends_the_stream_with_a_service_error() {
    let h = harness().await;
    let (stream, producer) = streamed("text/plain");
    h.queue(Ok(stream));
    producer
        .chunks
        .send(Bytes::from_static(b"x"))
        .await
        .expect("send");
    drop(producer);
    let events = all_events(h.post(PATH, &[], "{}").await.into_body()).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].json()["ErrorCode"], "ServiceException");
}

#[tokio::test]
async fn a_result_that_was_not_streamed_is_one_chunk() {
    let h = harness().await;
    h.queue(Ok(InvokeStream::whole(outcome(
        br#"{"statusCode":200,"body":"hi"}"#,
        None,
        Some("log line\n"),
    ))));
    let resp = h.post(PATH, &[("x-amz-log-type", "Tail")], "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let events = all_events(resp.into_body()).await;
    assert_eq!(events.len(), 2);
    assert_eq!(&events[0].payload[..], br#"{"statusCode":200,"body":"hi"}"#);
    assert_eq!(events[1].json()["LogResult"], "bG9nIGxpbmUK");
    // An empty body is delivered as `{}`, as `Invoke` does.
    assert_eq!(
        &h.invoker.calls.lock().expect("calls")[0].payload[..],
        b"{}"
    );

    // A failed one: no chunk, and the error in InvokeComplete.
    h.queue(Ok(InvokeStream::whole(outcome(
        br#"{"errorMessage":"Task timed out after 3.00 seconds","errorType":"Sandbox.Timedout"}"#,
        Some("Unhandled"),
        None,
    ))));
    let events = all_events(h.post(PATH, &[], "{}").await.into_body()).await;
    assert_eq!(events.len(), 1);
    let doc = events[0].json();
    assert_eq!(doc["ErrorCode"], "Sandbox.Timedout");
    assert_eq!(doc["ErrorDetails"], "Task timed out after 3.00 seconds");
}

async fn json_error(resp: Response<Body>) -> (StatusCode, String, Value) {
    let status = resp.status();
    let code = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        code,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn refusals_before_the_function_runs_are_json_errors() {
    let h = harness().await;
    let (s, code, body) = json_error(
        h.post(
            "/2021-11-15/functions/nope/response-streaming-invocations",
            &[],
            "{}",
        )
        .await,
    )
    .await;
    assert_eq!(
        (s.as_u16(), code.as_str()),
        (404, "ResourceNotFoundException")
    );
    assert_eq!(
        body["Message"],
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"
    );

    h.queue(Err(InvokeError::Throttled {
        reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
    }));
    let resp = h.post(PATH, &[], "{}").await;
    assert_eq!(resp.headers()["retry-after"], "1");
    let (s, code, body) = json_error(resp).await;
    assert_eq!(
        (s.as_u16(), code.as_str()),
        (429, "TooManyRequestsException")
    );
    assert_eq!(
        body["Reason"],
        "ReservedFunctionConcurrentInvocationLimitExceeded"
    );

    let (s, code, body) = json_error(
        h.post(PATH, &[("x-amz-invocation-type", "Event")], "{}")
            .await,
    )
    .await;
    assert_eq!(
        (s.as_u16(), code.as_str()),
        (400, "InvalidParameterValueException")
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .ends_with("Member must satisfy enum value set: [RequestResponse, DryRun]"),
        "{body}"
    );

    let (s, code, _) = json_error(h.post(&format!("{PATH}?Qualifier=7"), &[], "{}").await).await;
    assert_eq!(
        (s.as_u16(), code.as_str()),
        (404, "ResourceNotFoundException")
    );

    let (s, code, _) = json_error(h.post(PATH, &[("x-amz-log-type", "All")], "{}").await).await;
    assert_eq!(
        (s.as_u16(), code.as_str()),
        (400, "InvalidParameterValueException")
    );

    let (s, code, _) = json_error(h.post(PATH, &[], "{not json").await).await;
    assert_eq!(
        (s.as_u16(), code.as_str()),
        (400, "InvalidRequestContentException")
    );

    let big = vec![b' '; gust_model::limits::MAX_SYNC_PAYLOAD + 1];
    let (s, code, body) = json_error(h.post(PATH, &[], big).await).await;
    assert_eq!(
        (s.as_u16(), code.as_str()),
        (413, "RequestTooLargeException")
    );
    assert_eq!(
        body["message"],
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    );

    h.queue(Err(InvokeError::RuntimeUnavailable(
        "nodejs20.x is not installed".into(),
    )));
    let (s, code, _) = json_error(h.post(PATH, &[], "{}").await).await;
    assert_eq!(
        (s.as_u16(), code.as_str()),
        (502, "InvalidRuntimeException")
    );

    // Nothing above reached the function but the two scripted refusals.
    assert_eq!(h.invoker.calls.lock().expect("calls").len(), 2);
}

#[tokio::test]
async fn dry_run_checks_without_running() {
    let h = harness().await;
    let resp = h
        .post(
            PATH,
            &[("x-amz-invocation-type", "DryRun")],
            "not even json",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(h.invoker.calls.lock().expect("calls").is_empty());
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:streamer";
    let resp = h
        .post(
            &format!(
                "/2021-11-15/functions/{arn}/response-streaming-invocations?Qualifier=$LATEST"
            ),
            &[("x-amz-invocation-type", "DryRun")],
            "{}",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}
