//! Memory limits for execution environments: a memory cgroup per environment where the kernel
//! lets us create one, an RSS watchdog otherwise.
//!
//! - cgroup v1 (`/sys/fs/cgroup/memory` writable): `gust/<env id>` with `memory.limit_in_bytes`
//!   and, when swap accounting exists, `memory.memsw.limit_in_bytes`, so the kernel's OOM killer
//!   kills the environment inside its limit; OOM kills are read from `memory.oom_control`, the
//!   peak from `memory.max_usage_in_bytes` (reset before each invocation).
//! - cgroup v2 with a delegated subtree where the memory controller can be enabled:
//!   `memory.max`, `memory.swap.max = 0`, `memory.events` and `memory.peak`.
//! - otherwise a watchdog polls the leader's `VmRSS` every 20 ms and kills the process group
//!   above the limit; the peak comes from `VmHWM` (reset through `clear_refs`).
//!
//! The child is moved into its cgroup right after `spawn` returns, before it has run more than
//! the first instructions of the interpreter; `memory.move_charge_at_immigrate` (v1) moves the
//! few pages it touched before that. This avoids a `pre_exec` hook and the `unsafe` it needs.
//!
//! Everything here is a handful of small sysfs reads and writes, done outside any lock.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How this machine limits memory, decided once at start-up.
#[derive(Debug, Clone)]
pub(crate) enum MemoryControl {
    V1 { root: PathBuf, memsw: bool },
    V2 { root: PathBuf },
    Watchdog,
}

const V1_MEMORY: &str = "/sys/fs/cgroup/memory";

impl MemoryControl {
    /// Picks the best mechanism available; never fails (the watchdog always works).
    pub(crate) fn detect() -> MemoryControl {
        match Self::try_v1() {
            Ok(c) => return c,
            Err(error) => tracing::debug!(%error, "cgroup v1 memory controller not usable"),
        }
        match Self::try_v2() {
            Ok(c) => return c,
            Err(error) => tracing::debug!(%error, "cgroup v2 memory controller not usable"),
        }
        tracing::info!("no writable memory cgroup; memory limits enforced by an RSS watchdog");
        MemoryControl::Watchdog
    }

    fn try_v1() -> io::Result<MemoryControl> {
        let base = Path::new(V1_MEMORY);
        if !base.join("memory.limit_in_bytes").exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no v1 memory hierarchy",
            ));
        }
        let root = base.join("gust");
        ensure_dir(&root)?;
        let memsw = root.join("memory.memsw.limit_in_bytes").exists();
        Ok(MemoryControl::V1 { root, memsw })
    }

    fn try_v2() -> io::Result<MemoryControl> {
        let mount = Path::new("/sys/fs/cgroup");
        if !mount.join("cgroup.controllers").exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no unified hierarchy at /sys/fs/cgroup",
            ));
        }
        let own = fs::read_to_string("/proc/self/cgroup")?;
        let rel = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "no v2 entry in /proc/self/cgroup")
            })?;
        let base = mount.join(rel.trim_start_matches('/'));
        if !fs::read_to_string(base.join("cgroup.controllers"))?
            .split_whitespace()
            .any(|c| c == "memory")
        {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "memory controller not delegated",
            ));
        }
        // Enabling the controller for children fails if our own cgroup holds processes and is
        // not the root ("no internal processes"); then the watchdog is used instead.
        let enabled = fs::read_to_string(base.join("cgroup.subtree_control"))?;
        if !enabled.split_whitespace().any(|c| c == "memory") {
            fs::write(base.join("cgroup.subtree_control"), "+memory")?;
        }
        let root = base.join("gust");
        ensure_dir(&root)?;
        fs::write(root.join("cgroup.subtree_control"), "+memory")?;
        Ok(MemoryControl::V2 { root })
    }

    pub(crate) fn describe(&self) -> &'static str {
        match self {
            MemoryControl::V1 { .. } => "cgroup-v1",
            MemoryControl::V2 { .. } => "cgroup-v2",
            MemoryControl::Watchdog => "rss-watchdog",
        }
    }
}

fn ensure_dir(p: &Path) -> io::Result<()> {
    match fs::create_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// One environment's memory limit.
#[derive(Debug)]
pub(crate) struct EnvMemory {
    kind: Kind,
    limit_bytes: u64,
    /// Set by the watchdog when it killed the environment.
    watchdog_killed: Arc<AtomicBool>,
    pid: std::sync::OnceLock<u32>,
}

#[derive(Debug)]
enum Kind {
    V1(PathBuf),
    V2(PathBuf),
    Watchdog,
}

impl EnvMemory {
    /// Creates the environment's cgroup (not yet holding any process). Falls back to the
    /// watchdog if the cgroup cannot be created.
    pub(crate) fn create(control: &MemoryControl, env_id: &str, limit_mb: u32) -> EnvMemory {
        let limit_bytes = u64::from(limit_mb) * 1024 * 1024;
        let kind = match control {
            MemoryControl::V1 { root, memsw } => {
                let dir = root.join(env_id);
                let made = fs::create_dir(&dir).and_then(|()| {
                    fs::write(dir.join("memory.limit_in_bytes"), limit_bytes.to_string())?;
                    if *memsw {
                        fs::write(
                            dir.join("memory.memsw.limit_in_bytes"),
                            limit_bytes.to_string(),
                        )?;
                    }
                    // Charges made before the move (the first pages of the interpreter) follow
                    // the process into the cgroup. Deprecated on new kernels; harmless if refused.
                    let _ = fs::write(dir.join("memory.move_charge_at_immigrate"), "3");
                    Ok(())
                });
                match made {
                    Ok(()) => Kind::V1(dir),
                    Err(error) => {
                        tracing::warn!(%error, env = env_id, "cannot create memory cgroup; using the watchdog");
                        let _ = fs::remove_dir(&dir);
                        Kind::Watchdog
                    }
                }
            }
            MemoryControl::V2 { root } => {
                let dir = root.join(env_id);
                let made = fs::create_dir(&dir).and_then(|()| {
                    fs::write(dir.join("memory.max"), limit_bytes.to_string())?;
                    let _ = fs::write(dir.join("memory.swap.max"), "0");
                    Ok(())
                });
                match made {
                    Ok(()) => Kind::V2(dir),
                    Err(error) => {
                        tracing::warn!(%error, env = env_id, "cannot create memory cgroup; using the watchdog");
                        let _ = fs::remove_dir(&dir);
                        Kind::Watchdog
                    }
                }
            }
            MemoryControl::Watchdog => Kind::Watchdog,
        };
        EnvMemory {
            kind,
            limit_bytes,
            watchdog_killed: Arc::new(AtomicBool::new(false)),
            pid: Default::default(),
        }
    }

    /// Moves the freshly spawned child into the cgroup. Returns whether a watchdog is needed
    /// (no cgroup, or moving failed).
    pub(crate) fn attach(&mut self, pid: u32) -> bool {
        let _ = self.pid.set(pid);
        let dir = match &self.kind {
            Kind::V1(d) | Kind::V2(d) => d.clone(),
            Kind::Watchdog => return true,
        };
        match fs::write(dir.join("cgroup.procs"), pid.to_string()) {
            Ok(()) => false,
            Err(error) => {
                tracing::warn!(%error, pid, "cannot move environment into its cgroup; using the watchdog");
                let _ = fs::remove_dir(&dir);
                self.kind = Kind::Watchdog;
                true
            }
        }
    }

    /// Starts a new peak-memory measurement (before each invocation).
    pub(crate) fn reset_peak(&self) {
        match &self.kind {
            Kind::V1(d) => {
                let _ = fs::write(d.join("memory.max_usage_in_bytes"), "0");
            }
            // Writing to memory.peak resets it on kernels >= 6.12; older ones refuse, and the
            // peak is then the environment's lifetime peak.
            Kind::V2(d) => {
                let _ = fs::write(d.join("memory.peak"), "reset");
            }
            Kind::Watchdog => {
                if let Some(pid) = self.pid.get() {
                    let _ = fs::write(format!("/proc/{pid}/clear_refs"), "5");
                }
            }
        }
    }

    /// Peak memory since the last reset, in bytes, if it can be read.
    pub(crate) fn peak_bytes(&self) -> Option<u64> {
        match &self.kind {
            Kind::V1(d) => read_u64(&d.join("memory.max_usage_in_bytes")),
            Kind::V2(d) => read_u64(&d.join("memory.peak")),
            Kind::Watchdog => self
                .pid
                .get()
                .and_then(|pid| status_kb(*pid, "VmHWM:"))
                .map(|kb| kb * 1024),
        }
    }

    /// Whether the environment was killed for exceeding its limit.
    pub(crate) fn oom_killed(&self) -> bool {
        if self.watchdog_killed.load(Ordering::SeqCst) {
            return true;
        }
        match &self.kind {
            Kind::V1(d) => {
                let Ok(s) = fs::read_to_string(d.join("memory.oom_control")) else {
                    return false;
                };
                // `oom_kill` exists since 4.13; `under_oom` covers a kill still in progress.
                field(&s, "oom_kill").unwrap_or(0) > 0 || field(&s, "under_oom").unwrap_or(0) > 0
            }
            Kind::V2(d) => fs::read_to_string(d.join("memory.events"))
                .ok()
                .and_then(|s| field(&s, "oom_kill"))
                .is_some_and(|n| n > 0),
            Kind::Watchdog => false,
        }
    }

    /// The watchdog's loop: kills the process group when the leader's RSS exceeds the limit.
    /// Ends when the process is gone. Only run when [`EnvMemory::attach`] asked for it.
    pub(crate) fn watchdog(
        &self,
        pgid: u32,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let limit = self.limit_bytes;
        let killed = self.watchdog_killed.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(rss_kb) = status_kb(pgid, "VmRSS:") else {
                    return;
                };
                if rss_kb * 1024 > limit {
                    tracing::info!(
                        pid = pgid,
                        rss_kb,
                        limit,
                        "environment exceeded its memory size; killing it"
                    );
                    killed.store(true, Ordering::SeqCst);
                    super::environment::kill_group(pgid);
                    return;
                }
            }
        }
    }

    /// Removes the cgroup once the environment's processes are gone.
    pub(crate) async fn remove(&self) {
        if let Kind::V1(d) | Kind::V2(d) = &self.kind {
            // The kernel may need a moment after the last exit before the cgroup is empty.
            for _ in 0..100 {
                match fs::remove_dir(d) {
                    Ok(()) => return,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
            tracing::warn!(cgroup = %d.display(), "cgroup still busy; left behind");
        }
    }

    /// One attempt at removing the cgroup, for paths that cannot wait (drop).
    pub(crate) fn remove_now(&self) {
        if let Kind::V1(d) | Kind::V2(d) = &self.kind {
            let _ = fs::remove_dir(d);
        }
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn field(s: &str, name: &str) -> Option<u64> {
    s.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok()).flatten()
    })
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oom_control() {
        let s = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(field(s, "oom_kill"), Some(2));
        assert_eq!(field(s, "under_oom"), Some(0));
        assert_eq!(field(s, "missing"), None);
    }

    #[test]
    fn reads_own_status() {
        assert!(status_kb(std::process::id(), "VmRSS:").is_some_and(|kb| kb > 0));
    }
}
