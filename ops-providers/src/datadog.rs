//! Datadog LLM Observability (`datadog` provider): OTLP/HTTP protobuf to Datadog's OTLP
//! intake with the OpenTelemetry GenAI semantic conventions (1.37+), which LLM Observability
//! ingests without the Datadog SDK or Agent.
//!
//! - **Endpoint**: `https://otlp.{site}/v1/traces` (site `datadoghq.com`, `us3.datadoghq.com`,
//!   `us5.datadoghq.com`, `datadoghq.eu`, `ap1.datadoghq.com`, ...). A `site` given as a URL
//!   (`http://127.0.0.1:8126`, a proxy) is used as the base of every request instead.
//! - **Headers**: `dd-api-key` and `dd-otlp-source: llmobs`, which routes the spans to LLM
//!   Observability.
//! - **Attributes**: the GenAI conventions of the `otlp` provider ([`crate::otlp::genai`]):
//!   `gen_ai.operation.name` (chat, execute_tool, invoke_agent, ...), `gen_ai.provider.name`,
//!   `gen_ai.request.model`, `gen_ai.usage.*`, `gen_ai.input.messages` /
//!   `gen_ai.output.messages`, tool name, arguments and result, `error.type`; the app
//!   (`ml_app`) is the resource's `service.name`.
//! - **Credentials check**: `GET https://api.{site}/api/v1/validate` with the key, which
//!   answers `{"valid": true}`; the project URL is LLM Observability's trace list filtered to
//!   the app.
//!
//! Config keys (Dify's `trace-datadog` names): `api_key` (secret, required), `site` (default
//! `datadoghq.com`), `ml_app` (default `ops`; Dify's `service_name` is read too), `timeout`
//! (seconds per request, 0.01 to 600, default 10). Environment (the Datadog SDK's):
//! `DD_API_KEY`, `DD_SITE`, `DD_LLMOBS_ML_APP`; the timeout from
//! `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` (milliseconds) or `OPS_TRACE_EXPORT_TIMEOUT` (seconds).

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, Provider, ProviderConfig, ProviderFactory,
    TIMEOUT_FIELD, quote_value, redact_url, validate_timeout,
};
use ops_core::{Observation, Trace, async_trait};
use serde_json::Value;

use crate::otlp::encode::Attributes;
use crate::otlp::genai;
use crate::otlp::transport::Transport;
use crate::otlp::{Dialect, OtlpProvider, env};

/// The registry name.
pub const NAME: &str = "datadog";
/// The default site.
pub const DEFAULT_SITE: &str = "datadoghq.com";
/// The default LLM Observability app.
pub const DEFAULT_ML_APP: &str = "ops";

/// The config keys.
pub const FIELDS: &[ConfigField] = &[
    ConfigField::secret("api_key"),
    ConfigField::with_default("site", DEFAULT_SITE),
    ConfigField::with_default("ml_app", DEFAULT_ML_APP),
    TIMEOUT_FIELD,
];

/// The Datadog LLM Observability dialect. Its Debug output leaves the key out.
#[derive(Clone)]
pub struct Datadog {
    /// The site (`datadoghq.com`), or a base URL standing in for every Datadog host.
    pub site: String,
    /// The LLM Observability app the spans belong to.
    pub ml_app: String,
    api_key: String,
}

impl std::fmt::Debug for Datadog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datadog")
            .field("site", &redact_url(&self.site))
            .field("ml_app", &self.ml_app)
            .finish_non_exhaustive()
    }
}

impl Datadog {
    /// The dialect of a validated config.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let ml_app = config
            .get("ml_app")
            .filter(|a| !a.trim().is_empty() && *a != DEFAULT_ML_APP)
            .or(config.get("service_name"))
            .unwrap_or(DEFAULT_ML_APP);
        Ok(Self {
            site: config
                .get("site")
                .unwrap_or(DEFAULT_SITE)
                .trim()
                .trim_end_matches('/')
                .to_owned(),
            ml_app: ml_app.trim().to_owned(),
            api_key: config.require("api_key")?.trim().to_owned(),
        })
    }

    /// The URL of `path` on the Datadog host `sub` (`otlp`, `api`, `app`) of the site.
    fn url(&self, sub: &str, path: &str) -> String {
        if self.site.contains("://") {
            env::join(&self.site, path)
        } else {
            format!("https://{sub}.{}{path}", self.site)
        }
    }
}

#[async_trait]
impl Dialect for Datadog {
    fn name(&self) -> &'static str {
        NAME
    }

    fn endpoint(&self) -> String {
        self.url("otlp", "/v1/traces")
    }

    fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("dd-api-key".into(), self.api_key.clone()),
            ("dd-otlp-source".into(), "llmobs".into()),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.api_key.clone()]
    }

    fn resource_attributes(&self, attrs: &mut Attributes) {
        attrs.str("service.name", &self.ml_app);
    }

    fn span_name(&self, _trace: &Trace, observation: &Observation) -> String {
        genai::span_name(observation)
    }

    fn span_kind(&self, _trace: &Trace, observation: &Observation) -> SpanKind {
        genai::span_kind(observation)
    }

    fn span_attributes(&self, trace: &Trace, observation: &Observation, attrs: &mut Attributes) {
        genai::span_attributes(trace, observation, attrs);
    }

    async fn api_check(&self, transport: &Transport) -> Result<(), ExportError> {
        let url = self.url("api", "/api/v1/validate");
        let reply = transport
            .send(
                transport
                    .client()
                    .get(&url)
                    .header("dd-api-key", &self.api_key),
            )
            .await?;
        reply.check(NAME, "the credentials check (GET /api/v1/validate)")?;
        match reply.json().as_ref().and_then(|j| j.get("valid")) {
            Some(Value::Bool(true)) => Ok(()),
            _ => Err(ExportError::new(
                NAME,
                format!(
                    "the credentials check (GET /api/v1/validate) got no {{\"valid\": true}} from \
                     {}; check `site`",
                    redact_url(&url)
                ),
            )),
        }
    }

    async fn project_url(&self, _transport: &Transport) -> Result<Option<String>, ExportError> {
        let query: String =
            url::form_urlencoded::byte_serialize(format!("@ml_app:{}", self.ml_app).as_bytes())
                .collect();
        Ok(Some(format!(
            "{}?query={query}",
            self.url("app", "/llm/traces")
        )))
    }
}

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    config.require("api_key")?;
    let site = config.get("site").unwrap_or(DEFAULT_SITE).trim().to_owned();
    let problem = if site.contains("://") {
        match url::Url::parse(&site) {
            Err(_) => Some("is not a URL"),
            Ok(u) if !matches!(u.scheme(), "http" | "https") => Some("is not an http(s) URL"),
            Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("has no host"),
            Ok(_) => None,
        }
    } else {
        // A site is a DNS name under which `otlp.`, `api.` and `app.` hosts exist.
        let hostname = !site.is_empty()
            && site.contains('.')
            && site
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && site.chars().any(|c| c.is_ascii_alphabetic())
            && site
                .split('.')
                .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
            && url::Url::parse(&format!("https://otlp.{site}/v1/traces"))
                .is_ok_and(|u| matches!(u.host(), Some(url::Host::Domain(_))));
        (!hostname).then_some("is not a Datadog site")
    };
    if let Some(problem) = problem {
        return Err(config.invalid(
            "site",
            format!(
                "{} {problem}; use a site like datadoghq.com, us3.datadoghq.com or datadoghq.eu \
                 (or an http(s) URL for a proxy)",
                quote_value(&site)
            ),
        ));
    }
    validate_timeout(config)?;
    config.apply_field_rules()
}

fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let Some(key) = env::var(NAME, "DD_API_KEY")? else {
        return Ok(None);
    };
    let mut config = ProviderConfig::new(NAME);
    config.set_env("api_key", key, "DD_API_KEY");
    env::set_from(&mut config, "site", &["DD_SITE"])?;
    env::set_from(&mut config, "ml_app", &["DD_LLMOBS_ML_APP"])?;
    env::set_otlp_timeout(&mut config)?;
    Ok(Some(config))
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(OtlpProvider::with_timeout(
        Datadog::from_config(config)?,
        config.timeout()?,
    )?))
}

ops_core::inventory::submit! {
    ProviderFactory::new(NAME, "Datadog LLM Observability", FIELDS, build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(ENV_VARS)
}

/// The Datadog SDK's variables.
const ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("DD_API_KEY", "api_key"),
    EnvVar::sets("DD_SITE", "site"),
    EnvVar::sets("DD_LLMOBS_ML_APP", "ml_app"),
    crate::env::OTLP_TIMEOUT_VARS[0],
    crate::env::OTLP_TIMEOUT_VARS[1],
    crate::env::EXPORT_TIMEOUT_VAR,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn datadog(site: &str) -> Datadog {
        Datadog::from_config(
            &ProviderConfig::new(NAME)
                .with("api_key", "dd-key")
                .with("site", site)
                .with("ml_app", "chatbot"),
        )
        .unwrap()
    }

    #[test]
    fn hosts_follow_the_site() {
        let d = datadog("datadoghq.eu");
        assert_eq!(d.endpoint(), "https://otlp.datadoghq.eu/v1/traces");
        assert_eq!(
            d.url("api", "/api/v1/validate"),
            "https://api.datadoghq.eu/api/v1/validate"
        );
        let proxy = datadog("http://127.0.0.1:9000/");
        assert_eq!(proxy.endpoint(), "http://127.0.0.1:9000/v1/traces");
    }

    #[test]
    fn debug_leaves_the_key_out() {
        let text = format!("{:?}", datadog("datadoghq.com"));
        assert!(!text.contains("dd-key"), "{text}");
        assert!(text.contains("chatbot"), "{text}");
    }
}
