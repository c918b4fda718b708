//! What the app's threads allocated is freed on an app thread, not on the queue's worker (an
//! allocator with a lock per arena would otherwise make the app wait for the worker): a
//! `#[traced]` call's records and a Dify-style run once the worker has built its trace, and a
//! trace the app built once it is delivered.

use std::sync::{Arc, Mutex, Weak};
use std::thread::ThreadId;
use std::time::Duration;

use chrono::Utc;
use ops_core::model::{MessageRun, WorkflowNodeTraceInfo, WorkflowRun};
use ops_core::{
    ExportError, ExportOutcome, ObservationKind, Provider, Trace, TraceId, TraceQueueManager,
    TraceTask, traced,
};
use serde::Serialize;
use serde_json::json;

/// Records the thread each copy is dropped on. Large enough to be copied and serialized on
/// the worker, not turned into JSON in the call.
#[derive(Serialize)]
struct Spy(u32, String);

static DROPPED_ON: Mutex<Vec<(u32, ThreadId, Option<String>)>> = Mutex::new(Vec::new());

impl Clone for Spy {
    fn clone(&self) -> Self {
        Spy(self.0, self.1.clone())
    }
}

impl Drop for Spy {
    fn drop(&mut self) {
        let me = std::thread::current();
        DROPPED_ON
            .lock()
            .unwrap()
            .push((self.0, me.id(), me.name().map(str::to_owned)));
    }
}

#[traced]
fn handle(spy: Spy) -> u32 {
    spy.0
}

#[test]
fn the_worker_frees_nothing_a_traced_call_captured() {
    let capture = ops_testkit::capture();
    let app = std::thread::current().id();
    // The argument is captured as a clone (serialized on the worker): the clone is what the
    // worker would free.
    for i in 0..50 {
        assert_eq!(
            capture.run(|| handle(Spy(1000 + i, "x".repeat(500)))),
            1000 + i
        );
    }
    capture.flush();
    assert_eq!(capture.traces().len(), 50, "{}", capture.render());
    // Each enqueue frees what earlier traces left; a few more calls free the rest.
    for i in 0..50 {
        capture.run(|| handle(Spy(i, "x".repeat(500))));
    }
    capture.flush();
    let drops = DROPPED_ON.lock().unwrap().clone();
    let clones_of_first: Vec<_> = drops
        .iter()
        .filter(|(n, _, _)| (1000..1050).contains(n))
        .collect();
    // Each first-round value was dropped twice: the argument, in the call, and its clone.
    assert_eq!(clones_of_first.len(), 100, "{drops:?}");
    let elsewhere: Vec<_> = clones_of_first
        .iter()
        .filter(|(_, thread, _)| *thread != app)
        .collect();
    assert!(
        elsewhere.is_empty(),
        "captured clones freed off the app's thread: {elsewhere:?}"
    );
    // Nothing waits to be freed is left uncounted: the queue's bytes come back to zero once
    // everything is delivered and freed.
    capture.queue().shutdown(Duration::from_secs(5));
    assert_eq!(capture.queue().stats().held_bytes, 0);
}

/// Keeps only a weak reference to what it is given: whether a trace is still alive after
/// delivery says who holds it.
struct Watcher(Arc<Mutex<Vec<Weak<Trace>>>>);

#[ops_core::async_trait]
impl Provider for Watcher {
    fn name(&self) -> &str {
        "watcher"
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        self.0
            .lock()
            .unwrap()
            .extend(batch.iter().map(Arc::downgrade));
        ExportOutcome::Delivered
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }
}

fn explicit(i: usize) -> TraceTask {
    let mut trace = Trace::new(
        TraceId::generate(),
        ObservationKind::Workflow,
        format!("run-{i}"),
        chrono::Utc::now(),
    );
    trace.input = Some(serde_json::json!({"text": "x".repeat(1000)}));
    TraceTask::from_trace(trace)
}

/// Delivers `task` through a queue whose provider keeps only a weak reference to it, with no
/// idle tick to free anything meanwhile; returns the queue and that reference.
fn deliver_one(task: TraceTask) -> (TraceQueueManager, Weak<Trace>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut config = ops_core::QueueConfig::default();
    config.interval = Duration::from_secs(3600);
    let queue = TraceQueueManager::builder()
        .config(config)
        .provider(Watcher(Arc::clone(&seen)))
        .build()
        .unwrap();
    queue.add_trace_task(task).unwrap();
    let report = queue.flush(Duration::from_secs(5));
    assert_eq!(report.delivered, 1, "{report:?}");
    let delivered = seen.lock().unwrap()[0].clone();
    (queue, delivered)
}

#[test]
fn a_delivered_trace_the_app_built_is_freed_by_the_app_not_the_worker() {
    let (queue, delivered) = deliver_one(explicit(0));
    assert!(
        delivered.upgrade().is_some(),
        "the worker freed the delivered trace"
    );
    assert!(queue.stats().held_bytes > 0, "it is counted while it waits");
    // The next enqueue, on this thread, frees it.
    queue.add_trace_task(explicit(1)).unwrap();
    assert!(
        delivered.upgrade().is_none(),
        "still alive after an enqueue"
    );
    queue.shutdown(Duration::from_secs(5));
    assert_eq!(queue.stats().held_bytes, 0);
}

fn workflow() -> TraceTask {
    let run = WorkflowRun {
        id: "0190a4b2-0000-7000-8000-000000000001".into(),
        status: "succeeded".into(),
        created_at: Utc::now(),
        inputs: [("question".to_owned(), json!("q".repeat(1000)))]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let node = WorkflowNodeTraceInfo::of_run(&run, 0, "node-0", "llm", "LLM", Utc::now(), 0.5);
    TraceTask::workflow_run(run, vec![node]).unwrap()
}

fn message() -> TraceTask {
    TraceTask::message_run(MessageRun {
        id: "0190a4b2-0000-7000-9000-000000000001".into(),
        query: "m".repeat(1000),
        answer: "n".repeat(1000),
        created_at: Utc::now(),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn a_dify_style_run_is_freed_by_the_app_not_the_worker() {
    for (kind, task) in [("workflow run", workflow()), ("message run", message())] {
        let (queue, delivered) = deliver_one(task);
        assert!(
            delivered.upgrade().is_none(),
            "{kind}: the trace built from it is the worker's to free"
        );
        // The run itself waits, counted, for an app thread to free it.
        assert!(
            queue.stats().held_bytes > 1000,
            "{kind}: the worker freed the run the app allocated"
        );
        queue.shutdown(Duration::from_secs(5));
        assert_eq!(queue.stats().held_bytes, 0, "{kind}");
    }
}
