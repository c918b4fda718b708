//! Benches of the trace queue (criterion, `harness = false`).
//!
//! ```text
//! cargo bench -p ops-core --bench queue -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! - `enqueue/*`: what `add_trace_task` costs the caller's thread for a small trace (one
//!   observation), next to baselines. Tasks are built before the clock starts; the timed loop
//!   only moves each one into its destination. The worker runs meanwhile (a 1 ms interval and
//!   a wake-up per 100 tasks), as it would in an app. Target: ≤ 150 ns.
//! - `throughput/*`: traces of 10 observations enqueued and flushed through a provider that
//!   accepts everything, counted in observations. Target: ≥ 1 M observations/s.
//! - `burst/*`: a burst of 100,000 `#[traced]` traces (a root capturing its input and output
//!   with two such children: 300,000 observations) made by 1, 2 and 4 producer threads at
//!   once, timed until the provider has every trace; counted in observations. Target: ≥ 1 M
//!   observations/s and no drop. The queue holds the whole burst: 131,072 items and 1 GiB
//!   (a queued trace of this shape counts about 6 KB against the budget, so the default 64 MiB
//!   holds about 11,000 of them; `tests/burst.rs` checks a burst within the default budget
//!   drops nothing). The first line printed gives the bytes a queued trace counts.

mod shared;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ops_core::{TraceQueueManager, TraceTask};
use ops_testkit::Discard;
use shared::{CHUNK, timed, trace};

fn queue(providers: usize) -> TraceQueueManager {
    queue_with(providers, Duration::from_millis(1), 100)
}

fn queue_with(providers: usize, interval: Duration, batch_size: usize) -> TraceQueueManager {
    let mut builder = TraceQueueManager::builder()
        .interval(interval)
        .batch_size(batch_size)
        .max_queue(1 << 17, 1 << 30);
    for _ in 0..providers {
        builder = builder.provider(Discard::default());
    }
    builder.build().expect("queue")
}

fn enqueue(c: &mut Criterion) {
    let template = trace(1);
    let mut group = c.benchmark_group("enqueue");

    // Baseline: moving the task into a pre-allocated Vec, the least any hand-off can cost.
    group.bench_function("baseline_vec_push", |b| {
        let mut sink: Vec<TraceTask> = Vec::with_capacity(CHUNK as usize);
        b.iter_custom(|iters| {
            timed(
                iters,
                &template,
                &mut sink,
                |sink, task| sink.push(black_box(task)),
                |sink| sink.clear(),
            )
        });
    });

    // `worker_parked`: the worker sleeps through the timed loop (no wake-up, no tick), so
    // the caller never contends with it: the cost of enqueue alone. The others run as in an app.
    for (name, queue) in [
        ("no_provider", queue(0)),
        ("noop_provider", queue(1)),
        (
            "noop_provider_worker_parked",
            queue_with(1, Duration::from_secs(3600), CHUNK as usize + 1),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    &template,
                    &mut (),
                    |(), task| {
                        let _ = black_box(queue.add_trace_task(task));
                    },
                    |()| {
                        queue.flush(Duration::from_secs(30));
                    },
                )
            });
        });
        let stats = queue.stats();
        assert_eq!(stats.dropped_total(), 0, "{name}: the bench must not drop");
        eprintln!(
            "enqueue/{name}: enqueued {}, exported {}",
            stats.enqueued, stats.exported
        );
    }
    group.finish();
}

fn throughput(c: &mut Criterion) {
    const OBSERVATIONS: usize = 10;
    let mut group = c.benchmark_group("throughput");
    group.sample_size(20);
    for traces in [1_000_u64, 5_000] {
        let template = trace(OBSERVATIONS);
        let queue = queue(1);
        group.throughput(Throughput::Elements(traces * OBSERVATIONS as u64));
        // Measured: enqueue `traces` pre-built tasks, then `flush` until the worker has
        // preprocessed, batched and delivered all of them to the no-op provider.
        group.bench_function(format!("{traces}x{OBSERVATIONS}_obs"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let tasks: Vec<TraceTask> = (0..traces)
                        .map(|_| TraceTask::from_trace(template.clone()))
                        .collect();
                    let before = queue.stats().exported;
                    let start = Instant::now();
                    for task in tasks {
                        queue.add_trace_task(task).expect("queue has room");
                    }
                    let report = queue.flush(Duration::from_secs(30));
                    total += start.elapsed();
                    assert!(!report.timed_out, "{report:?}");
                    assert_eq!(queue.stats().exported - before, traces);
                }
                total
            });
        });
        assert_eq!(queue.stats().dropped_total(), 0);
    }
    group.finish();
}

#[ops_core::traced]
fn burst_child(x: u64) -> u64 {
    black_box(x).wrapping_mul(3)
}

#[ops_core::traced]
fn burst_root(x: u64) -> u64 {
    burst_child(x) ^ burst_child(x + 1)
}

fn burst(c: &mut Criterion) {
    const TRACES: u64 = 100_000;
    const OBSERVATIONS: u64 = 3;
    let mut group = c.benchmark_group("burst");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TRACES * OBSERVATIONS));
    let queue = TraceQueueManager::builder()
        .max_queue(1 << 17, 1 << 30)
        .interval(Duration::from_secs(3600))
        .provider(Discard::default())
        .build()
        .expect("queue");
    ops_core::with_default(queue.clone(), || black_box(burst_root(0)));
    eprintln!(
        "burst: one queued trace counts {} bytes",
        queue.stats().held_bytes
    );
    queue.flush(Duration::from_secs(10));
    for producers in [1_u64, 2, 4] {
        group.bench_function(format!("{producers}_producers"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let before = queue.stats().exported;
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for p in 0..producers {
                            let queue = queue.clone();
                            s.spawn(move || {
                                ops_core::with_default(queue, || {
                                    for i in 0..TRACES / producers {
                                        black_box(burst_root(p * TRACES + i));
                                    }
                                })
                            });
                        }
                    });
                    let report = queue.flush(Duration::from_secs(60));
                    total += start.elapsed();
                    assert!(!report.timed_out, "{report:?}");
                    let stats = queue.stats();
                    assert_eq!(
                        stats.dropped_total(),
                        0,
                        "burst/{producers}: dropped {stats:?}"
                    );
                    assert_eq!(stats.exported - before, TRACES, "{stats:?}");
                }
                total
            });
        });
    }
    let stats = queue.stats();
    eprintln!(
        "burst: enqueued {}, exported {}, dropped {}",
        stats.enqueued,
        stats.exported,
        stats.dropped_total()
    );
    group.finish();
}

criterion_group!(benches, enqueue, throughput, burst);
criterion_main!(benches);
