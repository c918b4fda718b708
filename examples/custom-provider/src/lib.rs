//! # ops-custom-provider-example
//!
//! A provider that lives in its own crate and registers itself with `ops` just by being
//! linked: no call to make, no list to edit. Copy this crate to write a provider for a
//! platform `ops` does not ship.
//!
//! The provider, `summary`, appends one line per trace to a file:
//!
//! ```text
//! 0197...c2 message "message" observations=7 tokens=760 cost=0.0001806 USD errors=0
//! ```
//!
//! Select it like any other provider, by name:
//!
//! ```
//! use ops_custom_provider_example as _; // linking the crate is what registers it
//! use ops_core::provider::{self, ProviderConfig};
//!
//! let path = std::env::temp_dir().join(format!("summary-doc-{}.log", std::process::id()));
//! let factory = provider::find("summary")?;
//! let summary = factory.build(ProviderConfig::new("summary").with("path", path.display().to_string()))?;
//! let queue = ops_core::TraceQueueManager::builder().boxed_provider(summary).build()?;
//! # drop(queue); let _ = std::fs::remove_file(path);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! or from the environment: `OPS_TRACE_PROVIDER=summary OPS_SUMMARY_FILE=summary.log`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ops_core::Trace;
use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, ExportOutcome, Provider, ProviderConfig,
    ProviderFactory,
};

/// The name apps select the provider by.
pub const NAME: &str = "summary";

/// The environment variable [`ops_core::init`] reads the file path from when
/// `OPS_TRACE_PROVIDER` names `summary`.
pub const FILE_ENV: &str = "OPS_SUMMARY_FILE";

/// Appends a one-line summary of each trace to a file.
#[derive(Debug)]
pub struct SummaryProvider {
    path: PathBuf,
    file: BufWriter<File>,
}

impl SummaryProvider {
    /// Opens `path` for appending, creating the file (not its directory) if needed.
    pub fn open(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file: BufWriter::new(file),
        })
    }

    /// The file the summaries go to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The line written for `trace`: its id, kind, name, number of observations, total tokens,
/// total cost and the number of observations at level ERROR.
pub fn summary_line(trace: &Trace) -> String {
    let cost: f64 = trace
        .observations
        .iter()
        .filter_map(|o| o.usage.as_ref()?.total_cost())
        .sum();
    let currency = trace
        .observations
        .iter()
        .find_map(|o| o.usage.as_ref()?.currency.as_deref())
        .unwrap_or("USD");
    let tokens: u64 = trace
        .observations
        .iter()
        .filter(|o| o.kind == ops_core::ObservationKind::Generation)
        .filter_map(|o| o.usage.as_ref()?.total())
        .sum();
    let errors = trace
        .observations
        .iter()
        .filter(|o| o.level == ops_core::Level::Error)
        .count();
    format!(
        "{} {} {:?} observations={} tokens={tokens} cost={cost} {currency} errors={errors}",
        trace.id,
        trace.kind,
        trace.name,
        trace.observations.len(),
    )
}

#[ops_core::async_trait]
impl Provider for SummaryProvider {
    fn name(&self) -> &str {
        NAME
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        let written = batch
            .iter()
            .try_for_each(|trace| writeln!(self.file, "{}", summary_line(trace)))
            .and_then(|()| self.file.flush());
        match written {
            Ok(()) => ExportOutcome::Delivered,
            Err(e) => ExportOutcome::retry(ExportError::new(
                NAME,
                format!("cannot write to {}: {e}", self.path.display()),
            )),
        }
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }

    async fn project_url(&self) -> Result<Option<String>, ExportError> {
        Ok(Some(format!("file://{}", self.path.display())))
    }

    async fn shutdown(&mut self) {
        let _ = self.file.flush();
    }
}

/// Checks `path` before the provider is built, so a bad config fails when the app starts and
/// the error names the field.
fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    config.apply_field_rules()?;
    let path = Path::new(config.require("path")?);
    if path.is_dir() {
        return Err(config.invalid(
            "path",
            format!("{} is a directory; give a file inside it", path.display()),
        ));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir.filter(|d| !d.is_dir()) {
        return Err(config.invalid(
            "path",
            format!(
                "directory {} does not exist; create it or pick another file",
                dir.display()
            ),
        ));
    }
    Ok(())
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    let path = config.require("path")?;
    let provider = SummaryProvider::open(path)
        .map_err(|e| config.invalid("path", format!("cannot open {path:?} for appending: {e}")))?;
    Ok(Box::new(provider))
}

/// Reads `OPS_SUMMARY_FILE` through `ops_core::env`, so a value that is not UTF-8 is an error
/// naming the variable (not "unset"), and records where `path` came from, so that an error
/// about `path` names the variable too.
fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let mut config = ProviderConfig::new(NAME);
    let path = ops_core::env::var(FILE_ENV).map_err(|e| config.env_error(e))?;
    match path.filter(|p| !p.trim().is_empty()) {
        Some(path) => {
            config.set_env("path", path, FILE_ENV);
            Ok(Some(config))
        }
        None => Ok(None),
    }
}

ops_core::inventory::submit! {
    ProviderFactory::new(NAME, "Trace summary file", &[ConfigField::plain("path")], build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(&[EnvVar::sets(FILE_ENV, "path")])
}
