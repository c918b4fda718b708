//! Streamed calls: the chunks reduced to the final output, and what the chunks tell the
//! generation (model, usage, errors, time to first token) as they pass.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use async_openai::error::OpenAIError;
use async_openai::types::chat::{CompletionUsage, CreateChatCompletionStreamResponse};
use async_openai::types::completions::CreateCompletionResponse;
use async_openai::types::responses::{Response, ResponseStreamEvent};
use futures_util::{Stream, StreamExt as _, stream};
use ops_core::context::StreamReducer;
use serde_json::{Map, Value, json};

use crate::price::PriceTable;
use crate::record;
use crate::responses::{response_output, response_status};
use crate::usage::Tokens;

/// What async-openai's `create_stream` returns.
pub(crate) type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, OpenAIError>> + Send>>;

/// Starts a traced stream the way async-openai's `create_stream` does: a request that fails
/// before any chunk is an `Err` (and its generation has ended, with the error), anything else
/// is the stream, whose first item was read to know.
pub(crate) async fn start<T: Send + 'static>(
    stream: impl Stream<Item = Result<T, OpenAIError>> + Send + 'static,
) -> Result<Boxed<T>, OpenAIError> {
    let mut stream = Box::pin(stream);
    match stream.next().await {
        Some(Err(e)) => match stream.next().await {
            // The request itself failed: the stream has ended, and so has its generation.
            None => Err(e),
            // An error among the chunks: the caller sees it, as the rest.
            Some(next) => Ok(Box::pin(stream::iter([Err(e), next]).chain(stream))),
        },
        first => Ok(Box::pin(stream::iter(first).chain(stream))),
    }
}

/// A chunk of a streamed chat completion or completion: the model and, in the last chunk when
/// the request set `stream_options.include_usage`, the usage.
pub(crate) trait Chunk {
    fn model(&self) -> &str;
    fn usage(&self) -> Option<&CompletionUsage>;
}

impl Chunk for CreateChatCompletionStreamResponse {
    fn model(&self) -> &str {
        &self.model
    }
    fn usage(&self) -> Option<&CompletionUsage> {
        self.usage.as_ref()
    }
}

impl Chunk for CreateCompletionResponse {
    fn model(&self) -> &str {
        &self.model
    }
    fn usage(&self) -> Option<&CompletionUsage> {
        self.usage.as_ref()
    }
}

/// Watches the chunks as they pass, in the generation's context: records the model that
/// answers, the usage and any error.
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

    pub(crate) fn observe<T: Chunk>(&mut self, item: &Result<T, OpenAIError>) {
        match item {
            Ok(chunk) => {
                if let Some(usage) = chunk.usage() {
                    let tokens = Tokens::from(usage);
                    let models = [chunk.model(), self.request_model.as_str()];
                    let prices = self.prices.as_deref();
                    ops_core::update_current_observation(|o| {
                        o.usage(tokens.to_usage(&models, prices));
                    });
                }
                if !self.model_seen && !chunk.model().is_empty() {
                    self.model_seen = true;
                    ops_core::update_current_observation(|o| {
                        o.model(chunk.model());
                    });
                }
            }
            Err(e) => record::error(e),
        }
    }
}

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

impl StreamReducer<Result<CreateChatCompletionStreamResponse, OpenAIError>> for ChatReducer {
    type Output = Value;

    fn push(&mut self, item: &Result<CreateChatCompletionStreamResponse, OpenAIError>) {
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

/// Reduces the chunks of a streamed completion to the text of each choice.
#[derive(Debug, Default)]
pub(crate) struct TextReducer {
    choices: BTreeMap<u32, String>,
}

impl StreamReducer<Result<CreateCompletionResponse, OpenAIError>> for TextReducer {
    type Output = Value;

    fn push(&mut self, item: &Result<CreateCompletionResponse, OpenAIError>) {
        let Ok(chunk) = item else { return };
        for choice in &chunk.choices {
            self.choices
                .entry(choice.index)
                .or_default()
                .push_str(&choice.text);
        }
    }

    fn finish(self) -> Value {
        record::one_or_many(self.choices.into_values().map(Value::String).collect())
    }
}

/// Reduces the events of a streamed response: the output items of its final event
/// (`response.completed`, `.incomplete` or `.failed`), else, for a stream that stopped
/// before, the text that arrived (`response.output_text.delta`s joined).
#[derive(Debug, Default)]
pub(crate) struct ResponseReducer {
    text: String,
    output: Option<Value>,
}

impl StreamReducer<Result<ResponseStreamEvent, OpenAIError>> for ResponseReducer {
    type Output = Value;

    fn push(&mut self, item: &Result<ResponseStreamEvent, OpenAIError>) {
        match item {
            Ok(ResponseStreamEvent::ResponseOutputTextDelta(e)) => self.text.push_str(&e.delta),
            Ok(event) => {
                if let Some(response) = final_response(event) {
                    self.output = Some(response_output(response));
                }
            }
            Err(_) => {}
        }
    }

    fn finish(self) -> Value {
        self.output.unwrap_or(Value::String(self.text))
    }
}

/// The response a final event carries.
fn final_response(event: &ResponseStreamEvent) -> Option<&Response> {
    match event {
        ResponseStreamEvent::ResponseCompleted(e) => Some(&e.response),
        ResponseStreamEvent::ResponseIncomplete(e) => Some(&e.response),
        ResponseStreamEvent::ResponseFailed(e) => Some(&e.response),
        _ => None,
    }
}

/// Watches the events of a streamed response: the first text delta is the first token; the
/// final event carries the model and the usage; a failed or incomplete response, or an
/// `error` event, sets the level.
#[derive(Debug)]
pub(crate) struct ResponseObserver {
    request_model: Option<String>,
    prices: Option<Arc<PriceTable>>,
    first_token_seen: bool,
}

impl ResponseObserver {
    pub(crate) fn new(request_model: Option<String>, prices: Option<Arc<PriceTable>>) -> Self {
        Self {
            request_model,
            prices,
            first_token_seen: false,
        }
    }

    pub(crate) fn observe(&mut self, item: &Result<ResponseStreamEvent, OpenAIError>) {
        let event = match item {
            Ok(event) => event,
            Err(e) => return record::error(e),
        };
        match event {
            ResponseStreamEvent::ResponseOutputTextDelta(_)
            | ResponseStreamEvent::ResponseRefusalDelta(_)
            | ResponseStreamEvent::ResponseFunctionCallArgumentsDelta(_)
                if !self.first_token_seen =>
            {
                self.first_token_seen = true;
                ops_core::update_current_observation(|o| {
                    o.completion_started();
                });
            }
            ResponseStreamEvent::ResponseError(e) => {
                let message = format!("stream failed: {}", e.message);
                ops_core::update_current_observation(|o| {
                    o.level(ops_core::Level::Error)
                        .status_message(message)
                        .metadata("openai_error", json!({"code": e.code, "param": e.param}));
                });
            }
            _ => {}
        }
        let Some(response) = final_response(event) else {
            return;
        };
        let tokens = response.usage.as_ref().map(Tokens::from);
        record::response(
            &response.model,
            self.request_model.as_deref(),
            || response_output(response),
            tokens,
            self.prices.as_deref(),
        );
        response_status(response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(choices: Value) -> Result<CreateChatCompletionStreamResponse, OpenAIError> {
        Ok(serde_json::from_value(json!({
            "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": choices
        }))
        .unwrap())
    }

    #[test]
    fn each_choice_is_reduced_apart_when_n_is_more_than_one() {
        let mut reducer = ChatReducer::default();
        for item in [
            chunk(
                json!([{"index": 0, "delta": {"role": "assistant", "content": "A"}},
                         {"index": 1, "delta": {"role": "assistant", "content": "B"}}]),
            ),
            chunk(json!([{"index": 1, "delta": {"content": "b"}},
                         {"index": 0, "delta": {"content": "a"}}])),
            Err(OpenAIError::InvalidArgument("skipped".into())),
            chunk(json!([{"index": 1, "delta": {"refusal": "no"}}])),
        ] {
            reducer.push(&item);
        }
        assert_eq!(
            reducer.finish(),
            json!([{"role": "assistant", "content": "Aa"},
                   {"role": "assistant", "content": "Bb", "refusal": "no"}])
        );
    }

    #[test]
    fn a_stream_with_no_choice_reduces_to_an_empty_array() {
        assert_eq!(ChatReducer::default().finish(), json!([]));
    }
}
