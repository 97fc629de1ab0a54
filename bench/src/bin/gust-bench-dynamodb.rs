//! `gust-bench-dynamodb`: Gust's DynamoDB API against `moto_server`, same native load generator.
//!
//! It starts a release `gust up` (fresh data directory) and `moto_server` (on a free loopback
//! port), creates the same table on both (`pk` S hash key, `sk` N range key), loads the items the
//! reads need, then measures PutItem (~200-byte items), GetItem, Query (100 items) and a
//! conditional UpdateItem (`SET n = n + :one` if `attribute_exists(pk)`) from 1 and 8 concurrent
//! clients: one keep-alive HTTP/1.1 connection per client, all driven by one load-generator thread
//! (`--client-threads`), every request SigV4-signed on the spot (moto accepts any credentials; it
//! is signed the same way so both cost the client the same).
//! Results go to stdout and to `<out>/dynamodb.md` and `<out>/dynamodb.json`.
//!
//! Gust acknowledges a write only once it is durable (fsync, shared by concurrent writers through
//! group commit); moto keeps everything in memory.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use gust_aws::sigv4::Credentials;
use gust_bench::client::{load_with, Conn, LoadResult, Req, Signer, Stop, Target};
use gust_bench::gust::{cpu_ns, Gust};

use gust_bench::machine::{loadavg, Machine};
use gust_bench::stats::{fmt_us, round, Summary};
use serde_json::{json, Value};

const TABLE: &str = "bench";
const JSON10: &str = "application/x-amz-json-1.0";
/// Items GetItem and UpdateItem pick from (at random).
const READ_ITEMS: u64 = 1_000;
/// Items under the one partition key Query reads.
const QUERY_ITEMS: u64 = 100;

#[derive(Debug, Parser)]
#[command(about = "Gust's DynamoDB API against moto_server, with the same native load generator")]
struct Args {
    /// The `gust` binary to benchmark (a release build).
    #[arg(long, default_value = "target/release/gust")]
    gust: PathBuf,
    /// The `moto_server` executable (bench/dynamodb.sh installs it into .cache/bench-venv).
    #[arg(long, default_value = ".cache/bench-venv/bin/moto_server")]
    moto: PathBuf,
    /// Seconds per measured cell.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Concurrent clients to measure at.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    clients: Vec<usize>,
    /// Operations to measure (PutItem, GetItem, Query, UpdateItem).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "PutItem,GetItem,Query,UpdateItem"
    )]
    ops: Vec<String>,
    /// Where dynamodb.md and dynamodb.json are written.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Measure Gust alone (for profiling and quick comparisons): no moto_server, progress
    /// lines only, no result files.
    #[arg(long)]
    no_moto: bool,
    /// Threads of the load generator's runtime. One thread drives the clients' connections
    /// without the wake-ups between threads that two cost (on 2 cores, about 26 µs of client
    /// CPU per GetItem instead of about 38 µs), leaving more of the machine to the server.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    Get,
    Query,
    Update,
}

impl Op {
    const ALL: [Op; 4] = [Op::Put, Op::Get, Op::Query, Op::Update];

    fn name(self) -> &'static str {
        match self {
            Op::Put => "PutItem",
            Op::Get => "GetItem",
            Op::Query => "Query",
            Op::Update => "UpdateItem",
        }
    }

    fn desc(self) -> &'static str {
        match self {
            Op::Put => "PutItem, new ~200-byte item",
            Op::Get => "GetItem, random key of 1,000",
            Op::Query => "Query, 100 items (~20 KB)",
            Op::Update => "UpdateItem `SET n = n + :one` if `attribute_exists(pk)`",
        }
    }
}

/// A ~170-character payload: with the key and `n`, the item is about 200 bytes as DynamoDB
/// counts item size (attribute names plus values).
fn payload() -> String {
    "x".repeat(170)
}

fn item_json(pk: &str, sk: u64, data: &str) -> String {
    format!(
        r#"{{"pk":{{"S":"{pk}"}},"sk":{{"N":"{sk}"}},"n":{{"N":"0"}},"data":{{"S":"{data}"}}}}"#
    )
}

/// A cheap, well-spread pseudo-random index from a ticket.
fn pick(ticket: u64, n: u64) -> u64 {
    let mut x = ticket.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) % n
}

/// One server under test.
struct Server {
    name: &'static str,
    target: Arc<Target>,
    pid: u32,
}

impl Server {
    fn req(&self, op: &str, body: impl Into<bytes::Bytes>) -> Result<Req> {
        Req::aws_json(
            &self.target,
            JSON10,
            &format!("DynamoDB_20120810.{op}"),
            body,
        )
    }

    /// The request maker for one measured cell; `run` keeps PutItem keys distinct across cells.
    fn maker(
        &self,
        op: Op,
        run: u32,
    ) -> Result<impl Fn(usize, u64) -> Req + Send + Sync + 'static> {
        let base = self.req(op.name(), "")?;
        let data = payload();
        Ok(move |_worker: usize, ticket: u64| {
            let body = match op {
                Op::Put => format!(
                    r#"{{"TableName":"{TABLE}","Item":{}}}"#,
                    item_json(&format!("p{run}#{ticket}"), ticket, &data)
                ),
                Op::Get => format!(
                    r#"{{"TableName":"{TABLE}","Key":{{"pk":{{"S":"g#{}"}},"sk":{{"N":"0"}}}}}}"#,
                    pick(ticket, READ_ITEMS)
                ),
                Op::Query => format!(
                    r#"{{"TableName":"{TABLE}","KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{{":p":{{"S":"q"}}}}}}"#
                ),
                Op::Update => format!(
                    r#"{{"TableName":"{TABLE}","Key":{{"pk":{{"S":"g#{}"}},"sk":{{"N":"0"}}}},"UpdateExpression":"SET n = n + :one","ConditionExpression":"attribute_exists(pk)","ExpressionAttributeValues":{{":one":{{"N":"1"}}}}}}"#,
                    pick(ticket ^ 0x5555, READ_ITEMS)
                ),
            };
            base.with_body(body)
        })
    }

    async fn call(&self, conn: &mut Conn, op: &str, body: Value) -> Result<Value> {
        let reply = conn
            .send(&self.req(op, serde_json::to_vec(&body)?)?)
            .await?;
        if reply.status != http::StatusCode::OK {
            bail!("{}: {op} failed: {}", self.name, reply.snippet());
        }
        reply.json()
    }

    /// Creates the table and loads the items GetItem, UpdateItem and Query read.
    async fn setup(&self) -> Result<Duration> {
        let mut conn = Conn::connect(self.target.clone()).await?;
        self.call(
            &mut conn,
            "CreateTable",
            json!({
                "TableName": TABLE,
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "BillingMode": "PAY_PER_REQUEST",
            }),
        )
        .await?;
        let t0 = Instant::now();
        loop {
            let d = self
                .call(&mut conn, "DescribeTable", json!({"TableName": TABLE}))
                .await?;
            if d["Table"]["TableStatus"] == "ACTIVE" {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("{}: table not ACTIVE after 30 s: {d}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Load: READ_ITEMS items g#i/0, then QUERY_ITEMS items q/0..99.
        let base = self.req("PutItem", "")?;
        let data = payload();
        let t0 = Instant::now();
        let r = load_with(
            &self.target,
            8,
            Stop::Count(READ_ITEMS + QUERY_ITEMS),
            move |_, t| {
                let item = if t < READ_ITEMS {
                    item_json(&format!("g#{t}"), 0, &data)
                } else {
                    item_json("q", t - READ_ITEMS, &data)
                };
                base.with_body(format!(r#"{{"TableName":"{TABLE}","Item":{item}}}"#))
            },
        )
        .await?;
        if r.errors > 0 || r.ok != READ_ITEMS + QUERY_ITEMS {
            bail!(
                "{}: loading items: {} ok, {} errors, first: {:?}",
                self.name,
                r.ok,
                r.errors,
                r.first_error
            );
        }
        let took = t0.elapsed();
        // Check that every measured request does what it says before timing it.
        for op in Op::ALL {
            let make = self.maker(op, 0)?;
            let reply = conn.send(&make(0, 1 << 40)).await?;
            if reply.status != http::StatusCode::OK {
                bail!(
                    "{}: {} check failed: {}",
                    self.name,
                    op.name(),
                    reply.snippet()
                );
            }
            let v = reply.json()?;
            let ok = match op {
                Op::Put | Op::Update => true,
                Op::Get => v["Item"]["data"]["S"]
                    .as_str()
                    .is_some_and(|s| s.len() == 170),
                Op::Query => {
                    v["Count"] == QUERY_ITEMS
                        && v["Items"]
                            .as_array()
                            .is_some_and(|a| a.len() == QUERY_ITEMS as usize)
                }
            };
            if !ok {
                bail!(
                    "{}: {} returned something unexpected: {}",
                    self.name,
                    op.name(),
                    reply.snippet()
                );
            }
        }
        Ok(took)
    }

    fn cpu_ns(&self) -> u64 {
        process_cpu_ns(self.pid)
    }

    /// Sum of `n` over the READ_ITEMS items (Scan, paginated): the UpdateItems that succeeded.
    async fn sum_n(&self) -> Result<u64> {
        let mut conn = Conn::connect(self.target.clone()).await?;
        let mut start: Option<Value> = None;
        let mut sum = 0u64;
        loop {
            let mut body = json!({"TableName": TABLE, "ProjectionExpression": "pk, n"});
            if let Some(k) = start.take() {
                body["ExclusiveStartKey"] = k;
            }
            let v = self.call(&mut conn, "Scan", body).await?;
            for it in v["Items"].as_array().into_iter().flatten() {
                if it["pk"]["S"].as_str().is_some_and(|s| s.starts_with("g#")) {
                    sum += it["n"]["N"]
                        .as_str()
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
            match v.get("LastEvaluatedKey") {
                Some(k) if !k.is_null() => start = Some(k.clone()),
                _ => return Ok(sum),
            }
        }
    }
}

/// CPU time of a whole process, threads that have exited included (`utime + stime` of
/// `/proc/<pid>/stat`, in clock ticks of 10 ms): moto_server runs each connection on a thread of
/// its own, so summing the live threads would miss most of its work.
fn process_cpu_ns(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    rest.split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum::<u64>()
        * 10_000_000
}

/// `moto_server` as a child process on a free loopback port.
struct Moto {
    child: Child,
    addr: SocketAddr,
    version: String,
}

impl Moto {
    fn start(bin: &Path) -> Result<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::env::temp_dir().join(format!("gust-bench-moto-{port}.log"));
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot run {} (bench/dynamodb.sh installs it)",
                    bin.display()
                )
            })?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let t0 = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if t0.elapsed() > Duration::from_secs(30) {
                bail!(
                    "moto_server not listening after 30 s: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let python = bin
            .parent()
            .map(|d| d.join("python"))
            .unwrap_or_else(|| "python3".into());
        let version = Command::new(python)
            .args(["-c", "import moto; print(moto.__version__)"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Ok(Moto {
            child,
            addr,
            version,
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One measured cell.
struct Cell {
    server: &'static str,
    op: Op,
    clients: usize,
    result: LoadResult,
    /// Requests that succeeded in the warm-up before the measured run.
    warm_ok: u64,
    summary: Summary,
    cpu_us_per_op: f64,
    /// CPU of this process's load generator (all its threads) per completed operation.
    client_cpu_us_per_op: f64,
}

impl Cell {
    fn json(&self) -> Value {
        json!({
            "server": self.server,
            "operation": self.op.name(),
            "clients": self.clients,
            "ok": self.result.ok,
            "errors": self.result.errors + self.result.throttled,
            "first_error": self.result.first_error,
            "elapsed_s": round(self.result.elapsed.as_secs_f64()),
            "ops_per_s": round(self.result.throughput()),
            "latency": self.summary.to_json(),
            "server_cpu_us_per_op": round(self.cpu_us_per_op),
            "client_cpu_us_per_op": round(self.client_cpu_us_per_op),
            "reconnects": self.result.reconnects,
        })
    }
}

async fn measure(s: &Server, op: Op, clients: usize, run: u32, secs: f64) -> Result<Cell> {
    // A short warm-up on fresh connections, then the measured run.
    let warm = load_with(
        &s.target,
        clients,
        Stop::For(Duration::from_millis(300)),
        s.maker(op, run + 1000)?,
    )
    .await?;
    let cpu0 = s.cpu_ns();
    let client0 = cpu_ns("self", |_| true);
    let result = load_with(
        &s.target,
        clients,
        Stop::For(Duration::from_secs_f64(secs)),
        s.maker(op, run)?,
    )
    .await?;
    let per_op = |ns: u64| ns as f64 / 1_000.0 / result.ok.max(1) as f64;
    let cpu = per_op(s.cpu_ns().saturating_sub(cpu0));
    let client_cpu_us_per_op = per_op(cpu_ns("self", |_| true).saturating_sub(client0));
    let summary = Summary::of(&result.latencies);
    Ok(Cell {
        server: s.name,
        op,
        clients,
        warm_ok: warm.ok,
        summary,
        cpu_us_per_op: cpu,
        client_cpu_us_per_op,
        result,
    })
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("[dynamodb-bench] {}", msg.as_ref());
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .thread_name("client")
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let t_all = Instant::now();
    let bin = std::fs::canonicalize(&args.gust).with_context(|| {
        format!(
            "no gust binary at {} (cargo build --release -p gust-cli)",
            args.gust.display()
        )
    })?;
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .ok()
        .map(time::OffsetDateTime::from)
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let machine = Machine {
        binary: format!("{} (built {built})", bin.display()),
        ..Machine::describe()
    };
    progress(format!(
        "{} ({} cores), load average {}",
        machine.cpu, machine.cores, machine.loadavg_start
    ));

    // The gateway is not measured here (and another `gust up` may hold its default port).
    let g = tokio::task::block_in_place(|| Gust::start(&bin, &["--no-gateway"]))?;
    let moto = if args.no_moto {
        None
    } else {
        Some(tokio::task::block_in_place(|| Moto::start(&args.moto))?)
    };
    progress(format!("gust at {} (pid {})", g.endpoint, g.pid));
    let mut servers = vec![Server {
        name: "gust",
        target: g.target_for("dynamodb")?,
        pid: g.pid,
    }];
    if let Some(moto) = &moto {
        progress(format!(
            "moto_server {} at http://{} (pid {})",
            moto.version,
            moto.addr,
            moto.child.id()
        ));
        servers.push(Server {
            name: "moto",
            target: Target::new(
                moto.addr,
                Some(Signer {
                    creds: Credentials {
                        access_key_id: "AKIDMOTOBENCH".into(),
                        secret_access_key: "moto-bench-secret".into(),
                    },
                    region: "us-east-1".into(),
                    service: "dynamodb",
                }),
            ),
            pid: moto.child.id(),
        });
    }
    let mut load_times = Vec::new();
    for s in &servers {
        let took = s
            .setup()
            .await
            .with_context(|| format!("setting up {}", s.name))?;
        progress(format!(
            "{}: table created, {} items loaded by 8 clients in {:.2} s",
            s.name,
            READ_ITEMS + QUERY_ITEMS,
            took.as_secs_f64()
        ));
        load_times.push((s.name, took));
    }

    let mut cells = Vec::new();
    let mut run_no = 0u32;
    for op in Op::ALL
        .into_iter()
        .filter(|op| args.ops.iter().any(|o| o.eq_ignore_ascii_case(op.name())))
    {
        for &c in &args.clients {
            for s in &servers {
                run_no += 1;
                let cell = measure(s, op, c, run_no, args.seconds).await?;
                progress(format!(
                    "{:4} {:10} c={c}: {:8.0} ops/s  p50 {}  p99 {}  CPU/op server {} client {}  errors {}  (load {})",
                    s.name,
                    op.name(),
                    cell.result.throughput(),
                    fmt_us(cell.summary.p50_us),
                    fmt_us(cell.summary.p99_us),
                    fmt_us(cell.cpu_us_per_op),
                    fmt_us(cell.client_cpu_us_per_op),
                    cell.result.errors + cell.result.throttled,
                    loadavg()
                ));
                cells.push(cell);
            }
        }
    }
    // Every UpdateItem that succeeded incremented one `n`: the sums must match.
    let mut update_checks = Vec::new();
    for s in &servers {
        // +1: the check before the runs.
        let acked: u64 = 1 + cells
            .iter()
            .filter(|c| c.server == s.name && c.op == Op::Update)
            .map(|c| c.result.ok + c.warm_ok)
            .sum::<u64>();
        let sum = s.sum_n().await?;
        update_checks.push((s.name, acked, sum));
    }
    let gust_rss = g.rss_kib();
    let log_tail = g.log_tail();
    drop(moto);
    let _ = tokio::task::block_in_place(|| g.stop());
    if args.no_moto {
        progress("--no-moto: no result files written");
        return Ok(());
    }

    let md = markdown(
        &machine,
        &cells,
        &args,
        &load_times,
        &update_checks,
        t_all.elapsed(),
        gust_rss,
    );
    println!("{md}");
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("dynamodb.md"), &md)?;
    let doc = json!({
        "machine": machine.to_json(),
        "seconds_per_cell": args.seconds,
        "client_threads": args.client_threads,
        "durability": {"gust": "acknowledged after fsync (group commit)", "moto": "in memory"},
        "cells": cells.iter().map(Cell::json).collect::<Vec<_>>(),
        "update_checks": update_checks.iter().map(|(s, a, n)| json!({"server": s, "acknowledged_updates": a, "sum_of_n": n})).collect::<Vec<_>>(),
        "gust_rss_kib_after": gust_rss,
        "gust_log_tail": log_tail,
    });
    std::fs::write(
        args.out.join("dynamodb.json"),
        serde_json::to_string_pretty(&doc)? + "\n",
    )?;
    progress(format!(
        "wrote {}/dynamodb.md and dynamodb.json",
        args.out.display()
    ));
    Ok(())
}

fn check(ok: bool) -> &'static str {
    if ok {
        "✅"
    } else {
        "❌"
    }
}

fn markdown(
    m: &Machine,
    cells: &[Cell],
    args: &Args,
    load_times: &[(&str, Duration)],
    update_checks: &[(&str, u64, u64)],
    total: Duration,
    gust_rss: Option<u64>,
) -> String {
    let find = |server: &str, op: Op, c: usize| {
        cells
            .iter()
            .find(|x| x.server == server && x.op == op && x.clients == c)
    };
    let mut o = String::new();
    let _ = writeln!(o, "# Gust DynamoDB benchmark\n");
    let _ = writeln!(
        o,
        "{}, {} cores, {} MiB RAM, Linux {}; {} UTC; repository at {}, binary {}; load average {} at start, {} at end; whole run {:.0} s.\n",
        m.cpu,
        m.cores,
        m.memory_mib,
        m.kernel,
        m.date,
        m.commit,
        m.binary,
        m.loadavg_start,
        loadavg(),
        total.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "Same native load generator for both servers (one keep-alive HTTP/1.1 connection per client, every request \
         SigV4-signed on the spot, all clients driven by {}, {:.1} s per cell after a 0.3 s warm-up). **Gust's writes are durable**: a PutItem or \
         UpdateItem is acknowledged only after its commit is fsynced (concurrent writers share fsyncs through group \
         commit). moto_server keeps its tables in memory (no durability at all). Table: `pk` (S, hash), `sk` (N, range); \
         items of ~200 bytes; GetItem and UpdateItem pick one of {READ_ITEMS} items at random; Query reads one partition of \
         {QUERY_ITEMS} items (~20 KB reply). *CPU/op* is the server process's CPU time (all threads, 10 ms ticks) per \
         completed operation; *client CPU/op* is the load generator's (signing, JSON body, hyper), the same code for \
         both. The machine has 2 cores shared by client and server, so at 8 clients the sum of the two bounds the \
         throughput.\n",
        match args.client_threads {
            1 => "one load-generator thread".to_owned(),
            n => format!("{n} load-generator threads"),
        },
        args.seconds
    );
    let _ = writeln!(
        o,
        "| Operation | Clients | Gust ops/s | Gust p50 | Gust p99 | Gust CPU/op | moto ops/s | moto p50 | moto p99 | moto CPU/op | Gust / moto | client CPU/op (Gust, moto) |"
    );
    let _ = writeln!(
        o,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for op in Op::ALL {
        for &c in &args.clients {
            let (Some(g), Some(mo)) = (find("gust", op, c), find("moto", op, c)) else {
                continue;
            };
            let ratio = g.result.throughput() / mo.result.throughput().max(1e-9);
            let _ = writeln!(
                o,
                "| {} | {c} | {:.0} | {} | {} | {} | {:.0} | {} | {} | {} | {:.1}× {} | {}, {} |",
                op.name(),
                g.result.throughput(),
                fmt_us(g.summary.p50_us),
                fmt_us(g.summary.p99_us),
                fmt_us(g.cpu_us_per_op),
                mo.result.throughput(),
                fmt_us(mo.summary.p50_us),
                fmt_us(mo.summary.p99_us),
                fmt_us(mo.cpu_us_per_op),
                ratio,
                check(ratio >= 4.0),
                fmt_us(g.client_cpu_us_per_op),
                fmt_us(mo.client_cpu_us_per_op)
            );
        }
    }
    let _ = writeln!(o);
    for op in Op::ALL {
        let _ = writeln!(o, "- {}: {}", op.name(), op.desc());
    }
    let moto_reconnects: u64 = cells
        .iter()
        .filter(|c| c.server == "moto")
        .map(|c| c.result.reconnects)
        .sum();
    let gust_reconnects: u64 = cells
        .iter()
        .filter(|c| c.server == "gust")
        .map(|c| c.result.reconnects)
        .sum();
    let _ = writeln!(
        o,
        "\nmoto_server (werkzeug) answers every request with `Connection: close`, so the client reconnects after each \
         reply ({moto_reconnects} reconnects in the measured runs; the connect is in the throughput, not in the \
         latencies), as boto3 would. Gust kept every connection alive ({gust_reconnects} reconnects)."
    );
    let errs: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.result.errors + c.result.throttled > 0)
        .collect();
    if errs.is_empty() {
        let _ = writeln!(o, "\nNo errors in any measured run.");
    } else {
        let _ = writeln!(o, "\nErrors:");
        for c in errs {
            let _ = writeln!(
                o,
                "- {} {} at {} clients: {} errors, first: `{}`",
                c.server,
                c.op.name(),
                c.clients,
                c.result.errors + c.result.throttled,
                c.result.first_error.as_deref().unwrap_or("")
            );
        }
    }

    let _ = writeln!(o, "\n## Targets\n\n| Target | Result | |\n|---|---|---|");
    let max_c = args.clients.iter().copied().max().unwrap_or(1);
    let tp = |op: Op| find("gust", op, max_c).map_or(0.0, |c| c.result.throughput());
    let _ = writeln!(
        o,
        "| ≥ 5,000 durable PutItem/s from {max_c} clients | {:.0}/s | {} |",
        tp(Op::Put),
        check(tp(Op::Put) >= 5_000.0)
    );
    let _ = writeln!(
        o,
        "| ≥ 20,000 GetItem/s from {max_c} clients | {:.0}/s | {} |",
        tp(Op::Get),
        check(tp(Op::Get) >= 20_000.0)
    );
    let p99 = find("gust", Op::Get, max_c).map_or(f64::INFINITY, |c| c.summary.p99_us);
    let _ = writeln!(
        o,
        "| GetItem p99 ≤ 2 ms under that load | {} | {} |",
        fmt_us(p99),
        check(p99 <= 2_000.0)
    );
    let min_ratio = Op::ALL
        .iter()
        .flat_map(|&op| args.clients.iter().map(move |&c| (op, c)))
        .filter_map(|(op, c)| {
            Some((
                op,
                c,
                find("gust", op, c)?.result.throughput()
                    / find("moto", op, c)?.result.throughput().max(1e-9),
            ))
        })
        .min_by(|a, b| a.2.total_cmp(&b.2));
    if let Some((op, c, r)) = min_ratio {
        let _ = writeln!(
            o,
            "| ≥ 4 × moto_server on every operation | lowest {r:.1}× ({} at {c} clients) | {} |",
            op.name(),
            check(r >= 4.0)
        );
    }

    let _ = writeln!(o, "\n## Checks\n");
    for (s, took) in load_times {
        let _ = writeln!(
            o,
            "- {s}: loading the {} read items from 8 clients took {:.2} s.",
            READ_ITEMS + QUERY_ITEMS,
            took.as_secs_f64()
        );
    }
    for (s, acked, sum) in update_checks {
        let _ = writeln!(
            o,
            "- {s}: {acked} conditional UpdateItems acknowledged (warm-ups included), sum of `n` over the items afterwards: {sum} {}.",
            if sum == acked { "(every acknowledged increment is there, none lost)" } else { "(**mismatch**)" }
        );
    }
    if let Some(k) = gust_rss {
        let _ = writeln!(
            o,
            "- gust RSS after the runs: {:.1} MiB.",
            k as f64 / 1024.0
        );
    }
    o
}
