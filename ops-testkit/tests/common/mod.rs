//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use ops_core::{Observation, ObservationKind, Trace, TraceId, TraceTask};

/// A trace `name` whose root `name` has one child per entry of `children`.
pub fn tree(name: &str, children: &[(&str, ObservationKind)]) -> Trace {
    let mut trace = Trace::new(
        TraceId::generate(),
        ObservationKind::Workflow,
        name,
        chrono::Utc::now(),
    );
    let root = Observation::new(ObservationKind::Workflow, name);
    let root_id = root.id;
    trace.observations.push(root);
    for (child, kind) in children {
        let mut o = Observation::new(*kind, *child);
        o.parent_id = Some(root_id);
        trace.observations.push(o);
    }
    trace
}

/// What `#[traced]` will do when a root finishes: hand the tree to the current queue.
pub fn emit(trace: Trace) {
    ops_core::current_queue()
        .expect("a capture is installed as the default here")
        .add_trace_task(TraceTask::from_trace(trace))
        .expect("the trace is queued");
}

/// The sorted names of `traces`.
pub fn names(traces: &[std::sync::Arc<Trace>]) -> Vec<String> {
    let mut names: Vec<String> = traces.iter().map(|t| t.name.clone()).collect();
    names.sort();
    names
}

/// `prefix-0` .. `prefix-(n-1)`, sorted as strings.
pub fn expected_names(prefix: &str, n: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    names.sort();
    names
}
