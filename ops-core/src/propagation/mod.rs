//! W3C Trace Context and Baggage across services: one trace from the gateway to the worker.
//!
//! - **Incoming:** [`extract`] reads `traceparent`, `tracestate` and `baggage` from an
//!   [`http::HeaderMap`] into an [`ObservationContext`]. A `#[traced]` root started in it
//!   (entered with [`ObservationContext::enter`], or a future wrapped with
//!   [`ObservationContext::wrap`] / [`crate::TraceFutureExt::in_trace`], or given as
//!   `parent = ..`) joins the caller's trace: its trace id is the header's, and its parent is
//!   the caller's span. A caller that did not sample the trace (`trace-flags` 00) makes
//!   every traced call under it unrecorded, at the cost of an unsampled trace; a sampled one
//!   is recorded whatever the local sample rate. `user.id` and `session.id` in `baggage`
//!   become the trace's user and session.
//! - **Outgoing:** [`inject`] writes the current context: the trace id, the current
//!   observation's span id as `parent-id`, the sampled flag, the `tracestate` received (passed
//!   on unchanged: `ops` adds no entry), and `baggage` with the trace's user and session
//!   (set with [`crate::update_current_trace`] or received) and every other member received.
//!   The `ops-http` crate does it for `reqwest` and extracts for `tower`/`axum` servers.
//! - **Ids:** the trace id on the wire is [`TraceId::to_w3c_bytes`] (a UUID trace id's 16
//!   bytes: `ops`'s own UUIDv7 ids go out and come back letter for letter, so every provider
//!   sees one id in every service); an incoming W3C trace id becomes the UUID with its 16
//!   bytes ([`TraceId::from_w3c_bytes`]). An observation's span id is
//!   [`crate::model::span_id_bytes`], as the OTLP providers send it; the remote parent is
//!   kept as [`crate::model::remote_parent_uuid`].
//! - **Malformed headers** are ignored, never a panic, and counted in [`stats`]: the parser
//!   is strict (the spec's grammar, lowercase hex, no all-zero ids, at most 32 `tracestate`
//!   members, `baggage` at most 8192 bytes). An invalid `traceparent` also discards
//!   `tracestate` (spec §3.3); `baggage` stands on its own. Members dropped to fit the limits
//!   are counted too.
//!
//! ```
//! use http::HeaderMap;
//! use ops_core::propagation;
//!
//! #[ops_core::traced]
//! async fn handle() -> &'static str {
//!     let mut outgoing = HeaderMap::new();
//!     propagation::inject(&mut outgoing); // the next service joins this trace
//!     "done"
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mut headers = HeaderMap::new();
//! headers.insert(
//!     "traceparent",
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap(),
//! );
//! let context = propagation::extract(&headers);
//! assert_eq!(
//!     context.trace_id().unwrap().as_str(),
//!     "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
//! );
//! handle().in_trace(&context).await;
//! # });
//! # use ops_core::TraceFutureExt;
//! ```

mod baggage;
#[cfg(feature = "opentelemetry")]
#[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
pub mod otel;
mod traceparent;
mod tracestate;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderValue};

pub use baggage::{
    BAGGAGE_MAX_ID_LEN, BAGGAGE_MAX_LEN, BAGGAGE_MAX_MEMBERS, Baggage, LANGFUSE_SESSION_ID_KEY,
    LANGFUSE_USER_ID_KEY, SESSION_ID_KEY, USER_ID_KEY,
};
pub use traceparent::TraceParent;
pub use tracestate::{TRACESTATE_MAX_LEN, TRACESTATE_MAX_MEMBERS, TraceState};

use crate::context::ObservationContext;
use crate::context::current::Current;
use crate::model::TraceId;

/// The `traceparent` header's name.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header's name.
pub const TRACESTATE: &str = "tracestate";
/// The `baggage` header's name.
pub const BAGGAGE: &str = "baggage";

/// Why a header was ignored: the header and what was wrong with it (never its value, which
/// may hold anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid {header} header: {reason}; it is ignored")]
pub struct InvalidHeader {
    header: &'static str,
    reason: &'static str,
}

impl InvalidHeader {
    pub(crate) fn new(header: &'static str, reason: &'static str) -> Self {
        Self { header, reason }
    }

    /// The header's name ([`TRACEPARENT`], [`TRACESTATE`] or [`BAGGAGE`]).
    pub fn header(&self) -> &'static str {
        self.header
    }

    /// What was wrong, in words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// What another service sent: its `traceparent` (if valid), its `tracestate` and `baggage`.
/// Turned into an [`ObservationContext`] with [`RemoteContext::into_context`] (or read and
/// turned at once by [`extract`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteContext {
    parent: Option<TraceParent>,
    state: TraceState,
    baggage: Baggage,
}

impl RemoteContext {
    /// Reads the three headers, ignoring and counting what is malformed (see the module
    /// docs).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut remote = Self::default();
        let mut parents = headers.get_all(TRACEPARENT).iter();
        match (parents.next(), parents.next()) {
            (None, _) => {}
            (Some(_), Some(_)) => {
                count_invalid(InvalidHeader::new(TRACEPARENT, "it appears more than once"))
            }
            (Some(value), None) => match TraceParent::parse(value.as_bytes()) {
                Ok(parent) => remote.parent = Some(parent),
                Err(e) => count_invalid(e),
            },
        }
        // tracestate only means something with a valid traceparent (spec §3.3).
        if remote.parent.is_some() && headers.contains_key(TRACESTATE) {
            match TraceState::parse(headers.get_all(TRACESTATE).iter().map(|v| v.as_bytes())) {
                Ok((state, dropped)) => {
                    remote.state = state;
                    count_dropped(dropped);
                }
                Err(e) => count_invalid(e),
            }
        }
        if headers.contains_key(BAGGAGE) {
            match Baggage::parse(headers.get_all(BAGGAGE).iter().map(|v| v.as_bytes())) {
                Ok((baggage, dropped)) => {
                    remote.baggage = baggage;
                    count_dropped(dropped);
                }
                Err(e) => count_invalid(e),
            }
        }
        if remote.parent.is_some() {
            STATS.extracted.fetch_add(1, Ordering::Relaxed);
        }
        remote
    }

    /// A context joining the trace of `parent`, with no `tracestate` or `baggage`.
    pub fn new(parent: TraceParent) -> Self {
        Self {
            parent: Some(parent),
            ..Self::default()
        }
    }

    /// The same context with `baggage`.
    pub fn with_baggage(mut self, baggage: Baggage) -> Self {
        self.baggage = baggage;
        self
    }

    /// The same context with `state` (ignored by [`inject`] without a `traceparent`).
    pub fn with_trace_state(mut self, state: TraceState) -> Self {
        self.state = state;
        self
    }

    /// The caller's trace and span, when the `traceparent` was valid.
    pub fn trace_parent(&self) -> Option<TraceParent> {
        self.parent
    }

    /// The `tracestate` received (empty without a valid `traceparent`).
    pub fn trace_state(&self) -> &TraceState {
        &self.state
    }

    /// The `baggage` received.
    pub fn baggage(&self) -> &Baggage {
        &self.baggage
    }

    /// The trace id a root started in this context gets.
    pub fn trace_id(&self) -> Option<TraceId> {
        TraceId::from_w3c_bytes(self.parent?.trace_id())
    }

    /// Whether traced calls in it are recorded: false when the caller did not sample the
    /// trace.
    pub fn is_sampled(&self) -> bool {
        self.parent.is_none_or(|p| p.is_sampled())
    }

    /// Whether nothing usable was received: then its context is [`ObservationContext::root`].
    pub fn is_empty(&self) -> bool {
        self.parent.is_none() && self.baggage.is_empty()
    }

    /// The context a handler runs in: a traced root started in it joins the caller's trace.
    pub fn into_context(self) -> ObservationContext {
        if self.is_empty() {
            return ObservationContext::root();
        }
        ObservationContext {
            current: Current::Remote(Arc::new(self)),
        }
    }
}

impl From<RemoteContext> for ObservationContext {
    fn from(remote: RemoteContext) -> Self {
        remote.into_context()
    }
}

/// The context the caller of this request put in `headers`: see the module docs. Without a
/// usable header it is [`ObservationContext::root`], so a traced call in it starts a trace
/// of its own.
pub fn extract(headers: &HeaderMap) -> ObservationContext {
    RemoteContext::from_headers(headers).into_context()
}

/// Writes the current context into `headers` (replacing `traceparent`, `tracestate` and
/// `baggage`), for a request to another service. Returns false, writing nothing, when there
/// is nothing to carry: outside any trace, or in a trace sampling left out locally.
pub fn inject(headers: &mut HeaderMap) -> bool {
    inject_context(&ObservationContext::current(), headers)
}

/// [`inject`] for a given context (one taken earlier, or carried to another thread).
pub fn inject_context(context: &ObservationContext, headers: &mut HeaderMap) -> bool {
    let Some(out) = outgoing(&context.current) else {
        return false;
    };
    // Every value is built from validated ASCII, so these never fail; a failure would be
    // counted as a dropped member rather than a panic.
    match HeaderValue::try_from(out.parent.to_string()) {
        Ok(v) => {
            headers.insert(TRACEPARENT, v);
        }
        Err(_) => {
            count_dropped(1);
            return false;
        }
    }
    headers.remove(TRACESTATE);
    if !out.state.is_empty() {
        match HeaderValue::try_from(out.state.to_string()) {
            Ok(v) => {
                headers.insert(TRACESTATE, v);
            }
            Err(_) => count_dropped(out.state.members().count()),
        }
    }
    headers.remove(BAGGAGE);
    if !out.baggage.is_empty() {
        let (value, left_out) = out.baggage.to_header();
        count_dropped(left_out);
        match HeaderValue::try_from(value) {
            Ok(v) if !v.is_empty() => {
                headers.insert(BAGGAGE, v);
            }
            Ok(_) => {}
            Err(_) => count_dropped(1),
        }
    }
    STATS.injected.fetch_add(1, Ordering::Relaxed);
    true
}

/// What an outgoing call carries from `current`.
pub(crate) struct Outgoing {
    pub(crate) parent: TraceParent,
    pub(crate) state: TraceState,
    pub(crate) baggage: Baggage,
}

pub(crate) fn outgoing(current: &Current) -> Option<Outgoing> {
    match current {
        Current::Span(span) => {
            let trace = &span.trace;
            let span_id = crate::model::span_id_bytes(span.id);
            let remote = trace.remote.as_deref();
            let parent = match remote.and_then(RemoteContext::trace_parent) {
                // Keeps the caller's flags (Level 2's `random`).
                Some(p) => p.with_parent(span_id),
                None => TraceParent::new(trace.id.to_w3c_bytes(), span_id, true)?,
            };
            let (user, session) = trace.propagated_ids();
            let (baggage, left_out) = remote
                .map(|r| r.baggage.clone())
                .unwrap_or_default()
                .with_ids(user.as_deref(), session.as_deref());
            count_dropped(left_out);
            Some(Outgoing {
                parent,
                state: remote.map(|r| r.state.clone()).unwrap_or_default(),
                baggage,
            })
        }
        // Between services, outside any traced call: passed on as received.
        Current::Remote(remote) => Some(Outgoing {
            parent: remote.parent?,
            state: remote.state.clone(),
            baggage: remote.baggage.clone(),
        }),
        Current::None | Current::Unsampled => None,
    }
}

/// How many propagation headers were read, written, ignored and cut, since the process
/// started. See [`stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PropagationStats {
    /// Requests whose valid `traceparent` was extracted.
    pub extracted: u64,
    /// Contexts injected into outgoing headers.
    pub injected: u64,
    /// `traceparent` headers ignored as malformed (their `tracestate` with them).
    pub invalid_traceparent: u64,
    /// `tracestate` headers ignored as malformed.
    pub invalid_tracestate: u64,
    /// `baggage` headers ignored as malformed or too long.
    pub invalid_baggage: u64,
    /// `tracestate` and `baggage` members dropped to fit the limits (and ids too long to
    /// keep).
    pub dropped_members: u64,
}

impl PropagationStats {
    /// Every header ignored as malformed.
    pub fn malformed(&self) -> u64 {
        self.invalid_traceparent + self.invalid_tracestate + self.invalid_baggage
    }
}

struct Counters {
    extracted: AtomicU64,
    injected: AtomicU64,
    invalid_traceparent: AtomicU64,
    invalid_tracestate: AtomicU64,
    invalid_baggage: AtomicU64,
    dropped_members: AtomicU64,
}

static STATS: Counters = Counters {
    extracted: AtomicU64::new(0),
    injected: AtomicU64::new(0),
    invalid_traceparent: AtomicU64::new(0),
    invalid_tracestate: AtomicU64::new(0),
    invalid_baggage: AtomicU64::new(0),
    dropped_members: AtomicU64::new(0),
};

/// The process's propagation counters (like [`crate::context::lost_observations`], they
/// only grow).
pub fn stats() -> PropagationStats {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    PropagationStats {
        extracted: get(&STATS.extracted),
        injected: get(&STATS.injected),
        invalid_traceparent: get(&STATS.invalid_traceparent),
        invalid_tracestate: get(&STATS.invalid_tracestate),
        invalid_baggage: get(&STATS.invalid_baggage),
        dropped_members: get(&STATS.dropped_members),
    }
}

/// How many propagation headers were ignored as malformed: [`PropagationStats::malformed`]
/// of [`stats`].
pub fn malformed_headers() -> u64 {
    stats().malformed()
}

#[cold]
fn count_invalid(e: InvalidHeader) {
    let counter = match e.header {
        TRACEPARENT => &STATS.invalid_traceparent,
        TRACESTATE => &STATS.invalid_tracestate,
        _ => &STATS.invalid_baggage,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    // The value is never logged: baggage may carry anything.
    tracing::debug!(target: "ops_core::propagation", "{e}");
}

fn count_dropped(n: usize) {
    if n > 0 {
        STATS
            .dropped_members
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl fmt::Display for RemoteContext {
    /// The `traceparent`, or `-` without one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.parent {
            Some(p) => fmt::Display::fmt(p, f),
            None => f.write_str("-"),
        }
    }
}
