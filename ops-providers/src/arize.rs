//! Arize AX (`arize` provider): OTLP/HTTP protobuf to `{endpoint}/v1/traces` with the
//! OpenInference attributes ([`crate::openinference`]), the project in the resource attribute
//! `openinference.project.name`.
//!
//! Headers (arize-otel's): `authorization: <api key>` (no `Bearer`), `arize-space-id`,
//! `arize-interface: otel`, and the deprecated duplicates `api_key` and `space_id`.
//! The EU endpoint is `https://otlp.eu-west-1a.arize.com`.
//!
//! Config keys (Dify's): `api_key`, `space_id` (secrets, required), `project` (default
//! `default`), `endpoint` (default `https://otlp.arize.com`, path dropped), `timeout` (seconds per
//! request, 0.01 to 600, default 10).
//! Environment: `ARIZE_API_KEY`, `ARIZE_SPACE_ID`, `ARIZE_PROJECT_NAME`; the timeout from
//! `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` (milliseconds) or `OPS_TRACE_EXPORT_TIMEOUT` (seconds).

use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, Provider, ProviderConfig, ProviderFactory,
    TIMEOUT_FIELD, validate_project_name, validate_timeout, validate_url,
};
use ops_core::{Observation, Trace, async_trait};

use crate::openinference;
use crate::otlp::encode::Attributes;
use crate::otlp::transport::Transport;
use crate::otlp::{Dialect, OtlpProvider, env};

/// The registry name.
pub const NAME: &str = "arize";
/// The default (US) endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://otlp.arize.com";
/// Where the user sees traces (Dify's project URL).
pub const APP_URL: &str = "https://app.arize.com/";

/// The config keys.
pub const FIELDS: &[ConfigField] = &[
    ConfigField::secret("api_key"),
    ConfigField::secret("space_id"),
    ConfigField::with_default("project", "default"),
    ConfigField::with_default("endpoint", DEFAULT_ENDPOINT),
    TIMEOUT_FIELD,
];

/// The Arize AX dialect.
#[derive(Clone)]
pub struct Arize {
    /// The OTLP base URL.
    pub endpoint: String,
    /// The project (Arize model) traces go to.
    pub project: String,
    api_key: String,
    space_id: String,
}

impl std::fmt::Debug for Arize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arize")
            .field("endpoint", &self.endpoint)
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

impl Arize {
    /// The dialect of a validated config.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            endpoint: config
                .get("endpoint")
                .unwrap_or(DEFAULT_ENDPOINT)
                .trim_end_matches('/')
                .to_owned(),
            project: config.get("project").unwrap_or("default").to_owned(),
            api_key: config.require("api_key")?.to_owned(),
            space_id: config.require("space_id")?.to_owned(),
        })
    }
}

#[async_trait]
impl Dialect for Arize {
    fn name(&self) -> &'static str {
        NAME
    }

    fn endpoint(&self) -> String {
        env::traces_url(&self.endpoint, "/v1/traces")
    }

    fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("authorization".into(), self.api_key.clone()),
            ("arize-space-id".into(), self.space_id.clone()),
            ("arize-interface".into(), "otel".into()),
            ("api_key".into(), self.api_key.clone()),
            ("space_id".into(), self.space_id.clone()),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.api_key.clone(), self.space_id.clone()]
    }

    fn resource_attributes(&self, attrs: &mut Attributes) {
        attrs.str(openinference::PROJECT_NAME, &self.project);
    }

    fn span_attributes(&self, trace: &Trace, observation: &Observation, attrs: &mut Attributes) {
        openinference::span_attributes(trace, observation, attrs);
    }

    async fn project_url(&self, _transport: &Transport) -> Result<Option<String>, ExportError> {
        Ok(Some(APP_URL.to_owned()))
    }
}

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    validate_url(config, "endpoint", DEFAULT_ENDPOINT)?;
    validate_project_name(config, "project", "default");
    validate_timeout(config)?;
    config.apply_field_rules()
}

fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let api_key = env::var(NAME, "ARIZE_API_KEY")?;
    let space_id = env::var(NAME, "ARIZE_SPACE_ID")?;
    let (Some(api_key), Some(space_id)) = (api_key, space_id) else {
        return Ok(None);
    };
    let mut config = ProviderConfig::new(NAME);
    config.set_env("api_key", api_key, "ARIZE_API_KEY");
    config.set_env("space_id", space_id, "ARIZE_SPACE_ID");
    env::set_from(&mut config, "project", &["ARIZE_PROJECT_NAME"])?;
    env::set_otlp_timeout(&mut config)?;
    Ok(Some(config))
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(OtlpProvider::with_timeout(
        Arize::from_config(config)?,
        config.timeout()?,
    )?))
}

ops_core::inventory::submit! {
    ProviderFactory::new(NAME, "Arize", FIELDS, build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(ENV_VARS)
}

/// The Arize SDK's variables.
const ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("ARIZE_API_KEY", "api_key"),
    EnvVar::sets("ARIZE_SPACE_ID", "space_id"),
    EnvVar::sets("ARIZE_PROJECT_NAME", "project"),
    crate::env::OTLP_TIMEOUT_VARS[0],
    crate::env::OTLP_TIMEOUT_VARS[1],
    crate::env::EXPORT_TIMEOUT_VAR,
];
