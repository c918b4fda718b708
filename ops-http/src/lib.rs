//! # ops-http
//!
//! W3C Trace Context for `ops` over HTTP, so one trace spans a gateway and the services it
//! calls. The headers themselves are [`ops_core::propagation`]'s business; this crate plugs
//! it into HTTP libraries, each behind a cargo feature:
//!
//! - `reqwest`: [`client::RequestBuilderExt::with_trace_context`] writes the current
//!   observation's `traceparent`, `tracestate` and `baggage` into a request.
//! - `reqwest-middleware`: [`middleware::TraceContextMiddleware`] does the same for every
//!   request a `reqwest_middleware::ClientWithMiddleware` sends.
//! - `tower`: [`server::TraceContextLayer`] reads them from each request and runs its
//!   handler in that context, so a `#[traced]` root in the handler joins the caller's trace
//!   (axum: `Router::layer(TraceContextLayer)`).
//!
//! The example of the README's "Calls across services", compiled here:
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use ops_core::{traced, update_current_trace};
//! use ops_http::{client::RequestBuilderExt as _, server::TraceContextLayer};
//!
//! // The gateway: the request to the worker carries this call as the parent.
//! #[traced(kind = "message")]
//! async fn ask(query: String) -> reqwest::Result<String> {
//!     update_current_trace(|t| {
//!         t.user_id("user-7").session_id("conv-3"); // sent on as baggage
//!     });
//!     reqwest::Client::new()
//!         .post("http://127.0.0.1:3001/work")
//!         .body(query)
//!         .with_trace_context()
//!         .send()
//!         .await?
//!         .text()
//!         .await
//! }
//!
//! // The worker: the layer makes the caller's context current, so `work` joins its trace.
//! #[traced(kind = "agent")]
//! async fn work(task: String) -> String {
//!     format!("done: {task}")
//! }
//!
//! let worker: Router = Router::new()
//!     .route("/work", post(work))
//!     .layer(TraceContextLayer);
//! ```
//!
//! It is a crate of its own so that `ops-core` depends on no HTTP client or server
//! framework: only on `http`'s header types.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod client;
#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
pub mod middleware;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod server;

pub use ops_core::propagation::{extract, inject};
