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
//! The child is moved into its cgroup right after `spawn` returns, on a blocking thread while
//! the interpreter starts (the move can take ~10 ms in the kernel); `memory.move_charge_at_immigrate`
//! (v1) moves the pages it touched before that. This avoids a `pre_exec` hook and the `unsafe`
//! it needs, and keeps the move off the cold-start path.
//!
//! The per-invocation work (reset the peak before, read it after) runs on the invoke path, so
//! it uses files opened once per environment and `pread`/`pwrite` at offset 0: two syscalls
//! per invocation on in-memory kernel files (cgroup counters or `/proc`), which never wait on
//! a disk and so do not hold up the Tokio worker they run on. Everything else here is a
//! handful of sysfs reads and writes off the warm path, done outside any lock.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
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
        remove_stale(&root);
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
        remove_stale(&root);
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

/// Removes empty environment cgroups left by a Gust that did not shut down cleanly. The kernel
/// refuses to remove a cgroup that still holds processes, so live environments (also of other
/// Gust processes on this machine) are safe; a cgroup another Gust created a moment ago and has
/// not yet filled loses its limit, and that environment falls back to the watchdog.
fn remove_stale(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let mut removed = 0usize;
    for entry in entries.flatten() {
        let path = entry.path();
        let empty =
            fs::read_to_string(path.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty());
        if path.is_dir() && empty && fs::remove_dir(&path).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, root = %root.display(), "removed stale environment cgroups");
    }
}

fn ensure_dir(p: &Path) -> io::Result<()> {
    match fs::create_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// One environment's memory limit. Shared between the environment and the task that attaches
/// the child to its cgroup.
#[derive(Debug)]
pub(crate) struct EnvMemory {
    kind: Kind,
    limit_bytes: u64,
    pid: u32,
    /// Set once moving the child into its cgroup failed: the watchdog's rules apply instead.
    detached: AtomicBool,
    /// Set by the watchdog when it killed the environment.
    watchdog_killed: AtomicBool,
    /// The peak-memory files, opened once (see [`PeakFiles`]).
    peak: PeakFiles,
}

/// Files kept open for the per-invocation peak reset and read.
#[derive(Debug)]
struct PeakFiles {
    /// cgroup v1 `memory.max_usage_in_bytes` / v2 `memory.peak` (read and reset through the
    /// same file; on v2 the reset is per open file, so keeping it open is what makes it work),
    /// or `/proc/<pid>/status` for the watchdog.
    read: Option<File>,
    /// `/proc/<pid>/clear_refs` for the watchdog; `None` for cgroups (reset through `read`).
    clear_refs: Option<File>,
}

impl PeakFiles {
    fn open(kind: &Kind, pid: u32) -> PeakFiles {
        let rw = |p: PathBuf| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(&p)
                .or_else(|_| File::open(&p))
                .ok()
        };
        match kind {
            Kind::V1(d) => PeakFiles {
                read: rw(d.join("memory.max_usage_in_bytes")),
                clear_refs: None,
            },
            Kind::V2(d) => PeakFiles {
                read: rw(d.join("memory.peak")),
                clear_refs: None,
            },
            Kind::Watchdog => PeakFiles::proc(pid),
        }
    }

    fn proc(pid: u32) -> PeakFiles {
        PeakFiles {
            read: File::open(format!("/proc/{pid}/status")).ok(),
            clear_refs: OpenOptions::new()
                .write(true)
                .open(format!("/proc/{pid}/clear_refs"))
                .ok(),
        }
    }
}

/// Reads a small kernel file from offset 0 into a stack buffer.
fn pread_small<'b>(f: &File, buf: &'b mut [u8]) -> Option<&'b str> {
    let n = f.read_at(buf, 0).ok()?;
    match std::str::from_utf8(&buf[..n]) {
        Ok(s) => Some(s),
        // A multi-byte character cut at the buffer's end (`/proc/<pid>/status` is longer).
        Err(e) => std::str::from_utf8(&buf[..e.valid_up_to()]).ok(),
    }
}

#[derive(Debug)]
pub(crate) enum Kind {
    V1(PathBuf),
    V2(PathBuf),
    Watchdog,
}

impl EnvMemory {
    /// Creates the environment's cgroup (not yet holding any process). Falls back to the
    /// watchdog if the cgroup cannot be created.
    pub(crate) fn prepare(control: &MemoryControl, env_id: &str, limit_mb: u32) -> Kind {
        let limit_bytes = u64::from(limit_mb) * 1024 * 1024;
        let made = match control {
            MemoryControl::V1 { root, memsw } => {
                let dir = root.join(env_id);
                fs::create_dir(&dir)
                    .and_then(|()| {
                        fs::write(dir.join("memory.limit_in_bytes"), limit_bytes.to_string())?;
                        if *memsw {
                            fs::write(
                                dir.join("memory.memsw.limit_in_bytes"),
                                limit_bytes.to_string(),
                            )?;
                        }
                        // Charges made before the move (the first pages of the interpreter)
                        // follow the process. Deprecated on new kernels; harmless if refused.
                        let _ = fs::write(dir.join("memory.move_charge_at_immigrate"), "3");
                        Ok(())
                    })
                    .map(|()| Kind::V1(dir.clone()))
                    .map_err(|e| (e, dir))
            }
            MemoryControl::V2 { root } => {
                let dir = root.join(env_id);
                fs::create_dir(&dir)
                    .and_then(|()| {
                        fs::write(dir.join("memory.max"), limit_bytes.to_string())?;
                        let _ = fs::write(dir.join("memory.swap.max"), "0");
                        Ok(())
                    })
                    .map(|()| Kind::V2(dir.clone()))
                    .map_err(|e| (e, dir))
            }
            MemoryControl::Watchdog => Ok(Kind::Watchdog),
        };
        match made {
            Ok(kind) => kind,
            Err((error, dir)) => {
                tracing::warn!(%error, env = env_id, "cannot create memory cgroup; using the watchdog");
                let _ = fs::remove_dir(&dir);
                Kind::Watchdog
            }
        }
    }

    /// The limit of a spawned child whose pid is `pid`, in the cgroup `kind` (from
    /// [`EnvMemory::prepare`]). [`EnvMemory::enforce`] must run next.
    pub(crate) fn new(kind: Kind, limit_mb: u32, pid: u32) -> Arc<EnvMemory> {
        let peak = PeakFiles::open(&kind, pid);
        Arc::new(EnvMemory {
            kind,
            limit_bytes: u64::from(limit_mb) * 1024 * 1024,
            pid,
            detached: AtomicBool::new(false),
            watchdog_killed: AtomicBool::new(false),
            peak,
        })
    }

    /// Moves the child into its cgroup, or runs the watchdog until the process is gone.
    ///
    /// Moving a process between v1 cgroups sometimes takes ~10 ms in the kernel (it waits for an
    /// RCU grace period), so it runs on a blocking thread while the child starts; the first
    /// pages it touches follow it (`move_charge_at_immigrate`).
    pub(crate) async fn enforce(self: Arc<Self>) {
        let dir = match &self.kind {
            Kind::V1(d) | Kind::V2(d) => Some(d.clone()),
            Kind::Watchdog => None,
        };
        if let Some(dir) = dir {
            let pid = self.pid;
            let moved = tokio::task::spawn_blocking(move || {
                fs::write(dir.join("cgroup.procs"), pid.to_string())
            })
            .await;
            match moved {
                Ok(Ok(())) => return,
                Ok(Err(error)) => {
                    tracing::warn!(%error, pid, "cannot move environment into its cgroup; using the watchdog")
                }
                Err(error) => {
                    tracing::warn!(%error, pid, "cgroup attach task failed; using the watchdog")
                }
            }
            self.detached.store(true, Ordering::SeqCst);
        }
        self.watchdog().await;
    }

    fn in_cgroup(&self) -> Option<(&Path, bool)> {
        if self.detached.load(Ordering::SeqCst) {
            return None;
        }
        match &self.kind {
            Kind::V1(d) => Some((d, true)),
            Kind::V2(d) => Some((d, false)),
            Kind::Watchdog => None,
        }
    }

    /// Starts a new peak-memory measurement (before each invocation): one `pwrite` on a file
    /// kept open.
    pub(crate) fn reset_peak(&self) {
        if !self.detached.load(Ordering::Relaxed) {
            match (&self.kind, &self.peak) {
                (Kind::V1(_), PeakFiles { read: Some(f), .. }) => {
                    let _ = f.write_at(b"0", 0);
                    return;
                }
                (Kind::V2(_), PeakFiles { read: Some(f), .. }) => {
                    // Resets the peak seen through this file on kernels >= 6.12; older ones
                    // refuse, and the peak is then the environment's lifetime peak.
                    let _ = f.write_at(b"reset", 0);
                    return;
                }
                (
                    Kind::Watchdog,
                    PeakFiles {
                        clear_refs: Some(f),
                        ..
                    },
                ) => {
                    let _ = f.write_at(b"5", 0);
                    return;
                }
                _ => {}
            }
        }
        self.reset_peak_by_path();
    }

    /// [`EnvMemory::reset_peak`] without the kept files (a detached environment, or a file
    /// that could not be opened).
    fn reset_peak_by_path(&self) {
        match self.in_cgroup() {
            Some((d, true)) => {
                let _ = fs::write(d.join("memory.max_usage_in_bytes"), "0");
            }
            // Writing to memory.peak resets it on kernels >= 6.12; older ones refuse, and the
            // peak is then the environment's lifetime peak.
            Some((d, false)) => {
                let _ = fs::write(d.join("memory.peak"), "reset");
            }
            None => {
                let _ = fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
            }
        }
    }

    /// Peak memory since the last reset, in bytes, if it can be read: one `pread` on a file
    /// kept open.
    pub(crate) fn peak_bytes(&self) -> Option<u64> {
        if !self.detached.load(Ordering::Relaxed) {
            if let Some(f) = &self.peak.read {
                let mut buf = [0u8; 2048];
                let text = pread_small(f, &mut buf)?;
                return match self.kind {
                    Kind::V1(_) | Kind::V2(_) => text.trim().parse().ok(),
                    Kind::Watchdog => status_field_kb(text, "VmHWM:").map(|kb| kb * 1024),
                };
            }
        }
        self.peak_bytes_by_path()
    }

    fn peak_bytes_by_path(&self) -> Option<u64> {
        match self.in_cgroup() {
            Some((d, true)) => read_u64(&d.join("memory.max_usage_in_bytes")),
            Some((d, false)) => read_u64(&d.join("memory.peak")),
            None => status_kb(self.pid, "VmHWM:").map(|kb| kb * 1024),
        }
    }

    /// Whether the environment was killed for exceeding its limit.
    pub(crate) fn oom_killed(&self) -> bool {
        if self.watchdog_killed.load(Ordering::SeqCst) {
            return true;
        }
        match self.in_cgroup() {
            Some((d, true)) => {
                let Ok(s) = fs::read_to_string(d.join("memory.oom_control")) else {
                    return false;
                };
                // `oom_kill` exists since 4.13; `under_oom` covers a kill still in progress.
                field(&s, "oom_kill").unwrap_or(0) > 0 || field(&s, "under_oom").unwrap_or(0) > 0
            }
            Some((d, false)) => fs::read_to_string(d.join("memory.events"))
                .ok()
                .and_then(|s| field(&s, "oom_kill"))
                .is_some_and(|n| n > 0),
            None => false,
        }
    }

    /// Kills the process group when the leader's RSS exceeds the limit; ends when the process
    /// is gone.
    async fn watchdog(&self) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(rss_kb) = status_kb(self.pid, "VmRSS:") else {
                return;
            };
            if rss_kb * 1024 > self.limit_bytes {
                tracing::info!(
                    pid = self.pid,
                    rss_kb,
                    limit = self.limit_bytes,
                    "environment exceeded its memory size; killing it"
                );
                self.watchdog_killed.store(true, Ordering::SeqCst);
                super::environment::kill_group(self.pid);
                return;
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

    /// One attempt at removing the cgroup; true when it is gone (or there is none).
    pub(crate) fn remove_now(&self) -> bool {
        match &self.kind {
            Kind::V1(d) | Kind::V2(d) => match fs::remove_dir(d) {
                Ok(()) => true,
                Err(e) => e.kind() == io::ErrorKind::NotFound,
            },
            Kind::Watchdog => true,
        }
    }
}

/// Removes a cgroup that never got a process (the spawn failed).
pub(crate) fn remove_kind_now(kind: &Kind) {
    if let Kind::V1(d) | Kind::V2(d) = kind {
        let _ = fs::remove_dir(d);
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
    status_field_kb(&s, key)
}

fn status_field_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
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

    #[tokio::test]
    async fn watchdog_kills_above_the_limit() {
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .args(["-S", "-c", "import time\nk = []\nfor _ in range(100):\n    k.append(b'x' * (8 << 20)); time.sleep(0.005)\n"])
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mem = EnvMemory::new(Kind::Watchdog, 128, child.id().unwrap());
        let watchdog = tokio::spawn(mem.clone().enforce());
        let status = child.wait().await.unwrap();
        watchdog.await.unwrap();
        assert!(
            mem.oom_killed(),
            "exited with {status:?} without the watchdog"
        );
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }

    #[test]
    fn reads_own_status() {
        assert!(status_kb(std::process::id(), "VmRSS:").is_some_and(|kb| kb > 0));
    }
}
