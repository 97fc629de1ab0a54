//! `Invoke` (`POST /2015-03-31/functions/{FunctionName}/invocations`).
//!
//! - `RequestResponse` runs the function through the [`gust_runtime::Invoker`] and answers 200
//!   with its payload, `X-Amz-Executed-Version`, `X-Amz-Function-Error` when the function
//!   failed, and `X-Amz-Log-Result` (base64 of the log tail) when `LogType=Tail`.
//! - `Event` stores the invocation in the durable queue, wakes the worker and only then answers
//!   202: an accepted event survives a crash.
//! - `DryRun` answers 204 once the function is known to exist.
//!
//! Size limits and JSON validation of the payload happen in [`crate::request`].

use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use gust_model::{now_ms, QueuedEvent};
use gust_runtime::InvokeRequest;
use http::{HeaderValue, StatusCode};

use crate::error::LambdaError;
use crate::handlers::require;
use crate::request::{InvocationType, InvokeInput};
use crate::Api;

pub(crate) async fn invoke(
    api: &Api,
    input: InvokeInput,
    request_id: &str,
) -> Result<Response, LambdaError> {
    let record = require(api, &input.name).await?;
    let mut resp = match input.invocation_type {
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
            let out = api
                .state
                .invoker
                .invoke(InvokeRequest {
                    function: record,
                    payload: input.payload,
                    request_id: request_id.to_string(),
                    client_context: input.client_context,
                    tail_log: input.tail_log,
                })
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
            if input.tail_log {
                let tail = base64::engine::general_purpose::STANDARD
                    .encode(out.log_tail.unwrap_or_default());
                if let Ok(v) = HeaderValue::from_str(&tail) {
                    h.insert("x-amz-log-result", v);
                }
            }
            resp
        }
    };
    let h = resp.headers_mut();
    if input.invocation_type == InvocationType::RequestResponse {
        h.insert(
            "x-amz-executed-version",
            HeaderValue::from_static("$LATEST"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(gust_aws::REQUEST_ID_HEADER, v);
    }
    Ok(resp)
}
