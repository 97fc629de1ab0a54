//! AWS wire basics shared by every AWS-compatible service in Gust.
//!
//! - [`sigv4`]: Signature Version 4 signing (for the CLI and tests) and verification (for the
//!   control endpoint), header and presigned-query forms, with the 15-minute clock-skew rule.
//! - [`error`]: [`AwsError`], one error value carrying AWS's error code, HTTP status and
//!   message, rendered in the shape of the protocol of the service that raised it.
//! - [`auth`]: an axum middleware that verifies every request against a credential lookup.
//!
//! This crate knows no service's operations; services build on it.

pub mod auth;
pub mod error;
pub mod eventstream;
pub mod sigv4;

pub use error::{AwsError, Protocol};

/// Lambda's request-id header.
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// A fresh request id (a version 4 UUID, see [`gust_model::new_request_id`]).
pub fn request_id() -> String {
    gust_model::new_request_id()
}
