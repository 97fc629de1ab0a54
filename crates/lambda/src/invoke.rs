//! `Invoke` (`POST /2015-03-31/functions/{FunctionName}/invocations`) and
//! `InvokeWithResponseStream` (`POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations`).
//!
//! - `RequestResponse` runs the function through the [`gust_runtime::Invoker`] and answers 200
//!   with its payload, `X-Amz-Executed-Version`, `X-Amz-Function-Error` when the function
//!   failed, and `X-Amz-Log-Result` (base64 of the log tail) when `LogType=Tail`.
//! - `Event` stores the invocation in the durable queue, wakes the worker and only then answers
//!   202: an accepted event survives a crash.
//! - `DryRun` answers 204 once the function is known to exist.
//!
//! `InvokeWithResponseStream` parses, checks and refuses exactly as `Invoke` does (404, 429,
//! 413, bad qualifiers... are JSON errors before anything runs). Once the function has
//! started its response, the answer is 200 with an event stream ([`crate::eventstream`]):
//! one `PayloadChunk` per chunk the function writes, sent as it arrives, then one
//! `InvokeComplete` whose `ErrorCode` / `ErrorDetails` say whether the function failed
//! (before or in the middle of its stream) and whose `LogResult` is the log tail when
//! `LogType=Tail`. The body stays open while the function runs; a function that does not
//! stream arrives as one chunk.
//!
//! Size limits and JSON validation of the payload happen in [`crate::request`].

use std::convert::Infallible;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use gust_model::{now_ms, FunctionRecord, QueuedEvent};
use gust_runtime::{InvokeRequest, InvokeResponse, InvokeStream};
use http::{HeaderValue, StatusCode};
use hyper::body::Frame;
use serde_json::{Map, Value};

use crate::error::LambdaError;
use crate::eventstream;
use crate::handlers::require;
use crate::request::{invocation_type_error, InvocationType, InvokeInput};
use crate::Api;

pub(crate) async fn invoke(
    api: &Api,
    input: InvokeInput,
    request_id: &str,
) -> Result<Response, LambdaError> {
    let record = require(api, &input.name).await?;
    let resp = match input.invocation_type {
        InvocationType::DryRun => StatusCode::NO_CONTENT.into_response(),
        InvocationType::Event => {
            let now = now_ms();
            let event = QueuedEvent {
                id: request_id.to_string(),
                function: input.name.clone(),
                payload: input.payload.to_vec(),
                attempts: 0,
                not_before_ms: now,
                enqueued_ms: now,
            };
            api.state.store.enqueue(&event).await?;
            api.shared.wake.notify_one();
            tracing::debug!(function = %input.name, request_id, "event queued");
            StatusCode::ACCEPTED.into_response()
        }
        InvocationType::RequestResponse => {
            let tail_log = input.tail_log;
            let out = api
                .state
                .invoker
                .invoke(invoke_request(
                    record,
                    input.payload,
                    input.client_context,
                    tail_log,
                    request_id,
                ))
                .await?;
            let mut resp = (StatusCode::OK, out.payload).into_response();
            let h = resp.headers_mut();
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some(v) = out
                .function_error
                .and_then(|e| HeaderValue::from_str(&e).ok())
            {
                h.insert("x-amz-function-error", v);
            }
            if tail_log {
                if let Ok(v) = HeaderValue::from_str(&log_result(out.log_tail)) {
                    h.insert("x-amz-log-result", v);
                }
            }
            resp
        }
    };
    Ok(finish(resp, input.invocation_type, request_id))
}

pub(crate) async fn invoke_with_response_stream(
    api: &Api,
    input: InvokeInput,
    request_id: &str,
) -> Result<Response, LambdaError> {
    let record = require(api, &input.name).await?;
    let resp = match input.invocation_type {
        InvocationType::DryRun => StatusCode::NO_CONTENT.into_response(),
        // The parser refuses `Event` for this operation; answer as it would.
        InvocationType::Event => return Err(invocation_type_error("Event", true)),
        InvocationType::RequestResponse => {
            let tail_log = input.tail_log;
            let stream = api
                .state
                .invoker
                .invoke_stream(invoke_request(
                    record,
                    input.payload,
                    input.client_context,
                    tail_log,
                    request_id,
                ))
                .await?;
            tracing::debug!(function = %input.name, request_id, streamed = stream.streamed, "response stream started");
            let mut resp = Response::new(Body::new(ResponseEvents {
                stream,
                tail_log,
                state: State::Chunks,
            }));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(eventstream::CONTENT_TYPE),
            );
            resp
        }
    };
    Ok(finish(resp, input.invocation_type, request_id))
}

fn invoke_request(
    function: std::sync::Arc<FunctionRecord>,
    payload: Bytes,
    client_context: Option<String>,
    tail_log: bool,
    request_id: &str,
) -> InvokeRequest {
    InvokeRequest {
        function,
        payload,
        request_id: request_id.to_string(),
        client_context,
        tail_log,
    }
}

/// The headers every synchronous answer carries.
fn finish(mut resp: Response, invocation_type: InvocationType, request_id: &str) -> Response {
    let h = resp.headers_mut();
    if invocation_type == InvocationType::RequestResponse {
        h.insert(
            "x-amz-executed-version",
            HeaderValue::from_static("$LATEST"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(gust_aws::REQUEST_ID_HEADER, v);
    }
    resp
}

/// `LogResult` / `X-Amz-Log-Result`: the log tail in base64.
fn log_result(tail: Option<String>) -> String {
    base64::engine::general_purpose::STANDARD.encode(tail.unwrap_or_default())
}

/// The `InvokeComplete` document. A failed function's `ErrorCode` is the `errorType` of its
/// error document (`Unhandled` when it has none) and `ErrorDetails` its `errorMessage` (the
/// whole document when it has none). `end` is `None` when the invocation ended without
/// saying how (the executor went away), which is reported as a `ServiceException`.
pub(crate) fn complete_document(end: Option<InvokeResponse>, tail_log: bool) -> Vec<u8> {
    let mut doc = Map::new();
    match end {
        Some(end) => {
            if let Some(kind) = &end.function_error {
                let parsed: Option<Map<String, Value>> = serde_json::from_slice(&end.payload).ok();
                let field = |name: &str| {
                    parsed
                        .as_ref()
                        .and_then(|m| m.get(name))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                let code = field("errorType").unwrap_or_else(|| kind.clone());
                let details = field("errorMessage")
                    .unwrap_or_else(|| String::from_utf8_lossy(&end.payload).into_owned());
                doc.insert("ErrorCode".into(), Value::from(code));
                doc.insert("ErrorDetails".into(), Value::from(details));
            }
            if tail_log {
                doc.insert("LogResult".into(), Value::from(log_result(end.log_tail)));
            }
        }
        None => {
            doc.insert("ErrorCode".into(), Value::from("ServiceException"));
            doc.insert(
                "ErrorDetails".into(),
                Value::from("the invocation ended without a result"),
            );
        }
    }
    serde_json::to_vec(&doc).unwrap_or_else(|_| b"{}".to_vec())
}

/// Where [`ResponseEvents`] is in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Chunks,
    End,
    Done,
}

/// `InvokeWithResponseStream`'s body: the invocation's chunks as `PayloadChunk` events, as they
/// come, then `InvokeComplete`. It owns the [`InvokeStream`], so whatever the stream holds
/// (the concurrency share) is given back when the client has read everything or gone away.
struct ResponseEvents {
    stream: InvokeStream,
    tail_log: bool,
    state: State,
}

impl HttpBody for ResponseEvents {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::Chunks => match this.stream.chunks.poll_recv(cx) {
                    Poll::Ready(Some(chunk)) if chunk.is_empty() => continue,
                    Poll::Ready(Some(chunk)) => {
                        return Poll::Ready(Some(Ok(Frame::data(eventstream::payload_chunk(
                            &chunk,
                        )))))
                    }
                    Poll::Ready(None) => this.state = State::End,
                    Poll::Pending => return Poll::Pending,
                },
                State::End => {
                    let end = match Pin::new(&mut this.stream.end).poll(cx) {
                        Poll::Ready(end) => end.ok(),
                        Poll::Pending => return Poll::Pending,
                    };
                    this.state = State::Done;
                    let doc = complete_document(end, this.tail_log);
                    return Poll::Ready(Some(Ok(Frame::data(eventstream::invoke_complete(&doc)))));
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn end(payload: &[u8], error: Option<&str>) -> InvokeResponse {
        InvokeResponse {
            payload: Bytes::copy_from_slice(payload),
            function_error: error.map(str::to_string),
            log_tail: Some("START\nEND\n".into()),
            cold_start: false,
            duration: Duration::ZERO,
        }
    }

    fn doc(bytes: Vec<u8>) -> Value {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    #[test]
    fn complete_documents() {
        assert_eq!(
            doc(complete_document(Some(end(b"", None)), false)),
            serde_json::json!({})
        );
        let d = doc(complete_document(Some(end(b"", None)), true));
        assert_eq!(d["LogResult"], log_result(Some("START\nEND\n".into())));
        let d = doc(complete_document(
            Some(end(
                br#"{"errorMessage":"boom","errorType":"Error","stackTrace":[]}"#,
                Some("Unhandled"),
            )),
            false,
        ));
        assert_eq!(
            (d["ErrorCode"].as_str(), d["ErrorDetails"].as_str()),
            (Some("Error"), Some("boom"))
        );
        let d = doc(complete_document(
            Some(end(b"not json", Some("Unhandled"))),
            false,
        ));
        assert_eq!(
            (d["ErrorCode"].as_str(), d["ErrorDetails"].as_str()),
            (Some("Unhandled"), Some("not json"))
        );
        let d = doc(complete_document(None, true));
        assert_eq!(d["ErrorCode"], "ServiceException");
    }
}
