//! Holding a task's payload to the limits before anything else touches it, and sizing it.
//!
//! An app may hand over values of any size and depth (a workflow's inputs, a node's outputs,
//! an observation tree it built). They are cut here, on the caller's thread, with explicit
//! stacks: after this, nothing that walks them (building the trace, masking, serializing for
//! the spool or a provider, dropping) can overflow the stack, and the queue's byte budget
//! counts what the task really holds.

use serde_json::{Map, Value};

use super::Payload;
use crate::limits::{self, FieldLimits};
use crate::model::{BaseTraceInfo, TraceInfo, WorkflowNodeTraceInfo, size};

/// A JSON value or map a payload carries.
enum Slot<'a> {
    Value(&'a mut Value),
    Map(&'a mut Map<String, Value>),
}

fn base<'a>(b: &'a mut BaseTraceInfo, out: &mut Vec<Slot<'a>>) {
    out.extend(
        [&mut b.message_data, &mut b.inputs, &mut b.outputs]
            .into_iter()
            .flatten()
            .map(Slot::Value),
    );
    out.push(Slot::Map(&mut b.metadata));
}

fn node<'a>(n: &'a mut WorkflowNodeTraceInfo, out: &mut Vec<Slot<'a>>) {
    base(&mut n.base, out);
    out.extend(
        [&mut n.node_inputs, &mut n.node_outputs, &mut n.process_data]
            .into_iter()
            .flatten()
            .map(Slot::Map),
    );
}

fn info<'a>(i: &'a mut TraceInfo, out: &mut Vec<Slot<'a>>) {
    match i {
        TraceInfo::Workflow(w) => {
            base(&mut w.base, out);
            out.extend(w.workflow_data.as_mut().map(Slot::Value));
            out.push(Slot::Map(&mut w.workflow_run_inputs));
            out.push(Slot::Map(&mut w.workflow_run_outputs));
        }
        TraceInfo::Message(m) => {
            base(&mut m.base, out);
            out.extend(
                [&mut m.file_list, &mut m.message_file_data]
                    .into_iter()
                    .flatten()
                    .map(Slot::Value),
            );
        }
        TraceInfo::Moderation(m) => base(&mut m.base, out),
        TraceInfo::SuggestedQuestion(s) => base(&mut s.base, out),
        TraceInfo::DatasetRetrieval(d) => {
            base(&mut d.base, out);
            out.push(Slot::Value(&mut d.documents));
        }
        TraceInfo::Tool(t) => {
            base(&mut t.base, out);
            out.extend(
                [&mut t.message_file_data, &mut t.file_url]
                    .into_iter()
                    .flatten()
                    .map(Slot::Value),
            );
            out.push(Slot::Map(&mut t.tool_inputs));
            out.push(Slot::Map(&mut t.tool_config));
            out.push(Slot::Map(&mut t.tool_parameters));
        }
        TraceInfo::GenerateName(g) => base(&mut g.base, out),
        TraceInfo::PromptGeneration(p) => base(&mut p.base, out),
        TraceInfo::NodeExecution(n) | TraceInfo::DraftNodeExecution(n) => node(n, out),
    }
}

/// Cuts every value of `payload` to the limits; returns the cuts made.
pub(super) fn cut(payload: &mut Payload, limits: &FieldLimits) -> usize {
    let mut slots = Vec::new();
    match payload {
        Payload::Trace { trace } => return limits::truncate_values(trace, limits),
        // Captured within the limits already (see `context::capture`).
        Payload::Pending { .. } => return 0,
        Payload::Info { info: i } => info(i, &mut slots),
        Payload::WorkflowRun { run, nodes } => {
            slots.push(Slot::Map(&mut run.inputs));
            slots.push(Slot::Map(&mut run.outputs));
            for n in nodes {
                node(n, &mut slots);
            }
        }
        Payload::MessageRun { message } => {
            slots.push(Slot::Map(&mut message.inputs));
            slots.push(Slot::Value(&mut message.message));
            slots.push(Slot::Map(&mut message.message_metadata));
        }
    }
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Value(v) => limits::truncate_value(v, limits),
            Slot::Map(m) => limits::truncate_map(m, limits),
        })
        .sum()
}

/// The heap `payload` holds, estimated. Its values must have been cut to the depth limit
/// first (see [`cut`]): records are sized by walking them as `serde` does.
pub(super) fn size(payload: &Payload) -> usize {
    match payload {
        Payload::Trace { trace } => trace.approx_size(),
        Payload::Pending { trace } => trace.approx_size(),
        other => {
            let walked = crate::context::size_of_payload(other);
            // The structs hold their fields inline; their JSON form holds them as values.
            size::alloc(std::mem::size_of::<Payload>()) + walked
        }
    }
}
