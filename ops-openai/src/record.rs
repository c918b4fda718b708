//! What a call puts on its generation: the request's model, parameters and input; the
//! response's model, output and usage; the API's error.

use async_openai::error::{ApiError, OpenAIError};
use ops_core::{Level, ObservationUpdate, update_current_observation};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::price::PriceTable;
use crate::usage::Tokens;

/// Which API a request is for: where its input is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Api {
    Chat,
    Completions,
    Embeddings,
    Responses,
}

impl Api {
    /// The request fields that make up the input.
    fn input_fields(self) -> &'static [&'static str] {
        match self {
            Api::Chat => &["messages", "tools", "functions"],
            Api::Completions => &["prompt", "suffix"],
            Api::Embeddings => &["input"],
            Api::Responses => &["instructions", "input", "tools"],
        }
    }
}

/// Request fields that are neither input nor a model parameter.
const NOT_PARAMETERS: &[&str] = &[
    "model",
    "stream",
    "metadata",
    "user",
    "store",
    "safety_identifier",
    "prompt_cache_key",
    "previous_response_id",
    "conversation",
];

/// Records the request on the current generation: the model, the model parameters (every
/// other field that is set: temperature, max_tokens, tool_choice, stream_options, ...) and
/// the input (the messages, with the tools when there are any). Serializes the request only
/// when a generation is being recorded.
pub(crate) fn request(api: Api, request: &impl Serialize) {
    update_current_observation(|o| {
        o.model_provider("openai");
        let Ok(Value::Object(fields)) = serde_json::to_value(request) else {
            return;
        };
        let mut input = Map::new();
        for (key, value) in fields {
            if value.is_null() {
                continue;
            }
            if key == "model" {
                if let Value::String(model) = value {
                    o.model(model);
                }
            } else if api.input_fields().contains(&key.as_str()) {
                input.insert(key, value);
            } else if !NOT_PARAMETERS.contains(&key.as_str()) {
                o.model_parameter(key, value);
            }
        }
        // One input field alone (the messages, the prompt) is the input itself.
        if input.len() == 1 {
            if let Some((_, only)) = input.into_iter().next() {
                o.input(only);
            }
        } else if !input.is_empty() {
            o.input(input);
        }
    });
}

/// Records a response: the model that answered, the output and the usage, priced as the
/// response's model (else the request's).
pub(crate) fn response(
    model: &str,
    request_model: Option<&str>,
    output: impl FnOnce() -> Value,
    tokens: Option<Tokens>,
    prices: Option<&PriceTable>,
) {
    update_current_observation(|o| {
        if !model.is_empty() {
            o.model(model);
        }
        o.output(output());
        if let Some(tokens) = tokens {
            let mut models = vec![model];
            models.extend(request_model);
            o.usage(tokens.to_usage(&models, prices));
        }
    });
}

/// Records a failure: level ERROR, the error's message, and the API's error object (`type`,
/// `code`, `param`) under `openai_error` when the API sent one.
pub(crate) fn error(err: &OpenAIError) {
    update_current_observation(|o| error_into(o, err));
}

/// `result`, with its error (if any) recorded on the current generation.
pub(crate) fn checked<T>(result: Result<T, OpenAIError>) -> Result<T, OpenAIError> {
    if let Err(e) = &result {
        error(e);
    }
    result
}

fn error_into(o: &mut ObservationUpdate, err: &OpenAIError) {
    o.level(Level::Error);
    match err {
        OpenAIError::ApiError(api) => {
            o.status_message(err.to_string())
                .metadata("openai_error", &api.api_error)
                .metadata("http_status", api.status_code.as_u16());
        }
        // An error event in a stream (`data: {"error": {...}}`) reaches async-openai's caller
        // as a chunk it could not read; the API's message is in it.
        OpenAIError::JSONDeserialize(_, content) => {
            match serde_json::from_str::<WrappedError>(content) {
                Ok(wrapped) => {
                    o.status_message(format!("stream failed: {}", wrapped.error))
                        .metadata("openai_error", &wrapped.error);
                }
                Err(_) => {
                    o.status_message(err.to_string());
                }
            }
        }
        _ => {
            o.status_message(err.to_string());
        }
    }
}

/// OpenAI's error body: `{"error": {"message": .., "type": .., "param": .., "code": ..}}`.
#[derive(serde::Deserialize)]
struct WrappedError {
    error: ApiError,
}

/// Records a failure the API reported in a successful answer: level ERROR and why.
pub(crate) fn failure(message: String) {
    update_current_observation(|o| {
        o.level(Level::Error).status_message(message);
    });
}

/// Records a warning: level WARNING and why.
pub(crate) fn warning(message: String) {
    update_current_observation(|o| {
        o.level(Level::Warning).status_message(message);
    });
}

/// A serialized value with its top-level nulls removed (`"refusal": null` and the like).
pub(crate) fn without_nulls(value: impl Serialize) -> Value {
    match serde_json::to_value(value) {
        Ok(Value::Object(mut map)) => {
            map.retain(|_, v| !v.is_null());
            Value::Object(map)
        }
        Ok(other) => other,
        Err(e) => Value::String(format!("<output not serializable: {e}>")),
    }
}

/// One output, or an array when there are several (`n > 1`).
pub(crate) fn one_or_many(mut items: Vec<Value>) -> Value {
    if items.len() == 1 {
        items.pop().unwrap_or(Value::Null)
    } else {
        Value::Array(items)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts how often it is serialized.
    struct Counted<'a>(&'a AtomicUsize);

    impl Serialize for Counted<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0.fetch_add(1, Ordering::Relaxed);
            serde_json::json!({"model": "m", "messages": [], "temperature": 1.0}).serialize(s)
        }
    }

    #[ops_core::traced(kind = "generation", skip_all)]
    fn generation(request: &Counted<'_>) {
        super::request(Api::Chat, request);
    }

    #[test]
    fn the_request_is_serialized_only_when_a_generation_is_recorded() {
        let count = AtomicUsize::new(0);
        // No queue installed: nothing is recorded, and the request is not serialized.
        generation(&Counted(&count));
        assert_eq!(count.load(Ordering::Relaxed), 0);

        let capture = ops_testkit::capture();
        capture.run(|| generation(&Counted(&count)));
        assert_eq!(count.load(Ordering::Relaxed), 1);
        let o = capture.find("generation").unwrap();
        assert_eq!(o.model.as_deref(), Some("m"));
        assert_eq!(o.input, Some(serde_json::json!([])));
        assert_eq!(o.model_parameters["temperature"], 1.0);
    }

    #[ops_core::traced(kind = "generation", skip_all)]
    fn failing(err: &OpenAIError) {
        super::error(err);
    }

    #[test]
    fn a_chunk_that_is_not_an_error_body_keeps_the_error_text() {
        let err = OpenAIError::JSONDeserialize(
            serde_json::from_str::<Value>("{").unwrap_err(),
            "not json".into(),
        );
        let capture = ops_testkit::capture();
        capture.run(|| failing(&err));
        let o = capture.find("failing").unwrap();
        assert_eq!(o.level, Level::Error);
        assert_eq!(o.status_message, Some(err.to_string()));
        assert!(o.metadata.get("openai_error").is_none());
    }
}
