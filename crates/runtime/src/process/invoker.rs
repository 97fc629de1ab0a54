//! [`ProcessInvoker`]: runs invocations in pooled child-process environments.
//!
//! One invocation: take a concurrency slot and an environment from the pool (or start one),
//! hand the payload to the environment's Runtime API, wait for the answer, the process's exit
//! or the deadline, write `START`/`END`/`REPORT`, and give the environment back (or stop it).
//!
//! A caller that goes away (a dropped HTTP request) does not abandon an environment
//! mid-invocation: like Lambda, the invocation runs to its end. The invocation is polled in the
//! caller's own task (no spawn, no cross-thread hand-off on the warm path) inside a
//! [`Detached`], which, if dropped before the invocation finished, moves the rest of it into a
//! task of its own. The pool's busy count is the owner of those tasks: `shutdown` waits for it
//! to reach zero, and every invocation ends by its deadline at the latest.
//!
//! Background tasks, each owned by the invoker and ended by `shutdown` (or drop): the log
//! writer, the idle reaper, the janitor that stops environments off the invoke path, and the
//! starters of provisioned environments.
//!
//! Response streaming (`invoke_stream`): a runtime that posts its response in streaming mode
//! has the stream handed to the caller as soon as its head arrives; the invocation goes on (in
//! its own task, the same way as a dropped caller's) until the stream ends, under the same
//! deadline, and only then are `END`/`REPORT` written, the environment released and `end` sent.
//! A caller that drops the stream early makes the rest be discarded, never blocking the
//! function. A plain `invoke` of a streaming function collects the stream whole, within the
//! buffered 6 MB limit, as Lambda does for a `RequestResponse` invoke.
//!
//! Deadlines, as in Lambda: an on-demand environment's init (spawn to the runtime's first
//! `next`) has its own limit, [`INIT_TIMEOUT`] (10 s), and an invocation's deadline is its
//! delivery to the runtime plus the function's timeout (`Lambda-Runtime-Deadline-Ms`), so a
//! slow cold start does not eat into the handler's time. An init that overruns its 10 s is, in
//! Lambda, retried during the invocation under the function's timeout; Gust lets the same init
//! carry on instead of restarting it, under that same budget: from the moment the 10 s ran out,
//! the rest of the init and the invocation together get the function's timeout (an
//! `INIT_REPORT ... Status: timeout` line records the overrun). Provisioned environments get
//! [`PROVISIONED_INIT_TIMEOUT`] to initialize.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use gust_model::{function_arn, now_ms, FunctionRecord, RuntimeKind};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::environment::{Context, Environment, InitType, StartError};
use super::logs::{tail_text, LogSink};
use super::memory::MemoryControl;
use super::pool::{EnvironmentCounts, Lease, PoolState, Pooled};
use super::runtime_api::{
    response_too_large, Assignment, Outcome, Phase, StreamStart, MAX_RESPONSE_BYTES,
};
use crate::report::{error_body, rfc3339_now};
use crate::{
    InvokeError, InvokeRequest, InvokeResponse, InvokeStream, Invoker, RuntimeConfig, RuntimeError,
};

/// The Python bootstrap, written to `<work_dir>/bootstrap/bootstrap.py` at start-up.
const PYTHON_BOOTSTRAP: &str = include_str!("../../bootstrap/python/bootstrap.py");
/// The Node bootstrap, written to `<work_dir>/bootstrap/bootstrap.js` at start-up.
const NODE_BOOTSTRAP: &str = include_str!("../../bootstrap/node/bootstrap.js");

/// Time a provisioned environment has to reach its first `next` (Lambda's init limit).
pub const PROVISIONED_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Lambda's limit on an on-demand environment's init phase (spawn to the first `next`), which
/// does not count against the invocation's timeout. See the module docs for an overrun.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

impl Pooled for Environment {
    fn id(&self) -> &str {
        &self.id
    }
    fn generation(&self) -> u64 {
        self.generation
    }
    fn provisioned(&self) -> bool {
        self.provisioned
    }
    fn alive(&self) -> bool {
        !self.has_exited()
    }
}

/// Runs Lambda functions as child processes speaking the Runtime API. See the module docs.
pub struct ProcessInvoker {
    inner: Arc<Inner>,
    background: Mutex<Background>,
}

/// The invoker's own tasks; each is ended by `shutdown` or by drop.
#[derive(Default)]
struct Background {
    writer: Option<JoinHandle<()>>,
    janitor: Option<JoinHandle<()>>,
    reaper: Option<JoinHandle<()>>,
}

impl Background {
    fn abort_all(&mut self) {
        for t in [self.writer.take(), self.janitor.take(), self.reaper.take()]
            .into_iter()
            .flatten()
        {
            t.abort();
        }
    }
}

impl std::fmt::Debug for ProcessInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessInvoker")
            .field("work_dir", &self.inner.ctx.config.work_dir)
            .finish_non_exhaustive()
    }
}

struct Inner {
    ctx: Context,
    pool: Mutex<PoolState<Environment>>,
    /// Notified whenever an invocation releases its slot (shutdown waits on it).
    released: Notify,
    /// Environments to stop off the invoke path; `None` once shut down.
    janitor: Mutex<Option<mpsc::UnboundedSender<Arc<Environment>>>>,
    /// Starters of provisioned environments.
    starters: Mutex<JoinSet<()>>,
    /// The on-demand init limit in milliseconds ([`INIT_TIMEOUT`] unless a test changed it).
    init_timeout_ms: AtomicU64,
}

impl ProcessInvoker {
    /// Writes the bootstraps into `config.work_dir/bootstrap/`, decides how memory is limited,
    /// and starts the background tasks. Must be called inside a Tokio runtime.
    pub fn new(
        config: RuntimeConfig,
        code: Arc<dyn gust_store::CodeStore>,
        logs: Arc<dyn gust_store::LogStore>,
    ) -> Result<Arc<Self>, RuntimeError> {
        let bootstrap_dir = config.work_dir.join("bootstrap");
        let env_root = config.work_dir.join("env");
        for dir in [&bootstrap_dir, &env_root] {
            std::fs::create_dir_all(dir).map_err(|source| RuntimeError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        for (file, text) in [
            ("bootstrap.py", PYTHON_BOOTSTRAP),
            ("bootstrap.js", NODE_BOOTSTRAP),
        ] {
            let path = bootstrap_dir.join(file);
            std::fs::write(&path, text).map_err(|source| RuntimeError::Io {
                path: path.clone(),
                source,
            })?;
        }
        for (what, path) in [("python", &config.python), ("node", &config.node)] {
            if let Some(p) = path {
                if !p.is_file() {
                    tracing::warn!(interpreter = what, path = %p.display(), "configured interpreter not found");
                }
            }
        }
        if config.max_concurrency == 0 {
            return Err(RuntimeError::Config(
                "max_concurrency must be at least 1".into(),
            ));
        }
        let memory = MemoryControl::detect();
        tracing::info!(memory = memory.describe(), work_dir = %config.work_dir.display(), "process runtime ready");
        let (sink, writer) = LogSink::start(logs);
        let (janitor_tx, janitor_rx) = mpsc::unbounded_channel();
        let max = config.max_concurrency;
        let idle_timeout = config.idle_timeout;
        let inner = Arc::new(Inner {
            ctx: Context {
                config,
                bootstrap_dir,
                env_root,
                code,
                memory,
                logs: sink,
            },
            pool: Mutex::new(PoolState::new(max)),
            released: Notify::new(),
            janitor: Mutex::new(Some(janitor_tx)),
            starters: Mutex::new(JoinSet::new()),
            init_timeout_ms: AtomicU64::new(duration_ms(INIT_TIMEOUT)),
        });
        let background = Background {
            writer: Some(writer),
            janitor: Some(tokio::spawn(janitor(janitor_rx))),
            reaper: Some(tokio::spawn(reaper(Arc::downgrade(&inner), idle_timeout))),
        };
        Ok(Arc::new(ProcessInvoker {
            inner,
            background: Mutex::new(background),
        }))
    }

    /// Environment counts of one function (for metrics, the console and tests).
    pub fn environments(&self, function: &str) -> EnvironmentCounts {
        self.inner.pool().counts(function)
    }

    /// Waits until every log line produced so far is in the log store.
    pub async fn flush_logs(&self) {
        self.inner.ctx.logs.flush().await;
    }

    /// Changes the on-demand init limit ([`INIT_TIMEOUT`]); for tests, which cannot wait 10 s.
    pub fn set_init_timeout(&self, limit: Duration) {
        self.inner
            .init_timeout_ms
            .store(duration_ms(limit), Ordering::Relaxed);
    }

    /// The directory holding the bootstraps (`LAMBDA_RUNTIME_DIR`).
    pub fn bootstrap_dir(&self) -> PathBuf {
        self.inner.ctx.bootstrap_dir.clone()
    }
}

impl Drop for ProcessInvoker {
    fn drop(&mut self) {
        // Without `shutdown`, environments are killed when the last invocation task lets go of
        // them (their own drop); the background tasks end here.
        lock(&self.background).abort_all();
        lock(&self.inner.starters).abort_all();
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data are plain bookkeeping; a panic elsewhere does not make them unusable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn pool(&self) -> MutexGuard<'_, PoolState<Environment>> {
        lock(&self.pool)
    }

    fn stop_later(&self, envs: impl IntoIterator<Item = Arc<Environment>>) {
        let janitor = lock(&self.janitor);
        for env in envs {
            match janitor.as_ref() {
                Some(tx) => {
                    // Fails only if the janitor is gone; dropping the environment then kills it.
                    let _ = tx.send(env);
                }
                None => drop(env),
            }
        }
    }

    /// Starts provisioned environments until the function has its provisioned concurrency.
    fn ensure_provisioned(self: &Arc<Self>, name: &str) {
        let Some(plan) = self.pool().provision(name) else {
            return;
        };
        tracing::info!(
            function = name,
            count = plan.count,
            "starting provisioned environments"
        );
        let mut starters = lock(&self.starters);
        while starters.try_join_next().is_some() {}
        for _ in 0..plan.count {
            starters.spawn(start_provisioned(
                self.clone(),
                plan.record.clone(),
                plan.generation,
            ));
        }
    }
}

async fn start_provisioned(inner: Arc<Inner>, record: Arc<FunctionRecord>, generation: u64) {
    let name = record.config.name.clone();
    let env = match Environment::start(&inner.ctx, record, generation, InitType::Provisioned, true)
        .await
    {
        Ok(env) => env,
        Err(e) => {
            tracing::warn!(function = %name, error = ?e, "provisioned environment failed to start");
            inner.pool().start_failed(&name, generation, false);
            return;
        }
    };
    let mut phase = env.api.phase();
    let ready = tokio::select! {
        p = phase.wait_for(|p| *p != Phase::Initializing) => matches!(p.as_deref(), Ok(Phase::Ready)),
        _ = env.exited() => false,
        () = tokio::time::sleep(PROVISIONED_INIT_TIMEOUT) => false,
    };
    if ready {
        let stale = inner.pool().provisioned_ready(&name, env, Instant::now());
        inner.stop_later(stale);
    } else {
        tracing::warn!(function = %name, env = %env.id, "provisioned environment failed to initialize");
        inner.pool().start_failed(&name, generation, false);
        inner.stop_later([env]);
    }
}

async fn janitor(mut rx: mpsc::UnboundedReceiver<Arc<Environment>>) {
    let mut stopping = JoinSet::new();
    loop {
        tokio::select! {
            env = rx.recv() => match env {
                Some(env) => {
                    stopping.spawn(async move { env.stop().await });
                }
                None => break,
            },
            Some(_) = stopping.join_next(), if !stopping.is_empty() => {}
        }
    }
    while stopping.join_next().await.is_some() {}
}

async fn reaper(inner: Weak<Inner>, idle_timeout: Duration) {
    let period = (idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let expired = inner.pool().expire_idle(Instant::now(), idle_timeout);
        if !expired.is_empty() {
            tracing::debug!(count = expired.len(), "stopping idle environments");
            inner.stop_later(expired);
        }
    }
}

#[async_trait]
impl Invoker for ProcessInvoker {
    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, InvokeError> {
        let inner = self.inner.clone();
        Detached(Some(Box::pin(run(inner, req, Delivery::Whole)))).await
    }

    async fn invoke_stream(&self, req: InvokeRequest) -> Result<InvokeStream, InvokeError> {
        let (start, mut started) = oneshot::channel();
        let delivery = Delivery::Stream(Handoff {
            start: Some(start),
            end: None,
        });
        let mut invocation = Detached(Some(Box::pin(run(self.inner.clone(), req, delivery))));
        tokio::select! {
            biased;
            // The function started streaming: `invocation`, dropped here, goes on in a task of
            // its own until the stream ends.
            Ok(stream) = &mut started => Ok(stream),
            done = &mut invocation => match started.try_recv() {
                Ok(stream) => Ok(stream),
                // It answered without streaming (or failed, or timed out) first.
                Err(_) => done.map(InvokeStream::whole),
            },
        }
    }

    async fn function_changed(&self, name: &str, record: Option<Arc<FunctionRecord>>) {
        let stale = self.inner.pool().changed(name, record.as_ref());
        if !stale.is_empty() {
            tracing::debug!(
                function = name,
                count = stale.len(),
                "draining environments of a changed function"
            );
        }
        self.inner.stop_later(stale);
        if record.is_some() {
            self.inner.ensure_provisioned(name);
        }
    }

    async fn shutdown(&self) {
        let inner = &self.inner;
        let idle = inner.pool().begin_shutdown();
        inner.stop_later(idle);
        loop {
            let released = inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if inner.pool().busy_total() == 0 {
                break;
            }
            released.await;
        }
        let mut starters = std::mem::take(&mut *lock(&inner.starters));
        while starters.join_next().await.is_some() {}
        let janitor_tx = lock(&inner.janitor).take();
        drop(janitor_tx);
        let janitor = lock(&self.background).janitor.take();
        if let Some(j) = janitor {
            let _ = j.await;
        }
        inner.ctx.logs.flush().await;
        lock(&self.background).abort_all();
        tracing::info!(
            starting = inner.pool().starting_total(),
            "process runtime stopped"
        );
    }
}

type Invocation = Pin<Box<dyn Future<Output = Result<InvokeResponse, InvokeError>> + Send>>;

/// An invocation polled by its caller; dropped unfinished (the caller went away), it finishes
/// in a task of its own.
struct Detached(Option<Invocation>);

impl Future for Detached {
    type Output = Result<InvokeResponse, InvokeError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let Some(fut) = self.0.as_mut() else {
            return Poll::Ready(Err(InvokeError::Internal(
                "invocation polled after it finished".into(),
            )));
        };
        // A panic ends this invocation only (as it did when each ran in its own task); the
        // guards in the dropped future give its slot back.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx)))
            .unwrap_or_else(|_| {
                Poll::Ready(Err(InvokeError::Internal(
                    "invocation task failed: panicked".into(),
                )))
            });
        if out.is_ready() {
            self.0 = None;
        }
        out
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(fut) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(fut);
                }
                // No runtime (it is shutting down): dropping the invocation gives its slot back
                // and kills its environment.
                Err(_) => drop(fut),
            }
        }
    }
}

/// Gives the slot back if an invocation task ends without releasing it (a panic).
struct SlotGuard {
    inner: Arc<Inner>,
    name: String,
    generation: u64,
    cold_pending: bool,
    env: Option<Arc<Environment>>,
}

impl SlotGuard {
    fn finish(mut self, healthy: bool) {
        let env = self.env.take();
        self.cold_pending = false;
        if let Some(env) = env {
            let stop = self
                .inner
                .pool()
                .release(&self.name, env, healthy, Instant::now());
            let lost = stop.is_some();
            self.inner.stop_later(stop);
            if lost && !healthy {
                self.inner.ensure_provisioned(&self.name);
            }
        }
        self.inner.released.notify_waiters();
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if self.cold_pending {
            self.inner
                .pool()
                .start_failed(&self.name, self.generation, true);
            self.inner.released.notify_waiters();
        } else if let Some(env) = self.env.take() {
            let stop = self
                .inner
                .pool()
                .release(&self.name, env, false, Instant::now());
            self.inner.stop_later(stop);
            self.inner.released.notify_waiters();
        }
    }
}

/// Where an invocation's response goes.
enum Delivery {
    /// Whole, once done (`invoke`): a streamed response is collected, within Lambda's 6 MB.
    Whole,
    /// Handed over as the function writes it (`invoke_stream`).
    Stream(Handoff),
}

struct Handoff {
    /// Takes the stream once the function starts one.
    start: Option<oneshot::Sender<InvokeStream>>,
    /// The stream's `end`, once the stream was handed over.
    end: Option<oneshot::Sender<InvokeResponse>>,
}

/// Frames of a stream that may wait for a slow caller before the function is slowed down.
const CALLER_FRAMES: usize = 16;

/// How long a stream whose connection broke waits for the runtime's exit to be noticed.
const BROKEN_GRACE: Duration = Duration::from_millis(500);

async fn run(
    inner: Arc<Inner>,
    req: InvokeRequest,
    mut delivery: Delivery,
) -> Result<InvokeResponse, InvokeError> {
    let start = Instant::now();
    let record = req.function.clone();
    let name = record.config.name.clone();
    let kind = RuntimeKind::parse(&record.config.runtime).ok_or_else(|| {
        InvokeError::Internal(format!("unsupported runtime {}", record.config.runtime))
    })?;
    inner
        .ctx
        .interpreter(&kind, &record.config.runtime)
        .map_err(InvokeError::RuntimeUnavailable)?;
    let timeout = Duration::from_secs(u64::from(record.config.timeout.max(1)));

    let acquired = inner.pool().acquire(&record)?;
    inner.stop_later(acquired.stop);
    let mut slot = SlotGuard {
        inner: inner.clone(),
        name: name.clone(),
        generation: acquired.generation,
        cold_pending: matches!(acquired.lease, Lease::Cold),
        env: None,
    };
    let (env, cold) = match acquired.lease {
        Lease::Warm(env) => (env, false),
        Lease::Cold => {
            match Environment::start(
                &inner.ctx,
                record.clone(),
                acquired.generation,
                InitType::OnDemand,
                false,
            )
            .await
            {
                Ok(env) => {
                    inner.pool().cold_started(&name, &env);
                    slot.cold_pending = false;
                    (env, true)
                }
                Err(e) => {
                    // The guard gives the slot back.
                    drop(slot);
                    return match e {
                        StartError::RuntimeUnavailable(m) => {
                            Err(InvokeError::RuntimeUnavailable(m))
                        }
                        StartError::Internal(m) => Err(InvokeError::Internal(m)),
                        StartError::InvalidEntrypoint(m) => {
                            Ok(invalid_entrypoint(&inner, &req, &m, start).await)
                        }
                    };
                }
            }
        }
    };
    slot.env = Some(env.clone());
    let (resp, healthy) = execute(&inner, &env, &req, timeout, cold, start, &mut delivery).await;
    drop(env);
    slot.finish(healthy);
    if let Delivery::Stream(Handoff { end: Some(end), .. }) = delivery {
        // The environment is back in the pool before the caller hears of the end.
        let _ = end.send(resp.clone().into_stream_end());
    }
    Ok(resp)
}

/// How waiting for the runtime ended.
enum Waited {
    Done(Outcome),
    Exited(String),
    TimedOut,
}

/// Waits for a cold environment's runtime to call `next` for the first time (or to fail);
/// false if `until` came first.
async fn wait_ready(env: &Environment, until: Instant) -> bool {
    let mut phase = env.api.phase();
    tokio::select! {
        biased;
        _ = phase.wait_for(|p| *p != Phase::Initializing) => true,
        _ = env.exited() => true,
        () = tokio::time::sleep_until(until) => false,
    }
}

/// Follows a streamed response to its end (or the process's exit, or the deadline): forwards
/// its frames to the caller, or collects them for a whole response.
async fn follow_stream(
    env: &Environment,
    stream: StreamStart,
    deadline: Instant,
    delivery: &mut Delivery,
) -> Waited {
    let StreamStart {
        content_type,
        mut chunks,
        end,
    } = stream;
    // `Some(buf)` collects; otherwise frames go to `forward` (`None`: the caller is gone).
    let mut collect: Option<BytesMut> = None;
    let mut collected = 0usize;
    let mut forward = None;
    match delivery {
        Delivery::Whole => collect = Some(BytesMut::new()),
        Delivery::Stream(handoff) => {
            let (stream, producer) = InvokeStream::open(content_type, CALLER_FRAMES);
            if handoff.start.take().is_some_and(|s| s.send(stream).is_ok()) {
                forward = Some(producer.chunks);
            }
            handoff.end = Some(producer.end);
        }
    }
    loop {
        let chunk = tokio::select! {
            biased;
            c = chunks.recv() => c,
            exit = env.exited() => return Waited::Exited(exit.0),
            () = tokio::time::sleep_until(deadline) => return Waited::TimedOut,
        };
        let Some(chunk) = chunk else { break };
        if let Some(buf) = collect.as_mut() {
            collected += chunk.len();
            if collected <= MAX_RESPONSE_BYTES {
                buf.extend_from_slice(&chunk);
            } else {
                *buf = BytesMut::new();
            }
        } else if let Some(tx) = &forward {
            let sent = tokio::select! {
                biased;
                r = tx.send(chunk) => r.is_ok(),
                exit = env.exited() => return Waited::Exited(exit.0),
                () = tokio::time::sleep_until(deadline) => return Waited::TimedOut,
            };
            if !sent {
                // The caller dropped the stream: the rest is read and discarded.
                forward = None;
            }
        }
    }
    // The caller's chunks end before its `end` is sent.
    drop(forward);
    let outcome = tokio::select! {
        biased;
        o = end => match o {
            Ok(o) => o,
            Err(_) => return Waited::Exited(env.exited().await.0),
        },
        exit = env.exited() => return Waited::Exited(exit.0),
        () = tokio::time::sleep_until(deadline) => return Waited::TimedOut,
    };
    if let Outcome::Broken { payload, duration } = outcome {
        // Its connection broke mid-stream: report the runtime's exit, as Lambda does, if
        // that is what happened.
        return match tokio::time::timeout(BROKEN_GRACE, env.exited()).await {
            Ok(exit) => Waited::Exited(exit.0),
            Err(_) => Waited::Done(Outcome::Error { payload, duration }),
        };
    }
    Waited::Done(match (collect, outcome) {
        (Some(_), Outcome::Response { duration, .. }) if collected > MAX_RESPONSE_BYTES => {
            Outcome::Error {
                payload: response_too_large(MAX_RESPONSE_BYTES),
                duration,
            }
        }
        (Some(buf), Outcome::Response { duration, .. }) => Outcome::Response {
            body: buf.freeze(),
            duration,
        },
        (_, outcome) => outcome,
    })
}

/// Runs one invocation on `env`; returns the response and whether the environment can be reused.
async fn execute(
    inner: &Inner,
    env: &Environment,
    req: &InvokeRequest,
    timeout: Duration,
    cold: bool,
    start: Instant,
    delivery: &mut Delivery,
) -> (InvokeResponse, bool) {
    let cfg = &req.function.config;
    let id = req.request_id.as_str();
    let logs = &inner.ctx.logs;
    // Where the invocation's time (and its deadline) starts: delivery, unless the init overran.
    let mut clock_from = None;
    let mut init_timed_out = false;
    let mut init_report = None;
    if cold {
        // Output of the init phase belongs to no invocation (as in Lambda, it precedes START):
        // wait for the runtime's first `next` (or its failure), then drain the pipes.
        let limit = Duration::from_millis(inner.init_timeout_ms.load(Ordering::Relaxed));
        if !wait_ready(env, env.started + limit).await {
            // Lambda retries such an init during the invocation, under the function's timeout;
            // here the same init carries on under that budget.
            let overrun_at = Instant::now();
            clock_from = Some(overrun_at);
            let line = format!(
                "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: timeout",
                overrun_at.duration_since(env.started).as_secs_f64() * 1000.0
            );
            logs.platform(&cfg.name, id, line.clone()).await;
            init_report = Some(line);
            init_timed_out = !wait_ready(env, overrun_at + timeout).await;
        }
        env.finish_logs().await;
    }
    let start_line = format!("START RequestId: {id} Version: $LATEST");
    env.begin_logs(id, req.tail_log);
    logs.platform(&cfg.name, id, start_line.clone()).await;
    env.memory.reset_peak();

    // The runtime is waiting in `next` (or about to call it): the deadline runs from here.
    let deadline = clock_from.unwrap_or_else(Instant::now) + timeout;
    let waited = if init_timed_out {
        Waited::TimedOut
    } else {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let deadline_ms = now_ms() + i64::try_from(remaining.as_millis()).unwrap_or(i64::MAX);
        let (done, answer) = oneshot::channel();
        env.api.assign(Assignment {
            request_id: id.to_string(),
            payload: req.payload.clone(),
            deadline_ms,
            function_arn: function_arn(&inner.ctx.config.region, &cfg.name),
            trace_id: trace_id(),
            client_context: req.client_context.clone(),
            done,
        });
        tokio::select! {
            biased;
            a = answer => match a {
                Ok(outcome) => Waited::Done(outcome),
                Err(_) => Waited::Exited(env.exited().await.0),
            },
            exit = env.exited() => Waited::Exited(exit.0),
            () = tokio::time::sleep_until(deadline) => Waited::TimedOut,
        }
    };
    let waited = match waited {
        Waited::Done(Outcome::Stream(stream)) => {
            follow_stream(env, stream, deadline, delivery).await
        }
        other => other,
    };
    let ended = Instant::now();
    // Time in the handler: from delivery on `next` (or from the init overrun, whose rest is
    // billed as in Lambda), or from the invocation's start if the runtime never fetched it.
    let handler_time = || {
        let from = clock_from
            .or_else(|| env.api.delivered_at())
            .unwrap_or(start);
        ended.saturating_duration_since(from)
    };
    let init_duration = cold.then(|| {
        env.api
            .ready_at()
            .unwrap_or(ended)
            .saturating_duration_since(env.started)
    });

    let mut platform_after: Vec<String> = Vec::new();
    let mut status = "";
    let (payload, function_error, healthy, duration) = match waited {
        Waited::Done(Outcome::Response { body, duration }) => {
            let duration = if clock_from.is_some() {
                handler_time()
            } else {
                duration
            };
            (body, None, true, duration)
        }
        Waited::Done(
            Outcome::Error { payload, duration } | Outcome::Broken { payload, duration },
        ) => {
            let duration = if clock_from.is_some() {
                handler_time()
            } else {
                duration
            };
            (payload, Some("Unhandled"), true, duration)
        }
        // `follow_stream` resolved the stream into one of the other outcomes.
        Waited::Done(Outcome::Stream(_)) => (Bytes::new(), None, true, handler_time()),
        Waited::Done(Outcome::InitError { payload }) => {
            status = "\tStatus: error";
            (payload, Some("Unhandled"), false, handler_time())
        }
        Waited::Exited(how) => {
            let duration = handler_time();
            let error_type = if env.memory.oom_killed() {
                "Runtime.OutOfMemory"
            } else {
                "Runtime.ExitError"
            };
            let message = format!("RequestId: {id} Error: Runtime exited with error: {how}");
            platform_after.push(message.clone());
            platform_after.push(error_type.to_string());
            status = if error_type == "Runtime.OutOfMemory" {
                "\tStatus: error\tError Type: Runtime.OutOfMemory"
            } else {
                "\tStatus: error\tError Type: Runtime.ExitError"
            };
            (
                error_body(error_type, &message),
                Some("Unhandled"),
                false,
                duration,
            )
        }
        Waited::TimedOut => {
            env.kill();
            env.api.clear();
            let duration = handler_time();
            let secs = format!("{:.2}", f64::from(cfg.timeout.max(1)));
            platform_after.push(format!(
                "{} {id} Task timed out after {secs} seconds",
                rfc3339_now()
            ));
            status = "\tStatus: timeout";
            // Let the kill land so the drain below sees everything the process wrote.
            let _ = tokio::time::timeout(Duration::from_secs(2), env.exited()).await;
            let message = format!("RequestId: {id} Error: Task timed out after {secs} seconds");
            (
                error_body("Sandbox.Timedout", &message),
                Some("Unhandled"),
                false,
                duration,
            )
        }
    };
    if !healthy {
        env.kill();
    }
    let max_memory_mb = env
        .memory
        .peak_bytes()
        .map_or(0, |b| b.div_ceil(1024 * 1024));

    let printed = env.finish_logs().await;
    for line in &platform_after {
        logs.platform(&cfg.name, id, line.clone()).await;
    }
    let end_line = format!("END RequestId: {id}");
    let ms = duration.as_secs_f64() * 1000.0;
    let billed = (duration.as_nanos().div_ceil(1_000_000)).max(1);
    let mut report = format!(
        "REPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {max_memory_mb} MB",
        cfg.memory_size
    );
    if let Some(init) = init_duration {
        report.push_str(&format!(
            "\tInit Duration: {:.2} ms",
            init.as_secs_f64() * 1000.0
        ));
    }
    report.push_str(status);
    logs.platform(&cfg.name, id, end_line.clone()).await;
    logs.platform(&cfg.name, id, report.clone()).await;

    let log_tail = req.tail_log.then(|| {
        let mut lines = Vec::with_capacity(printed.len() + platform_after.len() + 4);
        lines.extend(init_report);
        lines.push(start_line);
        lines.extend(printed);
        lines.extend(platform_after);
        lines.push(end_line);
        lines.push(report);
        tail_text(&lines)
    });
    tracing::debug!(
        function = %cfg.name, request_id = id, cold, duration_ms = ms, error = function_error.unwrap_or(""),
        "invocation finished"
    );
    let resp = InvokeResponse {
        payload,
        function_error: function_error.map(str::to_string),
        log_tail,
        cold_start: cold,
        duration,
    };
    (resp, healthy)
}

/// The answer for a `provided` function whose `bootstrap` cannot be executed.
async fn invalid_entrypoint(
    inner: &Inner,
    req: &InvokeRequest,
    why: &str,
    start: Instant,
) -> InvokeResponse {
    let cfg = &req.function.config;
    let id = req.request_id.as_str();
    let message = format!("RequestId: {id} Error: {why}");
    let duration = start.elapsed();
    let lines = vec![
        format!("START RequestId: {id} Version: $LATEST"),
        message.clone(),
        "Runtime.InvalidEntrypoint".to_string(),
        format!("END RequestId: {id}"),
        format!(
            "REPORT RequestId: {id}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: 0 MB\tStatus: error\tError Type: Runtime.InvalidEntrypoint",
            duration.as_secs_f64() * 1000.0,
            duration.as_nanos().div_ceil(1_000_000).max(1),
            cfg.memory_size
        ),
    ];
    for l in &lines {
        inner.ctx.logs.platform(&cfg.name, id, l.clone()).await;
    }
    InvokeResponse {
        payload: error_body("Runtime.InvalidEntrypoint", &message),
        function_error: Some("Unhandled".into()),
        log_tail: req.tail_log.then(|| tail_text(&lines)),
        cold_start: true,
        duration,
    }
}

/// An X-Ray trace header: `Root=1-<8 hex epoch s>-<24 hex>;Parent=<16 hex>;Sampled=0`.
fn trace_id() -> String {
    let (a, b, c) = (random_u64(), random_u64(), random_u64());
    let secs = now_ms() / 1000;
    format!(
        "Root=1-{secs:08x}-{a:016x}{:08x};Parent={c:016x};Sampled=0",
        b >> 32
    )
}

/// A fast per-thread pseudo-random generator (wyrand), seeded once per thread from the OS.
/// Trace ids need to be unique, not secret; `getrandom` per id would cost syscalls on every
/// invocation.
fn random_u64() -> u64 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new({
            let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
            hi ^ lo.rotate_left(32)
        });
    }
    STATE.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        #[allow(clippy::cast_possible_truncation, reason = "folding 128 bits into 64")]
        let folded = (t >> 64) as u64 ^ t as u64;
        folded
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_have_lambda_shape() {
        let t = trace_id();
        let (root, rest) = t.split_once(";Parent=").unwrap();
        let parts: Vec<&str> = root.trim_start_matches("Root=").split('-').collect();
        assert_eq!(parts[0], "1");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
        assert_eq!(rest.len(), 16 + ";Sampled=0".len());
        assert!(root
            .trim_start_matches("Root=")
            .chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit()));
        let others: std::collections::HashSet<String> = (0..1000).map(|_| trace_id()).collect();
        assert_eq!(others.len(), 1000);
    }

    #[test]
    fn error_bodies_escape() {
        let b = error_body("Sandbox.Timedout", "say \"hi\"");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["errorMessage"], "say \"hi\"");
        assert!(b.starts_with(b"{\"errorType\""));
    }
}
