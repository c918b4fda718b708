//! Realistic traces of every kind (built through `ops_core::TraceTask` as an app would), and
//! helpers to read OTLP requests back.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ops_core::model::*;
use ops_core::{Observation, ObservationKind, Trace, TraceId, TraceInfo, TraceTask, Usage};
use ops_providers::otlp::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use ops_providers::otlp::proto::tonic::common::v1::any_value::Value as Any;
use ops_providers::otlp::proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A UUIDv7 run id, so it is kept as the workflow observation's id.
pub const RUN: &str = "0192f5a0-0000-7000-8000-0000000000aa";
pub const MESSAGE: &str = "0192f5a0-0000-7000-8000-0000000000bb";

fn node(
    exec: &str,
    node_id: &str,
    node_type: &str,
    title: &str,
    start: &str,
    elapsed: f64,
) -> WorkflowNodeTraceInfo {
    WorkflowNodeTraceInfo {
        base: BaseTraceInfo {
            start_time: Some(t(start)),
            ..BaseTraceInfo::default()
        },
        workflow_id: "wf".into(),
        workflow_run_id: RUN.into(),
        tenant_id: "tenant".into(),
        node_execution_id: exec.into(),
        node_id: node_id.into(),
        node_type: node_type.into(),
        title: title.into(),
        status: "succeeded".into(),
        elapsed_time: elapsed,
        index: 1,
        ..WorkflowNodeTraceInfo::default()
    }
}

fn obj(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A chatflow run (with a message) with an LLM, a tool that failed, an agent, a knowledge
/// retrieval, and an iteration with a node inside.
pub fn chatflow_run() -> (WorkflowRun, Vec<WorkflowNodeTraceInfo>) {
    let run = WorkflowRun {
        id: RUN.into(),
        tenant_id: "tenant".into(),
        app_id: "app".into(),
        workflow_id: "wf".into(),
        triggered_from: "app-run".into(),
        version: "v3".into(),
        inputs: obj(json!({"sys.query": "what is ops?", "query": "what is ops?"})),
        outputs: obj(json!({"answer": "ops is tracing"})),
        status: "succeeded".into(),
        elapsed_time: 2.5,
        created_by_role: "end_user".into(),
        created_by: "eu-1".into(),
        created_at: t("2026-01-02T03:04:05Z"),
        conversation_id: Some("conv-1".into()),
        message_id: Some(MESSAGE.into()),
        user_id: Some("user-1".into()),
        ..WorkflowRun::default()
    };
    let mut llm = node(
        "ne-llm",
        "llm",
        "llm",
        "LLM",
        "2026-01-02T03:04:05.100Z",
        1.0,
    );
    llm.process_data = Some(obj(json!({
        "prompts": [{"role": "system", "text": "be brief"}, {"role": "user", "text": "what is ops?"}],
        "model_name": "gpt-4o-mini",
        "model_provider": "openai",
        "model_parameters": {"temperature": 0.2, "max_tokens": 256},
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                  "total_price": "0.0021", "currency": "USD", "time_to_first_token": 0.25}
    })));
    llm.node_outputs = Some(obj(
        json!({"text": "ops is tracing", "finish_reason": "stop"}),
    ));
    let mut tool = node(
        "ne-tool",
        "tool",
        "tool",
        "Search",
        "2026-01-02T03:04:06.200Z",
        0.3,
    );
    tool.status = "failed".into();
    tool.error = Some("tool exploded".into());
    tool.tool_name = Some("web_search".into());
    tool.node_inputs = Some(obj(json!({"q": "ops"})));
    let mut agent = node(
        "ne-agent",
        "agent",
        "agent",
        "Agent",
        "2026-01-02T03:04:06.600Z",
        0.2,
    );
    agent.node_outputs = Some(obj(json!(
        {"text": "done", "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}
    )));
    let mut kr = node(
        "ne-kr",
        "kr",
        "knowledge-retrieval",
        "Knowledge",
        "2026-01-02T03:04:05.050Z",
        0.05,
    );
    kr.node_inputs = Some(obj(json!({"query": "what is ops?"})));
    kr.node_outputs = Some(obj(json!({"result": [
        {"content": "ops traces LLM apps", "title": "doc1",
         "metadata": {"score": 0.91, "document_id": "doc-1", "dataset_id": "ds"}},
        {"content": "it ports Dify", "metadata": {"score": 0.5, "document_id": "doc-2"}}
    ]})));
    let iteration = node(
        "ne-it",
        "it",
        "iteration",
        "Loop",
        "2026-01-02T03:04:06.800Z",
        0.1,
    );
    let mut inner = node(
        "ne-inner",
        "code",
        "code",
        "Inner",
        "2026-01-02T03:04:06.810Z",
        0.01,
    );
    inner.iteration_id = Some("it".into());
    inner.iteration_index = Some(0);
    (run, vec![llm, tool, agent, kr, iteration, inner])
}

pub fn chatflow() -> Trace {
    let (run, nodes) = chatflow_run();
    TraceTask::workflow_run(run, nodes)
        .unwrap()
        .preprocess()
        .unwrap()
}

pub fn workflow() -> Trace {
    let (mut run, nodes) = chatflow_run();
    run.message_id = None;
    run.conversation_id = None;
    run.status = "failed".into();
    run.error = Some("tool exploded".into());
    TraceTask::workflow_run(run, nodes)
        .unwrap()
        .preprocess()
        .unwrap()
}

pub fn message_run() -> MessageRun {
    MessageRun {
        id: MESSAGE.into(),
        conversation_id: "conv-1".into(),
        app_id: "app".into(),
        tenant_id: Some("tenant".into()),
        conversation_mode: "chat".into(),
        model_provider: Some("openai".into()),
        model_id: Some("gpt-4o-mini".into()),
        query: "hi".into(),
        message: json!([{"role": "user", "content": "hi"}]),
        answer: "hello".into(),
        message_tokens: 12,
        answer_tokens: 1,
        total_price: Some(0.0003),
        currency: Some("USD".into()),
        provider_response_latency: 1.5,
        created_at: t("2026-01-02T03:04:05Z"),
        status: "normal".into(),
        from_end_user_id: Some("eu-1".into()),
        from_source: "api".into(),
        message_metadata: obj(json!({"usage": {"time_to_first_token": 0.4}})),
        ..MessageRun::default()
    }
}

pub fn message() -> Trace {
    TraceTask::message_run(message_run())
        .unwrap()
        .preprocess()
        .unwrap()
}

fn base_for_message() -> BaseTraceInfo {
    BaseTraceInfo {
        message_id: Some(MESSAGE.into()),
        message_data: Some(json!({"created_at": "2026-01-02T03:04:05Z"})),
        inputs: Some(json!("hi")),
        start_time: Some(t("2026-01-02T03:04:05.500Z")),
        end_time: Some(t("2026-01-02T03:04:05.600Z")),
        metadata: obj(json!({"user_id": "eu-1", "conversation_id": "conv-1"})),
        ..BaseTraceInfo::default()
    }
}

fn info(info: TraceInfo) -> Trace {
    TraceTask::from_info(info).unwrap().preprocess().unwrap()
}

pub fn moderation() -> Trace {
    info(TraceInfo::Moderation(ModerationTraceInfo {
        base: base_for_message(),
        flagged: true,
        action: "direct_output".into(),
        preset_response: "no".into(),
        query: "hi".into(),
    }))
}

pub fn suggested_question() -> Trace {
    info(TraceInfo::SuggestedQuestion(SuggestedQuestionTraceInfo {
        base: base_for_message(),
        total_tokens: 9,
        suggested_question: vec!["why?".into()],
        model_id: Some("gpt-4o-mini".into()),
        model_provider: Some("openai".into()),
        level: "info".into(),
        ..SuggestedQuestionTraceInfo::default()
    }))
}

pub fn dataset_retrieval() -> Trace {
    info(TraceInfo::DatasetRetrieval(DatasetRetrievalTraceInfo {
        base: base_for_message(),
        documents: json!([
            {"page_content": "doc one", "metadata": {"score": 0.8, "document_id": "d1"}},
            {"page_content": "doc two", "metadata": {"score": 0.4, "document_id": "d2"}}
        ]),
        error: None,
    }))
}

pub fn tool() -> Trace {
    info(TraceInfo::Tool(ToolTraceInfo {
        base: base_for_message(),
        tool_name: "search".into(),
        tool_inputs: obj(json!({"q": "x"})),
        tool_outputs: "found".into(),
        time_cost: 0.25,
        error: Some("timeout".into()),
        tool_parameters: obj(json!({"q": {"type": "string"}})),
        ..ToolTraceInfo::default()
    }))
}

pub fn generate_name() -> Trace {
    info(TraceInfo::GenerateName(GenerateNameTraceInfo {
        base: BaseTraceInfo {
            outputs: Some(json!("Chat about ops")),
            ..base_for_message()
        },
        conversation_id: Some("conv-1".into()),
        tenant_id: "tenant".into(),
    }))
}

pub fn prompt_generation() -> Trace {
    info(TraceInfo::PromptGeneration(PromptGenerationTraceInfo {
        base: BaseTraceInfo {
            start_time: Some(t("2026-01-02T03:04:05Z")),
            outputs: Some(json!("You are a helpful assistant.")),
            ..BaseTraceInfo::default()
        },
        tenant_id: "tenant".into(),
        user_id: "acc-1".into(),
        app_id: Some("app".into()),
        operation_type: "rule_generate".into(),
        instruction: "write a prompt".into(),
        prompt_tokens: 10,
        completion_tokens: 20,
        total_tokens: 30,
        model_provider: "openai".into(),
        model_name: "gpt-4o".into(),
        latency: 2.0,
        total_price: Some(0.01),
        currency: Some("USD".into()),
        error: None,
    }))
}

pub fn node_execution() -> Trace {
    let (_, nodes) = chatflow_run();
    info(TraceInfo::NodeExecution(nodes[0].clone()))
}

pub fn draft_node_execution() -> Trace {
    let (_, nodes) = chatflow_run();
    info(TraceInfo::DraftNodeExecution(nodes[5].clone()))
}

/// The program of the golden captures: `agent_run` > `plan_step` > `llm_call` (gpt-4o-mini,
/// 12/1 tokens, temperature 0, provider openai), user `user-1`, session `sess-1`, tag `e2e`.
pub fn captured_program() -> Trace {
    let start = Utc::now();
    let mut trace = Trace::new(
        TraceId::generate(),
        ObservationKind::Span,
        "agent_run",
        start,
    );
    trace.tags = vec!["e2e".into()];
    trace.attributes.user_id = Some("user-1".into());
    trace.attributes.session_id = Some("sess-1".into());
    let mut agent = Observation::at(ObservationKind::Span, "agent_run", start);
    agent.input = Some(json!({"args": ["what is 2+2?"], "kwargs": {}}));
    agent.output = Some(json!({"answer": "4"}));
    let mut plan = Observation::at(ObservationKind::Span, "plan_step", start);
    plan.parent_id = Some(agent.id);
    plan.input = Some(json!({"args": ["what is 2+2?"], "kwargs": {}}));
    plan.output = Some(json!("4"));
    let mut llm = Observation::at(ObservationKind::Generation, "llm_call", start);
    llm.parent_id = Some(plan.id);
    llm.input = Some(json!({"args": ["Answer briefly: what is 2+2?"], "kwargs": {}}));
    llm.output = Some(json!("4"));
    llm.model = Some("gpt-4o-mini".into());
    llm.model_provider = Some("openai".into());
    llm.model_parameters
        .insert("temperature".into(), json!(0.0));
    llm.usage = Some(Usage {
        input: Some(12),
        output: Some(1),
        ..Usage::default()
    });
    let end = start + chrono::TimeDelta::milliseconds(1);
    for o in [&mut agent, &mut plan, &mut llm] {
        o.end_time = Some(end);
    }
    trace.end_time = Some(end);
    trace.observations = vec![agent, plan, llm];
    trace
}

/// Every sample, named.
pub fn all_kinds() -> Vec<(&'static str, Trace)> {
    vec![
        ("chatflow", chatflow()),
        ("workflow", workflow()),
        ("message", message()),
        ("moderation", moderation()),
        ("suggested_question", suggested_question()),
        ("dataset_retrieval", dataset_retrieval()),
        ("tool", tool()),
        ("generate_name", generate_name()),
        ("prompt_generation", prompt_generation()),
        ("node_execution", node_execution()),
        ("draft_node_execution", draft_node_execution()),
        ("captured_program", captured_program()),
    ]
}

pub fn arc(trace: Trace) -> Vec<Arc<Trace>> {
    vec![Arc::new(trace)]
}

/// The observation named `name`.
pub fn obs<'a>(trace: &'a Trace, name: &str) -> &'a Observation {
    trace
        .observations
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no observation {name:?} in {:?}", names(trace)))
}

fn names(trace: &Trace) -> Vec<&str> {
    trace.observations.iter().map(|o| o.name.as_str()).collect()
}

/// Decodes a protobuf OTLP body (already decompressed).
pub fn decode(body: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body")
}

pub fn spans(request: &ExportTraceServiceRequest) -> Vec<&Span> {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect()
}

/// The span whose span id is that of observation `o`.
pub fn span_of<'a>(request: &'a ExportTraceServiceRequest, o: &Observation) -> &'a Span {
    let id = ops_providers::otlp::span_id_bytes(o.id);
    spans(request)
        .into_iter()
        .find(|s| s.span_id == id)
        .unwrap_or_else(|| panic!("no span for observation {:?}", o.name))
}

pub fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

pub fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(span, key) {
        Some(Any::StringValue(s)) => Some(s),
        _ => None,
    }
}

pub fn int_attr(span: &Span, key: &str) -> Option<i64> {
    match attr(span, key) {
        Some(Any::IntValue(i)) => Some(*i),
        _ => None,
    }
}

pub fn json_attr(span: &Span, key: &str) -> Option<Value> {
    str_attr(span, key)
        .map(|s| serde_json::from_str(s).unwrap_or_else(|e| panic!("{key}: {e}: {s}")))
}

pub fn keys(span: &Span) -> Vec<&str> {
    span.attributes.iter().map(|kv| kv.key.as_str()).collect()
}

pub fn resource_attr<'a>(request: &'a ExportTraceServiceRequest, key: &str) -> Option<&'a str> {
    request.resource_spans[0]
        .resource
        .as_ref()?
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Any::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}

/// Checks the invariants every dialect keeps: one span per observation, ids derived from the
/// observation ids, parents, times, and ERROR status for failed observations.
pub fn assert_tree(trace: &Trace, request: &ExportTraceServiceRequest) {
    let all = spans(request);
    assert_eq!(
        all.len(),
        trace.observations.len().max(1),
        "one span per observation"
    );
    let trace_id = ops_providers::otlp::trace_id_bytes(&trace.id).to_vec();
    for o in &trace.observations {
        let s = span_of(request, o);
        assert_eq!(s.trace_id, trace_id, "{}", o.name);
        let parent = o
            .parent_id
            .map(|p| ops_providers::otlp::span_id_bytes(p).to_vec())
            .unwrap_or_default();
        assert_eq!(s.parent_span_id, parent, "parent of {}", o.name);
        assert_eq!(
            s.start_time_unix_nano,
            o.start_time.timestamp_nanos_opt().unwrap() as u64,
            "{}",
            o.name
        );
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano, "{}", o.name);
        let status = s.status.as_ref().unwrap();
        if o.level == Level::Error {
            assert_eq!(status.code, 2, "{} failed, so its status is ERROR", o.name);
            assert_eq!(Some(status.message.as_str()), o.status_message.as_deref());
        } else {
            assert_eq!(status.code, 0, "{}", o.name);
        }
    }
}

pub mod native;
