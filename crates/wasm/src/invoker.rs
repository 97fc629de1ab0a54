//! [`WasmInvoker`]: the [`Invoker`] for `wasm` functions.
//!
//! One invocation: take a concurrency slot (the function's reserved concurrency and the
//! executor's global limit, throttling like the process runtime), find the function's loaded
//! module (compiled at deploy by `function_changed`, or loaded now from the artifact cache),
//! turn the event into an HTTP request (`POST /`, JSON body, CloudEvents binary-mode
//! headers), run it in a fresh instance, and map the HTTP answer to Lambda's result:
//!
//! | guest outcome | `Invoke` payload | `X-Amz-Function-Error` |
//! |---|---|---|
//! | 2xx | the response body | – |
//! | other status, body is `{"errorType":..,"errorMessage":..}` | that body | `Unhandled` |
//! | other status, any other body | `{"errorType":"Runtime.HttpError","errorMessage":"status <code>: <body>"}` | `Unhandled` |
//! | timeout | `{"errorType":"Sandbox.Timedout",..}` | `Unhandled` |
//! | trap | `{"errorType":"Runtime.WasmTrap","errorMessage":"RequestId: <id> Error: wasm trap: <trap>"}` | `Unhandled` |
//! | memory size exceeded | `{"errorType":"Runtime.OutOfMemory",..}` | `Unhandled` |
//! | WAGI module exits non-zero | `{"errorType":"Runtime.ExitError",..}` | `Unhandled` |
//! | no or malformed response | `{"errorType":"Runtime.InvalidResponse",..}` | `Unhandled` |
//! | package without a usable module | `{"errorType":"Runtime.InvalidWasm",..}` | `Unhandled` |
//!
//! An invocation runs in its caller's task, and moves to a task of its own if the caller
//! goes away first, so a caller that goes away does not cut it short;
//! `shutdown` waits for the running ones (each ends by its deadline at the latest). The
//! gateway's raw HTTP requests can stream ([`WasmInvoker::handle_http_stream`]): the caller
//! gets the head while the guest is still writing its body, and the rest of the invocation
//! moves to its own task the same way.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use gust_model::{function_arn, limits, now_ms, FunctionRecord, LogEntry, LogStream};
use gust_runtime::report::{
    end_line, error_body, report_line, rfc3339_now, start_line, timeout_message,
};
use gust_runtime::{
    tail_text, HttpBody, InvokeError, InvokeRequest, InvokeResponse, Invoker, GLOBAL_LIMIT,
    RESERVED_LIMIT,
};
use tokio::sync::{Notify, OnceCell};
use tokio::task::JoinHandle;
use wasmtime::Engine;

use crate::artifact::{ArtifactCache, Counters, Linkers, LoadError, Loaded, Prepared, WasmKind};
use crate::engine::{self, PoolLimits, Ticker};
use crate::guest::{self, Failure, RunInput, RunOutput, MAX_LOG_BYTES};
use crate::host::AllowedHosts;
use crate::logs::LogBuffer;

/// The function environment variable listing the hosts a guest may call over HTTP.
pub const ALLOWED_HOSTS_VAR: &str = "GUST_WASM_ALLOWED_HOSTS";
/// CloudEvents `type` of a direct invocation.
pub const INVOKE_EVENT_TYPE: &str = "com.amazonaws.lambda.invoke";
/// Largest module accepted by default (bytes).
pub const DEFAULT_MAX_MODULE_BYTES: u64 = 100 * 1024 * 1024;

/// Settings of the Wasm executor, chosen by the server.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Where compiled artifacts are kept (under the data directory, so they survive restarts).
    pub cache_dir: PathBuf,
    /// Most invocations running at once, across all Wasm functions.
    pub max_concurrency: u32,
    /// Region reported in ARNs (`ce-source`) and `AWS_REGION`.
    pub region: String,
    /// Largest `.wasm` file accepted.
    pub max_module_bytes: u64,
    /// Slots of the pooling allocator.
    pub pool: PoolLimits,
}

impl WasmConfig {
    pub fn new(cache_dir: PathBuf) -> WasmConfig {
        WasmConfig {
            cache_dir,
            max_concurrency: limits::DEFAULT_GLOBAL_CONCURRENCY,
            region: gust_model::DEFAULT_REGION.to_string(),
            max_module_bytes: DEFAULT_MAX_MODULE_BYTES,
            pool: PoolLimits::default(),
        }
    }
}

/// Why the executor could not be created.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(String),
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid Wasm runtime configuration: {0}")]
    Config(String),
}

/// Counts of module loads since start (for tests, benchmarks and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmStats {
    /// Modules compiled by Cranelift.
    pub compiled: u64,
    /// Modules loaded from the artifact cache without compiling.
    pub from_cache: u64,
    /// Invocations running now.
    pub busy: u32,
    /// Distinct modules held in memory (deleted functions' modules are dropped).
    pub modules: usize,
}

type LoadCell = Arc<OnceCell<Result<Arc<Loaded>, String>>>;

/// Loaded modules, shared by every function with the same package and handler, and each
/// function's view of its own (found by name without allocating, with its guest
/// environment prepared once per configuration).
#[derive(Default)]
struct Modules {
    by_package: HashMap<(String, String), LoadCell>,
    by_function: HashMap<String, FunctionEntry>,
}

struct FunctionEntry {
    code_id: String,
    handler: String,
    cell: LoadCell,
    /// The configuration `guest` was computed from.
    environment: std::collections::BTreeMap<String, String>,
    memory_size: u32,
    guest: Arc<GuestConfig>,
}

/// What every request of a function gives its guest, computed once per configuration.
struct GuestConfig {
    env: Arc<Vec<(String, String)>>,
    allowed: Arc<AllowedHosts>,
}

impl Modules {
    /// Forgets `name`'s entry, and drops its module unless another function uses it.
    fn forget(&mut self, name: &str) {
        if let Some(old) = self.by_function.remove(name) {
            self.release(&old.code_id, &old.handler);
        }
    }

    fn release(&mut self, code_id: &str, handler: &str) {
        let used = self
            .by_function
            .values()
            .any(|e| e.code_id == code_id && e.handler == handler);
        if !used {
            self.by_package
                .remove(&(code_id.to_string(), handler.to_string()));
        }
    }

    /// The load cell and guest configuration of `record`, creating or replacing its entry
    /// when its package or configuration changed.
    fn entry(&mut self, record: &FunctionRecord, region: &str) -> (LoadCell, Arc<GuestConfig>) {
        let cfg = &record.config;
        if let Some(e) = self.by_function.get(&cfg.name) {
            if e.code_id == record.code_id
                && e.handler == cfg.handler
                && e.memory_size == cfg.memory_size
                && e.environment == cfg.environment
            {
                return (e.cell.clone(), e.guest.clone());
            }
        }
        let cell = self
            .by_package
            .entry((record.code_id.clone(), cfg.handler.clone()))
            .or_default()
            .clone();
        let guest = Arc::new(GuestConfig {
            env: Arc::new(guest_env(record, region)),
            allowed: Arc::new(AllowedHosts::parse(
                cfg.environment
                    .get(ALLOWED_HOSTS_VAR)
                    .map_or("", String::as_str),
            )),
        });
        let old = self.by_function.insert(
            cfg.name.clone(),
            FunctionEntry {
                code_id: record.code_id.clone(),
                handler: cfg.handler.clone(),
                cell: cell.clone(),
                environment: cfg.environment.clone(),
                memory_size: cfg.memory_size,
                guest: guest.clone(),
            },
        );
        if let Some(old) = old {
            if old.code_id != record.code_id || old.handler != cfg.handler {
                self.release(&old.code_id, &old.handler);
            }
        }
        (cell, guest)
    }
}

/// Runs `wasm` functions on wasmtime. See the module docs.
pub struct WasmInvoker {
    inner: Arc<Inner>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for WasmInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmInvoker")
            .field("cache_dir", &self.inner.cache.dir)
            .finish_non_exhaustive()
    }
}

struct Inner {
    engine: Engine,
    linkers: Linkers,
    cache: ArtifactCache,
    counters: Counters,
    code: Arc<dyn gust_store::CodeStore>,
    logs: Arc<LogBuffer>,
    region: String,
    max_concurrency: u32,
    modules: Mutex<Modules>,
    slots: Mutex<Slots>,
    released: Notify,
    ticker: Ticker,
}

#[derive(Default)]
struct Slots {
    total: u32,
    per_function: HashMap<String, u32>,
    shutting_down: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain bookkeeping; a panic elsewhere does not make it unusable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WasmInvoker {
    /// Creates the engine (reserving the pooling allocator's slots), the cache directory and
    /// the log writer. Must be called inside a Tokio runtime.
    pub fn new(
        config: WasmConfig,
        code: Arc<dyn gust_store::CodeStore>,
        logs: Arc<dyn gust_store::LogStore>,
    ) -> Result<Arc<Self>, WasmError> {
        if config.max_concurrency == 0 {
            return Err(WasmError::Config(
                "max_concurrency must be at least 1".into(),
            ));
        }
        std::fs::create_dir_all(&config.cache_dir).map_err(|source| WasmError::Io {
            path: config.cache_dir.clone(),
            source,
        })?;
        let engine =
            engine::build(&config.pool).map_err(|e| WasmError::Engine(format!("{e:#}")))?;
        let linkers = Linkers::new(&engine).map_err(|e| WasmError::Engine(format!("{e:#}")))?;
        let ticker = Ticker::start(engine.clone()).map_err(|source| WasmError::Io {
            path: config.cache_dir.clone(),
            source,
        })?;
        let engine_hash = engine::engine_hash(&engine);
        tracing::info!(cache_dir = %config.cache_dir.display(), engine = %engine_hash, "wasm runtime ready");
        let (sink, writer) = LogBuffer::start(logs);
        let inner = Arc::new(Inner {
            engine,
            linkers,
            cache: ArtifactCache {
                dir: config.cache_dir,
                engine_hash,
                max_module_bytes: config.max_module_bytes,
            },
            counters: Counters::default(),
            code,
            logs: sink,
            region: config.region,
            max_concurrency: config.max_concurrency,
            modules: Mutex::new(Modules::default()),
            slots: Mutex::new(Slots::default()),
            released: Notify::new(),
            ticker,
        });
        Ok(Arc::new(WasmInvoker {
            inner,
            writer: Mutex::new(Some(writer)),
        }))
    }

    pub fn stats(&self) -> WasmStats {
        WasmStats {
            compiled: self.inner.counters.compiled.load(Ordering::Relaxed),
            from_cache: self.inner.counters.from_cache.load(Ordering::Relaxed),
            busy: lock(&self.inner.slots).total,
            modules: lock(&self.inner.modules).by_package.len(),
        }
    }

    /// Waits until every log line produced so far is in the log store.
    pub async fn flush_logs(&self) {
        self.inner.logs.flush().await;
    }

    /// Compiles (or loads from the cache) a function's module now, so its first request
    /// does not; returns what kind of binary it is, or why it cannot run.
    pub async fn prepare(&self, record: &FunctionRecord) -> Result<WasmKind, String> {
        match self.inner.load(record).await {
            Ok((loaded, _, _)) => Ok(loaded.kind),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Hands a raw HTTP request to a function (the API gateway's path): the guest sees the
    /// request as it is. A function error becomes a `502` carrying Lambda's error document
    /// and `x-amz-function-error: Unhandled` (`504` for a timeout).
    pub async fn handle_http(
        &self,
        function: Arc<FunctionRecord>,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, InvokeError> {
        let job = Job::raw(function, request, None);
        let done = run_job(self.inner.clone(), job).await?;
        Ok(done.outcome.into_http())
    }

    /// Like [`WasmInvoker::handle_http`], but a component still writing its body
    /// `STREAM_AFTER` (20 ms) after sending its head (or past `STREAM_ABOVE` (256 KB)
    /// bytes) has the rest streamed as it writes it; a failure after that cuts the body.
    pub async fn handle_http_stream(
        &self,
        function: Arc<FunctionRecord>,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<HttpBody>, InvokeError> {
        let (start_tx, start_rx) = tokio::sync::oneshot::channel();
        let job = Job::raw(function, request, Some(start_tx));
        let mut running = start_job(self.inner.clone(), job)?;
        tokio::select! {
            biased;
            done = &mut running => {
                let done = done.map_err(|e| InvokeError::Internal(format!("invocation failed: {e}")))?;
                Ok(done.outcome.into_http().map(HttpBody::Full))
            }
            Ok(start) = start_rx => {
                // Dropping the invocation moves the rest of it (the guest writing its body
                // into the stream, its logs) to a task of its own.
                drop(running);
                Ok(http::Response::from_parts(start.parts, HttpBody::Stream(start.body)))
            }
        }
    }
}

impl Outcome {
    /// The answer to a raw HTTP request: the guest's response, or `502` (`504` for a
    /// timeout) with Lambda's error document and `x-amz-function-error: Unhandled`.
    fn into_http(self) -> http::Response<Bytes> {
        match self {
            Outcome::Response(resp) => resp,
            Outcome::Error {
                error_type,
                payload,
            } => {
                let status = if error_type == "Sandbox.Timedout" {
                    http::StatusCode::GATEWAY_TIMEOUT
                } else {
                    http::StatusCode::BAD_GATEWAY
                };
                let mut resp = http::Response::new(payload);
                *resp.status_mut() = status;
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                resp.headers_mut().insert(
                    "x-amz-function-error",
                    http::HeaderValue::from_static("Unhandled"),
                );
                resp
            }
        }
    }
}

/// Largest response body of a raw HTTP request (`handle_http`).
const MAX_HTTP_RESPONSE: usize = 32 * 1024 * 1024;

#[async_trait]
impl gust_runtime::HttpHandler for WasmInvoker {
    async fn handle_http(
        &self,
        function: Arc<FunctionRecord>,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, InvokeError> {
        WasmInvoker::handle_http(self, function, request).await
    }

    async fn handle_http_stream(
        &self,
        function: Arc<FunctionRecord>,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<HttpBody>, InvokeError> {
        WasmInvoker::handle_http_stream(self, function, request).await
    }
}

impl Drop for WasmInvoker {
    fn drop(&mut self) {
        if let Some(w) = lock(&self.writer).take() {
            w.abort();
        }
    }
}

#[async_trait]
impl Invoker for WasmInvoker {
    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, InvokeError> {
        let request = event_request(&req, &self.inner.region);
        let job = Job {
            function: req.function,
            request_id: req.request_id,
            request,
            tail_log: req.tail_log,
            max_response_bytes: limits::MAX_SYNC_PAYLOAD,
            stream: None,
        };
        let done = run_job(self.inner.clone(), job).await?;
        let (payload, function_error) = match done.outcome {
            Outcome::Response(resp) => (resp.into_body(), None),
            Outcome::Error { payload, .. } => (payload, Some("Unhandled".to_string())),
        };
        Ok(InvokeResponse {
            payload,
            function_error,
            log_tail: done.log_tail,
            cold_start: done.cold,
            duration: done.duration,
        })
    }

    async fn function_changed(&self, name: &str, record: Option<Arc<FunctionRecord>>) {
        // Compile at deploy: the API answers once the module is ready, so the first request
        // pays nothing. A module that cannot run is logged here and reported by each invoke.
        // A deleted function's module is dropped (unless another function shares it).
        let Some(record) = record else {
            lock(&self.inner.modules).forget(name);
            return;
        };
        {
            let t0 = Instant::now();
            match self.inner.load(&record).await {
                Ok((loaded, _, _)) => tracing::info!(
                    function = name,
                    kind = loaded.kind.as_str(),
                    module = %loaded.module_hash,
                    compiled = loaded.compiled,
                    load_ms = loaded.load_time.as_secs_f64() * 1000.0,
                    ms = t0.elapsed().as_secs_f64() * 1000.0,
                    "wasm module ready"
                ),
                Err(error) => tracing::warn!(function = name, %error, "wasm module cannot run"),
            }
        }
    }

    async fn validate(&self, record: &FunctionRecord) -> Result<(), String> {
        // Compiles (or finds in the cache) now, so CreateFunction refuses a module that could
        // never run and the `function_changed` that follows finds it ready.
        self.prepare(record).await.map(|_| ())
    }

    async fn shutdown(&self) {
        lock(&self.inner.slots).shutting_down = true;
        loop {
            let released = self.inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if lock(&self.inner.slots).total == 0 {
                break;
            }
            released.await;
        }
        self.inner.logs.flush().await;
        tracing::info!("wasm runtime stopped");
    }
}

/// The request every non-HTTP invocation becomes: `POST /` with the event as JSON and the
/// CloudEvents 1.0 binary-mode attributes as headers.
fn event_request(req: &InvokeRequest, region: &str) -> http::Request<Bytes> {
    let cfg = &req.function.config;
    let mut builder = http::Request::post("http://localhost/")
        .header(http::header::HOST, "localhost")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("ce-specversion", "1.0")
        .header("ce-id", req.request_id.as_str())
        .header("ce-type", INVOKE_EVENT_TYPE)
        .header("ce-source", function_arn(region, &cfg.name))
        .header("ce-time", rfc3339_now())
        .header("lambda-runtime-aws-request-id", req.request_id.as_str());
    if let Some(cc) = &req.client_context {
        builder = builder.header("lambda-runtime-client-context", cc.as_str());
    }
    builder
        .body(req.payload.clone())
        .unwrap_or_else(|_| http::Request::new(req.payload.clone()))
}

struct Job {
    function: Arc<FunctionRecord>,
    request_id: String,
    request: http::Request<Bytes>,
    tail_log: bool,
    max_response_bytes: usize,
    /// Where a raw HTTP response still being written is handed over (see
    /// [`WasmInvoker::handle_http_stream`]).
    stream: Option<tokio::sync::oneshot::Sender<guest::StreamStart>>,
}

impl Job {
    /// A raw HTTP request from the gateway, with a fresh request id.
    fn raw(
        function: Arc<FunctionRecord>,
        request: http::Request<Bytes>,
        stream: Option<tokio::sync::oneshot::Sender<guest::StreamStart>>,
    ) -> Job {
        Job {
            function,
            request_id: gust_model::new_request_id(),
            request,
            tail_log: false,
            max_response_bytes: MAX_HTTP_RESPONSE,
            stream,
        }
    }
}

enum Outcome {
    Response(http::Response<Bytes>),
    Error { error_type: String, payload: Bytes },
}

struct Done {
    outcome: Outcome,
    log_tail: Option<String>,
    cold: bool,
    duration: Duration,
}

/// Takes a slot, then runs the job in the caller's task (no task hand-off, so no wake-up of
/// another worker thread per invocation). If the caller goes away before the end, the rest
/// of the job moves to a task of its own ([`Detached`]).
async fn run_job(inner: Arc<Inner>, job: Job) -> Result<Done, InvokeError> {
    start_job(inner, job)?
        .await
        .map_err(|e| InvokeError::Internal(format!("invocation failed: {e}")))
}

/// Takes a slot and returns the job, to be polled by the caller (see [`run_job`]).
fn start_job(inner: Arc<Inner>, job: Job) -> Result<Detached, InvokeError> {
    let slot = inner.acquire(&job.function)?;
    let fut = Box::pin(async move {
        let done = inner.execute(job).await;
        drop(slot);
        done
    });
    Ok(Detached { fut: Some(fut) })
}

/// An invocation polled by its caller that finishes on its own if the caller drops it:
/// a caller that goes away does not cut an invocation short (it still ends by its result
/// or its deadline, is logged, and gives its slot back).
struct Detached {
    fut: Option<std::pin::Pin<Box<dyn std::future::Future<Output = Done> + Send>>>,
}

impl std::future::Future for Detached {
    /// The result, or the message of a panic (the job is then dropped, giving its slot back).
    type Output = Result<Done, String>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let Some(fut) = self.fut.as_mut() else {
            return std::task::Poll::Pending;
        };
        // A panic stays inside this invocation, as it would in a task of its own.
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx)));
        let result = match polled {
            Ok(std::task::Poll::Pending) => return std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(done)) => Ok(done),
            Err(panic) => Err(panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into())),
        };
        self.fut = None;
        std::task::Poll::Ready(result)
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(fut) = self.fut.take() {
            // Outside a runtime (it is shutting down) the invocation is dropped with it.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    fut.await;
                });
            }
        }
    }
}

/// A concurrency slot, given back on drop (also when the task panics).
struct Slot {
    inner: Arc<Inner>,
    function: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = lock(&self.inner.slots);
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_function.get_mut(&self.function) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.per_function.remove(&self.function);
            }
        }
        drop(s);
        self.inner.released.notify_waiters();
    }
}

impl Inner {
    fn acquire(self: &Arc<Self>, record: &FunctionRecord) -> Result<Slot, InvokeError> {
        let mut s = lock(&self.slots);
        if s.shutting_down {
            return Err(InvokeError::ShuttingDown);
        }
        let name = &record.config.name;
        let busy = s.per_function.get(name).copied().unwrap_or(0);
        if record.reserved_concurrency.is_some_and(|r| busy >= r) {
            return Err(InvokeError::Throttled {
                reason: RESERVED_LIMIT,
            });
        }
        if s.total >= self.max_concurrency {
            return Err(InvokeError::Throttled {
                reason: GLOBAL_LIMIT,
            });
        }
        s.total += 1;
        *s.per_function.entry(name.clone()).or_insert(0) += 1;
        Ok(Slot {
            inner: self.clone(),
            function: name.clone(),
        })
    }

    /// The function's loaded module, loading it if needed; the flag says whether this call
    /// did the loading (a cold start).
    async fn load(
        self: &Arc<Self>,
        record: &FunctionRecord,
    ) -> Result<(Arc<Loaded>, bool, Arc<GuestConfig>), LoadError> {
        let (cell, guest) = lock(&self.modules).entry(record, &self.region);
        let mut loaded_now = false;
        let result = cell
            .get_or_try_init(|| async {
                loaded_now = true;
                let inner = self.clone();
                let code_dir = self.code.code_dir(&record.code_id);
                let code_id = record.code_id.clone();
                let handler = record.config.handler.clone();
                let r = tokio::task::spawn_blocking(move || {
                    inner.cache.load(
                        &inner.engine,
                        &inner.linkers,
                        &inner.counters,
                        &code_dir,
                        &code_id,
                        &handler,
                    )
                })
                .await
                .map_err(|e| LoadError::Io(format!("compilation task failed: {e}")))?;
                match r {
                    Ok(l) => Ok(Ok(Arc::new(l))),
                    // Invalid packages fail the same way every time: remember the answer.
                    Err(LoadError::Invalid(m)) => Ok(Err(m)),
                    Err(e) => Err(e),
                }
            })
            .await?;
        match result {
            Ok(l) => Ok((l.clone(), loaded_now, guest)),
            Err(m) => Err(LoadError::Invalid(m.clone())),
        }
    }

    async fn execute(self: Arc<Self>, job: Job) -> Done {
        let start = Instant::now();
        let start_ms = now_ms();
        let cfg = &job.function.config;
        let id = job.request_id.as_str();
        let timeout = Duration::from_secs(u64::from(cfg.timeout.max(1)));
        let deadline = start + timeout;

        let loaded = self.load(&job.function).await;
        let init = start.elapsed();
        let mut platform_after: Vec<String> = Vec::new();
        let mut status = String::new();
        let (outcome, log, peak, cold) = match loaded {
            Err(e) => {
                let error_type = match e {
                    LoadError::Invalid(_) => "Runtime.InvalidWasm",
                    LoadError::Io(_) => "Runtime.Unknown",
                };
                let message = format!("RequestId: {id} Error: {e}");
                platform_after.push(message.clone());
                platform_after.push(error_type.to_string());
                status = format!("\tStatus: error\tError Type: {error_type}");
                (
                    Outcome::Error {
                        error_type: error_type.to_string(),
                        payload: error_body(error_type, &message),
                    },
                    Bytes::new(),
                    0,
                    false,
                )
            }
            Ok((loaded, cold, guest)) => {
                let input = RunInput {
                    request: job.request,
                    env: guest.env.clone(),
                    memory_bytes: usize::try_from(u64::from(cfg.memory_size) * 1024 * 1024)
                        .unwrap_or(usize::MAX),
                    allowed: guest.allowed.clone(),
                    deadline,
                    program: program_name(&job.function),
                    max_response_bytes: job.max_response_bytes,
                    stream: job.stream,
                };
                let running = self.ticker.running();
                let out: RunOutput = match &loaded.prepared {
                    Prepared::Http(pre) => guest::run_http(&self.engine, pre, input).await,
                    Prepared::Cgi(pre) => guest::run_cgi(&self.engine, pre, input).await,
                };
                drop(running);
                for host in &out.denied_hosts {
                    platform_after.push(format!(
                        "outbound HTTP request to {host} denied (not in {ALLOWED_HOSTS_VAR})"
                    ));
                }
                if out.log_dropped > 0 {
                    platform_after.push(format!(
                        "log output truncated: {} bytes past the first {MAX_LOG_BYTES} were dropped",
                        out.log_dropped
                    ));
                }
                let outcome = match out.result {
                    Ok(resp) => to_outcome(resp, id),
                    Err(failure) => {
                        let (error_type, message, line, st) = describe(failure, id, cfg);
                        platform_after.extend(line);
                        status = st;
                        Outcome::Error {
                            payload: error_body(error_type, &message),
                            error_type: error_type.to_string(),
                        }
                    }
                };
                (outcome, out.log, out.peak_memory, cold)
            }
        };
        let duration = start.elapsed();
        let peak_mb = (peak as u64).div_ceil(1024 * 1024);
        let report = report_line(
            id,
            duration,
            cfg.memory_size,
            peak_mb,
            cold.then_some(init),
            &status,
        );
        // Every line of the invocation goes to the log writer at once; nothing here waits
        // for the store.
        let end_ms = now_ms();
        let printed = crate::host::lines(&log);
        let mut entries = Vec::with_capacity(3 + platform_after.len());
        let entry = |ts_ms: i64, stream: LogStream, message: String| LogEntry {
            ts_ms,
            function: cfg.name.clone(),
            request_id: id.to_string(),
            stream,
            message,
        };
        entries.push(entry(start_ms, LogStream::Platform, start_line(id)));
        entries.extend(printed.map(|l| entry(end_ms, LogStream::Stdout, l)));
        entries.extend(
            platform_after
                .into_iter()
                .map(|l| entry(end_ms, LogStream::Platform, l)),
        );
        entries.push(entry(end_ms, LogStream::Platform, end_line(id)));
        entries.push(entry(end_ms, LogStream::Platform, report));
        let log_tail = job.tail_log.then(|| {
            tail_text(
                &entries
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>(),
            )
        });
        self.logs.append(entries).await;
        Done {
            outcome,
            log_tail,
            cold,
            duration,
        }
    }
}

/// A guest's HTTP answer as an invocation result (see the table in the module docs).
fn to_outcome(resp: http::Response<Bytes>, _id: &str) -> Outcome {
    let status = resp.status();
    if status.is_success() {
        return Outcome::Response(resp);
    }
    let body = resp.into_body();
    let shaped = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .is_some_and(|v| v.get("errorType").is_some_and(serde_json::Value::is_string));
    let error_type = "Runtime.HttpError".to_string();
    if shaped {
        return Outcome::Error {
            error_type,
            payload: body,
        };
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned();
    let message = if text.is_empty() {
        format!("status {}", status.as_u16())
    } else {
        format!("status {}: {text}", status.as_u16())
    };
    Outcome::Error {
        payload: error_body(&error_type, &message),
        error_type,
    }
}

/// Error type, message, log lines and REPORT status of a failed run.
fn describe(
    failure: Failure,
    id: &str,
    cfg: &gust_model::FunctionConfig,
) -> (&'static str, String, Vec<String>, String) {
    match failure {
        Failure::Timeout => {
            let message = timeout_message(id, cfg.timeout);
            let secs = format!("{:.2}", f64::from(cfg.timeout.max(1)));
            (
                "Sandbox.Timedout",
                message,
                vec![format!(
                    "{} {id} Task timed out after {secs} seconds",
                    rfc3339_now()
                )],
                "\tStatus: timeout".into(),
            )
        }
        Failure::OutOfMemory(detail) => {
            let message = format!(
                "RequestId: {id} Error: Runtime exited with error: memory size of {} MB exceeded ({detail})",
                cfg.memory_size
            );
            (
                "Runtime.OutOfMemory",
                message.clone(),
                vec![message, "Runtime.OutOfMemory".into()],
                "\tStatus: error\tError Type: Runtime.OutOfMemory".into(),
            )
        }
        Failure::Trap { message, detail } => {
            let m = format!("RequestId: {id} Error: {message}");
            (
                "Runtime.WasmTrap",
                m,
                detail
                    .lines()
                    .map(str::to_string)
                    .chain(["Runtime.WasmTrap".to_string()])
                    .collect(),
                "\tStatus: error\tError Type: Runtime.WasmTrap".into(),
            )
        }
        Failure::Exit(code) => {
            let m = format!("RequestId: {id} Error: Runtime exited with error: exit status {code}");
            (
                "Runtime.ExitError",
                m.clone(),
                vec![m, "Runtime.ExitError".into()],
                "\tStatus: error\tError Type: Runtime.ExitError".into(),
            )
        }
        Failure::InvalidResponse(why) => {
            let m = format!("RequestId: {id} Error: {why}");
            (
                "Runtime.InvalidResponse",
                m.clone(),
                vec![m, "Runtime.InvalidResponse".into()],
                "\tStatus: error\tError Type: Runtime.InvalidResponse".into(),
            )
        }
    }
}

/// The guest's environment: the function's variables and Lambda's descriptive ones. No
/// credentials: a guest reaches nothing unless its configuration grants hosts.
fn guest_env(record: &FunctionRecord, region: &str) -> Vec<(String, String)> {
    let cfg = &record.config;
    let mut env = cfg.environment.clone();
    // Lambda's own variables win over the function's, as in the process runtime.
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", cfg.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            cfg.memory_size.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_REGION", region.to_string()),
        ("AWS_DEFAULT_REGION", region.to_string()),
    ] {
        env.insert(k.to_string(), v);
    }
    env.into_iter().collect()
}

fn program_name(record: &FunctionRecord) -> String {
    if record.config.handler.is_empty() {
        format!("{}.wasm", record.config.name)
    } else {
        record.config.handler.clone()
    }
}
