//! The runtime behind [`#[traced]`](crate::traced): the current observation, the trace a root
//! starts, updates from inside a traced function, and the helpers that carry the context into
//! tasks and threads.
//!
//! # How a traced call is recorded
//!
//! - **Off:** when no queue is installed anywhere and no trace is alive
//!   ([`crate::is_enabled`] is false), a traced call runs its body after one relaxed atomic
//!   load, and nothing else. (A live trace keeps recording: a task spawned in a capture scope that has since
//!   ended still reports to the trace's queue.)
//! - **Parent:** the parent is the observation current on the caller's thread. An async
//!   traced call makes its observation current on every poll and restores the previous one
//!   after, so the context survives `.await` and concurrent requests on one runtime never mix.
//!   [`spawn`], [`spawn_blocking`], [`spawn_thread`] and [`TraceFutureExt::in_current_trace`]
//!   carry it into tasks and threads; `parent = ..` overrides it. A traced call made while a
//!   call's inputs are captured (in a `Clone` or `Serialize` impl, or an argument such as
//!   `metadata(k = f())`) is a child of that call when it is a synchronous child; for a root
//!   or a call given its parent, which enter their context only to run, it goes where the
//!   caller's context puts it.
//! - **Detached:** a [`DetachedObservation`] is an observation whose life is not one call's
//!   (a `tracing` span's, through `ops-tracing`): started under the current context, made
//!   current with its [`ObservationContext`] while code under it runs, ended explicitly. It
//!   carries its own context, as an async call does.
//! - **Root:** a call with no parent starts a trace, bound to [`crate::current_queue`] (the
//!   task's scoped default, else the thread's, else the global queue). Its kind is the trace's
//!   kind: a `message` root makes a message trace. Children inherit the trace and its queue.
//! - **Sampling** is decided at the root ([`set_sample_rate`], `OPS_TRACE_SAMPLE_RATE`, or
//!   `#[traced(sample_rate = ..)]`) and inherited: the calls of an unsampled trace cost about
//!   what calls with tracing off cost.
//! - **Delivery:** the finished observation of a synchronous call made inside another traced
//!   call, or in a polled future, waits on its thread, which hands the trace its observations
//!   in batches: when the enclosing call returns or the future yields, when the thread moves to
//!   another trace, or every 64 observations. Under a context entered with
//!   [`ObservationContext::enter`] or `in_scope` (as [`spawn_thread`] and [`spawn_blocking`]
//!   do), which may stay entered as long as its thread runs, each call is handed over as it
//!   ends, as are async calls and streams. When the root ends, the trace's observations
//!   are queued as one [`crate::TraceTask`]; observations that finish later (in a task spawned
//!   with [`spawn`] that outlives the root) are queued when the trace is dropped, that is when
//!   its last observation and its last [`ObservationContext`] are gone. A trace never buffers
//!   more than [`PART_MAX_OBSERVATIONS`] observations or about [`PART_MAX_BYTES`]: past that it
//!   is delivered in parts sharing the trace id (providers upsert by id; the testkit merges
//!   them).
//! - **Time:** a trace reads the wall clock once, when its root starts; every observation is
//!   timed from there with the CPU's time-stamp counter (through `quanta`; the OS's monotonic
//!   clock where the counter is not invariant). Times within a trace never go backwards, even
//!   if the system clock is stepped meanwhile.
//! - **Capture:** parameters and return values are captured by clone where the type allows
//!   (owned, `'static`, `Clone + Serialize + Send + Sync`) and serialized on the queue's
//!   worker; other `Serialize` values are serialized on the caller. The [`Mask`] runs when
//!   values become JSON on the worker, before any provider sees them.
//! - **Cost:** see `benches/traced.rs`. Off, a call costs one relaxed atomic load. On, a
//!   synchronous call costs two reads of the time-stamp counter, a UUIDv7 from a per-thread
//!   generator and a push onto its thread's buffer: no reference count, no lock, and no
//!   allocation unless it captures something. An async call or a stream also holds a
//!   reference to its trace. A [`ContextGuard`] leaked with `mem::forget`, or guards dropped
//!   out of order, strand the calls running under them; they are counted by
//!   [`lost_observations`].

mod capture;
mod clock;
mod config;
pub(crate) mod current;
mod detached;
mod future;
mod ids;
pub(crate) mod mask;
mod orphan;
mod site;
mod span;
mod stream;
mod trace;
mod update;

pub use config::{InvalidSampleRate, SAMPLE_RATE_ENV, sample_rate, set_sample_rate};
pub use current::{ContextGuard, ObservationContext};
pub use current::{update_current_observation, update_current_trace};
pub use detached::DetachedObservation;
pub use future::{TraceFutureExt, WithContext, spawn, spawn_blocking, spawn_thread};
pub use mask::{
    DEFAULT_REDACTED_KEYS, Mask, REDACTED, RedactKeys, disable_mask, replace_mask, reset_mask,
    set_mask,
};
pub use orphan::{ORPHANS_KEPT, OrphanedCall, orphaned_calls, orphans_after};
pub use span::lost_observations;
pub use stream::{StreamReducer, TracedStream, reduce};
pub use trace::{PART_MAX_BYTES, PART_MAX_OBSERVATIONS};
pub use update::{ObservationUpdate, TraceUpdate};

pub(crate) use clock::warm_up as warm_up_clock;
pub(crate) use current::{is_suppressed, suppress_thread};
pub(crate) use trace::PendingTrace;

/// The heap `value`'s fields hold: its strings, vectors and JSON values (its structs are
/// laid out inline: their own size is its container's business). Its values must be bounded
/// in depth (see [`crate::limits::cut_depth`]): it is walked as `serde` walks it.
pub(crate) fn heap_of_fields<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    capture::heap_of(value)
}

/// What `ops_core::__private` re-exports for generated code.
pub(crate) mod seam {
    pub use super::capture::{
        Cap, CaptureInput, CaptureLater, CaptureOutput, CaptureOutputLater, Captured, ErrRef,
        ErrorDebug, ErrorDisplay, ErrorInfo, ErrorSource, Out, OutCap, Split, SplitResult,
    };
    pub use super::current::ObservationContext;
    pub use super::future::box_pin;
    pub use super::future::{TracedFuture, traced_future};
    pub use super::site::Site;
    pub use super::span::{
        ActiveSpan, AttrValue, IntoParent, Span, call, capture, is_enabled, recording, start,
    };
    pub use super::stream::traced_stream;
}
