//! The sample chatflow a test trace sends (`ops send-test`, the admin API): a message with its workflow run, a knowledge
//! retrieval, an LLM call with usage and an answer node.

use chrono::{DateTime, TimeDelta, Utc};
use ops_core::model::{WorkflowNodeTraceInfo, WorkflowRun};
use ops_core::{TaskError, TraceId, TraceTask};
use serde_json::{Map, Value, json};

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn node(
    run: &WorkflowRun,
    index: i64,
    (node_id, node_type, title): (&str, &str, &str),
    start: DateTime<Utc>,
    elapsed: f64,
) -> WorkflowNodeTraceInfo {
    WorkflowNodeTraceInfo::of_run(run, index, node_id, node_type, title, start, elapsed)
}

/// A finished chatflow run of `app_id` (ids generated, times ending now), as a task.
pub fn chatflow(tenant_id: &str, app_id: &str) -> Result<TraceTask, TaskError> {
    let start = Utc::now() - TimeDelta::milliseconds(1500);
    let run = WorkflowRun {
        id: TraceId::generate().to_string(),
        tenant_id: tenant_id.into(),
        app_id: app_id.into(),
        workflow_id: "ops-send-test".into(),
        triggered_from: "app-run".into(),
        version: "ops-send-test".into(),
        inputs: object(json!({"sys.query": "What does ops trace?", "sys.user_id": "ops-cli"})),
        outputs: object(json!({"answer": "Workflows, messages, LLM calls, tools and retrievals."})),
        status: "succeeded".into(),
        elapsed_time: 1.5,
        total_steps: 4,
        created_by_role: "account".into(),
        created_by: "ops-cli".into(),
        created_at: start,
        finished_at: Some(start + TimeDelta::milliseconds(1500)),
        conversation_id: Some(TraceId::generate().to_string()),
        message_id: Some(TraceId::generate().to_string()),
        user_id: Some("ops-cli".into()),
        app_name: Some(format!("{app_id} (ops send-test)")),
        ..WorkflowRun::default()
    };
    let ms = TimeDelta::milliseconds;
    let start_node = node(&run, 1, ("start", "start", "Start"), start, 0.01);
    let mut retrieval = node(
        &run,
        2,
        ("knowledge", "knowledge-retrieval", "Knowledge"),
        start + ms(20),
        0.2,
    );
    retrieval.node_outputs = Some(object(json!({"result": [
        {"content": "ops delivers traces to Langfuse, LangSmith, Phoenix and more.", "score": 0.92}
    ]})));
    let mut llm = node(&run, 3, ("llm", "llm", "LLM"), start + ms(250), 1.1);
    llm.process_data = Some(object(json!({
        "model_mode": "chat",
        "model_name": "gpt-4o-mini",
        "model_provider": "openai",
        "model_parameters": {"temperature": 0.2},
        "prompts": [
            {"role": "system", "text": "Answer from the context."},
            {"role": "user", "text": "What does ops trace?"}
        ],
        "usage": {"prompt_tokens": 42, "completion_tokens": 12, "total_tokens": 54,
                  "total_price": "0.000036", "currency": "USD", "time_to_first_token": 0.3}
    })));
    llm.node_outputs = Some(object(
        json!({"text": "Workflows, messages, LLM calls, tools and retrievals."}),
    ));
    let answer = node(
        &run,
        4,
        ("answer", "answer", "Answer"),
        start + ms(1400),
        0.01,
    );
    TraceTask::workflow_run(run, vec![start_node, retrieval, llm, answer])
}
