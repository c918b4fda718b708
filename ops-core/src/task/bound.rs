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
enum Slot<V, M> {
    Value(V),
    Map(M),
}

/// Lists the JSON values and maps of a payload's records, by reference (`&`) or by mutable
/// reference (`&mut`): one walk over the records' fields, written once for both.
macro_rules! slots {
    ($name:ident, $($m:tt)*) => {
        fn $name(payload: & $($m)* Payload) -> Vec<Slot<& $($m)* Value, & $($m)* Map<String, Value>>> {
            fn base<'a>(b: &'a $($m)* BaseTraceInfo, out: &mut Vec<Slot<&'a $($m)* Value, &'a $($m)* Map<String, Value>>>) {
                out.extend(
                    [& $($m)* b.message_data, & $($m)* b.inputs, & $($m)* b.outputs]
                        .into_iter()
                        .flatten()
                        .map(Slot::Value),
                );
                out.push(Slot::Map(& $($m)* b.metadata));
            }
            fn node<'a>(n: &'a $($m)* WorkflowNodeTraceInfo, out: &mut Vec<Slot<&'a $($m)* Value, &'a $($m)* Map<String, Value>>>) {
                base(& $($m)* n.base, out);
                out.extend(
                    [& $($m)* n.node_inputs, & $($m)* n.node_outputs, & $($m)* n.process_data]
                        .into_iter()
                        .flatten()
                        .map(Slot::Map),
                );
            }
            let mut out = Vec::new();
            match payload {
                Payload::Trace { .. } | Payload::Pending { .. } => {}
                Payload::Info { info } => match & $($m)* **info {
                    TraceInfo::Workflow(w) => {
                        base(& $($m)* w.base, &mut out);
                        if let Some(v) = & $($m)* w.workflow_data {
                            out.push(Slot::Value(v));
                        }
                        out.push(Slot::Map(& $($m)* w.workflow_run_inputs));
                        out.push(Slot::Map(& $($m)* w.workflow_run_outputs));
                    }
                    TraceInfo::Message(m) => {
                        base(& $($m)* m.base, &mut out);
                        out.extend(
                            [& $($m)* m.file_list, & $($m)* m.message_file_data]
                                .into_iter()
                                .flatten()
                                .map(Slot::Value),
                        );
                    }
                    TraceInfo::Moderation(m) => base(& $($m)* m.base, &mut out),
                    TraceInfo::SuggestedQuestion(q) => base(& $($m)* q.base, &mut out),
                    TraceInfo::DatasetRetrieval(d) => {
                        base(& $($m)* d.base, &mut out);
                        out.push(Slot::Value(& $($m)* d.documents));
                    }
                    TraceInfo::Tool(t) => {
                        base(& $($m)* t.base, &mut out);
                        out.extend(
                            [& $($m)* t.message_file_data, & $($m)* t.file_url]
                                .into_iter()
                                .flatten()
                                .map(Slot::Value),
                        );
                        out.push(Slot::Map(& $($m)* t.tool_inputs));
                        out.push(Slot::Map(& $($m)* t.tool_config));
                        out.push(Slot::Map(& $($m)* t.tool_parameters));
                    }
                    TraceInfo::GenerateName(g) => base(& $($m)* g.base, &mut out),
                    TraceInfo::PromptGeneration(p) => base(& $($m)* p.base, &mut out),
                    TraceInfo::NodeExecution(n) | TraceInfo::DraftNodeExecution(n) => node(n, &mut out),
                },
                Payload::WorkflowRun { run, nodes } => {
                    out.push(Slot::Map(& $($m)* run.inputs));
                    out.push(Slot::Map(& $($m)* run.outputs));
                    for n in nodes {
                        node(n, &mut out);
                    }
                }
                Payload::MessageRun { message } => {
                    out.push(Slot::Map(& $($m)* message.inputs));
                    out.push(Slot::Value(& $($m)* message.message));
                    out.push(Slot::Map(& $($m)* message.message_metadata));
                }
            }
            out
        }
    };
}

slots!(slots_mut, mut);
slots!(slots_ref,);

/// Cuts every value of `payload` to the limits; returns the cuts made.
pub(super) fn cut(payload: &mut Payload, limits: &FieldLimits) -> usize {
    match payload {
        Payload::Trace { trace } => {
            let trace = std::sync::Arc::make_mut(trace);
            // A vector grown by pushes holds up to twice what it needs, for as long as the
            // trace is queued.
            trace.observations.shrink_to_fit();
            limits::truncate_values(trace, limits)
        }
        // Captured within the limits already (see `context::capture`).
        Payload::Pending { .. } => 0,
        other => slots_mut(other)
            .into_iter()
            .map(|slot| match slot {
                Slot::Value(v) => limits::truncate_value(v, limits),
                Slot::Map(m) => limits::truncate_map(m, limits),
            })
            .sum(),
    }
}

/// The heap `payload` holds, estimated. Its values must have been cut to the depth limit
/// first (see [`cut`]): records are sized by walking them as `serde` does.
pub(super) fn size(payload: &Payload) -> usize {
    use crate::context::heap_of_fields as fields;
    use std::mem::size_of;
    // The walk counts strings and arrays; the objects' own structure is counted from the
    // values themselves (a record's fields look like an object to `serde` too).
    let objects: usize = slots_ref(payload)
        .into_iter()
        .map(|slot| match slot {
            Slot::Value(v) => size::objects(v),
            Slot::Map(m) => size::map_objects(m),
        })
        .sum();
    objects
        + match payload {
            Payload::Trace { trace } => trace.approx_size(),
            Payload::Pending { trace } => trace.approx_size(),
            Payload::Info { info } => size::alloc(size_of::<TraceInfo>()) + fields(&**info),
            Payload::WorkflowRun { run, nodes } => {
                size::alloc(size_of::<crate::model::WorkflowRun>())
                    + fields(&**run)
                    + size::alloc(nodes.capacity() * size_of::<WorkflowNodeTraceInfo>())
                    + nodes
                        .iter()
                        .map(fields::<WorkflowNodeTraceInfo>)
                        .sum::<usize>()
            }
            Payload::MessageRun { message } => {
                size::alloc(size_of::<crate::model::MessageRun>()) + fields(&**message)
            }
        }
}
