//! The end-to-end comparison alone, outside criterion, for profiling one side at a time.
//!
//! Usage: `peers-e2e [both|ops|otel] [rounds] [traces]` (default: `both 5 2000`). The sink is
//! the `peers-sink` binary beside this one.
//!
//! `peers-e2e levels [traces]` prints bytes and time per span of ops's request bodies at each
//! gzip level; `peers-e2e encode [times] [traces]` only encodes and gzips ops's batches `times`
//! times (the export's CPU work without the network, for callgrind or perf).

use std::process::ExitCode;

use ops_peers::e2e::{self, Sides};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("levels") => {
            let traces = args
                .get(1)
                .and_then(|a| a.parse().ok())
                .unwrap_or(e2e::TRACES);
            print!("{}", e2e::gzip_levels(traces, &[1, 2, 3, 4, 5, 6, 9]));
            return ExitCode::SUCCESS;
        }
        Some("encode") => {
            let times = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
            let traces = args
                .get(2)
                .and_then(|a| a.parse().ok())
                .unwrap_or(e2e::TRACES);
            let batches = e2e::ops_batches(traces);
            let bytes = e2e::encode_only(&batches, times);
            println!("{bytes} bytes");
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let sides = match args.first().map(String::as_str).unwrap_or("both") {
        "both" => Sides::Both,
        "ops" => Sides::Ops,
        "otel" => Sides::Otel,
        other => {
            eprintln!("usage: peers-e2e [both|ops|otel] [rounds] [traces]; not `{other}`");
            return ExitCode::from(2);
        }
    };
    let number = |i: usize, default: usize| -> Option<usize> {
        args.get(i).map_or(Some(default), |a| a.parse().ok())
    };
    let (Some(rounds), Some(traces)) = (number(1, 5), number(2, e2e::TRACES)) else {
        eprintln!("rounds and traces are whole numbers");
        return ExitCode::from(2);
    };
    let Some(sink) = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.join("peers-sink")))
    else {
        eprintln!("cannot find peers-sink beside this binary");
        return ExitCode::from(2);
    };
    let (ops, peer) = e2e::run_sides(&sink.to_string_lossy(), rounds, traces, sides);
    print!("{}", e2e::table(rounds, traces, &ops, &peer));
    ExitCode::SUCCESS
}
