//! Figures and switches shared by the experiments: the long and strict modes, seeds, the one
//! summary line each experiment prints, and percentiles.

use std::fmt::Display;
use std::io::Write as _;

/// `OPS_TORTURE_LONG=1`: more kills, more traces, bigger cases.
pub const LONG_ENV: &str = "OPS_TORTURE_LONG";
/// `OPS_TORTURE_STRICT_LATENCY=1`: assert the wall-clock goals (enqueue ≤ 50 µs, ...).
pub const STRICT_LATENCY_ENV: &str = "OPS_TORTURE_STRICT_LATENCY";
/// `OPS_TORTURE_SEED=<u64>`: replay a run with this seed instead of a fresh one.
pub const SEED_ENV: &str = "OPS_TORTURE_SEED";
/// `OPS_TORTURE_SUMMARY=<file>`: also append every summary line to this file.
pub const SUMMARY_ENV: &str = "OPS_TORTURE_SUMMARY";

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// Whether the long variants run.
pub fn long() -> bool {
    flag(LONG_ENV)
}

/// Whether the wall-clock goals are asserted.
pub fn strict_latency() -> bool {
    flag(STRICT_LATENCY_ENV)
}

/// `default`, or `long` under `OPS_TORTURE_LONG=1`.
pub fn scale<T>(default: T, long_value: T) -> T {
    if long() { long_value } else { default }
}

/// The seed of an experiment: `OPS_TORTURE_SEED` when set, else a fresh one. Printed, so a
/// failing run can be replayed.
pub fn seed(experiment: &str) -> u64 {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ u64::from(std::process::id()).rotate_left(32)
        });
    eprintln!("TORTURE {experiment}: seed {seed} (replay with {SEED_ENV}={seed})");
    seed
}

/// Prints the experiment's summary line, `TORTURE <experiment>: key=value ...`, to stderr
/// (shown with `--nocapture`, and with a failure) and appends it to `OPS_TORTURE_SUMMARY`.
pub fn summary(experiment: &str, figures: &[(&str, &dyn Display)]) -> String {
    let mut line = format!("TORTURE {experiment}:");
    for (k, v) in figures {
        line.push_str(&format!(" {k}={v}"));
    }
    eprintln!("{line}");
    if let Ok(path) = std::env::var(SUMMARY_ENV)
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
    line
}

/// The `p`-th percentile (0..=100) of sorted values, nearest rank; 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in nanoseconds as microseconds with one decimal.
pub fn us(ns: u64) -> String {
    format!("{:.1}us", ns as f64 / 1000.0)
}

/// KiB as MB with one decimal.
pub fn mb(kib: u64) -> String {
    format!("{:.1}MB", kib as f64 * 1024.0 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[7], 99.0), 7);
    }
}
