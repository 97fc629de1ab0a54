//! A real `gust up` as a child process: start it on an empty data directory, wait for its ready
//! file, read its credentials and memory, find its execution environments, stop it. Plus the few
//! Lambda API calls the benchmark makes, and the hello functions' zips.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use gust_aws::sigv4::Credentials;
use http::Method;
use serde_json::{json, Value};

use crate::client::{Conn, Signer, Target};

/// A running `gust up`.
pub struct Gust {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub endpoint: String,
    pub ready_in: Duration,
    pub data_dir: PathBuf,
    log: PathBuf,
    // Removed (with the data directory) when dropped.
    _root: tempfile::TempDir,
}

impl Gust {
    /// Spawns `gust up` on a fresh, empty data directory and waits for its ready file; `ready_in`
    /// is spawn → ready file readable.
    pub fn start(bin: &Path, extra: &[&str]) -> Result<Gust> {
        let root = tempfile::Builder::new().prefix("gust-bench-").tempdir()?;
        let data_dir = root.path().join("data");
        let ready = root.path().join("ready.json");
        let log = root.path().join("gust.log");
        let log_file = std::fs::File::create(&log)?;
        let mut cmd = Command::new(bin);
        cmd.arg("up")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen", "127.0.0.1:0", "--max-concurrency", "64"])
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .env("GUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let t0 = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let doc: Value = loop {
            if let Ok(bytes) = std::fs::read(&ready) {
                if let Ok(v) = serde_json::from_slice(&bytes) {
                    break v;
                }
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "gust up exited ({status}) before it was ready:\n{}",
                    tail(&log)
                );
            }
            if t0.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                bail!("gust up not ready after 30 s:\n{}", tail(&log));
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let ready_in = t0.elapsed();
        let endpoint = doc["endpoint"]
            .as_str()
            .context("ready file has no endpoint")?
            .to_string();
        let addr: SocketAddr = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("endpoint {endpoint} is not http://ip:port"))?;
        let pid = child.id();
        Ok(Gust {
            child,
            pid,
            addr,
            endpoint,
            ready_in,
            data_dir,
            log,
            _root: root,
        })
    }

    /// A signed target for this Gust, with the root credentials from its data directory.
    pub fn target(&self) -> Result<Arc<Target>> {
        self.target_for("lambda")
    }

    /// A signed target for one service (the credential scope's service, e.g. `dynamodb`).
    pub fn target_for(&self, service: &'static str) -> Result<Arc<Target>> {
        let path = self.data_dir.join("credentials.json");
        let doc: Value = serde_json::from_slice(
            &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        )?;
        let creds = Credentials {
            access_key_id: doc["access_key_id"]
                .as_str()
                .context("no access_key_id")?
                .to_string(),
            secret_access_key: doc["secret_access_key"]
                .as_str()
                .context("no secret_access_key")?
                .to_string(),
        };
        Ok(Target::new(
            self.addr,
            Some(Signer {
                creds,
                region: "us-east-1".to_string(),
                service,
            }),
        ))
    }

    /// Resident memory of the `gust` process itself, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// Processes below `gust` (execution environments and anything they started).
    pub fn descendants(&self) -> Vec<u32> {
        descendants(self.pid)
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// SIGTERM, then wait for the exit (SIGKILL after 15 s). Returns how long the exit took.
    pub fn stop(mut self) -> Result<Duration> {
        let t0 = Instant::now();
        terminate(self.pid);
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > Duration::from_secs(15) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("gust up did not stop within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Gust {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[allow(
    unsafe_code,
    reason = "kill(2) has no safe wrapper in std; the pid is our own child's"
)]
fn terminate(pid: u32) {
    // SAFETY: kill(2) only sends a signal; pid is a child we spawned and have not reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

fn tail(log: &Path) -> String {
    let s = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Every process whose parent chain reaches `root`.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent = std::collections::HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name is in parentheses and may contain spaces; ppid follows the state.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = rest
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u32>().ok())
            {
                parent.insert(pid, ppid);
            }
        }
    }
    let mut out: Vec<u32> = parent
        .keys()
        .copied()
        .filter(|&p| {
            let mut cur = p;
            for _ in 0..64 {
                match parent.get(&cur) {
                    Some(&pp) if pp == root => return true,
                    Some(&pp) if pp > 1 => cur = pp,
                    _ => return false,
                }
            }
            false
        })
        .collect();
    out.sort_unstable();
    out
}

/// A hello function of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hello {
    Python,
    Node,
}

impl Hello {
    pub const ALL: [Hello; 2] = [Hello::Python, Hello::Node];

    pub fn key(self) -> &'static str {
        match self {
            Hello::Python => "python",
            Hello::Node => "node",
        }
    }

    fn runtime(self) -> &'static str {
        match self {
            Hello::Python => "python3.11",
            Hello::Node => "nodejs20.x",
        }
    }

    fn handler(self) -> &'static str {
        match self {
            Hello::Python => "app.handler",
            Hello::Node => "index.handler",
        }
    }

    /// The function's code as a zip, from the sources compiled into this binary.
    pub fn zip(self) -> Result<Vec<u8>> {
        let (name, src) = match self {
            Hello::Python => ("app.py", include_str!("../functions/python-hello/app.py")),
            Hello::Node => ("index.js", include_str!("../functions/node-hello/index.js")),
        };
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o644);
        zip.start_file(name, options)?;
        zip.write_all(src.as_bytes())?;
        Ok(zip.finish()?.into_inner())
    }

    /// The body of CreateFunction for a function of this kind named `name`.
    pub fn create_body(self, name: &str) -> Result<Vec<u8>> {
        let zip = base64::engine::general_purpose::STANDARD.encode(self.zip()?);
        Ok(serde_json::to_vec(&json!({
            "FunctionName": name,
            "Runtime": self.runtime(),
            "Handler": self.handler(),
            "Role": "arn:aws:iam::000000000000:role/x",
            "Code": { "ZipFile": zip },
        }))?)
    }
}

pub fn invoke_path(name: &str) -> String {
    format!("/2015-03-31/functions/{name}/invocations")
}

/// CreateFunction, then waits (GetFunctionConfiguration) until the function is `Active`.
/// Returns the CreateFunction round trip alone.
pub async fn create_function(conn: &mut Conn, hello: Hello, name: &str) -> Result<Duration> {
    let body = hello.create_body(name)?;
    let t0 = Instant::now();
    let reply = conn
        .call(Method::POST, "/2015-03-31/functions", body)
        .await?;
    let took = t0.elapsed();
    if !reply.status.is_success() {
        bail!("CreateFunction {name}: {}", reply.snippet());
    }
    let mut state = reply
        .json()?
        .get("State")
        .and_then(Value::as_str)
        .unwrap_or("Active")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while state != "Active" {
        if state == "Failed" || Instant::now() > deadline {
            bail!("function {name} is {state}, not Active");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let r = conn
            .call(
                Method::GET,
                &format!("/2015-03-31/functions/{name}/configuration"),
                Vec::new(),
            )
            .await?;
        state = r
            .json()?
            .get("State")
            .and_then(Value::as_str)
            .unwrap_or("Active")
            .to_string();
    }
    Ok(took)
}

pub async fn delete_function(conn: &mut Conn, name: &str) -> Result<()> {
    let reply = conn
        .call(
            Method::DELETE,
            &format!("/2015-03-31/functions/{name}"),
            Vec::new(),
        )
        .await?;
    if !reply.status.is_success() {
        bail!("DeleteFunction {name}: {}", reply.snippet());
    }
    Ok(())
}

/// One synchronous Invoke that must succeed; returns its round trip.
pub async fn invoke_ok(conn: &mut Conn, name: &str) -> Result<Duration> {
    let t0 = Instant::now();
    let reply = conn
        .call(
            Method::POST,
            &invoke_path(name),
            &br#"{"name":"bench"}"#[..],
        )
        .await?;
    let took = t0.elapsed();
    if !reply.status.is_success() || reply.function_error().is_some() {
        bail!(
            "Invoke {name} failed: {} (function error: {:?})",
            reply.snippet(),
            reply.function_error()
        );
    }
    Ok(took)
}

/// CPU time a process has used so far, all threads, in nanoseconds (scheduler statistics;
/// falls back to `utime + stime` in clock ticks where those are missing). `filter` sees each
/// thread's name and decides whether it counts.
pub fn cpu_ns(pid: &str, filter: impl Fn(&str) -> bool) -> u64 {
    let mut total = 0;
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    for t in tasks.flatten() {
        let dir = t.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !filter(comm.trim()) {
            continue;
        }
        if let Some(ns) = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            })
        {
            total += ns;
        } else if let Ok(stat) = std::fs::read_to_string(dir.join("stat")) {
            // utime and stime are fields 14 and 15; after the ")" they are the 12th and 13th.
            let rest = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
            let f: Vec<u64> = rest
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse().ok())
                .collect();
            total += f.iter().sum::<u64>() * 10_000_000;
        }
    }
    total
}

/// Where CPU time went, at one instant.
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot {
    pub gust_ns: u64,
    /// The part of `gust_ns` spent by the store's writer thread (durable commits).
    pub store_writer_ns: u64,
    /// Per process below `gust`: environments come and go during a run (evicted, started), so
    /// they are compared process by process.
    pub environments_ns: std::collections::HashMap<u32, u64>,
    pub client_ns: u64,
    pub baseline_ns: u64,
}

impl CpuSnapshot {
    /// `gust` and every process below it, and this process split into the client and the
    /// baseline server (by thread name).
    pub fn take(gust: Option<&Gust>) -> CpuSnapshot {
        let (gust_ns, store_writer_ns, environments_ns) = match gust {
            Some(g) => (
                cpu_ns(&g.pid.to_string(), |_| true),
                cpu_ns(&g.pid.to_string(), |name| name.starts_with("gust-store")),
                g.descendants()
                    .iter()
                    .map(|&p| (p, cpu_ns(&p.to_string(), |_| true)))
                    .collect(),
            ),
            None => (0, 0, Default::default()),
        };
        CpuSnapshot {
            gust_ns,
            store_writer_ns,
            environments_ns,
            client_ns: cpu_ns("self", |name| !name.starts_with("baseline")),
            baseline_ns: cpu_ns("self", |name| name.starts_with("baseline")),
        }
    }

    /// Microseconds of CPU per request between `self` (earlier) and `later`.
    /// In order: `gust`, its store writer (part of `gust`), environments, client, baseline server.
    pub fn per_request_us(&self, later: &CpuSnapshot, requests: u64) -> [f64; 5] {
        let n = requests.max(1) as f64;
        let d = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1_000.0 / n;
        [
            d(self.gust_ns, later.gust_ns),
            d(self.store_writer_ns, later.store_writer_ns),
            // Processes that ended during the run are missed; started ones count from zero.
            later
                .environments_ns
                .iter()
                .map(|(pid, ns)| {
                    ns.saturating_sub(self.environments_ns.get(pid).copied().unwrap_or(0))
                })
                .sum::<u64>() as f64
                / 1_000.0
                / n,
            d(self.client_ns, later.client_ns),
            d(self.baseline_ns, later.baseline_ns),
        ]
    }
}

impl Gust {
    /// Environments of one function: processes below `gust` started for `function`.
    pub fn environments_of(&self, function: &str) -> usize {
        let needle = format!("AWS_LAMBDA_FUNCTION_NAME={function}\0");
        self.descendants()
            .iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/environ"))
                    .is_ok_and(|e| e.windows(needle.len()).any(|w| w == needle.as_bytes()))
            })
            .count()
    }
}
