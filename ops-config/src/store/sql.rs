//! The SQLite and PostgreSQL stores: the same SQL (portable, `$n` placeholders) and the same
//! embedded migrations, run through `sqlx`'s migrator.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures_core::future::BoxFuture;
use sqlx::Row as _;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{AppTracing, ConfigStore, StoreError, StoredConfig, millis_to_time, redact_url};

/// The migrations, embedded. Versions are timestamps so they do not collide with an
/// application's own `sqlx` migrations in a shared database.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    20_260_101_000_001,
    "ops-config init",
    include_str!("../../migrations/0001_init.sql"),
)];

#[derive(Debug)]
struct Embedded;

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

async fn migrator(backend: &'static str) -> Result<Migrator, StoreError> {
    let mut migrator = Migrator::new(Embedded)
        .await
        .map_err(|e| StoreError::Migrate {
            backend,
            message: e.to_string(),
        })?;
    // Other applications' migrations may share the database.
    migrator.set_ignore_missing(true);
    Ok(migrator)
}

fn db_error(backend: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| StoreError::Database {
        backend,
        message: e.to_string(),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn to_json(config: &StoredConfig, map: &BTreeMap<String, String>) -> Result<String, StoreError> {
    serde_json::to_string(map).map_err(|e| StoreError::Corrupt {
        app_id: config.app_id.clone(),
        provider: config.provider.clone(),
        reason: e.to_string(),
    })
}

fn from_json(
    app_id: &str,
    provider: &str,
    column: &str,
    text: &str,
) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        app_id: app_id.to_owned(),
        provider: provider.to_owned(),
        reason: format!("column {column} is not a JSON object of strings: {e}"),
    })
}

const APP_COLUMNS: &str = "app_id, tenant_id, enabled, created_at, updated_at";
const CONFIG_COLUMNS: &str = "app_id, provider, tenant_id, enabled, plain_config, sealed_config, \
                              version, created_at, updated_at";

/// Implements [`ConfigStore`] for a store struct with a `pool` field of the given row type:
/// both databases run exactly the same statements.
macro_rules! impl_store {
    ($store:ty, $row:ty, $backend:literal) => {
        impl $store {
            fn app_row(row: &$row) -> Result<AppTracing, sqlx::Error> {
                Ok(AppTracing {
                    app_id: row.try_get("app_id")?,
                    tenant_id: row.try_get("tenant_id")?,
                    enabled: row.try_get("enabled")?,
                    created_at: millis_to_time(row.try_get("created_at")?),
                    updated_at: millis_to_time(row.try_get("updated_at")?),
                })
            }

            fn config_row(row: &$row) -> Result<StoredConfig, StoreError> {
                let e = db_error($backend);
                let app_id: String = row.try_get("app_id").map_err(&e)?;
                let provider: String = row.try_get("provider").map_err(&e)?;
                let plain: String = row.try_get("plain_config").map_err(&e)?;
                let sealed: String = row.try_get("sealed_config").map_err(&e)?;
                Ok(StoredConfig {
                    plain: from_json(&app_id, &provider, "plain_config", &plain)?,
                    sealed: from_json(&app_id, &provider, "sealed_config", &sealed)?,
                    tenant_id: row.try_get("tenant_id").map_err(&e)?,
                    enabled: row.try_get("enabled").map_err(&e)?,
                    version: row.try_get("version").map_err(&e)?,
                    created_at: millis_to_time(row.try_get("created_at").map_err(&e)?),
                    updated_at: millis_to_time(row.try_get("updated_at").map_err(&e)?),
                    app_id,
                    provider,
                })
            }
        }

        #[crate::async_trait]
        impl ConfigStore for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn app(&self, app_id: &str) -> Result<Option<AppTracing>, StoreError> {
                let sql = format!("SELECT {APP_COLUMNS} FROM ops_app_tracing WHERE app_id = $1");
                sqlx::query(&sql)
                    .bind(app_id)
                    .fetch_optional(&self.pool)
                    .await
                    .and_then(|row| row.as_ref().map(Self::app_row).transpose())
                    .map_err(db_error($backend))
            }

            async fn apps(&self) -> Result<Vec<AppTracing>, StoreError> {
                let sql = format!("SELECT {APP_COLUMNS} FROM ops_app_tracing ORDER BY app_id");
                sqlx::query(&sql)
                    .fetch_all(&self.pool)
                    .await
                    .and_then(|rows| rows.iter().map(Self::app_row).collect())
                    .map_err(db_error($backend))
            }

            async fn set_app_enabled(
                &self,
                tenant_id: &str,
                app_id: &str,
                enabled: bool,
            ) -> Result<(), StoreError> {
                let now = now_ms();
                // An existing row is only updated when its tenant is the one given.
                let done = sqlx::query(
                    "INSERT INTO ops_app_tracing (app_id, tenant_id, enabled, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id) DO UPDATE \
                     SET enabled = excluded.enabled, updated_at = excluded.updated_at \
                     WHERE ops_app_tracing.tenant_id = excluded.tenant_id",
                )
                .bind(app_id)
                .bind(tenant_id)
                .bind(enabled)
                .bind(now)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(db_error($backend))?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::WrongTenant {
                        app_id: app_id.to_owned(),
                        tenant_id: tenant_id.to_owned(),
                    });
                }
                Ok(())
            }

            async fn config(
                &self,
                tenant_id: &str,
                app_id: &str,
                provider: &str,
            ) -> Result<Option<StoredConfig>, StoreError> {
                let sql = format!(
                    "SELECT {CONFIG_COLUMNS} FROM ops_trace_config WHERE tenant_id = $1 AND \
                     app_id = $2 AND provider = $3"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant_id)
                    .bind(app_id)
                    .bind(provider)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error($backend))?;
                row.as_ref().map(Self::config_row).transpose()
            }

            async fn configs(
                &self,
                tenant_id: &str,
                app_id: &str,
            ) -> Result<Vec<StoredConfig>, StoreError> {
                let sql = format!(
                    "SELECT {CONFIG_COLUMNS} FROM ops_trace_config WHERE tenant_id = $1 AND \
                     app_id = $2 ORDER BY provider"
                );
                let rows = sqlx::query(&sql)
                    .bind(tenant_id)
                    .bind(app_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error($backend))?;
                rows.iter().map(Self::config_row).collect()
            }

            async fn all_configs(&self) -> Result<Vec<StoredConfig>, StoreError> {
                let sql = format!(
                    "SELECT {CONFIG_COLUMNS} FROM ops_trace_config ORDER BY app_id, provider"
                );
                let rows = sqlx::query(&sql)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error($backend))?;
                rows.iter().map(Self::config_row).collect()
            }

            async fn put_config(
                &self,
                config: &StoredConfig,
                expected_version: Option<i64>,
            ) -> Result<i64, StoreError> {
                let e = db_error($backend);
                let plain = to_json(config, &config.plain)?;
                let sealed = to_json(config, &config.sealed)?;
                let now = now_ms();
                let mut tx = self.pool.begin().await.map_err(&e)?;
                sqlx::query(
                    "INSERT INTO ops_app_tracing (app_id, tenant_id, enabled, created_at, \
                     updated_at) VALUES ($1, $2, FALSE, $3, $4) ON CONFLICT (app_id) DO NOTHING",
                )
                .bind(&config.app_id)
                .bind(&config.tenant_id)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
                let owner: String =
                    sqlx::query_scalar("SELECT tenant_id FROM ops_app_tracing WHERE app_id = $1")
                        .bind(&config.app_id)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(&e)?;
                if owner != config.tenant_id {
                    tx.rollback().await.map_err(&e)?;
                    return Err(StoreError::WrongTenant {
                        app_id: config.app_id.clone(),
                        tenant_id: config.tenant_id.clone(),
                    });
                }
                let (written, version) = match expected_version {
                    None => {
                        let done = sqlx::query(
                            "INSERT INTO ops_trace_config (app_id, provider, tenant_id, enabled, \
                             plain_config, sealed_config, version, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8) \
                             ON CONFLICT (app_id, provider) DO NOTHING",
                        )
                        .bind(&config.app_id)
                        .bind(&config.provider)
                        .bind(&config.tenant_id)
                        .bind(config.enabled)
                        .bind(&plain)
                        .bind(&sealed)
                        .bind(now)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(&e)?;
                        (done.rows_affected(), 1)
                    }
                    Some(expected) => {
                        let done = sqlx::query(
                            "UPDATE ops_trace_config SET enabled = $2, \
                             plain_config = $3, sealed_config = $4, version = $5, \
                             updated_at = $6 \
                             WHERE app_id = $7 AND provider = $8 AND version = $9 \
                             AND tenant_id = $1",
                        )
                        .bind(&config.tenant_id)
                        .bind(config.enabled)
                        .bind(&plain)
                        .bind(&sealed)
                        .bind(expected + 1)
                        .bind(now)
                        .bind(&config.app_id)
                        .bind(&config.provider)
                        .bind(expected)
                        .execute(&mut *tx)
                        .await
                        .map_err(&e)?;
                        (done.rows_affected(), expected + 1)
                    }
                };
                if written != 1 {
                    tx.rollback().await.map_err(&e)?;
                    return Err(StoreError::Conflict {
                        app_id: config.app_id.clone(),
                        provider: config.provider.clone(),
                        expected: expected_version,
                    });
                }
                tx.commit().await.map_err(&e)?;
                Ok(version)
            }

            async fn set_provider_enabled(
                &self,
                tenant_id: &str,
                app_id: &str,
                provider: &str,
                enabled: bool,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE ops_trace_config SET enabled = $1, updated_at = $2 \
                     WHERE tenant_id = $3 AND app_id = $4 AND provider = $5",
                )
                .bind(enabled)
                .bind(now_ms())
                .bind(tenant_id)
                .bind(app_id)
                .bind(provider)
                .execute(&self.pool)
                .await
                .map_err(db_error($backend))?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_config(
                &self,
                tenant_id: &str,
                app_id: &str,
                provider: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM ops_trace_config WHERE tenant_id = $1 AND app_id = $2 AND \
                     provider = $3",
                )
                .bind(tenant_id)
                .bind(app_id)
                .bind(provider)
                .execute(&self.pool)
                .await
                .map_err(db_error($backend))?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

fn create_parent(path: &Path, shown: &str) -> Result<(), StoreError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => std::fs::create_dir_all(parent).map_err(|e| StoreError::BadUrl {
            url: shown.to_owned(),
            reason: format!("cannot create directory {}: {e}", parent.display()),
        }),
        None => Ok(()),
    }
}

/// The file path of a `sqlite:` URL (`sqlite://a/b.db?mode=rwc` is `a/b.db`).
fn sqlite_url_path(url: &str) -> &str {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    path.split('?').next().unwrap_or_default()
}

/// The embedded SQLite store: one file, created with its tables on first use.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its parent directory if needed) the SQLite file at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        create_parent(path, &path.display().to_string())?;
        Self::with_options(
            SqliteConnectOptions::new().filename(path),
            false,
            &path.display().to_string(),
        )
        .await
    }

    /// Opens `sqlite://<path>`, `sqlite:<path>`, `sqlite::memory:` or a plain file path,
    /// creating the file and its directory if needed.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        if !url.starts_with("sqlite:") {
            return Self::open(url).await;
        }
        let path = sqlite_url_path(url);
        if !memory && !path.is_empty() {
            create_parent(Path::new(path), url)?;
        }
        let options = SqliteConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        Self::with_options(options, memory, url).await
    }

    /// Opens an existing database (a plain path or a `sqlite:` URL) without creating the file
    /// or its directory: a missing file is a [`StoreError::NotFound`]. `sqlite::memory:` is
    /// always there.
    pub async fn open_existing(url: &str) -> Result<Self, StoreError> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let (path, options) = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
            (sqlite_url_path(url), options)
        } else {
            (url, SqliteConnectOptions::new().filename(url))
        };
        if !memory && !Path::new(path).is_file() {
            return Err(StoreError::NotFound {
                url: url.to_owned(),
            });
        }
        Self::with_options_create(options, memory, url, false).await
    }

    async fn with_options(
        options: SqliteConnectOptions,
        memory: bool,
        name: &str,
    ) -> Result<Self, StoreError> {
        Self::with_options_create(options, memory, name, true).await
    }

    async fn with_options_create(
        options: SqliteConnectOptions,
        memory: bool,
        name: &str,
        create: bool,
    ) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(create)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let options = if memory {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        // An in-memory database exists per connection: keep exactly one, forever.
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(4)
        }
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Database {
            backend: "sqlite",
            message: format!("cannot open {name}: {e}"),
        })?;
        migrator("sqlite")
            .await?
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate {
                backend: "sqlite",
                message: e.to_string(),
            })?;
        Ok(Self { pool })
    }

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// The PostgreSQL store, for several instances sharing one database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:5432/db`) and migrates the schema.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(Self::options(url)?).await
    }

    /// Connects to `url` with every table in `schema` (created if missing): for sharing a
    /// database with other applications, or isolating test runs. `schema` must be letters,
    /// digits and `_`.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        if schema.is_empty()
            || !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || schema.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(StoreError::BadUrl {
                url: redact_url(url),
                reason: format!(
                    "schema {schema:?} must be letters, digits and `_`, not starting with a digit"
                ),
            });
        }
        let options = Self::options(url)?;
        let mut admin = sqlx::ConnectOptions::connect(&options)
            .await
            .map_err(|e| Self::connect_error(url, e))?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&mut admin)
            .await
            .map_err(db_error("postgres"))?;
        let _ = sqlx::Connection::close(admin).await;
        Self::connect_with(options.options([("search_path", schema)])).await
    }

    fn options(url: &str) -> Result<PgConnectOptions, StoreError> {
        PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
            url: redact_url(url),
            reason: e.to_string(),
        })
    }

    fn connect_error(url: &str, e: sqlx::Error) -> StoreError {
        StoreError::Database {
            backend: "postgres",
            message: format!("cannot connect to {}: {e}", redact_url(url)),
        }
    }

    async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let shown = format!(
            "postgres://{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        // One direct attempt first: the pool retries a refused connection until its acquire
        // timeout, which would make a wrong URL look like a hang.
        let probe = sqlx::ConnectOptions::connect(&options)
            .await
            .map_err(|e| Self::connect_error(&shown, e))?;
        let _ = sqlx::Connection::close(probe).await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| Self::connect_error(&shown, e))?;
        migrator("postgres")
            .await?
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate {
                backend: "postgres",
                message: e.to_string(),
            })?;
        Ok(Self { pool })
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl_store!(SqliteStore, sqlx::sqlite::SqliteRow, "sqlite");
impl_store!(PostgresStore, sqlx::postgres::PgRow, "postgres");
