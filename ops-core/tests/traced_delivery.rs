//! How a traced call's data travels: values captured by clone are serialized on the queue's
//! worker, and long traces are delivered in bounded parts that share the trace id.

use std::sync::{Arc, Mutex};

use ops_core::context::{PART_MAX_BYTES, PART_MAX_OBSERVATIONS};
use ops_core::traced;
use serde::{Serialize, Serializer};
use serde_json::json;

/// What a spy serializes to: long enough not to count as a small value (those are turned into
/// JSON at once, wherever they are captured).
fn spy_text() -> String {
    "spy ".repeat(40)
}

/// Records the name of the thread that serializes it.
#[derive(Clone)]
struct Spy {
    seen_on: Arc<Mutex<Vec<String>>>,
}

impl Serialize for Spy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let thread = std::thread::current().name().unwrap_or("?").to_owned();
        self.seen_on.lock().unwrap().push(thread);
        s.serialize_str(&spy_text())
    }
}

/// The same, but not `Clone`: it can only be serialized on the caller.
struct NoCloneSpy(Spy);

impl Serialize for NoCloneSpy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[traced]
fn observe(cloned: Spy, borrowed: &Spy, not_cloned: NoCloneSpy) -> Spy {
    let _ = (borrowed, not_cloned);
    cloned
}

#[test]
fn cloneable_values_are_serialized_on_the_worker_and_others_on_the_caller() {
    let capture = ops_testkit::capture();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let spy = || Spy {
        seen_on: Arc::clone(&seen),
    };
    let caller = std::thread::current().name().unwrap().to_owned();
    capture.run(|| observe(spy(), &spy(), NoCloneSpy(spy())));
    // Only the value that could not be cloned was serialized during the call. Every value
    // is sized first (a walk that builds nothing, so that no value over the limits is ever
    // copied): that counts as a visit on the caller too.
    let during_call = seen.lock().unwrap().clone();
    let on_caller = during_call.iter().filter(|t| **t == caller).count();
    assert_eq!(on_caller, 5, "4 sizings + 1 serialization: {during_call:?}");
    let o = capture.find("observe").unwrap();
    let spy = spy_text();
    assert_eq!(
        o.input,
        Some(json!({"cloned": spy, "borrowed": spy, "not_cloned": spy}))
    );
    assert_eq!(o.output, Some(json!(spy)));
    let all = seen.lock().unwrap().clone();
    let on_worker = all.iter().filter(|t| *t == "ops-trace-worker").count();
    assert_eq!(
        on_worker, 3,
        "the cloned input, the borrowed input and the output: {all:?}"
    );
}

#[traced]
fn leaf(i: usize) -> usize {
    i
}

#[traced(kind = "workflow")]
fn wide(n: usize) {
    for i in 0..n {
        leaf(i);
    }
}

#[test]
fn a_long_trace_is_delivered_in_parts_of_bounded_size() {
    let capture = ops_testkit::capture();
    let n = 2 * PART_MAX_OBSERVATIONS + 100;
    capture.run(|| wide(n));
    capture.flush();
    let parts = capture.mock().traces();
    assert_eq!(
        parts.len(),
        3,
        "{} observations in parts of at most {PART_MAX_OBSERVATIONS}",
        n + 1
    );
    assert!(parts.iter().all(|p| p.id == parts[0].id));
    assert!(
        parts
            .iter()
            .all(|p| p.observations.len() <= PART_MAX_OBSERVATIONS)
    );
    let total: usize = parts.iter().map(|p| p.observations.len()).sum();
    assert_eq!(total, n + 1);
    // The part holding the root carries the trace's end; the others do not.
    let with_root: Vec<_> = parts.iter().filter(|p| p.end_time.is_some()).collect();
    assert_eq!(with_root.len(), 1);
    assert!(with_root[0].observations.iter().any(|o| o.name == "wide"));
    let merged = capture.traces();
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].observations.len(), n + 1);
    let root = merged[0].roots().next().unwrap();
    assert_eq!(merged[0].children_of(root.id).count(), n);
}

#[traced(capture_output = false)]
fn big(payload: String) -> usize {
    payload.len()
}

#[traced]
fn heavy(count: usize, size: usize) {
    for _ in 0..count {
        big("x".repeat(size));
    }
}

#[test]
fn a_trace_with_large_payloads_is_delivered_in_parts_by_size() {
    let capture = ops_testkit::capture();
    // An eighth of a part each: under the 1 MiB limit of one value, so none is cut.
    let size = PART_MAX_BYTES / 8 + 1;
    capture.run(|| heavy(20, size));
    capture.flush();
    let parts = capture.mock().traces();
    assert!(
        parts.len() >= 3,
        "20 payloads of an eighth of a part each: {} parts",
        parts.len()
    );
    for part in &parts {
        let bytes: usize = part
            .observations
            .iter()
            .filter_map(|o| o.input.as_ref())
            .map(|i| i["payload"].as_str().map_or(0, str::len))
            .sum();
        assert!(bytes <= PART_MAX_BYTES + size, "a part holds {bytes} bytes");
    }
    let stats = capture.queue().stats();
    assert_eq!(stats.dropped_total(), 0, "{stats:?}");
}
