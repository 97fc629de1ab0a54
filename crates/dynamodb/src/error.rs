//! [`DdbError`]: every failure the tables service reports, with DynamoDB's error code, HTTP
//! status and message, rendered through [`gust_aws::AwsError`] in the JSON 1.0 shape.
//!
//! Messages are DynamoDB's own words (clients and tests match on them), so they keep
//! DynamoDB's capitalisation and punctuation rather than this codebase's lowercase style.

use gust_aws::{AwsError, Protocol};
use serde_json::Value;

use crate::types::Item;

/// The `__type` prefix of DynamoDB's errors.
pub const TYPE_PREFIX: &str = "com.amazonaws.dynamodb.v20120810";

/// One entry of `TransactionCanceledException.CancellationReasons`.
#[derive(Debug, Clone, PartialEq)]
pub struct CancellationReason {
    /// `None`, `ConditionalCheckFailed`, `ValidationError`, …
    pub code: &'static str,
    pub message: Option<String>,
    pub item: Option<Item>,
}

impl CancellationReason {
    pub fn none() -> Self {
        CancellationReason {
            code: "None",
            message: None,
            item: None,
        }
    }
}

/// Errors of the tables service.
#[derive(Debug, thiserror::Error)]
pub enum DdbError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("The conditional request failed")]
    ConditionalCheckFailed { item: Option<Box<Item>> },
    #[error("transaction cancelled")]
    TransactionCanceled { reasons: Vec<CancellationReason> },
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    IdempotentParameterMismatch(String),
    #[error("{0}")]
    Serialization(String),
    #[error("unknown operation {0}")]
    UnknownOperation(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<gust_store::StoreError> for DdbError {
    fn from(e: gust_store::StoreError) -> Self {
        tracing::error!(error = %e, "tables store failure");
        DdbError::Internal(e.to_string())
    }
}

impl From<crate::expr::ExprError> for DdbError {
    fn from(e: crate::expr::ExprError) -> Self {
        match e {
            crate::expr::ExprError::Validation(msg) => DdbError::Validation(msg),
        }
    }
}

pub type Result<T> = std::result::Result<T, DdbError>;

/// Shorthand for a `ValidationException`.
pub fn validation(msg: impl Into<String>) -> DdbError {
    DdbError::Validation(msg.into())
}

/// `ResourceNotFoundException` for an item operation on a table that does not exist.
pub fn table_not_found() -> DdbError {
    DdbError::ResourceNotFound("Requested resource not found".into())
}

/// `ResourceNotFoundException` as the table operations word it.
pub fn table_not_found_named(name: &str) -> DdbError {
    DdbError::ResourceNotFound(format!(
        "Requested resource not found: Table: {name} not found"
    ))
}

impl DdbError {
    /// The AWS code, without prefix.
    pub fn code(&self) -> &'static str {
        match self {
            DdbError::Validation(_) => "ValidationException",
            DdbError::ResourceNotFound(_) => "ResourceNotFoundException",
            DdbError::ResourceInUse(_) => "ResourceInUseException",
            DdbError::ConditionalCheckFailed { .. } => "ConditionalCheckFailedException",
            DdbError::TransactionCanceled { .. } => "TransactionCanceledException",
            DdbError::LimitExceeded(_) => "LimitExceededException",
            DdbError::IdempotentParameterMismatch(_) => "IdempotentParameterMismatchException",
            DdbError::Serialization(_) => "SerializationException",
            DdbError::UnknownOperation(_) => "UnknownOperationException",
            DdbError::Internal(_) => "InternalServerError",
        }
    }

    /// The error as the client sees it.
    pub fn to_aws(&self) -> AwsError {
        let status = match self {
            DdbError::Internal(_) => 500,
            _ => 400,
        };
        let message = match self {
            DdbError::TransactionCanceled { reasons } => {
                let codes: Vec<&str> = reasons.iter().map(|r| r.code).collect();
                format!(
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                    codes.join(", ")
                )
            }
            DdbError::UnknownOperation(_) => String::new(),
            DdbError::Internal(_) => "Internal server error".to_string(),
            other => other.to_string(),
        };
        let mut err = AwsError::new(status, self.code(), message)
            .with_protocol(Protocol::Json10)
            .with_type_prefix(TYPE_PREFIX);
        match self {
            DdbError::ConditionalCheckFailed { item: Some(item) } => {
                err = err.with_field("Item", item_value(item));
            }
            DdbError::TransactionCanceled { reasons } => {
                let list: Vec<Value> = reasons
                    .iter()
                    .map(|r| {
                        let mut m = serde_json::Map::new();
                        m.insert("Code".into(), Value::from(r.code));
                        if let Some(msg) = &r.message {
                            m.insert("Message".into(), Value::from(msg.as_str()));
                        }
                        if let Some(item) = &r.item {
                            m.insert("Item".into(), item_value(item));
                        }
                        Value::Object(m)
                    })
                    .collect();
                err = err.with_field("CancellationReasons", Value::Array(list));
            }
            _ => {}
        }
        err
    }
}

fn item_value(item: &Item) -> Value {
    serde_json::to_value(item).unwrap_or(Value::Null)
}
