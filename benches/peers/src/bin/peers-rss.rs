//! Peak RSS with the backend down, one side per process (see `ops_peers::rss`).
//!
//! Usage: `peers-rss <ops|otel> <refuse|hang> [seconds] [traces_per_second] [ops_max_bytes]`
//! (default 10 s, 2,000 traces of 10 spans a second, ops's default queue of 64 MiB; `5300000`
//! holds about the SDK's 2,048 spans). Prints one line; the process exits without waiting for
//! its exporter, which would retry for minutes.

use std::process::ExitCode;

use ops_peers::rss::{self, Down, DownEndpoint};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: peers-rss <ops|otel> <refuse|hang> [seconds] [traces_per_second] [ops_max_bytes]";
    let down = match args.get(1).map(String::as_str) {
        Some("refuse") => Down::Refuse,
        Some("hang") => Down::Hang,
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let seconds: Option<f64> = args.get(2).map_or(Some(10.0), |a| a.parse().ok());
    let rate: Option<u64> = args.get(3).map_or(Some(2_000), |a| a.parse().ok());
    let max_bytes: Option<Option<usize>> = args
        .get(4)
        .map_or(Some(None), |a| a.parse().ok().filter(|n| *n > 0).map(Some));
    let Some(max_bytes) = max_bytes else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let (Some(seconds), Some(rate)) = (seconds.filter(|s| *s > 0.0), rate.filter(|r| *r > 0))
    else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let endpoint = DownEndpoint::start(down);
    let report = match args.first().map(String::as_str) {
        Some("ops") => rss::ops(&endpoint, seconds, rate, max_bytes),
        Some("otel") => rss::otel(&endpoint, seconds, rate),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    println!("{down:?} {seconds} s at {rate} traces/s: {report}");
    // The exporters would go on retrying (ops) or waiting for their timeouts (the SDK).
    std::process::exit(0);
}
