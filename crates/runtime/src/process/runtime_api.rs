//! The Lambda Runtime API (2018-06-01) as served to one execution environment.
//!
//! Every environment gets its own listener on `127.0.0.1:0`, so a request is attributed to
//! its environment by the port it arrives on; no request needs to name the environment.
//! A request is parsed into an [`Endpoint`] first and then dispatched to one small function
//! per endpoint. The state shared with the invoker is one [`RuntimeApi`] per environment:
//! the invocation assigned but not yet fetched by `next`, the one in flight, and an init
//! error if the runtime reported one.
//!
//! A response posted with `Lambda-Runtime-Function-Response-Mode: streaming` (Lambda response
//! streaming) is not read whole: as soon as its head arrives the invoker gets an
//! [`Outcome::Stream`] whose channel yields the body's frames as they arrive (a bounded channel,
//! so a slow reader slows the function down through TCP), and whose `end` says how the stream
//! finished: complete, cut by an error the runtime reported in the
//! `Lambda-Runtime-Function-Error-Type` / `Lambda-Runtime-Function-Error-Body` (base64) trailers,
//! broken, or past [`MAX_STREAM_BYTES`]. If the invoker stops reading, the rest of the body is
//! read and thrown away, so the runtime is never left blocked on a write.
//!
//! This module does not enforce deadlines, kill processes or write logs: it only hands
//! invocations to the runtime and hands the runtime's answers back through a oneshot channel.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The largest response a function may return: Lambda's documented 6 MB plus the 100 bytes
/// of slack its error message admits to ("6291556 bytes").
pub(crate) const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// The largest streamed response (`Lambda-Runtime-Function-Response-Mode: streaming`): Lambda's
/// documented 200 MB for response streaming. Past it the stream ends with
/// `Function.ResponseSizeTooLarge`.
pub(crate) const MAX_STREAM_BYTES: usize = 200 * 1024 * 1024;

/// Frames of a streamed response that may wait for the invoker before the runtime is slowed.
const STREAM_FRAMES: usize = 16;

/// Bodies of `error` and `init/error` posts are capped at this size; anything longer is cut.
const MAX_ERROR_BYTES: usize = 1024 * 1024;

/// One invocation handed to an environment.
#[derive(Debug)]
pub(crate) struct Assignment {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: i64,
    pub function_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub done: oneshot::Sender<Outcome>,
}

/// What the runtime answered for an assignment.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `POST .../response`: the function's result.
    Response { body: Bytes, duration: Duration },
    /// `POST .../error`, or a response that was too large: Lambda's error document.
    Error { payload: Bytes, duration: Duration },
    /// `POST /runtime/init/error`: the environment failed to initialize.
    InitError { payload: Bytes },
    /// `POST .../response` in streaming mode: the head has arrived, the body is on its way.
    Stream(StreamStart),
    /// A streamed response whose connection broke mid-body (the runtime most likely died):
    /// Lambda's error document, in case it did not.
    Broken { payload: Bytes, duration: Duration },
}

/// A streamed response whose body is still arriving.
#[derive(Debug)]
pub(crate) struct StreamStart {
    /// The stream's `Content-Type`, as the runtime posted it.
    pub content_type: Option<String>,
    /// The body's frames, in order. Dropping the receiver discards the rest of the body.
    pub chunks: mpsc::Receiver<Bytes>,
    /// Sent once `chunks` is closed: [`Outcome::Response`] with an empty body when the stream
    /// completed, otherwise [`Outcome::Error`] (or [`Outcome::Broken`]) with Lambda's error
    /// document.
    pub end: oneshot::Receiver<Outcome>,
}

/// Where the environment is in its life, as the Runtime API sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Started, `next` not yet called.
    Initializing,
    /// `next` was called at least once.
    Ready,
    /// The runtime posted `init/error`.
    InitFailed,
}

#[derive(Debug)]
struct InFlight {
    request_id: String,
    delivered: Instant,
    done: oneshot::Sender<Outcome>,
}

#[derive(Debug, Default)]
struct State {
    pending: Option<Assignment>,
    in_flight: Option<InFlight>,
    init_error: Option<Bytes>,
    ready_at: Option<Instant>,
}

/// The state one environment's Runtime API shares with the invoker.
#[derive(Debug)]
pub(crate) struct RuntimeApi {
    state: Mutex<State>,
    wake_next: Notify,
    phase: watch::Sender<Phase>,
    /// [`MAX_STREAM_BYTES`], lowered by tests.
    stream_limit: usize,
}

impl RuntimeApi {
    pub(crate) fn new() -> Arc<RuntimeApi> {
        Arc::new(RuntimeApi {
            state: Mutex::new(State::default()),
            wake_next: Notify::new(),
            phase: watch::Sender::new(Phase::Initializing),
            stream_limit: MAX_STREAM_BYTES,
        })
    }

    #[cfg(test)]
    fn with_stream_limit(limit: usize) -> Arc<RuntimeApi> {
        let mut api = RuntimeApi::new();
        if let Some(a) = Arc::get_mut(&mut api) {
            a.stream_limit = limit;
        }
        api
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands an invocation to the runtime; its answer arrives on `assignment.done`.
    /// If the runtime already reported an init error, that error is the answer.
    pub(crate) fn assign(&self, assignment: Assignment) {
        let mut st = self.lock();
        if let Some(payload) = st.init_error.clone() {
            drop(st);
            let _ = assignment.done.send(Outcome::InitError { payload });
            return;
        }
        st.pending = Some(assignment);
        drop(st);
        self.wake_next.notify_one();
    }

    /// When the runtime first called `next`.
    pub(crate) fn ready_at(&self) -> Option<Instant> {
        self.lock().ready_at
    }

    /// When the invocation in flight was delivered to the runtime, if one is.
    pub(crate) fn delivered_at(&self) -> Option<Instant> {
        self.lock().in_flight.as_ref().map(|f| f.delivered)
    }

    /// Forgets any assignment (after a timeout or crash), so that a late answer is refused.
    pub(crate) fn clear(&self) {
        let mut st = self.lock();
        st.pending = None;
        st.in_flight = None;
    }

    pub(crate) fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }
}

/// Serves the Runtime API on `listener` until the task is aborted. Connection tasks live in a
/// `JoinSet` owned by this task, so aborting it closes every connection too.
pub(crate) async fn serve(listener: TcpListener, api: Arc<RuntimeApi>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Small request/response pairs: Nagle would add delay to every invoke.
                    let _ = stream.set_nodelay(true);
                    let api = api.clone();
                    conns.spawn(async move {
                        let svc = hyper::service::service_fn(move |req| handle(api.clone(), req));
                        let conn = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), svc);
                        if let Err(error) = conn.await {
                            tracing::debug!(%error, "runtime api connection ended");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "runtime api accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// A Runtime API request, parsed.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Next,
    Response(String),
    Error(String),
    InitError,
}

impl Endpoint {
    fn parse(method: &Method, path: &str) -> Option<Endpoint> {
        let rest = path.strip_prefix("/2018-06-01/runtime/")?;
        match (method, rest) {
            (&Method::GET, "invocation/next") => Some(Endpoint::Next),
            (&Method::POST, "init/error") => Some(Endpoint::InitError),
            (&Method::POST, _) => {
                let rest = rest.strip_prefix("invocation/")?;
                let (id, what) = rest.split_once('/')?;
                if id.is_empty() || id.contains('/') {
                    return None;
                }
                match what {
                    "response" => Some(Endpoint::Response(id.to_string())),
                    "error" => Some(Endpoint::Error(id.to_string())),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

type Resp = Response<Full<Bytes>>;

async fn handle(api: Arc<RuntimeApi>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let Some(endpoint) = Endpoint::parse(req.method(), req.uri().path()) else {
        return Ok(json(
            StatusCode::NOT_FOUND,
            r#"{"errorMessage":"Unknown Runtime API endpoint","errorType":"NotFound"}"#,
        ));
    };
    Ok(match endpoint {
        Endpoint::Next => next(&api).await,
        Endpoint::Response(id) => response(&api, &id, req).await,
        Endpoint::Error(id) => error(&api, &id, req).await,
        Endpoint::InitError => init_error(&api, req).await,
    })
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn accepted() -> Resp {
    json(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

fn invalid_request_id() -> Resp {
    json(
        StatusCode::BAD_REQUEST,
        r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#,
    )
}

/// Long-polls until an invocation is assigned, then delivers it.
async fn next(api: &RuntimeApi) -> Resp {
    loop {
        // `notify_one` stores a permit when nobody waits, so an assignment made between the
        // check and the await is not missed.
        let notified = api.wake_next.notified();
        {
            let mut st = api.lock();
            let now = Instant::now();
            if st.ready_at.is_none() {
                st.ready_at = Some(now);
                api.phase.send_if_modified(|p| {
                    let change = *p == Phase::Initializing;
                    if change {
                        *p = Phase::Ready;
                    }
                    change
                });
            }
            if let Some(a) = st.pending.take() {
                st.in_flight = Some(InFlight {
                    request_id: a.request_id.clone(),
                    delivered: now,
                    done: a.done,
                });
                drop(st);
                return deliver(
                    a.request_id,
                    a.payload,
                    a.deadline_ms,
                    &a.function_arn,
                    &a.trace_id,
                    a.client_context,
                );
            }
        }
        notified.await;
    }
}

fn deliver(
    request_id: String,
    payload: Bytes,
    deadline_ms: i64,
    arn: &str,
    trace_id: &str,
    client_context: Option<String>,
) -> Resp {
    let mut resp = Response::new(Full::new(payload));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", &request_id);
    put("lambda-runtime-deadline-ms", &deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", arn);
    put("lambda-runtime-trace-id", trace_id);
    if let Some(cc) = client_context {
        put("lambda-runtime-client-context", &cc);
    }
    resp
}

/// How reading a response body went.
enum ResponseBody {
    Complete(Bytes),
    /// Over [`MAX_RESPONSE_BYTES`]; the rest was read and discarded so the connection stays
    /// usable (up to [`DISCARD_LIMIT`]).
    TooLarge,
    Broken(String),
}

/// Most bytes read and thrown away after a response is known to be too large.
const DISCARD_LIMIT: usize = 64 * 1024 * 1024;

async fn read_response_body(body: Incoming) -> ResponseBody {
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    seen += data.len();
                    if seen <= MAX_RESPONSE_BYTES {
                        buf.extend_from_slice(&data);
                    } else {
                        buf = bytes::BytesMut::new();
                        if seen > DISCARD_LIMIT {
                            return ResponseBody::TooLarge;
                        }
                    }
                }
            }
            Err(e) => return ResponseBody::Broken(e.to_string()),
        }
    }
    if seen > MAX_RESPONSE_BYTES {
        ResponseBody::TooLarge
    } else {
        ResponseBody::Complete(buf.freeze())
    }
}

fn streaming(req: &Request<Incoming>) -> bool {
    req.headers()
        .get("lambda-runtime-function-response-mode")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("streaming"))
}

async fn response(api: &RuntimeApi, id: &str, req: Request<Incoming>) -> Resp {
    if streaming(&req) {
        return stream_response(api, id, req).await;
    }
    let body = read_response_body(req.into_body()).await;
    let flight = {
        let mut st = api.lock();
        match &st.in_flight {
            Some(f) if f.request_id == id => st.in_flight.take(),
            _ => None,
        }
    };
    let Some(flight) = flight else {
        return invalid_request_id();
    };
    let duration = flight.delivered.elapsed();
    match body {
        ResponseBody::Complete(body) => {
            let _ = flight.done.send(Outcome::Response { body, duration });
            accepted()
        }
        ResponseBody::TooLarge => {
            let payload = response_too_large(MAX_RESPONSE_BYTES);
            let _ = flight.done.send(Outcome::Error { payload, duration });
            too_large_reply(MAX_RESPONSE_BYTES)
        }
        ResponseBody::Broken(error) => {
            // The runtime's connection broke mid-body; the invocation fails.
            let payload = error_document(b"", Some("Runtime.ResponseError"), &error);
            let _ = flight.done.send(Outcome::Error { payload, duration });
            json(
                StatusCode::BAD_REQUEST,
                r#"{"errorMessage":"Failed to read response body","errorType":"InvalidResponse"}"#,
            )
        }
    }
}

/// A streamed `response`: the invocation is answered with [`Outcome::Stream`] at once, then the
/// body is forwarded frame by frame.
async fn stream_response(api: &RuntimeApi, id: &str, req: Request<Incoming>) -> Resp {
    let flight = {
        let mut st = api.lock();
        match &st.in_flight {
            Some(f) if f.request_id == id => st.in_flight.take(),
            _ => None,
        }
    };
    let Some(flight) = flight else {
        return invalid_request_id();
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (tx, chunks) = mpsc::channel(STREAM_FRAMES);
    let (end_tx, end) = oneshot::channel();
    let _ = flight.done.send(Outcome::Stream(StreamStart {
        content_type,
        chunks,
        end,
    }));
    let (ended, resp) = forward_stream(req.into_body(), tx, api.stream_limit).await;
    let duration = flight.delivered.elapsed();
    let outcome = match ended {
        StreamEnd::Complete => Outcome::Response {
            body: Bytes::new(),
            duration,
        },
        StreamEnd::Failed(payload) => Outcome::Error { payload, duration },
        StreamEnd::Broken(payload) => Outcome::Broken { payload, duration },
    };
    let _ = end_tx.send(outcome);
    resp
}

/// How a streamed body ended.
enum StreamEnd {
    Complete,
    /// Lambda's error document.
    Failed(Bytes),
    /// The connection broke mid-body; Lambda's error document.
    Broken(Bytes),
}

/// Forwards a streamed body's frames to `tx` (discarding them once its receiver is gone) until
/// the body ends; returns how it ended and the answer for the runtime.
async fn forward_stream(
    body: Incoming,
    tx: mpsc::Sender<Bytes>,
    limit: usize,
) -> (StreamEnd, Resp) {
    let mut body = body;
    let mut tx = Some(tx);
    let mut seen = 0usize;
    let mut trailer_error = None;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                let payload = error_document(b"", Some("Runtime.ResponseError"), &e.to_string());
                let resp = json(
                    StatusCode::BAD_REQUEST,
                    r#"{"errorMessage":"Failed to read response body","errorType":"InvalidResponse"}"#,
                );
                return (StreamEnd::Broken(payload), resp);
            }
        };
        match frame.into_data() {
            Ok(data) => {
                seen += data.len();
                if seen > limit {
                    // Cut the caller's stream now; read the rest so the runtime can finish.
                    tx = None;
                    if seen > limit.saturating_add(DISCARD_LIMIT) {
                        break;
                    }
                    continue;
                }
                if data.is_empty() {
                    continue;
                }
                if let Some(t) = &tx {
                    if t.send(data).await.is_err() {
                        // Nobody reads any more: discard the rest.
                        tx = None;
                    }
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    trailer_error = stream_error(&trailers);
                }
            }
        }
    }
    drop(tx);
    if seen > limit {
        return (
            StreamEnd::Failed(response_too_large(limit)),
            too_large_reply(limit),
        );
    }
    match trailer_error {
        Some(payload) => (StreamEnd::Failed(payload), accepted()),
        None => (StreamEnd::Complete, accepted()),
    }
}

/// The error a runtime reported in a stream's trailers, as Lambda's error document:
/// `Lambda-Runtime-Function-Error-Type` and the base64 `Lambda-Runtime-Function-Error-Body`.
fn stream_error(trailers: &http::HeaderMap) -> Option<Bytes> {
    let error_type = trailers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok());
    let body = trailers
        .get("lambda-runtime-function-error-body")
        .map(|v| v.as_bytes());
    if error_type.is_none() && body.is_none() {
        return None;
    }
    use base64::Engine as _;
    let decoded = body.map(|b| {
        base64::engine::general_purpose::STANDARD
            .decode(b.trim_ascii())
            .unwrap_or_else(|_| b.to_vec())
    });
    Some(error_document(
        decoded.as_deref().unwrap_or_default(),
        Some(error_type.unwrap_or("Unhandled")),
        "",
    ))
}

/// Lambda's error document for a response over `limit` bytes ([`MAX_RESPONSE_BYTES`] buffered,
/// [`MAX_STREAM_BYTES`] streamed).
pub(crate) fn response_too_large(limit: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"errorMessage":"Response payload size exceeded maximum allowed payload size ({limit} bytes).","errorType":"Function.ResponseSizeTooLarge"}}"#
    ))
}

/// The Runtime API's answer to a runtime that posted a response over `limit` bytes.
fn too_large_reply(limit: usize) -> Resp {
    json(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            r#"{{"errorMessage":"Exceeded maximum allowed payload size ({limit} bytes).","errorType":"RequestEntityTooLarge"}}"#
        ),
    )
}

async fn error(api: &RuntimeApi, id: &str, req: Request<Incoming>) -> Resp {
    let error_type = error_type_header(&req);
    let body = read_capped(req).await;
    let flight = {
        let mut st = api.lock();
        match &st.in_flight {
            Some(f) if f.request_id == id => st.in_flight.take(),
            _ => None,
        }
    };
    let Some(flight) = flight else {
        return invalid_request_id();
    };
    let payload = error_document(&body, error_type.as_deref(), "");
    let _ = flight.done.send(Outcome::Error {
        payload,
        duration: flight.delivered.elapsed(),
    });
    accepted()
}

async fn init_error(api: &RuntimeApi, req: Request<Incoming>) -> Resp {
    let error_type = error_type_header(&req);
    let body = read_capped(req).await;
    let payload = error_document(&body, error_type.as_deref(), "");
    let (pending, flight) = {
        let mut st = api.lock();
        st.init_error = Some(payload.clone());
        (
            st.pending.take().map(|a| a.done),
            st.in_flight.take().map(|f| f.done),
        )
    };
    api.phase.send_replace(Phase::InitFailed);
    for done in [pending, flight].into_iter().flatten() {
        let _ = done.send(Outcome::InitError {
            payload: payload.clone(),
        });
    }
    accepted()
}

fn error_type_header(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn read_capped(req: Request<Incoming>) -> Bytes {
    match Limited::new(req.into_body(), MAX_ERROR_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    }
}

/// The error document a caller sees: the runtime's JSON object as posted, or, when the body is
/// not a JSON object, Lambda's `{"errorMessage", "errorType"}` around it.
pub(crate) fn error_document(
    body: &[u8],
    error_type: Option<&str>,
    fallback_message: &str,
) -> Bytes {
    if let Ok(serde_json::Value::Object(_)) = serde_json::from_slice::<serde_json::Value>(body) {
        return Bytes::copy_from_slice(body);
    }
    let message = if body.is_empty() {
        fallback_message.to_string()
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    let doc = serde_json::json!({
        "errorMessage": message,
        "errorType": error_type.unwrap_or("Unknown"),
    });
    Bytes::from(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let p = |m: Method, path: &str| Endpoint::parse(&m, path);
        assert_eq!(
            p(Method::GET, "/2018-06-01/runtime/invocation/next"),
            Some(Endpoint::Next)
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/invocation/abc/response"),
            Some(Endpoint::Response("abc".into()))
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/invocation/abc/error"),
            Some(Endpoint::Error("abc".into()))
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/init/error"),
            Some(Endpoint::InitError)
        );
        assert_eq!(p(Method::POST, "/2018-06-01/runtime/invocation/next"), None);
        assert_eq!(
            p(Method::GET, "/2018-06-01/runtime/invocation/abc/response"),
            None
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/invocation//response"),
            None
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/invocation/a/b/response"),
            None
        );
        assert_eq!(p(Method::GET, "/2020-01-01/extension/register"), None);
    }

    type TestBody = http_body_util::Either<Full<Bytes>, FrameChannel>;

    /// A request body written frame by frame (data, then maybe trailers) by the test.
    struct FrameChannel(mpsc::Receiver<hyper::body::Frame<Bytes>>);

    impl hyper::body::Body for FrameChannel {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
            self.0.poll_recv(cx).map(|f| f.map(Ok))
        }
    }

    struct BodyTx(mpsc::Sender<hyper::body::Frame<Bytes>>);

    impl BodyTx {
        async fn send_data(&mut self, data: Bytes) -> Result<(), ()> {
            self.0
                .send(hyper::body::Frame::data(data))
                .await
                .map_err(|_| ())
        }
        async fn send_trailers(&mut self, t: http::HeaderMap) -> Result<(), ()> {
            self.0
                .send(hyper::body::Frame::trailers(t))
                .await
                .map_err(|_| ())
        }
    }

    fn frame_channel(cap: usize) -> (BodyTx, FrameChannel) {
        let (tx, rx) = mpsc::channel(cap);
        (BodyTx(tx), FrameChannel(rx))
    }

    /// A Runtime API on an ephemeral port with one assignment (`r1`) waiting, and a client
    /// connection that has fetched it with `next`.
    async fn delivered(
        api: Arc<RuntimeApi>,
    ) -> (
        oneshot::Receiver<Outcome>,
        hyper::client::conn::http1::SendRequest<TestBody>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, api.clone()));
        let (done, answer) = oneshot::channel();
        api.assign(Assignment {
            request_id: "r1".into(),
            payload: Bytes::from_static(b"{}"),
            deadline_ms: 0,
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            trace_id: "Root=1-0-0".into(),
            client_context: None,
            done,
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let next = Request::get("/2018-06-01/runtime/invocation/next")
            .header(header::HOST, "runtime")
            .body(TestBody::Left(Full::new(Bytes::new())))
            .unwrap();
        let resp = sender.send_request(next).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["lambda-runtime-aws-request-id"], "r1");
        resp.into_body().collect().await.unwrap();
        (answer, sender, server)
    }

    fn streamed_post(body: FrameChannel) -> Request<TestBody> {
        Request::post("/2018-06-01/runtime/invocation/r1/response")
            .header(header::HOST, "runtime")
            .header("Lambda-Runtime-Function-Response-Mode", "streaming")
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(
                header::TRAILER,
                "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
            )
            .body(TestBody::Right(body))
            .unwrap()
    }

    #[tokio::test]
    async fn a_streamed_response_is_forwarded_frame_by_frame_and_trailers_end_it_in_error() {
        let api = RuntimeApi::new();
        let (answer, mut sender, server) = delivered(api.clone()).await;
        let (mut body_tx, body) = frame_channel(1);
        let posted = tokio::spawn(async move { sender.send_request(streamed_post(body)).await });
        body_tx.send_data(Bytes::from_static(b"one")).await.unwrap();
        let Ok(Outcome::Stream(mut stream)) = answer.await else {
            panic!("not a stream");
        };
        assert_eq!(stream.content_type.as_deref(), Some("text/event-stream"));
        // The first frame is here while the runtime has not written the second one yet.
        assert_eq!(&stream.chunks.recv().await.unwrap()[..], b"one");
        body_tx.send_data(Bytes::from_static(b"two")).await.unwrap();
        assert_eq!(&stream.chunks.recv().await.unwrap()[..], b"two");
        let mut trailers = http::HeaderMap::new();
        trailers.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("TypeError"),
        );
        use base64::Engine as _;
        let doc = br#"{"errorType":"TypeError","errorMessage":"boom","trace":["at x"]}"#;
        let encoded = base64::engine::general_purpose::STANDARD.encode(doc);
        trailers.insert(
            "lambda-runtime-function-error-body",
            HeaderValue::from_str(&encoded).unwrap(),
        );
        body_tx.send_trailers(trailers).await.unwrap();
        drop(body_tx);
        assert!(stream.chunks.recv().await.is_none());
        match stream.end.await.unwrap() {
            Outcome::Error { payload, .. } => assert_eq!(&payload[..], &doc[..]),
            other => panic!("unexpected end {other:?}"),
        }
        let resp = posted.await.unwrap().unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        server.abort();
    }

    #[tokio::test]
    async fn a_streamed_response_without_error_trailers_completes() {
        let api = RuntimeApi::new();
        let (answer, mut sender, server) = delivered(api.clone()).await;
        let (mut body_tx, body) = frame_channel(4);
        let posted = tokio::spawn(async move { sender.send_request(streamed_post(body)).await });
        body_tx.send_data(Bytes::from_static(b"all")).await.unwrap();
        drop(body_tx);
        let Ok(Outcome::Stream(mut stream)) = answer.await else {
            panic!("not a stream");
        };
        assert_eq!(&stream.chunks.recv().await.unwrap()[..], b"all");
        assert!(stream.chunks.recv().await.is_none());
        assert!(matches!(
            stream.end.await.unwrap(),
            Outcome::Response { ref body, .. } if body.is_empty()
        ));
        assert_eq!(
            posted.await.unwrap().unwrap().status(),
            StatusCode::ACCEPTED
        );
        server.abort();
    }

    #[tokio::test]
    async fn a_streamed_response_past_the_limit_is_cut_and_the_rest_discarded() {
        let api = RuntimeApi::with_stream_limit(10);
        let (answer, mut sender, server) = delivered(api.clone()).await;
        let (mut body_tx, body) = frame_channel(4);
        let posted = tokio::spawn(async move { sender.send_request(streamed_post(body)).await });
        body_tx
            .send_data(Bytes::from_static(b"0123456"))
            .await
            .unwrap();
        let Ok(Outcome::Stream(mut stream)) = answer.await else {
            panic!("not a stream");
        };
        assert_eq!(&stream.chunks.recv().await.unwrap()[..], b"0123456");
        body_tx
            .send_data(Bytes::from_static(b"789abc"))
            .await
            .unwrap();
        // The caller's stream ends at the overrun; the runtime may keep writing.
        assert!(stream.chunks.recv().await.is_none());
        body_tx
            .send_data(Bytes::from_static(b"more"))
            .await
            .unwrap();
        drop(body_tx);
        match stream.end.await.unwrap() {
            Outcome::Error { payload, .. } => {
                let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                assert_eq!(v["errorType"], "Function.ResponseSizeTooLarge");
                assert!(v["errorMessage"].as_str().unwrap().contains("(10 bytes)"));
            }
            other => panic!("unexpected end {other:?}"),
        }
        let resp = posted.await.unwrap().unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        server.abort();
    }

    #[tokio::test]
    async fn a_caller_that_stops_reading_does_not_block_the_runtime() {
        let api = RuntimeApi::new();
        let (answer, mut sender, server) = delivered(api.clone()).await;
        let (mut body_tx, body) = frame_channel(4);
        let posted = tokio::spawn(async move { sender.send_request(streamed_post(body)).await });
        body_tx
            .send_data(Bytes::from_static(b"first"))
            .await
            .unwrap();
        let Ok(Outcome::Stream(stream)) = answer.await else {
            panic!("not a stream");
        };
        drop(stream.chunks);
        // Far more frames than the channel holds: all are read and dropped.
        for _ in 0..(STREAM_FRAMES * 4) {
            body_tx.send_data(Bytes::from_static(b"x")).await.unwrap();
        }
        drop(body_tx);
        assert_eq!(
            posted.await.unwrap().unwrap().status(),
            StatusCode::ACCEPTED
        );
        assert!(matches!(
            stream.end.await.unwrap(),
            Outcome::Response { .. }
        ));
        server.abort();
    }

    #[test]
    fn stream_errors_come_from_trailers() {
        let mut t = http::HeaderMap::new();
        assert!(stream_error(&t).is_none());
        t.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("Custom"),
        );
        // Not base64: taken as the message.
        t.insert(
            "lambda-runtime-function-error-body",
            HeaderValue::from_static("not base64!"),
        );
        let v: serde_json::Value = serde_json::from_slice(&stream_error(&t).unwrap()).unwrap();
        assert_eq!(v["errorType"], "Custom");
        assert_eq!(v["errorMessage"], "not base64!");
    }

    #[test]
    fn error_documents() {
        let raw = br#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#;
        assert_eq!(&error_document(raw, Some("X"), "")[..], &raw[..]);
        let wrapped: serde_json::Value =
            serde_json::from_slice(&error_document(b"oops", Some("Custom"), "")).unwrap();
        assert_eq!(wrapped["errorMessage"], "oops");
        assert_eq!(wrapped["errorType"], "Custom");
        let wrapped: serde_json::Value =
            serde_json::from_slice(&error_document(b"[1]", None, "")).unwrap();
        assert_eq!(wrapped["errorType"], "Unknown");
    }
}
