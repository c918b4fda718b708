//! Interop with the `opentelemetry` crate (ops-core's `opentelemetry` feature): a `#[traced]`
//! root joins the OpenTelemetry span current on the thread, and the current observation is
//! handed to OpenTelemetry as a span context.

use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use ops_core::model::{remote_parent_uuid, span_id_bytes};
use ops_core::propagation::otel;
use ops_core::traced;

const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
const SPAN: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];

fn otel_span(flags: TraceFlags) -> opentelemetry::ContextGuard {
    let sc = SpanContext::new(
        TraceId::from_bytes(TRACE),
        SpanId::from_bytes(SPAN),
        flags,
        false,
        TraceState::from_str("vendor=opaque").unwrap(),
    );
    opentelemetry::Context::current()
        .with_remote_span_context(sc)
        .attach()
}

#[traced(capture_output = false)]
fn handler() -> Option<SpanContext> {
    child();
    otel::span_context()
}

#[traced]
fn child() {}

#[test]
fn a_root_joins_the_current_opentelemetry_span() {
    let capture = ops_testkit::capture();
    let seen = {
        let _otel = otel_span(TraceFlags::SAMPLED);
        capture.run(handler).expect("an observation is current")
    };
    let trace = &capture.traces()[0];
    assert_eq!(trace.id.to_w3c_bytes(), TRACE);
    let root = capture.find("handler").unwrap();
    assert_eq!(root.parent_id, Some(remote_parent_uuid(SPAN)));
    assert_eq!(capture.find("child").unwrap().parent_id, Some(root.id));
    // The observation as OpenTelemetry sees it: same trace, its own span id, and the
    // OpenTelemetry span's tracestate passed on.
    assert_eq!(seen.trace_id().to_bytes(), TRACE);
    assert_eq!(seen.span_id().to_bytes(), span_id_bytes(root.id));
    assert!(seen.is_sampled() && seen.is_remote());
    assert_eq!(seen.trace_state().get("vendor"), Some("opaque"));
}

#[test]
fn an_unsampled_opentelemetry_span_records_nothing() {
    let capture = ops_testkit::capture();
    {
        let _otel = otel_span(TraceFlags::default());
        capture.run(handler);
    }
    assert!(capture.traces().is_empty());
}

#[traced(capture_output = false)]
fn parent_of_otel() -> (SpanContext, SpanContext) {
    let direct = otel::span_context().unwrap();
    let cx = otel::context();
    (direct, cx.span().span_context().clone())
}

#[test]
fn opentelemetry_spans_can_be_children_of_an_observation() {
    let capture = ops_testkit::capture();
    let (direct, through_context) = capture.run(parent_of_otel);
    let trace = &capture.traces()[0];
    let root = capture.find("parent_of_otel").unwrap();
    assert_eq!(direct, through_context);
    assert_eq!(direct.trace_id().to_bytes(), trace.id.to_w3c_bytes());
    assert_eq!(direct.span_id().to_bytes(), span_id_bytes(root.id));
    assert!(direct.is_valid());
    // Outside any observation there is none.
    assert!(otel::span_context().is_none());
    assert!(!otel::context().span().span_context().is_valid());
}
