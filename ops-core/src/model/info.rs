//! Dify's trace info records (`core/ops/entities/trace_entity.py`), field for field.
//!
//! They serialise to the JSON Dify's `TaskData.trace_info` holds, and [`TraceInfo`] is the
//! `{trace_info_type, trace_info}` envelope. Timestamps are read with or without an offset
//! (Dify writes naive ISO strings, taken as UTC) and written as RFC 3339 UTC.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields every info record has (Dify's `BaseTraceInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BaseTraceInfo {
    /// The message this record belongs to.
    #[serde(default)]
    pub message_id: Option<String>,
    /// The message row, as the app has it.
    #[serde(default)]
    pub message_data: Option<Value>,
    /// Inputs: a string, an object or a list.
    #[serde(default)]
    pub inputs: Option<Value>,
    /// Outputs: a string, an object or a list.
    #[serde(default)]
    pub outputs: Option<Value>,
    /// When it started.
    #[serde(default, with = "lenient_time")]
    pub start_time: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, with = "lenient_time")]
    pub end_time: Option<DateTime<Utc>>,
    /// Metadata (required by Dify; may be empty).
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The external trace id, when the request carried one.
    #[serde(default)]
    pub trace_id: Option<String>,
}

/// A workflow run, pure or inside a chatflow (Dify's `WorkflowTraceInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowTraceInfo {
    /// The shared fields.
    #[serde(flatten)]
    pub base: BaseTraceInfo,
    /// The workflow run row.
    #[serde(default)]
    pub workflow_data: Option<Value>,
    /// The conversation, for chatflows.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// The workflow app log entry.
    #[serde(default)]
    pub workflow_app_log_id: Option<String>,
    /// The workflow.
    pub workflow_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The run.
    pub workflow_run_id: String,
    /// Seconds the run took.
    pub workflow_run_elapsed_time: f64,
    /// `succeeded`, `failed`, `stopped`, `partial-succeeded`, ...
    pub workflow_run_status: String,
    /// The run's inputs.
    #[serde(default)]
    pub workflow_run_inputs: Map<String, Value>,
    /// The run's outputs.
    #[serde(default)]
    pub workflow_run_outputs: Map<String, Value>,
    /// The workflow version.
    pub workflow_run_version: String,
    /// The run's error.
    #[serde(default)]
    pub error: Option<String>,
    /// Tokens used by the whole run.
    pub total_tokens: u64,
    /// Prompt tokens, summed over the nodes.
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    /// Completion tokens, summed over the nodes.
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    /// Files given to the run.
    #[serde(default)]
    pub file_list: Vec<String>,
    /// `end_user:<id>`, `account:<id>`, `user:<id>` or `anonymous`.
    #[serde(default)]
    pub invoked_by: Option<String>,
    /// The user's query.
    #[serde(default)]
    pub query: String,
}

/// A chat message (Dify's `MessageTraceInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageTraceInfo {
    /// The shared fields.
    #[serde(flatten)]
    pub base: BaseTraceInfo,
    /// The conversation's model.
    pub conversation_model: String,
    /// Prompt tokens.
    pub message_tokens: u64,
    /// Answer tokens.
    pub answer_tokens: u64,
    /// Prompt plus answer tokens.
    pub total_tokens: u64,
    /// The error, when the message failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Files attached: a URL or a list of URLs.
    #[serde(default)]
    pub file_list: Option<Value>,
    /// The message file row.
    #[serde(default)]
    pub message_file_data: Option<Value>,
    /// `chat`, `completion`, `advanced-chat`, `agent-chat`, ...
    pub conversation_mode: String,
    /// Seconds to the first token.
    #[serde(default)]
    pub gen_ai_server_time_to_first_token: Option<f64>,
    /// Seconds spent streaming the answer.
    #[serde(default)]
    pub llm_streaming_time_to_generate: Option<f64>,
    /// Whether the answer was streamed.
    #[serde(default)]
    pub is_streaming_request: bool,
}

/// A moderation check (Dify's `ModerationTraceInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModerationTraceInfo {
    /// The shared fields.
    #[serde(flatten)]
    pub base: BaseTraceInfo,
    /// Whether the content was flagged.
    pub flagged: bool,
    /// The action taken.
    pub action: String,
    /// The response shown instead.
    pub preset_response: String,
    /// The checked query.
    pub query: String,
}

/// Suggested follow-up questions (Dify's `SuggestedQuestionTraceInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuggestedQuestionTraceInfo {
    /// The shared fields.
    #[serde(flatten)]
    pub base: BaseTraceInfo,
    /// Tokens used.
    pub total_tokens: u64,
    /// The message status.
    #[serde(default)]
    pub status: Option<String>,
    /// The error.
    #[serde(default)]
    pub error: Option<String>,
    /// The account that asked.
    #[serde(default)]
    pub from_account_id: Option<String>,
    /// Whether an agent answered.
    #[serde(default)]
    pub agent_based: Option<bool>,
    /// `api` or `console`.
    #[serde(default)]
    pub from_source: Option<String>,
    /// The model's provider.
    #[serde(default)]
    pub model_provider: Option<String>,
    /// The model.
    #[serde(default)]
    pub model_id: Option<String>,
    /// The suggestions.
    #[serde(default)]
    pub suggested_question: Vec<String>,
    /// The level, as Dify's status.
    pub level: String,
    /// The status message.
    #[serde(default)]
    pub status_message: Option<String>,
    /// The workflow run, for chatflows.
    #[serde(default)]
    pub workflow_run_id: Option<String>,
}

/// A knowledge retrieval (Dify's `DatasetRetrievalTraceInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetRetrievalTraceInfo {
    /// The shared fields.
    #[serde(flatten)]
    pub base: BaseTraceInfo,
    /// The documents found.
    #[serde(default)]
    pub documents: Value,
    /// The error.
    #[serde(default)]
    pub error: Option<String>,
}

/// A tool call (Dify's `ToolTraceInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolTraceInfo {
    /// The shared fields.
    #[serde(flatten)]
    pub base: BaseTraceInfo,
    /// The tool.
    pub tool_name: String,
    /// Its inputs.
    #[serde(default)]
    pub tool_inputs: Map<String, Value>,
    /// Its output.
    #[serde(default)]
    pub tool_outputs: String,
    /// The message file row.
    #[serde(default)]
    pub message_file_data: Option<Value>,
    /// The error.
    #[serde(default)]
    pub error: Option<String>,
    /// The tool's configuration.
    #[serde(default)]
    pub tool_config: Map<String, Value>,
    /// Seconds the call took.
    #[serde(default)]
    pub time_cost: f64,
    /// The tool's parameters.
    #[serde(default)]
    pub tool_parameters: Map<String, Value>,
    /// Files produced: a URL or a list of URLs.
    #[serde(default)]
    pub file_url: Option<Value>,
}

/// Generating a conversation's name (Dify's `GenerateNameTraceInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateNameTraceInfo {
    /// The shared fields.
    #[serde(flatten)]
    pub base: BaseTraceInfo,
    /// The conversation.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// The tenant.
    pub tenant_id: String,
}

/// A prompt generated by the prompt generator (Dify's `PromptGenerationTraceInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptGenerationTraceInfo {
    /// The shared fields.
    #[serde(flatten)]
    pub base: BaseTraceInfo,
    /// The tenant.
    pub tenant_id: String,
    /// The user who asked.
    pub user_id: String,
    /// The app.
    #[serde(default)]
    pub app_id: Option<String>,
    /// `rule_generate`, `code_generate`, ...
    pub operation_type: String,
    /// The instruction given.
    pub instruction: String,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Total tokens.
    pub total_tokens: u64,
    /// The model's provider.
    pub model_provider: String,
    /// The model.
    pub model_name: String,
    /// Seconds it took.
    pub latency: f64,
    /// Its price.
    #[serde(default)]
    pub total_price: Option<f64>,
    /// The price's currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// The error.
    #[serde(default)]
    pub error: Option<String>,
}

/// One node execution of a workflow run (Dify's `WorkflowNodeTraceInfo`, also used for
/// `DraftNodeExecutionTrace`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowNodeTraceInfo {
    /// The shared fields.
    #[serde(flatten)]
    pub base: BaseTraceInfo,
    /// The workflow.
    pub workflow_id: String,
    /// The run.
    pub workflow_run_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// This execution.
    pub node_execution_id: String,
    /// The node in the graph.
    pub node_id: String,
    /// `llm`, `tool`, `knowledge-retrieval`, `code`, `iteration`, ...
    pub node_type: String,
    /// The node's title.
    pub title: String,
    /// `succeeded`, `failed`, `exception`, ...
    pub status: String,
    /// The error.
    #[serde(default)]
    pub error: Option<String>,
    /// Seconds it took.
    pub elapsed_time: f64,
    /// Its position in the run.
    pub index: i64,
    /// The node that ran before it.
    #[serde(default)]
    pub predecessor_node_id: Option<String>,
    /// Tokens used.
    #[serde(default)]
    pub total_tokens: u64,
    /// Its price.
    #[serde(default)]
    pub total_price: f64,
    /// The price's currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// The model's provider.
    #[serde(default)]
    pub model_provider: Option<String>,
    /// The model.
    #[serde(default)]
    pub model_name: Option<String>,
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    /// The tool, for tool nodes.
    #[serde(default)]
    pub tool_name: Option<String>,
    /// The iteration node it runs in.
    #[serde(default)]
    pub iteration_id: Option<String>,
    /// Its iteration.
    #[serde(default)]
    pub iteration_index: Option<i64>,
    /// The loop node it runs in.
    #[serde(default)]
    pub loop_id: Option<String>,
    /// Its loop round.
    #[serde(default)]
    pub loop_index: Option<i64>,
    /// Its parallel branch.
    #[serde(default)]
    pub parallel_id: Option<String>,
    /// The node's inputs.
    #[serde(default)]
    pub node_inputs: Option<Map<String, Value>>,
    /// The node's outputs.
    #[serde(default)]
    pub node_outputs: Option<Map<String, Value>>,
    /// What the node processed: prompts, usage, ...
    #[serde(default)]
    pub process_data: Option<Map<String, Value>>,
    /// Who ran it.
    #[serde(default)]
    pub invoked_by: Option<String>,
}

impl WorkflowNodeTraceInfo {
    /// A succeeded execution of node `node_id` in `run`, with a fresh UUIDv7 execution id,
    /// started at `start` and lasting `elapsed_time` seconds: the shape
    /// [`crate::TraceQueueManager::trace_workflow_run`] takes. Set what else the app knows
    /// (inputs, outputs, `process_data` with prompts and usage, status, error) on the result.
    pub fn of_run(
        run: &super::WorkflowRun,
        index: i64,
        node_id: impl Into<String>,
        node_type: impl Into<String>,
        title: impl Into<String>,
        start: DateTime<Utc>,
        elapsed_time: f64,
    ) -> Self {
        Self {
            base: BaseTraceInfo {
                message_id: run.message_id.clone(),
                start_time: Some(start),
                ..BaseTraceInfo::default()
            },
            workflow_id: run.workflow_id.clone(),
            workflow_run_id: run.id.clone(),
            tenant_id: run.tenant_id.clone(),
            node_execution_id: uuid::Uuid::now_v7().to_string(),
            node_id: node_id.into(),
            node_type: node_type.into(),
            title: title.into(),
            status: "succeeded".into(),
            elapsed_time,
            index,
            ..Self::default()
        }
    }
}

/// Any info record, in Dify's `{trace_info_type, trace_info}` envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "trace_info_type", content = "trace_info")]
#[non_exhaustive]
pub enum TraceInfo {
    /// A workflow run.
    #[serde(rename = "WorkflowTraceInfo")]
    Workflow(WorkflowTraceInfo),
    /// A message.
    #[serde(rename = "MessageTraceInfo")]
    Message(MessageTraceInfo),
    /// A moderation check.
    #[serde(rename = "ModerationTraceInfo")]
    Moderation(ModerationTraceInfo),
    /// Suggested questions.
    #[serde(rename = "SuggestedQuestionTraceInfo")]
    SuggestedQuestion(SuggestedQuestionTraceInfo),
    /// A retrieval.
    #[serde(rename = "DatasetRetrievalTraceInfo")]
    DatasetRetrieval(DatasetRetrievalTraceInfo),
    /// A tool call.
    #[serde(rename = "ToolTraceInfo")]
    Tool(ToolTraceInfo),
    /// A conversation name.
    #[serde(rename = "GenerateNameTraceInfo")]
    GenerateName(GenerateNameTraceInfo),
    /// A generated prompt.
    #[serde(rename = "PromptGenerationTraceInfo")]
    PromptGeneration(PromptGenerationTraceInfo),
    /// A node execution.
    #[serde(rename = "WorkflowNodeTraceInfo")]
    NodeExecution(WorkflowNodeTraceInfo),
    /// A draft node execution.
    #[serde(rename = "DraftNodeExecutionTrace")]
    DraftNodeExecution(WorkflowNodeTraceInfo),
}

impl TraceInfo {
    /// The shared fields.
    pub fn base(&self) -> &BaseTraceInfo {
        match self {
            TraceInfo::Workflow(i) => &i.base,
            TraceInfo::Message(i) => &i.base,
            TraceInfo::Moderation(i) => &i.base,
            TraceInfo::SuggestedQuestion(i) => &i.base,
            TraceInfo::DatasetRetrieval(i) => &i.base,
            TraceInfo::Tool(i) => &i.base,
            TraceInfo::GenerateName(i) => &i.base,
            TraceInfo::PromptGeneration(i) => &i.base,
            TraceInfo::NodeExecution(i) | TraceInfo::DraftNodeExecution(i) => &i.base,
        }
    }

    /// The kind of trace this record makes.
    pub fn kind(&self) -> super::ObservationKind {
        use super::ObservationKind as K;
        match self {
            TraceInfo::Workflow(_) => K::Workflow,
            TraceInfo::Message(_) => K::Message,
            TraceInfo::Moderation(_) => K::Moderation,
            TraceInfo::SuggestedQuestion(_) => K::SuggestedQuestion,
            TraceInfo::DatasetRetrieval(_) => K::DatasetRetrieval,
            TraceInfo::Tool(_) => K::Tool,
            TraceInfo::GenerateName(_) => K::GenerateConversationName,
            TraceInfo::PromptGeneration(_) => K::PromptGeneration,
            TraceInfo::NodeExecution(_) => K::NodeExecution,
            TraceInfo::DraftNodeExecution(_) => K::DraftNodeExecution,
        }
    }

    /// The workflow run this record belongs to, when it names one.
    pub fn workflow_run_id(&self) -> Option<&str> {
        match self {
            TraceInfo::Workflow(i) => Some(&i.workflow_run_id),
            TraceInfo::NodeExecution(i) | TraceInfo::DraftNodeExecution(i) => {
                Some(&i.workflow_run_id)
            }
            TraceInfo::SuggestedQuestion(i) => i.workflow_run_id.as_deref(),
            _ => None,
        }
    }
}

mod lenient_time {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
            return Ok(Some(t.with_timezone(&Utc)));
        }
        NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f"))
            .map(|n| Some(n.and_utc()))
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "invalid timestamp {s:?}: expected ISO 8601, like 2026-01-02T03:04:05.678Z"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> BaseTraceInfo {
        BaseTraceInfo {
            message_id: Some("m-1".into()),
            message_data: Some(json!({"id": "m-1", "answer": "hi"})),
            inputs: Some(json!({"query": "q"})),
            outputs: Some(json!("answer")),
            start_time: Some("2026-01-02T03:04:05.123456Z".parse().unwrap()),
            end_time: Some("2026-01-02T03:04:06Z".parse().unwrap()),
            metadata: json!({"a": 1, "nested": {"b": [1, 2.5, null]}})
                .as_object()
                .unwrap()
                .clone(),
            trace_id: Some("ext-1".into()),
        }
    }

    fn round_trip(info: TraceInfo) {
        let json = serde_json::to_value(&info).unwrap();
        let back: TraceInfo = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, info, "{json}");
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
    }

    #[test]
    fn every_info_round_trips() {
        let node = WorkflowNodeTraceInfo {
            base: base(),
            workflow_id: "wf".into(),
            workflow_run_id: "run".into(),
            tenant_id: "t".into(),
            node_execution_id: "ne".into(),
            node_id: "n".into(),
            node_type: "llm".into(),
            title: "LLM".into(),
            status: "succeeded".into(),
            error: None,
            elapsed_time: 1.5,
            index: 2,
            predecessor_node_id: Some("start".into()),
            total_tokens: 30,
            total_price: 0.001,
            currency: Some("USD".into()),
            model_provider: Some("openai".into()),
            model_name: Some("gpt-4o".into()),
            prompt_tokens: Some(20),
            completion_tokens: Some(10),
            tool_name: None,
            iteration_id: Some("it".into()),
            iteration_index: Some(0),
            loop_id: None,
            loop_index: None,
            parallel_id: Some("p".into()),
            node_inputs: Some(json!({"x": 1}).as_object().unwrap().clone()),
            node_outputs: Some(json!({"text": "y"}).as_object().unwrap().clone()),
            process_data: Some(
                json!({"usage": {"prompt_tokens": 20}})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            invoked_by: Some("account:a".into()),
        };
        for info in [
            TraceInfo::Workflow(WorkflowTraceInfo {
                base: base(),
                workflow_data: Some(json!({"id": "run"})),
                conversation_id: Some("c".into()),
                workflow_app_log_id: Some("log".into()),
                workflow_id: "wf".into(),
                tenant_id: "t".into(),
                workflow_run_id: "run".into(),
                workflow_run_elapsed_time: 2.25,
                workflow_run_status: "succeeded".into(),
                workflow_run_inputs: json!({"sys.query": "q"}).as_object().unwrap().clone(),
                workflow_run_outputs: json!({"answer": "a"}).as_object().unwrap().clone(),
                workflow_run_version: "v1".into(),
                error: None,
                total_tokens: 42,
                prompt_tokens: Some(30),
                completion_tokens: Some(12),
                file_list: vec!["f".into()],
                invoked_by: Some("end_user:u".into()),
                query: "q".into(),
            }),
            TraceInfo::Message(MessageTraceInfo {
                base: base(),
                conversation_model: "chat".into(),
                message_tokens: 10,
                answer_tokens: 5,
                total_tokens: 15,
                error: Some("e".into()),
                file_list: Some(json!(["a"])),
                message_file_data: None,
                conversation_mode: "advanced-chat".into(),
                gen_ai_server_time_to_first_token: Some(0.25),
                llm_streaming_time_to_generate: Some(1.0),
                is_streaming_request: true,
            }),
            TraceInfo::Moderation(ModerationTraceInfo {
                base: base(),
                flagged: true,
                action: "direct_output".into(),
                preset_response: "no".into(),
                query: "q".into(),
            }),
            TraceInfo::SuggestedQuestion(SuggestedQuestionTraceInfo {
                base: base(),
                total_tokens: 3,
                status: Some("normal".into()),
                error: None,
                from_account_id: Some("acc".into()),
                agent_based: Some(false),
                from_source: Some("api".into()),
                model_provider: Some("openai".into()),
                model_id: Some("gpt".into()),
                suggested_question: vec!["why?".into()],
                level: "info".into(),
                status_message: None,
                workflow_run_id: Some("run".into()),
            }),
            TraceInfo::DatasetRetrieval(DatasetRetrievalTraceInfo {
                base: base(),
                documents: json!([{"page_content": "doc", "metadata": {"score": 0.9}}]),
                error: None,
            }),
            TraceInfo::Tool(ToolTraceInfo {
                base: base(),
                tool_name: "search".into(),
                tool_inputs: json!({"q": "x"}).as_object().unwrap().clone(),
                tool_outputs: "out".into(),
                message_file_data: Some(json!({"url": "u"})),
                error: None,
                tool_config: json!({"provider": "p"}).as_object().unwrap().clone(),
                time_cost: 0.5,
                tool_parameters: Map::new(),
                file_url: Some(json!("http://f")),
            }),
            TraceInfo::GenerateName(GenerateNameTraceInfo {
                base: base(),
                conversation_id: Some("c".into()),
                tenant_id: "t".into(),
            }),
            TraceInfo::PromptGeneration(PromptGenerationTraceInfo {
                base: base(),
                tenant_id: "t".into(),
                user_id: "u".into(),
                app_id: Some("a".into()),
                operation_type: "rule_generate".into(),
                instruction: "make it".into(),
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3,
                model_provider: "openai".into(),
                model_name: "gpt".into(),
                latency: 0.7,
                total_price: Some(0.5),
                currency: Some("USD".into()),
                error: None,
            }),
            TraceInfo::NodeExecution(node.clone()),
            TraceInfo::DraftNodeExecution(node),
        ] {
            round_trip(info);
        }
    }

    #[test]
    fn a_node_of_a_run_belongs_to_it() {
        let run = super::super::WorkflowRun {
            id: "run-1".into(),
            tenant_id: "t".into(),
            workflow_id: "wf".into(),
            message_id: Some("m".into()),
            ..Default::default()
        };
        let start: DateTime<Utc> = "2026-01-02T03:04:05Z".parse().unwrap();
        let n = WorkflowNodeTraceInfo::of_run(&run, 2, "llm-1", "llm", "LLM", start, 1.5);
        assert_eq!(
            (
                n.workflow_run_id.as_str(),
                n.workflow_id.as_str(),
                n.tenant_id.as_str()
            ),
            ("run-1", "wf", "t")
        );
        assert_eq!(
            (n.node_id.as_str(), n.node_type.as_str(), n.title.as_str()),
            ("llm-1", "llm", "LLM")
        );
        assert_eq!(
            (n.index, n.elapsed_time, n.status.as_str()),
            (2, 1.5, "succeeded")
        );
        assert_eq!(n.base.start_time, Some(start));
        assert_eq!(n.base.message_id.as_deref(), Some("m"));
        assert_eq!(
            uuid::Uuid::parse_str(&n.node_execution_id)
                .unwrap()
                .get_version_num(),
            7
        );
    }

    #[test]
    fn reads_difys_naive_timestamps() {
        let info: TraceInfo = serde_json::from_value(json!({
            "trace_info_type": "GenerateNameTraceInfo",
            "trace_info": {"tenant_id": "t", "metadata": {},
                           "start_time": "2026-01-02T03:04:05.123456", "end_time": null}
        }))
        .unwrap();
        let base = info.base();
        assert_eq!(
            base.start_time.unwrap().to_rfc3339(),
            "2026-01-02T03:04:05.123456+00:00"
        );
        let err = serde_json::from_value::<TraceInfo>(json!({
            "trace_info_type": "GenerateNameTraceInfo",
            "trace_info": {"tenant_id": "t", "start_time": "yesterday"}
        }))
        .unwrap_err();
        assert!(err.to_string().contains("\"yesterday\""), "{err}");
    }
}
