//! What the benches share (besides `ops_testkit::Discard`, the provider that accepts
//! everything): a sample trace, and a timing loop that flushes between chunks outside the
//! measurement.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use chrono::Utc;
use ops_core::{Observation, ObservationKind, Trace, TraceId, TraceTask, Usage};
use serde_json::json;

/// A trace with a root span and `observations - 1` generations under it, each with a short
/// input, output, model and usage: the size of a typical `#[traced]` call tree.
pub(crate) fn trace(observations: usize) -> Trace {
    let now = Utc::now();
    let mut trace = Trace::new(TraceId::generate(), ObservationKind::Span, "handle", now);
    trace.input = Some(json!("what is the capital of France?"));
    let mut root = Observation::at(ObservationKind::Span, "handle", now);
    root.end_time = Some(now);
    let root_id = root.id;
    trace.observations.push(root);
    for i in 1..observations {
        let mut o = Observation::at(ObservationKind::Generation, format!("call_{i}"), now);
        o.parent_id = Some(root_id);
        o.end_time = Some(now);
        o.input = Some(json!("what is the capital of France?"));
        o.output = Some(json!("Paris."));
        o.model = Some("gpt-4o-mini".into());
        o.usage = Some(Usage::tokens(12, 3).with_cost(0.000_003_6, "USD"));
        trace.observations.push(o);
    }
    trace
}

/// Tasks enqueued between two untimed flushes. A flush moves everything queued to the provider's
/// lane at once, and a lane holds at most `provider_backlog` (10,000) traces, so a chunk must
/// stay below that or the flush itself drops.
pub(crate) const CHUNK: u64 = 5_000;

/// Times `op` over `iters` pre-built tasks, in chunks; `settle` runs untimed after each chunk.
pub(crate) fn timed<S>(
    iters: u64,
    template: &Trace,
    state: &mut S,
    mut op: impl FnMut(&mut S, TraceTask),
    mut settle: impl FnMut(&mut S),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        left -= n;
        let tasks: Vec<TraceTask> = (0..n)
            .map(|_| TraceTask::from_trace(template.clone()))
            .collect();
        let start = Instant::now();
        for task in tasks {
            op(state, task);
        }
        total += start.elapsed();
        settle(state);
    }
    total
}
