//! Gust's Wasm executor: `wasm` functions run on wasmtime, one fresh instance per request.
//!
//! Two kinds of binary, told apart by their header:
//! - **`wasi:http` components** (the `wasi:http/proxy` world that Spin and `wasmtime serve`
//!   use) are called through `wasi:http/incoming-handler`, hosted by `wasmtime-wasi-http`.
//! - **WASI preview-1 command modules** are driven as WAGI defines CGI: the request line and
//!   headers in environment variables, the body on stdin, headers and body back on stdout.
//!
//! Every invocation that is not already an HTTP request (`Invoke`, the event worker, later
//! queues and schedules) arrives as `POST /` whose JSON body is the event, with CloudEvents
//! 1.0 binary-mode headers; the response body is the result (see [`invoker`] for how
//! statuses, traps and timeouts map to Lambda's errors). [`WasmInvoker::handle_http`] hands a
//! raw HTTP request to a function as it is (the API gateway's path).
//!
//! Modules are compiled once (Cranelift, at deploy) and the artifact is cached on disk
//! keyed by the module's SHA-256 and the engine's configuration hash, so a restart does not
//! recompile ([`artifact`]). Instances come from an `InstancePre` with the pooling
//! allocator. Limits: the function's memory size over all of an instance's memories, its
//! timeout through epoch interruption (the guest yields at every tick, so a spinning guest
//! never blocks the host), no filesystem, no sockets, and outbound HTTP only to the hosts in
//! the function's `GUST_WASM_ALLOWED_HOSTS` variable.
//!
//! Every invocation's log lines (`START`, the guest's output, `END`, `REPORT`) go to the log
//! store in one batch with other invocations' lines, off the request path (`logs.rs`); a
//! guest's output past [`MAX_LOG_BYTES`] is truncated, not an error. A deleted function's
//! module is dropped from memory unless another function shares it.
//!
//! Not here: routing between executors (`gust_runtime::RoutingInvoker`), the Lambda API,
//! warm instance reuse (deliberately: nothing survives between requests), and granting
//! directories to guests.

mod artifact;
mod engine;
mod guest;
mod host;
pub mod invoker;
mod logs;

pub use artifact::{LoadError, WasmKind};
pub use engine::{PoolLimits, EPOCH_TICK};
pub use guest::MAX_LOG_BYTES;
pub use host::AllowedHosts;
pub use invoker::{
    WasmConfig, WasmError, WasmInvoker, WasmStats, ALLOWED_HOSTS_VAR, DEFAULT_MAX_MODULE_BYTES,
    INVOKE_EVENT_TYPE,
};
