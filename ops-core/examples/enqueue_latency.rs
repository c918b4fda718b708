//! How long the app's thread waits on tracing while the backend is down: every traced call
//! and every `add_trace_task` is timed, and the percentiles, the maximum and the thread's
//! voluntary context switches are printed.
//!
//! `cargo run --release -p ops-core --example enqueue_latency [-- <calls> [<spool dir>]]`: with
//! a spool directory, every task is also written to the spool (fsync every 200 ms).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ops_core::{
    ExportError, ExportOutcome, Observation, ObservationKind, Provider, Trace, TraceId,
    TraceQueueManager, TraceTask, traced,
};

/// A backend that is down: every export fails after a connection attempt's worth of time.
struct Down;

#[ops_core::async_trait]
impl Provider for Down {
    fn name(&self) -> &str {
        "down"
    }

    async fn export(&mut self, _batch: &[Arc<Trace>]) -> ExportOutcome {
        tokio::time::sleep(Duration::from_millis(1)).await;
        ExportOutcome::retry(ExportError::new("down", "connection refused"))
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }
}

#[traced(kind = "llm")]
fn complete(prompt: &str, temperature: f64) -> String {
    format!("answer to {prompt} at {temperature}")
}

#[traced(kind = "dataset_retrieval")]
fn retrieve(query: &str, top_k: usize) -> Vec<String> {
    (0..top_k)
        .map(|i| format!("document {i} for {query}"))
        .collect()
}

#[traced(kind = "workflow")]
fn answer(query: &str) -> String {
    let docs = retrieve(query, 3);
    complete(&format!("{query} with {} documents", docs.len()), 0.2)
}

fn voluntary_switches() -> u64 {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn report(what: &str, mut times: Vec<Duration>, switches: u64) {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let over = times
        .iter()
        .filter(|t| **t > Duration::from_micros(50))
        .count();
    println!(
        "{what}: {} calls, p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}, over 50 µs: {over}; voluntary context switches {switches}",
        times.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        times[times.len() - 1],
    );
}

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let mut builder = TraceQueueManager::builder().provider(Down);
    if let Some(dir) = std::env::args().nth(2) {
        builder = builder.spool(ops_core::spool::SpoolConfig::new(dir));
    }
    let queue = builder.build().expect("queue");
    let _default = ops_core::set_default(queue.clone());
    let before = voluntary_switches();
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls {
        let start = Instant::now();
        answer(&format!("question {i}"));
        times.push(start.elapsed());
    }
    report(
        "#[traced] root with 2 children",
        times,
        voluntary_switches() - before,
    );

    let before = voluntary_switches();
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls {
        let mut trace = Trace::new(
            TraceId::generate(),
            ObservationKind::Workflow,
            format!("run-{i}"),
            chrono::Utc::now(),
        );
        let mut o = Observation::new(ObservationKind::Generation, "llm");
        o.input = Some(serde_json::json!({"prompt": "x".repeat(200)}));
        trace.observations.push(o);
        let task = TraceTask::from_trace(trace);
        let start = Instant::now();
        let _ = queue.add_trace_task(task);
        times.push(start.elapsed());
    }
    report("add_trace_task", times, voluntary_switches() - before);
    let stats = queue.stats();
    println!(
        "enqueued {}, dropped {} (queue full: {}), exported {}",
        stats.enqueued,
        stats.dropped_total(),
        stats.dropped(ops_core::DropReason::QueueFull),
        stats.exported
    );
    queue.shutdown(Duration::from_millis(200));
}
