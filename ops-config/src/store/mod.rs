//! Where tracing configs live: the [`ConfigStore`] trait and its two `sqlx` stores, which run
//! the same migrations.
//!
//! - [`SqliteStore`], the embedded default: one file, created with its tables on first use.
//! - [`PostgresStore`], for deployments with several instances sharing one database.
//!
//! [`connect`] picks one from a URL; [`connect_from_env`] reads the URL from
//! `OPS_CONFIG_DATABASE_URL`, else a SQLite file path from `OPS_CONFIG_DB`, else uses
//! `ops-config.db` in the working directory. A URL is a plain file path, a `sqlite:` URL or a
//! `postgres://` (`postgresql://`) URL; anything else is an error, and only a path or a
//! `sqlite:` URL may create a file. [`connect_existing`] never creates anything: it is for
//! commands that only read.
//!
//! Two tables are stored: `ops_app_tracing` (each app's switch and its tenant) and
//! `ops_trace_config` (one row per app and provider: the provider's switch, its other keys in
//! plain JSON, its secret keys as ciphertexts, and a version that grows on every change).
//!
//! # Tenants
//!
//! Every read and write of an app's configs names the tenant, and the SQL checks it: a config
//! is only ever read or changed together with the tenant that owns its app. The only lookup by
//! app id alone is [`ConfigStore::app`], which says who owns an app (to route its traces, and to
//! tell "another tenant's app" from "no such app").

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
    /// The app belongs to another tenant than the one given; nothing was read or written.
    #[error("app {app_id} belongs to another tenant than {tenant_id}; use that app's tenant")]
    WrongTenant {
        /// The app.
        app_id: String,
        /// The tenant that was given.
        tenant_id: String,
    },
    /// The database named for a command that only reads does not exist (nothing was created).
    #[error(
        "config database {url} does not exist, so nothing is configured there yet; create a \
         config with `ops config set`, or check OPS_CONFIG_DATABASE_URL / OPS_CONFIG_DB / \
         --database"
    )]
    NotFound {
        /// The database, as given.
        url: String,
    },
    /// An environment variable naming the database cannot be read.
    #[error(transparent)]
    Env(#[from] ops_core::env::EnvError),
    /// The database named by an environment variable cannot be used: the error names the
    /// variable ([`connect_from_env`]).
    #[error("environment variable {var}: {error}")]
    FromEnv {
        /// The variable the URL or path came from.
        var: &'static str,
        /// What is wrong with the database it names.
        error: Box<StoreError>,
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
/// Every method that reads or writes an app's configs takes the tenant and only touches rows
/// of that tenant (see the module docs).
#[crate::async_trait]
pub trait ConfigStore: Send + Sync + fmt::Debug + 'static {
    /// `sqlite` or `postgres`, for messages.
    fn backend(&self) -> &'static str;

    /// The app's switch and owner, if the app has a row: the one lookup by app id alone.
    async fn app(&self, app_id: &str) -> Result<Option<AppTracing>, StoreError>;

    /// Every app's switch, by app id.
    async fn apps(&self) -> Result<Vec<AppTracing>, StoreError>;

    /// Sets the app's switch, creating its row (owned by `tenant_id`) if needed. An app owned
    /// by another tenant is a [`StoreError::WrongTenant`] and is not changed.
    async fn set_app_enabled(
        &self,
        tenant_id: &str,
        app_id: &str,
        enabled: bool,
    ) -> Result<(), StoreError>;

    /// The app's config for `provider`, if the app is `tenant_id`'s and has one.
    async fn config(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: &str,
    ) -> Result<Option<StoredConfig>, StoreError>;

    /// Every provider config of the app that `tenant_id` owns, by provider name.
    async fn configs(&self, tenant_id: &str, app_id: &str)
    -> Result<Vec<StoredConfig>, StoreError>;

    /// Every provider config of every app (for key rotation).
    async fn all_configs(&self) -> Result<Vec<StoredConfig>, StoreError>;

    /// Writes `config` (owned by `config.tenant_id`) and returns its new version. With
    /// `expected_version` `None` the row must not exist yet (it is created with version 1, and
    /// the app's row with tracing off if missing); otherwise the stored version must equal it,
    /// and becomes one more. A version mismatch is a [`StoreError::Conflict`], an app owned by
    /// another tenant a [`StoreError::WrongTenant`]; either way nothing is written.
    /// `config.version`, `created_at` and `updated_at` are ignored.
    async fn put_config(
        &self,
        config: &StoredConfig,
        expected_version: Option<i64>,
    ) -> Result<i64, StoreError>;

    /// Puts the provider in or out of the provider list of `tenant_id`'s app; `false` if no
    /// such config.
    async fn set_provider_enabled(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: &str,
        enabled: bool,
    ) -> Result<bool, StoreError>;

    /// Deletes the `provider` config of `tenant_id`'s app; `false` if there was none.
    async fn delete_config(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: &str,
    ) -> Result<bool, StoreError>;
}

impl StoreError {
    /// The error itself, without the variable that named the database
    /// ([`StoreError::FromEnv`]): for telling kinds of errors apart.
    pub fn root(&self) -> &StoreError {
        match self {
            StoreError::FromEnv { error, .. } => error.root(),
            other => other,
        }
    }

    /// This error, naming `var` when the database came from that environment variable.
    #[must_use]
    pub fn from_var(self, var: Option<&'static str>) -> StoreError {
        match var {
            Some(var) if !matches!(self, StoreError::FromEnv { .. } | StoreError::Env(_)) => {
                StoreError::FromEnv {
                    var,
                    error: Box::new(self),
                }
            }
            _ => self,
        }
    }
}

/// The config database the environment names ([`database_from_env`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvDatabase {
    /// The URL or file path.
    pub url: String,
    /// The variable it came from; `None` for the default, [`DEFAULT_DB_PATH`].
    pub var: Option<&'static str>,
}

/// The database the environment names: `OPS_CONFIG_DATABASE_URL`, else the SQLite file in
/// `OPS_CONFIG_DB`, else `ops-config.db`, with the variable it came from. A value that is not
/// UTF-8 is an error naming the variable.
pub fn database_from_env() -> Result<EnvDatabase, StoreError> {
    for var in [DATABASE_URL_ENV, DB_PATH_ENV] {
        if let Some(url) = ops_core::env::non_blank(var)? {
            return Ok(EnvDatabase {
                url,
                var: Some(var),
            });
        }
    }
    Ok(EnvDatabase {
        url: DEFAULT_DB_PATH.to_owned(),
        var: None,
    })
}

/// The database URL from the environment ([`database_from_env`], without the variable).
pub fn url_from_env() -> Result<String, StoreError> {
    Ok(database_from_env()?.url)
}

/// What a database URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
    /// A `sqlite:` URL (`sqlite://<path>`, `sqlite:<path>`, `sqlite::memory:`).
    SqliteUrl(String),
    /// A plain file path.
    SqlitePath(String),
}

/// Classifies `url` (see the module docs); anything else is a [`StoreError::BadUrl`].
pub(crate) fn target(url: &str) -> Result<Target, StoreError> {
    let url = url.trim();
    let bad = |reason: &str| StoreError::BadUrl {
        url: format!("{:?}", redact_url(url)),
        reason: reason.to_owned(),
    };
    if url.is_empty() {
        return Err(bad("it is empty"));
    }
    let scheme = url.split_once(':').map(|(s, _)| s).filter(|s| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    });
    match scheme.map(str::to_ascii_lowercase).as_deref() {
        Some("postgres" | "postgresql") => {
            let lower = url.to_ascii_lowercase();
            if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
                Ok(Target::Postgres(url.to_owned()))
            } else {
                Err(bad(
                    "a PostgreSQL URL starts with postgres:// (postgres://user@host:5432/db)",
                ))
            }
        }
        Some("sqlite") => Ok(Target::SqliteUrl(url.to_owned())),
        // A Windows drive letter: `C:\x.db`, `C:/x.db`.
        Some(s) if s.len() == 1 && url[2..].starts_with(['/', '\\']) => {
            Ok(Target::SqlitePath(url.to_owned()))
        }
        Some(_) => Err(bad(
            "unsupported scheme; use postgres://user@host/db, sqlite:<path> or a file path",
        )),
        None if url.contains(':') => Err(bad(
            "it is neither a file path nor a sqlite: or postgres:// URL; write a path that \
             contains `:` as sqlite:<path>",
        )),
        None => Ok(Target::SqlitePath(url.to_owned())),
    }
}

/// Opens the store a URL names, creating and migrating its schema as needed:
/// `postgres://` or `postgresql://` for PostgreSQL; `sqlite://<path>`, `sqlite:<path>`,
/// `sqlite::memory:` or a plain file path for SQLite (only these create a file). Anything else
/// is a [`StoreError::BadUrl`].
pub async fn connect(url: &str) -> Result<Arc<dyn ConfigStore>, StoreError> {
    match target(url)? {
        Target::Postgres(url) => Ok(Arc::new(PostgresStore::connect(&url).await?)),
        Target::SqliteUrl(url) | Target::SqlitePath(url) => {
            Ok(Arc::new(SqliteStore::connect(&url).await?))
        }
    }
}

/// Opens the store a URL names without creating anything: a SQLite file (or directory) that
/// does not exist is a [`StoreError::NotFound`], and nothing is written to the file system.
/// For commands that only read.
pub async fn connect_existing(url: &str) -> Result<Arc<dyn ConfigStore>, StoreError> {
    match target(url)? {
        Target::Postgres(url) => Ok(Arc::new(PostgresStore::connect(&url).await?)),
        Target::SqliteUrl(url) | Target::SqlitePath(url) => {
            Ok(Arc::new(SqliteStore::open_existing(&url).await?))
        }
    }
}

/// Opens the store named by the environment ([`database_from_env`]); an error names the
/// variable the database came from ([`StoreError::FromEnv`]).
pub async fn connect_from_env() -> Result<Arc<dyn ConfigStore>, StoreError> {
    let db = database_from_env()?;
    connect(&db.url).await.map_err(|e| e.from_var(db.var))
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
    fn only_paths_sqlite_and_postgres_urls_are_databases() {
        use Target::*;
        for (url, want) in [
            ("config.db", SqlitePath("config.db".into())),
            ("./a/b.db", SqlitePath("./a/b.db".into())),
            ("sqlite://a.db", SqliteUrl("sqlite://a.db".into())),
            ("sqlite::memory:", SqliteUrl("sqlite::memory:".into())),
            ("postgres://u@h/db", Postgres("postgres://u@h/db".into())),
            (
                "PostgreSQL://u@h/db",
                Postgres("PostgreSQL://u@h/db".into()),
            ),
            ("C:/x.db", SqlitePath("C:/x.db".into())),
        ] {
            assert_eq!(target(url).unwrap(), want, "{url}");
        }
        for (url, why) in [
            ("::::", "neither a file path"),
            (":memory:", "neither a file path"),
            ("postgres:/typo@127.0.0.1/test", "starts with postgres://"),
            ("postgresql:u@h", "starts with postgres://"),
            ("mysql://h/db", "unsupported scheme"),
            ("file:x.db", "unsupported scheme"),
            ("   ", "empty"),
        ] {
            let err = target(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

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
