//! The data an app already has about a finished run, from which [`crate::TraceTask`] derives
//! what Dify's `preprocess` derives from its database.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Links a nested workflow run to the node that started it (Dify's `ParentTraceContext`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentTraceContext {
    /// The run of the calling workflow.
    pub parent_workflow_run_id: String,
    /// The node execution that called this workflow.
    #[serde(default)]
    pub parent_node_execution_id: Option<String>,
}

/// A finished workflow run, as Dify's `WorkflowRun` row plus the request context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkflowRun {
    /// The run id.
    pub id: String,
    /// The tenant (workspace).
    pub tenant_id: String,
    /// The app.
    pub app_id: String,
    /// The workflow.
    pub workflow_id: String,
    /// `app-run`, `debugging`, ...
    pub triggered_from: String,
    /// The workflow version.
    pub version: String,
    /// The run's inputs, with `sys.query`, `sys.files`, ...
    pub inputs: Map<String, Value>,
    /// The run's outputs.
    pub outputs: Map<String, Value>,
    /// `succeeded`, `failed`, `stopped`, `partial-succeeded`.
    pub status: String,
    /// The run's error.
    pub error: Option<String>,
    /// Seconds the run took.
    pub elapsed_time: f64,
    /// Tokens used by the run; 0 means "sum the nodes".
    pub total_tokens: u64,
    /// Steps executed.
    pub total_steps: u64,
    /// `account` or `end_user`.
    pub created_by_role: String,
    /// Who ran it.
    pub created_by: String,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The conversation, for chatflows.
    pub conversation_id: Option<String>,
    /// The message, for chatflows.
    pub message_id: Option<String>,
    /// The workflow app log entry.
    pub workflow_app_log_id: Option<String>,
    /// The external trace id from the request (`X-Trace-Id`, `trace_id`, traceparent).
    pub external_trace_id: Option<String>,
    /// The session from the request (`X-Trace-Session-Id`).
    pub trace_session_id: Option<String>,
    /// Set when another workflow called this one.
    pub parent_trace_context: Option<ParentTraceContext>,
    /// The end user or account id.
    pub user_id: Option<String>,
    /// The app's name.
    pub app_name: Option<String>,
    /// The workspace's name.
    pub workspace_name: Option<String>,
}

/// A finished chat message, as Dify's `Message` row plus the request context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageRun {
    /// The message id.
    pub id: String,
    /// The conversation.
    pub conversation_id: String,
    /// The app.
    pub app_id: String,
    /// The tenant.
    pub tenant_id: Option<String>,
    /// `chat`, `completion`, `agent-chat`, `advanced-chat`.
    pub conversation_mode: String,
    /// The model's provider.
    pub model_provider: Option<String>,
    /// The model.
    pub model_id: Option<String>,
    /// The app's inputs.
    pub inputs: Map<String, Value>,
    /// The user's query.
    pub query: String,
    /// The prompt messages sent to the model.
    pub message: Value,
    /// The answer.
    pub answer: String,
    /// Prompt tokens.
    pub message_tokens: u64,
    /// Answer tokens.
    pub answer_tokens: u64,
    /// The price of the call.
    pub total_price: Option<f64>,
    /// Its currency.
    pub currency: Option<String>,
    /// Seconds the provider took.
    pub provider_response_latency: f64,
    /// When the message was created.
    pub created_at: DateTime<Utc>,
    /// When it was last updated.
    pub updated_at: Option<DateTime<Utc>>,
    /// `normal` or `error`.
    pub status: String,
    /// The error.
    pub error: Option<String>,
    /// The end user who asked.
    pub from_end_user_id: Option<String>,
    /// The account who asked.
    pub from_account_id: Option<String>,
    /// `api` or `console`.
    pub from_source: String,
    /// Whether an agent answered.
    pub agent_based: bool,
    /// The workflow run, for chatflows.
    pub workflow_run_id: Option<String>,
    /// Dify's `message_metadata`, with `usage.time_to_first_token` and `usage.time_to_generate`.
    pub message_metadata: Map<String, Value>,
    /// URLs of the message's files; relative ones are joined to `FILES_URL`.
    pub message_files: Vec<String>,
    /// The external trace id from the request.
    pub external_trace_id: Option<String>,
    /// The session from the request.
    pub trace_session_id: Option<String>,
    /// The node execution, when a workflow node produced the message.
    pub node_execution_id: Option<String>,
    /// The app's name.
    pub app_name: Option<String>,
    /// The workspace's name.
    pub workspace_name: Option<String>,
}
