//! Three nested `#[traced]` calls capturing their inputs and outputs, a new trace per outer
//! call (the shape of the Langfuse `@observe` anchor in issue 12), run `n` times into a queue
//! whose provider discards (flushed every 256 traces, untimed). Prints the wall time per
//! observation; under callgrind, counts the caller's instructions:
//!
//! ```text
//! cargo run --release -p ops-core --example callgrind_nested -- 300000
//! valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \
//!   --toggle-collect='*timed_chunk*' target/release/examples/callgrind_nested 10240
//! ```
use std::hint::black_box;
use std::time::Duration;

use ops_core::{TraceQueueManager, traced};
use ops_testkit::Discard;

#[traced]
#[inline(never)]
fn inner(x: u64) -> u64 {
    black_box(x) + 1
}

#[traced]
#[inline(never)]
fn middle(x: u64) -> u64 {
    inner(x) + 1
}

#[traced]
#[inline(never)]
fn outer(x: u64) -> u64 {
    middle(x) + 1
}

#[inline(never)]
fn timed_chunk(n: u64) {
    for i in 0..n {
        black_box(outer(i));
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10240);
    let queue = TraceQueueManager::builder()
        .interval(Duration::from_millis(10))
        .provider(Discard::default())
        .build()
        .expect("queue");
    ops_core::with_default(queue.clone(), || {
        let mut left = n;
        let mut took = Duration::ZERO;
        while left > 0 {
            let k = left.min(256);
            let start = std::time::Instant::now();
            timed_chunk(k);
            took += start.elapsed();
            queue.flush(Duration::from_secs(30));
            left -= k;
        }
        eprintln!(
            "{:.0} ns per observation",
            took.as_nanos() as f64 / (3 * n) as f64
        );
    });
    let stats = queue.stats();
    assert!(stats.dropped.iter().all(|(_, n)| *n == 0), "{stats:?}");
}
