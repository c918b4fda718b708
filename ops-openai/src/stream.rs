//! Streamed chat completions: the chunks reduced to the final message, and what the chunks
//! tell the generation (model, usage, errors) as they pass.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_openai::error::OpenAIError;
use async_openai::types::chat::CreateChatCompletionStreamResponse;
use ops_core::context::StreamReducer;
use serde_json::{Map, Value, json};

use crate::price::PriceTable;
use crate::record;
use crate::usage::Tokens;

type Item = Result<CreateChatCompletionStreamResponse, OpenAIError>;

/// Reduces the chunks of a streamed chat completion to the message a non-streamed call
/// returns: per choice, the role, the content and refusal joined, and each tool call's id,
/// name and arguments joined from its deltas (by the call's index).
#[derive(Debug, Default)]
pub(crate) struct ChatReducer {
    choices: BTreeMap<u32, Message>,
}

#[derive(Debug, Default)]
struct Message {
    role: Option<Value>,
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: BTreeMap<u32, ToolCall>,
}

#[derive(Debug, Default)]
struct ToolCall {
    id: Option<String>,
    kind: Option<Value>,
    name: String,
    arguments: String,
}

impl StreamReducer<Item> for ChatReducer {
    type Output = Value;

    fn push(&mut self, item: &Item) {
        let Ok(chunk) = item else { return };
        for choice in &chunk.choices {
            let message = self.choices.entry(choice.index).or_default();
            let delta = &choice.delta;
            if let Some(role) = &delta.role {
                message.role = serde_json::to_value(role).ok();
            }
            if let Some(text) = &delta.content {
                message.content.get_or_insert_default().push_str(text);
            }
            if let Some(text) = &delta.refusal {
                message.refusal.get_or_insert_default().push_str(text);
            }
            for call in delta.tool_calls.iter().flatten() {
                let reduced = message.tool_calls.entry(call.index).or_default();
                if let Some(id) = &call.id {
                    reduced.id = Some(id.clone());
                }
                if let Some(kind) = &call.r#type {
                    reduced.kind = serde_json::to_value(kind).ok();
                }
                if let Some(function) = &call.function {
                    if let Some(name) = &function.name {
                        reduced.name.push_str(name);
                    }
                    if let Some(arguments) = &function.arguments {
                        reduced.arguments.push_str(arguments);
                    }
                }
            }
        }
    }

    fn finish(self) -> Value {
        record::one_or_many(
            self.choices
                .into_values()
                .map(Message::into_value)
                .collect(),
        )
    }
}

impl Message {
    fn into_value(self) -> Value {
        let mut out = Map::new();
        out.insert(
            "role".into(),
            self.role.unwrap_or_else(|| "assistant".into()),
        );
        if let Some(content) = self.content {
            out.insert("content".into(), content.into());
        }
        if let Some(refusal) = self.refusal {
            out.insert("refusal".into(), refusal.into());
        }
        if !self.tool_calls.is_empty() {
            let calls = self.tool_calls.into_values().map(|c| {
                json!({
                    "id": c.id,
                    "type": c.kind.unwrap_or_else(|| "function".into()),
                    "function": {"name": c.name, "arguments": c.arguments},
                })
            });
            out.insert("tool_calls".into(), Value::Array(calls.collect()));
        }
        Value::Object(out)
    }
}

/// Watches the chunks as they pass, in the generation's context: records the model that
/// answers, the usage (the last chunk carries it when the request set
/// `stream_options.include_usage`) and any error.
#[derive(Debug)]
pub(crate) struct ChunkObserver {
    request_model: String,
    prices: Option<Arc<PriceTable>>,
    model_seen: bool,
}

impl ChunkObserver {
    pub(crate) fn new(request_model: String, prices: Option<Arc<PriceTable>>) -> Self {
        Self {
            request_model,
            prices,
            model_seen: false,
        }
    }

    pub(crate) fn observe(&mut self, item: &Item) {
        match item {
            Ok(chunk) => {
                if let Some(usage) = &chunk.usage {
                    let tokens = Tokens::from(usage);
                    let models = [chunk.model.as_str(), self.request_model.as_str()];
                    let prices = self.prices.as_deref();
                    ops_core::update_current_observation(|o| {
                        o.usage(tokens.to_usage(&models, prices));
                    });
                }
                if !self.model_seen && !chunk.model.is_empty() {
                    self.model_seen = true;
                    ops_core::update_current_observation(|o| {
                        o.model(chunk.model.as_str());
                    });
                }
            }
            Err(e) => record::error(e),
        }
    }
}
