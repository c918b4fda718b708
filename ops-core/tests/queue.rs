//! The queue's semantics: it never stalls, never blocks, stays bounded, isolates providers,
//! retries as told, and its flush and shutdown never hang.

mod support;

use std::time::{Duration, Instant};

use chrono::Utc;
use ops_core::model::WorkflowRun;
use ops_core::{
    Accepted, DropReason, EnqueueError, ExportError, ExportOutcome, Observation, ObservationKind,
    QueueConfig, Trace, TraceId, TraceQueueManager, TraceTask,
};
use support::{Recorder, eventually, task};

fn config(interval_ms: u64, batch: usize) -> QueueConfig {
    let mut c = QueueConfig::default();
    c.interval = Duration::from_millis(interval_ms);
    c.batch_size = batch;
    c.initial_backoff = Duration::from_millis(5);
    c.max_backoff = Duration::from_millis(20);
    c.export_timeout = Duration::from_secs(60);
    c
}

fn queue_with(config: QueueConfig, providers: &[&Recorder]) -> TraceQueueManager {
    providers
        .iter()
        .fold(TraceQueueManager::builder().config(config), |b, p| {
            b.provider((*p).clone())
        })
        .build()
        .unwrap()
}

#[test]
fn a_backlog_drains_completely_without_waiting_for_more_requests() {
    // Dify drains one batch per timer and stops; with 10 per batch and a 1 s interval its
    // 1000-task backlog would take 100 s. Here every wake drains until the queue is empty.
    let rec = Recorder::named("rec");
    let queue = queue_with(config(1000, 10), &[&rec]);
    for i in 0..1000 {
        queue.add_trace_task(task(&format!("t{i}"))).unwrap();
    }
    assert!(
        eventually(Duration::from_secs(5), || rec.delivered().len() == 1000),
        "got {}",
        rec.delivered().len()
    );
    assert!(
        rec.batches().iter().all(|b| b.len() <= 10),
        "batches respect batch_size"
    );
    let stats = queue.stats();
    assert_eq!(
        (stats.enqueued, stats.exported, stats.exported_observations),
        (1000, 1000, 1000)
    );
}

#[test]
fn a_full_batch_is_exported_before_the_interval() {
    let rec = Recorder::named("rec");
    let queue = queue_with(config(3_600_000, 5), &[&rec]);
    for i in 0..5 {
        queue.add_trace_task(task(&format!("t{i}"))).unwrap();
    }
    assert!(eventually(Duration::from_secs(5), || rec.delivered().len() == 5));
}

#[test]
fn the_interval_exports_a_partial_batch() {
    let rec = Recorder::named("rec");
    let queue = queue_with(config(20, 100), &[&rec]);
    queue.add_trace_task(task("lonely")).unwrap();
    assert!(eventually(Duration::from_secs(5), || rec.delivered() == ["lonely"]));
}

#[test]
fn enqueue_works_without_a_runtime_and_inside_both_runtime_flavours() {
    let rec = Recorder::named("rec");
    let queue = queue_with(config(3_600_000, 100), &[&rec]);
    queue.add_trace_task(task("no-runtime")).unwrap();
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    current.block_on(async {
        queue.add_trace_task(task("current-thread")).unwrap();
        // A flush inside a current-thread runtime must not deadlock: the worker has its own.
        assert!(!queue.flush(Duration::from_secs(5)).timed_out);
    });
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    multi.block_on(async {
        let q = queue.clone();
        tokio::spawn(async move { q.add_trace_task(task("multi-thread")).unwrap() })
            .await
            .unwrap();
    });
    let report = queue.flush(Duration::from_secs(5));
    assert!(!report.timed_out && report.pending == 0, "{report:?}");
    let mut got = rec.delivered();
    got.sort();
    assert_eq!(got, ["current-thread", "multi-thread", "no-runtime"]);
    assert!(
        rec.state.lock().unwrap().suppressed.iter().all(|s| *s),
        "exports run on a thread where tracing is suppressed"
    );
}

#[test]
fn the_queue_is_bounded_by_items_and_bytes() {
    let rec = Recorder::named("rec");
    let mut c = config(3_600_000, 1_000_000);
    c.max_items = 10;
    let queue = queue_with(c, &[&rec]);
    let results: Vec<_> = (0..15)
        .map(|i| queue.add_trace_task(task(&format!("t{i}"))))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
    assert!(results[10..].iter().all(|r| *r == Err(EnqueueError::Full)));
    let stats = queue.stats();
    assert_eq!(stats.dropped(DropReason::QueueFull), 5);
    assert_eq!(stats.enqueued, 10);

    let mut c = config(3_600_000, 1_000_000);
    c.max_bytes = 4_000;
    let queue = queue_with(c, &[]);
    let mut big = Trace::new(
        TraceId::generate(),
        ObservationKind::Span,
        "big",
        Utc::now(),
    );
    big.input = Some(serde_json::Value::String("x".repeat(10_000)));
    assert_eq!(
        queue.add_trace_task(TraceTask::from_trace(big)),
        Ok(Accepted::MemoryOnly),
        "a task larger than the whole budget is taken when nothing else is held"
    );
    assert_eq!(
        queue.add_trace_task(task("small")),
        Err(EnqueueError::Full),
        "while it is held, the budget is spent"
    );
    assert_eq!(queue.stats().dropped(DropReason::QueueFull), 1);
}

#[test]
fn an_oversized_value_is_cut_down_never_refused() {
    let rec = Recorder::named("rec");
    let queue = queue_with(config(10, 100), &[&rec]);
    let mut big = Trace::new(
        TraceId::generate(),
        ObservationKind::Span,
        "big",
        Utc::now(),
    );
    let mut o = Observation::new(ObservationKind::Generation, "llm");
    o.input = Some(serde_json::Value::String("x".repeat(50 << 20)));
    big.observations.push(o);
    assert_eq!(
        queue.add_trace_task(TraceTask::from_trace(big)),
        Ok(Accepted::MemoryOnly)
    );
    assert!(
        queue.stats().truncated >= 1,
        "cut on the caller's thread, before it is counted"
    );
    let report = queue.flush(Duration::from_secs(5));
    assert_eq!((report.delivered, report.dropped), (1, 0), "{report:?}");
    let traces = rec.state.lock().unwrap().traces.clone();
    let input = traces[0].observations[0].input.as_ref().unwrap();
    assert_eq!(
        input[ops_core::limits::TRUNCATED_KEY],
        serde_json::json!(true)
    );
    assert_eq!(input["original_bytes"], serde_json::json!((50 << 20) + 2));
    assert!(input["preview"].as_str().unwrap().starts_with("xxxx"));
}

#[test]
fn a_hung_provider_never_delays_another_and_flush_and_shutdown_return() {
    let hung = Recorder::hanging("hung");
    let ok = Recorder::named("ok");
    let queue = queue_with(config(10, 10), &[&hung, &ok]);
    for i in 0..50 {
        queue.add_trace_task(task(&format!("t{i}"))).unwrap();
    }
    assert!(
        eventually(Duration::from_secs(5), || ok.delivered().len() == 50),
        "the healthy provider got everything"
    );
    let start = Instant::now();
    let report = queue.flush(Duration::from_millis(200));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "flush took {:?}",
        start.elapsed()
    );
    assert!(report.timed_out && report.pending > 0, "{report:?}");
    let stats = queue.stats();
    let by_name = |n: &str| {
        stats
            .providers
            .iter()
            .find(|p| p.name == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("ok").exported, 50);
    assert_eq!(by_name("hung").exported, 0);
    assert_eq!(by_name("hung").pending, 50);

    let start = Instant::now();
    let report = queue.shutdown(Duration::from_millis(200));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        start.elapsed()
    );
    assert_eq!(
        report.dropped, 50,
        "the hung provider's traces are counted: {report:?}"
    );
    assert_eq!(queue.stats().dropped(DropReason::Shutdown), 50);
    assert_eq!(
        ok.state.lock().unwrap().shutdowns,
        1,
        "providers are shut down once"
    );
    assert_eq!(
        queue.add_trace_task(task("late")),
        Err(EnqueueError::ShutDown)
    );
    assert_eq!(queue.stats().dropped(DropReason::AfterShutdown), 1);
    assert_eq!(
        queue.shutdown(Duration::from_millis(10)).dropped,
        0,
        "a second shutdown is a no-op"
    );
}

#[test]
fn retries_honour_the_stated_wait_and_partial_failures_resend_only_the_failed() {
    let err = || ExportError::new("rec", "503 Service Unavailable");
    let rec = Recorder::scripted(
        "rec",
        [
            ExportOutcome::Retry {
                after: Some(Duration::from_millis(150)),
                error: err(),
            },
            ExportOutcome::Partial {
                failed: vec![1],
                error: err(),
            },
        ],
    );
    let queue = queue_with(config(3_600_000, 3), &[&rec]);
    for name in ["a", "b", "c"] {
        queue.add_trace_task(task(name)).unwrap();
    }
    let report = queue.flush(Duration::from_secs(5));
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(report.delivered, 3);
    assert_eq!(rec.batches(), vec![vec!["a", "c"], vec!["b"]]);
    let calls = rec.state.lock().unwrap().calls.clone();
    assert_eq!(calls.len(), 3);
    assert!(
        calls[1] - calls[0] >= Duration::from_millis(150),
        "Retry-After respected: {:?}",
        calls[1] - calls[0]
    );
    let stats = queue.stats();
    assert_eq!((stats.retried, stats.exported, stats.failed), (2, 3, 0));
    assert!(
        stats.providers[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("503")
    );
}

#[test]
fn fatal_errors_and_exhausted_retries_are_counted() {
    let fatal = Recorder::scripted(
        "fatal",
        [ExportOutcome::fatal(ExportError::new(
            "fatal",
            "401 Unauthorized: bad key",
        ))],
    );
    let flaky = Recorder::scripted(
        "flaky",
        (0..10).map(|_| ExportOutcome::retry(ExportError::new("flaky", "timeout"))),
    );
    let mut c = config(3_600_000, 10);
    c.max_retries = 3;
    let queue = queue_with(c, &[&fatal, &flaky]);
    queue.add_trace_task(task("x")).unwrap();
    let report = queue.flush(Duration::from_secs(5));
    assert!(!report.timed_out, "{report:?}");
    let stats = queue.stats();
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.dropped(DropReason::RetriesExhausted), 1);
    assert_eq!(
        flaky.state.lock().unwrap().calls.len(),
        4,
        "one try plus three retries"
    );
    let fatal_stats = stats.providers.iter().find(|p| p.name == "fatal").unwrap();
    assert_eq!(
        fatal_stats.last_error.as_deref(),
        Some("fatal: 401 Unauthorized: bad key")
    );
}

#[test]
fn dropping_the_last_handle_delivers_what_is_queued() {
    let rec = Recorder::named("rec");
    let queue = queue_with(config(3_600_000, 1000), &[&rec]);
    let clone = queue.clone();
    for i in 0..20 {
        queue.add_trace_task(task(&format!("t{i}"))).unwrap();
    }
    drop(queue);
    assert!(
        rec.delivered().is_empty(),
        "a clone is alive, nothing is forced out yet"
    );
    drop(clone);
    assert_eq!(rec.delivered().len(), 20);
    assert_eq!(rec.state.lock().unwrap().shutdowns, 1);
}

#[test]
fn invalid_tasks_are_refused_with_a_clear_error_and_counted() {
    let queue = queue_with(config(3_600_000, 10), &[]);
    let run = WorkflowRun {
        id: "r1".into(),
        external_trace_id: Some("has spaces".into()),
        ..WorkflowRun::default()
    };
    let err = queue
        .trace_workflow_run(run, vec![])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("external_trace_id") && err.contains("has spaces"),
        "{err}"
    );
    assert_eq!(queue.stats().dropped(DropReason::Invalid), 1);
}

#[test]
fn settings_in_code_are_validated() {
    let mut c = QueueConfig::default();
    c.batch_size = 0;
    let err = TraceQueueManager::builder().config(c).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid queue setting `batch_size`: must be from 1 to 10000000"
    );
}

/// Runs this test binary again with `env` set, executing only `test`.
fn run_child(test: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--ignored", "--nocapture"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
}

#[test]
#[ignore = "run by env_settings_apply_and_code_beats_env in a child process"]
fn child_reads_env() {
    match TraceQueueManager::builder().build() {
        Ok(q) => println!(
            "CONFIG interval={:?} batch={}",
            q.config().interval,
            q.config().batch_size
        ),
        Err(e) => println!("ERROR {e}"),
    }
    if let Ok(q) = TraceQueueManager::builder()
        .batch_size(7)
        .interval(Duration::from_millis(250))
        .build()
    {
        println!(
            "CODE interval={:?} batch={}",
            q.config().interval,
            q.config().batch_size
        );
    }
}

#[test]
fn env_settings_apply_and_code_beats_env() {
    let out = run_child("child_reads_env", &[]);
    assert!(
        out.contains("CONFIG interval=5s batch=100"),
        "defaults are Dify's: {out}"
    );
    let out = run_child(
        "child_reads_env",
        &[
            ("TRACE_QUEUE_MANAGER_INTERVAL", "0.5"),
            ("TRACE_QUEUE_MANAGER_BATCH_SIZE", "42"),
        ],
    );
    assert!(out.contains("CONFIG interval=500ms batch=42"), "{out}");
    assert!(
        out.contains("CODE interval=250ms batch=7"),
        "code beats env: {out}"
    );
    let out = run_child(
        "child_reads_env",
        &[("TRACE_QUEUE_MANAGER_BATCH_SIZE", "lots")],
    );
    assert!(
        out.contains(
            "ERROR environment variable TRACE_QUEUE_MANAGER_BATCH_SIZE=\"lots\" is invalid: expected a whole number from 1 to 10000000"
        ),
        "{out}"
    );
}

#[test]
fn a_dead_backend_opens_the_circuit_instead_of_spinning() {
    let dead = Recorder::scripted(
        "dead",
        (0..1000).map(|_| ExportOutcome::retry(ExportError::new("dead", "connection refused"))),
    );
    let mut c = config(10, 10);
    c.max_retries = 1000;
    c.breaker_threshold = 3;
    c.breaker_cooldown = Duration::from_millis(400);
    let queue = queue_with(c, &[&dead]);
    queue.add_trace_task(task("x")).unwrap();
    assert!(eventually(Duration::from_secs(5), || queue
        .stats()
        .providers[0]
        .circuit_open));
    std::thread::sleep(Duration::from_millis(300));
    let calls = dead.state.lock().unwrap().calls.clone();
    // Without the breaker the 5-20 ms backoff would make ~20 calls in this time.
    assert_eq!(calls.len(), 3, "no call while the circuit is open");
    assert!(eventually(Duration::from_secs(5), || dead
        .state
        .lock()
        .unwrap()
        .calls
        .len()
        == 4));
    let calls = dead.state.lock().unwrap().calls.clone();
    assert!(
        calls[3] - calls[2] >= Duration::from_millis(400),
        "{:?}",
        calls[3] - calls[2]
    );
    queue.shutdown(Duration::from_millis(50));
}

#[test]
fn the_circuit_closes_when_the_backend_recovers() {
    let flaky = Recorder::scripted(
        "flaky",
        (0..3).map(|_| ExportOutcome::retry(ExportError::new("flaky", "503"))),
    );
    let mut c = config(3_600_000, 10);
    c.breaker_threshold = 3;
    c.breaker_cooldown = Duration::from_millis(100);
    let queue = queue_with(c, &[&flaky]);
    queue.add_trace_task(task("a")).unwrap();
    assert!(!queue.flush(Duration::from_secs(5)).timed_out);
    assert_eq!(flaky.delivered(), ["a"]);
    assert!(!queue.stats().providers[0].circuit_open);
    queue.add_trace_task(task("b")).unwrap();
    let start = Instant::now();
    assert!(!queue.flush(Duration::from_secs(5)).timed_out);
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "a closed circuit adds no wait"
    );
}

#[test]
fn retries_stop_at_the_time_budget() {
    let flaky = Recorder::scripted(
        "flaky",
        (0..10_000).map(|_| ExportOutcome::retry(ExportError::new("flaky", "timeout"))),
    );
    let mut c = config(3_600_000, 10);
    c.max_retries = 10_000;
    c.breaker_threshold = 10_000;
    c.max_retry_time = Duration::from_millis(150);
    let queue = queue_with(c, &[&flaky]);
    queue.add_trace_task(task("x")).unwrap();
    let start = Instant::now();
    let report = queue.flush(Duration::from_secs(5));
    assert!(
        !report.timed_out && start.elapsed() < Duration::from_secs(1),
        "{report:?}"
    );
    assert_eq!(queue.stats().dropped(DropReason::RetriesExhausted), 1);
}

#[test]
fn oversized_fields_are_truncated_with_a_marker_not_dropped() {
    let rec = Recorder::named("rec");
    let mut c = config(3_600_000, 10);
    c.field_limits.max_bytes = 1_000;
    let queue = queue_with(c, &[&rec]);
    let mut trace = Trace::new(
        TraceId::generate(),
        ObservationKind::Span,
        "big",
        Utc::now(),
    );
    let mut o = ops_core::Observation::new(ObservationKind::Generation, "llm");
    o.input = Some(serde_json::json!({"prompt": "p".repeat(50_000)}));
    o.output = Some(serde_json::json!("fine"));
    trace.observations.push(o);
    queue.add_trace_task(TraceTask::from_trace(trace)).unwrap();
    assert!(!queue.flush(Duration::from_secs(5)).timed_out);
    let got = rec.traces();
    let input = got[0].observations[0].input.as_ref().unwrap();
    assert_eq!(
        input[ops_core::limits::TRUNCATED_KEY],
        serde_json::json!(true)
    );
    assert!(input["original_bytes"].as_u64().unwrap() > 50_000);
    assert_eq!(
        got[0].observations[0].output,
        Some(serde_json::json!("fine"))
    );
    assert_eq!(queue.stats().truncated, 1);
}

#[test]
fn the_byte_budget_covers_traces_waiting_for_a_down_provider() {
    let hung = Recorder::hanging("down");
    let mut c = config(10, 10);
    c.max_bytes = 20_000;
    let queue = queue_with(c, &[&hung]);
    let mut accepted = 0;
    for i in 0..200 {
        if queue.add_trace_task(task(&format!("t{i}"))).is_ok() {
            accepted += 1;
        }
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // The worker moved what it drained to the provider's lane, but those bytes still count:
    // the cap holds, and later tasks are refused.
    assert!(accepted < 200, "accepted {accepted}");
    assert_eq!(queue.stats().dropped(DropReason::QueueFull), 200 - accepted);
    queue.shutdown(Duration::from_millis(50));
}

#[test]
fn explicit_traces_are_masked_before_a_provider_sees_them() {
    let rec = Recorder::named("rec");
    let queue = queue_with(config(10, 10), &[&rec]);
    let mut trace = Trace::new(
        TraceId::generate(),
        ObservationKind::Span,
        "login",
        Utc::now(),
    );
    let mut o = ops_core::Observation::new(ObservationKind::Span, "login");
    o.input = Some(serde_json::json!({"user": "ana", "password": "hunter2"}));
    o.output = Some(serde_json::json!({"session": {"access_token": "tok-123"}}));
    trace.observations.push(o);
    queue.add_trace_task(TraceTask::from_trace(trace)).unwrap();
    assert!(!queue.flush(Duration::from_secs(5)).timed_out);
    let got = &rec.traces()[0].observations[0];
    assert_eq!(got.input.as_ref().unwrap()["user"], "ana");
    assert_eq!(got.input.as_ref().unwrap()["password"], "[REDACTED]");
    assert_eq!(
        got.output.as_ref().unwrap()["session"]["access_token"],
        "[REDACTED]"
    );
}

#[test]
fn at_the_defaults_the_byte_budget_binds_not_the_item_cap() {
    // A provider that never answers: everything stays in memory.
    let hung = Recorder::hanging("hung");
    let queue = TraceQueueManager::builder()
        .provider(hung.clone())
        .build()
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let q = queue.clone();
            std::thread::spawn(move || {
                (0..5_000)
                    .filter(|i| q.add_trace_task(task(&format!("t{t}-{i}"))).is_ok())
                    .count()
            })
        })
        .collect();
    let accepted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let stats = queue.stats();
    assert_eq!(
        accepted, 20_000,
        "a burst of 20,000 small traces (about 30 MB) is taken whole: {stats:?}"
    );
    assert_eq!(stats.dropped_total(), 0);
    queue.shutdown(Duration::from_millis(100));
}
