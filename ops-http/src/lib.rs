//! # ops-http
//!
//! W3C Trace Context for `ops` over HTTP, so one trace spans a gateway and the services it
//! calls. The headers themselves are [`ops_core::propagation`]'s business; this crate plugs
//! it into HTTP libraries, each behind a cargo feature:
//!
//! - `reqwest`: [`client::RequestBuilderExt::with_trace_context`] writes the current
//!   observation's `traceparent`, `tracestate` and `baggage` into a request.
//! - `tower`: [`server::TraceContextLayer`] reads them from each request and runs its
//!   handler in that context, so a `#[traced]` root in the handler joins the caller's trace
//!   (axum: `Router::layer(TraceContextLayer)`).
//!
//! It is a crate of its own so that `ops-core` depends on no HTTP client or server
//! framework: only on `http`'s header types.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod client;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod server;

pub use ops_core::propagation::{extract, inject};
