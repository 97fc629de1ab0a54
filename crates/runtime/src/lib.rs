//! Gust's function runtime: the [`Invoker`] interface, the process executor behind it, and
//! [`RoutingInvoker`], which sends each function to the executor of its runtime family (the
//! Wasm executor lives in `gust-wasm`, which depends on this crate).
//!
//! An invocation goes to a warm execution environment of its function, or to a new one when
//! none is idle and the function's reserved concurrency and the global limit allow; otherwise
//! it is throttled. Environments are child processes speaking the Lambda Runtime API
//! (2018-06-01), each served by its own small HTTP listener on loopback. Deadlines, memory
//! limits and crashes are enforced here; logs go to the [`gust_store::LogStore`].
//! See [`process`] for the map of the executor.

mod api;
mod error;
pub mod process;
pub mod report;
mod routing;

pub use api::{
    BodyCut, BodyStream, HttpBody, HttpHandler, InvokeError, InvokeRequest, InvokeResponse,
    InvokeStream, Invoker, RuntimeConfig, StreamProducer, GLOBAL_LIMIT, RESERVED_LIMIT,
};
pub use error::RuntimeError;
pub use process::{tail_text, EnvironmentCounts, LogSink, ProcessInvoker};
pub use routing::{ConcurrencyBudget, LimitedHttpHandler, Permit, RoutingInvoker};
