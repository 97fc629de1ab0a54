//! One execution environment: a child process in its own process group, its Runtime API
//! listener, its log reader, its private `/tmp`, and its memory limit.
//!
//! An environment is started by [`Environment::start`] and stopped by [`Environment::stop`]
//! (or, as a last resort, by dropping it). It knows nothing of pools, concurrency or
//! deadlines; the invoker decides when to start and stop it.
//!
//! The child gets a clean, fixed environment: nothing of the host's variables leaks in.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gust_model::{FunctionRecord, RuntimeKind};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::logs::{self, Begin, LogSink, ReaderCtl};
use super::memory::{self, EnvMemory, MemoryControl};
use super::runtime_api::{self, RuntimeApi};
use crate::RuntimeConfig;

/// Launch settings shared by every environment of one invoker.
pub(crate) struct Context {
    pub config: RuntimeConfig,
    pub bootstrap_dir: PathBuf,
    pub env_root: PathBuf,
    pub code: Arc<dyn gust_store::CodeStore>,
    pub memory: MemoryControl,
    pub logs: LogSink,
}

impl Context {
    /// The interpreter a runtime needs, or why it is unavailable.
    pub(crate) fn interpreter(
        &self,
        kind: &RuntimeKind,
        runtime: &str,
    ) -> Result<Option<PathBuf>, String> {
        match kind {
            RuntimeKind::Python { .. } => self.config.python.clone().map(Some).ok_or_else(|| {
                format!(
                    "runtime {runtime} is not available: no Python interpreter is configured \
                     (set one with `gust up --python <path>` or GUST_PYTHON)"
                )
            }),
            RuntimeKind::Node { .. } => self.config.node.clone().map(Some).ok_or_else(|| {
                format!(
                    "runtime {runtime} is not available: no Node.js interpreter is configured \
                     (set one with `gust up --node <path>` or GUST_NODE)"
                )
            }),
            RuntimeKind::Provided => Ok(None),
            RuntimeKind::Wasm => Err(format!(
                "runtime {runtime} is not run by the process runtime (route it to the Wasm runtime)"
            )),
        }
    }
}

/// Lambda's `AWS_LAMBDA_INITIALIZATION_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InitType {
    OnDemand,
    Provisioned,
}

impl InitType {
    fn as_str(self) -> &'static str {
        match self {
            InitType::OnDemand => "on-demand",
            InitType::Provisioned => "provisioned-concurrency",
        }
    }
}

/// Why an environment could not be started.
#[derive(Debug)]
pub(crate) enum StartError {
    /// The interpreter is not configured or cannot be executed.
    RuntimeUnavailable(String),
    /// A `provided` function's `bootstrap` is missing or cannot be executed (Lambda's
    /// `Runtime.InvalidEntrypoint`); the message is Lambda's.
    InvalidEntrypoint(String),
    /// The platform's fault.
    Internal(String),
}

/// How the child ended, in the words Lambda uses (Go's `ProcessState` strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExitInfo(pub String);

/// A running (or stopped) execution environment.
pub(crate) struct Environment {
    pub id: String,
    pub record: Arc<FunctionRecord>,
    pub generation: u64,
    pub provisioned: bool,
    pub api: Arc<RuntimeApi>,
    /// When the process was spawned; init duration is measured from here.
    pub started: Instant,
    pub memory: Arc<EnvMemory>,
    pid: u32,
    exit: watch::Receiver<Option<ExitInfo>>,
    ctl: mpsc::UnboundedSender<ReaderCtl>,
    begin: Arc<Begin>,
    dir: PathBuf,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stopped: AtomicBool,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("id", &self.id)
            .field("function", &self.record.config.name)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Environment {
    /// Spawns the environment. It is ready for an assignment right away: the first `next` call
    /// of the runtime picks it up, so an on-demand invocation's init overlaps the hand-over.
    pub(crate) async fn start(
        ctx: &Context,
        record: Arc<FunctionRecord>,
        generation: u64,
        init_type: InitType,
        provisioned: bool,
    ) -> Result<Arc<Environment>, StartError> {
        let cfg = &record.config;
        let kind = RuntimeKind::parse(&cfg.runtime)
            .ok_or_else(|| StartError::Internal(format!("unsupported runtime {}", cfg.runtime)))?;
        let code_dir = ctx.code.code_dir(&record.code_id);
        if !code_dir.is_dir() {
            return Err(StartError::Internal(format!(
                "code directory {} is missing",
                code_dir.display()
            )));
        }
        let (program, args) = match &kind {
            RuntimeKind::Python { .. } => {
                let py = ctx
                    .interpreter(&kind, &cfg.runtime)
                    .map_err(StartError::RuntimeUnavailable)?;
                (py, vec![ctx.bootstrap_dir.join("bootstrap.py")])
            }
            RuntimeKind::Node { .. } => {
                let node = ctx
                    .interpreter(&kind, &cfg.runtime)
                    .map_err(StartError::RuntimeUnavailable)?;
                (node, vec![ctx.bootstrap_dir.join("bootstrap.js")])
            }
            RuntimeKind::Provided => {
                let b = code_dir.join("bootstrap");
                check_entrypoint(&b)?;
                (Some(b), Vec::new())
            }
            RuntimeKind::Wasm => {
                let why = ctx
                    .interpreter(&kind, &cfg.runtime)
                    .err()
                    .unwrap_or_default();
                return Err(StartError::RuntimeUnavailable(why));
            }
        };
        let Some(program) = program else {
            return Err(StartError::Internal("no program to start".into()));
        };

        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = ctx.env_root.join(&id);
        let tmp = dir.join("tmp");
        tokio::fs::create_dir_all(&tmp)
            .await
            .map_err(|e| StartError::Internal(format!("cannot create {}: {e}", tmp.display())))?;
        let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await {
            Ok(l) => l,
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                return Err(StartError::Internal(format!(
                    "cannot open a runtime api listener: {e}"
                )));
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();

        let vars =
            environment_variables(ctx, &record, &kind, &id, port, init_type, &code_dir, &tmp);
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&args)
            .current_dir(&code_dir)
            .env_clear()
            .envs(vars)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);

        let cgroup = EnvMemory::prepare(&ctx.memory, &id, cfg.memory_size);
        let started = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                memory::remove_kind_now(&cgroup);
                let _ = tokio::fs::remove_dir_all(&dir).await;
                return Err(spawn_error(&kind, &cfg.runtime, &program, &e));
            }
        };
        let pid = child.id().unwrap_or_default();
        let memory = EnvMemory::new(cgroup, cfg.memory_size, pid);

        let api = RuntimeApi::new();
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let begin = Arc::new(Begin::default());
        let (exit_tx, exit_rx) = watch::channel(None);
        let mut tasks = Vec::with_capacity(4);
        tasks.push(tokio::spawn(memory.clone().enforce()));
        tasks.push(tokio::spawn(runtime_api::serve(listener, api.clone())));
        match child.stdout.take().zip(child.stderr.take()) {
            Some((out, err)) => tasks.push(tokio::spawn(logs::reader(
                cfg.name.clone(),
                out,
                err,
                ctx.logs.clone(),
                begin.clone(),
                ctl_rx,
            ))),
            None => tracing::warn!(env = %id, "child pipes missing; its logs are lost"),
        }
        tasks.push(tokio::spawn(async move {
            let info = match child.wait().await {
                Ok(status) => describe_exit(status),
                Err(e) => ExitInfo(format!("wait failed: {e}")),
            };
            // Anything the leader left behind in its group goes with it.
            kill_group(pid);
            let _ = exit_tx.send(Some(info));
        }));
        tracing::debug!(env = %id, function = %cfg.name, pid, port, memory = ctx.memory.describe(), "environment started");
        Ok(Arc::new(Environment {
            id,
            record,
            generation,
            provisioned,
            api,
            started,
            memory,
            pid,
            exit: exit_rx,
            ctl: ctl_tx,
            begin,
            dir,
            tasks: Mutex::new(tasks),
            stopped: AtomicBool::new(false),
        }))
    }

    /// Waits until the process has exited.
    pub(crate) async fn exited(&self) -> ExitInfo {
        let mut rx = self.exit.clone();
        let info = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        };
        info.unwrap_or_else(|| ExitInfo("exited".into()))
    }

    pub(crate) fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Kills the whole process group now.
    pub(crate) fn kill(&self) {
        if !self.has_exited() {
            kill_group(self.pid);
        }
    }

    /// Attributes output to `request_id` from now on.
    /// (Shared state, not a message: the reader is not woken for it.)
    pub(crate) fn begin_logs(&self, request_id: &str, tail: bool) {
        self.begin.set(request_id, tail);
    }

    /// Drains the output pipes and returns this invocation's collected lines.
    pub(crate) async fn finish_logs(&self) -> Vec<String> {
        let (ack, rx) = oneshot::channel();
        if self.ctl.send(ReaderCtl::Finish { ack }).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Kills the process group, waits for the exit, collects the last output, and removes the
    /// environment's directory and cgroup.
    pub(crate) async fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.kill();
        if tokio::time::timeout(Duration::from_secs(5), self.exited())
            .await
            .is_err()
        {
            tracing::warn!(env = %self.id, pid = self.pid, "environment did not exit after SIGKILL");
        }
        // Output written after the last invocation (e.g. at exit) is stored without request id.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.finish_logs()).await;
        self.abort_tasks();
        if let Err(e) = tokio::fs::remove_dir_all(&self.dir).await {
            tracing::debug!(error = %e, env = %self.id, "removing environment directory failed");
        }
        self.memory.remove().await;
        tracing::debug!(env = %self.id, function = %self.record.config.name, "environment stopped");
    }

    fn abort_tasks(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
        }
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        // Not stopped in order (shutdown skipped, or a panic). The cgroup can only be removed
        // once the killed process is gone, which takes a few milliseconds; a short-lived thread
        // waits for that (bounded) rather than blocking whoever dropped us.
        self.kill();
        self.abort_tasks();
        let dir = std::mem::take(&mut self.dir);
        let memory = self.memory.clone();
        let cleanup = move || {
            let _ = std::fs::remove_dir_all(&dir);
            for _ in 0..100 {
                if memory.remove_now() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        if std::thread::Builder::new()
            .name("gust-env-cleanup".into())
            .spawn(cleanup)
            .is_err()
        {
            tracing::warn!(env = %self.id, "cannot start cleanup thread; cgroup left behind");
        }
    }
}

/// Sends SIGKILL to a process group; a group that is already gone is fine.
pub(crate) fn kill_group(pgid: u32) {
    let Some(pid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if let Err(e) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
        if e != rustix::io::Errno::SRCH {
            tracing::warn!(error = %e, pgid, "killing process group failed");
        }
    }
}

/// Lambda's checks on a custom runtime's `bootstrap`.
fn check_entrypoint(path: &Path) -> Result<(), StartError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(m) if m.is_file() => Err(StartError::InvalidEntrypoint(format!(
            "fork/exec {}: permission denied",
            path.display()
        ))),
        _ => Err(StartError::InvalidEntrypoint(format!(
            "Couldn't find valid bootstrap(s): [{}]",
            path.display()
        ))),
    }
}

fn spawn_error(
    kind: &RuntimeKind,
    runtime: &str,
    program: &Path,
    e: &std::io::Error,
) -> StartError {
    match kind {
        RuntimeKind::Provided => {
            let why = match e.raw_os_error() {
                Some(code) if code == rustix::io::Errno::NOEXEC.raw_os_error() => "exec format error".to_string(),
                Some(code) if code == rustix::io::Errno::ACCESS.raw_os_error() => "permission denied".to_string(),
                Some(code) if code == rustix::io::Errno::NOENT.raw_os_error() => "no such file or directory".to_string(),
                _ => e.to_string(),
            };
            StartError::InvalidEntrypoint(format!("fork/exec {}: {why}", program.display()))
        }
        _ => StartError::RuntimeUnavailable(format!(
            "runtime {runtime} is not available: cannot start {}: {e} (configure the interpreter with \
             `gust up --python/--node <path>` or GUST_PYTHON/GUST_NODE)",
            program.display()
        )),
    }
}

/// Go's `ProcessState.String()`, which Lambda's messages quote.
pub(crate) fn describe_exit(status: std::process::ExitStatus) -> ExitInfo {
    if let Some(code) = status.code() {
        return ExitInfo(format!("exit status {code}"));
    }
    let sig = status.signal().unwrap_or(0);
    let name = match sig {
        1 => "hangup".to_string(),
        2 => "interrupt".to_string(),
        3 => "quit".to_string(),
        4 => "illegal instruction".to_string(),
        5 => "trace/breakpoint trap".to_string(),
        6 => "aborted".to_string(),
        7 => "bus error".to_string(),
        8 => "floating point exception".to_string(),
        9 => "killed".to_string(),
        10 => "user defined signal 1".to_string(),
        11 => "segmentation fault".to_string(),
        12 => "user defined signal 2".to_string(),
        13 => "broken pipe".to_string(),
        14 => "alarm clock".to_string(),
        15 => "terminated".to_string(),
        n => format!("signal {n}"),
    };
    let core = if status.core_dumped() {
        " (core dumped)"
    } else {
        ""
    };
    ExitInfo(format!("signal: {name}{core}"))
}

/// The variables a function sees: its own, then the platform's (which it may override), then
/// Lambda's reserved ones (which win).
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename the arguments"
)]
fn environment_variables(
    ctx: &Context,
    record: &FunctionRecord,
    kind: &RuntimeKind,
    env_id: &str,
    port: u16,
    init_type: InitType,
    code_dir: &Path,
    tmp: &Path,
) -> BTreeMap<String, String> {
    let cfg = &record.config;
    let mut vars = cfg.environment.clone();
    for (k, v) in &ctx.config.platform_env {
        vars.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let now = time::OffsetDateTime::now_utc();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let sdk = ctx.config.sdk_dir.as_deref();
    // The function's own directory first: what it bundles wins over the platform's SDK.
    let search_path = |first: &Path, then: Option<PathBuf>| match then {
        Some(then) if then.is_dir() => format!("{}:{}", path(first), path(&then)),
        _ => path(first),
    };
    let mut set = |k: &str, v: String| {
        vars.insert(k.to_string(), v);
    };
    set("_HANDLER", cfg.handler.clone());
    set("AWS_REGION", ctx.config.region.clone());
    set("AWS_DEFAULT_REGION", ctx.config.region.clone());
    set("AWS_LAMBDA_FUNCTION_NAME", cfg.name.clone());
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        cfg.memory_size.to_string(),
    );
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into());
    set("AWS_LAMBDA_INITIALIZATION_TYPE", init_type.as_str().into());
    set(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        format!("/aws/lambda/{}", cfg.name),
    );
    set(
        "AWS_LAMBDA_LOG_STREAM_NAME",
        format!(
            "{:04}/{:02}/{:02}/[$LATEST]{env_id}",
            now.year(),
            u8::from(now.month()),
            now.day()
        ),
    );
    set("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"));
    set("LAMBDA_TASK_ROOT", path(code_dir));
    set("LAMBDA_RUNTIME_DIR", path(&ctx.bootstrap_dir));
    set("TZ", ":UTC".into());
    set("LANG", "en_US.UTF-8".into());
    set("PATH", "/usr/local/bin:/usr/bin:/bin".into());
    set("TMPDIR", path(tmp));
    set("HOME", path(tmp));
    match kind {
        RuntimeKind::Python { .. } => {
            set("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", cfg.runtime));
            set(
                "PYTHONPATH",
                search_path(code_dir, sdk.map(|d| d.join("python"))),
            );
            set("PYTHONUNBUFFERED", "1".into());
            set("PYTHONDONTWRITEBYTECODE", "1".into());
        }
        RuntimeKind::Node { .. } => {
            set("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", cfg.runtime));
            set(
                "NODE_PATH",
                search_path(
                    &code_dir.join("node_modules"),
                    sdk.map(|d| d.join("node").join("node_modules")),
                ),
            );
        }
        RuntimeKind::Provided | RuntimeKind::Wasm => {
            vars.remove("AWS_EXECUTION_ENV");
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exit_descriptions() {
        assert_eq!(
            describe_exit(std::process::ExitStatus::from_raw(1 << 8)).0,
            "exit status 1"
        );
        assert_eq!(
            describe_exit(std::process::ExitStatus::from_raw(9)).0,
            "signal: killed"
        );
        assert_eq!(
            describe_exit(std::process::ExitStatus::from_raw(11 | 0x80)).0,
            "signal: segmentation fault (core dumped)"
        );
    }
}
