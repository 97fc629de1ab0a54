//! The Lambda Runtime API (2018-06-01) as served to one execution environment.
//!
//! Every environment gets its own listener on `127.0.0.1:0`, so a request is attributed to
//! its environment by the port it arrives on; no request needs to name the environment.
//! A request is parsed into an [`Endpoint`] first and then dispatched to one small function
//! per endpoint. The state shared with the invoker is one [`RuntimeApi`] per environment:
//! the invocation assigned but not yet fetched by `next`, the one in flight, and an init
//! error if the runtime reported one.
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
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The largest response a function may return: Lambda's documented 6 MB plus the 100 bytes
/// of slack its error message admits to ("6291556 bytes").
pub(crate) const MAX_RESPONSE_BYTES: usize = 6_291_556;

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
}

impl RuntimeApi {
    pub(crate) fn new() -> Arc<RuntimeApi> {
        Arc::new(RuntimeApi {
            state: Mutex::new(State::default()),
            wake_next: Notify::new(),
            phase: watch::Sender::new(Phase::Initializing),
        })
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

fn json(status: StatusCode, body: &'static str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
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

async fn response(api: &RuntimeApi, id: &str, req: Request<Incoming>) -> Resp {
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
            let payload = Bytes::from_static(
                br#"{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}"#,
            );
            let _ = flight.done.send(Outcome::Error { payload, duration });
            json(
                StatusCode::PAYLOAD_TOO_LARGE,
                r#"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#,
            )
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
