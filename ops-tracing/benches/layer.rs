//! What the layer costs per span, beside tracing-opentelemetry's layer, in the same run.
//!
//! Each case creates a GenAI span shaped like rig-core's completion span (operation, model,
//! provider, two usage counts recorded after it started), enters and exits it once, and
//! closes it:
//!
//! - `registry`: the plain `tracing-subscriber` registry, no layer (the floor);
//! - `ops`: the registry with [`ops_tracing::layer`] and a queue whose provider discards;
//! - `otel`: the registry with `tracing_opentelemetry::layer()` over an SDK tracer provider
//!   whose batch processor hands spans to an exporter that discards.
//!
//! `child` spans run under a root started every 256 spans (the root's share included);
//! `root` spans are each a trace of their own. The queue (or the SDK's batch processor) is
//! flushed every 256 spans, outside the timed part: the numbers are the caller's cost, and
//! nothing is dropped for want of a worker keeping up. `ops_no_queue` is the layer with no queue
//! installed. After the run, the queue's and the SDK's stats show that nothing was dropped.
//!
//! Run: `cargo bench -p ops-tracing --bench layer -- --warm-up-time 1 --measurement-time 3`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod shared;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use ops_core::TraceQueueManager;
use ops_testkit::Discard;
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

use shared::{DiscardSpans, genai_span};

/// Spans made under the `otel` dispatch, to compare with what its exporter received.
static OTEL_SPANS: AtomicU64 = AtomicU64::new(0);

/// How many spans are timed between two flushes.
const CHUNK: u64 = 256;

/// Times `iters` spans, each a root, flushing (untimed) every [`CHUNK`] spans.
fn roots(iters: u64, flush: &dyn Fn()) -> Duration {
    let mut took = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let start = Instant::now();
        for _ in 0..n {
            genai_span();
        }
        took += start.elapsed();
        flush();
        left -= n;
    }
    took
}

/// Times `iters` spans made under a root started every [`CHUNK`] spans, flushing (untimed)
/// after each root.
fn children(iters: u64, flush: &dyn Fn()) -> Duration {
    let mut took = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let start = Instant::now();
        info_span!("root", ops.kind = "workflow").in_scope(|| {
            for _ in 0..n {
                genai_span();
            }
        });
        took += start.elapsed();
        flush();
        left -= n;
    }
    took
}

fn queue() -> TraceQueueManager {
    TraceQueueManager::builder()
        .interval(Duration::from_millis(10))
        .provider(Discard::default())
        .build()
        .expect("queue")
}

fn bench(c: &mut Criterion) {
    let queue = queue();
    let exported = Arc::new(AtomicU64::new(0));
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(DiscardSpans(exported.clone()))
        .build();
    let registry = Dispatch::new(tracing_subscriber::registry());
    let ops = Dispatch::new(tracing_subscriber::registry().with(ops_tracing::layer()));
    let otel = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"))),
    );
    let flush_ops = || {
        queue.flush(Duration::from_secs(30));
    };
    let flush_otel = || {
        let _ = provider.force_flush();
    };
    let cases: [(&str, &Dispatch, &dyn Fn()); 3] = [
        ("registry", &registry, &|| {}),
        ("ops", &ops, &flush_ops),
        ("otel", &otel, &flush_otel),
    ];

    for (group, run, spans) in [
        (
            "child",
            children as fn(u64, &dyn Fn()) -> Duration,
            (|i| i + i.div_ceil(CHUNK)) as fn(u64) -> u64,
        ),
        ("root", roots, |i| i),
    ] {
        let mut group = c.benchmark_group(group);
        for (name, dispatch, flush) in cases {
            group.bench_function(name, |b| {
                tracing::dispatcher::with_default(dispatch, || {
                    ops_core::with_default(queue.clone(), || {
                        b.iter_custom(|iters| {
                            if name == "otel" {
                                OTEL_SPANS.fetch_add(spans(iters), Ordering::Relaxed);
                            }
                            run(iters, flush)
                        })
                    })
                })
            });
        }
        group.finish();
    }

    let report = queue.flush(Duration::from_secs(30));
    let stats = queue.stats();
    eprintln!("ops queue: {report:?}; dropped: {:?}", stats.dropped);
    assert_eq!(report.dropped, 0, "the ops queue dropped traces: {stats:?}");
    assert!(stats.dropped.iter().all(|(_, n)| *n == 0), "{stats:?}");
    let flushed = provider.force_flush();
    let (made, got) = (
        OTEL_SPANS.load(Ordering::Relaxed),
        exported.load(Ordering::Relaxed),
    );
    eprintln!("otel: {made} spans made, {got} exported ({flushed:?})");

    // The layer with tracing on nowhere in the process: no queue, no trace alive.
    drop(queue);
    eprintln!("no_queue: tracing enabled: {}", ops_core::is_enabled());
    let mut group = c.benchmark_group("no_queue");
    for (name, dispatch) in [("registry", &registry), ("ops", &ops)] {
        group.bench_function(name, |b| {
            tracing::dispatcher::with_default(dispatch, || b.iter(genai_span))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
