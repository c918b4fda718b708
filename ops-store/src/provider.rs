//! The `local` provider: the store as a delivery target.

use std::sync::Arc;
use std::time::Duration;

use ops_core::model::Trace;
use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, ExportOutcome, Provider, ProviderConfig,
    ProviderFactory,
};

use crate::store::{Retention, TraceStore, default_path};

/// The variable naming the store's file (default `ops-traces.db`), read by the `local`
/// provider and by `ops serve`.
pub const DB_ENV: &str = "OPS_TRACE_DB";

/// Keeps each trace in the local store, where `ops serve` shows it. The file is opened on
/// the first export, on the queue's runtime.
#[derive(Debug)]
pub struct LocalStoreProvider {
    path: String,
    retention: Retention,
    store: Option<TraceStore>,
}

impl LocalStoreProvider {
    /// A provider writing to `path` with `retention`.
    pub fn new(path: impl Into<String>, retention: Retention) -> Self {
        LocalStoreProvider {
            path: path.into(),
            retention,
            store: None,
        }
    }

    /// Builds the provider from its config: `path`, and the caps `max_traces`, `max_bytes`
    /// and `max_age_hours` (`0` turns a cap off).
    pub fn from_config(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
        let path = config
            .get("path")
            .map(str::to_owned)
            .unwrap_or_else(|| default_path().display().to_string());
        let defaults = Retention::default();
        let cap = |key: &str, default: Option<u64>| -> Result<Option<u64>, ConfigError> {
            match config.get(key) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(0) => Ok(None),
                    Ok(n) => Ok(Some(n)),
                    Err(_) => Err(config.invalid(
                        key,
                        format!(
                            "{} is not a whole number; write e.g. 1000, or 0 for no cap",
                            ops_core::provider::quote_value(v)
                        ),
                    )),
                },
            }
        };
        let retention = Retention {
            max_traces: cap("max_traces", defaults.max_traces)?,
            max_bytes: cap("max_bytes", defaults.max_bytes)?,
            max_age: cap(
                "max_age_hours",
                defaults.max_age.map(|d| d.as_secs() / 3600),
            )?
            .map(|h| Duration::from_secs(h.saturating_mul(3600))),
        };
        Ok(Box::new(LocalStoreProvider::new(path, retention)))
    }
}

#[async_trait::async_trait]
impl Provider for LocalStoreProvider {
    fn name(&self) -> &str {
        "local"
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        if self.store.is_none() {
            match TraceStore::open(&self.path, self.retention).await {
                Ok(store) => self.store = Some(store),
                Err(e) => return ExportOutcome::retry(ExportError::new("local", e.to_string())),
            }
        }
        let Some(store) = &self.store else {
            return ExportOutcome::retry(ExportError::new("local", "store not open"));
        };
        match store.insert(batch.iter().map(Arc::as_ref)).await {
            Ok(()) => ExportOutcome::Delivered,
            Err(e) => ExportOutcome::retry(ExportError::new("local", e.to_string())),
        }
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        TraceStore::open(&self.path, self.retention)
            .await
            .map(|_| ())
            .map_err(|e| ExportError::new("local", e.to_string()))
    }

    async fn project_url(&self) -> Result<Option<String>, ExportError> {
        Ok(Some(format!("file://{}", self.path)))
    }

    async fn shutdown(&mut self) {
        if let Some(store) = self.store.take() {
            store.close().await;
        }
    }
}

fn env_config() -> Result<Option<ProviderConfig>, ConfigError> {
    let mut config = ProviderConfig::new("local");
    config.set_from_env("path", DB_ENV)?;
    Ok(Some(config))
}

const ENV_VARS: &[EnvVar] = &[EnvVar::sets(DB_ENV, "path")];

inventory::submit! {
    ProviderFactory::new(
        "local",
        "Local trace store (ops serve)",
        &[
            ConfigField::with_default("path", crate::store::DEFAULT_PATH),
            ConfigField::optional("max_traces"),
            ConfigField::optional("max_bytes"),
            ConfigField::optional("max_age_hours"),
        ],
        LocalStoreProvider::from_config,
    )
    .with_env_checked(env_config)
    .with_env_vars(ENV_VARS)
}
