//! Gust's domain types: function configurations, runtimes, limits, ARNs and invocation
//! records shared by every other crate.
//!
//! This crate does no I/O and knows nothing of HTTP or SQLite; it only names things and
//! checks that values are in range.

pub mod api;
pub mod function;
pub mod ids;
pub mod invocation;
pub mod limits;

pub use api::{
    ApiDefinition, CorsConfig, FunctionUrlConfig, InvalidApi, MockResponse, PayloadFormat,
    RouteKey, RouteMethod, RouteSpec, Segment, API_SCHEMA_VERSION,
};
pub use function::{FunctionConfig, FunctionRecord, RuntimeKind, FUNCTION_SCHEMA_VERSION};
pub use ids::{
    function_arn, new_request_id, now_ms, parse_function_ref, rfc3339_millis, FunctionRef,
};
pub use invocation::{LogEntry, LogStream, QueuedEvent, StoredLogEntry};

/// The region Gust reports when nothing else is configured.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The account id in every ARN Gust issues (one account per installation, as LocalStack does).
pub const ACCOUNT_ID: &str = "000000000000";
