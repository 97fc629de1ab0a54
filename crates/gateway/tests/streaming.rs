//! `RESPONSE_STREAM` function URLs over a real socket, with reqwest as the client and a
//! scripted invoker whose streams the tests feed chunk by chunk: the HTTP prelude of
//! `awslambda.HttpResponseStream.from`, plain streams, results that were not streamed, and
//! failures before and after the first byte; and `wasm` functions' raw HTTP bodies that are
//! still being written after their head, through an API route and a function URL. The
//! ordering tests make the function wait until the client has read a chunk before it writes
//! the next one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gust_aws::sigv4::Credentials;
use gust_gateway::{Gateway, GatewayConfig, GatewayDeps};
use gust_model::{
    ApiDefinition, CorsConfig, FunctionConfig, FunctionRecord, FunctionUrlConfig, PayloadFormat,
    RouteSpec,
};
use gust_runtime::{
    BodyStream, HttpBody, HttpHandler, InvokeError, InvokeRequest, InvokeResponse, InvokeStream,
    Invoker,
};
use gust_store::{ApiStore, FunctionStore, SqliteStore, StoreOptions};
use tokio::sync::{mpsc, oneshot};

const WAIT: Duration = Duration::from_secs(5);
const STREAM_ID: &str = "stream00000000000000000000000000";
const BUFFERED_ID: &str = "buffer00000000000000000000000000";
const WASM_ID: &str = "wasm0000000000000000000000000000";
const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";

/// Hands out what a test queued, in order, and counts calls of each kind.
#[derive(Default)]
struct ScriptedInvoker {
    streams: Mutex<VecDeque<Result<InvokeStream, InvokeError>>>,
    results: Mutex<VecDeque<InvokeResponse>>,
    stream_calls: Mutex<Vec<InvokeRequest>>,
    invoke_calls: Mutex<Vec<InvokeRequest>>,
}

#[async_trait]
impl Invoker for ScriptedInvoker {
    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, InvokeError> {
        self.invoke_calls.lock().expect("calls").push(req);
        self.results
            .lock()
            .expect("results")
            .pop_front()
            .ok_or_else(|| InvokeError::Internal("no result queued".into()))
    }

    async fn invoke_stream(&self, req: InvokeRequest) -> Result<InvokeStream, InvokeError> {
        self.stream_calls.lock().expect("calls").push(req);
        self.streams
            .lock()
            .expect("streams")
            .pop_front()
            .unwrap_or_else(|| Err(InvokeError::Internal("no stream queued".into())))
    }

    async fn function_changed(&self, _name: &str, _record: Option<Arc<FunctionRecord>>) {}

    async fn shutdown(&self) {}
}

/// Hands out the raw responses a test queued for `wasm` functions, in order.
#[derive(Default)]
struct ScriptedHttp {
    responses: Mutex<VecDeque<http::Response<HttpBody>>>,
}

#[async_trait]
impl HttpHandler for ScriptedHttp {
    async fn handle_http(
        &self,
        _function: Arc<FunctionRecord>,
        _request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, InvokeError> {
        Err(InvokeError::Internal("the gateway asks for streams".into()))
    }

    async fn handle_http_stream(
        &self,
        _function: Arc<FunctionRecord>,
        _request: http::Request<Bytes>,
    ) -> Result<http::Response<HttpBody>, InvokeError> {
        self.responses
            .lock()
            .expect("responses")
            .pop_front()
            .ok_or_else(|| InvokeError::Internal("no response queued".into()))
    }
}

/// A `wasm` function's body still being written: its chunks and how it ends.
type RawStream = (
    HttpBody,
    mpsc::Sender<Bytes>,
    oneshot::Sender<Result<(), String>>,
);

fn raw_stream() -> RawStream {
    let (chunks_tx, chunks) = mpsc::channel(4);
    let (end_tx, end) = oneshot::channel();
    (
        HttpBody::Stream(BodyStream {
            chunks,
            end,
            hold: None,
        }),
        chunks_tx,
        end_tx,
    )
}

/// The function's side of a streamed invocation.
struct Producer {
    chunks: mpsc::Sender<Bytes>,
    end: oneshot::Sender<InvokeResponse>,
}

impl Producer {
    async fn write(&self, bytes: &[u8]) {
        self.chunks
            .send(Bytes::copy_from_slice(bytes))
            .await
            .expect("the gateway reads the stream");
    }

    fn finish(self, function_error: Option<&str>) {
        drop(self.chunks);
        let _ = self.end.send(result(
            br#"{"errorMessage":"boom","errorType":"Error"}"#,
            function_error,
        ));
    }
}

fn streamed(content_type: &str) -> (InvokeStream, Producer) {
    let (stream, p) = InvokeStream::open(Some(content_type.to_string()), 4);
    (
        stream,
        Producer {
            chunks: p.chunks,
            end: p.end,
        },
    )
}

fn result(payload: &[u8], function_error: Option<&str>) -> InvokeResponse {
    InvokeResponse {
        payload: Bytes::copy_from_slice(payload),
        function_error: function_error.map(str::to_string),
        log_tail: None,
        cold_start: true,
        duration: Duration::from_millis(1),
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    invoker: Arc<ScriptedInvoker>,
    http: Arc<ScriptedHttp>,
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            Arc::new(SqliteStore::open(dir.path(), StoreOptions::default()).expect("store"));
        store
            .put_function(&FunctionRecord {
                revision_id: "rev".into(),
                ..FunctionRecord::new(
                    FunctionConfig {
                        timeout: 10,
                        ..FunctionConfig::new("streamer", "nodejs20.x", "index.handler")
                    },
                    "none",
                )
            })
            .await
            .expect("put function");
        let url = |id: &str, mode: &str, cors: Option<CorsConfig>| FunctionUrlConfig {
            schema_version: 1,
            function: "streamer".into(),
            url_id: id.into(),
            auth_type: "NONE".into(),
            cors,
            invoke_mode: mode.into(),
            creation_time: String::new(),
            last_modified_time: String::new(),
        };
        // The store keys URLs by function, so the buffered one belongs to a second function.
        store
            .put_function_url(&url(
                STREAM_ID,
                "RESPONSE_STREAM",
                Some(CorsConfig {
                    allow_origins: vec!["*".into()],
                    ..Default::default()
                }),
            ))
            .await
            .expect("put url");
        let mut other = store
            .get_function("streamer")
            .await
            .expect("get")
            .expect("function");
        other.config.name = "buffered".into();
        store.put_function(&other).await.expect("put function");
        store
            .put_function_url(&FunctionUrlConfig {
                function: "buffered".into(),
                ..url(BUFFERED_ID, "BUFFERED", None)
            })
            .await
            .expect("put url");

        let mut wasm = other.clone();
        wasm.config.name = "wasmfn".into();
        wasm.config.runtime = "wasm".into();
        store.put_function(&wasm).await.expect("put function");
        store
            .put_function_url(&FunctionUrlConfig {
                function: "wasmfn".into(),
                ..url(WASM_ID, "BUFFERED", None)
            })
            .await
            .expect("put url");
        store
            .put_api(&ApiDefinition {
                schema_version: 1,
                name: "rawapi".into(),
                payload_format: PayloadFormat::V2,
                stage: None,
                domains: vec![],
                cors: None,
                integration_timeout_ms: 29_000,
                stage_variables: BTreeMap::new(),
                routes: vec![RouteSpec {
                    route_key: "GET /raw".into(),
                    function: "wasmfn".into(),
                    mock: None,
                }],
                last_modified: String::new(),
            })
            .await
            .expect("put api");

        let invoker = Arc::new(ScriptedInvoker::default());
        let http = Arc::new(ScriptedHttp::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let gateway = Gateway::new(
            GatewayConfig::new("us-east-1", base.clone()),
            GatewayDeps {
                apis: store.clone(),
                functions: store,
                invoker: invoker.clone(),
                http: http.clone(),
                credentials: Arc::new(Credentials {
                    access_key_id: "AKID".into(),
                    secret_access_key: "secret".into(),
                }),
            },
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(gateway.serve(listener, async move {
            let _ = stopped.await;
        }));
        Harness {
            _dir: dir,
            invoker,
            http,
            base,
            client: reqwest::Client::new(),
            stop: Some(stop),
            served: Some(served),
        }
    }

    fn queue(&self, s: Result<InvokeStream, InvokeError>) {
        self.invoker.streams.lock().expect("streams").push_back(s);
    }

    async fn get(&self, url_id: &str, path: &str) -> reqwest::Response {
        tokio::time::timeout(
            WAIT,
            self.client
                .get(format!("{}/lambda-url/{url_id}{path}", self.base))
                .header("origin", "https://app.example")
                .send(),
        )
        .await
        .expect("the response head came in time")
        .expect("response")
    }

    fn queue_raw(&self, resp: http::Response<HttpBody>) {
        self.http
            .responses
            .lock()
            .expect("responses")
            .push_back(resp);
    }

    async fn send(&self, path: &str) -> reqwest::Response {
        tokio::time::timeout(WAIT, self.client.get(format!("{}{path}", self.base)).send())
            .await
            .expect("the response head came in time")
            .expect("response")
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(20), h)
                .await
                .expect("serve returns after shutdown")
                .expect("join")
                .expect("serve");
        }
    }
}

async fn next_chunk(resp: &mut reqwest::Response) -> Option<Bytes> {
    tokio::time::timeout(WAIT, resp.chunk())
        .await
        .expect("the next chunk came in time")
        .expect("chunk")
}

async fn rest(resp: reqwest::Response) -> Vec<u8> {
    tokio::time::timeout(WAIT, resp.bytes())
        .await
        .expect("the body ended in time")
        .expect("body")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_stream_gets_its_prelude_and_streams_its_body() {
    let h = Harness::start().await;
    let (stream, producer) = streamed(HTTP_INTEGRATION);
    h.queue(Ok(stream));
    let (got_first_tx, got_first) = oneshot::channel::<()>();
    let function = tokio::spawn(async move {
        // The prelude and its delimiter arrive split across writes, as Node may flush them.
        producer
            .write(br#"{"statusCode":201,"headers":{"content-type":"text/plain","x-custom":"yes"},"cookies":["a=1","b=2; Path=/"]}"#)
            .await;
        producer.write(&[0, 0, 0, 0]).await;
        producer.write(b"\0\0\0\0chunk-1").await;
        tokio::time::timeout(WAIT, got_first)
            .await
            .expect("the client saw chunk 1 while the function was still running")
            .expect("signal");
        tokio::time::sleep(Duration::from_millis(20)).await;
        producer.write(b"chunk-2").await;
        producer.finish(None);
    });
    let mut resp = h.get(STREAM_ID, "/some/path?x=1").await;
    assert_eq!(resp.status(), 201);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["x-custom"], "yes");
    assert_eq!(headers["transfer-encoding"], "chunked");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers.contains_key("x-amzn-requestid"));
    let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, vec!["a=1", "b=2; Path=/"]);

    assert_eq!(
        next_chunk(&mut resp).await.as_deref(),
        Some(&b"chunk-1"[..])
    );
    got_first_tx.send(()).expect("the function is waiting");
    assert_eq!(rest(resp).await, b"chunk-2");
    function.await.expect("function task");

    // The function got a function URL event for the path it was called with.
    let calls = h.invoker.stream_calls.lock().expect("calls").clone();
    assert_eq!(calls.len(), 1);
    let event: serde_json::Value = serde_json::from_slice(&calls[0].payload).expect("event");
    assert_eq!(event["rawPath"], "/some/path");
    assert_eq!(event["rawQueryString"], "x=1");
    assert!(h.invoker.invoke_calls.lock().expect("calls").is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_stream_is_a_200_with_its_content_type() {
    let h = Harness::start().await;
    let (stream, producer) = streamed("text/event-stream");
    h.queue(Ok(stream));
    let (got_first_tx, got_first) = oneshot::channel::<()>();
    let function = tokio::spawn(async move {
        producer.write(b"data: 1\n\n").await;
        got_first.await.expect("signal");
        producer.write(b"data: 2\n\n").await;
        producer.finish(None);
    });
    let mut resp = h.get(STREAM_ID, "/").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(
        next_chunk(&mut resp).await.as_deref(),
        Some(&b"data: 1\n\n"[..])
    );
    got_first_tx.send(()).expect("the function is waiting");
    assert_eq!(rest(resp).await, b"data: 2\n\n");
    function.await.expect("function task");

    // An empty prelude-less HTTP stream is a plain 200 with an empty body.
    let (stream, producer) = streamed(HTTP_INTEGRATION);
    h.queue(Ok(stream));
    producer.finish(None);
    let resp = h.get(STREAM_ID, "/").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(rest(resp).await, b"");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_before_the_first_byte_are_the_buffered_502() {
    let h = Harness::start().await;
    for content_type in [HTTP_INTEGRATION, "text/plain"] {
        let (stream, producer) = streamed(content_type);
        h.queue(Ok(stream));
        producer.finish(Some("Unhandled"));
        let resp = h.get(STREAM_ID, "/").await;
        assert_eq!(resp.status(), 502, "{content_type}");
        assert_eq!(resp.headers()["x-amzn-errortype"], "ServiceException");
        assert_eq!(rest(resp).await, br#"{"Message":"Internal Server Error"}"#);
    }
    // The prelude came but not its end: the head was never sent, so still a 502.
    let (stream, producer) = streamed(HTTP_INTEGRATION);
    h.queue(Ok(stream));
    producer.write(br#"{"statusCode":200}"#).await;
    producer.finish(Some("Unhandled"));
    assert_eq!(h.get(STREAM_ID, "/").await.status(), 502);
    // A prelude that is not JSON is a malformed response.
    let (stream, producer) = streamed(HTTP_INTEGRATION);
    h.queue(Ok(stream));
    producer.write(b"not json\0\0\0\0\0\0\0\0body").await;
    producer.finish(None);
    assert_eq!(h.get(STREAM_ID, "/").await.status(), 502);
    // Refused before running: throttled.
    h.queue(Err(InvokeError::Throttled {
        reason: "ConcurrentInvocationLimitExceeded",
    }));
    let resp = h.get(STREAM_ID, "/").await;
    assert_eq!(resp.status(), 429);
    assert_eq!(rest(resp).await, br#"{"Message":"Rate Exceeded."}"#);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_mid_stream_cuts_the_body_short() {
    let h = Harness::start().await;
    let (stream, producer) = streamed(HTTP_INTEGRATION);
    h.queue(Ok(stream));
    let (got_first_tx, got_first) = oneshot::channel::<()>();
    let function = tokio::spawn(async move {
        producer
            .write(b"{\"statusCode\":200}\0\0\0\0\0\0\0\0partial")
            .await;
        got_first.await.expect("signal");
        producer.finish(Some("Unhandled"));
    });
    let mut resp = h.get(STREAM_ID, "/").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        next_chunk(&mut resp).await.as_deref(),
        Some(&b"partial"[..])
    );
    got_first_tx.send(()).expect("the function is waiting");
    // The chunked body never gets its last chunk: reading on is an error, not a clean end.
    let end = tokio::time::timeout(WAIT, resp.chunk())
        .await
        .expect("the connection ended in time");
    assert!(end.is_err(), "{end:?}");
    function.await.expect("function task");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_was_not_streamed_maps_as_a_buffered_url_does() {
    let h = Harness::start().await;
    h.queue(Ok(InvokeStream::whole(result(
        br#"{"statusCode":202,"headers":{"x-a":"1"},"cookies":["c=3"],"body":"aGk=","isBase64Encoded":true}"#,
        None,
    ))));
    let resp = h.get(STREAM_ID, "/").await;
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["x-a"], "1");
    assert_eq!(resp.headers()["set-cookie"], "c=3");
    assert_eq!(resp.headers()["content-length"], "2");
    assert_eq!(rest(resp).await, b"hi");

    h.queue(Ok(InvokeStream::whole(result(br#"{"just":"json"}"#, None))));
    let resp = h.get(STREAM_ID, "/").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(rest(resp).await, br#"{"just":"json"}"#);

    h.queue(Ok(InvokeStream::whole(result(b"{}", Some("Unhandled")))));
    let resp = h.get(STREAM_ID, "/").await;
    assert_eq!(resp.status(), 502);

    // The same result through a BUFFERED URL, which calls `invoke`, not `invoke_stream`.
    h.invoker.results.lock().expect("results").push_back(result(
        br#"{"statusCode":202,"headers":{"x-a":"1"},"body":"hi"}"#,
        None,
    ));
    let resp = h.get(BUFFERED_ID, "/").await;
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["content-length"], "2");
    assert_eq!(rest(resp).await, b"hi");
    assert_eq!(h.invoker.invoke_calls.lock().expect("calls").len(), 1);
    assert_eq!(h.invoker.stream_calls.lock().expect("calls").len(), 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_body_still_being_written_streams_through_routes_and_urls() {
    let h = Harness::start().await;
    let url_path = format!("/lambda-url/{WASM_ID}/");
    for path in ["/raw", url_path.as_str()] {
        let (body, chunks, end) = raw_stream();
        let mut head = http::Response::new(body);
        *head.status_mut() = http::StatusCode::ACCEPTED;
        head.headers_mut()
            .insert("content-type", http::HeaderValue::from_static("text/plain"));
        h.queue_raw(head);
        let (got_first_tx, got_first) = oneshot::channel::<()>();
        let function = tokio::spawn(async move {
            chunks
                .send(Bytes::from_static(b"tick "))
                .await
                .expect("send");
            tokio::time::timeout(WAIT, got_first)
                .await
                .expect("the client saw chunk 1 while the function was still running")
                .expect("signal");
            chunks
                .send(Bytes::from_static(b"tock"))
                .await
                .expect("send");
            drop(chunks);
            let _ = end.send(Ok(()));
        });
        let mut resp = h.send(path).await;
        assert_eq!(resp.status(), 202, "{path}");
        assert_eq!(resp.headers()["content-type"], "text/plain");
        assert_eq!(resp.headers()["transfer-encoding"], "chunked");
        assert_eq!(next_chunk(&mut resp).await.as_deref(), Some(&b"tick "[..]));
        got_first_tx.send(()).expect("the function is waiting");
        assert_eq!(rest(resp).await, b"tock");
        function.await.expect("function task");
    }

    // A body that stops before its end is cut short.
    let (body, chunks, end) = raw_stream();
    h.queue_raw(http::Response::new(body));
    chunks
        .send(Bytes::from_static(b"half"))
        .await
        .expect("send");
    drop(chunks);
    let _ = end.send(Err("wasm trap".into()));
    let mut resp = h.send("/raw").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(next_chunk(&mut resp).await.as_deref(), Some(&b"half"[..]));
    let cut = tokio::time::timeout(WAIT, resp.chunk())
        .await
        .expect("in time");
    assert!(cut.is_err(), "{cut:?}");

    // A whole body keeps its Content-Length.
    h.queue_raw(http::Response::new(HttpBody::Full(Bytes::from_static(
        b"whole",
    ))));
    let resp = h.send("/raw").await;
    assert_eq!(resp.headers()["content-length"], "5");
    assert_eq!(rest(resp).await, b"whole");
    h.stop().await;
}
