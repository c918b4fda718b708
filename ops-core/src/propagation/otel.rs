//! Interop with the [`opentelemetry`] crate, for apps that already create OpenTelemetry spans
//! (feature `opentelemetry`).
//!
//! - **OpenTelemetry → ops:** a `#[traced]` root started while an OpenTelemetry span is
//!   current (`opentelemetry::Context::current()` has a valid span context) joins it as its
//!   child: the span's trace id, the span as its parent, its sampled flag and `tracestate`,
//!   exactly as a [`super::extract`]ed `traceparent` would.
//! - **ops → OpenTelemetry:** [`span_context`] is the current observation as an
//!   OpenTelemetry [`SpanContext`] (remote: `ops` owns the span), and [`context`] an
//!   OpenTelemetry [`Context`](opentelemetry::Context) with it as the parent, so spans an
//!   OpenTelemetry tracer starts in it are the observation's children.
//!
//! The check costs one thread-local read per traced root, and nothing for other calls.

use std::sync::Arc;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId as OtelTraceId,
    TraceState as OtelTraceState,
};

use super::{RemoteContext, TraceParent, TraceState};
use crate::context::ObservationContext;

/// The OpenTelemetry span current on this thread, as a context a root joins.
pub(crate) fn current_remote() -> Option<Arc<RemoteContext>> {
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let parent = TraceParent::new(
        sc.trace_id().to_bytes(),
        sc.span_id().to_bytes(),
        sc.is_sampled(),
    )?;
    let header = sc.trace_state().header();
    let state = if header.is_empty() {
        TraceState::default()
    } else {
        match TraceState::parse([header.as_bytes()]) {
            Ok((state, dropped)) => {
                super::count_dropped(dropped);
                state
            }
            Err(e) => {
                super::count_invalid(e);
                TraceState::default()
            }
        }
    };
    Some(Arc::new(RemoteContext::new(parent).with_trace_state(state)))
}

/// The current observation as an OpenTelemetry span context: its trace id, its span id (as
/// the OTLP providers send it), sampled; `None` outside any trace or in one sampling left
/// out locally. In a context extracted from another service, outside any traced call, it is
/// the caller's span.
pub fn span_context() -> Option<SpanContext> {
    span_context_of(&ObservationContext::current())
}

/// [`span_context`] of a given context.
pub fn span_context_of(context: &ObservationContext) -> Option<SpanContext> {
    let out = super::outgoing(&context.current)?;
    let state = if out.state.is_empty() {
        OtelTraceState::NONE
    } else {
        out.state
            .to_string()
            .parse::<OtelTraceState>()
            .unwrap_or_default()
    };
    Some(SpanContext::new(
        OtelTraceId::from_bytes(out.parent.trace_id()),
        SpanId::from_bytes(out.parent.parent_id()),
        TraceFlags::new(out.parent.flags()),
        true,
        state,
    ))
}

/// OpenTelemetry's current context with the current observation as its (remote) span: spans
/// started in it with an OpenTelemetry tracer are the observation's children. Without a
/// current observation, OpenTelemetry's current context as it is.
///
/// ```
/// # #[ops_core::traced]
/// # fn f() {
/// let _otel = ops_core::propagation::otel::context().attach();
/// // opentelemetry spans started here are children of `f`'s observation.
/// # }
/// # f();
/// ```
pub fn context() -> opentelemetry::Context {
    let cx = opentelemetry::Context::current();
    match span_context() {
        Some(sc) => cx.with_remote_span_context(sc),
        None => cx,
    }
}
