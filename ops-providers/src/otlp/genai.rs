//! The OpenTelemetry GenAI semantic conventions (`gen_ai.*`), used by the generic `otlp`
//! provider and, in part, by the ARMS, Tencent and MLflow dialects.
//!
//! Reference: the GenAI registry (`gen_ai.operation.name`, `gen_ai.request.*`,
//! `gen_ai.usage.*`, `gen_ai.input.messages` / `gen_ai.output.messages` as JSON strings in the
//! structured message schema, `gen_ai.tool.*`, `gen_ai.retrieval.*`, `gen_ai.agent.name`,
//! `gen_ai.workflow.name`, `gen_ai.conversation.id`).

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use ops_core::model::SemanticKind;
use ops_core::{Level, Observation, ObservationKind, Trace, Usage};
use serde_json::{Map, Value, json};

use super::content;
use super::encode::{Attributes, is_root};

/// `gen_ai.operation.name` for a kind: `chat` for LLM calls, `execute_tool`, `retrieval`,
/// `invoke_agent`, `invoke_workflow` for workflows, messages and conversations; none for the
/// rest.
pub fn operation_name(kind: ObservationKind) -> Option<&'static str> {
    match kind.semantic() {
        SemanticKind::Llm => Some("chat"),
        SemanticKind::Tool => Some("execute_tool"),
        SemanticKind::Retriever => Some("retrieval"),
        SemanticKind::Agent => Some("invoke_agent"),
        SemanticKind::Chain => Some("invoke_workflow"),
        _ => None,
    }
}

/// `gen_ai.provider.name` for a model provider as Dify names it (`openai`,
/// `azure_openai`, `anthropic`, `bedrock`, `vertex_ai`, `gemini`, ...): the registry's well-known
/// value where there is one, else the name lowercased.
pub fn provider_name(model_provider: &str) -> String {
    let p = model_provider.trim().to_ascii_lowercase();
    let p = p.rsplit('/').next().unwrap_or(&p).to_owned();
    match p.as_str() {
        "azure_openai" | "azure-openai" | "azure" => "azure.ai.openai",
        "bedrock" | "aws_bedrock" | "aws" => "aws.bedrock",
        "vertex_ai" | "vertexai" => "gcp.vertex_ai",
        "gemini" | "google" => "gcp.gemini",
        "mistralai" | "mistral" => "mistral_ai",
        "x" | "xai" | "grok" => "x_ai",
        "watsonx" | "ibm" => "ibm.watsonx.ai",
        _ => return p,
    }
    .to_owned()
}

/// `gen_ai.input.messages` (structured: `[{role, parts: [{type: "text", content}]}]`) from an
/// LLM input, when it holds chat messages.
pub fn input_messages(input: &Value) -> Option<Value> {
    let messages = content::input_messages(input)?;
    Some(Value::Array(
        messages
            .into_iter()
            .map(|m| json!({"role": m.role, "parts": [{"type": "text", "content": m.content}]}))
            .collect(),
    ))
}

/// `gen_ai.output.messages` (one assistant message with its finish reason) from an LLM
/// output, when it holds an answer.
pub fn output_messages(output: &Value) -> Option<Value> {
    let text = content::output_text(output)?;
    let finish = output
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("stop");
    Some(json!([{
        "role": "assistant",
        "parts": [{"type": "text", "content": text}],
        "finish_reason": finish,
    }]))
}

/// `gen_ai.request.*` from model parameters: temperature, max_tokens, top_p, top_k,
/// frequency_penalty, presence_penalty, seed, and `stop` as `stop_sequences`.
pub fn add_request_parameters(attrs: &mut Attributes, params: &Map<String, Value>) {
    for (key, value) in params {
        let name = match key.as_str() {
            "temperature" | "max_tokens" | "top_p" | "top_k" | "frequency_penalty"
            | "presence_penalty" | "seed" => key.as_str(),
            "max_completion_tokens" => "max_tokens",
            "stop" | "stop_sequences" => "stop_sequences",
            _ => continue,
        };
        let key = format!("gen_ai.request.{name}");
        match value {
            Value::String(s) if name == "stop_sequences" => {
                attrs.str_array(key, [s.clone()]);
            }
            Value::Number(_) | Value::Array(_) => {
                attrs.value(key, value);
            }
            _ => {}
        }
    }
}

/// The cached prompt tokens among a usage's details, under any of the names providers use.
pub fn cache_read_tokens(usage: &Usage) -> Option<u64> {
    [
        "cache_read_input_tokens",
        "cached_tokens",
        "input_cached_tokens",
        "cache_read",
    ]
    .iter()
    .find_map(|k| usage.details.get(*k).and_then(Value::as_u64))
}

/// `gen_ai.usage.input_tokens`, `output_tokens`, `cache_read.input_tokens` (and, when
/// `with_total`, the widely read but unofficial `total_tokens`).
pub fn add_usage(attrs: &mut Attributes, usage: &Usage, with_total: bool) {
    if let Some(n) = usage.input {
        attrs.uint("gen_ai.usage.input_tokens", n);
    }
    if let Some(n) = usage.output {
        attrs.uint("gen_ai.usage.output_tokens", n);
    }
    if let Some(n) = cache_read_tokens(usage) {
        attrs.uint("gen_ai.usage.cache_read.input_tokens", n);
    }
    if with_total && let Some(n) = usage.total() {
        attrs.uint("gen_ai.usage.total_tokens", n);
    }
}

/// `gen_ai.retrieval.documents` (`[{id, score, content}]`) from a retrieval output; only
/// documents with a score are listed (the schema requires one).
pub fn retrieval_documents(output: &Value) -> Option<Value> {
    let docs: Vec<Value> = content::documents(output)?
        .into_iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let score = d.score?;
            Some(json!({
                "id": d.id.unwrap_or_else(|| i.to_string()),
                "score": score,
                "content": d.content,
            }))
        })
        .collect();
    (!docs.is_empty()).then_some(Value::Array(docs))
}

/// The tool a tool observation called: `metadata.tool_name`, else the observation's name.
pub fn tool_name(observation: &Observation) -> &str {
    observation
        .metadata
        .get("tool_name")
        .and_then(Value::as_str)
        .unwrap_or(&observation.name)
}

/// The span name the GenAI conventions give: `{operation} {model}` for LLM calls,
/// `execute_tool {tool}`, `invoke_agent {agent}`, else the observation's name.
pub fn span_name(observation: &Observation) -> String {
    match observation.kind.semantic() {
        SemanticKind::Llm => match &observation.model {
            Some(model) => format!("chat {model}"),
            None => observation.name.clone(),
        },
        SemanticKind::Tool => format!("execute_tool {}", tool_name(observation)),
        SemanticKind::Agent => format!("invoke_agent {}", observation.name),
        _ => observation.name.clone(),
    }
}

/// `CLIENT` for LLM calls (a call to a model service), `INTERNAL` otherwise.
pub fn span_kind(observation: &Observation) -> SpanKind {
    match observation.kind.semantic() {
        SemanticKind::Llm => SpanKind::Client,
        _ => SpanKind::Internal,
    }
}

/// Every GenAI attribute of an observation, plus `user.id`, `session.id`, `error.type`,
/// `input.value` / `output.value` where no GenAI key holds the content, and
/// `ops.observation.kind`, `ops.metadata` (JSON) and `ops.tags`.
pub fn span_attributes(trace: &Trace, o: &Observation, attrs: &mut Attributes) {
    let who = trace.attributes_of(o);
    if let Some(op) = operation_name(o.kind) {
        attrs.str("gen_ai.operation.name", op);
    }
    attrs.str("ops.observation.kind", o.kind.as_str());
    let mut content_done = false;
    match o.kind.semantic() {
        SemanticKind::Llm => {
            attrs.opt_str("gen_ai.request.model", o.model.clone());
            if let Some(p) = &o.model_provider {
                attrs.str("gen_ai.provider.name", provider_name(p));
            }
            add_request_parameters(attrs, &o.model_parameters);
            if let Some(u) = &o.usage {
                add_usage(attrs, u, false);
            }
            let input = o.input.as_ref().and_then(input_messages);
            let output = o.output.as_ref().and_then(output_messages);
            content_done = input.is_some() && output.is_some();
            if let Some(m) = input {
                attrs.json("gen_ai.input.messages", &m);
            }
            if let Some(m) = output {
                attrs.json("gen_ai.output.messages", &m);
            }
        }
        SemanticKind::Tool => {
            attrs.str("gen_ai.tool.name", tool_name(o));
            attrs.str("gen_ai.tool.type", "function");
            if let Some(i) = &o.input {
                attrs.text("gen_ai.tool.call.arguments", i);
            }
            if let Some(out) = &o.output {
                attrs.text("gen_ai.tool.call.result", out);
            }
            content_done = true;
        }
        SemanticKind::Retriever => {
            if let Some(q) = o.input.as_ref().and_then(content::query_text) {
                attrs.str("gen_ai.retrieval.query.text", q);
            }
            if let Some(d) = o.output.as_ref().and_then(retrieval_documents) {
                attrs.json("gen_ai.retrieval.documents", &d);
            }
        }
        SemanticKind::Agent => {
            attrs.str("gen_ai.agent.name", &o.name);
        }
        SemanticKind::Chain => {
            attrs.str("gen_ai.workflow.name", &o.name);
        }
        _ => {}
    }
    if !content_done {
        if let Some(i) = &o.input {
            attrs.text("input.value", i);
        }
        if let Some(out) = &o.output {
            attrs.text("output.value", out);
        }
    }
    if let Some(s) = &who.session_id {
        attrs.str("gen_ai.conversation.id", s).str("session.id", s);
    }
    attrs.opt_str("user.id", who.user_id);
    if o.level == Level::Error {
        attrs.str("error.type", o.error_type().unwrap_or("Error"));
    }
    let mut metadata = o.metadata.clone();
    if is_root(trace, o) {
        for (k, v) in &trace.metadata {
            metadata.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if !metadata.is_empty() {
        attrs.json("ops.metadata", &Value::Object(metadata));
    }
    let tags = merged_tags(trace, o);
    if !tags.is_empty() {
        attrs.str_array("ops.tags", tags);
    }
}

/// The trace's tags followed by the observation's, without repeats; linear in the tags.
pub fn merged_tags(trace: &Trace, o: &Observation) -> Vec<String> {
    crate::native::unique(trace.tags.iter().chain(&o.tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_follow_the_registry() {
        assert_eq!(provider_name("openai"), "openai");
        assert_eq!(provider_name("azure_openai"), "azure.ai.openai");
        assert_eq!(provider_name("langgenius/anthropic/anthropic"), "anthropic");
        assert_eq!(provider_name("Bedrock"), "aws.bedrock");
        assert_eq!(provider_name("tongyi"), "tongyi");
    }

    #[test]
    fn messages_follow_the_schema() {
        let i = input_messages(&json!([{"role": "user", "text": "hi"}])).unwrap();
        assert_eq!(
            i,
            json!([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
        );
        let o = output_messages(&json!({"text": "yo", "finish_reason": "length"})).unwrap();
        assert_eq!(o[0]["finish_reason"], "length");
        assert_eq!(o[0]["parts"][0]["content"], "yo");
    }

    #[test]
    fn request_parameters() {
        let mut a = Attributes::new();
        let params = json!({"temperature": 0.2, "max_tokens": 100, "stop": "###", "mode": "chat"});
        add_request_parameters(&mut a, params.as_object().unwrap());
        assert!(a.contains("gen_ai.request.temperature"));
        assert!(a.contains("gen_ai.request.max_tokens"));
        assert!(a.contains("gen_ai.request.stop_sequences"));
        assert_eq!(a.len(), 3);
    }
}
