//! `#[traced]` beside its peers, in one process: `tracing`'s `#[instrument]`, fastrace's
//! `#[trace]` and the OpenTelemetry SDK with its batch span processor.
//!
//! Every case is a bare function (two integers in, one out, nothing captured) run `n` times
//! by [`Peers::time`]:
//!
//! - the `*_off` cases run with nothing installed: no ops queue, no `tracing` subscriber,
//!   fastrace with no parent span;
//! - the `*_tree` cases record: each call is a span in a tree of a root and 100 children, the
//!   root's share included (per call: 1.01 spans). ops delivers to a provider that
//!   discards, `tracing` runs under a `Registry` with a layer that counts closed spans, fastrace and the SDK report to an exporter that
//!   counts and discards.
//!
//! Calls are timed in chunks of [`CHUNK`]; between chunks, outside the measurement, every
//! recorder is flushed, so no queue ever fills up. [`Peers::assert_no_drops`] then checks that
//! every span made was delivered, for ops and for each peer.
//!
//! The criterion bench (`benches/peers.rs`) and the callgrind runner (`src/bin/peers-callgrind.rs`,
//! driven by `callgrind.sh`) share these cases.
//!
#![doc = include_str!("../README.md")]

pub mod e2e;
pub mod rss;

use std::fmt;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use ops_core::{TraceQueueManager, traced};
use ops_testkit::Discard;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

/// Spans in one tree: a root and 100 children.
pub const TREE: u64 = 101;

/// Calls timed between two flushes: 20 trees, under the OpenTelemetry batch processor's
/// default queue of 2,048 spans.
pub const CHUNK: u64 = 20 * TREE;

/// One way of making the same call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// The plain function, the floor.
    Plain,
    /// `#[traced]` with no queue installed.
    OpsOff,
    /// `#[instrument]` with no subscriber.
    TracingOff,
    /// fastrace's `#[trace]` with no parent span.
    FastraceOff,
    /// `#[traced]` into a queue whose provider discards.
    OpsTree,
    /// `#[instrument]` under a `tracing_subscriber::Registry`.
    TracingTree,
    /// fastrace's `#[trace]` under a root, reporting to a reporter that discards.
    FastraceTree,
    /// The OpenTelemetry SDK (`Tracer::in_span`) with a batch span processor and an exporter
    /// that discards.
    OtelTree,
}

impl Case {
    /// Every case, in the order a run measures them (the `*_off` cases first).
    pub const ALL: [Case; 8] = [
        Case::Plain,
        Case::OpsOff,
        Case::TracingOff,
        Case::FastraceOff,
        Case::OpsTree,
        Case::TracingTree,
        Case::FastraceTree,
        Case::OtelTree,
    ];

    /// The case's name, as the bench and `callgrind.sh` print it.
    pub fn name(self) -> &'static str {
        match self {
            Case::Plain => "plain_fn",
            Case::OpsOff => "ops_off",
            Case::TracingOff => "tracing_off",
            Case::FastraceOff => "fastrace_off",
            Case::OpsTree => "ops_tree",
            Case::TracingTree => "tracing_registry_tree",
            Case::FastraceTree => "fastrace_tree",
            Case::OtelTree => "otel_bsp_tree",
        }
    }

    /// The case named `name`, or an error listing the names.
    pub fn parse(name: &str) -> Result<Case, String> {
        Case::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = Case::ALL.iter().map(|c| c.name()).collect();
                format!("unknown case `{name}`; use one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[inline(never)]
fn plain(a: u64, b: u64) -> u64 {
    black_box(a).wrapping_add(b)
}

#[traced(skip_all, capture_output = false)]
#[inline(never)]
fn ops_call(a: u64, b: u64) -> u64 {
    black_box(a).wrapping_add(b)
}

#[traced(skip_all, capture_output = false)]
fn ops_root(f: &dyn Fn()) {
    f()
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn tracing_call(a: u64, b: u64) -> u64 {
    black_box(a).wrapping_add(b)
}

/// The same function as [`tracing_call`] at a callsite of its own: a callsite hit with no
/// subscriber caches that it is never enabled, and would then stay off under the registry.
#[tracing::instrument(skip_all)]
#[inline(never)]
fn tracing_call_off(a: u64, b: u64) -> u64 {
    black_box(a).wrapping_add(b)
}

#[tracing::instrument(skip_all)]
fn tracing_root(f: &dyn Fn()) {
    f()
}

#[fastrace::trace]
#[inline(never)]
fn fastrace_call(a: u64, b: u64) -> u64 {
    black_box(a).wrapping_add(b)
}

#[inline(never)]
fn otel_call(tracer: &SdkTracer, a: u64, b: u64) -> u64 {
    tracer.in_span("otel_call", |_| black_box(a).wrapping_add(b))
}

/// Spans the registry closed (one count per process, as the registry is built once).
static TRACING_CLOSED: AtomicU64 = AtomicU64::new(0);

/// Counts the spans the registry closes: proof that `#[instrument]` made them.
struct CountClosed;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountClosed {
    fn on_close(&self, _: tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
        TRACING_CLOSED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Spans fastrace reported (one reporter per process).
static FASTRACE_REPORTED: AtomicU64 = AtomicU64::new(0);

struct CountFastrace;

impl fastrace::collector::Reporter for CountFastrace {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        FASTRACE_REPORTED.fetch_add(spans.len() as u64, Ordering::Relaxed);
        black_box(spans);
    }
}

#[derive(Debug)]
struct CountOtel(Arc<AtomicU64>);

impl SpanExporter for CountOtel {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        black_box(batch);
        Ok(())
    }
}

/// Everything the cases record into, and what each recorder was given and delivered.
#[derive(Debug)]
pub struct Peers {
    queue: TraceQueueManager,
    registry: Dispatch,
    otel: SdkTracerProvider,
    tracer: SdkTracer,
    otel_exported: Arc<AtomicU64>,
    /// Spans made per recording case: ops, tracing, fastrace, OpenTelemetry.
    made: [u64; 4],
}

impl Peers {
    /// Builds the recorders. Call once per process: it installs fastrace's reporter.
    pub fn new() -> Peers {
        let queue = TraceQueueManager::builder()
            .interval(Duration::from_millis(10))
            .max_queue(1 << 20, 1 << 32)
            .provider(Discard::default())
            .build()
            .expect("a queue with a no-op provider builds");
        fastrace::set_reporter(CountFastrace, fastrace::collector::Config::default());
        let otel_exported = Arc::new(AtomicU64::new(0));
        let otel = SdkTracerProvider::builder()
            .with_batch_exporter(CountOtel(otel_exported.clone()))
            .build();
        let tracer = otel.tracer("peers");
        Peers {
            queue,
            registry: Dispatch::new(tracing_subscriber::registry().with(CountClosed)),
            otel,
            tracer,
            otel_exported,
            made: [0; 4],
        }
    }

    /// Times `n` calls of `case`, in chunks of [`CHUNK`] with untimed flushes between them.
    pub fn time(&mut self, case: Case, n: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = n;
        while left > 0 {
            let k = left.min(CHUNK);
            left -= k;
            total += self.chunk(case, k);
            self.flush(case);
        }
        total
    }

    /// Times one chunk of calls; `callgrind.sh` counts the instructions in this function only.
    #[inline(never)]
    fn chunk(&mut self, case: Case, n: u64) -> Duration {
        let spans = n + n.div_ceil(TREE - 1);
        match case {
            Case::Plain => calls(n, || plain(black_box(1), black_box(2))),
            Case::OpsOff => {
                assert!(!ops_core::is_enabled(), "ops_off needs no queue installed");
                calls(n, || ops_call(black_box(1), black_box(2)))
            }
            Case::TracingOff => calls(n, || tracing_call_off(black_box(1), black_box(2))),
            Case::FastraceOff => calls(n, || fastrace_call(black_box(1), black_box(2))),
            Case::OpsTree => {
                self.made[0] += spans;
                let _guard = ops_core::set_default(self.queue.clone());
                trees(n, ops_root, || ops_call(black_box(1), black_box(2)))
            }
            Case::TracingTree => {
                self.made[1] += spans;
                tracing::dispatcher::with_default(&self.registry, || {
                    trees(n, tracing_root, || tracing_call(black_box(1), black_box(2)))
                })
            }
            Case::FastraceTree => {
                self.made[2] += spans;
                trees(
                    n,
                    |f| {
                        let root = fastrace::Span::root(
                            "fastrace_root",
                            fastrace::prelude::SpanContext::random(),
                        );
                        let _parent = root.set_local_parent();
                        f();
                    },
                    || fastrace_call(black_box(1), black_box(2)),
                )
            }
            Case::OtelTree => {
                self.made[3] += spans;
                let tracer = &self.tracer;
                trees(
                    n,
                    |f| tracer.in_span("otel_root", |_| f()),
                    || otel_call(tracer, black_box(1), black_box(2)),
                )
            }
        }
    }

    fn flush(&self, case: Case) {
        match case {
            Case::OpsTree => {
                let report = self.queue.flush(Duration::from_secs(30));
                assert!(!report.timed_out, "the ops flush timed out: {report:?}");
            }
            Case::FastraceTree => fastrace::flush(),
            Case::OtelTree => self.otel.force_flush().expect("the SDK flushes"),
            _ => {}
        }
    }

    /// Flushes everything and panics unless every recorder delivered every span it was given;
    /// returns a line per recorder: spans made, spans delivered.
    pub fn assert_no_drops(&self) -> String {
        for case in [Case::OpsTree, Case::FastraceTree, Case::OtelTree] {
            self.flush(case);
        }
        let stats = self.queue.stats();
        let delivered = [
            stats.exported_observations,
            TRACING_CLOSED.load(Ordering::Relaxed),
            FASTRACE_REPORTED.load(Ordering::Relaxed),
            self.otel_exported.load(Ordering::Relaxed),
        ];
        let mut out = String::new();
        for (i, name) in ["ops", "tracing (registry)", "fastrace", "otel_bsp"]
            .into_iter()
            .enumerate()
        {
            out += &format!(
                "{name}: {} spans made, {} delivered\n",
                self.made[i], delivered[i]
            );
        }
        assert_eq!(stats.dropped_total(), 0, "ops dropped: {stats:?}\n{out}");
        assert_eq!(delivered, self.made, "a recorder lost spans:\n{out}");
        out
    }
}

impl Default for Peers {
    fn default() -> Self {
        Peers::new()
    }
}

fn calls(n: u64, mut call: impl FnMut() -> u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        black_box(call());
    }
    start.elapsed()
}

/// `n` calls as children of roots of `TREE - 1` children each, the roots timed too.
fn trees(n: u64, root: impl Fn(&dyn Fn()), call: impl Fn() -> u64) -> Duration {
    let start = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(TREE - 1);
        root(&|| {
            for _ in 0..k {
                black_box(call());
            }
        });
        left -= k;
    }
    start.elapsed()
}
