//! # ops-config
//!
//! Per-app tracing configuration for `ops`, the platform side of Dify's ops tracing
//! (`OpsTraceManager`, the `trace-config` console API), done better:
//!
//! - [`crypto`]: provider secrets encrypted at rest with AES-256-GCM under per-tenant keys
//!   derived with HKDF from a versioned master key (`OPS_ENCRYPTION_KEY` or
//!   `OPS_ENCRYPTION_KEY_FILE`); the ciphertext is bound to its tenant, app, provider and field.
//! - [`obfuscate`]: Dify's display rule for secrets, and the merge rule for updates that send
//!   an obfuscated secret back (a masked value never becomes a stored secret).
//! - [`store`]: the [`ConfigStore`] trait with SQLite (embedded default) and PostgreSQL
//!   stores sharing one set of migrations. Several providers per app.
//! - [`manager`]: [`OpsTraceManager`]: validated configs from the provider registry, credential
//!   checks before saving, per-app provider instances cached and invalidated on every change,
//!   and a cheap synchronous [`OpsTraceManager::is_enabled_cached`] for the hot path.
//! - [`console`]: Dify's console flow (providers and fields, an app's configs, credential
//!   checks, a test trace of the [`sample`] chatflow), shared by the `ops` CLI and the admin
//!   HTTP API (`ops-admin`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ops_config::Error> {
//! use ops_config::{ConfigUpdate, OpsTraceManager};
//!
//! let manager = OpsTraceManager::from_env().await?;
//! let update = ConfigUpdate::new()
//!     .set("public_key", "pk-lf-...")
//!     .set("secret_key", "sk-lf-...")
//!     .set("host", "https://cloud.langfuse.com");
//! manager.save_config("tenant-1", "app-1", "langfuse", &update, true).await?;
//! manager.set_enabled("tenant-1", "app-1", Some("langfuse"), true).await?;
//! for (key, provider) in manager.providers_for("app-1").await? {
//!     println!("{key}: {}", provider.name());
//! }
//! # Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod console;
pub mod crypto;
pub mod manager;
pub mod obfuscate;
mod router;
pub mod sample;
pub mod store;

pub use crypto::{CryptoError, KeyError, Keyring, MasterKey, SecretContext};
pub use manager::{
    AppProvider, AppProviders, AppStatus, CheckReport, ConfigUpdate, ConfigView, ID_CHARSET,
    ID_MAX_CHARS, OpsTraceManager, ProviderStatus, RotationCause, RotationFailure, RotationReport,
    Saved, validate_app_id, validate_tenant_id,
};
pub use obfuscate::{MaskedWithoutStored, SecretUpdate, is_obfuscated, merge_secret};
pub use store::{AppTracing, ConfigStore, PostgresStore, SqliteStore, StoreError, StoredConfig};

pub use ops_core::provider::{ConfigError, DuplicateProvider, RegistryError, UnknownProvider};

/// Re-exported so [`ConfigStore`] is implemented with the same `async_trait`.
pub use ops_core::async_trait;

/// Anything [`OpsTraceManager`] can fail with. Every message says what is wrong and, where
/// there is one, how to fix it; none contains a secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The master key is missing or malformed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A secret could not be encrypted or decrypted.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// A config value is missing or invalid (the error names the field).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No provider is registered under the name.
    #[error(transparent)]
    UnknownProvider(#[from] UnknownProvider),
    /// Two providers are registered under one name, so none is looked up.
    #[error(transparent)]
    DuplicateProvider(#[from] DuplicateProvider),
    /// An obfuscated secret was sent with nothing stored to keep.
    #[error(transparent)]
    MaskedWithoutStored(#[from] MaskedWithoutStored),
    /// The app has no config for the provider.
    #[error(
        "app {app_id} has no {provider} config; create it with `ops config set --app {app_id} \
         --provider {provider}`"
    )]
    NotConfigured {
        /// The app.
        app_id: String,
        /// The provider.
        provider: String,
    },
    /// The app has no tracing config at all.
    #[error(
        "app {app_id} has no tracing config; create one with `ops config set --app {app_id} \
         --provider <name>` (see `ops providers`)"
    )]
    NoConfig {
        /// The app.
        app_id: String,
    },
    /// Nothing would receive a trace of the app: tracing is off, or the provider asked for is
    /// not active.
    #[error("{reason}; turn it on with `ops enable --app {app_id} --provider <name>`")]
    NotActive {
        /// The app.
        app_id: String,
        /// What is off.
        reason: String,
    },
    /// Tracing cannot be switched on: no provider of the app is enabled.
    #[error(
        "app {app_id} has no enabled provider{configured}; enable one with `ops enable --app \
         {app_id} --provider <name>`"
    )]
    NoProvider {
        /// The app.
        app_id: String,
        /// ` (configured: a, b)` or empty.
        configured: String,
    },
    /// The provider's credentials check failed.
    #[error("{provider}: the credentials check failed: {message}")]
    CheckFailed {
        /// The provider.
        provider: String,
        /// Why, as the platform or the provider said.
        message: String,
    },
    /// The app belongs to another tenant.
    #[error("app {app_id} belongs to another tenant than {tenant_id}; use that app's tenant")]
    WrongTenant {
        /// The app.
        app_id: String,
        /// The tenant that was given.
        tenant_id: String,
    },
    /// An app or tenant id is not usable.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidId {
        /// `app id` or `tenant id`.
        what: &'static str,
        /// The value.
        value: String,
        /// What is wrong, and the characters an id may hold.
        reason: String,
    },
}

impl From<RegistryError> for Error {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Unknown(e) => Error::UnknownProvider(e),
            RegistryError::Duplicate(e) => Error::DuplicateProvider(e),
            // RegistryError is non_exhaustive: a future variant is still an error by name.
            other => Error::Config(ConfigError::Build {
                provider: String::new(),
                message: other.to_string(),
            }),
        }
    }
}

impl From<StoreError> for Error {
    /// A store's [`StoreError::WrongTenant`] is the manager's [`Error::WrongTenant`].
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::WrongTenant { app_id, tenant_id } => {
                Error::WrongTenant { app_id, tenant_id }
            }
            other => Error::Store(other),
        }
    }
}
