//! `RESPONSE_STREAM` function URLs: from an [`InvokeStream`] to an HTTP response.
//!
//! - A function that streamed with the content type
//!   `application/vnd.awslambda.http-integration-response` (Node's
//!   `awslambda.HttpResponseStream.from`) first writes a JSON prelude
//!   `{"statusCode", "headers", "cookies"}`, then 8 NUL bytes, then the body: the prelude
//!   gives the status, headers and `Set-Cookie`s, and the rest is streamed as the body.
//! - A function that streamed anything else answers 200 with its content type and its bytes
//!   as the body.
//! - A function that did not stream (its whole result as one chunk) is mapped exactly as a
//!   `BUFFERED` URL maps it (payload format 2.0 rules).
//!
//! The status line is sent once the first body byte (or the prelude) is known, so a
//! function that fails before that gets the same 502 as a buffered URL; a failure after it
//! cuts the chunked body short ([`crate::body`]).

use bytes::{Bytes, BytesMut};
use gust_runtime::InvokeStream;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response};

use crate::body::ResponseBody;
use crate::response::{map_prelude, map_v2, GatewayError};

/// The content type of a stream that starts with an HTTP prelude.
pub(crate) const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
/// What separates the prelude from the body.
const DELIMITER: [u8; 8] = [0; 8];
/// The largest prelude accepted (status, headers and cookies are bounded by the same quota
/// as a buffered response's headers are in practice; this only stops an unbounded read).
const MAX_PRELUDE: usize = 1024 * 1024;

/// How the function's stream became a response, for the access log.
pub(crate) struct Streamed {
    pub response: Response<ResponseBody>,
    /// Known only when the function did not stream (a streamed end comes later).
    pub cold_start: bool,
}

/// Turns `stream` into the response of a `RESPONSE_STREAM` function URL.
pub(crate) async fn respond(
    mut stream: InvokeStream,
    request_id: &str,
) -> Result<Streamed, GatewayError> {
    if !stream.streamed {
        return buffered(stream).await;
    }
    let is_http = stream
        .content_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(HTTP_INTEGRATION));
    if is_http {
        let mut buf = BytesMut::new();
        let (prelude, rest) = loop {
            match stream.chunks.recv().await {
                Some(chunk) => {
                    let searched_from = buf.len().saturating_sub(DELIMITER.len() - 1);
                    buf.extend_from_slice(&chunk);
                    if let Some(i) = find(&buf[searched_from..], &DELIMITER) {
                        let at = searched_from + i;
                        let rest = buf.split_off(at + DELIMITER.len());
                        buf.truncate(at);
                        break (buf.freeze(), Some(rest.freeze()));
                    }
                    if buf.len() > MAX_PRELUDE {
                        tracing::warn!(request_id, "response stream prelude too large");
                        return Err(GatewayError::Malformed);
                    }
                }
                // Ended without a delimiter: all of it is the prelude, the body is empty.
                None => {
                    end_ok(&mut stream).await?;
                    break (buf.freeze(), None);
                }
            }
        };
        let head = map_prelude(&prelude)?;
        let response = match rest {
            Some(rest) => head.map(|()| ResponseBody::stream(rest, stream, request_id)),
            None => head.map(|()| ResponseBody::full(Bytes::new())),
        };
        return Ok(Streamed {
            response,
            cold_start: false,
        });
    }
    let content_type = stream
        .content_type
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    let body = loop {
        match stream.chunks.recv().await {
            Some(chunk) if chunk.is_empty() => continue,
            Some(chunk) => break ResponseBody::stream(chunk, stream, request_id),
            None => {
                end_ok(&mut stream).await?;
                break ResponseBody::full(Bytes::new());
            }
        }
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    Ok(Streamed {
        response,
        cold_start: false,
    })
}

/// A function that did not stream: its whole result, mapped as a `BUFFERED` URL maps it.
async fn buffered(mut stream: InvokeStream) -> Result<Streamed, GatewayError> {
    let mut payload = BytesMut::new();
    while let Some(chunk) = stream.chunks.recv().await {
        payload.extend_from_slice(&chunk);
    }
    let end = (&mut stream.end)
        .await
        .map_err(|_| GatewayError::Internal)?;
    if end.function_error.is_some() {
        return Err(GatewayError::FunctionError);
    }
    let response = map_v2(&payload)?.map(ResponseBody::full);
    Ok(Streamed {
        response,
        cold_start: end.cold_start,
    })
}

/// Waits for the end of a stream whose chunks are exhausted: a failure is the 502 of a
/// function error. The stream's `end` is then spent: the caller answers with a whole body.
async fn end_ok(stream: &mut InvokeStream) -> Result<(), GatewayError> {
    let end = (&mut stream.end)
        .await
        .map_err(|_| GatewayError::Internal)?;
    if end.function_error.is_some() {
        return Err(GatewayError::FunctionError);
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
