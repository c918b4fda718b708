//! Runs `n` GenAI spans (rig-core's completion span, as in `benches/layer.rs`), each a whole
//! trace (`root`) or under one root (`child`), through the ops layer, through
//! tracing-opentelemetry's (`otel_root`, `otel_child`) or through the bare registry
//! (`registry`), for callgrind to count the instructions on the caller's thread: counts that do
//! not move with the machine's load. Every 256 spans, untimed, both queues are flushed.
//!
//! ```text
//! cargo build --release -p ops-tracing --example callgrind
//! valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \
//!   --toggle-collect='*timed_chunk*' target/release/examples/callgrind root 10240
//! ```
//!
//! Instructions per span = the main thread's total (`callgrind.out.<pid>-01`) / `n`.
#[path = "../benches/shared.rs"]
mod shared;

use std::time::Duration;

use ops_core::TraceQueueManager;
use ops_testkit::Discard;
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

use shared::{DiscardSpans, genai_span};

#[inline(never)]
fn timed_chunk(child: bool, n: u64) {
    if child {
        info_span!("root", ops.kind = "workflow").in_scope(|| {
            for _ in 0..n {
                genai_span();
            }
        });
    } else {
        for _ in 0..n {
            genai_span();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (case, n) = (args[0].as_str(), args[1].parse::<u64>().expect("n"));
    let queue = TraceQueueManager::builder()
        .interval(Duration::from_millis(10))
        .provider(Discard::default())
        .build()
        .expect("queue");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(DiscardSpans::default())
        .build();
    let otel = case.starts_with("otel");
    let dispatch = if case == "registry" {
        Dispatch::new(tracing_subscriber::registry())
    } else if otel {
        use opentelemetry::trace::TracerProvider as _;
        Dispatch::new(
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"))),
        )
    } else {
        Dispatch::new(tracing_subscriber::registry().with(ops_tracing::layer()))
    };
    tracing::dispatcher::with_default(&dispatch, || {
        ops_core::with_default(queue.clone(), || {
            let mut left = n;
            while left > 0 {
                let k = left.min(256);
                timed_chunk(case.ends_with("child"), k);
                queue.flush(Duration::from_secs(30));
                let _ = provider.force_flush();
                left -= k;
            }
        })
    });
    let stats = queue.stats();
    assert!(stats.dropped.iter().all(|(_, n)| *n == 0), "{stats:?}");
}
