//! Building a workflow's trace from a finished run and its node executions.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::model::{
    BaseTraceInfo, Level, Observation, ObservationKind, Trace, TraceAttributes, TraceId, Usage,
    UsageUnit, WorkflowNodeTraceInfo, WorkflowRun, WorkflowTraceInfo, stable_observation_id,
};

use super::common::*;

pub(super) fn usage_object(node: &WorkflowNodeTraceInfo) -> Option<&Map<String, Value>> {
    fn from(m: &Option<Map<String, Value>>) -> Option<&Map<String, Value>> {
        m.as_ref()?.get("usage")?.as_object()
    }
    from(&node.process_data).or_else(|| from(&node.node_outputs))
}

pub(super) fn u64_of(map: &Map<String, Value>, key: &str) -> Option<u64> {
    map.get(key)
        .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
}

pub(super) fn f64_of(map: &Map<String, Value>, key: &str) -> Option<f64> {
    map.get(key).and_then(|v| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// Usage of a node: its `process_data.usage`, else `outputs.usage`, else its own fields.
pub(super) fn node_usage(node: &WorkflowNodeTraceInfo) -> Option<Usage> {
    let u = usage_object(node);
    let input = u
        .and_then(|u| u64_of(u, "prompt_tokens"))
        .or(node.prompt_tokens);
    let output = u
        .and_then(|u| u64_of(u, "completion_tokens"))
        .or(node.completion_tokens);
    let total = u
        .and_then(|u| u64_of(u, "total_tokens"))
        .or((node.total_tokens > 0).then_some(node.total_tokens));
    let cost = u
        .and_then(|u| f64_of(u, "total_price"))
        .or((node.total_price > 0.0).then_some(node.total_price));
    let currency = u
        .and_then(|u| u.get("currency"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| node.currency.clone());
    let usage = Usage {
        input,
        output,
        total,
        unit: UsageUnit::Tokens,
        input_cost: u.and_then(|u| f64_of(u, "prompt_price")),
        output_cost: u.and_then(|u| f64_of(u, "completion_price")),
        total_cost: cost,
        currency,
        details: Map::new(),
    };
    (!usage.is_empty()).then_some(usage)
}

pub(super) fn workflow_info(
    run: WorkflowRun,
    mut nodes: Vec<WorkflowNodeTraceInfo>,
) -> (WorkflowTraceInfo, Vec<WorkflowNodeTraceInfo>) {
    let mut prompt_tokens = 0;
    let mut completion_tokens = 0;
    let mut node_total = 0;
    for node in &mut nodes {
        if let Some(usage) = node_usage(node) {
            node.prompt_tokens = node.prompt_tokens.or(usage.input);
            node.completion_tokens = node.completion_tokens.or(usage.output);
            if node.total_tokens == 0 {
                node.total_tokens = usage.total().unwrap_or(0);
            }
        }
        prompt_tokens += node.prompt_tokens.unwrap_or(0);
        completion_tokens += node.completion_tokens.unwrap_or(0);
        node_total += node.total_tokens;
        if node.base.start_time.is_none() {
            node.base.start_time = Some(run.created_at);
        }
    }
    let total_tokens = if run.total_tokens > 0 {
        run.total_tokens
    } else {
        node_total
    };
    let file_list: Vec<String> = run
        .inputs
        .get("sys.files")
        .or_else(|| run.inputs.get("sys.file"))
        .map(|v| match v {
            Value::Array(items) => items.iter().map(file_ref).collect(),
            Value::Null => Vec::new(),
            other => vec![file_ref(other)],
        })
        .unwrap_or_default();
    let query = run
        .inputs
        .get("query")
        .or_else(|| run.inputs.get("sys.query"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let invoked_by = match run.created_by_role.as_str() {
        _ if run.created_by.is_empty() => "anonymous".to_owned(),
        "end_user" => format!("end_user:{}", run.created_by),
        "account" => format!("account:{}", run.created_by),
        _ => format!("user:{}", run.created_by),
    };
    let end_time = run
        .finished_at
        .unwrap_or(run.created_at + secs(run.elapsed_time));
    let mut metadata = Map::new();
    metadata.insert("workflow_id".into(), json!(run.workflow_id));
    insert_opt(
        &mut metadata,
        "conversation_id",
        run.conversation_id.clone(),
    );
    metadata.insert("workflow_run_id".into(), json!(run.id));
    metadata.insert("tenant_id".into(), json!(run.tenant_id));
    metadata.insert("elapsed_time".into(), json!(run.elapsed_time));
    metadata.insert("status".into(), json!(run.status));
    metadata.insert("version".into(), json!(run.version));
    metadata.insert("total_tokens".into(), json!(total_tokens));
    metadata.insert("file_list".into(), json!(file_list));
    metadata.insert("triggered_from".into(), json!(run.triggered_from));
    insert_opt(&mut metadata, "user_id", run.user_id.clone());
    metadata.insert("app_id".into(), json!(run.app_id));
    insert_opt(&mut metadata, "app_name", run.app_name.clone());
    insert_opt(&mut metadata, "workspace_name", run.workspace_name.clone());
    if let Some(parent) = &run.parent_trace_context {
        metadata.insert("parent_trace_context".into(), json!(parent));
    }
    insert_opt(
        &mut metadata,
        "trace_session_id",
        run.trace_session_id.clone(),
    );
    let info = WorkflowTraceInfo {
        base: BaseTraceInfo {
            message_id: run.message_id.clone(),
            message_data: None,
            inputs: Some(Value::Object(run.inputs.clone())),
            outputs: Some(Value::Object(run.outputs.clone())),
            start_time: Some(run.created_at),
            end_time: Some(end_time),
            metadata,
            trace_id: run.external_trace_id.clone(),
        },
        workflow_data: None,
        conversation_id: run.conversation_id,
        workflow_app_log_id: run.workflow_app_log_id,
        workflow_id: run.workflow_id,
        tenant_id: run.tenant_id,
        workflow_run_id: run.id,
        workflow_run_elapsed_time: run.elapsed_time,
        workflow_run_status: run.status,
        workflow_run_inputs: run.inputs,
        workflow_run_outputs: run.outputs,
        workflow_run_version: run.version,
        error: run.error,
        total_tokens,
        prompt_tokens: Some(prompt_tokens),
        completion_tokens: Some(completion_tokens),
        file_list,
        invoked_by: Some(invoked_by),
        query,
    };
    (info, nodes)
}

pub(super) fn workflow_trace(
    trace_id: TraceId,
    info: &WorkflowTraceInfo,
    nodes: &[WorkflowNodeTraceInfo],
) -> Trace {
    let start = info.base.start_time.unwrap_or_else(Utc::now);
    let chatflow = info.base.message_id.is_some();
    let kind = if chatflow {
        ObservationKind::Message
    } else {
        ObservationKind::Workflow
    };
    let mut trace = Trace::new(trace_id, kind, kind.as_str(), start);
    trace.end_time = info.base.end_time;
    trace.input = Some(Value::Object(info.workflow_run_inputs.clone()));
    trace.output = Some(Value::Object(info.workflow_run_outputs.clone()));
    trace.metadata = info.base.metadata.clone();
    trace.tags = if chatflow {
        vec!["message".into(), "workflow".into()]
    } else {
        vec!["workflow".into()]
    };
    trace.attributes = TraceAttributes {
        user_id: info
            .base
            .metadata
            .get("user_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        session_id: session_of(&info.base.metadata, info.conversation_id.as_deref()),
        app_id: info
            .base
            .metadata
            .get("app_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        tenant_id: Some(info.tenant_id.clone()),
        environment: None,
        release: None,
        version: Some(info.workflow_run_version.clone()),
    };

    let mut workflow = base_observation(
        ObservationKind::Workflow,
        "workflow",
        stable_observation_id(&info.workflow_run_id, start),
        &info.base,
        start,
    );
    workflow.metadata.insert(
        "workflow_run_status".into(),
        json!(info.workflow_run_status),
    );
    insert_opt(
        &mut workflow.metadata,
        "query",
        Some(info.query.clone()).filter(|q| !q.is_empty()),
    );
    insert_opt(
        &mut workflow.metadata,
        "invoked_by",
        info.invoked_by.clone(),
    );
    insert_opt(
        &mut workflow.metadata,
        "workflow_app_log_id",
        info.workflow_app_log_id.clone(),
    );
    if info.total_tokens > 0 {
        workflow.usage = Some(Usage {
            input: info.prompt_tokens,
            output: info.completion_tokens,
            total: Some(info.total_tokens),
            ..Usage::default()
        });
    }
    if info.workflow_run_status != "succeeded" && info.workflow_run_status != "partial-succeeded" {
        fail(
            &mut workflow,
            info.error.as_deref().or(Some(&info.workflow_run_status)),
        );
    }
    if let Some((_, node)) = parent_context(&info.base.metadata) {
        workflow.parent_id = linkable_id(node.as_deref());
    }
    let workflow_id = workflow.id;

    if let Some(message_id) = &info.base.message_id {
        let mut message = base_observation(
            ObservationKind::Message,
            "message",
            stable_observation_id(message_id, start),
            &info.base,
            start,
        );
        message.input = Some(json!(info.query));
        message.output = info
            .workflow_run_outputs
            .get("answer")
            .cloned()
            .or(message.output);
        message.parent_id = workflow.parent_id.take();
        workflow.parent_id = Some(message.id);
        message.level = workflow.level;
        message.status_message = workflow.status_message.clone();
        trace.observations.push(message);
    }
    trace.observations.push(workflow);
    trace
        .observations
        .extend(node_observations(nodes, Some(workflow_id), start, false));
    trace
}

pub(super) fn node_kind(node_type: &str, draft: bool) -> ObservationKind {
    match node_type {
        "llm" | "question-classifier" | "parameter-extractor" => ObservationKind::Generation,
        "knowledge-retrieval" => ObservationKind::DatasetRetrieval,
        "tool" => ObservationKind::Tool,
        "agent" => ObservationKind::Agent,
        _ if draft => ObservationKind::DraftNodeExecution,
        _ => ObservationKind::NodeExecution,
    }
}

/// Observations for node executions. Nodes inside an iteration or a loop are parented to the
/// container node; the others to `workflow` (in pure workflows too, unlike Dify).
pub(super) fn node_observations(
    nodes: &[WorkflowNodeTraceInfo],
    workflow: Option<Uuid>,
    run_start: DateTime<Utc>,
    draft: bool,
) -> Vec<Observation> {
    let ids: Vec<Uuid> = nodes
        .iter()
        .map(|n| {
            stable_observation_id(&n.node_execution_id, n.base.start_time.unwrap_or(run_start))
        })
        .collect();
    let container = |node_id: &str| {
        nodes
            .iter()
            .position(|n| n.node_id == node_id && n.iteration_id.is_none() && n.loop_id.is_none())
            .map(|i| ids[i])
    };
    let mut out: Vec<Observation> = nodes
        .iter()
        .zip(&ids)
        .map(|(node, &id)| {
            let kind = node_kind(&node.node_type, draft);
            let name = if node.title.is_empty() {
                &node.node_type
            } else {
                &node.title
            };
            let mut o = base_observation(kind, name, id, &node.base, run_start);
            if node.base.end_time.is_none() {
                o.end_time = Some(o.start_time + secs(node.elapsed_time));
            }
            o.input = match &node.process_data {
                Some(p) if kind == ObservationKind::Generation && p.contains_key("prompts") => {
                    p.get("prompts").cloned()
                }
                _ => node.node_inputs.clone().map(Value::Object).or(o.input),
            };
            o.output = node.node_outputs.clone().map(Value::Object).or(o.output);
            o.usage = node_usage(node);
            let process = node.process_data.as_ref();
            let from_process = |k: &str| {
                process
                    .and_then(|p| p.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            o.model = node
                .model_name
                .clone()
                .or_else(|| from_process("model_name"));
            o.model_provider = node
                .model_provider
                .clone()
                .or_else(|| from_process("model_provider"));
            if let Some(Value::Object(params)) = process.and_then(|p| p.get("model_parameters")) {
                o.model_parameters = params.clone();
            }
            if let Some(ttft) = usage_object(node).and_then(|u| f64_of(u, "time_to_first_token")) {
                o.completion_start_time = Some(o.start_time + secs(ttft));
            }
            match node.status.as_str() {
                "succeeded" => {}
                "stopped" | "partial-succeeded" => {
                    o.level = Level::Warning;
                    o.status_message =
                        Some(node.error.clone().unwrap_or_else(|| node.status.clone()));
                }
                other => fail(&mut o, node.error.as_deref().or(Some(other))),
            }
            let m = &mut o.metadata;
            m.insert("node_id".into(), json!(node.node_id));
            m.insert("node_type".into(), json!(node.node_type));
            m.insert("node_execution_id".into(), json!(node.node_execution_id));
            m.insert("status".into(), json!(node.status));
            m.insert("index".into(), json!(node.index));
            m.insert("elapsed_time".into(), json!(node.elapsed_time));
            m.insert("workflow_run_id".into(), json!(node.workflow_run_id));
            insert_opt(m, "predecessor_node_id", node.predecessor_node_id.clone());
            insert_opt(m, "tool_name", node.tool_name.clone());
            insert_opt(m, "iteration_id", node.iteration_id.clone());
            insert_opt(m, "iteration_index", node.iteration_index);
            insert_opt(m, "loop_id", node.loop_id.clone());
            insert_opt(m, "loop_index", node.loop_index);
            insert_opt(m, "parallel_id", node.parallel_id.clone());
            insert_opt(m, "invoked_by", node.invoked_by.clone());
            o.parent_id = node
                .iteration_id
                .as_deref()
                .or(node.loop_id.as_deref())
                .and_then(container)
                .filter(|p| *p != id)
                .or(workflow);
            o
        })
        .collect();
    out.sort_by_key(|o| (o.start_time, o.id));
    out
}
