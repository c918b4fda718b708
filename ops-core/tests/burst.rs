//! A burst of `#[traced]` traces that fits the default byte budget is delivered whole: nothing
//! is dropped while producers on several threads outrun the worker.

use std::hint::black_box;
use std::time::Duration;

use ops_core::{QueueConfig, TraceQueueManager, traced};
use ops_testkit::Discard;

#[traced]
fn child(x: u64) -> u64 {
    black_box(x).wrapping_mul(3)
}

#[traced]
fn root(x: u64) -> u64 {
    child(x) ^ child(x + 1)
}

#[test]
fn a_burst_inside_the_default_byte_budget_drops_nothing() {
    // What one queued trace of this shape counts, read while the worker sleeps.
    let probe = TraceQueueManager::builder()
        .interval(Duration::from_secs(3600))
        .provider(Discard::default())
        .build()
        .unwrap();
    ops_core::with_default(probe.clone(), || black_box(root(0)));
    let per_trace = probe.stats().held_bytes as usize;
    assert!(per_trace > 0);
    drop(probe);

    let defaults = QueueConfig::default();
    // Nine tenths of what the budget holds, made by 4 threads at once: the queue must hold
    // all of it even if the worker took none meanwhile.
    let burst = (defaults.max_bytes / per_trace * 9 / 10).min(defaults.max_items * 9 / 10);
    assert!(
        burst >= 5_000,
        "the default budget holds only {burst} traces of {per_trace} bytes"
    );
    let queue = TraceQueueManager::builder()
        .provider(Discard::default())
        .build()
        .unwrap();
    let producers = 4;
    std::thread::scope(|s| {
        for p in 0..producers {
            let queue = queue.clone();
            s.spawn(move || {
                ops_core::with_default(queue, || {
                    for i in 0..burst / producers {
                        black_box(root((p * burst + i) as u64));
                    }
                })
            });
        }
    });
    let report = queue.flush(Duration::from_secs(60));
    let stats = queue.stats();
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(stats.dropped_total(), 0, "{stats:?}");
    assert_eq!(
        stats.exported,
        (burst / producers * producers) as u64,
        "{stats:?}"
    );
}
