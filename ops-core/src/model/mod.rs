//! The trace model: kinds, ids, Dify's info records, the app data they derive from, and the
//! observation tree providers consume.

mod ids;
mod info;
mod kind;
mod observation;
mod render;
mod run;

pub use ids::{InvalidTraceId, MAX_TRACE_ID_LEN, TraceId, stable_observation_id};
pub use info::{
    BaseTraceInfo, DatasetRetrievalTraceInfo, GenerateNameTraceInfo, MessageTraceInfo,
    ModerationTraceInfo, PromptGenerationTraceInfo, SuggestedQuestionTraceInfo, ToolTraceInfo,
    TraceInfo, WorkflowNodeTraceInfo, WorkflowTraceInfo,
};
pub use kind::{ObservationKind, SemanticKind, UnknownKind};
pub use observation::{Level, Observation, Trace, TraceAttributes, Usage, UsageUnit};
pub use render::RenderOptions;
pub use run::{MessageRun, ParentTraceContext, WorkflowRun};
