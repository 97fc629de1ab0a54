//! `gust-bench-wasm`: the benchmark of Gust's Wasm runtime (issue: WebAssembly functions).
//!
//! In one run, on the same hello component (`crates/wasm/tests/guests/built/hello.wasm`,
//! and the componentize-py component when `--py-component` is given):
//! 1. **Executor overhead**: `WasmInvoker::invoke` called in process, concurrency 1
//!    (instantiate from `InstancePre`, run, drop, log lines): p50/p99.
//! 2. **Hosting, same client**: the executor behind a bare hyper listener
//!    (`WasmInvoker::handle_http`, the gateway's path) against `wasmtime serve` (48.0.8),
//!    latency at concurrency 1 and throughput at 64, and their ratio. Both servers run at
//!    once and take turns in short rounds, so the shared machine's changing load falls on
//!    both alike.
//! 3. **Through the Lambda API of a real `gust up`** (SigV4, JSON, logs in SQLite): first
//!    request after deploy, warm p50/p99, throughput at 64, RSS with 1,000 deployed hello
//!    functions (each a distinct module, so each compiled), first request after a restart.
//!
//! The load generator and the percentile code are the `gust-bench` library's (`client`,
//! `stats`). A benchmark, not a test: it asserts
//! nothing and reports against the targets in the issue.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use gust_aws::sigv4::Credentials;
use gust_model::{FunctionConfig, FunctionRecord, FUNCTION_SCHEMA_VERSION};
use gust_runtime::{InvokeRequest, Invoker};
use gust_store::CodeStore;
use http::Method;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use gust_bench::client::{load, Conn, Req, Signer, Stop, Target};
use gust_bench::stats::Summary;

#[derive(Debug, Parser)]
#[command(about = "Benchmark of Gust's Wasm runtime against wasmtime serve")]
struct Args {
    /// The `gust` binary (a release build).
    #[arg(long, default_value = "target/release/gust")]
    gust: PathBuf,
    /// The `wasmtime` CLI (48.0.8) for the `wasmtime serve` baseline.
    #[arg(long, default_value = ".cache/wasmtime/bin/wasmtime")]
    wasmtime: PathBuf,
    /// The hello component.
    #[arg(long, default_value = "crates/wasm/tests/guests/built/hello.wasm")]
    component: PathBuf,
    /// A componentize-py component (tests/guests/py-hello/build.sh) to compare as well.
    #[arg(long)]
    py_component: Option<PathBuf>,
    /// Functions deployed for the RSS measurement.
    #[arg(long, default_value_t = 1000)]
    functions: usize,
    /// Shorter runs: a smoke test of the benchmark itself.
    #[arg(long)]
    quick: bool,
    /// Run only some parts (comma-separated: `executor`, `hosted`, `gust-up`); the report
    /// is then printed but not written.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where wasm.md and wasm.json are written.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let hello = std::fs::read(&args.component)
        .with_context(|| format!("reading {}", args.component.display()))?;
    let secs = if args.quick { 1 } else { 5 };
    let mut report = Report::default();
    let run = |part: &str| args.only.is_empty() || args.only.iter().any(|p| p == part);

    // 1. The executor alone.
    if run("executor") {
        // Called from a runtime worker, as the Lambda API's handlers call it (not from the
        // `block_on` thread, which would add a cross-thread wake-up to every call).
        let n = if args.quick { 2000 } else { 20_000 };
        let wasm = hello.clone();
        let exec = tokio::spawn(async move { executor_overhead(&wasm, n).await }).await??;
        report.row(
            "executor: invoke() in process, c=1",
            "p50 / p99",
            format!("{} / {} µs", r1(exec.p50_us), r1(exec.p99_us)),
            "≤ 50 µs p50",
        );
    }

    // 2. Hosting against wasmtime serve.
    let mut components = vec![("hello (WAT)", hello.clone(), false)];
    if let Some(p) = &args.py_component {
        components.push(("hello (componentize-py)", std::fs::read(p)?, true));
    }
    for (label, wasm, cli) in components.iter().filter(|_| run("hosted")) {
        let gust = hosted_gust(wasm).await?;
        let baseline = if args.wasmtime.is_file() {
            Some(hosted_wasmtime(&args.wasmtime, wasm, *cli).await?)
        } else {
            None
        };
        let mut addrs = vec![gust.addr];
        addrs.extend(baseline.as_ref().map(|b| b.addr));
        let m = measure_interleaved(&addrs, secs).await?;
        report.row(
            &format!("{label}: Gust executor behind hyper, c=1"),
            "p50 / p99",
            format!("{} / {} µs", r1(m[0].0.p50_us), r1(m[0].0.p99_us)),
            "",
        );
        report.row(
            &format!("{label}: Gust executor behind hyper, c=64"),
            "req/s",
            format!("{:.0}", m[0].1),
            "",
        );
        let Some(baseline) = baseline else {
            report.row(
                &format!("{label}: wasmtime serve"),
                "",
                "not run".into(),
                &format!("{} missing", args.wasmtime.display()),
            );
            continue;
        };
        report.row(
            &format!("{label}: wasmtime serve, c=1"),
            "p50 / p99",
            format!("{} / {} µs", r1(m[1].0.p50_us), r1(m[1].0.p99_us)),
            "",
        );
        report.row(
            &format!("{label}: wasmtime serve, c=64"),
            "req/s",
            format!("{:.0}", m[1].1),
            "",
        );
        report.row(
            &format!("{label}: throughput ratio Gust / wasmtime serve"),
            "×",
            format!("{:.2}", m[0].1 / m[1].1),
            "≥ 1.0",
        );
        drop(baseline);
        gust.stop().await;
    }

    // 3. A real gust up.
    if run("gust-up") {
        through_gust_up(&args, &hello, secs, &mut report).await?;
    }

    if args.only.is_empty() {
        report.write(&args.out)?;
    }
    Ok(())
}

fn r1(v: f64) -> String {
    format!("{v:.1}")
}

#[derive(Default)]
struct Report {
    rows: Vec<(String, String, String, String)>,
}

impl Report {
    fn row(&mut self, what: &str, unit: &str, value: String, target: &str) {
        println!("{what:<62} {unit:<10} {value:>22}   {target}");
        self.rows
            .push((what.into(), unit.into(), value, target.into()));
    }

    fn write(&self, out: &Path) -> Result<()> {
        std::fs::create_dir_all(out)?;
        let mut md = String::from("| Measurement | Unit | Value | Target |\n|---|---|---|---|\n");
        for (w, u, v, t) in &self.rows {
            md.push_str(&format!("| {w} | {u} | {v} | {t} |\n"));
        }
        std::fs::write(out.join("wasm.md"), &md)?;
        let json: Vec<Value> = self
            .rows
            .iter()
            .map(|(w, u, v, t)| json!({"what": w, "unit": u, "value": v, "target": t}))
            .collect();
        std::fs::write(out.join("wasm.json"), serde_json::to_vec_pretty(&json)?)?;
        println!("\nwritten to {}", out.join("wasm.md").display());
        Ok(())
    }
}

fn record(name: &str, code_id: &str) -> FunctionRecord {
    FunctionRecord {
        schema_version: FUNCTION_SCHEMA_VERSION,
        config: FunctionConfig {
            name: name.into(),
            runtime: "wasm".into(),
            handler: String::new(),
            role: String::new(),
            description: String::new(),
            timeout: 30,
            memory_size: 128,
            ephemeral_storage: 512,
            environment: BTreeMap::new(),
        },
        code_sha256: String::new(),
        code_id: code_id.into(),
        code_size: 0,
        last_modified: String::new(),
        revision_id: "bench".into(),
        reserved_concurrency: None,
        provisioned_concurrency: 0,
        tags: BTreeMap::new(),
    }
}

fn zip_of(wasm: &[u8]) -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(
        "app.wasm",
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
    )?;
    zip.write_all(wasm)?;
    Ok(zip.finish()?.into_inner())
}

/// A Wasm executor on a fresh store, with one function deployed.
async fn executor(
    wasm: &[u8],
) -> Result<(
    tempfile::TempDir,
    Arc<gust_wasm::WasmInvoker>,
    Arc<FunctionRecord>,
)> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(gust_store::SqliteStore::open(
        dir.path(),
        Default::default(),
    )?);
    let code_id = store.put_code(&zip_of(wasm)?, 1 << 30).await?;
    let mut config = gust_wasm::WasmConfig::new(dir.path().join("wasm-cache"));
    config.max_concurrency = 256;
    let invoker = gust_wasm::WasmInvoker::new(config, store.clone(), store)?;
    let f = Arc::new(record("hello", &code_id));
    invoker.prepare(&f).await.map_err(anyhow::Error::msg)?;
    Ok((dir, invoker, f))
}

async fn executor_overhead(wasm: &[u8], n: usize) -> Result<Summary> {
    let (_dir, invoker, f) = executor(wasm).await?;
    // The request id is the caller's (the Lambda API makes it), so it is made outside the
    // timed region.
    let call = |request_id: String| {
        invoker.invoke(InvokeRequest {
            function: f.clone(),
            payload: Bytes::from_static(b"{}"),
            request_id,
            client_context: None,
            tail_log: false,
        })
    };
    for _ in 0..n / 10 {
        call(gust_model::new_request_id()).await?;
    }
    let mut sample = Vec::with_capacity(n);
    for _ in 0..n {
        let id = gust_model::new_request_id();
        let t0 = Instant::now();
        let r = call(id).await?;
        sample.push(t0.elapsed());
        if r.function_error.is_some() {
            bail!("hello failed: {:?}", r.payload);
        }
    }
    invoker.shutdown().await;
    Ok(Summary::of(&sample))
}

/// Rounds each server gets per measurement: servers take turns, so a change in the machine's
/// load (it is shared) hits all of them alike instead of whichever ran at the time.
const ROUNDS: u32 = 5;

/// Latency at c=1 and throughput at c=64 of each HTTP server, with the shared client, the
/// servers taking turns in [`ROUNDS`] rounds of `secs / ROUNDS` each.
async fn measure_interleaved(addrs: &[SocketAddr], secs: u64) -> Result<Vec<(Summary, f64)>> {
    let round = Duration::from_secs(secs) / ROUNDS;
    let mut targets = Vec::new();
    for addr in addrs {
        let target = Target::new(*addr, None);
        let req = Req::new(&target, Method::POST, "/", &b"{}"[..])?;
        load(&target, &req, 1, Stop::For(Duration::from_millis(500))).await?;
        targets.push((target, req));
    }
    let mut lat: Vec<Vec<Duration>> = vec![Vec::new(); addrs.len()];
    let mut done = vec![(0u64, Duration::ZERO); addrs.len()];
    for _ in 0..ROUNDS {
        for (i, (target, req)) in targets.iter().enumerate() {
            let r = load(target, req, 1, Stop::For(round)).await?;
            check(&r, target.addr)?;
            lat[i].extend(r.latencies);
        }
    }
    for _ in 0..ROUNDS {
        for (i, (target, req)) in targets.iter().enumerate() {
            let r = load(target, req, 64, Stop::For(round)).await?;
            check(&r, target.addr)?;
            done[i].0 += r.ok;
            done[i].1 += r.elapsed;
        }
    }
    Ok(lat
        .iter()
        .zip(done)
        .map(|(l, (ok, t))| (Summary::of(l), ok as f64 / t.as_secs_f64().max(1e-9)))
        .collect())
}

fn check(r: &gust_bench::client::LoadResult, addr: SocketAddr) -> Result<()> {
    if r.errors + r.throttled > 0 {
        bail!("errors while measuring {addr}: {:?}", r.first_error);
    }
    Ok(())
}

/// A server under test, listening on `addr`.
struct Hosted {
    addr: SocketAddr,
    stop: Box<dyn FnOnce() -> tokio::task::JoinHandle<()> + Send>,
}

impl Hosted {
    async fn stop(self) {
        let _ = (self.stop)().await;
    }
}

/// The executor behind a bare hyper listener: what the gateway will do.
async fn hosted_gust(wasm: &[u8]) -> Result<Hosted> {
    let (_dir, invoker, f) = executor(wasm).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = {
        let invoker = invoker.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let _ = sock.set_nodelay(true);
                let invoker = invoker.clone();
                let f = f.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let invoker = invoker.clone();
                            let f = f.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await?.to_bytes();
                                let resp = match invoker
                                    .handle_http(f, http::Request::from_parts(parts, body))
                                    .await
                                {
                                    Ok(r) => r.map(Full::new),
                                    Err(e) => {
                                        let mut r = http::Response::new(Full::new(Bytes::from(
                                            e.to_string(),
                                        )));
                                        *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                                        r
                                    }
                                };
                                Ok::<_, hyper::Error>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                        .await;
                });
            }
        })
    };
    Ok(Hosted {
        addr,
        stop: Box::new(move || {
            server.abort();
            tokio::spawn(async move {
                invoker.shutdown().await;
                drop(_dir);
            })
        }),
    })
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wasmtime serve` running the component; stopped when dropped.
struct Baseline {
    addr: SocketAddr,
    _child: Killed,
    _dir: tempfile::TempDir,
}

async fn hosted_wasmtime(bin: &Path, wasm: &[u8], cli: bool) -> Result<Baseline> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("app.wasm");
    std::fs::write(&path, wasm)?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"));
    if cli {
        cmd.arg("-Scli");
    }
    cmd.arg(&path).stdout(Stdio::null()).stderr(Stdio::null());
    let child = Killed(
        cmd.spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?,
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let t0 = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if t0.elapsed() > Duration::from_secs(120) {
            bail!("wasmtime serve did not listen");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Baseline {
        addr,
        _child: child,
        _dir: dir,
    })
}

struct GustUp {
    child: Killed,
    pid: u32,
    target: Arc<Target>,
}

fn start_gust(bin: &Path, data_dir: &Path) -> Result<GustUp> {
    let ready = data_dir.with_extension("ready.json");
    let _ = std::fs::remove_file(&ready);
    let log = std::fs::File::create(data_dir.with_extension("log"))?;
    let child = Command::new(bin)
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--listen",
            "127.0.0.1:0",
            // Not the default 8080, which another program on the machine may hold.
            "--gateway",
            "127.0.0.1:0",
            "--max-concurrency",
            "64",
            "--ready-file",
        ])
        .arg(&ready)
        .env("GUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let pid = child.id();
    let child = Killed(child);
    let t0 = Instant::now();
    let doc: Value = loop {
        if let Ok(v) = std::fs::read(&ready)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(serde_json::from_slice(&b)?))
        {
            break v;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            bail!("gust up not ready");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let addr: SocketAddr = doc["endpoint"]
        .as_str()
        .context("endpoint")?
        .trim_start_matches("http://")
        .parse()?;
    let creds: Value = serde_json::from_slice(&std::fs::read(data_dir.join("credentials.json"))?)?;
    let creds = Credentials {
        access_key_id: creds["access_key_id"].as_str().context("key")?.to_string(),
        secret_access_key: creds["secret_access_key"]
            .as_str()
            .context("secret")?
            .to_string(),
    };
    let target = Target::new(
        addr,
        Some(Signer {
            creds,
            region: "us-east-1".into(),
            service: "lambda",
        }),
    );
    Ok(GustUp { child, pid, target })
}

fn stop_gust(g: GustUp) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(g.pid.to_string())
        .status();
    let mut child = g.child;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = child.0.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The component with a custom section naming `tag`: a distinct module (distinct hash, its
/// own compilation) that behaves the same.
fn tagged(wasm: &[u8], tag: usize) -> Vec<u8> {
    let name = b"gust-bench";
    let payload = tag.to_le_bytes();
    let mut section = Vec::new();
    section.push(name.len() as u8);
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut out = wasm.to_vec();
    out.push(0);
    out.push(section.len() as u8);
    out.extend_from_slice(&section);
    out
}

fn create_body(name: &str, wasm: &[u8]) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&json!({
        "FunctionName": name,
        "Runtime": "wasm",
        "Handler": "",
        "Role": "arn:aws:iam::000000000000:role/bench",
        "Timeout": 30,
        "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(zip_of(wasm)?)},
    }))?)
}

async fn invoke(conn: &mut Conn, name: &str) -> Result<Duration> {
    let t0 = Instant::now();
    let r = conn
        .call(
            Method::POST,
            &format!("/2015-03-31/functions/{name}/invocations"),
            &b"{}"[..],
        )
        .await?;
    let took = t0.elapsed();
    if !r.status.is_success() || r.function_error().is_some() {
        bail!("invoke {name}: {}", r.snippet());
    }
    Ok(took)
}

async fn through_gust_up(args: &Args, hello: &[u8], secs: u64, report: &mut Report) -> Result<()> {
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let g = start_gust(&args.gust, &data)?;
    let mut conn = Conn::connect(g.target.clone()).await?;

    // Deploy, then the very first request.
    let t0 = Instant::now();
    let r = conn
        .call(
            Method::POST,
            "/2015-03-31/functions",
            create_body("hello", hello)?,
        )
        .await?;
    if !r.status.is_success() {
        bail!("CreateFunction: {}", r.snippet());
    }
    let deploy = t0.elapsed();
    let first = invoke(&mut conn, "hello").await?;
    let n = if args.quick { 500 } else { 5000 };
    for _ in 0..n / 10 {
        invoke(&mut conn, "hello").await?;
    }
    let mut warm = Vec::with_capacity(n);
    for _ in 0..n {
        warm.push(invoke(&mut conn, "hello").await?);
    }
    let warm = Summary::of(&warm);
    report.row(
        "gust up: CreateFunction (hello, compiled at deploy)",
        "ms",
        format!("{:.2}", deploy.as_secs_f64() * 1e3),
        "",
    );
    report.row(
        "gust up: first Invoke after deploy",
        "µs",
        r1(first.as_secs_f64() * 1e6),
        "",
    );
    report.row(
        "gust up: warm Invoke, c=1",
        "p50 / p99",
        format!("{} / {} µs", r1(warm.p50_us), r1(warm.p99_us)),
        "",
    );
    report.row(
        "gust up: first request after deploy − warm p50",
        "ms",
        format!("{:.3}", (first.as_secs_f64() * 1e6 - warm.p50_us) / 1e3),
        "≤ 2 ms",
    );
    let req = Req::new(
        &g.target,
        Method::POST,
        "/2015-03-31/functions/hello/invocations",
        &b"{}"[..],
    )?;
    let tp = load(&g.target, &req, 64, Stop::For(Duration::from_secs(secs))).await?;
    report.row(
        "gust up: Invoke throughput, c=64",
        "req/s",
        format!("{:.0}", tp.throughput()),
        "",
    );
    if tp.errors + tp.throttled > 0 {
        report.row(
            "gust up: Invoke errors / throttles at c=64",
            "count",
            format!("{} / {}", tp.errors, tp.throttled),
            "",
        );
    }

    // Density: many distinct functions, each deployed (compiled) and invoked once.
    let rss_before = rss_mib(g.pid);
    let t0 = Instant::now();
    for i in 0..args.functions {
        let name = format!("f{i:04}");
        let r = conn
            .call(
                Method::POST,
                "/2015-03-31/functions",
                create_body(&name, &tagged(hello, i))?,
            )
            .await?;
        if !r.status.is_success() {
            bail!("CreateFunction {name}: {}", r.snippet());
        }
        invoke(&mut conn, &name).await?;
    }
    let deploy_all = t0.elapsed();
    let rss = rss_mib(g.pid);
    report.row(
        &format!(
            "gust up: deploy + invoke {} distinct hello functions",
            args.functions
        ),
        "s",
        format!("{:.1}", deploy_all.as_secs_f64()),
        "",
    );
    report.row(
        &format!(
            "gust up: RSS with {} hello functions (before: {rss_before:.0} MiB)",
            args.functions
        ),
        "MiB",
        format!("{rss:.0}"),
        "≤ 1024 MiB",
    );
    drop(conn);
    stop_gust(g);

    // Restart: artifacts come from the cache.
    let g = start_gust(&args.gust, &data)?;
    let mut conn = Conn::connect(g.target.clone()).await?;
    let first = invoke(&mut conn, "hello").await?;
    let mut warm = Vec::with_capacity(n);
    for _ in 0..n {
        warm.push(invoke(&mut conn, "hello").await?);
    }
    let warm = Summary::of(&warm);
    report.row(
        "gust up: first Invoke after restart (artifact from cache)",
        "µs",
        r1(first.as_secs_f64() * 1e6),
        "",
    );
    report.row(
        "gust up: first request after restart − warm p50",
        "ms",
        format!("{:.3}", (first.as_secs_f64() * 1e6 - warm.p50_us) / 1e3),
        "",
    );
    let t0 = Instant::now();
    for i in 0..args.functions.min(200) {
        invoke(&mut conn, &format!("f{i:04}")).await?;
    }
    report.row(
        "gust up: first Invoke of each of 200 functions after restart (mean)",
        "µs",
        r1(t0.elapsed().as_secs_f64() * 1e6 / args.functions.clamp(1, 200) as f64),
        "",
    );
    drop(conn);
    stop_gust(g);
    Ok(())
}
