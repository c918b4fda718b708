//! Providers deliver traces to a platform. Each registers a [`ProviderFactory`] through
//! `inventory`, so a provider crate is available just by being linked.

mod config;
mod registry;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use config::{
    ConfigError, ConfigField, ProviderConfig, REDACTED, Redactor, TIMEOUT_FIELD, check_url,
    obfuscate_secret, quote_value, redact_url, validate_integer_id, validate_project_name,
    validate_timeout, validate_url, validate_url_with_path,
};
pub use registry::{
    DuplicateProvider, EnvReader, EnvVar, LINK_HINT, ProviderFactory, RegistryError,
    UnknownProvider, find, registered,
};

use crate::model::Trace;

/// The result of one export, classified so the queue knows what to do next. The queue owns the
/// retry loop; a provider reports and returns.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ExportOutcome {
    /// Every trace in the batch was accepted.
    Delivered,
    /// Some traces were accepted; those at `failed` (indices into the batch) were not and
    /// may be retried.
    Partial {
        /// Indices of the traces to send again.
        failed: Vec<usize>,
        /// Why they failed.
        error: ExportError,
    },
    /// Nothing was accepted, but the same batch may succeed later: after `after` when the
    /// platform said so (Retry-After), else after the queue's backoff.
    Retry {
        /// The wait the platform asked for.
        after: Option<Duration>,
        /// Why it failed.
        error: ExportError,
    },
    /// The batch can never be accepted (bad credentials, a rejected payload). It is dropped
    /// and counted as failed.
    Fatal(ExportError),
}

impl ExportOutcome {
    /// A retryable failure with no stated wait.
    pub fn retry(error: impl Into<ExportError>) -> Self {
        ExportOutcome::Retry {
            after: None,
            error: error.into(),
        }
    }

    /// A fatal failure.
    pub fn fatal(error: impl Into<ExportError>) -> Self {
        ExportOutcome::Fatal(error.into())
    }
}

/// Why an export or a check failed, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {message}")]
#[non_exhaustive]
pub struct ExportError {
    /// The provider that failed.
    pub provider: String,
    /// What went wrong, quoting the server where it answered.
    pub message: String,
    /// The HTTP status the server answered with, when it answered.
    pub status: Option<u16>,
}

impl ExportError {
    /// An error of `provider` with `message`.
    pub fn new(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            message: message.into(),
            status: None,
        }
    }

    /// Records the HTTP status the server answered with. The queue splits a batch of several
    /// traces that keeps getting a 5xx, so one poisoned trace cannot sink the others.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Whether the server answered with a 5xx.
    pub fn is_server_error(&self) -> bool {
        self.status.is_some_and(|s| (500..600).contains(&s))
    }
}

/// A provider: the client of one platform, built from one app's config.
///
/// # Contract
/// - The queue never calls [`Provider::export`] concurrently on the same instance (it takes
///   `&mut self`), and calls [`Provider::shutdown`] once, after the last export.
/// - Every call finishes in bounded time: use timeouts on network calls. The queue also
///   enforces its export timeout and treats a timeout as retryable.
/// - `export` classifies its result ([`ExportOutcome`]) and does not retry by itself.
/// - `export` may receive the same trace id in several batches and must let the platform
///   upsert, not duplicate (ids are stable).
/// - The queue runs providers on its own worker thread; code a provider calls is never traced.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The registry name, for example `langfuse`.
    fn name(&self) -> &str;

    /// Delivers a batch of traces.
    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome;

    /// Checks that the configured credentials work, with a real authenticated request where
    /// the platform has one.
    async fn api_check(&self) -> Result<(), ExportError>;

    /// The platform's id of the project traces go to, where it has one.
    async fn project_key(&self) -> Result<Option<String>, ExportError> {
        Ok(None)
    }

    /// A URL where the user can see the traces, where the platform has one.
    async fn project_url(&self) -> Result<Option<String>, ExportError> {
        Ok(None)
    }

    /// Releases resources; called once after the last export.
    async fn shutdown(&mut self) {}

    /// The per-request timeout the provider uses, where it has one. An export to this
    /// provider may take [`crate::QueueConfig::export_timeout`], or this plus a second when
    /// that is longer, before the queue counts it as timed out.
    fn timeout(&self) -> Option<Duration> {
        None
    }
}

impl fmt::Debug for dyn Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name())
            .finish()
    }
}
