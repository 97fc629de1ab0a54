//! The process executor: Lambda functions as child processes speaking the Runtime API.
//!
//! - [`invoker`]: [`ProcessInvoker`], the [`crate::Invoker`] implementation: invocation flow,
//!   deadlines, crash and OOM reporting, platform log lines, provisioned concurrency, shutdown,
//!   and response streaming (`invoke_stream`: the stream is handed over at its first byte and
//!   the invocation ends with it).
//! - [`pool`]: the environment pool and concurrency accounting, a plain struct without I/O.
//! - [`environment`]: one child process: launch, clean environment variables, stop.
//! - [`runtime_api`]: the per-environment Runtime API (2018-06-01) HTTP server, including
//!   streamed responses (`Lambda-Runtime-Function-Response-Mode: streaming`, error trailers).
//! - [`logs`]: output readers with a drain barrier, and the batching log writer.
//! - [`memory`]: memory cgroups (v1 or v2) or an RSS watchdog.
//!
//! Not here: the Wasm executor, the Lambda management API, and sandboxing beyond process
//! groups, private `/tmp` directories and memory limits (no users or namespaces yet).

mod environment;
mod invoker;
mod logs;
mod memory;
mod pool;
mod runtime_api;

pub use invoker::{ProcessInvoker, PROVISIONED_INIT_TIMEOUT};
pub use logs::{tail_text, LogSink};
pub use pool::EnvironmentCounts;
