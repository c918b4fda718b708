//! The byte budget is only as good as the estimate behind it: the heap a trace holds, as
//! estimated by `approx_size`, is checked here against what a counting allocator sees, for
//! ordinary and hostile shapes. Each allocation counts as the allocator's chunk for it (a
//! header, rounded up to 16, at least 32 bytes), as the estimate does.

use std::alloc::System;

use chrono::Utc;
use ops_core::model::{
    BaseTraceInfo, DatasetRetrievalTraceInfo, MessageRun, WorkflowNodeTraceInfo, WorkflowRun,
};
use ops_core::{Observation, ObservationKind, Trace, TraceId, TraceInfo, TraceTask, Usage};
use serde_json::{Map, Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Builds a value and returns it with the heap it holds: what is still allocated once it is
/// built, with the allocator's bookkeeping (16 bytes a chunk). Only one measurement runs at a
/// time: this binary has a single test.
fn measured<T>(build: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(ALLOCATOR);
    let value = build();
    let s = region.change();
    // Reallocations are counted in `bytes_allocated` and `bytes_deallocated` already.
    let bytes = s.bytes_allocated as isize - s.bytes_deallocated as isize;
    let blocks = s.allocations as isize - s.deallocations as isize;
    (value, (bytes + 16 * blocks).max(0) as usize)
}

fn check(what: &str, estimate: usize, real: usize) {
    let ratio = estimate as f64 / real as f64;
    println!("{what}: estimate {estimate} B, real {real} B, ratio {ratio:.3}");
    assert!(
        (0.75..=1.25).contains(&ratio),
        "{what}: the estimate {estimate} is not within 25% of the real heap {real}"
    );
}

fn trace(name: &str) -> Trace {
    Trace::new(
        TraceId::generate(),
        ObservationKind::Message,
        name,
        Utc::now(),
    )
}

fn parse(text: String) -> Value {
    serde_json::from_str(&text).unwrap()
}

fn ordinary() -> Trace {
    let mut t = trace("answer");
    t.tags = vec!["chat".into(), "beta".into()];
    t.attributes.user_id = Some("user-42".into());
    t.attributes.session_id = Some("conversation-9".into());
    t.input = Some(json!({"query": "How do I pack for a week of rain?"}));
    for i in 0..10 {
        let mut o = Observation::new(ObservationKind::Generation, format!("step-{i}"));
        o.input = Some(json!({
            "messages": [
                {"role": "system", "content": "You are a helpful travel assistant."},
                {"role": "user", "content": "How do I pack for a week of rain in Lisbon?"}
            ],
            "temperature": 0.2,
            "top_k": 3
        }));
        o.output = Some(json!(
            "Bring a light rain jacket, quick-dry layers and two pairs of shoes."
        ));
        o.metadata.insert("node_type".into(), json!("llm"));
        o.metadata.insert("attempt".into(), json!(1));
        o.model = Some("gpt-4o-mini".into());
        o.usage = Some(Usage::tokens(612, 148).with_cost(0.0001806, "USD"));
        o.model_parameters.insert("temperature".into(), json!(0.2));
        t.observations.push(o);
    }
    t
}

#[test]
fn the_estimate_is_within_a_quarter_of_the_real_heap() {
    let (t, real) = measured(ordinary);
    check("ordinary: 10 generations", t.approx_size(), real);

    let (t, real) = measured(|| {
        let mut t = trace("big");
        let mut o = Observation::new(ObservationKind::Span, "read");
        o.input = Some(Value::String("x".repeat(4 << 20)));
        o.output = Some(Value::String("y".repeat(1 << 20)));
        t.observations.push(o);
        t
    });
    check("one 4 MiB input and a 1 MiB output", t.approx_size(), real);

    let (t, real) = measured(|| {
        let mut t = trace("wide");
        let map: Map<String, Value> = (0..10_000)
            .map(|i| (format!("key-{i}"), json!(format!("value {i}"))))
            .collect();
        let mut o = Observation::new(ObservationKind::Span, "wide");
        o.input = Some(Value::Object(map));
        t.observations.push(o);
        t
    });
    check(
        "an object of 10,000 keys, built in one go",
        t.approx_size(),
        real,
    );

    let (t, real) = measured(|| {
        let mut t = trace("wide");
        let mut order: Vec<u64> = (0..10_000).collect();
        let mut x = 12345u64;
        for i in (1..order.len()).rev() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (x >> 33) as usize % (i + 1));
        }
        let fields: Vec<String> = order
            .iter()
            .map(|i| format!(r#""field-{i}":"value {i}""#))
            .collect();
        let mut o = Observation::new(ObservationKind::Span, "wide");
        o.input = Some(parse(format!("{{{}}}", fields.join(","))));
        t.observations.push(o);
        t
    });
    check(
        "an object of 10,000 keys in random order, parsed",
        t.approx_size(),
        real,
    );

    let (t, real) = measured(|| {
        let mut t = trace("parsed");
        let mut o = Observation::new(ObservationKind::Span, "parsed");
        let items: Vec<String> = (0..2_000)
            .map(|i| format!(r#"{{"id":{i},"name":"item {i}","tags":["a","b"],"score":0.5}}"#))
            .collect();
        o.output = Some(parse(format!("[{}]", items.join(","))));
        t.observations.push(o);
        t
    });
    check("2,000 parsed records", t.approx_size(), real);

    let (t, real) = measured(|| {
        let mut t = trace("many");
        for i in 0..2_000 {
            t.observations
                .push(Observation::new(ObservationKind::Tool, format!("call-{i}")));
        }
        t
    });
    check("2,000 bare observations", t.approx_size(), real);

    let (t, real) = measured(|| {
        let mut t = trace("tags");
        let mut o = Observation::new(ObservationKind::Span, "tagged");
        o.tags = (0..100_000).map(|i| format!("tag-{i}")).collect();
        t.observations.push(o);
        t
    });
    check("100,000 tags", t.approx_size(), real);

    let (t, real) = measured(|| {
        let mut t = trace("numbers");
        let mut o = Observation::new(ObservationKind::Span, "numbers");
        o.output = Some(Value::Array((0..100_000).map(|i| json!(i)).collect()));
        t.observations.push(o);
        t
    });
    check("100,000 numbers", t.approx_size(), real);

    let (t, real) = measured(|| {
        let mut t = trace("strings");
        let mut o = Observation::new(ObservationKind::Span, "names");
        o.name = "n".repeat(10 << 20);
        o.model = Some("m".repeat(4 << 20));
        o.attributes.user_id = Some("u".repeat(1 << 20));
        t.observations.push(o);
        t
    });
    check("a 10 MB name and a 4 MB model", t.approx_size(), real);

    tasks_from_run_data();
}

fn tasks_from_run_data() {
    let (task, real) = measured(|| {
        let run = WorkflowRun {
            id: "0190a4b2-0000-7000-8000-000000000001".into(),
            status: "succeeded".into(),
            created_at: Utc::now(),
            inputs: (0..50)
                .map(|i| (format!("input-{i}"), json!(format!("value number {i}"))))
                .collect(),
            outputs: [("answer".to_owned(), json!("z".repeat(200_000)))]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let nodes = (0..20)
            .map(|i| {
                let mut n = WorkflowNodeTraceInfo::of_run(
                    &run,
                    i64::from(i),
                    format!("node-{i}"),
                    "llm",
                    "LLM",
                    Utc::now(),
                    0.5,
                );
                n.node_inputs = Some(
                    [("prompt".to_owned(), json!("p".repeat(5_000)))]
                        .into_iter()
                        .collect(),
                );
                n
            })
            .collect();
        TraceTask::workflow_run(run, nodes).unwrap()
    });
    check("a workflow run with 20 nodes", task.approx_size(), real);

    let (task, real) = measured(|| {
        let message = MessageRun {
            id: "0190a4b2-0000-7000-8000-000000000002".into(),
            query: "q".repeat(300_000),
            answer: "a".repeat(100_000),
            created_at: Utc::now(),
            ..Default::default()
        };
        TraceTask::message_run(message).unwrap()
    });
    check("a message run", task.approx_size(), real);

    let (task, real) = measured(|| {
        let info = TraceInfo::DatasetRetrieval(DatasetRetrievalTraceInfo {
            base: BaseTraceInfo {
                message_id: Some("m-1".into()),
                ..Default::default()
            },
            documents: Value::Array(
                (0..500)
                    .map(|i| json!({"id": i, "content": "d".repeat(500), "score": 0.9}))
                    .collect(),
            ),
            ..Default::default()
        });
        TraceTask::from_info(info).unwrap()
    });
    check("a retrieval of 500 documents", task.approx_size(), real);
}
