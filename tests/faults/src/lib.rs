//! Fault tests of delivery through real providers to loopback fake servers: a backend that is
//! down and comes back, and a rate-limit storm. The tests are in `tests/`; this crate holds
//! what they share.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// The trace ids (32 hex) of every span in an OTLP protobuf body, with how many spans each has.
pub fn otlp_trace_ids(body: &[u8]) -> HashMap<String, usize> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
    let mut ids = HashMap::new();
    for span in request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
    {
        let hex: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
        *ids.entry(hex).or_default() += 1;
    }
    ids
}

/// This process's resident memory in KiB, from `/proc/self/status` (`VmRSS`).
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
