//! What the layer bench and the callgrind example share: the span they time and the exporter
//! the OpenTelemetry side discards into.
#![allow(dead_code)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tracing::field::Empty;
use tracing::info_span;

/// Discards what the SDK exports, counting the spans, as `ops_testkit::Discard` does for the
/// queue.
#[derive(Debug, Default)]
pub(crate) struct DiscardSpans(pub Arc<AtomicU64>);

impl SpanExporter for DiscardSpans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        black_box(batch);
        Ok(())
    }
}

/// One span as rig-core records a completion: created, entered once, two usage counts
/// recorded after it started, closed.
#[inline(never)]
pub(crate) fn genai_span() {
    let span = info_span!(
        target: "rig::completions",
        "chat",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = "openai",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
    );
    span.in_scope(|| black_box(1));
    span.record("gen_ai.usage.input_tokens", 12_u64);
    span.record("gen_ai.usage.output_tokens", 5_u64);
}
