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
    ConfigError, ConfigField, ExportError, ExportOutcome, Provider, ProviderConfig, ProviderFactory,
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
                reason: format!("cannot open {path:?} for appending: {e}"),
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

fn env_config(name: &str) -> ProviderConfig {
    let config = ProviderConfig::new(name);
    // With both `console` and `file` selected, only `file` writes the file.
    let file_selected = std::env::var(crate::PROVIDER_ENV)
        .is_ok_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("file")));
    if name == "console" && file_selected {
        return config;
    }
    match std::env::var(TRACE_FILE_ENV) {
        Ok(path) if !path.trim().is_empty() => config.with("file", path),
        _ => config,
    }
}

inventory::submit! {
    ProviderFactory::new("console", "Console (stderr)", &[ConfigField::optional("file")], build_console)
        .with_env(|| Some(env_config("console")))
}

inventory::submit! {
    ProviderFactory::new("file", "JSON lines file", &[ConfigField::with_default("file", "traces.jsonl")], build_file)
        .with_env(|| Some(env_config("file")))
}
