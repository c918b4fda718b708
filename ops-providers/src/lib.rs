//! # ops-providers
//!
//! Trace providers for `ops`. Most platforms now take OpenTelemetry (OTLP), so there is one
//! OTLP exporter ([`otlp`]: encoder, transport, response classification) and each platform is
//! a [`otlp::Dialect`] of attributes, endpoint and headers on top of it.
//!
//! Each provider is a module behind its own cargo feature and registers itself with
//! `ops_core`'s registry when the feature is on, so an app selects it by name
//! (`OPS_TRACE_PROVIDER=phoenix`, or a Dify-style tracing config):
//!
//! | feature | provider names | platform |
//! |---|---|---|
//! | `otlp` | `otlp` | any OTLP/HTTP endpoint, GenAI semantic conventions |
//! | `langfuse` | `langfuse` | Langfuse (OTLP endpoint; scores via the ingestion API) |
//! | `phoenix` | `phoenix` | Arize Phoenix (OpenInference) |
//! | `arize` | `arize` | Arize AX (OpenInference) |
//! | `aliyun` | `aliyun` | Alibaba Cloud ARMS LLM observability |
//! | `tencent` | `tencent` | Tencent Cloud APM |
//! | `mlflow` | `mlflow`, `databricks` | MLflow tracking server, Databricks |
//!
//! `full` (or `all`) enables every provider. The default feature set is empty.
//!
//! ```
//! # #[cfg(feature = "phoenix")] {
//! use ops_core::provider::{ProviderConfig, find};
//! // Links this crate, so its providers are registered (an app that uses nothing else from
//! // it needs this line).
//! use ops_providers as _;
//!
//! // With the `phoenix` feature on, the provider is found by name and built from Dify's keys.
//! let factory = find("phoenix")?;
//! let config = ProviderConfig::new("phoenix")
//!     .with("endpoint", "http://127.0.0.1:6006")
//!     .with("project", "my-app");
//! let provider = factory.build(config)?;
//! assert_eq!(provider.name(), "phoenix");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "otlp")]
pub mod otlp;

#[cfg(any(feature = "phoenix", feature = "arize"))]
pub mod openinference;

#[cfg(feature = "aliyun")]
pub mod aliyun;
#[cfg(feature = "arize")]
pub mod arize;
#[cfg(feature = "langfuse")]
pub mod langfuse;
#[cfg(feature = "mlflow")]
pub mod mlflow;
#[cfg(feature = "phoenix")]
pub mod phoenix;
#[cfg(feature = "tencent")]
pub mod tencent;
