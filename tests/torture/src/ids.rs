//! Trace and span ids derived from a run id and an index, so the parent can correlate what the
//! producer acknowledged with what the sink received.
//!
//! A trace's id is the UUID `(run, index)`; its observations' ids are the UUIDs
//! `(run, index << 12 | (n + 1))`. The OTLP encoder sends a UUID trace id as its 16 bytes and
//! an observation's span id as the UUID's low 8 bytes, so the sink sees `index << 12 | (n + 1)`:
//! never zero, which the encoder would replace by the high 8 bytes (`run`), possibly another
//! observation's span id.

use ops_core::TraceId;
use uuid::Uuid;

/// Observations a trace built here may have (the low 12 bits of a span id, never zero).
pub const MAX_OBSERVATIONS: u64 = (1 << 12) - 1;

/// The trace id of `index` in `run`.
pub fn trace_uuid(run: u64, index: u64) -> Uuid {
    Uuid::from_u64_pair(run, index)
}

/// The trace id of `index` in `run`, as the model's [`TraceId`].
pub fn trace_id(run: u64, index: u64) -> TraceId {
    TraceId::new(trace_uuid(run, index).hyphenated().to_string())
        .expect("a hyphenated UUID is a valid trace id")
}

/// The id of observation `n` of trace `index` in `run`.
pub fn observation_id(run: u64, index: u64, n: u64) -> Uuid {
    assert!(n < MAX_OBSERVATIONS, "observation {n} is past the id space");
    Uuid::from_u64_pair(run, (index << 12) | (n + 1))
}

/// The 32 hex digits the sink sees for a trace id (its OTLP trace id).
pub fn trace_hex(run: u64, index: u64) -> String {
    trace_uuid(run, index).simple().to_string()
}

/// The trace id as the sink keys it.
pub fn trace_key(run: u64, index: u64) -> u128 {
    trace_uuid(run, index).as_u128()
}

/// Parses 32 hex digits into the sink's key.
pub fn parse_trace_hex(hex: &str) -> Option<u128> {
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_the_otlp_encoding() {
        let id = trace_id(7, 42);
        assert_eq!(
            ops_providers::otlp::trace_id_hex(&id),
            trace_hex(7, 42),
            "the OTLP trace id is the UUID's bytes"
        );
        assert_eq!(parse_trace_hex(&trace_hex(7, 42)), Some(trace_key(7, 42)));
        let span = ops_providers::otlp::span_id_bytes(observation_id(7, 42, 3));
        assert_eq!(u64::from_be_bytes(span), (42 << 12) | 4);
    }

    #[test]
    fn the_first_trace_root_and_its_first_child_have_distinct_span_ids() {
        let root = ops_providers::otlp::span_id_bytes(observation_id(1, 0, 0));
        let child = ops_providers::otlp::span_id_bytes(observation_id(1, 0, 1));
        assert_ne!(root, child);
    }
}
