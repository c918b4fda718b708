//! Building the trace of one info record (moderation, a tool call, a retrieval, ...).

use chrono::Utc;
use serde_json::{Value, json};

use crate::model::{
    Level, ObservationKind, Trace, TraceId, TraceInfo, Usage, stable_observation_id,
};

use super::common::*;
use super::message::*;
use super::workflow::*;

pub(super) fn info_trace(trace_id: TraceId, info: TraceInfo) -> Trace {
    let base = info.base().clone();
    let start = base.start_time.unwrap_or_else(Utc::now);
    let kind = info.kind();
    match info {
        TraceInfo::Workflow(w) => return workflow_trace(trace_id, &w, &[]),
        TraceInfo::Message(m) => return message_trace(trace_id, &m),
        _ => {}
    }
    let part_of_message = base.message_id.as_deref() == Some(trace_id.as_str());
    let part_of_run = info.workflow_run_id() == Some(trace_id.as_str());
    let trace_kind = if part_of_message {
        ObservationKind::Message
    } else if part_of_run {
        ObservationKind::Workflow
    } else {
        kind
    };
    let mut trace = Trace::new(trace_id, trace_kind, trace_kind.as_str(), start);
    trace.end_time = base.end_time;
    trace.metadata = base.metadata.clone();
    let source = format!(
        "{}-{}",
        base.message_id.as_deref().unwrap_or(trace.id.as_str()),
        kind
    );
    let mut o = base_observation(
        kind,
        kind.as_str(),
        stable_observation_id(&source, start),
        &base,
        start,
    );
    o.parent_id = message_observation_id(&base);
    let meta_str = |k: &str| {
        base.metadata
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    trace.attributes.user_id = meta_str("user_id").or_else(|| meta_str("from_account_id"));
    trace.attributes.session_id =
        session_of(&base.metadata, meta_str("conversation_id").as_deref());
    trace.attributes.app_id = meta_str("app_id");
    trace.attributes.tenant_id = meta_str("tenant_id");
    match info {
        TraceInfo::Moderation(m) => {
            o.input = Some(json!({ "query": m.query, "inputs": base.inputs }));
            o.output = Some(json!({
                "action": m.action, "flagged": m.flagged,
                "preset_response": m.preset_response, "inputs": base.inputs,
            }));
            if m.flagged {
                o.level = Level::Warning;
                o.status_message = Some(format!("flagged: {}", m.action));
            }
        }
        TraceInfo::SuggestedQuestion(s) => {
            o.output = Some(json!(s.suggested_question));
            o.model = s.model_id.clone();
            o.model_provider = s.model_provider.clone();
            o.usage = Some(Usage {
                total: Some(s.total_tokens),
                ..Usage::default()
            });
            o.metadata.insert("status".into(), json!(s.status));
            o.metadata
                .insert("from_source".into(), json!(s.from_source));
            o.metadata
                .insert("agent_based".into(), json!(s.agent_based));
            if let Some(acc) = s.from_account_id {
                trace.attributes.user_id.get_or_insert(acc);
            }
            fail(
                &mut o,
                s.error
                    .as_deref()
                    .or(s.status_message.as_deref().filter(|_| s.level == "error")),
            );
        }
        TraceInfo::DatasetRetrieval(d) => {
            o.input = Some(json!({ "query": base.inputs }));
            o.output = Some(json!({ "documents": d.documents }));
            fail(&mut o, d.error.as_deref());
        }
        TraceInfo::Tool(t) => {
            o.name = t.tool_name.clone();
            o.end_time = Some(start + secs(t.time_cost));
            o.input = Some(Value::Object(t.tool_inputs));
            o.output = Some(Value::String(t.tool_outputs));
            o.metadata.insert("tool_name".into(), json!(t.tool_name));
            o.metadata
                .insert("tool_config".into(), Value::Object(t.tool_config));
            o.metadata
                .insert("tool_parameters".into(), Value::Object(t.tool_parameters));
            o.metadata.insert("time_cost".into(), json!(t.time_cost));
            insert_opt(&mut o.metadata, "file_url", t.file_url);
            insert_opt(&mut o.metadata, "message_file_data", t.message_file_data);
            fail(&mut o, t.error.as_deref());
        }
        TraceInfo::GenerateName(g) => {
            trace.attributes.tenant_id = Some(g.tenant_id);
            if let Some(c) = g.conversation_id {
                trace.attributes.session_id.get_or_insert(c);
            }
        }
        TraceInfo::PromptGeneration(p) => {
            o.model = Some(p.model_name);
            o.model_provider = Some(p.model_provider);
            if base.end_time.is_none() {
                o.end_time = Some(start + secs(p.latency));
            }
            o.input = base
                .inputs
                .clone()
                .or_else(|| Some(json!({ "instruction": p.instruction })));
            o.usage = Some(Usage {
                input: Some(p.prompt_tokens),
                output: Some(p.completion_tokens),
                total: Some(p.total_tokens),
                total_cost: p.total_price,
                currency: p.currency,
                ..Usage::default()
            });
            o.metadata
                .insert("operation_type".into(), json!(p.operation_type));
            o.metadata.insert("latency".into(), json!(p.latency));
            trace.attributes.user_id = Some(p.user_id);
            trace.attributes.tenant_id = Some(p.tenant_id);
            trace.attributes.app_id = p.app_id.or(trace.attributes.app_id);
            fail(&mut o, p.error.as_deref());
        }
        TraceInfo::NodeExecution(n) | TraceInfo::DraftNodeExecution(n) => {
            let draft = kind == ObservationKind::DraftNodeExecution;
            trace.attributes.tenant_id = Some(n.tenant_id.clone());
            let workflow = linkable_id(Some(&n.workflow_run_id));
            let mut nodes = node_observations(std::slice::from_ref(&n), workflow, start, draft);
            trace.observations.append(&mut nodes);
            return trace;
        }
        TraceInfo::Workflow(_) | TraceInfo::Message(_) => unreachable!("handled above"),
    }
    trace.observations.push(o);
    trace
}
