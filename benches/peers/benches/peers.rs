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
    eprint!(
        "{}",
        ops_peers::e2e::table(ROUNDS, ops_peers::e2e::TRACES, &ops, &peer)
    );
}

criterion_group!(benches, peers, end_to_end);
criterion_main!(benches);
