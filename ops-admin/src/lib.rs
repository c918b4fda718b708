#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api;
pub mod auth;
mod error;
mod openapi;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ops_config::OpsTraceManager;

pub use auth::{Role, TokenError, Tokens};
pub use error::ApiError;
pub use openapi::document as openapi_document;

/// The limits every request runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest request body, in bytes (413 above it).
    pub body_bytes: usize,
    /// How long one request may take in all (503 `timeout` after it).
    pub request_timeout: Duration,
    /// How long a test trace waits for each provider (keep it under `request_timeout`).
    pub test_timeout: Duration,
}

impl Default for Limits {
    /// 64 KiB bodies (as `ops config set --stdin`), 60 s per request, 20 s per provider for a
    /// test trace.
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(60),
            test_timeout: Duration::from_secs(20),
        }
    }
}

impl Limits {
    /// Sets the largest request body, in bytes.
    #[must_use]
    pub fn body_bytes(mut self, bytes: usize) -> Self {
        self.body_bytes = bytes;
        self
    }

    /// Sets how long one request may take in all.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets how long a test trace waits for each provider.
    #[must_use]
    pub fn test_timeout(mut self, timeout: Duration) -> Self {
        self.test_timeout = timeout;
        self
    }
}

/// What the router serves from: the config manager, the accepted tokens and the limits.
/// Cheap to clone. `Debug` shows no token.
#[derive(Clone)]
pub struct AdminState {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    manager: Arc<OpsTraceManager>,
    tokens: Tokens,
    limits: Limits,
    local_providers: bool,
}

/// The providers whose config names a file on the server (`console`, `file`). The admin API
/// neither lists nor saves them unless [`AdminState::with_local_providers`] allows it: a
/// tenant must not choose where the server writes.
pub const LOCAL_PROVIDERS: &[&str] = &["console", "file"];

impl fmt::Debug for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminState")
            .field("manager", &self.inner.manager)
            .field("tokens", &self.inner.tokens)
            .field("limits", &self.inner.limits)
            .field("local_providers", &self.inner.local_providers)
            .finish()
    }
}

impl AdminState {
    /// A state over `manager` accepting `tokens`, with the default [`Limits`].
    pub fn new(manager: Arc<OpsTraceManager>, tokens: Tokens) -> Self {
        Self {
            inner: Arc::new(Inner {
                manager,
                tokens,
                limits: Limits::default(),
                local_providers: false,
            }),
        }
    }

    /// A state over the config database and key the environment names (as the `ops` CLI
    /// reads them) and the tokens in [`auth::TOKENS_ENV`].
    pub async fn from_env() -> Result<Self, FromEnvError> {
        let tokens = Tokens::from_env()?;
        let manager = OpsTraceManager::from_env().await?;
        Ok(Self::new(Arc::new(manager), tokens))
    }

    /// The same state with `limits`.
    #[must_use]
    pub fn with_limits(self, limits: Limits) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.limits = limits;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The same state, listing and saving the [`LOCAL_PROVIDERS`] too (only for a server whose
    /// every token holder may choose files it writes).
    #[must_use]
    pub fn with_local_providers(self, allow: bool) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.local_providers = allow;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Whether the admin API offers `provider` (see [`LOCAL_PROVIDERS`]).
    pub fn offers(&self, provider: &str) -> bool {
        self.inner.local_providers || !LOCAL_PROVIDERS.contains(&provider)
    }

    /// The config manager.
    pub fn manager(&self) -> &Arc<OpsTraceManager> {
        &self.inner.manager
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    pub(crate) fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }
}

/// Why [`AdminState::from_env`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FromEnvError {
    /// The token list is malformed.
    #[error(transparent)]
    Tokens(#[from] TokenError),
    /// The config database or the key could not be opened.
    #[error(transparent)]
    Config(#[from] ops_config::Error),
}

/// The admin API's router, to nest under `/api/admin` (paths below are relative to it):
///
/// | Method and path | What it does |
/// |---|---|
/// | `GET /openapi.json` | this API's OpenAPI 3 document (no token needed) |
/// | `GET /providers` | the registered providers and their fields |
/// | `GET /apps/{app_id}/configs` | the app's state and configs, secrets obfuscated |
/// | `GET /apps/{app_id}/configs/{provider}` | one config |
/// | `PUT /apps/{app_id}/configs/{provider}` | create or update one config |
/// | `DELETE /apps/{app_id}/configs/{provider}` | delete one config |
/// | `POST /apps/{app_id}/enable`, `/disable` | switch the app, or one provider (`?provider=`) |
/// | `POST /apps/{app_id}/check` | check the stored credentials |
/// | `GET /apps/{app_id}/configs/{provider}/project-url` | where to see the app's traces |
/// | `POST /apps/{app_id}/test-trace` | send a sample chatflow trace |
pub fn router(state: AdminState) -> axum::Router {
    api::router(state)
}
