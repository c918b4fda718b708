//! Arize Phoenix (`phoenix` provider): OTLP/HTTP protobuf to `{endpoint}/v1/traces` with the
//! OpenInference attributes ([`crate::openinference`]); the project is the resource attribute
//! `openinference.project.name`.
//!
//! Config keys (Dify's): `api_key` (secret, optional: only when Phoenix has auth on), `project`
//! (default `default`), `endpoint` (default `https://app.phoenix.arize.com`, path kept),
//! `timeout` (seconds per request, 0.01 to 600, default 10).
//! Environment (the Phoenix SDK's): `PHOENIX_COLLECTOR_ENDPOINT` (with or without
//! `/v1/traces`), `PHOENIX_API_KEY`, `PHOENIX_PROJECT_NAME`; the timeout from
//! `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` (milliseconds) or `OPS_TRACE_EXPORT_TIMEOUT` (seconds).
//!
//! The credentials check lists projects through Phoenix's REST API (`GET /v1/projects`), and
//! the project URL is `{endpoint}/projects/{project id}`.

use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, Provider, ProviderConfig, ProviderFactory,
    TIMEOUT_FIELD, redact_url, validate_project_name, validate_timeout, validate_url_with_path,
};
use ops_core::{Observation, Trace, async_trait};
use serde_json::Value;

use crate::openinference;
use crate::otlp::encode::Attributes;
use crate::otlp::transport::{Transport, quote};
use crate::otlp::{Dialect, OtlpProvider, env};

/// The registry name.
pub const NAME: &str = "phoenix";
/// Dify's default endpoint: Phoenix Cloud.
pub const DEFAULT_ENDPOINT: &str = "https://app.phoenix.arize.com";
/// The default project.
pub const DEFAULT_PROJECT: &str = "default";

/// The config keys.
pub const FIELDS: &[ConfigField] = &[
    ConfigField::secret("api_key").not_required(),
    ConfigField::with_default("project", DEFAULT_PROJECT),
    ConfigField::with_default("endpoint", DEFAULT_ENDPOINT),
    TIMEOUT_FIELD,
];

/// The Phoenix dialect.
#[derive(Clone)]
pub struct Phoenix {
    /// The base URL (REST API root), without `/v1/traces`.
    pub base: String,
    /// The project traces go to.
    pub project: String,
    api_key: Option<String>,
}

impl std::fmt::Debug for Phoenix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phoenix")
            .field("base", &self.base)
            .field("project", &self.project)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `endpoint` without a trailing `/v1/traces` or `/`.
fn base_of(endpoint: &str) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    e.strip_suffix("/v1/traces")
        .unwrap_or(e)
        .trim_end_matches('/')
        .to_owned()
}

impl Phoenix {
    /// The error for an answer that did not come from Phoenix.
    fn not_phoenix(&self, what: &str) -> ExportError {
        ExportError::new(
            NAME,
            format!(
                "not a Phoenix server at {}: {what}; check the endpoint in the tracing config",
                redact_url(&self.base)
            ),
        )
    }

    /// A dialect for a Phoenix at `endpoint`, sending to `project`.
    pub fn new(
        endpoint: impl AsRef<str>,
        project: impl Into<String>,
        api_key: Option<String>,
    ) -> Self {
        Self {
            base: base_of(endpoint.as_ref()),
            project: project.into(),
            api_key: api_key.filter(|k| !k.is_empty()),
        }
    }

    /// The dialect of a validated config.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(
            config.get("endpoint").unwrap_or(DEFAULT_ENDPOINT),
            config.get("project").unwrap_or(DEFAULT_PROJECT),
            config.get("api_key").map(str::to_owned),
        ))
    }

    fn rest(&self, transport: &Transport, path: &str) -> reqwest::RequestBuilder {
        let mut r = transport.client().get(env::join(&self.base, path));
        if let Some(k) = &self.api_key {
            r = r.bearer_auth(k);
        }
        r
    }
}

#[async_trait]
impl Dialect for Phoenix {
    fn name(&self) -> &'static str {
        NAME
    }

    fn endpoint(&self) -> String {
        env::join(&self.base, "/v1/traces")
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut h = Vec::new();
        if let Some(k) = &self.api_key {
            h.push(("authorization".into(), format!("Bearer {k}")));
            if self.base.contains("app.phoenix.arize.com") {
                // Legacy Phoenix Cloud instances read the key from `api_key`.
                h.push(("api_key".into(), k.clone()));
            }
        }
        h
    }

    fn secrets(&self) -> Vec<String> {
        self.api_key.iter().cloned().collect()
    }

    fn resource_attributes(&self, attrs: &mut Attributes) {
        attrs.str(openinference::PROJECT_NAME, &self.project);
    }

    fn span_attributes(&self, trace: &Trace, observation: &Observation, attrs: &mut Attributes) {
        openinference::span_attributes(trace, observation, attrs);
    }

    async fn api_check(&self, transport: &Transport) -> Result<(), ExportError> {
        let reply = transport
            .send(self.rest(transport, "/v1/projects?limit=1"))
            .await?;
        reply.check(NAME, "the credentials check (GET /v1/projects)")?;
        // Any web app answers 200 to a path it serves as a page: only Phoenix's list passes.
        match reply.json() {
            Some(j) if j.get("data").is_some_and(Value::is_array) => Ok(()),
            _ => Err(self.not_phoenix(
                "GET /v1/projects answered something else than Phoenix's project list",
            )),
        }
    }

    async fn project_key(&self, transport: &Transport) -> Result<Option<String>, ExportError> {
        let path = format!("/v1/projects/{}", url_segment(&self.project));
        let reply = transport.send(self.rest(transport, &path)).await?;
        if reply.status.as_u16() == 404 {
            let message = reply.message();
            if message.contains("Project with") && message.contains("not found") {
                // Phoenix creates the project with its first span.
                return Ok(None);
            }
            return Err(
                self.not_phoenix(&format!("GET {path} was not found ({})", quote(&message)))
            );
        }
        reply.check(NAME, "looking up the project")?;
        Ok(reply.json().and_then(|j| {
            j.pointer("/data/id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }))
    }

    async fn project_url(&self, transport: &Transport) -> Result<Option<String>, ExportError> {
        Ok(Some(match self.project_key(transport).await? {
            Some(id) => format!("{}/projects/{id}", self.base),
            None => format!("{}/projects", self.base),
        }))
    }
}

pub(crate) use crate::env::url_segment;

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    validate_url_with_path(config, "endpoint", DEFAULT_ENDPOINT, None)?;
    validate_project_name(config, "project", DEFAULT_PROJECT);
    validate_timeout(config)?;
    config.apply_field_rules()
}

fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let endpoint = env::url_var(NAME, "PHOENIX_COLLECTOR_ENDPOINT")?;
    let api_key = env::var(NAME, "PHOENIX_API_KEY")?;
    if endpoint.is_none() && api_key.is_none() {
        return Ok(None);
    }
    let mut config = ProviderConfig::new(NAME);
    if let Some(e) = endpoint {
        config.set_env("endpoint", base_of(&e), "PHOENIX_COLLECTOR_ENDPOINT");
    }
    if let Some(k) = api_key {
        config.set_env("api_key", k, "PHOENIX_API_KEY");
    }
    env::set_from(&mut config, "project", &["PHOENIX_PROJECT_NAME"])?;
    env::set_otlp_timeout(&mut config)?;
    Ok(Some(config))
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(OtlpProvider::with_timeout(
        Phoenix::from_config(config)?,
        config.timeout()?,
    )?))
}

ops_core::inventory::submit! {
    ProviderFactory::new(NAME, "Arize Phoenix", FIELDS, build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(ENV_VARS)
}

/// The Phoenix SDK's variables.
const ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("PHOENIX_COLLECTOR_ENDPOINT", "endpoint"),
    EnvVar::sets("PHOENIX_API_KEY", "api_key"),
    EnvVar::sets("PHOENIX_PROJECT_NAME", "project"),
    crate::env::OTLP_TIMEOUT_VARS[0],
    crate::env::OTLP_TIMEOUT_VARS[1],
    crate::env::EXPORT_TIMEOUT_VAR,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            base_of("http://127.0.0.1:6006/v1/traces"),
            "http://127.0.0.1:6006"
        );
        assert_eq!(
            base_of("https://app.phoenix.arize.com/s/me/"),
            "https://app.phoenix.arize.com/s/me"
        );
        let p = Phoenix::new("https://app.phoenix.arize.com/s/me", "p", Some("k".into()));
        assert_eq!(p.endpoint(), "https://app.phoenix.arize.com/s/me/v1/traces");
        assert_eq!(p.headers().len(), 2);
        let local = Phoenix::new("http://localhost:6006", "p", None);
        assert!(local.headers().is_empty());
        assert_eq!(url_segment("my proj/1"), "my%20proj%2F1");
    }
}
