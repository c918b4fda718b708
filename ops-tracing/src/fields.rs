//! What a span's fields mean: the kind they choose, and the model fields they set, following
//! the OpenTelemetry GenAI conventions as rig-core records them.

use std::fmt;

use ops_core::model::UsageUnit;
use ops_core::{Level, ObservationKind, ObservationUpdate, Usage};
use serde_json::Value;
use tracing::field::{Field, Visit};

/// Where a span's kind came from, weakest first: a stronger source wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum KindSource {
    OpenInference,
    GenAi,
    Explicit,
}

/// The kind of a `gen_ai.operation.name`: a model call for chat, completion, content
/// generation and embeddings (and rig-core's streaming and Interactions variants); a tool for
/// `execute_tool`; an agent for `invoke_agent` and `create_agent`.
pub(crate) fn gen_ai_kind(operation: &str) -> Option<ObservationKind> {
    Some(match operation {
        "chat"
        | "chat_streaming"
        | "text_completion"
        | "generate_content"
        | "interactions"
        | "interactions_streaming"
        | "embeddings" => ObservationKind::Generation,
        "execute_tool" => ObservationKind::Tool,
        "invoke_agent" | "create_agent" => ObservationKind::Agent,
        _ => return None,
    })
}

/// The kind of an OpenInference `openinference.span.kind` (upper case, as it spells them).
pub(crate) fn openinference_kind(kind: &str) -> Option<ObservationKind> {
    Some(match kind.to_ascii_uppercase().as_str() {
        "LLM" | "EMBEDDING" => ObservationKind::Generation,
        "TOOL" => ObservationKind::Tool,
        "AGENT" => ObservationKind::Agent,
        "RETRIEVER" | "RERANKER" => ObservationKind::DatasetRetrieval,
        "GUARDRAIL" => ObservationKind::Moderation,
        "CHAIN" | "EVALUATOR" => ObservationKind::Span,
        _ => return None,
    })
}

/// What the fields recorded so far add up to, kept between `record` calls and applied when
/// the span closes: usage comes in several fields, and the response's model beats the
/// request's whatever the order they come in.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The kind chosen so far, and where it came from.
    pub(crate) kind: Option<(KindSource, ObservationKind)>,
    /// Input, output and total tokens, kept apart from the rest of a `Usage` (which is large)
    /// until the span ends.
    tokens: [Option<u64>; 3],
    /// Finer token counts (cached, reasoning, ...).
    details: serde_json::Map<String, Value>,
    pub(crate) request_model: Option<String>,
    pub(crate) response_model: Option<String>,
    pub(crate) provider: Option<String>,
}

impl Scratch {
    /// Takes `kind` from `source` unless a stronger source chose one: whether it did.
    fn offer(&mut self, source: KindSource, kind: Option<ObservationKind>) -> bool {
        match kind {
            Some(kind) if self.kind.is_none_or(|(s, _)| s <= source) => {
                self.kind = Some((source, kind));
                true
            }
            _ => false,
        }
    }

    /// Writes what it gathered into `update`.
    pub(crate) fn apply(&mut self, update: &mut ObservationUpdate) {
        if let Some(model) = self.response_model.take().or(self.request_model.take()) {
            update.model(model);
        }
        if self.tokens.iter().any(Option::is_some) || !self.details.is_empty() {
            let [input, output, total] = std::mem::take(&mut self.tokens);
            update.usage(Usage {
                input,
                output,
                total,
                unit: UsageUnit::Tokens,
                details: std::mem::take(&mut self.details),
                ..Usage::default()
            });
        }
        if let Some(provider) = self.provider.take() {
            update.model_provider(provider);
        }
    }
}

/// Writes a span's fields into an update of its observation (made only when a field needs
/// one), and what must wait for the span's end into its [`Scratch`].
pub(crate) struct Recorder<'a> {
    /// Boxed: an update is large, and most fields never need one.
    pub(crate) update: Option<Box<ObservationUpdate>>,
    pub(crate) scratch: &'a mut Scratch,
    /// Whether the kind was chosen by these fields.
    pub(crate) kind_changed: bool,
}

impl<'a> Recorder<'a> {
    pub(crate) fn new(scratch: &'a mut Scratch) -> Self {
        Self {
            update: None,
            scratch,
            kind_changed: false,
        }
    }

    fn update(&mut self) -> &mut ObservationUpdate {
        self.update.get_or_insert_with(Default::default)
    }

    fn count(&mut self, name: &str, value: u64) -> bool {
        let Some(key) = name.strip_prefix("gen_ai.usage.") else {
            return false;
        };
        let tokens = &mut self.scratch.tokens;
        match key {
            "input_tokens" | "prompt_tokens" => tokens[0] = Some(value),
            "output_tokens" | "completion_tokens" => tokens[1] = Some(value),
            "total_tokens" => tokens[2] = Some(value),
            // rig-core's `cache_read.input_tokens`, `cache_creation.input_tokens`,
            // `reasoning_tokens`, `tool_use_prompt_tokens`: Langfuse's usage details.
            _ => {
                self.scratch
                    .details
                    .insert(detail_key(key), Value::from(value));
            }
        }
        true
    }

    /// A text field that only the scratch or the kind takes: whether it was one.
    fn text(&mut self, name: &str, value: &str) -> bool {
        match name {
            "ops.kind" => match value.parse::<ObservationKind>() {
                Ok(kind) => {
                    self.kind_changed |= self.scratch.offer(KindSource::Explicit, Some(kind))
                }
                Err(e) => {
                    self.update().metadata(
                        "ops.kind_error",
                        format!("{e}: the span's kind falls back to its GenAI fields, else span"),
                    );
                }
            },
            "gen_ai.operation.name" => {
                self.kind_changed |= self.scratch.offer(KindSource::GenAi, gen_ai_kind(value));
            }
            "openinference.span.kind" => {
                self.kind_changed |= self
                    .scratch
                    .offer(KindSource::OpenInference, openinference_kind(value));
            }
            "gen_ai.request.model" => self.scratch.request_model = Some(value.to_owned()),
            "gen_ai.response.model" => self.scratch.response_model = Some(value.to_owned()),
            "gen_ai.provider.name" | "gen_ai.system" => {
                self.scratch.provider = Some(value.to_owned());
            }
            _ => return false,
        }
        true
    }

    /// A field as a JSON value: `ops`'s model field it maps to, else metadata.
    fn value(&mut self, name: &str, value: Value) {
        let u = self.update();
        match name {
            "gen_ai.input.messages"
            | "gen_ai.prompt"
            | "gen_ai.tool.call.arguments"
            | "ops.input" => {
                u.input(json(value));
            }
            "gen_ai.output.messages"
            | "gen_ai.completion"
            | "gen_ai.tool.call.result"
            | "ops.output" => {
                u.output(json(value));
            }
            "gen_ai.system_instructions" => {
                u.metadata("system_instructions", json(value));
            }
            "gen_ai.tool.name" => {
                u.metadata("tool_name", value.clone());
                u.name(text(value));
            }
            "gen_ai.tool.call.id" => {
                u.metadata("tool_call_id", value);
            }
            "gen_ai.agent.name" => {
                u.metadata("agent_name", value);
            }
            "gen_ai.response.id" => {
                u.metadata("response_id", value);
            }
            "gen_ai.conversation.id" | "ops.session_id" => {
                u.session_id(text(value));
            }
            "ops.user_id" | "user.id" => {
                u.user_id(text(value));
            }
            "ops.name" | "otel.name" => {
                u.name(text(value));
            }
            "error.type" | "gen_ai.tool.error.type" => {
                let kind = text(value);
                u.level(Level::Error)
                    .status_message(format!("error: {kind}"))
                    .metadata("error_type", kind);
            }
            "otel.status_code" => {
                if text(value).eq_ignore_ascii_case("error") {
                    u.level(Level::Error);
                }
            }
            "otel.status_message" => {
                u.status_message(text(value));
            }
            _ => {
                if let Some(parameter) = name.strip_prefix("gen_ai.request.") {
                    u.model_parameter(parameter, value);
                } else if let Some(key) = name.strip_prefix("ops.") {
                    u.metadata(key, value);
                } else if !name.starts_with("otel.") {
                    u.metadata(name, value);
                }
            }
        }
    }
}

/// `cache_read.input_tokens` → `cache_read_input_tokens`.
fn detail_key(key: &str) -> String {
    key.replace('.', "_")
}

/// A field's text: a string as it is, anything else as JSON.
fn text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// A field that holds JSON as text (rig-core records messages with `serde_json::to_string`):
/// the JSON it holds, else the text.
fn json(value: Value) -> Value {
    match value {
        Value::String(s) if s.starts_with(['[', '{']) => {
            serde_json::from_str(&s).unwrap_or(Value::String(s))
        }
        other => other,
    }
}

impl Visit for Recorder<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if !self.count(field.name(), value) {
            self.value(field.name(), Value::from(value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match u64::try_from(value) {
            Ok(v) if self.count(field.name(), v) => {}
            _ => self.value(field.name(), Value::from(value)),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.value(field.name(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field.name(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.text(field.name(), value) {
            self.value(field.name(), Value::from(value));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.value(field.name(), Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        // `%value` and string-like `?value`: strip the quotes `Debug` adds to strings.
        match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(inner) => self.record_str(field, inner),
            None => self.record_str(field, &text),
        }
    }
}

/// The fields of an event, as a JSON object, and its message.
#[derive(Debug, Default)]
pub(crate) struct EventFields {
    pub(crate) message: Option<String>,
    pub(crate) fields: serde_json::Map<String, Value>,
    pub(crate) error_type: Option<String>,
}

impl Visit for EventFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().to_owned(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_owned()),
            "error.type" => self.error_type = Some(value.to_owned()),
            name => {
                self.fields.insert(name.to_owned(), value.into());
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}
