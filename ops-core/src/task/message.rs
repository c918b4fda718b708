//! Building a chat message's trace.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::model::{
    BaseTraceInfo, MessageRun, MessageTraceInfo, Observation, ObservationKind, Trace,
    TraceAttributes, TraceId, Usage, stable_observation_id,
};

use super::common::*;
use super::workflow::f64_of;

pub(super) fn message_info(m: MessageRun) -> MessageTraceInfo {
    let base_url = files_url();
    let files: Vec<String> = m
        .message_files
        .iter()
        .map(|f| absolute_file_url(f, &base_url))
        .collect();
    let usage = m.message_metadata.get("usage").and_then(Value::as_object);
    let ttft = usage.and_then(|u| f64_of(u, "time_to_first_token"));
    let time_to_generate = usage.and_then(|u| f64_of(u, "time_to_generate"));
    let end_time = match m.updated_at {
        Some(updated) if updated > m.created_at => updated,
        _ => m.created_at + secs(m.provider_response_latency),
    };
    let user_id = m
        .from_end_user_id
        .clone()
        .or_else(|| m.from_account_id.clone());
    let mut metadata = Map::new();
    metadata.insert("conversation_id".into(), json!(m.conversation_id));
    insert_opt(&mut metadata, "ls_provider", m.model_provider.clone());
    insert_opt(&mut metadata, "ls_model_name", m.model_id.clone());
    metadata.insert("status".into(), json!(m.status));
    insert_opt(
        &mut metadata,
        "from_end_user_id",
        m.from_end_user_id.clone(),
    );
    insert_opt(&mut metadata, "from_account_id", m.from_account_id.clone());
    metadata.insert("agent_based".into(), json!(m.agent_based));
    insert_opt(&mut metadata, "workflow_run_id", m.workflow_run_id.clone());
    metadata.insert("from_source".into(), json!(m.from_source));
    metadata.insert("message_id".into(), json!(m.id));
    insert_opt(&mut metadata, "tenant_id", m.tenant_id.clone());
    metadata.insert("app_id".into(), json!(m.app_id));
    insert_opt(&mut metadata, "user_id", user_id);
    insert_opt(&mut metadata, "app_name", m.app_name.clone());
    insert_opt(&mut metadata, "workspace_name", m.workspace_name.clone());
    insert_opt(
        &mut metadata,
        "node_execution_id",
        m.node_execution_id.clone(),
    );
    insert_opt(
        &mut metadata,
        "trace_session_id",
        m.trace_session_id.clone(),
    );
    let message_data = json!({
        "id": m.id, "conversation_id": m.conversation_id, "query": m.query, "inputs": m.inputs,
        "model_provider": m.model_provider, "model_id": m.model_id,
        "total_price": m.total_price, "currency": m.currency,
        "provider_response_latency": m.provider_response_latency,
        "created_at": m.created_at, "status": m.status, "error": m.error,
    });
    MessageTraceInfo {
        base: BaseTraceInfo {
            message_id: Some(m.id),
            message_data: Some(message_data),
            inputs: Some(m.message),
            outputs: Some(Value::String(m.answer)),
            start_time: Some(m.created_at),
            end_time: Some(end_time),
            metadata,
            trace_id: m.external_trace_id,
        },
        conversation_model: m.conversation_mode.clone(),
        message_tokens: m.message_tokens,
        answer_tokens: m.answer_tokens,
        total_tokens: m.message_tokens + m.answer_tokens,
        error: m.error,
        file_list: (!files.is_empty()).then(|| json!(files)),
        message_file_data: None,
        conversation_mode: m.conversation_mode,
        gen_ai_server_time_to_first_token: ttft,
        llm_streaming_time_to_generate: time_to_generate,
        is_streaming_request: ttft.is_some(),
    }
}

pub(super) fn message_data_str<'a>(base: &'a BaseTraceInfo, key: &str) -> Option<&'a str> {
    base.message_data.as_ref()?.get(key)?.as_str()
}

/// The observation id of the message a record belongs to, derived as [`message_trace`]
/// derives it, when the record carries the message's start (`message_data.created_at`).
pub(super) fn message_observation_id(base: &BaseTraceInfo) -> Option<Uuid> {
    let id = base.message_id.as_deref()?;
    linkable_id(Some(id)).or_else(|| {
        let created: DateTime<Utc> = message_data_str(base, "created_at")?.parse().ok()?;
        Some(stable_observation_id(id, created))
    })
}

pub(super) fn message_trace(trace_id: TraceId, info: &MessageTraceInfo) -> Trace {
    let base = &info.base;
    let start = base.start_time.unwrap_or_else(Utc::now);
    let mut trace = Trace::new(trace_id, ObservationKind::Message, "message", start);
    trace.end_time = base.end_time;
    trace.input = base.inputs.clone();
    trace.output = base.outputs.clone();
    trace.metadata = base.metadata.clone();
    trace.tags = vec!["message".into(), info.conversation_mode.clone()];
    let meta_str = |k: &str| {
        base.metadata
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    trace.attributes = TraceAttributes {
        user_id: meta_str("user_id"),
        session_id: session_of(&base.metadata, meta_str("conversation_id").as_deref()),
        app_id: meta_str("app_id"),
        tenant_id: meta_str("tenant_id"),
        ..TraceAttributes::default()
    };
    let message_id = base
        .message_id
        .clone()
        .unwrap_or_else(|| trace.id.to_string());
    let mut message = base_observation(
        ObservationKind::Message,
        "message",
        stable_observation_id(&message_id, start),
        base,
        start,
    );
    let mut input = json!({ "message": base.inputs });
    insert_opt(
        input.as_object_mut().expect("object"),
        "files",
        info.file_list.clone(),
    );
    message.input = Some(input);
    fail(&mut message, info.error.as_deref());

    let mut llm = Observation::at(ObservationKind::Generation, "llm", start);
    llm.id = stable_observation_id(&format!("{message_id}-llm"), start);
    llm.parent_id = Some(message.id);
    llm.end_time = message.end_time;
    llm.input = base.inputs.clone();
    llm.output = base.outputs.clone();
    llm.model = meta_str("ls_model_name");
    llm.model_provider = meta_str("ls_provider");
    let data = base.message_data.as_ref();
    let price = data
        .and_then(|d| d.get("total_price"))
        .and_then(Value::as_f64);
    let currency = data
        .and_then(|d| d.get("currency"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    llm.usage = Some(Usage {
        input: Some(info.message_tokens),
        output: Some(info.answer_tokens),
        total: Some(info.total_tokens),
        total_cost: price,
        currency,
        ..Usage::default()
    });
    if let Some(ttft) = info.gen_ai_server_time_to_first_token {
        llm.completion_start_time = Some(start + secs(ttft));
    }
    fail(&mut llm, info.error.as_deref());
    trace.observations = vec![message, llm];
    trace
}
