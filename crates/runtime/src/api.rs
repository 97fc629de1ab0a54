//! The interface between the Lambda API (and later triggers) and the runtime.

use std::collections::BTreeMap;
use std::future::Future as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gust_model::FunctionRecord;

/// One invocation to run.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub function: Arc<FunctionRecord>,
    pub payload: Bytes,
    /// The id the caller sees (`x-amzn-RequestId`), also the Runtime API's
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// Base64 `X-Amz-Client-Context`, passed through to the runtime.
    pub client_context: Option<String>,
    /// Collect this invocation's log lines for `LogType=Tail`.
    pub tail_log: bool,
}

/// How the invocation ended, as far as the caller of `Invoke` can tell.
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    /// The function's result, or Lambda's error document when `function_error` is set.
    pub payload: Bytes,
    /// `X-Amz-Function-Error`: `Some("Unhandled")` for handler exceptions, timeouts, crashes,
    /// init failures and out-of-memory kills.
    pub function_error: Option<String>,
    /// The last 4 KB of this invocation's log (START..REPORT), not yet base64-encoded; set when
    /// `tail_log` was requested.
    pub log_tail: Option<String>,
    /// Whether a new environment was started for this invocation.
    pub cold_start: bool,
    /// Time spent in the handler (from delivery on `next` to `response`/`error`).
    pub duration: Duration,
}

/// An invocation whose result is handed over while the function produces it (Lambda response
/// streaming: `InvokeWithResponseStream` and `RESPONSE_STREAM` function URLs).
///
/// A function that streams (a Node handler wrapped in `awslambda.streamifyResponse`, or any
/// runtime posting its response with `Lambda-Runtime-Function-Response-Mode: streaming`)
/// yields its bytes on `chunks` as it writes them; any other function yields its whole
/// result as one chunk. `end` resolves once `chunks` is closed, with how the invocation
/// ended: `function_error` set means the function failed (before or in the middle of its
/// stream) and `payload` is then Lambda's error document; on success `payload` is empty.
#[derive(Debug)]
pub struct InvokeStream {
    /// The content type the function gave its stream (the `Content-Type` of its streamed
    /// response, e.g. `application/vnd.awslambda.http-integration-response` for
    /// `awslambda.HttpResponseStream.from`); `None` for a function that did not stream.
    pub content_type: Option<String>,
    /// Whether the function streamed (`false`: `chunks` holds a buffered result).
    pub streamed: bool,
    /// The response's bytes, in order.
    pub chunks: tokio::sync::mpsc::Receiver<Bytes>,
    /// How the invocation ended; sent after the last chunk.
    pub end: tokio::sync::oneshot::Receiver<InvokeResponse>,
    /// Held until the stream is dropped (e.g. the account-wide concurrency share).
    pub hold: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// The function's side of an [`InvokeStream`] opened with [`InvokeStream::open`]: where its
/// chunks go, and where its end is said once the chunks are done.
#[derive(Debug)]
pub struct StreamProducer {
    pub chunks: tokio::sync::mpsc::Sender<Bytes>,
    pub end: tokio::sync::oneshot::Sender<InvokeResponse>,
}

impl InvokeStream {
    /// A stream the function is about to write, with room for `capacity` chunks in flight
    /// (back-pressure beyond), and the producer that writes it.
    pub fn open(content_type: Option<String>, capacity: usize) -> (InvokeStream, StreamProducer) {
        let (chunks_tx, chunks) = tokio::sync::mpsc::channel(capacity);
        let (end_tx, end) = tokio::sync::oneshot::channel();
        (
            InvokeStream {
                content_type,
                streamed: true,
                chunks,
                end,
                hold: None,
            },
            StreamProducer {
                chunks: chunks_tx,
                end: end_tx,
            },
        )
    }

    /// A finished invocation as a stream: its payload as one chunk (none when it failed,
    /// since the error document goes in `end`), then its end.
    pub fn whole(resp: InvokeResponse) -> InvokeStream {
        let (tx, chunks) = tokio::sync::mpsc::channel(1);
        if resp.function_error.is_none() && !resp.payload.is_empty() {
            // Cannot fail: the channel is new, has room for one and its receiver is here.
            let _ = tx.try_send(resp.payload.clone());
        }
        let (end_tx, end) = tokio::sync::oneshot::channel();
        let _ = end_tx.send(resp.into_stream_end());
        InvokeStream {
            content_type: None,
            streamed: false,
            chunks,
            end,
            hold: None,
        }
    }
}

impl InvokeResponse {
    /// What an [`InvokeStream`]'s `end` carries for this result: the error document if the
    /// function failed, otherwise no payload (its bytes went out as chunks).
    pub fn into_stream_end(self) -> InvokeResponse {
        if self.function_error.is_some() {
            return self;
        }
        InvokeResponse {
            payload: Bytes::new(),
            ..self
        }
    }
}

/// Lambda's throttling `Reason` when a function's reserved concurrency is in use.
pub const RESERVED_LIMIT: &str = "ReservedFunctionConcurrentInvocationLimitExceeded";
/// Lambda's throttling `Reason` at the account-wide limit (`--max-concurrency`).
pub const GLOBAL_LIMIT: &str = "ConcurrentInvocationLimitExceeded";

/// Why an invocation could not be run at all (no function error: the function never ran).
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// Lambda's 429 `TooManyRequestsException`; `reason` is Lambda's `Reason` field
    /// (`ReservedFunctionConcurrentInvocationLimitExceeded` or `ConcurrentInvocationLimitExceeded`).
    #[error("Rate Exceeded.")]
    Throttled { reason: &'static str },
    /// The runtime for this function's `Runtime` is not installed on this machine
    /// (Lambda has no equivalent; surfaced as 502 `ServiceException` / `InvalidRuntimeException`).
    #[error("{0}")]
    RuntimeUnavailable(String),
    /// Shutting down: no new invocations are accepted.
    #[error("the runtime is shutting down")]
    ShuttingDown,
    /// Anything else that is the platform's fault (spawn failed, I/O error).
    #[error("{0}")]
    Internal(String),
}

/// Runs invocations. The server creates one; the Lambda API, the async-event worker and
/// later triggers share it.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Runs one invocation to completion, honouring the function's timeout and limits.
    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, InvokeError>;
    /// Runs one invocation, handing its result over as the function produces it. Returns once
    /// the function has started its response (or has finished, if it does not stream).
    /// Executors whose functions cannot stream keep this default: the whole result, once done.
    async fn invoke_stream(&self, req: InvokeRequest) -> Result<InvokeStream, InvokeError> {
        self.invoke(req).await.map(InvokeStream::whole)
    }
    /// The function's code or configuration changed (or it was deleted): idle environments are
    /// stopped now; busy ones are stopped when their invocation ends. Provisioned environments
    /// are started again from the new record when `record` is `Some`.
    async fn function_changed(&self, name: &str, record: Option<Arc<FunctionRecord>>);
    /// Stops accepting invocations, lets running ones finish (or hit their deadline), and
    /// stops every environment.
    async fn shutdown(&self);
    /// Checks, before a function is created or its code replaced, that this executor can run
    /// the code at all (a Wasm module must compile); the message says why not. Executors that
    /// can only tell at start-up (processes) accept everything.
    async fn validate(&self, record: &FunctionRecord) -> Result<(), String> {
        let _ = record;
        Ok(())
    }
}

/// Serves raw HTTP requests with functions that speak HTTP themselves (Wasm `wasi:http`
/// components and WAGI modules): the gateway hands them the request as it came, instead of
/// an API Gateway event.
#[async_trait]
pub trait HttpHandler: Send + Sync {
    /// Runs `function` on `request` with its limits; a guest error or timeout becomes a 502 /
    /// 504 response, while a refusal to run (throttling, shutdown) is an [`InvokeError`].
    async fn handle_http(
        &self,
        function: Arc<FunctionRecord>,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, InvokeError>;

    /// Like [`HttpHandler::handle_http`], but a function still writing its response body a
    /// short while after it sent the status and headers has the rest handed over as it writes
    /// it (as Spin and `wasmtime serve` stream), instead of all at once at the end. A failure
    /// after that point cuts the body short; before it, it is the same 502 / 504.
    /// Handlers that cannot stream keep this default: the whole response, once done.
    async fn handle_http_stream(
        &self,
        function: Arc<FunctionRecord>,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<HttpBody>, InvokeError> {
        Ok(self
            .handle_http(function, request)
            .await?
            .map(HttpBody::Full))
    }
}

/// The body of a raw HTTP response ([`HttpHandler::handle_http_stream`]); an
/// [`hyper::body::Body`], so a server can send it as it is.
#[derive(Debug)]
pub enum HttpBody {
    /// The whole body (sent with its `Content-Length`).
    Full(Bytes),
    /// A body the function is still writing.
    Stream(BodyStream),
}

/// The rest of a body the function is still writing.
#[derive(Debug)]
pub struct BodyStream {
    /// The body's bytes, in order, as the function writes them.
    pub chunks: tokio::sync::mpsc::Receiver<Bytes>,
    /// Sent once `chunks` is closed: `Ok` when the function finished its body, otherwise why
    /// it stopped (it trapped, timed out or went past the size limit); a dropped sender is
    /// also a failure.
    pub end: tokio::sync::oneshot::Receiver<Result<(), String>>,
    /// Held until the body is dropped (e.g. the account-wide concurrency share).
    pub hold: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// A streamed body that did not finish: the server must end the response abnormally (no
/// final chunk), so the client can tell it is incomplete.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the function's response ended early: {0}")]
pub struct BodyCut(pub String);

impl hyper::body::Body for HttpBody {
    type Data = Bytes;
    type Error = BodyCut;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BodyCut>>> {
        use std::task::Poll;
        match self.get_mut() {
            HttpBody::Full(b) if b.is_empty() => Poll::Ready(None),
            HttpBody::Full(b) => Poll::Ready(Some(Ok(hyper::body::Frame::data(std::mem::take(b))))),
            HttpBody::Stream(s) => match s.chunks.poll_recv(cx) {
                Poll::Ready(Some(chunk)) => Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk)))),
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => match std::pin::Pin::new(&mut s.end).poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Ok(Ok(()))) => Poll::Ready(None),
                    Poll::Ready(Ok(Err(why))) => Poll::Ready(Some(Err(BodyCut(why)))),
                    Poll::Ready(Err(_)) => Poll::Ready(Some(Err(BodyCut(
                        "the function stopped before finishing its body".into(),
                    )))),
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, HttpBody::Full(b) if b.is_empty())
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            HttpBody::Full(b) => hyper::body::SizeHint::with_exact(b.len() as u64),
            HttpBody::Stream(_) => hyper::body::SizeHint::default(),
        }
    }
}

/// Settings of the process runtime, chosen by the server.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Root for per-environment `/tmp` directories and cgroups bookkeeping.
    pub work_dir: PathBuf,
    /// Python interpreter for `python3.x` runtimes (resolved to a real binary, not a shim).
    pub python: Option<PathBuf>,
    /// Node interpreter for `nodejs*` runtimes.
    pub node: Option<PathBuf>,
    /// Most environments busy at once, across all functions.
    pub max_concurrency: u32,
    /// An idle environment is stopped after this long (scale to zero).
    pub idle_timeout: Duration,
    /// Variables every environment gets on top of Lambda's own (`AWS_ENDPOINT_URL`,
    /// credentials, region), so the AWS SDKs inside functions reach Gust.
    pub platform_env: BTreeMap<String, String>,
    /// Region reported in ARNs and `AWS_REGION`.
    pub region: String,
    /// The AWS SDKs Lambda's managed runtimes include (boto3 for Python, the SDK for
    /// JavaScript v3 for Node), as `gust sdk install` lays them out: `python/` is appended to
    /// `PYTHONPATH` and `node/node_modules` to `NODE_PATH`, after the function's own code, so a
    /// function that bundles its own SDK still gets that one, as on Lambda.
    pub sdk_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn stream(chunks: &[&'static str], end: Option<Result<(), String>>) -> HttpBody {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        for c in chunks {
            tx.try_send(Bytes::from_static(c.as_bytes())).expect("room");
        }
        let (end_tx, end_rx) = tokio::sync::oneshot::channel();
        if let Some(e) = end {
            end_tx.send(e).expect("receiver");
        }
        HttpBody::Stream(BodyStream {
            chunks: rx,
            end: end_rx,
            hold: None,
        })
    }

    #[tokio::test]
    async fn a_full_body_is_one_frame_with_its_length() {
        let body = HttpBody::Full(Bytes::from_static(b"hello"));
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(5));
        assert_eq!(
            &body.collect().await.expect("body").to_bytes()[..],
            b"hello"
        );
        assert!(hyper::body::Body::is_end_stream(&HttpBody::Full(
            Bytes::new()
        )));
    }

    #[tokio::test]
    async fn a_finished_stream_yields_its_chunks_then_ends() {
        let body = stream(&["a", "b"], Some(Ok(())));
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), None);
        assert_eq!(&body.collect().await.expect("body").to_bytes()[..], b"ab");
    }

    #[tokio::test]
    async fn a_stream_that_stopped_ends_in_an_error_after_its_chunks() {
        let mut body = stream(&["a"], Some(Err("timed out".into())));
        let first = body.frame().await.expect("frame").expect("data");
        assert_eq!(first.into_data().ok().as_deref(), Some(&b"a"[..]));
        let cut = body.frame().await.expect("frame").expect_err("cut");
        assert_eq!(cut.0, "timed out");
        // A sender dropped without a word is a failure too.
        let mut body = stream(&[], None);
        assert!(body.frame().await.expect("frame").is_err());
    }
}
