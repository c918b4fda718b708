//! `#[traced]` beside `tracing`, fastrace and the OpenTelemetry SDK, in one run (see the
//! crate's docs for the cases).
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

criterion_group!(benches, peers);
criterion_main!(benches);
