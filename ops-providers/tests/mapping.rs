//! Each dialect's mapping for every kind of trace: a chatflow (LLM, tool, retrieval, agent and
//! iteration nodes), a pure workflow, a message, moderation, suggested questions, a dataset
//! retrieval, a tool call, a conversation name, a generated prompt, and node executions.

#![cfg(feature = "full")]

mod common;

use common::*;
use ops_core::provider::ProviderConfig;
use ops_core::{ObservationKind, Trace};
use ops_providers::otlp::encode::encode_request;
use ops_providers::otlp::generic::GenericOtlp;
use ops_providers::otlp::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use ops_providers::otlp::proto::tonic::common::v1::any_value::Value as Any;
use ops_providers::otlp::{Dialect, trace_id_hex};
use serde_json::json;

fn encode<D: Dialect>(dialect: &D, trace: &Trace) -> ExportTraceServiceRequest {
    encode_request(dialect, &arc(trace.clone()))
}

/// For every sample trace: the tree invariants hold and each span's kind attribute is the
/// expected one for its observation's kind.
fn check_every_kind<D: Dialect>(
    dialect: &D,
    key: &str,
    expected: fn(ObservationKind) -> &'static str,
) {
    for (name, trace) in all_kinds() {
        let request = encode(dialect, &trace);
        assert_tree(&trace, &request);
        for o in &trace.observations {
            let span = span_of(&request, o);
            let got = match attr(span, key) {
                Some(Any::StringValue(s)) => s.clone(),
                other => panic!("{name}/{}: {key} is {other:?}", o.name),
            };
            let want = expected(o.kind);
            let got = got.trim_matches('"');
            assert_eq!(got, want, "{name}/{} ({:?})", o.name, o.kind);
        }
    }
}

fn langfuse() -> ops_providers::langfuse::Langfuse {
    ops_providers::langfuse::Langfuse::new("https://cloud.langfuse.com", "pk-lf-1", "sk-lf-1")
}

fn phoenix() -> ops_providers::phoenix::Phoenix {
    ops_providers::phoenix::Phoenix::new("http://127.0.0.1:6006", "ops-tests", None)
}

#[test]
fn langfuse_types_for_every_kind() {
    check_every_kind(&langfuse(), "langfuse.observation.type", |k| match k {
        ObservationKind::Generation
        | ObservationKind::SuggestedQuestion
        | ObservationKind::GenerateConversationName
        | ObservationKind::PromptGeneration => "generation",
        ObservationKind::Tool => "tool",
        ObservationKind::DatasetRetrieval => "retriever",
        ObservationKind::Agent => "agent",
        ObservationKind::Moderation => "guardrail",
        ObservationKind::Workflow | ObservationKind::Message | ObservationKind::Conversation => {
            "chain"
        }
        _ => "span",
    });
}

#[test]
fn langfuse_chatflow_attributes() {
    let trace = chatflow();
    let request = encode(&langfuse(), &trace);
    let root = span_of(&request, obs(&trace, "message"));
    assert_eq!(
        attr(root, "langfuse.internal.is_app_root"),
        Some(&Any::BoolValue(true))
    );
    assert_eq!(str_attr(root, "user.id"), Some("user-1"));
    assert_eq!(str_attr(root, "session.id"), Some("conv-1"));
    assert_eq!(
        str_attr(root, "langfuse.observation.input"),
        Some("what is ops?")
    );
    assert_eq!(
        str_attr(root, "langfuse.observation.output"),
        Some("ops is tracing")
    );
    assert_eq!(str_attr(root, "langfuse.version"), Some("v3"));
    assert!(
        str_attr(root, "langfuse.trace.name").is_none(),
        "the trace is named as its root"
    );
    assert_eq!(
        json_attr(root, "langfuse.trace.input"),
        Some(json!({"sys.query": "what is ops?", "query": "what is ops?"}))
    );
    assert_eq!(
        json_attr(root, "langfuse.trace.metadata.workflow_run_id"),
        Some(json!(RUN))
    );
    let workflow = span_of(&request, obs(&trace, "workflow"));
    assert!(attr(workflow, "langfuse.internal.is_app_root").is_none());
    assert!(
        str_attr(workflow, "langfuse.trace.input").is_none(),
        "trace keys only on roots"
    );
    match attr(workflow, "langfuse.trace.tags") {
        Some(Any::ArrayValue(a)) => assert_eq!(a.values.len(), 2),
        other => panic!("tags on every span: {other:?}"),
    }

    let llm = span_of(&request, obs(&trace, "LLM"));
    assert_eq!(
        str_attr(llm, "langfuse.observation.type"),
        Some("generation")
    );
    assert_eq!(
        str_attr(llm, "langfuse.observation.model.name"),
        Some("gpt-4o-mini")
    );
    assert_eq!(
        json_attr(llm, "langfuse.observation.usage_details"),
        Some(json!({"input": 12, "output": 3, "total": 15}))
    );
    assert_eq!(
        json_attr(llm, "langfuse.observation.cost_details"),
        Some(json!({"total": 0.0021}))
    );
    assert_eq!(
        json_attr(llm, "langfuse.observation.model.parameters"),
        Some(json!({"temperature": 0.2, "max_tokens": 256}))
    );
    assert_eq!(
        json_attr(llm, "langfuse.observation.completion_start_time"),
        Some(json!("2026-01-02T03:04:05.350000Z"))
    );
    assert_eq!(
        json_attr(llm, "langfuse.observation.input"),
        Some(
            json!([{"role": "system", "text": "be brief"}, {"role": "user", "text": "what is ops?"}])
        )
    );
    assert_eq!(
        json_attr(llm, "langfuse.observation.metadata.provider"),
        Some(json!("openai"))
    );
    assert_eq!(
        json_attr(llm, "langfuse.observation.metadata.node_type"),
        Some(json!("llm"))
    );

    let tool = span_of(&request, obs(&trace, "Search"));
    assert_eq!(str_attr(tool, "langfuse.observation.type"), Some("tool"));
    assert_eq!(str_attr(tool, "langfuse.observation.level"), Some("ERROR"));
    assert_eq!(
        str_attr(tool, "langfuse.observation.status_message"),
        Some("tool exploded")
    );
    assert!(
        tool.events.is_empty(),
        "Langfuse reads failures from level and status"
    );
    let kr = span_of(&request, obs(&trace, "Knowledge"));
    assert_eq!(str_attr(kr, "langfuse.observation.type"), Some("retriever"));
    let agent = span_of(&request, obs(&trace, "Agent"));
    assert_eq!(
        json_attr(agent, "langfuse.observation.usage_details"),
        Some(json!({"input": 5, "output": 7, "total": 12}))
    );
    assert!(
        str_attr(llm, "langfuse.observation.level").is_none(),
        "DEFAULT is not sent"
    );
}

#[test]
fn langfuse_auxiliary_traces() {
    let m = moderation();
    let r = encode(&langfuse(), &m);
    let s = span_of(&r, &m.observations[0]);
    assert_eq!(str_attr(s, "langfuse.observation.type"), Some("guardrail"));
    assert_eq!(str_attr(s, "langfuse.observation.level"), Some("WARNING"));
    assert!(
        attr(s, "langfuse.internal.is_app_root").is_none(),
        "it hangs under the message observation sent in another export"
    );
    assert_eq!(
        hex(&s.trace_id),
        trace_id_hex(&m.id),
        "same trace as the message"
    );
    assert_eq!(
        hex(&s.parent_span_id),
        ops_providers::otlp::span_id_hex(MESSAGE.parse().unwrap())
    );

    let p = prompt_generation();
    let r = encode(&langfuse(), &p);
    let s = span_of(&r, &p.observations[0]);
    assert_eq!(
        str_attr(s, "langfuse.observation.model.name"),
        Some("gpt-4o")
    );
    assert_eq!(
        json_attr(s, "langfuse.observation.usage_details"),
        Some(json!({"input": 10, "output": 20, "total": 30}))
    );
    assert_eq!(
        json_attr(s, "langfuse.observation.cost_details"),
        Some(json!({"total": 0.01}))
    );
    assert_eq!(str_attr(s, "user.id"), Some("acc-1"));

    let msg = message();
    let r = encode(&langfuse(), &msg);
    let llm = span_of(&r, obs(&msg, "llm"));
    assert!(str_attr(llm, "langfuse.observation.completion_start_time").is_some());
    assert_eq!(str_attr(llm, "langfuse.observation.output"), Some("hello"));
}

#[test]
fn langfuse_root_carries_the_traces_io_when_it_has_none() {
    // Langfuse v4 shows a trace's input and output from its root observation.
    let mut trace = chatflow();
    let root_id = trace
        .observations
        .iter()
        .find(|o| o.parent_id.is_none())
        .unwrap()
        .id;
    for o in &mut trace.observations {
        if o.id == root_id {
            o.input = None;
            o.output = None;
        }
    }
    trace.input = Some(json!({"query": "what is ops?"}));
    trace.output = Some(json!("ops is tracing"));
    let r = encode(&langfuse(), &trace);
    let root = trace.observations.iter().find(|o| o.id == root_id).unwrap();
    let s = span_of(&r, root);
    assert_eq!(
        json_attr(s, "langfuse.observation.input"),
        Some(json!({"query": "what is ops?"}))
    );
    assert_eq!(
        str_attr(s, "langfuse.observation.output"),
        Some("ops is tracing")
    );
    // Children keep only their own.
    for o in trace
        .observations
        .iter()
        .filter(|o| o.parent_id.is_some() && o.input.is_none())
    {
        assert!(
            attr(span_of(&r, o), "langfuse.observation.input").is_none(),
            "{}",
            o.name
        );
    }
    // User and session go on every span, not only the root.
    for o in &trace.observations {
        let s = span_of(&r, o);
        assert_eq!(
            str_attr(s, "user.id"),
            trace.attributes_of(o).user_id.as_deref(),
            "{}",
            o.name
        );
        assert_eq!(
            str_attr(s, "session.id"),
            trace.attributes_of(o).session_id.as_deref(),
            "{}",
            o.name
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn openinference_kind(k: ObservationKind) -> &'static str {
    match k {
        ObservationKind::Generation
        | ObservationKind::SuggestedQuestion
        | ObservationKind::GenerateConversationName
        | ObservationKind::PromptGeneration => "LLM",
        ObservationKind::Tool => "TOOL",
        ObservationKind::DatasetRetrieval => "RETRIEVER",
        ObservationKind::Agent => "AGENT",
        ObservationKind::Moderation => "GUARDRAIL",
        _ => "CHAIN",
    }
}

#[test]
fn phoenix_kinds_for_every_kind() {
    check_every_kind(&phoenix(), "openinference.span.kind", openinference_kind);
}

#[test]
fn arize_kinds_for_every_kind() {
    let arize = ops_providers::arize::Arize::from_config(
        &ProviderConfig::new("arize")
            .with("api_key", "ak")
            .with("space_id", "sp")
            .with("project", "proj"),
    )
    .unwrap();
    check_every_kind(&arize, "openinference.span.kind", openinference_kind);
    let r = encode(&arize, &chatflow());
    assert_eq!(
        resource_attr(&r, "openinference.project.name"),
        Some("proj")
    );
    assert_eq!(arize.endpoint(), "https://otlp.arize.com/v1/traces");
    let h = arize.headers();
    for (k, v) in [
        ("authorization", "ak"),
        ("arize-space-id", "sp"),
        ("arize-interface", "otel"),
        ("api_key", "ak"),
        ("space_id", "sp"),
    ] {
        assert!(h.contains(&(k.into(), v.into())), "{k}: {h:?}");
    }
}

#[test]
fn openinference_chatflow_attributes() {
    let trace = chatflow();
    let r = encode(&phoenix(), &trace);
    assert_eq!(
        resource_attr(&r, "openinference.project.name"),
        Some("ops-tests")
    );
    let root = span_of(&r, obs(&trace, "message"));
    assert_eq!(str_attr(root, "input.value"), Some("what is ops?"));
    assert_eq!(str_attr(root, "input.mime_type"), Some("text/plain"));
    assert_eq!(str_attr(root, "session.id"), Some("conv-1"));
    assert_eq!(str_attr(root, "user.id"), Some("user-1"));
    match attr(root, "tag.tags") {
        Some(Any::ArrayValue(a)) => assert_eq!(a.values.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        json_attr(root, "metadata").unwrap()["workflow_run_id"],
        json!(RUN)
    );

    let llm = span_of(&r, obs(&trace, "LLM"));
    assert_eq!(str_attr(llm, "llm.model_name"), Some("gpt-4o-mini"));
    assert_eq!(str_attr(llm, "llm.provider"), Some("openai"));
    assert_eq!(int_attr(llm, "llm.token_count.prompt"), Some(12));
    assert_eq!(int_attr(llm, "llm.token_count.completion"), Some(3));
    assert_eq!(int_attr(llm, "llm.token_count.total"), Some(15));
    assert_eq!(attr(llm, "llm.cost.total"), Some(&Any::DoubleValue(0.0021)));
    assert_eq!(
        str_attr(llm, "llm.input_messages.0.message.role"),
        Some("system")
    );
    assert_eq!(
        str_attr(llm, "llm.input_messages.1.message.content"),
        Some("what is ops?")
    );
    assert_eq!(
        str_attr(llm, "llm.output_messages.0.message.role"),
        Some("assistant")
    );
    assert_eq!(
        str_attr(llm, "llm.output_messages.0.message.content"),
        Some("ops is tracing")
    );
    assert_eq!(
        json_attr(llm, "llm.invocation_parameters"),
        Some(json!({"temperature": 0.2, "max_tokens": 256}))
    );
    assert_eq!(str_attr(llm, "input.mime_type"), Some("application/json"));
    assert_eq!(str_attr(llm, "graph.node.id"), Some("llm"));

    let kr = span_of(&r, obs(&trace, "Knowledge"));
    assert_eq!(
        str_attr(kr, "retrieval.documents.0.document.content"),
        Some("ops traces LLM apps")
    );
    assert_eq!(
        str_attr(kr, "retrieval.documents.0.document.id"),
        Some("doc-1")
    );
    assert_eq!(
        attr(kr, "retrieval.documents.0.document.score"),
        Some(&Any::DoubleValue(0.91))
    );
    assert_eq!(
        str_attr(kr, "retrieval.documents.1.document.content"),
        Some("it ports Dify")
    );

    let tool = span_of(&r, obs(&trace, "Search"));
    assert_eq!(str_attr(tool, "tool.name"), Some("web_search"));
    assert_eq!(tool.status.as_ref().unwrap().code, 2);
    assert_eq!(tool.events.len(), 1, "an exception event");
    assert_eq!(tool.events[0].name, "exception");
    let agent = span_of(&r, obs(&trace, "Agent"));
    assert_eq!(str_attr(agent, "agent.name"), Some("Agent"));
    assert_eq!(
        int_attr(agent, "llm.token_count.total"),
        Some(12),
        "an agent's own usage"
    );
    let workflow = span_of(&r, obs(&trace, "workflow"));
    assert!(
        int_attr(workflow, "llm.token_count.total").is_none(),
        "chains carry no counts: Phoenix sums descendants"
    );
}

#[test]
fn openinference_auxiliary_traces() {
    let d = dataset_retrieval();
    let r = encode(&phoenix(), &d);
    let s = span_of(&r, &d.observations[0]);
    assert_eq!(
        str_attr(s, "retrieval.documents.1.document.content"),
        Some("doc two")
    );
    assert_eq!(str_attr(s, "retrieval.documents.1.document.id"), Some("d2"));

    let t = tool();
    let r = encode(&phoenix(), &t);
    let s = span_of(&r, &t.observations[0]);
    assert_eq!(str_attr(s, "tool.name"), Some("search"));
    assert_eq!(
        json_attr(s, "tool.parameters"),
        Some(json!({"q": {"type": "string"}}))
    );
    assert_eq!(str_attr(s, "output.value"), Some("found"));

    let q = suggested_question();
    let r = encode(&phoenix(), &q);
    let s = span_of(&r, &q.observations[0]);
    assert_eq!(int_attr(s, "llm.token_count.total"), Some(9));
    assert_eq!(str_attr(s, "output.mime_type"), Some("application/json"));

    let m = message();
    let r = encode(&phoenix(), &m);
    let llm = span_of(&r, obs(&m, "llm"));
    assert_eq!(
        str_attr(llm, "llm.input_messages.0.message.content"),
        Some("hi")
    );
    assert_eq!(
        str_attr(llm, "llm.output_messages.0.message.content"),
        Some("hello")
    );
    assert_eq!(int_attr(llm, "llm.token_count.total"), Some(13));
}

fn generic() -> GenericOtlp {
    GenericOtlp::from_config(&ProviderConfig::new("otlp").with("endpoint", "http://collector:4318"))
        .unwrap()
}

#[test]
fn generic_otlp_genai_for_every_kind() {
    check_every_kind(&generic(), "ops.observation.kind", |k| k.as_str());
    for (name, trace) in all_kinds() {
        let r = encode(&generic(), &trace);
        for o in &trace.observations {
            let s = span_of(&r, o);
            let want = match o.kind.semantic() {
                ops_core::model::SemanticKind::Llm => Some("chat"),
                ops_core::model::SemanticKind::Tool => Some("execute_tool"),
                ops_core::model::SemanticKind::Retriever => Some("retrieval"),
                ops_core::model::SemanticKind::Agent => Some("invoke_agent"),
                ops_core::model::SemanticKind::Chain => Some("invoke_workflow"),
                _ => None,
            };
            assert_eq!(
                str_attr(s, "gen_ai.operation.name"),
                want,
                "{name}/{}",
                o.name
            );
        }
    }
}

#[test]
fn generic_otlp_chatflow_attributes() {
    let trace = chatflow();
    let r = encode(&generic(), &trace);
    assert_eq!(resource_attr(&r, "service.name"), Some("ops"));
    let llm = span_of(&r, obs(&trace, "LLM"));
    assert_eq!(llm.name, "chat gpt-4o-mini");
    assert_eq!(llm.kind, 3, "CLIENT");
    assert_eq!(str_attr(llm, "gen_ai.request.model"), Some("gpt-4o-mini"));
    assert_eq!(str_attr(llm, "gen_ai.provider.name"), Some("openai"));
    assert_eq!(int_attr(llm, "gen_ai.usage.input_tokens"), Some(12));
    assert_eq!(int_attr(llm, "gen_ai.usage.output_tokens"), Some(3));
    assert_eq!(
        attr(llm, "gen_ai.request.temperature"),
        Some(&Any::DoubleValue(0.2))
    );
    assert_eq!(int_attr(llm, "gen_ai.request.max_tokens"), Some(256));
    assert_eq!(
        json_attr(llm, "gen_ai.input.messages").unwrap()[1],
        json!({"role": "user", "parts": [{"type": "text", "content": "what is ops?"}]})
    );
    assert_eq!(
        json_attr(llm, "gen_ai.output.messages"),
        Some(
            json!([{"role": "assistant", "parts": [{"type": "text", "content": "ops is tracing"}], "finish_reason": "stop"}])
        )
    );
    assert!(
        str_attr(llm, "input.value").is_none(),
        "the messages hold the content"
    );
    assert_eq!(str_attr(llm, "gen_ai.conversation.id"), Some("conv-1"));
    let tool = span_of(&r, obs(&trace, "Search"));
    assert_eq!(tool.name, "execute_tool web_search");
    assert_eq!(str_attr(tool, "gen_ai.tool.name"), Some("web_search"));
    assert_eq!(
        json_attr(tool, "gen_ai.tool.call.arguments"),
        Some(json!({"q": "ops"}))
    );
    assert_eq!(str_attr(tool, "error.type"), Some("Error"));
    let kr = span_of(&r, obs(&trace, "Knowledge"));
    assert_eq!(
        str_attr(kr, "gen_ai.retrieval.query.text"),
        Some("what is ops?")
    );
    assert_eq!(
        json_attr(kr, "gen_ai.retrieval.documents").unwrap()[0],
        json!({"id": "doc-1", "score": 0.91, "content": "ops traces LLM apps"})
    );
    let wf = span_of(&r, obs(&trace, "workflow"));
    assert_eq!(str_attr(wf, "gen_ai.workflow.name"), Some("workflow"));
    assert_eq!(wf.kind, 1, "INTERNAL");
}

#[test]
fn aliyun_kinds_and_attributes() {
    let aliyun = ops_providers::aliyun::Aliyun::from_config(
        &ProviderConfig::new("aliyun")
            .with("license_key", "lk")
            .with("app_name", "my_app"),
    )
    .unwrap();
    check_every_kind(&aliyun, "gen_ai.span.kind", |k| match k {
        ObservationKind::Generation
        | ObservationKind::SuggestedQuestion
        | ObservationKind::GenerateConversationName
        | ObservationKind::PromptGeneration => "LLM",
        ObservationKind::Tool => "TOOL",
        ObservationKind::DatasetRetrieval => "RETRIEVER",
        ObservationKind::Agent => "AGENT",
        ObservationKind::Workflow | ObservationKind::Message | ObservationKind::Conversation => {
            "CHAIN"
        }
        _ => "TASK",
    });
    let trace = chatflow();
    let r = encode(&aliyun, &trace);
    assert_eq!(
        resource_attr(&r, "acs.arms.service.feature"),
        Some("genai_app")
    );
    assert_eq!(resource_attr(&r, "service.name"), Some("my_app"));
    let llm = span_of(&r, obs(&trace, "LLM"));
    assert_eq!(int_attr(llm, "gen_ai.usage.total_tokens"), Some(15));
    assert_eq!(
        int_attr(llm, "gen_ai.response.time_to_first_token"),
        Some(250_000_000)
    );
    assert_eq!(str_attr(llm, "gen_ai.session.id"), Some("conv-1"));
    assert_eq!(str_attr(llm, "gen_ai.user.id"), Some("user-1"));
    assert!(json_attr(llm, "gen_ai.input.messages").is_some());
    let kr = span_of(&r, obs(&trace, "Knowledge"));
    assert_eq!(str_attr(kr, "retrieval.query"), Some("what is ops?"));
    assert_eq!(
        json_attr(kr, "retrieval.document").unwrap()[1]["id"],
        json!("doc-2")
    );
    let tool = span_of(&r, obs(&trace, "Search"));
    assert_eq!(str_attr(tool, "tool.name"), Some("web_search"));
}

#[test]
fn tencent_kinds_and_attributes() {
    let tencent = ops_providers::tencent::Tencent::from_config(
        &ProviderConfig::new("tencent")
            .with("token", "tok")
            .with("endpoint", "http://ap-guangzhou.apm.tencentcs.com:4318"),
    )
    .unwrap();
    check_every_kind(&tencent, "gen_ai.span.kind", |k| match k {
        ObservationKind::Generation
        | ObservationKind::SuggestedQuestion
        | ObservationKind::GenerateConversationName
        | ObservationKind::PromptGeneration => "GENERATION",
        ObservationKind::Tool => "TOOL",
        ObservationKind::DatasetRetrieval => "RETRIEVER",
        ObservationKind::Agent => "AGENT",
        ObservationKind::Workflow | ObservationKind::Message | ObservationKind::Conversation => {
            "WORKFLOW"
        }
        _ => "TASK",
    });
    let trace = chatflow();
    let r = encode(&tencent, &trace);
    assert_eq!(resource_attr(&r, "token"), Some("tok"));
    assert_eq!(resource_attr(&r, "service.name"), Some("dify-app"));
    assert_eq!(
        tencent.endpoint(),
        "http://ap-guangzhou.apm.tencentcs.com:4318/v1/traces"
    );
    assert!(
        tencent
            .headers()
            .contains(&("authorization".into(), "Bearer tok".into()))
    );
    let root = span_of(&r, obs(&trace, "message"));
    assert_eq!(attr(root, "gen_ai.is_entry"), Some(&Any::BoolValue(true)));
    let llm = span_of(&r, obs(&trace, "LLM"));
    assert_eq!(attr(llm, "gen_ai.is_entry"), Some(&Any::BoolValue(false)));
    assert_eq!(attr(llm, "llm.is_streaming"), Some(&Any::BoolValue(true)));
    assert_eq!(int_attr(llm, "gen_ai.usage.input_tokens"), Some(12));
    assert_eq!(
        json_attr(llm, "gen_ai.completion"),
        Some(json!({"finish_reason": "stop", "text": "ops is tracing"}))
    );
    assert_eq!(str_attr(root, "gen_ai.entity.input"), Some("what is ops?"));
}

#[test]
fn mlflow_kinds_and_attributes() {
    let mlflow = ops_providers::mlflow::Mlflow::tracking_server(
        &ProviderConfig::new("mlflow").with("experiment_id", "7"),
    )
    .unwrap();
    check_every_kind(&mlflow, "mlflow.spanType", |k| match k {
        ObservationKind::Generation
        | ObservationKind::SuggestedQuestion
        | ObservationKind::GenerateConversationName
        | ObservationKind::PromptGeneration => "LLM",
        ObservationKind::Tool => "TOOL",
        ObservationKind::DatasetRetrieval => "RETRIEVER",
        ObservationKind::Agent => "AGENT",
        ObservationKind::Moderation => "GUARDRAIL",
        _ => "CHAIN",
    });
    let trace = chatflow();
    let r = encode(&mlflow, &trace);
    let llm = span_of(&r, obs(&trace, "LLM"));
    assert_eq!(
        str_attr(llm, "mlflow.spanType"),
        Some("\"LLM\""),
        "JSON-encoded, as MLflow stores it"
    );
    assert_eq!(
        json_attr(llm, "mlflow.chat.tokenUsage"),
        Some(json!({"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}))
    );
    assert_eq!(
        json_attr(llm, "mlflow.llm.model"),
        Some(json!("gpt-4o-mini"))
    );
    assert_eq!(
        json_attr(llm, "mlflow.spanInputs").unwrap()[0]["role"],
        json!("system")
    );
    let root = span_of(&r, obs(&trace, "message"));
    assert_eq!(
        json_attr(root, "mlflow.spanInputs"),
        Some(json!("what is ops?"))
    );
    assert_eq!(str_attr(root, "session.id"), Some("conv-1"));
    let kr = span_of(&r, obs(&trace, "Knowledge"));
    let docs = json_attr(kr, "mlflow.spanOutputs").unwrap();
    assert_eq!(docs[0]["page_content"], json!("ops traces LLM apps"));
    assert_eq!(docs[0]["id"], json!("doc-1"));
    // The trace's name, tags and metadata ride on the root as `mlflow.traceTag.*`, which
    // MLflow turns into trace tags; children carry none.
    assert_eq!(
        str_attr(root, "mlflow.traceTag.mlflow.traceName"),
        Some(trace.name.as_str())
    );
    for (key, _) in &trace.metadata {
        assert!(
            attr(root, &format!("mlflow.traceTag.{key}")).is_some(),
            "metadata {key}"
        );
    }
    assert!(attr(llm, "mlflow.traceTag.mlflow.traceName").is_none());
    // The app's own cost, and model parameters as attributes of their own.
    if let Some(cost) = obs(&trace, "LLM")
        .usage
        .as_ref()
        .and_then(|u| u.total_cost())
    {
        assert_eq!(
            json_attr(llm, "mlflow.llm.cost").unwrap()["total_cost"],
            json!(cost)
        );
    }
    for (key, value) in &obs(&trace, "LLM").model_parameters {
        assert_eq!(json_attr(llm, key).as_ref(), Some(value), "{key}");
    }
    assert_eq!(mlflow.endpoint(), "http://localhost:5000/v1/traces");
    assert!(
        mlflow
            .headers()
            .contains(&("x-mlflow-experiment-id".into(), "7".into()))
    );
}

#[test]
fn a_trace_without_observations_is_one_span() {
    let mut trace = captured_program();
    trace.observations.clear();
    trace.input = Some(json!("q"));
    let r = encode(&phoenix(), &trace);
    let all = spans(&r);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name, "agent_run");
    assert!(all[0].parent_span_id.is_empty());
    assert_eq!(str_attr(all[0], "input.value"), Some("q"));
}

#[test]
fn encoding_is_deterministic_so_resends_line_up() {
    for (name, trace) in all_kinds() {
        let a = encode(&phoenix(), &trace);
        let b = encode(&phoenix(), &trace);
        assert_eq!(a, b, "{name}");
    }
}

/// A part of a trace joined from another service (W3C trace context): every OTLP dialect
/// keeps the 128-bit trace id and sends the caller's span as the root's `parent_span_id`.
#[test]
fn a_root_under_a_remote_span_keeps_the_callers_ids() {
    let caller: [u8; 16] = u128::from_str_radix("4bf92f3577b34da6a3ce929d0e0e4736", 16)
        .unwrap()
        .to_be_bytes();
    let span: [u8; 8] = u64::from_str_radix("00f067aa0ba902b7", 16)
        .unwrap()
        .to_be_bytes();
    let mut t = captured_program();
    t.id = ops_core::TraceId::from_w3c_bytes(caller).unwrap();
    let root = t
        .observations
        .iter_mut()
        .find(|o| o.parent_id.is_none())
        .unwrap();
    root.parent_id = Some(ops_core::model::remote_parent_uuid(span));
    let root_id = root.id;
    for request in [encode(&phoenix(), &t), encode(&langfuse(), &t)] {
        let spans = spans(&request);
        assert_eq!(spans.len(), t.observations.len());
        assert!(spans.iter().all(|s| s.trace_id == caller));
        let top = spans
            .iter()
            .find(|s| s.span_id == ops_core::model::span_id_bytes(root_id))
            .unwrap();
        assert_eq!(top.parent_span_id, span);
    }
}

/// The exception event and `error.type` name the error's captured type, in every dialect
/// that sends one (Langfuse reads the level and status message instead).
fn check_error_type<D: Dialect>(dialect: &D, name: &str) {
    let mut trace = chatflow();
    let search = trace
        .observations
        .iter_mut()
        .find(|o| o.name == "Search")
        .unwrap();
    search
        .metadata
        .insert("error_type".into(), json!("reqwest::Error"));
    let r = encode(dialect, &trace);
    let tool = span_of(&r, obs(&trace, "Search"));
    let event = tool.events.iter().find(|e| e.name == "exception");
    let event = event.unwrap_or_else(|| panic!("{name}: no exception event"));
    let kind = event.attributes.iter().find(|a| a.key == "exception.type");
    assert_eq!(
        kind.and_then(|a| a.value.as_ref()?.value.clone()),
        Some(Any::StringValue("reqwest::Error".into())),
        "{name}: exception.type"
    );
    if let Some(t) = str_attr(tool, "error.type") {
        assert_eq!(t, "reqwest::Error", "{name}: error.type");
    }
}

#[test]
fn every_dialect_names_the_errors_type() {
    check_error_type(&phoenix(), "phoenix");
    check_error_type(&generic(), "otlp");
    check_error_type(
        &ops_providers::mlflow::Mlflow::tracking_server(
            &ProviderConfig::new("mlflow").with("experiment_id", "7"),
        )
        .unwrap(),
        "mlflow",
    );
    check_error_type(
        &ops_providers::aliyun::Aliyun::from_config(
            &ProviderConfig::new("aliyun")
                .with("license_key", "lk")
                .with("app_name", "my_app"),
        )
        .unwrap(),
        "aliyun",
    );
    check_error_type(
        &ops_providers::tencent::Tencent::from_config(
            &ProviderConfig::new("tencent")
                .with("token", "tok")
                .with("endpoint", "http://ap-guangzhou.apm.tencentcs.com:4318"),
        )
        .unwrap(),
        "tencent",
    );
    assert_eq!(
        str_attr(
            span_of(&encode(&generic(), &chatflow()), obs(&chatflow(), "Search")),
            "error.type"
        ),
        Some("Error"),
        "without a captured type"
    );
}
