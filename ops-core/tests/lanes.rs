//! How a lane behaves when its provider misbehaves: slow, poisoned, spinning on the CPU,
//! panicking, rate-limited; and what shutdown counts when delivery cannot finish.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_core::{
    DropReason, ExportError, ExportOutcome, Provider, QueueConfig, Trace, TraceQueueManager,
};
use support::{Recorder, eventually, task};

/// What a [`Behaving`] provider does with a batch.
type Behaviour = dyn Fn(&[Arc<Trace>]) -> Act + Send + Sync;

enum Act {
    Answer(ExportOutcome),
    /// Never answers (an await that never completes).
    Hang,
    /// Blocks its thread for this long, then delivers (a provider stuck in CPU work).
    Spin(Duration),
    Panic,
}

/// A provider whose answer to each batch is decided by a closure; it records what it
/// accepted and when each call came.
#[derive(Clone)]
struct Behaving {
    name: &'static str,
    act: Arc<Behaviour>,
    delivered: Arc<Mutex<Vec<String>>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

/// When the provider was called, with the names of the batch's traces.
type Call = (Instant, Vec<String>);

impl Behaving {
    fn new(name: &'static str, act: impl Fn(&[Arc<Trace>]) -> Act + Send + Sync + 'static) -> Self {
        Self {
            name,
            act: Arc::new(act),
            delivered: Arc::default(),
            calls: Arc::default(),
        }
    }

    fn delivered(&self) -> Vec<String> {
        self.delivered.lock().unwrap().clone()
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

fn names(batch: &[Arc<Trace>]) -> Vec<String> {
    batch.iter().map(|t| t.name.clone()).collect()
}

#[ops_core::async_trait]
impl Provider for Behaving {
    fn name(&self) -> &str {
        self.name
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        self.calls
            .lock()
            .unwrap()
            .push((Instant::now(), names(batch)));
        match (self.act)(batch) {
            Act::Answer(outcome) => {
                if matches!(outcome, ExportOutcome::Delivered) {
                    self.delivered.lock().unwrap().extend(names(batch));
                }
                outcome
            }
            Act::Hang => std::future::pending().await,
            Act::Spin(d) => {
                std::thread::sleep(d);
                self.delivered.lock().unwrap().extend(names(batch));
                ExportOutcome::Delivered
            }
            Act::Panic => panic!("a provider bug"),
        }
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }
}

fn config() -> QueueConfig {
    let mut c = QueueConfig::default();
    c.interval = Duration::from_millis(20);
    c.batch_size = 1;
    c.initial_backoff = Duration::from_millis(20);
    c.max_backoff = Duration::from_millis(100);
    c.export_timeout = Duration::from_millis(300);
    c.breaker_cooldown = Duration::from_secs(30);
    c
}

fn queue(c: QueueConfig, providers: Vec<Behaving>) -> TraceQueueManager {
    let mut b = TraceQueueManager::builder().config(c);
    for p in providers {
        b = b.provider(p);
    }
    b.build().unwrap()
}

fn contains(batch: &[Arc<Trace>], name: &str) -> bool {
    batch.iter().any(|t| t.name == name)
}

#[test]
fn a_servers_retry_after_beats_the_circuit_breaker() {
    let answered = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&answered);
    let p = Behaving::new("p", move |_| {
        let mut n = counter.lock().unwrap();
        *n += 1;
        if *n <= 6 {
            Act::Answer(ExportOutcome::Retry {
                after: Some(Duration::from_millis(200)),
                error: ExportError::new("p", "HTTP 429").with_status(429),
            })
        } else {
            Act::Answer(ExportOutcome::Delivered)
        }
    });
    let mut c = config();
    c.breaker_threshold = 5;
    let q = queue(c, vec![p.clone()]);
    let start = Instant::now();
    q.add_trace_task(task("t")).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || p.delivered() == ["t"]),
        "delivered: {:?}",
        p.delivered()
    );
    let calls = p.calls();
    assert_eq!(calls.len(), 7);
    for pair in calls.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(190) && gap < Duration::from_secs(5),
            "each retry waits what the server asked, never the breaker's 30 s: {gap:?}"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(!q.stats().providers[0].circuit_open);
}

#[test]
fn a_batch_that_keeps_timing_out_never_holds_later_ones_back_and_is_dropped_in_the_end() {
    let p = Behaving::new("p", |batch| {
        if contains(batch, "slow") {
            Act::Hang
        } else {
            Act::Answer(ExportOutcome::Delivered)
        }
    });
    let mut c = config();
    c.max_retries = 3;
    c.breaker_threshold = 100;
    let q = queue(c, vec![p.clone()]);
    q.add_trace_task(task("slow")).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let sent = Instant::now();
    for i in 0..10 {
        q.add_trace_task(task(&format!("t{i}"))).unwrap();
    }
    assert!(
        eventually(Duration::from_secs(5), || p.delivered().len() == 10),
        "{:?}",
        p.delivered()
    );
    let waited = sent.elapsed();
    assert!(
        waited < Duration::from_millis(300) * 2 + Duration::from_millis(500),
        "later traces waited at most about one export deadline: {waited:?}"
    );
    assert!(eventually(Duration::from_secs(10), || {
        q.stats().dropped(DropReason::RetriesExhausted) == 1
    }));
    let slow_calls = p
        .calls()
        .iter()
        .filter(|(_, n)| n.contains(&"slow".to_owned()))
        .count();
    assert_eq!(slow_calls, 4, "one try and three retries");
}

#[test]
fn a_repeated_server_error_is_bisected_so_one_poisoned_trace_sinks_no_neighbour() {
    let p = Behaving::new("p", |batch| {
        if contains(batch, "poison") {
            Act::Answer(ExportOutcome::retry(
                ExportError::new("p", "HTTP 500: internal error").with_status(500),
            ))
        } else {
            Act::Answer(ExportOutcome::Delivered)
        }
    });
    let mut c = config();
    c.batch_size = 8;
    c.interval = Duration::from_secs(3600);
    c.max_retries = 12;
    c.breaker_threshold = 1000;
    let q = queue(c, vec![p.clone()]);
    for i in 0..7 {
        q.add_trace_task(task(&format!("good-{i}"))).unwrap();
    }
    q.add_trace_task(task("poison")).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || p.delivered().len() == 7),
        "{:?}",
        p.delivered()
    );
    assert!(eventually(Duration::from_secs(10), || {
        q.stats().dropped(DropReason::RetriesExhausted) == 1
    }));
    let mut delivered = p.delivered();
    delivered.sort();
    assert_eq!(
        delivered,
        (0..7).map(|i| format!("good-{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn a_provider_spinning_on_the_cpu_delays_only_itself() {
    let stuck = Behaving::new("stuck", |_| Act::Spin(Duration::from_secs(3)));
    let ok = Behaving::new("ok", |_| Act::Answer(ExportOutcome::Delivered));
    let mut c = config();
    c.export_timeout = Duration::from_secs(10);
    let q = queue(c, vec![stuck.clone(), ok.clone()]);
    let start = Instant::now();
    for i in 0..10 {
        q.add_trace_task(task(&format!("t{i}"))).unwrap();
    }
    assert!(
        eventually(Duration::from_secs(2), || ok.delivered().len() == 10),
        "the healthy provider got {:?} in {:?}",
        ok.delivered(),
        start.elapsed()
    );
    assert!(stuck.delivered().len() < 10);
    drop(q);
}

#[test]
fn a_panicking_provider_is_retried_and_its_lane_lives_on() {
    let calls = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&calls);
    let p = Behaving::new("p", move |_| {
        let mut n = counter.lock().unwrap();
        *n += 1;
        if *n == 1 {
            Act::Panic
        } else {
            Act::Answer(ExportOutcome::Delivered)
        }
    });
    let q = queue(config(), vec![p.clone()]);
    q.add_trace_task(task("a")).unwrap();
    q.add_trace_task(task("b")).unwrap();
    assert!(eventually(Duration::from_secs(5), || p.delivered().len() == 2));
    let stats = q.stats();
    assert_eq!(stats.dropped_total(), 0, "{stats:?}");
    assert!(
        stats.providers[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("panicked")),
        "{stats:?}"
    );
}

#[test]
fn shutdown_counts_every_trace_it_could_not_deliver() {
    let p = Behaving::new("p", |_| Act::Hang);
    let mut c = config();
    c.batch_size = 5;
    c.export_timeout = Duration::from_secs(60);
    let q = queue(c, vec![p.clone()]);
    for i in 0..42 {
        q.add_trace_task(task(&format!("t{i}"))).unwrap();
    }
    assert!(eventually(Duration::from_secs(5), || !p.calls().is_empty()));
    let start = Instant::now();
    let report = q.shutdown(Duration::from_millis(300));
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(report.dropped, 42, "{report:?}");
    assert_eq!(report.pending, 0, "{report:?}");
    let stats = q.stats();
    assert_eq!(stats.dropped(DropReason::Shutdown), 42, "{stats:?}");
    assert_eq!(stats.exported, 0);
}

#[test]
fn a_worker_that_cannot_answer_shutdown_in_time_has_its_traces_counted() {
    struct SlowRouter;
    #[ops_core::async_trait]
    impl ops_core::ProviderRouter for SlowRouter {
        async fn route(&self, _app: &str) -> Result<Vec<String>, ExportError> {
            // Blocks the worker's own thread, as a router doing blocking I/O would.
            std::thread::sleep(Duration::from_secs(2));
            Ok(Vec::new())
        }
        async fn build(&self, _key: &str) -> Result<Box<dyn Provider>, ExportError> {
            Err(ExportError::new("router", "unused"))
        }
        fn is_enabled_cached(&self, _app: &str) -> Option<bool> {
            None
        }
    }
    let rec = Recorder::named("rec");
    let mut c = config();
    c.batch_size = 100;
    let q = TraceQueueManager::builder()
        .config(c)
        .provider(rec.clone())
        .router(Arc::new(SlowRouter))
        .build()
        .unwrap();
    let app = q.for_app("app-1", None);
    for i in 0..5 {
        app.add_trace_task(task(&format!("t{i}"))).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let report = q.shutdown(Duration::from_millis(200));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let stats = q.stats();
    assert_eq!(
        report.dropped + stats.exported,
        5,
        "every trace is delivered or counted: {report:?} {stats:?}"
    );
}

#[test]
fn a_server_error_that_is_final_is_bisected_before_any_trace_is_failed() {
    let p = Behaving::new("p", |batch| {
        if contains(batch, "poison") {
            Act::Answer(ExportOutcome::fatal(
                ExportError::new("p", "HTTP 500: cannot decode").with_status(500),
            ))
        } else {
            Act::Answer(ExportOutcome::Delivered)
        }
    });
    let mut c = config();
    c.batch_size = 10;
    c.interval = Duration::from_secs(3600);
    let q = queue(c, vec![p.clone()]);
    for i in 0..9 {
        q.add_trace_task(task(&format!("good-{i}"))).unwrap();
    }
    q.add_trace_task(task("poison")).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || p.delivered().len() == 9),
        "{:?}",
        p.delivered()
    );
    assert!(eventually(Duration::from_secs(5), || q.stats().failed == 1));
    assert_eq!(q.stats().dropped_total(), 0);
}
