//! The OTLP exporter core: one encoder, one transport, and the [`Dialect`] trait that turns it
//! into a platform's provider.
//!
//! - [`encode`]: [`ops_core::Trace`] → `ExportTraceServiceRequest` (protobuf by default, OTLP
//!   JSON as an option, gzip), with stable ids ([`trace_id_bytes`], [`span_id_bytes`]).
//! - [`transport`]: HTTP through reqwest (rustls), with timeouts, and the classification of
//!   the receiver's answer into an [`ops_core::ExportOutcome`] (see [`transport`] for the rules).
//! - [`dialect`]: what differs per platform (endpoint, headers, resource and span attributes,
//!   the credentials check), and [`OtlpProvider`], the [`ops_core::Provider`] over a dialect.
//! - [`generic`]: the `otlp` provider, for any OTLP/HTTP endpoint, with the GenAI semantic
//!   conventions.

pub(crate) mod content;
pub mod dialect;
pub mod encode;
pub(crate) mod env;
pub mod genai;
pub mod generic;
pub mod transport;

pub use dialect::{Dialect, OtlpProvider};
pub use encode::{
    Attributes, Compression, Encoding, span_id_bytes, span_id_hex, trace_id_bytes, trace_id_hex,
};
pub use transport::{HttpReply, Transport, TransportOptions};

/// The generated OTLP types (`opentelemetry-proto`), re-exported so tests and custom dialects
/// use the same version.
pub use opentelemetry_proto as proto;
