//! Dify's console flow over [`OpsTraceManager`]: the operations the `ops` CLI and the admin
//! HTTP API (`ops-admin`) both run, so both give the same answers and the same errors.
//!
//! - [`providers`]: the registered providers and their fields;
//! - [`app_configs`]: an app's tracing state and configs, secrets obfuscated;
//! - [`check`]: the credentials check of an app's configured providers;
//! - [`send_test`]: a sample chatflow trace through the app's active providers.
//!
//! Saving, deleting and switching are [`OpsTraceManager::save_config`],
//! [`OpsTraceManager::delete_config`] and [`OpsTraceManager::set_enabled`] themselves.

use std::sync::Arc;
use std::time::Duration;

use ops_core::{ExportOutcome, Provider};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{AppStatus, CheckReport, ConfigView, Error, OpsTraceManager};

/// One config field of a provider, as [`providers`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldInfo {
    /// The key, e.g. `secret_key`.
    pub name: &'static str,
    /// Whether it is a secret (write-only, shown obfuscated).
    pub secret: bool,
    /// Whether a config needs it.
    pub required: bool,
    /// The value used when it is left out.
    pub default: Option<&'static str>,
}

/// A registered provider and its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderInfo {
    /// The registry name, e.g. `langfuse`.
    pub name: &'static str,
    /// The name to show, e.g. `Langfuse`.
    pub display_name: &'static str,
    /// Its config keys.
    pub fields: Vec<FieldInfo>,
}

/// The registered providers and their fields, in registry order.
pub fn providers() -> Vec<ProviderInfo> {
    ops_core::provider::registered()
        .iter()
        .map(|f| ProviderInfo {
            name: f.name,
            display_name: f.display_name,
            fields: f
                .fields
                .iter()
                .map(|field| FieldInfo {
                    name: field.name,
                    secret: field.secret,
                    required: field.required,
                    default: field.default,
                })
                .collect(),
        })
        .collect()
}

impl ConfigView {
    /// The view as JSON: `provider`, `enabled`, `version`, `updated_at` (RFC 3339),
    /// `values` (secrets obfuscated), `secret_keys` and `key_versions`.
    pub fn to_json(&self) -> Value {
        json!({
            "provider": self.provider,
            "enabled": self.enabled,
            "version": self.version,
            "updated_at": self.updated_at.to_rfc3339(),
            "values": self.values,
            "secret_keys": self.secret_keys,
            "key_versions": self.key_versions,
        })
    }
}

/// An app's tracing state and its provider configs, secrets obfuscated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfigs {
    /// The switch and the providers.
    pub status: AppStatus,
    /// One view per config asked for.
    pub views: Vec<ConfigView>,
}

impl AppConfigs {
    /// As JSON: `app_id`, `tenant_id`, `enabled`, `active_providers` and `configs` (each as
    /// [`ConfigView::to_json`]).
    pub fn to_json(&self) -> Value {
        json!({
            "app_id": self.status.app_id,
            "tenant_id": self.status.tenant_id,
            "enabled": self.status.enabled,
            "active_providers": self.status.active_providers(),
            "configs": self.views.iter().map(ConfigView::to_json).collect::<Vec<_>>(),
        })
    }
}

/// The state of `tenant_id`'s app and its `provider` config, or every config when `provider`
/// is `None`. An app with no config is [`Error::NoConfig`]; a provider it does not have is
/// [`Error::NotConfigured`]; another tenant's app is [`Error::WrongTenant`].
pub async fn app_configs(
    manager: &OpsTraceManager,
    tenant_id: &str,
    app_id: &str,
    provider: Option<&str>,
) -> Result<AppConfigs, Error> {
    let wanted = provider.map(ops_core::provider::find).transpose()?;
    let status = manager.app_status(tenant_id, app_id).await?;
    let names = configured(&status, wanted.map(|f| f.name))?;
    let mut views = Vec::with_capacity(names.len());
    for name in &names {
        match manager.config_view(tenant_id, app_id, name).await? {
            Some(view) => views.push(view),
            None => {
                return Err(Error::NotConfigured {
                    app_id: app_id.to_owned(),
                    provider: name.clone(),
                });
            }
        }
    }
    Ok(AppConfigs { status, views })
}

/// The providers to act on: `wanted`, else every configured one ([`Error::NoConfig`] if none).
fn configured(status: &AppStatus, wanted: Option<&str>) -> Result<Vec<String>, Error> {
    let names: Vec<String> = match wanted {
        Some(name) => vec![name.to_owned()],
        None => status
            .providers
            .iter()
            .map(|p| p.provider.clone())
            .collect(),
    };
    if names.is_empty() {
        return Err(Error::NoConfig {
            app_id: status.app_id.clone(),
        });
    }
    Ok(names)
}

/// Checks the stored credentials of `tenant_id`'s app: its `provider`, or every configured
/// provider when `None`. Each provider's outcome is listed (one failing never stops the
/// others); an app with no config is [`Error::NoConfig`].
pub async fn check(
    manager: &OpsTraceManager,
    tenant_id: &str,
    app_id: &str,
    provider: Option<&str>,
) -> Result<Vec<(String, Result<CheckReport, Error>)>, Error> {
    let wanted = provider.map(ops_core::provider::find).transpose()?;
    let status = manager.app_status(tenant_id, app_id).await?;
    let mut out = Vec::new();
    for name in configured(&status, wanted.map(|f| f.name))? {
        let result = manager.check_app_provider(tenant_id, app_id, &name).await;
        out.push((name, result));
    }
    Ok(out)
}

/// What the test trace found behind a provider that accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectLink {
    /// Where to see the trace.
    Url(String),
    /// The provider has no project page.
    NoPage,
    /// The lookup failed or timed out (the message says which).
    Failed(String),
}

/// One provider's answer to the test trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The provider's registry name.
    pub provider: String,
    /// Why it did not accept the trace; `None` when it did.
    pub error: Option<String>,
    /// Where to see the trace, once delivered.
    pub project: Option<ProjectLink>,
}

/// What [`send_test`] did.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// The sample trace's id.
    pub trace_id: String,
    /// How many observations it holds.
    pub observations: usize,
    /// One entry per provider it was sent to.
    pub deliveries: Vec<Delivery>,
    /// Active providers that could not be loaded or built, with why; nothing was sent to them.
    pub left_out: Vec<(String, Error)>,
}

impl TestReport {
    /// How many providers did not accept the trace.
    pub fn failed(&self) -> usize {
        self.deliveries.iter().filter(|d| d.error.is_some()).count()
    }
}

/// Sends the sample chatflow ([`crate::sample::chatflow`]) through the active providers of
/// `tenant_id`'s app (only `provider` when given), waiting at most `timeout` for each export
/// and each project-URL lookup. A provider that cannot be loaded is listed in
/// [`TestReport::left_out`]; when no provider is active at all, the error is
/// [`Error::NotActive`] saying why.
pub async fn send_test(
    manager: &OpsTraceManager,
    tenant_id: &str,
    app_id: &str,
    provider: Option<&str>,
    timeout: Duration,
) -> Result<TestReport, Error> {
    let wanted = provider.map(ops_core::provider::find).transpose()?;
    let state = manager.app_providers(tenant_id, app_id).await?;
    let mut left_out: Vec<(String, Error)> = state
        .errors()
        .iter()
        .filter(|(name, _)| wanted.is_none_or(|f| f.name == name))
        .cloned()
        .collect();
    let mut providers: Vec<Box<dyn Provider>> = Vec::new();
    for p in state.providers() {
        if wanted.is_some_and(|f| f.name != p.name()) {
            continue;
        }
        match p.build() {
            Ok(instance) => providers.push(instance),
            Err(e) => left_out.push((p.name().to_owned(), e.into())),
        }
    }
    if providers.is_empty() && left_out.is_empty() {
        let status = manager.app_status(tenant_id, app_id).await?;
        let reason = match (wanted, status.enabled) {
            (Some(f), _) => format!("{} is not an active provider of app {app_id}", f.name),
            (None, false) => format!("tracing is off for app {app_id}"),
            (None, true) => format!("app {app_id} has no working enabled provider"),
        };
        return Err(Error::NotActive {
            app_id: app_id.to_owned(),
            reason,
        });
    }
    let tenant = state.tenant_id().unwrap_or(tenant_id);
    let trace = crate::sample::chatflow(tenant, app_id)
        .and_then(|task| task.preprocess())
        .map_err(|e| {
            Error::Config(crate::ConfigError::Build {
                provider: String::new(),
                message: format!("cannot build the sample trace: {e}"),
            })
        })?;
    let mut report = TestReport {
        trace_id: trace.id.to_string(),
        observations: trace.observations.len(),
        deliveries: Vec::with_capacity(providers.len()),
        left_out,
    };
    let trace = Arc::new(trace);
    let timeout = timeout.max(Duration::from_millis(1));
    for mut provider in providers {
        let outcome =
            tokio::time::timeout(timeout, provider.export(std::slice::from_ref(&trace))).await;
        let error = match outcome {
            Ok(ExportOutcome::Delivered) => None,
            Ok(ExportOutcome::Partial { error, .. }) => {
                Some(format!("only part of the trace was accepted: {error}"))
            }
            Ok(ExportOutcome::Retry { error, .. }) => Some(format!("{error} (retryable)")),
            Ok(ExportOutcome::Fatal(error)) => Some(error.to_string()),
            Ok(other) => Some(format!("{other:?}")),
            Err(_) => Some(format!("no answer within {}s", timeout.as_secs_f64())),
        };
        let project = match error {
            Some(_) => None,
            None => Some(
                match tokio::time::timeout(timeout, provider.project_url()).await {
                    Ok(Ok(Some(url))) => ProjectLink::Url(url),
                    Ok(Ok(None)) => ProjectLink::NoPage,
                    Ok(Err(e)) => ProjectLink::Failed(format!("project URL lookup failed: {e}")),
                    Err(_) => ProjectLink::Failed("project URL lookup timed out".to_owned()),
                },
            ),
        };
        report.deliveries.push(Delivery {
            provider: provider.name().to_owned(),
            error,
            project,
        });
        let _ = tokio::time::timeout(timeout, provider.shutdown()).await;
    }
    Ok(report)
}
