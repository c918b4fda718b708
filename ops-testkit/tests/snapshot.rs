//! Tree snapshots with insta: a chatflow (message → workflow → LLM, tool and knowledge
//! retrieval nodes) built from a finished workflow run, rendered redacted.

mod common;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ops_core::model::{BaseTraceInfo, WorkflowNodeTraceInfo, WorkflowRun};
use ops_core::{Level, ObservationKind, TraceTask};
use ops_testkit::{capture, expect};
use serde_json::{Map, Value, json};

fn at(ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + TimeDelta::milliseconds(ms)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

const RUN_ID: &str = "0195505a-0000-7000-8000-000000000001";

fn node(
    index: i64,
    node_type: &str,
    title: &str,
    start_ms: i64,
    elapsed_ms: i64,
) -> WorkflowNodeTraceInfo {
    WorkflowNodeTraceInfo {
        base: BaseTraceInfo {
            start_time: Some(at(start_ms)),
            end_time: Some(at(start_ms + elapsed_ms)),
            ..BaseTraceInfo::default()
        },
        workflow_id: "wf-1".into(),
        workflow_run_id: RUN_ID.into(),
        tenant_id: "tenant-1".into(),
        node_execution_id: format!("0195505a-0000-7000-8000-00000000010{index}"),
        node_id: format!("node-{index}"),
        node_type: node_type.into(),
        title: title.into(),
        status: "succeeded".into(),
        elapsed_time: elapsed_ms as f64 / 1000.0,
        index,
        ..WorkflowNodeTraceInfo::default()
    }
}

/// A chatflow run: a knowledge retrieval, an LLM call and a tool call.
fn chatflow() -> (WorkflowRun, Vec<WorkflowNodeTraceInfo>) {
    let run = WorkflowRun {
        id: RUN_ID.into(),
        tenant_id: "tenant-1".into(),
        app_id: "app-1".into(),
        workflow_id: "wf-1".into(),
        triggered_from: "app-run".into(),
        version: "v3".into(),
        inputs: object(json!({"sys.query": "What is the weather in Paris?"})),
        outputs: object(json!({"answer": "Sunny, 21 °C."})),
        status: "succeeded".into(),
        elapsed_time: 1.5,
        created_by_role: "end_user".into(),
        created_by: "user-7".into(),
        created_at: at(0),
        finished_at: Some(at(1500)),
        conversation_id: Some("conv-1".into()),
        message_id: Some("0195505a-0000-7000-8000-000000000002".into()),
        user_id: Some("user-7".into()),
        ..WorkflowRun::default()
    };
    let mut retrieval = node(1, "knowledge-retrieval", "Knowledge Retrieval", 10, 90);
    retrieval.node_outputs = Some(object(json!({"result": [{"content": "Paris forecast"}]})));
    let mut llm = node(2, "llm", "LLM", 100, 900);
    llm.model_name = Some("gpt-4o-mini".into());
    llm.model_provider = Some("openai".into());
    llm.process_data = Some(object(json!({
        "prompts": [{"role": "user", "text": "What is the weather in Paris?"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                  "total_price": "0.0003", "currency": "USD"},
    })));
    llm.node_outputs = Some(object(json!({"text": "Let me check."})));
    let mut tool = node(3, "tool", "Weather", 1000, 400);
    tool.tool_name = Some("get_weather".into());
    tool.node_inputs = Some(object(json!({"city": "Paris"})));
    tool.node_outputs = Some(object(json!({"temperature": 21})));
    (run, vec![retrieval, llm, tool])
}

#[test]
fn chatflow_tree_snapshot() {
    let capture = capture();
    {
        let _guard = capture.enter();
        let (run, nodes) = chatflow();
        ops_core::current_queue()
            .expect("the capture is installed")
            .add_trace_task(TraceTask::workflow_run(run, nodes).expect("a valid run"))
            .expect("queued");
    }
    insta::assert_snapshot!(capture.render(), @r"
    trace message [message] {user=user-7, session=conv-1, app=app-1, version=v3, tags=message,workflow}
        message [message] {}
            workflow [workflow] {usage=120/30/150}
                Knowledge Retrieval [dataset_retrieval] {}
                LLM [generation] {model=gpt-4o-mini, usage=120/30/150, cost=0.0003 USD}
                Weather [tool] {}
    ");
}

#[test]
fn chatflow_matches_an_expected_tree_with_wildcards() {
    let capture = capture();
    let (run, nodes) = chatflow();
    capture
        .queue()
        .add_trace_task(TraceTask::workflow_run(run, nodes).expect("a valid run"))
        .expect("queued");
    capture.assert(
        expect::trace()
            .kind(ObservationKind::Message)
            .user_id("user-7")
            .session_id("conv-1")
            .tag("workflow")
            .only_roots()
            .root(
                expect::observation("message")
                    .input("What is the weather in Paris?")
                    .output("Sunny, 21 °C.")
                    .child(
                        expect::observation("workflow")
                            .usage(120, 30)
                            .child(
                                expect::observation("LLM")
                                    .kind(ObservationKind::Generation)
                                    .model("gpt-4o-mini")
                                    .usage(120, 30)
                                    .metadata("node_type", "llm"),
                            )
                            .child(
                                expect::observation("Weather")
                                    .kind(ObservationKind::Tool)
                                    .level(Level::Default)
                                    .input(json!({"city": "Paris"}))
                                    .output(json!({"temperature": 21}))
                                    .metadata("tool_name", "get_weather"),
                            )
                            .child(
                                expect::observation("Knowledge Retrieval")
                                    .kind(ObservationKind::DatasetRetrieval),
                            )
                            .only(),
                    )
                    .only(),
            ),
    );
    assert_eq!(capture.find_kind(ObservationKind::Tool).len(), 1);
    let llm = capture.find("LLM").expect("the LLM node is captured");
    assert_eq!(llm.model_provider.as_deref(), Some("openai"));
    assert!(capture.find("no such node").is_none());
}

#[test]
fn a_trace_delivered_in_parts_renders_merged() {
    let capture = capture();
    let mut first = common::tree("agent", &[("plan", ObservationKind::Span)]);
    let root = first.observations[0].clone();
    let mut second = first.clone();
    let mut answer = ops_core::Observation::new(ObservationKind::Generation, "answer");
    answer.parent_id = Some(root.id);
    answer.start_time = first.observations[1].start_time + TimeDelta::milliseconds(1);
    second.observations = vec![root, answer];
    second.tags = vec!["done".into()];
    first.tags = vec!["partial".into()];
    for part in [first, second] {
        capture
            .queue()
            .add_trace_task(TraceTask::from_trace(part))
            .expect("queued");
        // Each part in its own export.
        capture.flush();
    }
    assert_eq!(capture.mock().traces().len(), 2, "two raw exports");
    // One trace: observations joined by id, the tags of the latest part.
    insta::assert_snapshot!(capture.render(), @r"
    trace agent [workflow] {tags=done}
        agent [workflow] {}
            plan [span] {}
            answer [generation] {}
    ");
}
