//! `#[traced]` beside `tracing`, fastrace and the OpenTelemetry SDK, in one run (see the
//! crate's docs for the cases), then end to end against opentelemetry-otlp (see `e2e`).
//!
//! Run: `cargo bench -p ops-peers --bench peers -- --warm-up-time 1 --measurement-time 3`.

use criterion::{Criterion, criterion_group, criterion_main};
use ops_peers::{Case, Peers};

fn peers(c: &mut Criterion) {
    let mut peers = Peers::new();
    for (group, cases) in [("off", &Case::ALL[..4]), ("tree", &Case::ALL[4..])] {
        let mut g = c.benchmark_group(group);
        for &case in cases {
            g.bench_function(case.name(), |b| {
                b.iter_custom(|iters| peers.time(case, iters))
            });
        }
        g.finish();
    }
    eprint!("{}", peers.assert_no_drops());
}

/// Rounds of the end-to-end comparison (each side, alternating).
const ROUNDS: usize = 5;

fn end_to_end(_: &mut Criterion) {
    let (ops, peer) = ops_peers::e2e::run(
        env!("CARGO_BIN_EXE_peers-sink"),
        ROUNDS,
        ops_peers::e2e::TRACES,
    );
    eprintln!(
        "end_to_end: {} traces of {} spans with 1 KB inputs, OTLP HTTP protobuf + gzip, {ROUNDS} rounds each, median [min max]",
        ops_peers::e2e::TRACES,
        ops_peers::e2e::SPANS
    );
    for (name, rounds) in [("ops", &ops), ("opentelemetry-otlp (BSP)", &peer)] {
        let (m, lo, hi) = ops_peers::e2e::spread(rounds, |r| r.spans_per_sec);
        let (cm, clo, chi) = ops_peers::e2e::spread(rounds, |r| r.cpu_us_per_span);
        let (bm, _, _) = ops_peers::e2e::spread(rounds, |r| r.bytes_per_span);
        eprintln!(
            "  {name:<26} {m:>9.0} spans/s [{lo:.0} {hi:.0}]   CPU {cm:.2} µs/span [{clo:.2} {chi:.2}]   {bm:.0} B/span on the wire"
        );
    }
}

criterion_group!(benches, peers, end_to_end);
criterion_main!(benches);
