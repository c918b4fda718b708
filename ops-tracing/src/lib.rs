#![doc = include_str!("../README.md")]
//!
//! # Mapping
//!
//! - **Kind**, in this order: an explicit `ops.kind` field (any [`ops_core::ObservationKind`] name);
//!   `gen_ai.operation.name` (`chat`, `text_completion`, `generate_content`, `embeddings` and
//!   rig-core's `chat_streaming`, `interactions` → generation; `execute_tool` → tool;
//!   `invoke_agent`, `create_agent` → agent); `openinference.span.kind` (`LLM`, `TOOL`,
//!   `AGENT`, `RETRIEVER`, ...); otherwise span. An `ops.kind` that names no kind is reported
//!   in the `ops.kind_error` metadata.
//! - **GenAI fields** (as rig-core records them): `gen_ai.request.model` and
//!   `gen_ai.response.model` (which wins) → model; `gen_ai.provider.name` (or the older
//!   `gen_ai.system`) → model provider; `gen_ai.usage.input_tokens`, `output_tokens` and
//!   `total_tokens` → usage, and the other `gen_ai.usage.*` counts (`cache_read.input_tokens`,
//!   `cache_creation.input_tokens`, `reasoning_tokens`, `tool_use_prompt_tokens`) → usage
//!   details (`cache_read_input_tokens`, ...); `gen_ai.input.messages`, `gen_ai.prompt` and
//!   `gen_ai.tool.call.arguments` → input; `gen_ai.output.messages`, `gen_ai.completion` and
//!   `gen_ai.tool.call.result` → output (JSON text is parsed); `gen_ai.tool.name` → the
//!   observation's name and `tool_name` metadata; other `gen_ai.request.*` → model parameters;
//!   `gen_ai.conversation.id` → session; `error.type` or `gen_ai.tool.error.type` → level
//!   ERROR. `ops.user_id`, `ops.session_id`, `ops.name`, `ops.input`, `ops.output` set those
//!   fields; any other field goes to the metadata.
//! - **Events** inside a span are kept in its `events` metadata (at most [`MAX_EVENTS`], the
//!   rest counted in `events_dropped`); a WARN or ERROR event sets the level, and its message
//!   the status message. An event goes to the nearest enclosing span that is an observation.
//! - **Tree:** a span's parent is the observation current where it is created (a
//!   `#[traced]` call, or the innermost selected span entered on the thread), or for a span
//!   with an explicit `parent:`, that span's nearest observation (else the current one, as
//!   for rig-core's `parent: Span::current()` under a `#[traced]` call); `parent: None` starts
//!   a new trace. While a selected span is entered, it is the current observation:
//!   `#[traced]` calls and [`ops_core::update_current_observation`] reach it. An observation
//!   ends when its span closes (the last handle to it is dropped); the trace is queued when
//!   its root's span closes, which the registry delays until its children have closed.
//! - **Cost:** when no queue is installed and no trace is alive, the layer returns after one
//!   relaxed atomic load (on exit, after a look at an empty thread-local list); see
//!   `benches/layer.rs` for the cost of a recorded span beside
//!   tracing-opentelemetry's.

mod fields;
mod layer;
mod select;

pub use layer::{MAX_EVENTS, OpsLayer};

/// The layer, taking the spans that carry GenAI (`gen_ai.*`), OpenInference
/// (`openinference.*`) or `ops.*` fields. Add targets or names with
/// [`OpsLayer::with_target`] and [`OpsLayer::with_span_name`].
pub fn layer() -> OpsLayer {
    OpsLayer::default()
}
