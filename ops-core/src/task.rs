//! [`TraceTask`]: the unit the queue carries, and the preprocessing that turns it into the
//! observation tree providers consume.
//!
//! Preprocessing happens on the queue's worker, never on the caller's thread, and needs no
//! database: the app hands over the data it already has (a [`WorkflowRun`] with its node
//! executions, a [`MessageRun`], or an info record).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::model::{
    BaseTraceInfo, InvalidTraceId, Level, MessageRun, MessageTraceInfo, Observation,
    ObservationKind, Trace, TraceAttributes, TraceId, TraceInfo, Usage, UsageUnit,
    WorkflowNodeTraceInfo, WorkflowRun, WorkflowTraceInfo, stable_observation_id,
};

/// The base URL for relative file URLs, from `FILES_URL` (Dify's default otherwise).
pub const FILES_URL_ENV: &str = "FILES_URL";
const DEFAULT_FILES_URL: &str = "http://127.0.0.1:5001";

/// One unit of tracing work: a trace to build and deliver.
///
/// Build it from an info record ([`TraceTask::from_info`]), from a finished run
/// ([`TraceTask::workflow_run`], [`TraceTask::message_run`]), or from an observation tree
/// ([`TraceTask::from_trace`]). The trace id is fixed when the task is built, so a retried or
/// replayed task always lands on the same trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceTask {
    app_id: Option<String>,
    trace_id: TraceId,
    payload: Payload,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Payload {
    Info {
        info: Box<TraceInfo>,
    },
    WorkflowRun {
        run: Box<WorkflowRun>,
        nodes: Vec<WorkflowNodeTraceInfo>,
    },
    MessageRun {
        message: Box<MessageRun>,
    },
    Trace {
        trace: Box<Trace>,
    },
    /// A trace recorded by `#[traced]`: its captured inputs and outputs become JSON (and are
    /// masked) in `preprocess`, on the worker.
    Pending {
        trace: crate::context::PendingTrace,
    },
}

/// Why a task could not become a trace.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// An id used as the trace id is not valid.
    #[error("{field}: {source}")]
    InvalidTraceId {
        /// Which field the id came from.
        field: &'static str,
        /// What is wrong with it.
        source: InvalidTraceId,
    },
    /// A required field is missing.
    #[error("{kind} trace: `{field}` is required")]
    Missing {
        /// The kind of trace.
        kind: ObservationKind,
        /// The missing field.
        field: &'static str,
    },
}

fn resolve_trace_id(candidates: &[(&'static str, Option<&str>)]) -> Result<TraceId, TaskError> {
    for (field, value) in candidates {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            return TraceId::new(value)
                .map_err(|source| TaskError::InvalidTraceId { field, source });
        }
    }
    Ok(TraceId::generate())
}

impl TraceTask {
    /// A task for an info record. The trace id is the external id (`trace_id`) when given,
    /// else the workflow run id, else the message id, else a generated UUIDv7.
    pub fn from_info(info: TraceInfo) -> Result<Self, TaskError> {
        let base = info.base();
        let parent_run = parent_context(&base.metadata).map(|p| p.0);
        let trace_id = resolve_trace_id(&[
            ("trace_id", base.trace_id.as_deref()),
            (
                "parent_trace_context.parent_workflow_run_id",
                parent_run.as_deref(),
            ),
            ("workflow_run_id", info.workflow_run_id()),
            ("message_id", base.message_id.as_deref()),
        ])?;
        Ok(Self {
            app_id: None,
            trace_id,
            payload: Payload::Info {
                info: Box::new(info),
            },
        })
    }

    /// A task for a finished workflow run and its node executions (Dify's
    /// `trace_workflow_run`). A run with a message is a chatflow: its trace is a message trace.
    pub fn workflow_run(
        run: WorkflowRun,
        nodes: Vec<WorkflowNodeTraceInfo>,
    ) -> Result<Self, TaskError> {
        if run.id.is_empty() {
            return Err(TaskError::Missing {
                kind: ObservationKind::Workflow,
                field: "id",
            });
        }
        let parent_run = run
            .parent_trace_context
            .as_ref()
            .map(|p| p.parent_workflow_run_id.as_str());
        let trace_id = resolve_trace_id(&[
            ("external_trace_id", run.external_trace_id.as_deref()),
            ("parent_trace_context.parent_workflow_run_id", parent_run),
            ("id", Some(&run.id)),
        ])?;
        Ok(Self {
            app_id: Some(run.app_id.clone()).filter(|a| !a.is_empty()),
            trace_id,
            payload: Payload::WorkflowRun {
                run: Box::new(run),
                nodes,
            },
        })
    }

    /// A task for a finished chat message (Dify's `trace_message_run`).
    pub fn message_run(message: MessageRun) -> Result<Self, TaskError> {
        if message.id.is_empty() {
            return Err(TaskError::Missing {
                kind: ObservationKind::Message,
                field: "id",
            });
        }
        let trace_id = resolve_trace_id(&[
            ("external_trace_id", message.external_trace_id.as_deref()),
            ("id", Some(&message.id)),
        ])?;
        Ok(Self {
            app_id: Some(message.app_id.clone()).filter(|a| !a.is_empty()),
            trace_id,
            payload: Payload::MessageRun {
                message: Box::new(message),
            },
        })
    }

    /// A task for an observation tree that is already built.
    pub fn from_trace(trace: Trace) -> Self {
        Self {
            app_id: trace.attributes.app_id.clone(),
            trace_id: trace.id.clone(),
            payload: Payload::Trace {
                trace: Box::new(trace),
            },
        }
    }

    /// Whether the task holds a trace recorded by `#[traced]` (or one already masked), which
    /// is masked as its captures become JSON rather than afterwards.
    pub(crate) fn is_recorded(&self) -> bool {
        matches!(self.payload, Payload::Pending { .. })
    }

    /// The task as it can be written to the spool: built and masked now, so no unmasked
    /// value reaches the disk. Recorded traces already serialize masked.
    pub(crate) fn for_spool(self) -> Result<Self, TaskError> {
        if self.is_recorded() {
            return Ok(self);
        }
        let app_id = self.app_id.clone();
        let trace_id = self.trace_id.clone();
        let trace = self.preprocess()?;
        Ok(Self {
            app_id,
            trace_id,
            payload: Payload::Pending {
                trace: crate::context::PendingTrace::ready(trace),
            },
        })
    }

    /// A task for a trace recorded by `#[traced]`, serialized on the worker.
    pub(crate) fn pending(trace: crate::context::PendingTrace) -> Self {
        Self {
            app_id: trace.app_id(),
            trace_id: trace.trace_id(),
            payload: Payload::Pending { trace },
        }
    }

    /// Sets the app the task belongs to (used for routing to the app's providers).
    #[must_use]
    pub fn with_app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// The app the task belongs to.
    pub fn app_id(&self) -> Option<&str> {
        self.app_id.as_deref()
    }

    /// The trace id the task will produce.
    pub fn trace_id(&self) -> &TraceId {
        &self.trace_id
    }

    /// A cheap estimate of the task's size in bytes, for the queue's memory bound.
    pub fn approx_size(&self) -> usize {
        match &self.payload {
            Payload::Trace { trace } => trace.approx_size(),
            Payload::Info { .. } => 2048,
            Payload::WorkflowRun { nodes, .. } => 2048 + 1024 * nodes.len(),
            Payload::MessageRun { .. } => 2048,
            Payload::Pending { trace } => trace.approx_size(),
        }
    }

    /// Builds the observation tree, deriving what Dify's `preprocess` derives: latency, token
    /// totals, the prompt/completion split summed over nodes, and the metadata keys.
    ///
    /// Inputs, outputs and metadata pass the mask in effect (see
    /// [`crate::context::set_mask`]) before any provider sees them.
    pub fn preprocess(self) -> Result<Trace, TaskError> {
        let recorded = self.is_recorded();
        let mut trace = match self.payload {
            Payload::Trace { trace } => *trace,
            Payload::WorkflowRun { run, nodes } => {
                let (info, nodes) = workflow_info(*run, nodes);
                workflow_trace(self.trace_id, &info, &nodes)
            }
            Payload::MessageRun { message } => {
                message_trace(self.trace_id, &message_info(*message))
            }
            Payload::Info { info } => info_trace(self.trace_id, *info),
            Payload::Pending { trace } => trace.into_trace(),
        };
        if !recorded {
            crate::context::mask::mask_trace(&mut trace);
        }
        if trace.attributes.app_id.is_none() {
            trace.attributes.app_id = self.app_id;
        }
        Ok(trace)
    }
}

fn parent_context(metadata: &Map<String, Value>) -> Option<(String, Option<String>)> {
    let ctx = metadata.get("parent_trace_context")?;
    let run = ctx.get("parent_workflow_run_id")?.as_str()?.to_owned();
    let node = ctx
        .get("parent_node_execution_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((run, node))
}

/// The observation id of a record whose id is a UUIDv7 (Dify's newer run and node ids), so
/// records sent in separate tasks can point at it without knowing its start time.
fn linkable_id(source: Option<&str>) -> Option<Uuid> {
    Uuid::try_parse(source?)
        .ok()
        .filter(|u| u.get_version_num() == 7)
}

fn files_url() -> String {
    std::env::var(FILES_URL_ENV).unwrap_or_else(|_| DEFAULT_FILES_URL.to_owned())
}

fn absolute_file_url(url: &str, base: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_owned()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            url.trim_start_matches('/')
        )
    }
}

fn secs(seconds: f64) -> TimeDelta {
    if seconds.is_finite() && seconds > 0.0 {
        TimeDelta::microseconds((seconds * 1e6) as i64)
    } else {
        TimeDelta::zero()
    }
}

fn insert_opt(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v.into());
    }
}

fn usage_object(node: &WorkflowNodeTraceInfo) -> Option<&Map<String, Value>> {
    fn from(m: &Option<Map<String, Value>>) -> Option<&Map<String, Value>> {
        m.as_ref()?.get("usage")?.as_object()
    }
    from(&node.process_data).or_else(|| from(&node.node_outputs))
}

fn u64_of(map: &Map<String, Value>, key: &str) -> Option<u64> {
    map.get(key)
        .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
}

fn f64_of(map: &Map<String, Value>, key: &str) -> Option<f64> {
    map.get(key).and_then(|v| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// Usage of a node: its `process_data.usage`, else `outputs.usage`, else its own fields.
fn node_usage(node: &WorkflowNodeTraceInfo) -> Option<Usage> {
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

fn workflow_info(
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

fn file_ref(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("remote_url")
            .or_else(|| o.get("url"))
            .or_else(|| o.get("id"))
            .and_then(Value::as_str)
            .map_or_else(|| v.to_string(), str::to_owned),
        other => other.to_string(),
    }
}

fn base_observation(
    kind: ObservationKind,
    name: &str,
    id: Uuid,
    base: &BaseTraceInfo,
    fallback_start: DateTime<Utc>,
) -> Observation {
    let mut o = Observation::at(kind, name, base.start_time.unwrap_or(fallback_start));
    o.id = id;
    o.end_time = base.end_time.or(Some(o.start_time));
    o.input = base.inputs.clone();
    o.output = base.outputs.clone();
    o.metadata = base.metadata.clone();
    o
}

fn fail(o: &mut Observation, error: Option<&str>) {
    if let Some(e) = error.filter(|e| !e.is_empty()) {
        o.level = Level::Error;
        o.status_message = Some(e.to_owned());
    }
}

fn session_of(metadata: &Map<String, Value>, conversation_id: Option<&str>) -> Option<String> {
    metadata
        .get("trace_session_id")
        .and_then(Value::as_str)
        .or(conversation_id)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn workflow_trace(
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

fn node_kind(node_type: &str, draft: bool) -> ObservationKind {
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
fn node_observations(
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

fn message_info(m: MessageRun) -> MessageTraceInfo {
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

fn message_data_str<'a>(base: &'a BaseTraceInfo, key: &str) -> Option<&'a str> {
    base.message_data.as_ref()?.get(key)?.as_str()
}

/// The observation id of the message a record belongs to, derived as [`message_trace`]
/// derives it, when the record carries the message's start (`message_data.created_at`).
fn message_observation_id(base: &BaseTraceInfo) -> Option<Uuid> {
    let id = base.message_id.as_deref()?;
    linkable_id(Some(id)).or_else(|| {
        let created: DateTime<Utc> = message_data_str(base, "created_at")?.parse().ok()?;
        Some(stable_observation_id(id, created))
    })
}

fn message_trace(trace_id: TraceId, info: &MessageTraceInfo) -> Trace {
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

fn info_trace(trace_id: TraceId, info: TraceInfo) -> Trace {
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

#[cfg(test)]
mod tests;
