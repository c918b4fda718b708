//! Tencent Cloud APM (`tencent` provider): plain OTLP/HTTP protobuf with the LLM attributes
//! of Dify's Tencent exporter.
//!
//! - The token goes both as the resource attribute `token` (what Tencent documents) and as
//!   `authorization: Bearer <token>` (what Dify sends).
//! - `service.name` follows APM's rules: at most 63 characters of lowercase letters, digits and
//!   `-`, starting with a letter. A configured name is normalised to that ([`service_name`]):
//!   Dify's default `dify_app` becomes `dify-app`.
//! - `gen_ai.span.kind` ∈ WORKFLOW (workflows, messages), GENERATION (LLM calls), RETRIEVER,
//!   TOOL, AGENT, TASK (the rest); `gen_ai.is_entry` marks the root; `gen_ai.entity.input` /
//!   `output`, `gen_ai.prompt` / `completion`, `gen_ai.usage.*`, `llm.is_streaming`.
//! - The endpoint is the HTTP one from the APM console (for example
//!   `http://ap-guangzhou.apm.tencentcs.com:4318`); `/v1/traces` is appended unless present.
//!   Port 4317 is APM's gRPC port, which this provider does not speak: it is rejected.
//!
//! Config keys (Dify's): `token` (secret, required), `endpoint` (required), `service_name`
//! (default `dify_app`), `timeout` (seconds per request, 0.01 to 600, default 10). Environment:
//! `TENCENT_APM_TOKEN`, `TENCENT_APM_ENDPOINT`, `TENCENT_APM_SERVICE_NAME` (this crate's names);
//! the timeout from `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` (milliseconds) or
//! `OPS_TRACE_EXPORT_TIMEOUT` (seconds). `host.name` comes from `HOSTNAME`, read when the
//! provider is built.

use ops_core::model::SemanticKind;
use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, Provider, ProviderConfig, ProviderFactory,
    TIMEOUT_FIELD, validate_timeout, validate_url_with_path,
};
use ops_core::{Level, Observation, ObservationKind, Trace, async_trait};

use crate::otlp::encode::{Attributes, text_of};
use crate::otlp::genai::{self, tool_name};
use crate::otlp::transport::Transport;
use crate::otlp::{Dialect, OtlpProvider, env};

/// The registry name.
pub const NAME: &str = "tencent";
/// Dify's default service name.
pub const DEFAULT_SERVICE_NAME: &str = "dify_app";
/// The APM console.
pub const CONSOLE_URL: &str = "https://console.cloud.tencent.com/apm";

/// The config keys.
pub const FIELDS: &[ConfigField] = &[
    ConfigField::secret("token"),
    ConfigField::plain("endpoint"),
    ConfigField::with_default("service_name", DEFAULT_SERVICE_NAME),
    TIMEOUT_FIELD,
];

/// `name` made a valid APM service name: lowercase; characters other than letters, digits and
/// `-` become `-`; a leading non-letter gets an `s-` prefix; cut to 63 characters.
pub fn service_name(name: &str) -> String {
    let mut s: String = name
        .trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s.insert_str(0, "s-");
    }
    s.truncate(63);
    s
}

/// Tencent's `gen_ai.span.kind` for a kind.
pub fn tencent_span_kind(kind: ObservationKind) -> &'static str {
    match kind.semantic() {
        SemanticKind::Chain => "WORKFLOW",
        SemanticKind::Llm => "GENERATION",
        SemanticKind::Retriever => "RETRIEVER",
        SemanticKind::Tool => "TOOL",
        SemanticKind::Agent => "AGENT",
        _ => "TASK",
    }
}

/// The Tencent APM dialect.
#[derive(Clone)]
pub struct Tencent {
    /// The configured endpoint.
    pub endpoint: String,
    /// `service.name`, normalised.
    pub service_name: String,
    /// `host.name`.
    pub host_name: String,
    token: String,
}

impl std::fmt::Debug for Tencent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tencent")
            .field("endpoint", &self.endpoint)
            .field("service_name", &self.service_name)
            .finish_non_exhaustive()
    }
}

impl Tencent {
    /// The dialect of a validated config.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            endpoint: config.require("endpoint")?.trim_end_matches('/').to_owned(),
            service_name: service_name(config.get("service_name").unwrap_or(DEFAULT_SERVICE_NAME)),
            host_name: env::var(NAME, "HOSTNAME")?.unwrap_or_else(|| "unknown".into()),
            token: config.require("token")?.to_owned(),
        })
    }
}

#[async_trait]
impl Dialect for Tencent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn endpoint(&self) -> String {
        env::traces_url(&self.endpoint, "/v1/traces")
    }

    fn headers(&self) -> Vec<(String, String)> {
        vec![("authorization".into(), format!("Bearer {}", self.token))]
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.token.clone()]
    }

    fn resource_attributes(&self, attrs: &mut Attributes) {
        attrs
            .str("service.name", &self.service_name)
            .str("token", &self.token)
            .str("host.name", &self.host_name);
    }

    fn span_attributes(&self, trace: &Trace, o: &Observation, attrs: &mut Attributes) {
        let who = trace.attributes_of(o);
        attrs.str("gen_ai.span.kind", tencent_span_kind(o.kind));
        attrs.bool("gen_ai.is_entry", o.parent_id.is_none());
        attrs.str("gen_ai.framework", "ops");
        attrs.opt_str("gen_ai.session.id", who.session_id.clone());
        attrs.opt_str("gen_ai.user.id", who.user_id.clone());
        if let Some(i) = &o.input {
            attrs.text("gen_ai.entity.input", i);
        }
        if let Some(out) = &o.output {
            attrs.text("gen_ai.entity.output", out);
        }
        match o.kind.semantic() {
            SemanticKind::Llm => {
                attrs.opt_str("gen_ai.request.model", o.model.clone());
                attrs.opt_str("gen_ai.response.model", o.model.clone());
                if let Some(p) = &o.model_provider {
                    attrs.str("gen_ai.provider.name", genai::provider_name(p));
                }
                if let Some(u) = &o.usage {
                    genai::add_usage(attrs, u, true);
                }
                if let Some(i) = &o.input {
                    attrs.json("gen_ai.prompt", i);
                }
                if let Some(out) = &o.output {
                    attrs.str("gen_ai.completion", text_of(out));
                }
                attrs.bool("llm.is_streaming", o.completion_start_time.is_some());
            }
            SemanticKind::Tool => {
                attrs.str("gen_ai.tool.name", tool_name(o));
            }
            SemanticKind::Agent => {
                attrs.str("gen_ai.agent.name", &o.name);
            }
            _ => {}
        }
        if o.level == Level::Error {
            attrs.str("error.type", o.error_type().unwrap_or("Error"));
        }
    }

    async fn project_url(&self, _transport: &Transport) -> Result<Option<String>, ExportError> {
        Ok(Some(CONSOLE_URL.to_owned()))
    }
}

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    config.require("endpoint")?;
    let endpoint = validate_url_with_path(config, "endpoint", "", None)?;
    if url::Url::parse(&endpoint).ok().and_then(|u| u.port()) == Some(4317) {
        return Err(config.invalid(
            "endpoint",
            format!(
                "{endpoint:?} uses port 4317, Tencent APM's gRPC port; this provider sends OTLP over HTTP: use the HTTP endpoint from the APM console (for example port 4318)"
            ),
        ));
    }
    validate_timeout(config)?;
    config.apply_field_rules()
}

fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let token = env::var(NAME, "TENCENT_APM_TOKEN")?;
    let endpoint = env::url_var(NAME, "TENCENT_APM_ENDPOINT")?;
    let (Some(token), Some(endpoint)) = (token, endpoint) else {
        return Ok(None);
    };
    let mut config = ProviderConfig::new(NAME);
    config.set_env("token", token, "TENCENT_APM_TOKEN");
    config.set_env("endpoint", endpoint, "TENCENT_APM_ENDPOINT");
    env::set_from(&mut config, "service_name", &["TENCENT_APM_SERVICE_NAME"])?;
    env::set_otlp_timeout(&mut config)?;
    Ok(Some(config))
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(OtlpProvider::with_timeout(
        Tencent::from_config(config)?,
        config.timeout()?,
    )?))
}

ops_core::inventory::submit! {
    ProviderFactory::new(NAME, "Tencent Cloud APM", FIELDS, build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(ENV_VARS)
}

/// The APM variables (`HOSTNAME` names the host in the resource).
const ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("TENCENT_APM_TOKEN", "token"),
    EnvVar::sets("TENCENT_APM_ENDPOINT", "endpoint"),
    EnvVar::sets("TENCENT_APM_SERVICE_NAME", "service_name"),
    crate::env::OTLP_TIMEOUT_VARS[0],
    crate::env::OTLP_TIMEOUT_VARS[1],
    crate::env::EXPORT_TIMEOUT_VAR,
    EnvVar::other("HOSTNAME"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_follow_apm_rules() {
        assert_eq!(service_name("dify_app"), "dify-app");
        assert_eq!(service_name("My App"), "my-app");
        assert_eq!(service_name("9lives"), "s-9lives");
        assert_eq!(service_name(&"a".repeat(80)).len(), 63);
    }
}
