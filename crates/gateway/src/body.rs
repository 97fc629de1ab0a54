//! The gateway's response body: a whole buffer, or the rest of a function's response stream.
//!
//! Every API route, MOCK, buffered function URL and error answers with a whole buffer
//! ([`gust_runtime::HttpBody::Full`], so hyper sends `Content-Length` as before and the hot
//! path costs one match more). `RESPONSE_STREAM` function URLs whose function streamed, and `wasm`
//! functions still writing their body after their head ([`gust_runtime::HttpBody`]), stream:
//! chunks go out as HTTP/1.1 chunks as the function writes them, and a function that fails in
//! the middle makes the body end in an error, so hyper cuts the response short (no
//! terminating chunk) and the client sees it incomplete.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use gust_runtime::{HttpBody, InvokeStream};
use hyper::body::{Body, Frame, SizeHint};

/// Why a streamed response was cut short.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The function failed after it had started its response.
    #[error("the function failed in the middle of its response stream: {0}")]
    FunctionError(String),
    /// The invocation ended without saying how.
    #[error("the invocation ended without a result")]
    Lost,
    /// A `wasm` function's raw HTTP body stopped before its end.
    #[error(transparent)]
    Cut(#[from] gust_runtime::BodyCut),
}

/// The body of every gateway response.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Inner,
    /// A failure held back for one poll, so that hyper flushes what was already written
    /// (the head and the chunks before the failure) before it aborts the connection.
    cut: Option<StreamError>,
}

#[derive(Debug)]
enum Inner {
    /// A whole body, or a `wasm` function's own response body still being written.
    Http(HttpBody),
    /// The rest of a function's response stream (`RESPONSE_STREAM` function URLs).
    Stream(Box<Streamed>),
}

impl ResponseBody {
    fn of(inner: Inner) -> ResponseBody {
        ResponseBody { inner, cut: None }
    }

    /// A whole body.
    pub fn full(bytes: Bytes) -> ResponseBody {
        ResponseBody::of(Inner::Http(HttpBody::Full(bytes)))
    }

    /// A `wasm` function's response body ([`gust_runtime::HttpHandler::handle_http_stream`]).
    pub fn raw(body: HttpBody) -> ResponseBody {
        ResponseBody::of(Inner::Http(body))
    }

    /// `first` (bytes already read from the stream, if any), then the rest of `stream`.
    pub(crate) fn stream(first: Bytes, stream: InvokeStream, request_id: &str) -> ResponseBody {
        ResponseBody::of(Inner::Stream(Box::new(Streamed {
            first: (!first.is_empty()).then_some(first),
            stream,
            done: false,
            request_id: request_id.to_string(),
        })))
    }
}

/// The rest of a function's response stream.
struct Streamed {
    first: Option<Bytes>,
    /// Owned here, so what it holds (the concurrency share) is given back when the client
    /// has read everything or gone away.
    stream: InvokeStream,
    done: bool,
    request_id: String,
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamed")
            .field("done", &self.done)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl Streamed {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match self.stream.chunks.poll_recv(cx) {
                Poll::Ready(Some(chunk)) if chunk.is_empty() => continue,
                Poll::Ready(Some(chunk)) => return Poll::Ready(Some(Ok(Frame::data(chunk)))),
                Poll::Ready(None) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        let end = match Pin::new(&mut self.stream.end).poll(cx) {
            Poll::Ready(end) => end,
            Poll::Pending => return Poll::Pending,
        };
        self.done = true;
        match end {
            Ok(end) => match end.function_error {
                None => Poll::Ready(None),
                Some(kind) => {
                    tracing::warn!(request_id = %self.request_id, error = %kind, "function failed mid-stream; cutting the response short");
                    Poll::Ready(Some(Err(StreamError::FunctionError(kind))))
                }
            },
            Err(_) => {
                tracing::warn!(request_id = %self.request_id, "invocation ended without a result; cutting the response short");
                Poll::Ready(Some(Err(StreamError::Lost)))
            }
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        let this = self.get_mut();
        if this.cut.is_some() {
            return Poll::Ready(this.cut.take().map(Err));
        }
        let polled = match &mut this.inner {
            Inner::Http(body) => Pin::new(body).poll_frame(cx).map_err(StreamError::from),
            Inner::Stream(s) => s.poll_frame(cx),
        };
        match polled {
            // Hyper flushes its buffer when the body is pending, then polls again at once.
            Poll::Ready(Some(Err(e))) => {
                this.cut = Some(e);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.cut.is_some() {
            return false;
        }
        match &self.inner {
            Inner::Http(body) => body.is_end_stream(),
            Inner::Stream(s) => s.done && s.first.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Http(body) => body.size_hint(),
            Inner::Stream(_) => SizeHint::default(),
        }
    }
}
