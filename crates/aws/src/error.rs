//! AWS error values and their wire shapes.
//!
//! Contract (used by every service crate):
//! ```ignore
//! pub enum Protocol { RestJson, Json10, Query, RestXml }
//! pub struct AwsError { pub status: http::StatusCode, pub code: String, pub message: String,
//!                       pub protocol: Protocol, pub extra: serde_json::Map<String, Value> }
//! impl AwsError { pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self } // RestJson
//! impl AwsError { pub fn with_protocol(self, p: Protocol) -> Self }
//! impl axum::response::IntoResponse for AwsError  // body + headers per protocol, x-amzn-requestid
//! ```
//! RestJson (Lambda): header `x-amzn-ErrorType: <Code>`, body `{"Type":"User"|"Service","message":..}`
//! (Lambda's own shape; botocore reads the code from the header). Json10 (DynamoDB): body
//! `{"__type":"com.amazonaws.dynamodb.v20120810#<Code>","message":..}`, content-type
//! `application/x-amz-json-1.0`. RestXml / Query: `<ErrorResponse><Error><Type>Sender</Type><Code>..`.
