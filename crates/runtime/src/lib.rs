//! Gust's function runtime: the [`Invoker`] interface and the process executor behind it.
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

pub use api::{InvokeError, InvokeRequest, InvokeResponse, Invoker, RuntimeConfig};
pub use error::RuntimeError;
pub use process::{EnvironmentCounts, ProcessInvoker};
