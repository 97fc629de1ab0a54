//! The DynamoDB-compatible tables service (JSON 1.0, `X-Amz-Target: DynamoDB_20120810.*`).

pub mod expr;
pub mod types;
