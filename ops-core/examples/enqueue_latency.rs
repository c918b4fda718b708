//! How long the app's thread waits on tracing while the backend is down: every traced call
//! and every `add_trace_task` is timed, and the percentiles, the maximum and the thread's
//! voluntary context switches are printed (a voluntary switch is a wait: on a lock, say).
//!
//! `cargo run --release -p ops-core --example enqueue_latency [-- <calls> [<spool dir>]]`: with
//! a spool directory, every task is also written to the spool (fsync every 200 ms). With
//! `ROOMY=1` the queue's limits take every call; with `UP=1` the backend takes every batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ops_core::{
    ExportError, ExportOutcome, Observation, ObservationKind, Provider, Trace, TraceId,
    TraceQueueManager, TraceTask, traced,
};

/// A backend that is down: every export fails after a connection attempt's worth of time.
/// With `UP=1` it takes every batch at once instead, so the worker delivers and frees.
struct Down {
    up: bool,
}

#[ops_core::async_trait]
impl Provider for Down {
    fn name(&self) -> &str {
        "down"
    }

    async fn export(&mut self, _batch: &[Arc<Trace>]) -> ExportOutcome {
        if self.up {
            return ExportOutcome::Delivered;
        }
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

/// This thread's voluntary and involuntary context switches.
fn switches() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

fn report(what: &str, mut times: Vec<Duration>, before: (u64, u64)) {
    let after = switches();
    let order = times.clone();
    let mut slowest: Vec<(usize, Duration)> = times.iter().copied().enumerate().collect();
    slowest.sort_unstable_by_key(|(_, t)| std::cmp::Reverse(*t));
    slowest.truncate(5);
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let over = times
        .iter()
        .filter(|t| **t > Duration::from_micros(50))
        .count();
    println!(
        "{what}: {} calls, p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}, over 50 µs: {over}; context switches: voluntary {}, involuntary {}",
        times.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        times[times.len() - 1],
        after.0 - before.0,
        after.1 - before.1,
    );
    println!("  slowest calls (index, time): {slowest:?}");
    let mut tenths = [0usize; 10];
    for (i, t) in order.iter().enumerate() {
        if *t > Duration::from_micros(50) {
            tenths[i * 10 / order.len()] += 1;
        }
    }
    println!("  over 50 µs per tenth of the run: {tenths:?}");
}

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let mut config = ops_core::QueueConfig::default();
    if std::env::var_os("ROOMY").is_some() {
        // Every call accepted: the worker stays busy building what it holds.
        config.max_bytes = 2 << 30;
        config.max_items = 2 * calls;
    }
    let mut builder = TraceQueueManager::builder().config(config).provider(Down {
        up: std::env::var_os("UP").is_some(),
    });
    if let Some(dir) = std::env::args().nth(2) {
        builder = builder.spool(ops_core::spool::SpoolConfig::new(dir));
    }
    let queue = builder.build().expect("queue");
    let _default = ops_core::set_default(queue.clone());
    let before = switches();
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls {
        let start = Instant::now();
        answer(&format!("question {i}"));
        times.push(start.elapsed());
    }
    report("#[traced] root with 2 children", times, before);

    let before = switches();
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
    report("add_trace_task", times, before);
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
