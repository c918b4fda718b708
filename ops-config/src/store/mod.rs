//! Where tracing configs live: the [`ConfigStore`] trait and its two `sqlx` stores, which run
//! the same migrations.
//!
//! - [`SqliteStore`], the embedded default: one file, created with its tables on first use.
//! - [`PostgresStore`], for deployments with several instances sharing one database.
//!
//! [`connect`] picks one from a URL; [`connect_from_env`] reads the URL from
//! `OPS_CONFIG_DATABASE_URL`, else a SQLite file path from `OPS_CONFIG_DB`, else uses
//! `ops-config.db` in the working directory.
//!
//! Two tables are stored: `ops_app_tracing` (each app's switch and its tenant) and
//! `ops_trace_config` (one row per app and provider: the provider's switch, its other keys in
//! plain JSON, its secret keys as ciphertexts, and a version that grows on every change).

mod sql;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use sql::{PostgresStore, SqliteStore};

/// The environment variable holding the database URL (`sqlite://path`, `postgres://...`).
pub const DATABASE_URL_ENV: &str = "OPS_CONFIG_DATABASE_URL";
/// The environment variable holding a SQLite file path (used when no URL is set).
pub const DB_PATH_ENV: &str = "OPS_CONFIG_DB";
/// The SQLite file used when neither variable is set.
pub const DEFAULT_DB_PATH: &str = "ops-config.db";

/// An app's tracing switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTracing {
    /// The app.
    pub app_id: String,
    /// The tenant that owns the app; its key encrypts the app's secrets.
    pub tenant_id: String,
    /// Whether tracing is on for the app.
    pub enabled: bool,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One provider's config for one app, as stored: secrets are ciphertexts.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredConfig {
    /// The app.
    pub app_id: String,
    /// The tenant that owns the app.
    pub tenant_id: String,
    /// The provider's registry name.
    pub provider: String,
    /// Whether this provider is in the app's provider list.
    pub enabled: bool,
    /// The other (non-secret) keys.
    pub plain: BTreeMap<String, String>,
    /// The secret keys, each sealed by [`crate::crypto::Keyring::seal`].
    pub sealed: BTreeMap<String, String>,
    /// Grows by one on every write; 1 for a new row.
    pub version: i64,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for StoredConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredConfig")
            .field("app_id", &self.app_id)
            .field("tenant_id", &self.tenant_id)
            .field("provider", &self.provider)
            .field("enabled", &self.enabled)
            .field("plain", &self.plain)
            .field("sealed_keys", &self.sealed.keys().collect::<Vec<_>>())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What went wrong in a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is not usable.
    #[error("config database URL {url}: {reason}")]
    BadUrl {
        /// The URL with any password removed.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The database failed or could not be reached.
    #[error("config database ({backend}): {message}")]
    Database {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The driver's message.
        message: String,
    },
    /// The schema could not be created or upgraded.
    #[error("config database ({backend}): migrating the schema failed: {message}")]
    Migrate {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The migrator's message.
        message: String,
    },
    /// Someone else changed or created the row since it was read.
    #[error(
        "the {provider} config of app {app_id} was changed concurrently (expected version \
         {expected:?}); reload it and apply the change again"
    )]
    Conflict {
        /// The app.
        app_id: String,
        /// The provider.
        provider: String,
        /// The version the write expected (`None`: expected no row).
        expected: Option<i64>,
    },
    /// A stored row cannot be read back.
    #[error("the stored {provider} config of app {app_id} is corrupt: {reason}")]
    Corrupt {
        /// The app.
        app_id: String,
        /// The provider.
        provider: String,
        /// What is wrong.
        reason: String,
    },
}

/// Storage of apps' tracing switches and provider configs.
///
/// Implementations keep secrets exactly as given (already sealed) and never decrypt them.
#[crate::async_trait]
pub trait ConfigStore: Send + Sync + fmt::Debug + 'static {
    /// `sqlite` or `postgres`, for messages.
    fn backend(&self) -> &'static str;

    /// The app's switch, if the app has one.
    async fn app(&self, app_id: &str) -> Result<Option<AppTracing>, StoreError>;

    /// Every app's switch, by app id.
    async fn apps(&self) -> Result<Vec<AppTracing>, StoreError>;

    /// Sets the app's switch, creating its row (owned by `tenant_id`) if needed. The tenant of
    /// an existing row is not changed.
    async fn set_app_enabled(
        &self,
        tenant_id: &str,
        app_id: &str,
        enabled: bool,
    ) -> Result<(), StoreError>;

    /// The app's config for `provider`.
    async fn config(
        &self,
        app_id: &str,
        provider: &str,
    ) -> Result<Option<StoredConfig>, StoreError>;

    /// Every provider config of the app, by provider name.
    async fn configs(&self, app_id: &str) -> Result<Vec<StoredConfig>, StoreError>;

    /// Every provider config of every app (for key rotation).
    async fn all_configs(&self) -> Result<Vec<StoredConfig>, StoreError>;

    /// Writes `config` and returns its new version. With `expected_version` `None` the row
    /// must not exist yet (it is created with version 1, and the app's row with tracing off if
    /// missing); otherwise the stored version must equal it, and becomes one more. Anything
    /// else is a [`StoreError::Conflict`] and nothing is written. `config.version`,
    /// `created_at` and `updated_at` are ignored.
    async fn put_config(
        &self,
        config: &StoredConfig,
        expected_version: Option<i64>,
    ) -> Result<i64, StoreError>;

    /// Puts the provider in or out of the app's provider list; `false` if no such config.
    async fn set_provider_enabled(
        &self,
        app_id: &str,
        provider: &str,
        enabled: bool,
    ) -> Result<bool, StoreError>;

    /// Deletes the app's config for `provider`; `false` if there was none.
    async fn delete_config(&self, app_id: &str, provider: &str) -> Result<bool, StoreError>;
}

/// The database URL from the environment: `OPS_CONFIG_DATABASE_URL`, else the SQLite file in
/// `OPS_CONFIG_DB`, else `ops-config.db`.
pub fn url_from_env() -> String {
    if let Some(url) = std::env::var(DATABASE_URL_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return url.trim().to_owned();
    }
    std::env::var(DB_PATH_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_DB_PATH.to_owned())
}

/// Opens the store a URL names, creating and migrating its schema as needed:
/// `postgres://` or `postgresql://` for PostgreSQL; `sqlite://<path>`, `sqlite:<path>`,
/// `sqlite::memory:` or a plain file path for SQLite.
pub async fn connect(url: &str) -> Result<Arc<dyn ConfigStore>, StoreError> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else if url.contains("://") && !url.starts_with("sqlite:") {
        Err(StoreError::BadUrl {
            url: redact_url(url),
            reason: "unsupported scheme; use postgres://..., sqlite://<path> or a file path".into(),
        })
    } else {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    }
}

/// Opens the store named by the environment ([`url_from_env`]).
pub async fn connect_from_env() -> Result<Arc<dyn ConfigStore>, StoreError> {
    connect(&url_from_env()).await
}

/// `url` with the password, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

pub(crate) fn millis_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:hunter2@db:5432/x?sslmode=disable"),
            "postgres://u:***@db:5432/x?sslmode=disable"
        );
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact_url("sqlite://a/b.db"), "sqlite://a/b.db");
        assert_eq!(redact_url("plain/path.db"), "plain/path.db");
    }
}
