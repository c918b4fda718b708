//! What `#[traced]` costs the caller.
//!
//! - `off`: nothing installed anywhere (one relaxed atomic load), against the same plain fn.
//! - `on_capture_off`: a queue with a no-op provider; a traced call with `skip_all,
//!   capture_output = false`, as a child inside an open root (the per-observation cost, parts
//!   of 512 included) and as a root (a whole trace queued per call).
//! - `unsampled`: the process's sample rate at 0: a callee inside an unsampled root, and an
//!   unsampled root (the sampling draw included).
//! - `capture_10kb`: a child capturing a 10 KB chat request by reference (cloned now,
//!   serialized on the worker), one capturing it by serializing now, and
//!   `serde_json::to_string` / `to_value` of the same value, in the same run.
//!
//! - `vs_fastrace` / `off` (`tracing_instrument`): the same bare function under fastrace's
//!   `#[trace]` (with a reporter that discards) and under `tracing`'s `#[instrument]` with no
//!   subscriber, next to `#[traced]`, in the same run. The `vs_fastrace` cases start a root
//!   every 256 calls (fastrace keeps at most 10240 spans per root on a thread) and report the
//!   time per call, the root's share included.
//!
//! The `*_worker_idle` groups repeat some cases with the worker asleep through the timed loop
//! (an hour's interval): on a 2-core machine the worker otherwise competes with the caller for
//! a core, and the numbers then include that competition.
//!
//! No case measures a drop: calls are timed in chunks of 4,096, the queue is flushed between
//! chunks outside the measurement, and every group asserts at its end that its queue dropped
//! nothing and delivered everything (fastrace too: its reporter counts every span made).
//!
//! Run: `cargo bench -p ops-core --bench traced -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ops_core::{TraceQueueManager, traced};
use ops_testkit::Discard;
use serde::Serialize;

/// Calls timed between two untimed flushes: a flush empties the queue, so the queue never
/// fills up during a measurement.
const CHUNK: u64 = 4_096;

/// A queue with a no-op provider and room for many chunks: a bench that drops measures the
/// drop, not the call, so every group asserts 0 drops at its end.
fn queue() -> TraceQueueManager {
    queue_with(Duration::from_millis(10), 100)
}

fn queue_with(interval: Duration, batch_size: usize) -> TraceQueueManager {
    TraceQueueManager::builder()
        .interval(interval)
        .batch_size(batch_size)
        .max_queue(1 << 20, 1 << 32)
        .provider(Discard::default())
        .build()
        .expect("queue")
}

/// A queue whose worker sleeps through the timed loop (an hour's interval, a batch larger
/// than a chunk): on a 2-core machine the worker otherwise competes with the caller for a
/// core. Flushes between chunks, untimed, empty it.
fn idle_worker_queue() -> TraceQueueManager {
    queue_with(Duration::from_secs(3600), CHUNK as usize * 2)
}

/// Times `iters` calls in chunks of [`CHUNK`]: `chunk(n)` makes `n` calls and returns the time
/// they took; the queue is flushed after each chunk, outside the measurement.
fn chunked(
    queue: &TraceQueueManager,
    iters: u64,
    mut chunk: impl FnMut(u64) -> Duration,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        left -= n;
        total += chunk(n);
        let report = queue.flush(Duration::from_secs(30));
        assert!(!report.timed_out, "the flush timed out: {report:?}");
    }
    total
}

/// Times `n` calls of `call`.
fn time_calls(n: u64, mut call: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        call();
    }
    start.elapsed()
}

/// Times `n` calls of `call` made as children of one open root (the root's own cost untimed).
fn time_children(n: u64, call: impl FnMut()) -> Duration {
    let mut took = Duration::ZERO;
    open_root(|| took = time_calls(n, call));
    took
}

/// Panics unless the queue delivered everything it was given, and prints its counts.
fn assert_no_drops(group: &str, queue: &TraceQueueManager) {
    let report = queue.flush(Duration::from_secs(30));
    assert!(
        !report.timed_out,
        "{group}: the flush timed out: {report:?}"
    );
    let stats = queue.stats();
    eprintln!(
        "{group}: enqueued {}, exported {} ({} observations), dropped {}",
        stats.enqueued,
        stats.exported,
        stats.exported_observations,
        stats.dropped_total()
    );
    assert_eq!(
        stats.dropped_total(),
        0,
        "{group}: the bench dropped: {stats:?}"
    );
    assert_eq!(
        stats.enqueued, stats.exported,
        "{group}: not all delivered: {stats:?}"
    );
}

#[inline(never)]
fn plain(a: u64, b: u64) -> u64 {
    black_box(a).wrapping_add(b)
}

#[traced]
#[inline(never)]
fn traced_full(a: u64, b: u64) -> u64 {
    black_box(a).wrapping_add(b)
}

#[traced(skip_all, capture_output = false)]
#[inline(never)]
fn traced_bare(a: u64, b: u64) -> u64 {
    black_box(a).wrapping_add(b)
}

#[traced(skip_all, capture_output = false)]
fn open_root(f: impl FnOnce()) {
    f()
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn instrumented(a: u64, b: u64) -> u64 {
    black_box(a).wrapping_add(b)
}

#[fastrace::trace]
#[inline(never)]
fn fastraced(a: u64, b: u64) -> u64 {
    black_box(a).wrapping_add(b)
}

/// Spans fastrace handed to the reporter: compared with the spans made, it shows fastrace
/// dropped nothing either.
static FASTRACE_REPORTED: AtomicU64 = AtomicU64::new(0);

/// Counts and discards what fastrace collects, as the no-op provider does for `#[traced]`.
struct DiscardSpans;

impl fastrace::collector::Reporter for DiscardSpans {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        FASTRACE_REPORTED.fetch_add(spans.len() as u64, Ordering::Relaxed);
        black_box(spans);
    }
}

/// Roots are started every `ROOT_EVERY` calls (fastrace keeps at most 10240 spans per root on a
/// thread).
const ROOT_EVERY: u64 = 256;

/// Times `n` calls of `call`, made under a root started every [`ROOT_EVERY`] calls by `root`,
/// the roots' cost included.
fn per_call_with_roots(n: u64, root: impl Fn(&dyn Fn()), call: impl Fn()) -> Duration {
    let start = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(ROOT_EVERY);
        root(&|| {
            for _ in 0..k {
                call();
            }
        });
        left -= k;
    }
    start.elapsed()
}

#[derive(Debug, Clone, Serialize)]
struct Message {
    role: String,
    content: String,
}

#[derive(Debug, Clone, Serialize)]
struct ChatRequest {
    model: String,
    temperature: f32,
    messages: Vec<Message>,
}

/// The same request, not `Clone`: `#[traced]` can only serialize it now.
#[derive(Debug, Serialize)]
struct ChatRequestNoClone(ChatRequest);

fn request_10kb() -> ChatRequest {
    ChatRequest {
        model: "gpt-4o-mini".into(),
        temperature: 0.2,
        messages: vec![
            Message {
                role: "system".into(),
                content: "You are a helpful assistant.".into(),
            },
            Message {
                role: "user".into(),
                content: "lorem ipsum dolor sit amet ".repeat(10 * 1024 / 27),
            },
        ],
    }
}

#[traced(kind = "generation", capture_output = false)]
#[inline(never)]
fn capture_later(request: &ChatRequest) -> usize {
    request.messages.len()
}

#[traced(kind = "generation", capture_output = false)]
#[inline(never)]
fn capture_now(request: &ChatRequestNoClone) -> usize {
    request.0.messages.len()
}

fn off(c: &mut Criterion) {
    assert!(!ops_core::is_enabled(), "the off group must run first");
    let mut g = c.benchmark_group("off");
    g.bench_function("plain_fn", |b| b.iter(|| plain(black_box(1), black_box(2))));
    g.bench_function("traced_fn", |b| {
        b.iter(|| traced_full(black_box(1), black_box(2)))
    });
    g.bench_function("tracing_instrument", |b| {
        b.iter(|| instrumented(black_box(1), black_box(2)))
    });
    g.finish();
}

fn vs_fastrace(c: &mut Criterion) {
    let queue = queue();
    let _guard = ops_core::set_default(queue.clone());
    fastrace::set_reporter(DiscardSpans, fastrace::collector::Config::default());
    let mut made = 0_u64;
    let mut g = c.benchmark_group("vs_fastrace");
    g.bench_function("plain_fn", |b| b.iter(|| plain(black_box(1), black_box(2))));
    g.bench_function("traced_child_root_every_256", |b| {
        b.iter_custom(|iters| {
            chunked(&queue, iters, |n| {
                per_call_with_roots(
                    n,
                    |f| open_root(f),
                    || {
                        traced_bare(black_box(1), black_box(2));
                    },
                )
            })
        })
    });
    g.bench_function("fastrace_child_root_every_256", |b| {
        b.iter_custom(|iters| {
            made += iters + iters.div_ceil(ROOT_EVERY);
            let took = per_call_with_roots(
                iters,
                |f| {
                    let root =
                        fastrace::Span::root("open_root", fastrace::prelude::SpanContext::random());
                    let _parent = root.set_local_parent();
                    f();
                },
                || {
                    fastraced(black_box(1), black_box(2));
                },
            );
            fastrace::flush();
            took
        })
    });
    g.finish();
    assert_no_drops("vs_fastrace", &queue);
    fastrace::flush();
    let reported = FASTRACE_REPORTED.load(Ordering::Relaxed);
    eprintln!("vs_fastrace: fastrace made {made} spans, reported {reported}");
    assert_eq!(reported, made, "fastrace dropped spans");
}

fn on_capture_off(c: &mut Criterion) {
    for (group, queue) in [
        ("on_capture_off", queue()),
        ("on_capture_off_worker_idle", idle_worker_queue()),
    ] {
        let _guard = ops_core::set_default(queue.clone());
        let mut g = c.benchmark_group(group);
        g.bench_function("plain_fn", |b| b.iter(|| plain(black_box(1), black_box(2))));
        g.bench_function("child_in_open_root", |b| {
            b.iter_custom(|iters| {
                chunked(&queue, iters, |n| {
                    time_children(n, || {
                        traced_bare(black_box(1), black_box(2));
                    })
                })
            })
        });
        g.bench_function("root_per_call", |b| {
            b.iter_custom(|iters| {
                chunked(&queue, iters, |n| {
                    time_calls(n, || {
                        traced_bare(black_box(1), black_box(2));
                    })
                })
            })
        });
        g.bench_function("child_capturing_two_u64", |b| {
            b.iter_custom(|iters| {
                chunked(&queue, iters, |n| {
                    time_children(n, || {
                        traced_full(black_box(1), black_box(2));
                    })
                })
            })
        });
        g.finish();
        assert_no_drops(group, &queue);
    }
}

fn unsampled(c: &mut Criterion) {
    let queue = queue();
    let _guard = ops_core::set_default(queue.clone());
    ops_core::context::set_sample_rate(0.0).unwrap();
    let mut g = c.benchmark_group("unsampled");
    g.bench_function("plain_fn", |b| b.iter(|| plain(black_box(1), black_box(2))));
    g.bench_function("child_in_unsampled_root", |b| {
        open_root(|| b.iter(|| traced_full(black_box(1), black_box(2))))
    });
    g.bench_function("unsampled_root_per_call", |b| {
        b.iter(|| traced_full(black_box(1), black_box(2)))
    });
    g.finish();
    ops_core::context::set_sample_rate(1.0).unwrap();
    assert_eq!(queue.stats().enqueued, 0, "nothing sampled");
    assert_no_drops("unsampled", &queue);
}

fn capture_10kb(c: &mut Criterion) {
    let request = request_10kb();
    let size = serde_json::to_string(&request).unwrap().len();
    eprintln!("capture_10kb: the request is {size} bytes of JSON");
    let no_clone = ChatRequestNoClone(request.clone());
    for (group, queue) in [
        ("capture_10kb", queue()),
        ("capture_10kb_worker_idle", idle_worker_queue()),
    ] {
        let _guard = ops_core::set_default(queue.clone());
        let mut g = c.benchmark_group(group);
        g.bench_function("serde_json_to_string", |b| {
            b.iter(|| serde_json::to_string(black_box(&request)).unwrap())
        });
        g.bench_function("serde_json_to_value", |b| {
            b.iter(|| serde_json::to_value(black_box(&request)).unwrap())
        });
        g.bench_function("clone", |b| b.iter(|| black_box(&request).clone()));
        g.bench_function("traced_capture_later", |b| {
            b.iter_custom(|iters| {
                chunked(&queue, iters, |n| {
                    time_children(n, || {
                        capture_later(black_box(&request));
                    })
                })
            })
        });
        g.bench_function("traced_capture_now", |b| {
            b.iter_custom(|iters| {
                chunked(&queue, iters, |n| {
                    time_children(n, || {
                        capture_now(black_box(&no_clone));
                    })
                })
            })
        });
        g.finish();
        assert_no_drops(group, &queue);
    }
}

criterion_group!(
    benches,
    off,
    on_capture_off,
    vs_fastrace,
    unsampled,
    capture_10kb
);
criterion_main!(benches);
