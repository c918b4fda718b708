//! The W3C trace-context headers a service reads from the network.

use http::{HeaderMap, HeaderValue};
use ops_core::propagation::{self, Baggage, TraceParent, TraceState};

/// Splits the input into a `traceparent`, a `tracestate` and a `baggage` value (the first byte
/// gives the first's length, the next two the second's, big-endian) and reads them as a
/// request's headers. Asserts that
/// nothing panics, that what the parsers accept stays within the spec's limits, and that what
/// [`propagation::inject_context`] writes back parses again to the same values.
pub fn propagation(data: &[u8]) {
    let (a, b) = match data {
        [a, b0, b1, ..] => (usize::from(*a), usize::from(u16::from_be_bytes([*b0, *b1]))),
        _ => (0, 0),
    };
    let rest = data.get(3..).unwrap_or_default();
    let (tp, rest) = rest.split_at(a.min(rest.len()));
    let (ts, bg) = rest.split_at(b.min(rest.len()));

    let parent = TraceParent::parse(tp);
    if let Ok(p) = parent {
        assert_ne!(p.trace_id(), [0; 16]);
        assert_ne!(p.parent_id(), [0; 8]);
        assert_eq!(TraceParent::parse(p.to_string().as_bytes()), Ok(p));
    }
    if let Ok((state, _)) = TraceState::parse([ts]) {
        assert!(state.len() <= propagation::TRACESTATE_MAX_LEN);
        assert!(state.members().count() <= propagation::TRACESTATE_MAX_MEMBERS);
        let again = TraceState::parse([state.to_string().as_bytes()]);
        assert_eq!(again.map(|(s, _)| s), Ok(state));
    }
    if let Ok((baggage, _)) = Baggage::parse([bg]) {
        assert!(baggage.others().count() <= propagation::BAGGAGE_MAX_MEMBERS);
    }

    let mut headers = HeaderMap::new();
    for (name, value) in [("traceparent", tp), ("tracestate", ts), ("baggage", bg)] {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append(name, v);
        }
    }
    let remote = propagation::RemoteContext::from_headers(&headers);
    let context = remote.clone().into_context();
    let mut out = HeaderMap::new();
    let wrote = propagation::inject_context(&context, &mut out);
    assert_eq!(wrote, remote.trace_parent().is_some());
    if wrote {
        let back = propagation::RemoteContext::from_headers(&out);
        assert_eq!(back.trace_parent(), remote.trace_parent());
        assert_eq!(back.trace_state(), remote.trace_state());
        assert_eq!(back.baggage().user_id(), remote.baggage().user_id());
        assert_eq!(back.baggage().session_id(), remote.baggage().session_id());
    }
}
