//! Data for the `ops` examples: a finished chatflow run, as an app built on Dify's model has
//! it, to hand to [`ops_core::TraceQueueManager::trace_workflow_run`].
//!
//! The run answers a traveller's question. Its nodes are what a Dify chatflow records:
//!
//! ```text
//! Start → Packing guides (knowledge-retrieval) → Weather forecast (tool)
//!       → Travel assistant (llm) → Answer
//! ```
//!
//! The data is made up but shaped like the real thing, so the tree printed by the quickstart
//! is the tree a real app would see.

use chrono::{DateTime, TimeDelta, Utc};
// Links the custom provider crate into every example, so `OPS_TRACE_PROVIDER=summary` works
// for all of them: a provider crate is available once something in the binary references it.
use ops_core::model::{WorkflowNodeTraceInfo, WorkflowRun};
use ops_custom_provider_example as _;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The app the example run belongs to.
pub const APP_ID: &str = "3f1c9a52-7d0e-4b8e-9a41-2c6d5e8f7a10";
/// The workspace (tenant) of the app.
pub const TENANT_ID: &str = "a7e2b4c6-1f3d-4e5a-8b9c-0d1e2f3a4b5c";
/// The published workflow of the app.
pub const WORKFLOW_ID: &str = "5b8d0f2a-4c6e-4a1b-9d3f-7e9a1c3e5b7d";
/// The end user who asked.
pub const USER_ID: &str = "traveller-42";
/// The workflow version, as Dify stamps a published workflow.
pub const VERSION: &str = "2025-06-02 10:14:07.421937";

/// The user's question.
pub const QUERY: &str = "I'm in Lisbon from Friday to Sunday. What should I pack?";
/// The assistant's answer.
pub const ANSWER: &str = "Expect 17-24 °C with rain on Saturday: pack light layers, a \
                          waterproof jacket and comfortable shoes for the hills.";

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn node(
    run: &WorkflowRun,
    index: i64,
    node_type: &str,
    title: &str,
    start: DateTime<Utc>,
    elapsed_time: f64,
) -> WorkflowNodeTraceInfo {
    let node_id = (1_717_000_000_000_i64 + index).to_string();
    let mut node =
        WorkflowNodeTraceInfo::of_run(run, index, node_id, node_type, title, start, elapsed_time);
    node.invoked_by = Some(format!("end_user:{USER_ID}"));
    node
}

/// A finished chatflow run that started about three seconds ago, with its five node
/// executions: start, knowledge retrieval, tool, LLM and answer. Run, message, conversation
/// and node execution ids are fresh UUIDv7s on every call.
pub fn chatflow_run() -> (WorkflowRun, Vec<WorkflowNodeTraceInfo>) {
    chatflow_run_at(Utc::now() - TimeDelta::seconds(3))
}

/// Like [`chatflow_run`], with the run starting at `start`.
pub fn chatflow_run_at(start: DateTime<Utc>) -> (WorkflowRun, Vec<WorkflowNodeTraceInfo>) {
    let ms = |n: i64| start + TimeDelta::milliseconds(n);
    let run_id = Uuid::now_v7().to_string();
    let conversation_id = Uuid::now_v7().to_string();
    let run = WorkflowRun {
        id: run_id.clone(),
        tenant_id: TENANT_ID.into(),
        app_id: APP_ID.into(),
        workflow_id: WORKFLOW_ID.into(),
        triggered_from: "app-run".into(),
        version: VERSION.into(),
        inputs: object(json!({
            "sys.query": QUERY,
            "sys.files": [],
            "sys.conversation_id": conversation_id,
            "sys.user_id": USER_ID,
            "sys.dialogue_count": 1,
            "sys.app_id": APP_ID,
            "sys.workflow_id": WORKFLOW_ID,
            "sys.workflow_run_id": run_id,
        })),
        outputs: object(json!({ "answer": ANSWER })),
        status: "succeeded".into(),
        elapsed_time: 2.412,
        total_steps: 5,
        created_by_role: "end_user".into(),
        created_by: USER_ID.into(),
        created_at: start,
        finished_at: Some(ms(2412)),
        conversation_id: Some(conversation_id),
        message_id: Some(Uuid::now_v7().to_string()),
        user_id: Some(USER_ID.into()),
        app_name: Some("Trip planner".into()),
        workspace_name: Some("Acme Travel".into()),
        ..WorkflowRun::default()
    };

    let mut start_node = node(&run, 1, "start", "Start", ms(2), 0.004);
    start_node.node_inputs = Some(object(json!({ "sys.query": QUERY })));
    start_node.node_outputs = start_node.node_inputs.clone();

    let mut retrieval = node(
        &run,
        2,
        "knowledge-retrieval",
        "Packing guides",
        ms(10),
        0.214,
    );
    retrieval.predecessor_node_id = Some(start_node.node_id.clone());
    retrieval.node_inputs = Some(object(json!({ "query": QUERY })));
    retrieval.node_outputs = Some(object(json!({ "result": [
        {
            "title": "Portugal in spring.md",
            "content": "Lisbon is hilly and cobbled: bring shoes with grip. Showers pass quickly.",
            "metadata": { "dataset_name": "Packing guides", "score": 0.82, "position": 1 },
        },
        {
            "title": "Layering 101.md",
            "content": "For 15-25 °C days, a T-shirt, a light sweater and a shell cover everything.",
            "metadata": { "dataset_name": "Packing guides", "score": 0.74, "position": 2 },
        },
    ] })));

    let mut tool = node(&run, 3, "tool", "Weather forecast", ms(230), 0.481);
    tool.predecessor_node_id = Some(retrieval.node_id.clone());
    tool.tool_name = Some("open_meteo_forecast".into());
    tool.node_inputs = Some(object(json!({ "city": "Lisbon", "days": 3 })));
    tool.node_outputs = Some(object(json!({
        "text": "Fri 24/17 °C sun · Sat 19/15 °C rain · Sun 22/16 °C cloud",
        "files": [],
    })));

    let mut llm = node(&run, 4, "llm", "Travel assistant", ms(720), 1.655);
    llm.predecessor_node_id = Some(tool.node_id.clone());
    llm.model_provider = Some("openai".into());
    llm.model_name = Some("gpt-4o-mini".into());
    let usage = json!({
        "prompt_tokens": 612,
        "prompt_unit_price": "0.15",
        "prompt_price_unit": "0.000001",
        "prompt_price": "0.0000918",
        "completion_tokens": 148,
        "completion_unit_price": "0.60",
        "completion_price_unit": "0.000001",
        "completion_price": "0.0000888",
        "total_tokens": 760,
        "total_price": "0.0001806",
        "currency": "USD",
        "latency": 1.612,
        "time_to_first_token": 0.412,
        "time_to_generate": 1.2,
    });
    llm.process_data = Some(object(json!({
        "model_mode": "chat",
        "model_provider": "openai",
        "model_name": "gpt-4o-mini",
        "model_parameters": { "temperature": 0.3, "max_tokens": 512 },
        "prompts": [
            { "role": "system", "text": "You are a travel assistant. Use the context and the forecast.", "files": [] },
            { "role": "user", "text": QUERY, "files": [] },
        ],
        "usage": usage,
        "finish_reason": "stop",
    })));
    llm.node_outputs = Some(object(json!({
        "text": ANSWER,
        "usage": usage,
        "finish_reason": "stop",
    })));

    let mut answer = node(&run, 5, "answer", "Answer", ms(2390), 0.003);
    answer.predecessor_node_id = Some(llm.node_id.clone());
    answer.node_outputs = Some(object(json!({ "answer": ANSWER })));

    let nodes = vec![start_node, retrieval, tool, llm, answer];
    (run, nodes)
}
