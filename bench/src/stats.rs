//! Latency summaries: percentiles over a sample of durations.

use std::time::Duration;

use serde_json::{json, Value};

/// Percentiles of one sample, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub count: usize,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub min_us: f64,
}

impl Summary {
    pub fn of(sample: &[Duration]) -> Summary {
        if sample.is_empty() {
            return Summary::default();
        }
        let mut ns: Vec<u64> = sample.iter().map(|d| d.as_nanos() as u64).collect();
        ns.sort_unstable();
        let us = |v: u64| v as f64 / 1_000.0;
        let q = |p: f64| {
            // Nearest rank: the smallest value with at least p of the sample at or below it.
            let rank = ((p * ns.len() as f64).ceil() as usize).clamp(1, ns.len());
            us(ns[rank - 1])
        };
        Summary {
            count: ns.len(),
            mean_us: us(ns.iter().sum::<u64>() / ns.len() as u64),
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: us(ns[ns.len() - 1]),
            min_us: us(ns[0]),
        }
    }

    pub fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "mean_us": round(self.mean_us),
            "min_us": round(self.min_us),
            "p50_us": round(self.p50_us),
            "p90_us": round(self.p90_us),
            "p99_us": round(self.p99_us),
            "p999_us": round(self.p999_us),
            "max_us": round(self.max_us),
        })
    }
}

/// Median of a small sample.
pub fn median(sample: &[Duration]) -> Duration {
    Duration::from_nanos(Summary::of(sample).p50_us.mul_add(1_000.0, 0.0) as u64)
}

pub fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A duration for humans: µs below 1 ms, ms below 10 s.
pub fn fmt_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.1} ms", us / 1_000.0)
    }
}

pub fn fmt_dur(d: Duration) -> String {
    fmt_us(d.as_nanos() as f64 / 1_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let m = Summary::of(&s);
        assert_eq!(m.p50_us, 50.0);
        assert_eq!(m.p90_us, 90.0);
        assert_eq!(m.p99_us, 99.0);
        assert_eq!(m.max_us, 100.0);
        assert_eq!(median(&s), Duration::from_micros(50));
    }
}
