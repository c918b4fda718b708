//! No input can crash the host: values nested up to 1,000,000 deep, huge strings of control
//! characters, huge names and tag lists, through `#[traced]` and the explicit API, with and
//! without the spool (and read back after a restart). Each is delivered, cut down with a
//! marker where it was over a limit; none aborts the process.
//!
//! The tests run on the test harness's threads (2 MiB stacks), so any recursion over the
//! depth of a value would overflow here.

mod support;

use std::time::Duration;

use chrono::Utc;
use ops_core::limits::TRUNCATED_KEY;
use ops_core::model::{WorkflowNodeTraceInfo, WorkflowRun};
use ops_core::spool::SpoolConfig;
use ops_core::{
    Observation, ObservationKind, Trace, TraceId, TraceQueueManager, TraceTask, traced,
};
use serde_json::{Value, json};
use support::{Recorder, eventually};

const DEEP: usize = 1_000_000;

/// `[[[ ... "leaf" ... ]]]`, `levels` deep, built without recursion.
fn deep(levels: usize) -> Value {
    let mut v = json!("leaf");
    for _ in 0..levels {
        v = Value::Array(vec![v]);
    }
    v
}

/// Drops a value without recursion (serde_json's own drop recurses once per level).
fn drop_flat(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// The depth of a value, measured without recursion.
fn depth(value: &Value) -> usize {
    ops_core::limits::measure(value).1
}

/// Whether a marker sits somewhere in `value`.
fn has_marker(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        if ops_core::limits::is_marker(v) {
            return true;
        }
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    false
}

fn queue(rec: &Recorder, spool: Option<&std::path::Path>) -> TraceQueueManager {
    let mut b = TraceQueueManager::builder()
        .interval(Duration::from_millis(20))
        .provider(rec.clone());
    if let Some(dir) = spool {
        b = b.spool(SpoolConfig::new(dir));
    }
    b.build().unwrap()
}

#[traced(kind = "tool")]
fn take(value: &Value, many: &[Value]) -> usize {
    value.as_array().map_or(0, Vec::len) + many.len()
}

#[traced(kind = "tool")]
fn give(levels: usize) -> Value {
    deep(levels)
}

fn check_delivered(rec: &Recorder) {
    assert!(eventually(Duration::from_secs(10), || !rec
        .traces()
        .is_empty()));
    for trace in rec.traces() {
        for o in &trace.observations {
            for v in [&o.input, &o.output].into_iter().flatten() {
                assert!(depth(v) <= 70, "{} is {} deep", o.name, depth(v));
            }
        }
    }
}

#[test]
fn a_deep_value_through_traced_is_cut_and_delivered() {
    for spool in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::named("rec");
        let q = queue(&rec, spool.then(|| dir.path()));
        ops_core::with_default(q.clone(), || {
            let v = deep(DEEP);
            let many = vec![deep(DEEP)];
            take(&v, &many);
            drop_flat(v);
            many.into_iter().for_each(drop_flat);
            drop_flat(give(DEEP));
        });
        assert_eq!(q.flush(Duration::from_secs(10)).dropped, 0);
        check_delivered(&rec);
        let traces = rec.traces();
        let take = traces
            .iter()
            .flat_map(|t| &t.observations)
            .find(|o| o.name == "take")
            .unwrap();
        assert!(has_marker(take.input.as_ref().unwrap()), "spool {spool}");
        let give = traces
            .iter()
            .flat_map(|t| &t.observations)
            .find(|o| o.name == "give")
            .unwrap();
        assert!(has_marker(give.output.as_ref().unwrap()), "spool {spool}");
    }
}

fn deep_trace() -> Trace {
    let mut t = Trace::new(
        TraceId::generate(),
        ObservationKind::Workflow,
        "deep",
        Utc::now(),
    );
    t.input = Some(deep(DEEP));
    let mut o = Observation::new(ObservationKind::Generation, "llm");
    o.input = Some(deep(DEEP));
    o.output = Some(json!({"nested": deep(10)}));
    o.metadata.insert("deep".into(), deep(DEEP));
    o.model_parameters.insert("deep".into(), deep(DEEP));
    t.observations.push(o);
    t
}

fn deep_run() -> (WorkflowRun, Vec<WorkflowNodeTraceInfo>) {
    let mut run = WorkflowRun {
        id: uuid::Uuid::now_v7().to_string(),
        status: "succeeded".into(),
        created_at: Utc::now(),
        ..Default::default()
    };
    run.inputs.insert("deep".into(), deep(DEEP));
    let mut node = WorkflowNodeTraceInfo::of_run(&run, 1, "n1", "llm", "LLM", Utc::now(), 0.1);
    node.process_data = Some([("prompts".to_owned(), deep(DEEP))].into_iter().collect());
    (run, vec![node])
}

#[test]
fn a_deep_value_through_the_explicit_api_is_cut_and_delivered() {
    for spool in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::named("rec");
        let q = queue(&rec, spool.then(|| dir.path()));
        q.add_trace_task(TraceTask::from_trace(deep_trace()))
            .unwrap();
        let (run, nodes) = deep_run();
        q.trace_workflow_run(run, nodes).unwrap();
        let report = q.flush(Duration::from_secs(10));
        assert!(!report.timed_out, "{report:?}");
        let stats = q.stats();
        assert_eq!((stats.exported, stats.dropped_total()), (2, 0), "{stats:?}");
        check_delivered(&rec);
        let traces = rec.traces();
        let t = traces.iter().find(|t| t.name == "deep").unwrap();
        assert!(has_marker(t.input.as_ref().unwrap()));
        assert!(has_marker(&t.observations[0].metadata["deep"]));
        assert_eq!(
            t.observations[0].output,
            Some(json!({"nested": deep(10)})),
            "what is within the limits is kept as it is"
        );
    }
}

#[test]
fn what_was_spooled_deep_or_huge_is_read_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A provider that never answers: everything stays in the spool.
        let hung = Recorder::hanging("rec");
        let q = queue(&hung, Some(dir.path()));
        q.add_trace_task(TraceTask::from_trace(deep_trace()))
            .unwrap();
        let mut huge = Trace::new(
            TraceId::generate(),
            ObservationKind::Span,
            "huge",
            Utc::now(),
        );
        let mut o = Observation::new(ObservationKind::Span, "n".repeat(10 << 20));
        // 20 MB of control characters: 120 MB as JSON before it is cut.
        o.input = Some(Value::String("\u{1}".repeat(20 << 20)));
        o.tags = (0..100_000).map(|i| format!("tag-{i}")).collect();
        o.model = Some("m".repeat(4 << 20));
        huge.observations.push(o);
        let accepted = q.add_trace_task(TraceTask::from_trace(huge)).unwrap();
        assert!(accepted.is_durable());
        let report = q.shutdown(Duration::from_millis(300));
        assert_eq!(report.spooled, 2, "{report:?}");
    }
    let rec = Recorder::named("rec");
    let q = queue(&rec, Some(dir.path()));
    let report = q.flush(Duration::from_secs(10));
    assert_eq!(
        (report.delivered, report.dropped),
        (2, 0),
        "{report:?} {:?}",
        q.stats()
    );
    let spool = q.stats().spool.unwrap();
    assert_eq!(
        (
            spool.replayed,
            spool.unreadable_records,
            spool.corrupt_records
        ),
        (2, 0, 0)
    );
    let traces = rec.traces();
    let huge = &traces
        .iter()
        .find(|t| t.name.len() < 2000 && t.observations[0].name.starts_with("nnn"))
        .unwrap()
        .observations[0];
    assert!(huge.name.len() <= 1024);
    assert!(huge.model.as_ref().unwrap().len() <= 1024);
    assert_eq!(huge.tags.len(), 1000);
    assert_eq!(huge.input.as_ref().unwrap()[TRUNCATED_KEY], json!(true));
    assert!(
        huge.input.as_ref().unwrap()["original_bytes"]
            .as_u64()
            .unwrap()
            > 120 << 20,
        "counted at its escaped size"
    );
}
