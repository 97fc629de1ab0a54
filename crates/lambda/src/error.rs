//! Every way a Lambda API call can fail, with the AWS error code, HTTP status and message
//! Lambda reports for it.
//!
//! Messages are the ones Lambda sends (capitalised, sometimes with a trailing period), because
//! clients and people compare them with what AWS says; they are wire text, not log text.

use axum::response::{IntoResponse, Response};
use gust_aws::error::AwsError;
use gust_runtime::InvokeError;
use gust_store::StoreError;
use serde_json::Value;

/// Lambda's message for a `RevisionId` that is not the function's current one.
pub const REVISION_MISMATCH: &str = "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id";

/// A failed Lambda API call.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// 400 `InvalidParameterValueException`.
    #[error("{0}")]
    InvalidParameter(String),
    /// 400 `SerializationException`: the body is not the JSON document the operation takes.
    #[error("{0}")]
    Serialization(String),
    /// 404 `ResourceNotFoundException` for a function (or a qualifier Gust does not have);
    /// carries the ARN.
    #[error("Function not found: {0}")]
    FunctionNotFound(String),
    /// 409 `ResourceConflictException` from `CreateFunction`; carries the name.
    #[error("Function already exist: {0}")]
    FunctionExists(String),
    /// 400 `ValidationException`: a member breaks its model constraint (enum, range, pattern).
    #[error("{0}")]
    Validation(String),
    /// 404 `ResourceNotFoundException` with a message of its own (function URLs, APIs).
    #[error("{0}")]
    NotFound(String),
    /// 409 `ResourceConflictException` with a message of its own (function URLs, APIs).
    #[error("{0}")]
    Conflict(String),
    /// 412 `PreconditionFailedException`: `RevisionId` is stale.
    #[error("{}", REVISION_MISMATCH)]
    RevisionMismatch,
    /// 413: the request body is over `limit` bytes. `code` is `RequestTooLargeException` for
    /// `Invoke` and `RequestEntityTooLargeException` for code uploads, as Lambda answers.
    #[error("Request must be smaller than {limit} bytes for the {operation} operation")]
    TooLarge {
        code: &'static str,
        limit: usize,
        operation: &'static str,
    },
    /// 400 `InvalidRequestContentException`: an `Invoke` payload that is not JSON.
    #[error("Could not parse request body into json: {0}")]
    InvalidRequestContent(String),
    /// 429 `TooManyRequestsException` with Lambda's `Reason`.
    #[error("Rate Exceeded.")]
    Throttled { reason: &'static str },
    /// 502 `InvalidRuntimeException`: the function's runtime is not available on this machine.
    #[error("{0}")]
    InvalidRuntime(String),
    /// 503 `ServiceException`: Gust is shutting down.
    #[error("Gust is shutting down and accepts no new invocations")]
    ShuttingDown,
    /// 500 `ServiceException`: the platform failed (store, I/O, runtime internals).
    #[error("{0}")]
    Internal(String),
}

impl LambdaError {
    /// The function `name` does not exist (in `region`).
    pub fn not_found(region: &str, name: &str) -> LambdaError {
        LambdaError::FunctionNotFound(gust_model::function_arn(region, name))
    }

    /// AWS's error code.
    pub fn code(&self) -> &'static str {
        match self {
            LambdaError::InvalidParameter(_) => "InvalidParameterValueException",
            LambdaError::Serialization(_) => "SerializationException",
            LambdaError::FunctionNotFound(_) => "ResourceNotFoundException",
            LambdaError::FunctionExists(_) | LambdaError::Conflict(_) => {
                "ResourceConflictException"
            }
            LambdaError::Validation(_) => "ValidationException",
            LambdaError::NotFound(_) => "ResourceNotFoundException",
            LambdaError::RevisionMismatch => "PreconditionFailedException",
            LambdaError::TooLarge { code, .. } => code,
            LambdaError::InvalidRequestContent(_) => "InvalidRequestContentException",
            LambdaError::Throttled { .. } => "TooManyRequestsException",
            LambdaError::InvalidRuntime(_) => "InvalidRuntimeException",
            LambdaError::ShuttingDown | LambdaError::Internal(_) => "ServiceException",
        }
    }

    /// The HTTP status Lambda answers with.
    pub fn status(&self) -> u16 {
        match self {
            LambdaError::InvalidParameter(_)
            | LambdaError::Serialization(_)
            | LambdaError::Validation(_)
            | LambdaError::InvalidRequestContent(_) => 400,
            LambdaError::FunctionNotFound(_) | LambdaError::NotFound(_) => 404,
            LambdaError::FunctionExists(_) | LambdaError::Conflict(_) => 409,
            LambdaError::RevisionMismatch => 412,
            LambdaError::TooLarge { .. } => 413,
            LambdaError::Throttled { .. } => 429,
            LambdaError::Internal(_) => 500,
            LambdaError::InvalidRuntime(_) => 502,
            LambdaError::ShuttingDown => 503,
        }
    }

    /// The AWS error value, with `request_id` if one was already handed out for this call.
    pub fn to_aws(&self, request_id: Option<&str>) -> AwsError {
        let message = self.to_string();
        let mut e = AwsError::new(self.status(), self.code(), message.clone());
        // Some of Lambda's error shapes spell the member `Message` rather than `message`;
        // send both so botocore fills the modeled field as well as the error message.
        if matches!(
            self,
            LambdaError::FunctionNotFound(_)
                | LambdaError::NotFound(_)
                | LambdaError::Conflict(_)
                | LambdaError::InvalidRuntime(_)
                | LambdaError::ShuttingDown
                | LambdaError::Internal(_)
        ) {
            e = e.with_field("Message", Value::from(message));
        }
        if matches!(self, LambdaError::NotFound(_) | LambdaError::Conflict(_)) {
            // Lambda tags client mistakes with `Type: User` on these shapes.
            e = e.with_field("Type", Value::from("User"));
        }
        if let LambdaError::Throttled { reason } = self {
            e = e.with_field("Reason", Value::from(*reason));
        }
        if let Some(id) = request_id {
            e = e.with_request_id(id);
        }
        e
    }

    /// The response for this error, with `request_id` in its headers.
    pub fn into_response_with_id(self, request_id: &str) -> Response {
        let mut resp = self.to_aws(Some(request_id)).into_response();
        if matches!(self, LambdaError::Throttled { .. }) {
            // TooManyRequestsException.retryAfterSeconds is bound to this header.
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}

impl IntoResponse for LambdaError {
    fn into_response(self) -> Response {
        let id = gust_aws::request_id();
        self.into_response_with_id(&id)
    }
}

impl From<StoreError> for LambdaError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidPackage(msg) => LambdaError::InvalidParameter(msg),
            other => {
                tracing::error!(error = %other, "store failed");
                LambdaError::Internal(format!("store error: {other}"))
            }
        }
    }
}

impl From<InvokeError> for LambdaError {
    fn from(e: InvokeError) -> Self {
        match e {
            InvokeError::Throttled { reason } => LambdaError::Throttled { reason },
            InvokeError::RuntimeUnavailable(msg) => LambdaError::InvalidRuntime(msg),
            InvokeError::ShuttingDown => LambdaError::ShuttingDown,
            InvokeError::Internal(msg) => {
                tracing::error!(error = %msg, "invocation failed in the platform");
                LambdaError::Internal(msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let e = LambdaError::not_found("us-east-1", "f");
        assert_eq!((e.status(), e.code()), (404, "ResourceNotFoundException"));
        assert_eq!(
            e.to_string(),
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:f"
        );
        let e = LambdaError::TooLarge {
            code: "RequestTooLargeException",
            limit: gust_model::limits::MAX_SYNC_PAYLOAD,
            operation: "InvokeFunction",
        };
        assert_eq!(
            e.to_string(),
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
        );
        let aws = LambdaError::Throttled {
            reason: "ConcurrentInvocationLimitExceeded",
        }
        .to_aws(Some("r"));
        assert_eq!(aws.extra["Reason"], "ConcurrentInvocationLimitExceeded");
        assert_eq!(aws.status, 429);
    }

    #[test]
    fn unzip_failure_is_a_parameter_error() {
        let e: LambdaError = StoreError::InvalidPackage("Could not unzip".into()).into();
        assert_eq!(e.code(), "InvalidParameterValueException");
    }
}
