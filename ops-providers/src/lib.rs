//! # ops-providers
//!
//! Trace providers for `ops`. Most platforms now take OpenTelemetry (OTLP), so there is one
//! OTLP exporter ([`otlp`]: encoder, transport, response classification) and each platform is
//! a [`otlp::Dialect`] of attributes, endpoint and headers on top of it. LangSmith, Opik and
//! Weave also have native ingestion APIs their UIs are built around; [`langsmith`], [`opik`]
//! and [`weave`] send to those as the official SDKs do. Every provider shares one HTTP layer
//! ([`http`]: client, gzip, status rules, `Retry-After`, batch splitting).
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
//! | `datadog` | `datadog` | Datadog LLM Observability (GenAI conventions) |
//! | `mlflow` | `mlflow`, `databricks` | MLflow tracking server, Databricks |
//! | `langsmith` | `langsmith` | LangSmith runs API (multipart ingestion) |
//! | `opik` | `opik` | Opik (Comet) REST batches |
//! | `weave` | `weave` | W&B Weave trace server calls |
//!
//! `full` (or `all`) enables every provider. The default feature set is empty.
//!
//! ```
//! # #[cfg(feature = "phoenix")] {
//! use ops_core::provider::{ProviderConfig, find};
//! // Keeps every enabled provider's registration in the binary (see [`link`]).
//! ops_providers::link();
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

#[cfg(feature = "http")]
pub(crate) mod env;
/// The per-request timeout every provider built from the environment reads when nothing more
/// specific is set (`OPS_TRACE_EXPORT_TIMEOUT`: seconds, fractions allowed, 0.01 to 600).
/// OTLP-based providers read `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (whole milliseconds, 10 to 600000) first, and Langfuse
/// `LANGFUSE_TIMEOUT` (seconds) before those. The config key of every provider is `timeout`
/// (seconds, 0.01 to 600, default 10).
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub const EXPORT_TIMEOUT_ENV: &str = env::EXPORT_TIMEOUT_ENV;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "otlp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
pub mod otlp;

// The OTLP GenAI dialect uses its tag helper too.
#[cfg(any(
    feature = "otlp",
    feature = "langsmith",
    feature = "opik",
    feature = "weave"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "otlp",
        feature = "langsmith",
        feature = "opik",
        feature = "weave"
    )))
)]
pub mod native;

#[cfg(feature = "langsmith")]
#[cfg_attr(docsrs, doc(cfg(feature = "langsmith")))]
pub mod langsmith;
#[cfg(feature = "opik")]
#[cfg_attr(docsrs, doc(cfg(feature = "opik")))]
pub mod opik;
#[cfg(feature = "weave")]
#[cfg_attr(docsrs, doc(cfg(feature = "weave")))]
pub mod weave;

#[cfg(any(feature = "phoenix", feature = "arize"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "phoenix", feature = "arize"))))]
pub mod openinference;

#[cfg(feature = "aliyun")]
#[cfg_attr(docsrs, doc(cfg(feature = "aliyun")))]
pub mod aliyun;
#[cfg(feature = "arize")]
#[cfg_attr(docsrs, doc(cfg(feature = "arize")))]
pub mod arize;
#[cfg(feature = "datadog")]
#[cfg_attr(docsrs, doc(cfg(feature = "datadog")))]
pub mod datadog;
#[cfg(feature = "langfuse")]
#[cfg_attr(docsrs, doc(cfg(feature = "langfuse")))]
pub mod langfuse;
#[cfg(feature = "mlflow")]
#[cfg_attr(docsrs, doc(cfg(feature = "mlflow")))]
pub mod mlflow;
#[cfg(feature = "phoenix")]
#[cfg_attr(docsrs, doc(cfg(feature = "phoenix")))]
pub mod phoenix;
#[cfg(feature = "tencent")]
#[cfg_attr(docsrs, doc(cfg(feature = "tencent")))]
pub mod tencent;

/// [`ops_core::init`] with every enabled provider linked: calls [`link`], then sets up tracing
/// from the environment (`OPS_TRACE_PROVIDER` and each provider's variables) and installs the
/// global queue. Keep the guard for the life of the program; dropping it delivers what is
/// queued, waiting at most 5 s.
///
/// `ops_core::init()` cannot do this itself (ops-core does not depend on this crate), so an app
/// that selects these providers by name calls this instead and needs no separate `link()`.
///
/// ```no_run
/// let _guard = ops_providers::init()?;
/// # Ok::<(), ops_core::QueueError>(())
/// ```
pub fn init() -> Result<ops_core::TracingGuard, ops_core::QueueError> {
    link();
    ops_core::init()
}

/// Keeps the registration of every enabled provider in the final binary.
///
/// Providers register through `inventory`, and a linker drops the code of a module nothing
/// refers to, registration included; `use ops_providers as _;` is not enough. Call this once
/// (for example at the start of `main`) in any binary that selects providers by name from the
/// environment or a stored config and uses nothing else from this crate ([`init`] calls it).
#[inline(never)]
pub fn link() {
    type FromConfig = *const ();
    let anchors: &[FromConfig] = &[
        #[cfg(feature = "otlp")]
        (otlp::generic::GenericOtlp::from_config as FromConfig),
        #[cfg(feature = "langfuse")]
        (langfuse::Langfuse::from_config as FromConfig),
        #[cfg(feature = "phoenix")]
        (phoenix::Phoenix::from_config as FromConfig),
        #[cfg(feature = "arize")]
        (arize::Arize::from_config as FromConfig),
        #[cfg(feature = "aliyun")]
        (aliyun::Aliyun::from_config as FromConfig),
        #[cfg(feature = "tencent")]
        (tencent::Tencent::from_config as FromConfig),
        #[cfg(feature = "datadog")]
        (datadog::Datadog::from_config as FromConfig),
        #[cfg(feature = "mlflow")]
        (mlflow::Mlflow::tracking_server as FromConfig),
        #[cfg(feature = "mlflow")]
        (mlflow::Mlflow::databricks as FromConfig),
        #[cfg(feature = "langsmith")]
        (langsmith::LangSmith::from_config as FromConfig),
        #[cfg(feature = "opik")]
        (opik::Opik::from_config as FromConfig),
        #[cfg(feature = "weave")]
        (weave::Weave::from_config as FromConfig),
    ];
    std::hint::black_box(anchors);
}
