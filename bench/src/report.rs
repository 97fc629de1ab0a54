//! The results of one run, rendered as a Markdown report and as raw JSON.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::LoadResult;
use crate::gust::Gust;
use crate::machine::Machine;
use crate::stats::{fmt_dur, fmt_us, median, round, Summary};

/// The key of the bare hyper baseline among the targets.
pub const BASELINE: &str = "baseline";

fn label(key: &str) -> &str {
    match key {
        BASELINE => "bare hyper hello (baseline)",
        "python" => "Gust, python3.11 hello",
        "node" => "Gust, nodejs20.x hello",
        other => other,
    }
}

#[derive(Debug, Default)]
pub struct Startup {
    pub ready: Vec<Duration>,
    pub shutdown_idle: Vec<Duration>,
    pub rss_empty_kib: Option<u64>,
    pub rss_deployed_kib: Option<u64>,
    pub envs_after_invokes: usize,
    pub env_rss_kib: u64,
    pub reaped_in: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
pub struct ColdSample {
    pub create: Duration,
    pub first: Duration,
    pub second: Duration,
}

#[derive(Debug, Default, Clone)]
pub struct Warmup {
    pub bursts: u32,
    pub throttled: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub took: Duration,
}

/// One load run against one target at one concurrency.
#[derive(Debug, Clone)]
pub struct Run {
    pub key: String,
    pub concurrency: usize,
    pub summary: Summary,
    pub ok: u64,
    pub throttled: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub throughput: f64,
    pub warmup: Option<Warmup>,
    /// Environments of this function, and all processes below `gust`, when the run started.
    pub processes: Option<(usize, usize)>,
    /// CPU µs per successful request: `gust`, its store writer thread (part of `gust`), its
    /// environments, the client, the baseline server.
    pub cpu: Option<[f64; 5]>,
}

impl Run {
    pub fn from(key: &str, concurrency: usize, r: &LoadResult, warmup: Option<Warmup>) -> Run {
        Run {
            key: key.to_string(),
            concurrency,
            summary: Summary::of(&r.latencies),
            ok: r.ok,
            throttled: r.throttled,
            errors: r.errors,
            first_error: r.first_error.clone(),
            elapsed: r.elapsed,
            throughput: r.throughput(),
            warmup,
            processes: None,
            cpu: None,
        }
    }

    fn json(&self) -> Value {
        json!({
            "target": self.key,
            "concurrency": self.concurrency,
            "ok": self.ok,
            "throttled": self.throttled,
            "errors": self.errors,
            "first_error": self.first_error,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "per_second": round(self.throughput),
            "latency": self.summary.to_json(),
            "environments_of_function": self.processes.map(|p| p.0),
            "processes_below_gust": self.processes.map(|p| p.1),
            "cpu_us_per_request": self.cpu.map(|c| json!({
                "gust": round(c[0]), "gust_store_writer": round(c[1]), "environments": round(c[2]),
                "client": round(c[3]), "baseline_server": round(c[4]),
            })),
            "warmup": self.warmup.as_ref().map(|w| json!({
                "bursts": w.bursts,
                "throttled": w.throttled,
                "errors": w.errors,
                "first_error": w.first_error,
                "took_ms": ms(w.took),
            })),
        })
    }
}

/// Memory once the load is over, environments still warm.
#[derive(Debug, Default, Clone, Copy)]
pub struct AfterLoad {
    pub gust_rss_kib: Option<u64>,
    pub environments: usize,
    pub environments_rss_kib: u64,
}

impl AfterLoad {
    pub fn snapshot(g: &Gust) -> AfterLoad {
        let envs = g.descendants();
        AfterLoad {
            gust_rss_kib: g.rss_kib(),
            environments: envs.len(),
            environments_rss_kib: envs.iter().filter_map(|p| crate::gust::rss_kib(*p)).sum(),
        }
    }
}

#[derive(Debug, Default)]
pub struct MainRun {
    pub build_us: f64,
    pub sign_us: f64,
    pub cold: BTreeMap<&'static str, Vec<ColdSample>>,
    pub envs_after_cold: usize,
    pub warm: Vec<Run>,
    pub throughput: Vec<Run>,
    pub after: AfterLoad,
    pub shutdown_loaded: Option<Duration>,
}

pub struct Report {
    pub machine: Machine,
    pub quick: bool,
    pub plan_desc: String,
    pub startup: Startup,
    pub main: MainRun,
    pub total: Duration,
}

fn ms(d: Duration) -> f64 {
    round(d.as_secs_f64() * 1e3)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn check(ok: bool) -> &'static str {
    if ok {
        "✅"
    } else {
        "❌"
    }
}

fn durs_json(v: &[Duration]) -> Value {
    json!(v.iter().map(|d| ms(*d)).collect::<Vec<_>>())
}

impl Report {
    fn cold_summary(&self, key: &str) -> Option<(Summary, Summary, Summary)> {
        let v = self.main.cold.get(key)?;
        let pick =
            |f: fn(&ColdSample) -> Duration| Summary::of(&v.iter().map(f).collect::<Vec<_>>());
        Some((pick(|s| s.create), pick(|s| s.first), pick(|s| s.second)))
    }

    fn warm(&self, key: &str) -> Option<&Run> {
        self.main.warm.iter().find(|r| r.key == key)
    }

    fn throughput(&self, key: &str, c: usize) -> Option<&Run> {
        self.main
            .throughput
            .iter()
            .find(|r| r.key == key && r.concurrency == c)
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let s = &self.startup;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# Gust core benchmark{}\n",
            if self.quick {
                " (quick run: smoke test, not for comparison)"
            } else {
                ""
            }
        );
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
            crate::machine::loadavg(),
            self.total.as_secs_f64()
        );

        // 1. start-up and footprint
        let ready = median(&s.ready);
        let ready_max = s.ready.iter().max().copied().unwrap_or_default();
        let ready_min = s.ready.iter().min().copied().unwrap_or_default();
        let _ = writeln!(o, "## Start-up and footprint\n");
        let _ = writeln!(o, "| Measure | Result | Target |\n|---|---|---|");
        let _ = writeln!(
            o,
            "| `gust up` spawn → ready file, empty data dir (median of {}) | {} (min {}, max {}) | ≤ 100 ms {} |",
            s.ready.len(),
            fmt_dur(ready),
            fmt_dur(ready_min),
            fmt_dur(ready_max),
            check(ready <= Duration::from_millis(100))
        );
        let rss_ok = |k: Option<u64>| k.is_some_and(|k| k <= 60 * 1024);
        let _ = writeln!(
            o,
            "| Idle RSS, nothing deployed (1 s after ready) | {} | ≤ 60 MB {} |",
            mib(s.rss_empty_kib),
            check(rss_ok(s.rss_empty_kib))
        );
        let _ = writeln!(
            o,
            "| Idle RSS, both hello functions deployed and invoked, environments reaped | {} | ≤ 60 MB {} |",
            mib(s.rss_deployed_kib),
            check(rss_ok(s.rss_deployed_kib))
        );
        let _ = writeln!(
            o,
            "| Environments of the two hello functions (RSS, all processes) | {} processes, {} | |",
            s.envs_after_invokes,
            mib(Some(s.env_rss_kib))
        );
        let _ = writeln!(
            o,
            "| All environments gone after the last invoke (`--idle-timeout 1`) | {} | |",
            s.reaped_in.map_or("not within 20 s".into(), fmt_dur)
        );
        let _ = writeln!(
            o,
            "| Shutdown, idle (SIGTERM → exit, median) | {} | |",
            fmt_dur(median(&s.shutdown_idle))
        );
        let a = &self.main.after;
        let _ = writeln!(
            o,
            "| After the throughput runs: `gust` RSS / warm environments | {} / {} processes, {} | |",
            mib(a.gust_rss_kib),
            a.environments,
            mib(Some(a.environments_rss_kib))
        );
        let _ = writeln!(
            o,
            "| Shutdown with those environments warm | {} | |",
            self.main.shutdown_loaded.map_or("failed".into(), fmt_dur)
        );

        // 2. cold starts
        let n_cold = self.main.cold.values().next().map_or(0, Vec::len);
        let _ = writeln!(
            o,
            "\n## Cold start: fresh function, first Invoke end to end ({n_cold} functions each)\n"
        );
        let _ = writeln!(o, "| Function | CreateFunction p50 | First invoke p50 | First invoke p90 | Second invoke p50 | Target (p50) |\n|---|---|---|---|---|---|");
        for (key, target_ms) in [("python", 80.0), ("node", 130.0)] {
            if let Some((create, first, second)) = self.cold_summary(key) {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | ≤ {target_ms:.0} ms {} |",
                    label(key),
                    fmt_us(create.p50_us),
                    fmt_us(first.p50_us),
                    fmt_us(first.p90_us),
                    fmt_us(second.p50_us),
                    check(first.p50_us <= target_ms * 1e3)
                );
            }
        }

        // 3. warm latency
        let base = self.warm(BASELINE).map(|r| r.summary);
        let n = self.warm(BASELINE).map_or(0, |r| r.ok);
        let _ = writeln!(
            o,
            "\n## Warm invoke latency, concurrency 1 ({n} requests after warm-up)\n"
        );
        let _ = writeln!(o, "| Target | p50 | p90 | p99 | p99.9 | max | Added over baseline p50 / p99 | Target |\n|---|---|---|---|---|---|---|---|");
        for key in [BASELINE, "python", "node"] {
            let Some(r) = self.warm(key) else { continue };
            let x = r.summary;
            let (added, verdict) = match (key, base) {
                (BASELINE, _) | (_, None) => ("–".to_string(), String::new()),
                (_, Some(b)) => {
                    let (d50, d99) = (x.p50_us - b.p50_us, x.p99_us - b.p99_us);
                    (
                        format!("+{} / +{}", fmt_us(d50), fmt_us(d99)),
                        format!(
                            "≤ 1 ms / ≤ 3 ms {}",
                            check(d50 <= 1_000.0 && d99 <= 3_000.0)
                        ),
                    )
                }
            };
            let errs = if r.errors + r.throttled > 0 {
                format!(" ({} errors, {} throttled)", r.errors, r.throttled)
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "| {}{errs} | {} | {} | {} | {} | {} | {added} | {verdict} |",
                label(key),
                fmt_us(x.p50_us),
                fmt_us(x.p90_us),
                fmt_us(x.p99_us),
                fmt_us(x.p999_us),
                fmt_us(x.max_us)
            );
        }
        let _ = writeln!(
            o,
            "\nClient cost per request: building it {:.1} µs, building and SigV4-signing it {:.1} µs (included in every latency above, baseline too).",
            self.main.build_us, self.main.sign_us
        );

        // 4. throughput
        let secs = self
            .main
            .throughput
            .first()
            .map_or(0.0, |r| r.elapsed.as_secs_f64());
        let _ = writeln!(o, "\n## Throughput (about {secs:.0} s per cell, one keep-alive connection per concurrent client)\n");
        let _ = writeln!(o, "| Target | Concurrency | Requests/s | vs baseline | p50 | p99 | 429s | Errors | Environments | Warm-up |\n|---|---|---|---|---|---|---|---|---|---|");
        let mut levels: Vec<usize> = self.main.throughput.iter().map(|r| r.concurrency).collect();
        levels.dedup();
        for c in levels {
            for key in [BASELINE, "python", "node"] {
                let Some(r) = self.throughput(key, c) else {
                    continue;
                };
                let ratio = match self.throughput(BASELINE, c) {
                    Some(b) if key != BASELINE && b.throughput > 0.0 => {
                        format!("{:.3} ×", r.throughput / b.throughput)
                    }
                    _ => "–".into(),
                };
                let warm = r.warmup.as_ref().map_or(String::new(), |w| {
                    let mut s = format!(
                        "{} in {} burst{}",
                        fmt_dur(w.took),
                        w.bursts,
                        if w.bursts == 1 { "" } else { "s" }
                    );
                    if w.throttled > 0 || w.errors > 0 {
                        let _ = write!(s, ", {} throttled, {} errors", w.throttled, w.errors);
                    }
                    s
                });
                let _ = writeln!(
                    o,
                    "| {} | {c} | {:.0} | {ratio} | {} | {} | {} | {} | {} | {warm} |",
                    label(key),
                    r.throughput,
                    fmt_us(r.summary.p50_us),
                    fmt_us(r.summary.p99_us),
                    r.throttled,
                    r.errors,
                    r.processes
                        .map_or("–".into(), |(f, all)| format!("{f} (of {all})")),
                );
            }
        }
        let _ = writeln!(
            o,
            "\nEnvironments: the function's environments (and all processes below `gust`) when the measured run started; at most 64 live in all (`--max-concurrency 64`), idle ones of other functions are evicted to make room. Warm-up: bursts of 4 requests per connection until one passes with no 429 and no error."
        );
        let _ = writeln!(
            o,
            "\n## Where the CPU goes (µs of CPU per request, measured runs; 2 cores = 2,000,000 µs/s)\n"
        );
        let _ = writeln!(o, "| Target | Concurrency | `gust` | of which store writer | environments | client (incl. signing) | baseline server | total |\n|---|---|---|---|---|---|---|---|");
        for r in self.main.warm.iter().chain(&self.main.throughput) {
            let Some(c) = r.cpu else { continue };
            let cell = |v: f64| {
                if v >= 0.5 {
                    format!("{v:.0}")
                } else {
                    "–".into()
                }
            };
            let _ = writeln!(
                o,
                "| {} | {}{} | {} | {} | {} | {} | {} | {:.0} |",
                label(&r.key),
                r.concurrency,
                if r.warmup.is_none() {
                    " (latency run)"
                } else {
                    ""
                },
                cell(c[0]),
                cell(c[1]),
                cell(c[2]),
                cell(c[3]),
                cell(c[4]),
                c[0] + c[2] + c[3] + c[4]
            );
        }
        let errors: Vec<String> = self
            .main
            .throughput
            .iter()
            .chain(&self.main.warm)
            .filter_map(|r| {
                let (when, e) = match (
                    &r.first_error,
                    r.warmup.as_ref().and_then(|w| w.first_error.as_ref()),
                ) {
                    (Some(e), _) => ("measured run", e),
                    (None, Some(e)) => ("warm-up", e),
                    (None, None) => return None,
                };
                Some(format!(
                    "- {} at concurrency {} ({when}): {}",
                    label(&r.key),
                    r.concurrency,
                    e.replace('\n', " ")
                ))
            })
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(o, "\nFirst error seen per cell:\n\n{}", errors.join("\n"));
        }
        o
    }

    pub fn json(&self) -> Value {
        let s = &self.startup;
        let cold: serde_json::Map<String, Value> = self
            .main
            .cold
            .iter()
            .map(|(k, v)| {
                let (create, first, second) = self.cold_summary(k).unwrap_or_default();
                (
                    k.to_string(),
                    json!({
                        "create": create.to_json(),
                        "first_invoke": first.to_json(),
                        "second_invoke": second.to_json(),
                        "samples_ms": v.iter().map(|c| json!({"create": ms(c.create), "first": ms(c.first), "second": ms(c.second)})).collect::<Vec<_>>(),
                    }),
                )
            })
            .collect();
        json!({
            "machine": self.machine.to_json(),
            "quick": self.quick,
            "plan": self.plan_desc,
            "total_s": self.total.as_secs_f64(),
            "startup": {
                "ready_ms": durs_json(&s.ready),
                "ready_median_ms": ms(median(&s.ready)),
                "shutdown_idle_ms": durs_json(&s.shutdown_idle),
                "rss_empty_kib": s.rss_empty_kib,
                "rss_deployed_reaped_kib": s.rss_deployed_kib,
                "hello_environments": s.envs_after_invokes,
                "hello_environments_rss_kib": s.env_rss_kib,
                "reaped_in_ms": s.reaped_in.map(ms),
            },
            "client": { "build_us": round(self.main.build_us), "build_and_sign_us": round(self.main.sign_us) },
            "cold_start": cold,
            "processes_after_cold_starts": self.main.envs_after_cold,
            "warm_c1": self.main.warm.iter().map(Run::json).collect::<Vec<_>>(),
            "throughput": self.main.throughput.iter().map(Run::json).collect::<Vec<_>>(),
            "after_load": {
                "gust_rss_kib": self.main.after.gust_rss_kib,
                "environments": self.main.after.environments,
                "environments_rss_kib": self.main.after.environments_rss_kib,
                "shutdown_ms": self.main.shutdown_loaded.map(ms),
            },
        })
    }
}
