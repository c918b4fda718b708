//! The trace model: kinds, ids, Dify's info records, the app data they derive from, and the
//! observation tree providers consume.

mod ids;
mod info;
mod kind;
mod observation;
mod render;
mod run;
pub(crate) mod size;

pub use ids::{
    InvalidTraceId, MAX_TRACE_ID_LEN, TraceId, remote_parent_uuid, remote_span_id, span_id_bytes,
    stable_observation_id,
};
pub use info::{
    BaseTraceInfo, DatasetRetrievalTraceInfo, GenerateNameTraceInfo, MessageTraceInfo,
    ModerationTraceInfo, PromptGenerationTraceInfo, SuggestedQuestionTraceInfo, ToolTraceInfo,
    TraceInfo, WorkflowNodeTraceInfo, WorkflowTraceInfo,
};
pub use kind::{ObservationKind, SemanticKind, UnknownKind};
pub use observation::{Level, Observation, Trace, TraceAttributes, Usage, UsageUnit};
pub use render::RenderOptions;
pub use run::{MessageRun, ParentTraceContext, WorkflowRun};

/// Appends the tags of `more` that `tags` does not have yet, in order (linear: a trace with
/// many tags costs no more than its tags).
pub(crate) fn merge_tags(tags: &mut Vec<String>, more: Vec<String>) {
    if more.is_empty() {
        return;
    }
    let mut seen: std::collections::HashSet<String> = tags.iter().cloned().collect();
    for tag in more {
        if seen.insert(tag.clone()) {
            tags.push(tag);
        }
    }
}
