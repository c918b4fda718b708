//! # ops-core
//!
//! Tracing for LLM applications, ported from Dify's ops tracing. An app records what its
//! workflows, messages, LLM calls, tools and retrievals did; `ops` queues the traces off the
//! caller's path, batches them on a worker thread, and delivers them to the platforms the app
//! picked (Langfuse, LangSmith, Opik, Phoenix, ... or the embedded local provider).
//!
//! - [`model`]: the trace kinds, Dify's info records and the observation tree providers consume.
//! - [`TraceTask`]: the unit that is queued, built from an info record, a finished run, or a tree.
//! - [`TraceQueueManager`]: the queue that never stalls and never blocks its callers.
//! - [`provider`]: the [`Provider`] contract and the `inventory` registry.
//! - [`init`]: set up the global queue from the environment.
//! - [`mod@env`]: reading environment variables with errors that name them.
//! - [`propagation`]: W3C Trace Context and Baggage, so one trace spans services.
//!
//! ```
//! use ops_core::{TraceQueueManager, model::{WorkflowRun, WorkflowNodeTraceInfo}};
//! use std::time::Duration;
//!
//! let queue = TraceQueueManager::builder().build()?;
//! let run = WorkflowRun {
//!     id: "0190a4b2-0000-7000-8000-000000000001".into(),
//!     status: "succeeded".into(),
//!     created_at: chrono::Utc::now(),
//!     ..Default::default()
//! };
//! queue.trace_workflow_run(run, Vec::<WorkflowNodeTraceInfo>::new())?;
//! queue.flush(Duration::from_secs(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod context;
pub mod env;
mod global;
pub mod limits;
pub mod local;
pub mod model;
pub mod propagation;
pub mod provider;
mod queue;
mod router;
pub mod spool;
mod task;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use context::{
    ObservationContext, ObservationUpdate, TraceFutureExt, TraceUpdate, spawn, spawn_blocking,
    spawn_thread, update_current_observation, update_current_trace,
};
pub use global::{
    DefaultGuard, PROVIDER_ENV, TracingGuard, builder_from_env, current_queue, global, init,
    is_enabled, scope_default, set_default, set_global, shutdown, with_default,
};
pub use model::{Level, Observation, ObservationKind, Trace, TraceId, TraceInfo, Usage};
pub use provider::{ExportError, ExportOutcome, Provider, ProviderFactory};
pub use queue::{
    Accepted, AppTraceQueue, BATCH_SIZE_ENV, DropReason, EnqueueError, FlushReport, INTERVAL_ENV,
    ProviderStats, QueueConfig, QueueError, QueueStats, Receipt, Resolution, TraceQueueBuilder,
    TraceQueueManager,
};
pub use router::ProviderRouter;
pub use task::{FILES_URL_ENV, TaskError, TraceTask};

/// Re-exported so provider crates implement [`Provider`] with the same `async_trait`.
pub use async_trait::async_trait;
/// Re-exported so provider crates register with the same `inventory`.
pub use inventory;

#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use ops_macros::traced;
