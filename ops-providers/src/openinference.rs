//! OpenInference attributes (Arize Phoenix and Arize AX): the span kind, input and output
//! with their MIME types, the LLM's model, tokens, cost and flattened messages, retrieved
//! documents, tools, and the session, user, metadata and tags.

use ops_core::model::SemanticKind;
use ops_core::{Observation, ObservationKind, Trace};
use serde_json::Value;

use crate::otlp::content;
use crate::otlp::encode::{Attributes, is_root, mime_of, text_of};
use crate::otlp::genai::{cache_read_tokens, merged_tags, tool_name};

/// The resource attribute that names the project.
pub const PROJECT_NAME: &str = "openinference.project.name";

/// `openinference.span.kind` for a kind: LLM, TOOL, RETRIEVER, AGENT, GUARDRAIL, else CHAIN
/// (workflows, messages and plain steps, as Dify maps them).
pub fn span_kind(kind: ObservationKind) -> &'static str {
    match kind.semantic() {
        SemanticKind::Llm => "LLM",
        SemanticKind::Tool => "TOOL",
        SemanticKind::Retriever => "RETRIEVER",
        SemanticKind::Agent => "AGENT",
        SemanticKind::Guardrail => "GUARDRAIL",
        _ => "CHAIN",
    }
}

/// `llm.provider` for a model provider as Dify names it: the OpenInference well-known value
/// where there is one (`openai`, `azure`, `anthropic`, `google`, `aws`, `mistralai`, ...),
/// else the name lowercased.
pub fn llm_provider(model_provider: &str) -> String {
    let p = model_provider.trim().to_ascii_lowercase();
    let p = p.rsplit('/').next().unwrap_or(&p).to_owned();
    match p.as_str() {
        "azure_openai" | "azure-openai" => "azure",
        "gemini" | "vertex_ai" | "vertexai" => "google",
        "bedrock" | "aws_bedrock" => "aws",
        "mistral" => "mistralai",
        "xai" | "x" => "xai",
        _ => return p,
    }
    .to_owned()
}

/// Every OpenInference attribute of an observation.
pub fn span_attributes(trace: &Trace, o: &Observation, attrs: &mut Attributes) {
    let who = trace.attributes_of(o);
    attrs.str("openinference.span.kind", span_kind(o.kind));
    if let Some(i) = &o.input {
        attrs
            .str("input.value", text_of(i))
            .str("input.mime_type", mime_of(i));
    }
    if let Some(out) = &o.output {
        attrs
            .str("output.value", text_of(out))
            .str("output.mime_type", mime_of(out));
    }
    match o.kind.semantic() {
        SemanticKind::Llm => {
            llm(o, attrs);
            usage(o, attrs);
        }
        SemanticKind::Retriever => {
            if let Some(docs) = o.output.as_ref().and_then(content::documents) {
                for (i, d) in docs.into_iter().enumerate() {
                    let p = format!("retrieval.documents.{i}.document");
                    attrs.str(format!("{p}.content"), d.content);
                    attrs.opt_str(format!("{p}.id"), d.id);
                    if let Some(s) = d.score {
                        attrs.double(format!("{p}.score"), s);
                    }
                    if let Some(m) = d.metadata {
                        attrs.json(format!("{p}.metadata"), &Value::Object(m));
                    }
                }
            }
        }
        SemanticKind::Tool => {
            attrs.str("tool.name", tool_name(o));
            if let Some(Value::Object(p)) = o.metadata.get("tool_parameters")
                && !p.is_empty()
            {
                attrs.json("tool.parameters", &Value::Object(p.clone()));
            } else if let Some(i) = &o.input {
                attrs.str("tool.parameters", text_of(i));
            }
            if let Some(d) = o
                .metadata
                .get("tool_config")
                .and_then(|c| c.get("description"))
                .and_then(Value::as_str)
            {
                attrs.str("tool.description", d);
            }
        }
        SemanticKind::Agent => {
            attrs.str("agent.name", &o.name);
            usage(o, attrs);
        }
        _ => {}
    }
    if let Some(node) = o.metadata.get("node_id").and_then(Value::as_str) {
        attrs
            .str("graph.node.id", node)
            .str("graph.node.name", &o.name);
    }
    attrs.opt_str("session.id", who.session_id);
    attrs.opt_str("user.id", who.user_id);
    let mut metadata = o.metadata.clone();
    if is_root(trace, o) {
        for (k, v) in &trace.metadata {
            metadata.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(s) = &o.status_message {
        metadata
            .entry("status_message".to_owned())
            .or_insert_with(|| Value::String(s.clone()));
    }
    if !metadata.is_empty() {
        attrs.json("metadata", &Value::Object(metadata));
    }
    let tags = merged_tags(trace, o);
    if !tags.is_empty() {
        attrs.str_array("tag.tags", tags);
    }
}

fn llm(o: &Observation, attrs: &mut Attributes) {
    attrs.opt_str("llm.model_name", o.model.clone());
    if let Some(p) = &o.model_provider {
        let p = llm_provider(p);
        attrs.str("llm.system", p.clone()).str("llm.provider", p);
    }
    if !o.model_parameters.is_empty() {
        attrs.json(
            "llm.invocation_parameters",
            &Value::Object(o.model_parameters.clone()),
        );
    }
    if let Some(messages) = o.input.as_ref().and_then(content::input_messages) {
        for (i, m) in messages.into_iter().enumerate() {
            attrs
                .str(format!("llm.input_messages.{i}.message.role"), m.role)
                .str(format!("llm.input_messages.{i}.message.content"), m.content);
        }
    }
    if let Some(text) = o.output.as_ref().and_then(content::output_text) {
        attrs
            .str("llm.output_messages.0.message.role", "assistant")
            .str("llm.output_messages.0.message.content", text);
    }
}

/// `llm.token_count.*` and `llm.cost.*`, for LLM calls and agents (an agent's model calls are
/// not traced separately, so its own usage is the only record of them). Workflows and other
/// chains carry no counts: Phoenix sums the counts of a span's descendants itself.
fn usage(o: &Observation, attrs: &mut Attributes) {
    let Some(u) = &o.usage else { return };
    if let Some(n) = u.input {
        attrs.uint("llm.token_count.prompt", n);
    }
    if let Some(n) = u.output {
        attrs.uint("llm.token_count.completion", n);
    }
    if let Some(n) = u.total() {
        attrs.uint("llm.token_count.total", n);
    }
    if let Some(n) = cache_read_tokens(u) {
        attrs.uint("llm.token_count.prompt_details.cache_read", n);
    }
    if let Some(n) = u.details.get("reasoning_tokens").and_then(Value::as_u64) {
        attrs.uint("llm.token_count.completion_details.reasoning", n);
    }
    if let Some(c) = u.input_cost {
        attrs.double("llm.cost.prompt", c);
    }
    if let Some(c) = u.output_cost {
        attrs.double("llm.cost.completion", c);
    }
    if let Some(c) = u.total_cost() {
        attrs.double("llm.cost.total", c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_providers() {
        assert_eq!(span_kind(ObservationKind::Generation), "LLM");
        assert_eq!(span_kind(ObservationKind::SuggestedQuestion), "LLM");
        assert_eq!(span_kind(ObservationKind::DatasetRetrieval), "RETRIEVER");
        assert_eq!(span_kind(ObservationKind::Tool), "TOOL");
        assert_eq!(span_kind(ObservationKind::Agent), "AGENT");
        assert_eq!(span_kind(ObservationKind::Moderation), "GUARDRAIL");
        assert_eq!(span_kind(ObservationKind::Workflow), "CHAIN");
        assert_eq!(span_kind(ObservationKind::NodeExecution), "CHAIN");
        assert_eq!(llm_provider("azure_openai"), "azure");
        assert_eq!(llm_provider("OpenAI"), "openai");
    }
}
