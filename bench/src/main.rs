//! `gust-bench`: the benchmark of Gust's core platform.
//!
//! It starts a real `gust up` (release build) on empty data directories and measures, in one
//! run: start-up time and idle memory; cold starts of fresh Python and Node hello functions;
//! warm invoke latency at concurrency 1; throughput at concurrency 1, 8 and 64. A bare hyper
//! hello server inside this process, hit by the same client, is the baseline every Gust number
//! is compared with. Results go to stdout and to `<out>/core.md` and `<out>/core.json`.
//!
//! This is a benchmark program, not a test: it asserts nothing, it reports against the targets
//! in `VISION.md`.

use gust_bench::{baseline, client, gust, machine, report, stats};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use http::Method;

use crate::client::{load, Conn, Req, Signer, Stop, Target};
use crate::gust::{
    create_function, delete_function, invoke_ok, invoke_path, CpuSnapshot, Gust, Hello,
};
use crate::report::*;
use crate::stats::{median, Summary};

#[derive(Debug, Parser)]
#[command(about = "Benchmark of Gust's core platform against a bare hyper baseline")]
struct Args {
    /// The `gust` binary to benchmark (a release build).
    #[arg(long, default_value = "target/release/gust")]
    gust: PathBuf,
    /// Fewer iterations and shorter runs: a smoke test of the benchmark itself.
    #[arg(long)]
    quick: bool,
    /// Only the bare hyper baseline's latency and throughput, no Gust: checks the load generator
    /// itself (what the client can drive on this machine).
    #[arg(long, hide = true)]
    baseline_only: bool,
    /// Where core.md and core.json are written.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

/// How much of everything to do.
#[derive(Debug, Clone, Copy)]
struct Plan {
    starts: usize,
    cold_functions: usize,
    warmup: u64,
    warm_invokes: u64,
    throughput_for: Duration,
    levels: [usize; 3],
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                starts: 2,
                cold_functions: 3,
                warmup: 50,
                warm_invokes: 300,
                throughput_for: Duration::from_secs(1),
                levels: [1, 8, 64],
            }
        } else {
            Plan {
                starts: 5,
                cold_functions: 10,
                warmup: 300,
                warm_invokes: 2_000,
                throughput_for: Duration::from_secs(5),
                levels: [1, 8, 64],
            }
        }
    }
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("[gust-bench] {}", msg.as_ref());
}

fn main() -> Result<()> {
    let args = Args::parse();
    // The client gets the same two workers `gust up` gets on this machine.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let plan = Plan::new(args.quick);
    let machine = machine::Machine::describe();
    let t_all = Instant::now();
    progress(format!(
        "{} ({} cores), plan {:?}",
        machine.cpu, machine.cores, plan
    ));

    if args.baseline_only {
        let base = baseline::start()?;
        let creds = gust_aws::sigv4::Credentials {
            access_key_id: "AKIABENCHBASELINE".into(),
            secret_access_key: "bench-baseline-secret".into(),
        };
        let base_target = Target::new(
            base.addr,
            Some(Signer {
                creds,
                region: "us-east-1".into(),
                service: "lambda",
            }),
        );
        let mut main = MainRun::default();
        measure_signing(&base_target, &mut main)?;
        let targets = vec![(
            BASELINE.to_string(),
            base_target.clone(),
            baseline_req(&base_target)?,
        )];
        measure(None, &targets, &plan, &mut main).await?;
        let report = Report {
            machine,
            quick: args.quick,
            plan_desc: format!("{plan:?}"),
            startup: Startup::default(),
            main,
            total: t_all.elapsed(),
        };
        println!("{}", report.markdown());
        return Ok(());
    }

    let bin = std::fs::canonicalize(&args.gust).with_context(|| {
        format!(
            "no gust binary at {} (cargo build --release -p gust-cli)",
            args.gust.display()
        )
    })?;
    progress(format!("benchmarking {}", bin.display()));
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .ok()
        .map(time::OffsetDateTime::from)
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let machine = machine::Machine {
        binary: format!("{} (built {built})", bin.display()),
        ..machine
    };
    let startup = startup_and_footprint(&bin, &plan).await?;

    progress("starting the main gust up and the bare hyper baseline");
    let g = tokio::task::block_in_place(|| Gust::start(&bin, &[]))?;
    let target = g.target()?;
    let base = baseline::start()?;
    progress(format!(
        "gust at {} (pid {}), baseline at http://{}",
        g.endpoint, g.pid, base.addr
    ));
    // The baseline is hit exactly like Gust: same client, same signed requests.
    let base_target = Target::new(
        base.addr,
        target.signer.as_ref().map(|s| Signer {
            creds: s.creds.clone(),
            region: s.region.clone(),
            service: s.service,
        }),
    );
    let mut main = MainRun::default();
    let result = async {
        measure_signing(&target, &mut main)?;
        cold_starts(&g, &target, &plan, &mut main).await?;
        let mut targets = vec![(
            BASELINE.to_string(),
            base_target.clone(),
            baseline_req(&base_target)?,
        )];
        targets.extend(hello_functions(&target).await?);
        measure(Some(&g), &targets, &plan, &mut main).await
    }
    .await;
    main.after = AfterLoad::snapshot(&g);
    if let Err(e) = result {
        return Err(e.context(format!("gust up log (last lines):\n{}", g.log_tail())));
    }
    main.shutdown_loaded = tokio::task::block_in_place(|| g.stop()).ok();

    let report = Report {
        machine,
        quick: args.quick,
        plan_desc: format!("{plan:?}"),
        startup,
        main,
        total: t_all.elapsed(),
    };
    let md = report.markdown();
    println!("{md}");
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("core.md"), &md)?;
    std::fs::write(
        args.out.join("core.json"),
        serde_json::to_string_pretty(&report.json())?,
    )?;
    progress(format!(
        "wrote {}/core.md and core.json in {:.0} s",
        args.out.display(),
        t_all.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Part 1: start-up time on empty data directories, idle RSS with nothing deployed and with the
/// hello functions deployed once their environments have been reaped.
async fn startup_and_footprint(bin: &std::path::Path, plan: &Plan) -> Result<Startup> {
    let mut out = Startup::default();
    for i in 0..plan.starts {
        // A short idle timeout so the footprint part below sees environments reaped quickly.
        let g = tokio::task::block_in_place(|| Gust::start(bin, &["--idle-timeout", "1"]))?;
        out.ready.push(g.ready_in);
        progress(format!("start {}: ready in {:?}", i + 1, g.ready_in));
        if i + 1 < plan.starts {
            out.shutdown_idle
                .push(tokio::task::block_in_place(|| g.stop())?);
            continue;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        out.rss_empty_kib = g.rss_kib();
        let target = g.target()?;
        let mut conn = Conn::connect(target).await?;
        for h in Hello::ALL {
            let name = format!("hello-{}", h.key());
            create_function(&mut conn, h, &name).await?;
            for _ in 0..3 {
                invoke_ok(&mut conn, &name)
                    .await
                    .map_err(|e| e.context(g.log_tail()))?;
            }
        }
        let envs = g.descendants();
        out.envs_after_invokes = envs.len();
        out.env_rss_kib = envs.iter().filter_map(|p| gust::rss_kib(*p)).sum();
        let t0 = Instant::now();
        while !g.descendants().is_empty() && t0.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        out.reaped_in = g.descendants().is_empty().then(|| t0.elapsed());
        tokio::time::sleep(Duration::from_secs(1)).await;
        out.rss_deployed_kib = g.rss_kib();
        drop(conn);
        out.shutdown_idle
            .push(tokio::task::block_in_place(|| g.stop())?);
    }
    progress(format!(
        "idle RSS {:?} KiB empty, {:?} KiB with hello functions (reaped in {:?})",
        out.rss_empty_kib, out.rss_deployed_kib, out.reaped_in
    ));
    Ok(out)
}

fn baseline_req(base: &Target) -> Result<Req> {
    Req::new(
        base,
        Method::POST,
        &invoke_path("hello"),
        &br#"{"name":"bench"}"#[..],
    )
}

/// What the client spends building and signing one Invoke request.
fn measure_signing(target: &Arc<Target>, out: &mut MainRun) -> Result<()> {
    let req = Req::new(
        target,
        Method::POST,
        &invoke_path("hello-python"),
        &br#"{"name":"bench"}"#[..],
    )?;
    let unsigned = Target::new(target.addr, None);
    let n = 20_000u32;
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(req.build_only(target));
    }
    out.sign_us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(req.build_only(&unsigned));
    }
    out.build_us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    progress(format!(
        "request build {:.2} µs, build + SigV4 sign {:.2} µs",
        out.build_us, out.sign_us
    ));
    Ok(())
}

/// Part 2: cold starts of fresh functions, interleaved, each deleted afterwards so that its
/// environment does not linger into the later parts.
async fn cold_starts(g: &Gust, target: &Arc<Target>, plan: &Plan, out: &mut MainRun) -> Result<()> {
    progress(format!(
        "cold starts: {} fresh functions per runtime",
        plan.cold_functions
    ));
    let mut conn = Conn::connect(target.clone()).await?;
    for i in 0..plan.cold_functions {
        for h in Hello::ALL {
            let name = format!("cold-{}-{i}", h.key());
            let create = create_function(&mut conn, h, &name).await?;
            let first = invoke_ok(&mut conn, &name).await?;
            let second = invoke_ok(&mut conn, &name).await?;
            delete_function(&mut conn, &name).await?;
            out.cold.entry(h.key()).or_default().push(ColdSample {
                create,
                first,
                second,
            });
        }
    }
    out.envs_after_cold = g.descendants().len();
    let c = |k: &str| {
        out.cold
            .get(k)
            .map(|v| median(&v.iter().map(|s| s.first).collect::<Vec<_>>()))
    };
    progress(format!(
        "cold start medians: python {:?}, node {:?}",
        c("python"),
        c("node")
    ));
    Ok(())
}

/// The functions for parts 3 and 4, created and checked once.
async fn hello_functions(target: &Arc<Target>) -> Result<Vec<(String, Arc<Target>, Req)>> {
    let mut conn = Conn::connect(target.clone()).await?;
    let mut out = Vec::new();
    for h in Hello::ALL {
        let name = format!("hello-{}", h.key());
        create_function(&mut conn, h, &name).await?;
        let reply = conn
            .call(
                Method::POST,
                &invoke_path(&name),
                &br#"{"name":"bench"}"#[..],
            )
            .await?;
        let body = reply.json()?;
        if body.get("statusCode").and_then(|v| v.as_i64()) != Some(200) {
            anyhow::bail!("{name} answered {}", reply.snippet());
        }
        out.push((
            h.key().to_string(),
            target.clone(),
            Req::new(
                target,
                Method::POST,
                &invoke_path(&name),
                &br#"{"name":"bench"}"#[..],
            )?,
        ));
    }
    Ok(out)
}

/// Parts 3 and 4: warm latency at concurrency 1, then throughput at each level.
async fn measure(
    g: Option<&Gust>,
    targets: &[(String, Arc<Target>, Req)],
    plan: &Plan,
    out: &mut MainRun,
) -> Result<()> {
    for (key, t, req) in targets {
        load(t, req, 1, Stop::Count(plan.warmup)).await?;
        let cpu0 = CpuSnapshot::take(g);
        let r = load(t, req, 1, Stop::Count(plan.warm_invokes)).await?;
        let cpu = cpu0.per_request_us(&CpuSnapshot::take(g), r.ok);
        let s = Summary::of(&r.latencies);
        progress(format!(
            "warm c=1 {key}: p50 {:.0} µs p99 {:.0} µs ({} ok, {} errors)",
            s.p50_us, s.p99_us, r.ok, r.errors
        ));
        let mut run = Run::from(key, 1, &r, None);
        run.cpu = Some(cpu);
        out.warm.push(run);
    }

    // Concurrency outermost, so each level sees all targets under the same conditions; each
    // cell is warmed first with bursts until one passes without a 429 or an error.
    for &c in &plan.levels {
        for (key, t, req) in targets {
            let mut warm = Warmup::default();
            let w0 = Instant::now();
            for _ in 0..10 {
                let r = load(t, req, c, Stop::Count((c as u64 * 4).max(plan.warmup / 4))).await?;
                warm.bursts += 1;
                warm.throttled += r.throttled;
                warm.errors += r.errors;
                if warm.first_error.is_none() {
                    warm.first_error = r.first_error.clone();
                }
                if r.throttled == 0 && r.errors == 0 {
                    break;
                }
            }
            warm.took = w0.elapsed();
            let envs = match g {
                Some(g) if key != BASELINE => Some((
                    g.environments_of(&format!("hello-{key}")),
                    g.descendants().len(),
                )),
                _ => None,
            };
            let cpu0 = CpuSnapshot::take(g);
            let r = load(t, req, c, Stop::For(plan.throughput_for)).await?;
            let cpu = cpu0.per_request_us(&CpuSnapshot::take(g), r.ok);
            let s = Summary::of(&r.latencies);
            progress(format!(
                "throughput c={c} {key}: {:.0}/s p50 {:.0} µs p99 {:.0} µs, {} throttled, {} errors (warm-up {:?}, {} bursts, {} throttled)",
                r.throughput(),
                s.p50_us,
                s.p99_us,
                r.throttled,
                r.errors,
                warm.took,
                warm.bursts,
                warm.throttled
            ));
            let mut run = Run::from(key, c, &r, Some(warm));
            run.processes = envs;
            run.cpu = Some(cpu);
            out.throughput.push(run);
        }
    }
    Ok(())
}
