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
//! The `*_worker_idle` groups repeat some cases with a queue that refuses every task, so the
//! worker does nothing: on a 2-core machine the worker otherwise competes with the caller for
//! a core, and the numbers then include that competition.
//!
//! Run: `cargo bench -p ops-core --bench traced -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ops_core::{ExportOutcome, Provider, Trace, TraceQueueManager, traced};
use serde::Serialize;

#[derive(Debug)]
struct Noop;

#[ops_core::async_trait]
impl Provider for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    async fn export(&mut self, _: &[Arc<Trace>]) -> ExportOutcome {
        ExportOutcome::Delivered
    }
    async fn api_check(&self) -> Result<(), ops_core::ExportError> {
        Ok(())
    }
}

fn queue() -> TraceQueueManager {
    TraceQueueManager::builder()
        .interval(Duration::from_millis(10))
        .provider(Noop)
        .build()
        .expect("queue")
}

/// A queue that refuses every task (its byte limit is 1): the worker stays idle, so on a small
/// machine the numbers are the caller's cost alone (including dropping the refused parts).
fn refusing_queue() -> TraceQueueManager {
    TraceQueueManager::builder()
        .max_queue(1, 1)
        .provider(Noop)
        .build()
        .expect("queue")
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

/// Discards what fastrace collects, as the no-op provider does for `#[traced]`.
struct DiscardSpans;

impl fastrace::collector::Reporter for DiscardSpans {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans);
    }
}

/// Times `iters` calls of `call`, made under a root started every 256 calls by `root`.
fn per_call_with_roots(
    iters: u64,
    root: impl Fn(&dyn Fn()),
    call: impl Fn(),
) -> std::time::Duration {
    let start = std::time::Instant::now();
    let mut left = iters;
    while left > 0 {
        let n = left.min(256);
        root(&|| {
            for _ in 0..n {
                call();
            }
        });
        left -= n;
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
    let mut g = c.benchmark_group("vs_fastrace");
    g.bench_function("plain_fn", |b| b.iter(|| plain(black_box(1), black_box(2))));
    g.bench_function("traced_child_root_every_256", |b| {
        b.iter_custom(|iters| {
            per_call_with_roots(
                iters,
                |f| open_root(f),
                || {
                    traced_bare(black_box(1), black_box(2));
                },
            )
        })
    });
    g.bench_function("fastrace_child_root_every_256", |b| {
        b.iter_custom(|iters| {
            per_call_with_roots(
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
            )
        })
    });
    g.finish();
    queue.flush(Duration::from_secs(10));
    fastrace::flush();
}

fn on_capture_off(c: &mut Criterion) {
    let queue = queue();
    let _guard = ops_core::set_default(queue.clone());
    let mut g = c.benchmark_group("on_capture_off");
    g.bench_function("plain_fn", |b| b.iter(|| plain(black_box(1), black_box(2))));
    g.bench_function("child_in_open_root", |b| {
        open_root(|| b.iter(|| traced_bare(black_box(1), black_box(2))))
    });
    g.bench_function("root_per_call", |b| {
        b.iter(|| traced_bare(black_box(1), black_box(2)))
    });
    g.bench_function("child_capturing_two_u64", |b| {
        open_root(|| b.iter(|| traced_full(black_box(1), black_box(2))))
    });
    g.finish();
    queue.flush(Duration::from_secs(10));
    eprintln!("on_capture_off: {:?}", queue.stats());
    drop(_guard);

    let refusing = refusing_queue();
    let _guard = ops_core::set_default(refusing.clone());
    let mut g = c.benchmark_group("on_capture_off_worker_idle");
    g.bench_function("child_in_open_root", |b| {
        open_root(|| b.iter(|| traced_bare(black_box(1), black_box(2))))
    });
    g.bench_function("root_per_call", |b| {
        b.iter(|| traced_bare(black_box(1), black_box(2)))
    });
    g.bench_function("child_capturing_two_u64", |b| {
        open_root(|| b.iter(|| traced_full(black_box(1), black_box(2))))
    });
    g.finish();
    eprintln!("on_capture_off_worker_idle: {:?}", refusing.stats());
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
}

fn capture_10kb(c: &mut Criterion) {
    let queue = queue();
    let _guard = ops_core::set_default(queue.clone());
    let request = request_10kb();
    let size = serde_json::to_string(&request).unwrap().len();
    eprintln!("capture_10kb: the request is {size} bytes of JSON");
    let no_clone = ChatRequestNoClone(request.clone());
    let mut g = c.benchmark_group("capture_10kb");
    g.bench_function("serde_json_to_string", |b| {
        b.iter(|| serde_json::to_string(black_box(&request)).unwrap())
    });
    g.bench_function("serde_json_to_value", |b| {
        b.iter(|| serde_json::to_value(black_box(&request)).unwrap())
    });
    g.bench_function("clone", |b| b.iter(|| black_box(&request).clone()));
    g.bench_function("traced_capture_later", |b| {
        open_root(|| b.iter(|| capture_later(black_box(&request))))
    });
    g.bench_function("traced_capture_now", |b| {
        open_root(|| b.iter(|| capture_now(black_box(&no_clone))))
    });
    g.finish();
    queue.flush(Duration::from_secs(30));
    eprintln!("capture_10kb: {:?}", queue.stats());
    drop(_guard);

    let refusing = refusing_queue();
    let _guard = ops_core::set_default(refusing.clone());
    let mut g = c.benchmark_group("capture_10kb_worker_idle");
    g.bench_function("serde_json_to_string", |b| {
        b.iter(|| serde_json::to_string(black_box(&request)).unwrap())
    });
    g.bench_function("traced_capture_later", |b| {
        open_root(|| b.iter(|| capture_later(black_box(&request))))
    });
    g.bench_function("traced_capture_now", |b| {
        open_root(|| b.iter(|| capture_now(black_box(&no_clone))))
    });
    g.finish();
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
