//! [`TraceTask`]: the unit the queue carries, and the preprocessing that turns it into the
//! observation tree providers consume.
//!
//! Preprocessing happens on the queue's worker, never on the caller's thread, and needs no
//! database: the app hands over the data it already has (a [`WorkflowRun`] with its node
//! executions, a [`MessageRun`], or an info record).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::limits::{self, FieldLimits};

use crate::model::{
    InvalidTraceId, MessageRun, ObservationKind, Trace, TraceId, TraceInfo, WorkflowNodeTraceInfo,
    WorkflowRun,
};

use crate::context::mask::MaskOverride;

/// The base URL for relative file URLs, from `FILES_URL` (Dify's default otherwise).
pub const FILES_URL_ENV: &str = "FILES_URL";

/// One unit of tracing work: a trace to build and deliver.
///
/// Build it from an info record ([`TraceTask::from_info`]), from a finished run
/// ([`TraceTask::workflow_run`], [`TraceTask::message_run`]), or from an observation tree
/// ([`TraceTask::from_trace`]). The trace id is fixed when the task is built, so a retried or
/// replayed task always lands on the same trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceTask {
    app_id: Option<String>,
    /// The mask of the queue (or app) it was handed to, when it has one; not spooled (a
    /// spooled task is masked before it is written).
    #[serde(skip)]
    mask: MaskOverride,
    trace_id: TraceId,
    payload: Payload,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Payload {
    Info {
        info: Box<TraceInfo>,
    },
    WorkflowRun {
        run: Box<WorkflowRun>,
        nodes: Vec<WorkflowNodeTraceInfo>,
    },
    MessageRun {
        message: Box<MessageRun>,
    },
    Trace {
        trace: Arc<Trace>,
    },
    /// A trace recorded by `#[traced]`: its captured inputs and outputs become JSON (and are
    /// masked) in `preprocess`, on the worker.
    Pending {
        trace: crate::context::PendingTrace,
    },
}

/// Why a task could not become a trace.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// An id used as the trace id is not valid.
    #[error("{field}: {source}")]
    InvalidTraceId {
        /// Which field the id came from.
        field: &'static str,
        /// What is wrong with it.
        source: InvalidTraceId,
    },
    /// A required field is missing.
    #[error("{kind} trace: `{field}` is required")]
    Missing {
        /// The kind of trace.
        kind: ObservationKind,
        /// The missing field.
        field: &'static str,
    },
}

fn resolve_trace_id(candidates: &[(&'static str, Option<&str>)]) -> Result<TraceId, TaskError> {
    for (field, value) in candidates {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            return TraceId::new(value)
                .map_err(|source| TaskError::InvalidTraceId { field, source });
        }
    }
    Ok(TraceId::generate())
}

impl TraceTask {
    /// A task for an info record. The trace id is the external id (`trace_id`) when given,
    /// else the workflow run id, else the message id, else a generated UUIDv7.
    pub fn from_info(info: TraceInfo) -> Result<Self, TaskError> {
        let base = info.base();
        let parent_run = parent_context(&base.metadata).map(|p| p.0);
        let trace_id = resolve_trace_id(&[
            ("trace_id", base.trace_id.as_deref()),
            (
                "parent_trace_context.parent_workflow_run_id",
                parent_run.as_deref(),
            ),
            ("workflow_run_id", info.workflow_run_id()),
            ("message_id", base.message_id.as_deref()),
        ])?;
        Ok(Self {
            app_id: None,
            trace_id,
            mask: MaskOverride::default(),
            payload: Payload::Info {
                info: Box::new(info),
            },
        })
    }

    /// A task for a finished workflow run and its node executions (Dify's
    /// `trace_workflow_run`). A run with a message is a chatflow: its trace is a message trace.
    pub fn workflow_run(
        run: WorkflowRun,
        nodes: Vec<WorkflowNodeTraceInfo>,
    ) -> Result<Self, TaskError> {
        if run.id.is_empty() {
            return Err(TaskError::Missing {
                kind: ObservationKind::Workflow,
                field: "id",
            });
        }
        let parent_run = run
            .parent_trace_context
            .as_ref()
            .map(|p| p.parent_workflow_run_id.as_str());
        let trace_id = resolve_trace_id(&[
            ("external_trace_id", run.external_trace_id.as_deref()),
            ("parent_trace_context.parent_workflow_run_id", parent_run),
            ("id", Some(&run.id)),
        ])?;
        Ok(Self {
            app_id: Some(run.app_id.clone()).filter(|a| !a.is_empty()),
            trace_id,
            mask: MaskOverride::default(),
            payload: Payload::WorkflowRun {
                run: Box::new(run),
                nodes,
            },
        })
    }

    /// A task for a finished chat message (Dify's `trace_message_run`).
    pub fn message_run(message: MessageRun) -> Result<Self, TaskError> {
        if message.id.is_empty() {
            return Err(TaskError::Missing {
                kind: ObservationKind::Message,
                field: "id",
            });
        }
        let trace_id = resolve_trace_id(&[
            ("external_trace_id", message.external_trace_id.as_deref()),
            ("id", Some(&message.id)),
        ])?;
        Ok(Self {
            app_id: Some(message.app_id.clone()).filter(|a| !a.is_empty()),
            trace_id,
            mask: MaskOverride::default(),
            payload: Payload::MessageRun {
                message: Box::new(message),
            },
        })
    }

    /// A task for an observation tree that is already built.
    pub fn from_trace(trace: Trace) -> Self {
        Self {
            app_id: trace.attributes.app_id.clone(),
            trace_id: trace.id.clone(),
            mask: MaskOverride::default(),
            payload: Payload::Trace {
                trace: Arc::new(trace),
            },
        }
    }

    /// Whether the task holds a trace the app built ([`TraceTask::from_trace`]): finished in
    /// place, it stays the app's allocation.
    pub(crate) fn is_built_by_app(&self) -> bool {
        matches!(self.payload, Payload::Trace { .. })
    }

    /// Whether the task holds a trace recorded by `#[traced]` (or one already finished),
    /// which is masked as its captures become JSON rather than afterwards.
    pub(crate) fn is_recorded(&self) -> bool {
        matches!(self.payload, Payload::Pending { .. })
    }

    /// Whether the task holds a trace that is already built, masked and within the limits
    /// (one read back from the spool, say).
    fn is_finished(&self) -> bool {
        matches!(&self.payload, Payload::Pending { trace } if trace.is_ready())
    }

    /// The task as it can be written to the spool: finished now (built, masked, within
    /// `limits`), so no unmasked value reaches the disk and every record can be read back.
    /// Returns the cuts made, for the queue's counters.
    pub(crate) fn for_spool(self, limits: &FieldLimits) -> Result<(Self, usize), TaskError> {
        if self.is_finished() {
            return Ok((self, 0));
        }
        let app_id = self.app_id.clone();
        let trace_id = self.trace_id.clone();
        let (trace, cuts) = self.finish(limits)?;
        let task = Self {
            app_id,
            trace_id,
            mask: MaskOverride::default(),
            payload: Payload::Pending {
                trace: crate::context::PendingTrace::ready(trace),
            },
        };
        Ok((task, cuts))
    }

    /// A task for a trace recorded by `#[traced]`, serialized on the worker.
    pub(crate) fn pending(trace: crate::context::PendingTrace) -> Self {
        Self {
            app_id: trace.app_id(),
            trace_id: trace.trace_id(),
            mask: MaskOverride::default(),
            payload: Payload::Pending { trace },
        }
    }

    /// Sets the mask of the queue or app the task was handed to, unless one is set already
    /// (an app's mask beats its queue's).
    pub(crate) fn set_mask_if_unset(&mut self, mask: &MaskOverride) {
        if !self.mask.is_set() && mask.is_set() {
            self.mask = mask.clone();
        }
    }

    /// Sets the app the task belongs to (used for routing to the app's providers).
    #[must_use]
    pub fn with_app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// The app the task belongs to.
    pub fn app_id(&self) -> Option<&str> {
        self.app_id.as_deref()
    }

    /// The trace id the task will produce.
    pub fn trace_id(&self) -> &TraceId {
        &self.trace_id
    }

    /// The heap the task holds, estimated from its layout: what it counts against the
    /// queue's byte budget.
    pub fn approx_size(&self) -> usize {
        bound::size(&self.payload)
    }

    /// Cuts every value the task carries that is nested too deep or is too large (see
    /// [`crate::limits`]), so nothing downstream can overflow the stack or hold more than
    /// the limits; returns the task's size afterwards and the cuts made. Linear in the
    /// task's size, without recursion: cheap enough for the caller's thread.
    pub(crate) fn bound(&mut self, limits: &FieldLimits) -> (usize, usize) {
        let cuts = bound::cut(&mut self.payload, limits);
        (bound::size(&self.payload), cuts)
    }

    /// Builds the observation tree, deriving what Dify's `preprocess` derives: latency, token
    /// totals, the prompt/completion split summed over nodes, and the metadata keys.
    ///
    /// Inputs, outputs and metadata pass the mask in effect (see
    /// [`crate::context::set_mask`]) before any provider sees them, and every value and
    /// string is held to the default [`FieldLimits`].
    pub fn preprocess(self) -> Result<Trace, TaskError> {
        self.finish(&FieldLimits::default()).map(|(trace, _)| trace)
    }

    /// Builds the trace, masks it and applies `limits`: what every provider receives.
    /// Returns the cuts made.
    pub(crate) fn finish(self, limits: &FieldLimits) -> Result<(Trace, usize), TaskError> {
        let (trace, cuts) = self.finish_shared(limits)?;
        let trace = Arc::try_unwrap(trace).unwrap_or_else(|shared| (*shared).clone());
        Ok((trace, cuts))
    }

    /// [`TraceTask::finish`], to a shared trace. A trace handed over built
    /// ([`TraceTask::from_trace`]) is finished where it lies: the queue's worker then frees
    /// nothing the app's thread allocated, so the two never contend for the allocator's lock.
    pub(crate) fn finish_shared(
        self,
        limits: &FieldLimits,
    ) -> Result<(Arc<Trace>, usize), TaskError> {
        if self.is_finished()
            && let Payload::Pending { trace } = self.payload
        {
            return Ok((Arc::new(trace.into_trace()), 0));
        }
        let recorded = self.is_recorded();
        let mut shared = match self.payload {
            Payload::Trace { trace } => trace,
            Payload::WorkflowRun { run, nodes } => {
                let (info, nodes) = workflow_info(*run, nodes);
                Arc::new(workflow_trace(self.trace_id, &info, &nodes))
            }
            Payload::MessageRun { message } => {
                Arc::new(message_trace(self.trace_id, &message_info(*message)))
            }
            Payload::Info { info } => Arc::new(info_trace(self.trace_id, *info)),
            Payload::Pending { trace } => Arc::new(trace.into_trace()),
        };
        let cuts = finish_built(
            Arc::make_mut(&mut shared),
            self.app_id,
            recorded,
            &self.mask,
            limits,
        );
        Ok((shared, cuts))
    }

    /// [`TraceTask::finish_shared`] without freeing anything the task holds, so the queue's
    /// worker can hand the task back to be freed by the app's threads that allocated it: a
    /// recorded task is built from references, a Dify-style run from a copy (the worker
    /// allocates the copy and frees what is left of it). `None` for a trace the app built,
    /// which is finished where it lies, and for a recorded task that is shared.
    pub(crate) fn finish_kept(&mut self, limits: &FieldLimits) -> Option<(Arc<Trace>, usize)> {
        let recorded = self.is_recorded();
        let mut built = match &mut self.payload {
            Payload::Pending { trace } => trace.build_kept()?,
            Payload::WorkflowRun { run, nodes } => {
                let (info, nodes) = workflow_info((**run).clone(), nodes.clone());
                workflow_trace(self.trace_id.clone(), &info, &nodes)
            }
            Payload::MessageRun { message } => {
                message_trace(self.trace_id.clone(), &message_info((**message).clone()))
            }
            Payload::Info { info } => info_trace(self.trace_id.clone(), (**info).clone()),
            Payload::Trace { .. } => return None,
        };
        let cuts = finish_built(
            &mut built,
            self.app_id.clone(),
            recorded,
            &self.mask,
            limits,
        );
        Some((Arc::new(built), cuts))
    }
}

/// What every built trace goes through before a provider sees it: the task's app, the mask
/// (recorded traces were masked as they were built) and `limits`. Returns the cuts made.
fn finish_built(
    trace: &mut Trace,
    app_id: Option<String>,
    recorded: bool,
    mask: &MaskOverride,
    limits: &FieldLimits,
) -> usize {
    // A run's blank app id (Dify's default) is no app: the task's (from `for_app`) applies.
    if trace
        .attributes
        .app_id
        .as_deref()
        .is_none_or(|a| a.trim().is_empty())
        && app_id.is_some()
    {
        trace.attributes.app_id = app_id;
    }
    let cuts = limits::truncate_values(trace, limits);
    if !recorded {
        crate::context::mask::mask_trace(trace, mask);
    }
    cuts + limits::cap_strings(trace, limits) + limits::sanitize_trace(trace)
}

mod bound;
mod common;
mod info;
mod message;
mod workflow;

use common::parent_context;
use info::info_trace;
use message::{message_info, message_trace};
use workflow::{workflow_info, workflow_trace};

#[cfg(test)]
mod tests;
