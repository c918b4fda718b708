//! The embedded default provider: needs no account, writes traces locally.
//!
//! - `console` prints each trace as a tree on stderr (and also writes JSON lines when
//!   `OPS_TRACE_FILE` is set).
//! - `file` writes one JSON object per trace to a file (`OPS_TRACE_FILE`, default
//!   `traces.jsonl`).
//!
//! Select them with `OPS_TRACE_PROVIDER=console` or `OPS_TRACE_PROVIDER=file`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::sync::Arc;

use crate::model::{RenderOptions, Trace};
use crate::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, ExportOutcome, Provider, ProviderConfig,
    ProviderFactory,
};

/// The file the local providers write JSON lines to.
pub const TRACE_FILE_ENV: &str = "OPS_TRACE_FILE";

/// Writes traces as a tree to stderr and/or as JSON lines to a file.
#[derive(Debug)]
pub struct LocalProvider {
    name: &'static str,
    console: bool,
    file: Option<(String, BufWriter<File>)>,
}

impl LocalProvider {
    /// Prints each trace as a tree on stderr.
    pub fn console() -> Self {
        Self {
            name: "console",
            console: true,
            file: None,
        }
    }

    /// Appends each trace as one JSON line to `path`, creating it if needed.
    pub fn file(path: impl Into<String>) -> Result<Self, ConfigError> {
        let mut provider = Self {
            name: "file",
            console: false,
            file: None,
        };
        provider.open(path.into())?;
        Ok(provider)
    }

    fn open(&mut self, path: String) -> Result<(), ConfigError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| ConfigError::Invalid {
                provider: self.name.into(),
                field: "file".into(),
                reason: format!(
                    "cannot open {} for appending: {e}",
                    crate::provider::quote_value(&path)
                ),
            })?;
        self.file = Some((path, BufWriter::new(file)));
        Ok(())
    }

    fn write(&mut self, batch: &[Arc<Trace>]) -> std::io::Result<()> {
        if self.console {
            let mut err = std::io::stderr().lock();
            for trace in batch {
                err.write_all(trace.render_tree(RenderOptions::default()).as_bytes())?;
            }
        }
        if let Some((_, file)) = &mut self.file {
            for trace in batch {
                serde_json::to_writer(&mut *file, trace.as_ref())?;
                file.write_all(b"\n")?;
            }
            file.flush()?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &str {
        self.name
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        match self.write(batch) {
            Ok(()) => ExportOutcome::Delivered,
            Err(e) => {
                ExportOutcome::retry(ExportError::new(self.name, format!("write failed: {e}")))
            }
        }
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }

    async fn project_url(&self) -> Result<Option<String>, ExportError> {
        Ok(self.file.as_ref().map(|(path, _)| format!("file://{path}")))
    }

    async fn shutdown(&mut self) {
        if let Some((_, file)) = &mut self.file {
            let _ = file.flush();
        }
    }
}

fn build_console(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    let mut provider = LocalProvider::console();
    if let Some(path) = config.get("file") {
        provider.open(path.to_owned())?;
    }
    Ok(Box::new(provider))
}

fn build_file(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(LocalProvider::file(config.require("file")?)?))
}

fn env_config(name: &str) -> Result<Option<ProviderConfig>, ConfigError> {
    let mut config = ProviderConfig::new(name);
    // With both `console` and `file` selected, only `file` writes the file.
    let file_selected = crate::env::var(crate::PROVIDER_ENV)
        .map_err(|e| config.env_error(e))?
        .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("file")));
    if name == "console" && file_selected {
        return Ok(Some(config));
    }
    // A path is used as given (not trimmed); only a blank one counts as unset.
    if let Some(path) = crate::env::var(TRACE_FILE_ENV).map_err(|e| config.env_error(e))?
        && !path.trim().is_empty()
    {
        config.set_env("file", path, TRACE_FILE_ENV);
    }
    Ok(Some(config))
}

/// The variables the local providers read.
const ENV_VARS: &[EnvVar] = &[
    EnvVar::sets(TRACE_FILE_ENV, "file"),
    EnvVar::other(crate::PROVIDER_ENV),
];

inventory::submit! {
    ProviderFactory::new("console", "Console (stderr)", &[ConfigField::optional("file")], build_console)
        .with_env_checked(|| env_config("console"))
        .with_env_vars(ENV_VARS)
}

inventory::submit! {
    ProviderFactory::new("file", "JSON lines file", &[ConfigField::with_default("file", "traces.jsonl")], build_file)
        .with_env_checked(|| env_config("file"))
        .with_env_vars(ENV_VARS)
}
