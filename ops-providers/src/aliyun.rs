//! Alibaba Cloud ARMS / Cloud Monitor LLM observability (`aliyun` provider): plain
//! OTLP/HTTP protobuf with ARMS's `gen_ai.*` attributes.
//!
//! Endpoints (both forms):
//! - a full traces URL (path ending in `/v1/traces` or `/api/otlp/traces`, for example the
//!   Cloud Monitor 2.0 `https://proj-xtrace-<id>-<region>.<region>.log.aliyuncs.com/apm/trace/opentelemetry/v1/traces`)
//!   is used as given;
//! - otherwise the license key goes in the path as Dify builds it:
//!   `{endpoint}/adapt_{license_key}/api/v1/traces` for a `*.log.aliyuncs.com` host,
//!   `{endpoint}/adapt_{license_key}/api/otlp/traces` for the classic
//!   `tracing-analysis-dc-<region>.aliyuncs.com`.
//!
//! Every request carries `x-arms-license-key`, and `x-arms-project` when the host is a
//! `proj-xtrace-…` project. The resource has `service.name` (the app name), `service.version`,
//! `host.name` and `acs.arms.service.feature=genai_app`, which marks an AI application.
//!
//! Config keys (Dify's): `license_key` (secret, required), `endpoint` (default
//! `https://tracing-analysis-dc-hz.aliyuncs.com`), `app_name` (default `dify_app`), `timeout`
//! (seconds per request, 0.01 to 600, default 10).
//! Environment: `ALIYUN_ARMS_LICENSE_KEY`, `ALIYUN_ARMS_ENDPOINT`, `ALIYUN_ARMS_APP_NAME`
//! (this crate's names; ARMS's agents are configured in the console); the timeout from
//! `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` (milliseconds) or `OPS_TRACE_EXPORT_TIMEOUT` (seconds).
//! `host.name` comes from `HOSTNAME` (or `/etc/hostname`), read when the provider is built.

use ops_core::model::SemanticKind;
use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, Provider, ProviderConfig, ProviderFactory,
    TIMEOUT_FIELD, validate_project_name, validate_timeout, validate_url_with_path,
};
use ops_core::{Level, Observation, ObservationKind, Trace, async_trait};
use serde_json::{Value, json};

use crate::otlp::encode::{Attributes, is_root, text_of, unix_nanos};
use crate::otlp::genai::{self, merged_tags, tool_name};
use crate::otlp::transport::Transport;
use crate::otlp::{Dialect, OtlpProvider, content, env};

/// The registry name.
pub const NAME: &str = "aliyun";
/// Dify's default endpoint (Hangzhou).
pub const DEFAULT_ENDPOINT: &str = "https://tracing-analysis-dc-hz.aliyuncs.com";
/// Dify's default app name.
pub const DEFAULT_APP_NAME: &str = "dify_app";
/// The ARMS console page for LLM applications.
pub const CONSOLE_URL: &str = "https://arms.console.aliyun.com/#/llm";

/// The config keys.
pub const FIELDS: &[ConfigField] = &[
    ConfigField::secret("license_key"),
    ConfigField::with_default("endpoint", DEFAULT_ENDPOINT),
    ConfigField::with_default("app_name", DEFAULT_APP_NAME),
    TIMEOUT_FIELD,
];

/// The ARMS dialect.
#[derive(Clone)]
pub struct Aliyun {
    /// The configured endpoint.
    pub endpoint: String,
    /// `service.name`.
    pub app_name: String,
    /// `host.name`.
    pub host_name: String,
    license_key: String,
}

impl std::fmt::Debug for Aliyun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aliyun")
            .field("endpoint", &self.endpoint)
            .field("app_name", &self.app_name)
            .finish_non_exhaustive()
    }
}

/// ARMS's `gen_ai.span.kind` for a kind.
pub fn arms_span_kind(kind: ObservationKind) -> &'static str {
    match kind.semantic() {
        SemanticKind::Llm => "LLM",
        SemanticKind::Tool => "TOOL",
        SemanticKind::Retriever => "RETRIEVER",
        SemanticKind::Agent => "AGENT",
        SemanticKind::Chain => "CHAIN",
        _ => "TASK",
    }
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Aliyun {
    /// The dialect of a validated config.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            endpoint: config
                .get("endpoint")
                .unwrap_or(DEFAULT_ENDPOINT)
                .trim_end_matches('/')
                .to_owned(),
            app_name: config
                .get("app_name")
                .unwrap_or(DEFAULT_APP_NAME)
                .to_owned(),
            host_name: host_name(NAME)?,
            license_key: config.require("license_key")?.to_owned(),
        })
    }

    fn host(&self) -> String {
        host_of(&self.endpoint)
    }
}

/// `HOSTNAME`, else `/etc/hostname`, else `unknown`; an error when `HOSTNAME` is not UTF-8.
pub(crate) fn host_name(provider: &str) -> Result<String, ConfigError> {
    Ok(env::var(provider, "HOSTNAME")?
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into()))
}

#[async_trait]
impl Dialect for Aliyun {
    fn name(&self) -> &'static str {
        NAME
    }

    fn endpoint(&self) -> String {
        let e = &self.endpoint;
        if e.ends_with("/v1/traces") || e.ends_with("/api/otlp/traces") {
            e.clone()
        } else if self.host().ends_with("log.aliyuncs.com") {
            format!("{e}/adapt_{}/api/v1/traces", self.license_key)
        } else {
            format!("{e}/adapt_{}/api/otlp/traces", self.license_key)
        }
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![("x-arms-license-key".into(), self.license_key.clone())];
        let host = self.host();
        if host.starts_with("proj-xtrace-")
            && let Some(project) = host.split('.').next()
        {
            h.push(("x-arms-project".into(), project.to_owned()));
        }
        h
    }

    fn secrets(&self) -> Vec<String> {
        // Also part of the endpoint's path: every URL shown is redacted with it.
        vec![self.license_key.clone()]
    }

    fn resource_attributes(&self, attrs: &mut Attributes) {
        attrs
            .str("service.name", &self.app_name)
            .str("service.version", crate::otlp::encode::VERSION)
            .str("host.name", &self.host_name)
            .str("acs.arms.service.feature", "genai_app")
            .str("gen_ai.instrumentation.sdk.name", "ops");
    }

    fn span_attributes(&self, trace: &Trace, o: &Observation, attrs: &mut Attributes) {
        let who = trace.attributes_of(o);
        attrs.str("gen_ai.span.kind", arms_span_kind(o.kind));
        if let Some(op) = genai::operation_name(o.kind) {
            attrs.str("gen_ai.operation.name", op);
        }
        attrs.str("gen_ai.framework", "ops");
        attrs.opt_str("gen_ai.session.id", who.session_id.clone());
        attrs.opt_str("gen_ai.user.id", who.user_id.clone());
        if let Some(i) = &o.input {
            attrs.text("input.value", i);
        }
        if let Some(out) = &o.output {
            attrs.text("output.value", out);
        }
        match o.kind.semantic() {
            SemanticKind::Llm => {
                attrs.opt_str("gen_ai.request.model", o.model.clone());
                attrs.opt_str("gen_ai.response.model", o.model.clone());
                if let Some(p) = &o.model_provider {
                    let p = genai::provider_name(p);
                    attrs
                        .str("gen_ai.provider.name", p.clone())
                        .str("gen_ai.system", p);
                }
                genai::add_request_parameters(attrs, &o.model_parameters);
                if let Some(u) = &o.usage {
                    genai::add_usage(attrs, u, true);
                }
                if let Some(m) = o.input.as_ref().and_then(genai::input_messages) {
                    attrs.json("gen_ai.input.messages", &m);
                }
                if let Some(m) = o.output.as_ref().and_then(genai::output_messages) {
                    attrs.json("gen_ai.output.messages", &m);
                }
                if let Some(first) = o.completion_start_time {
                    let ns = unix_nanos(first).saturating_sub(unix_nanos(o.start_time));
                    attrs.uint("gen_ai.response.time_to_first_token", ns);
                }
            }
            SemanticKind::Retriever => {
                if let Some(q) = o.input.as_ref().and_then(content::query_text) {
                    attrs.str("retrieval.query", q);
                }
                if let Some(docs) = o.output.as_ref().and_then(content::documents) {
                    let docs: Vec<Value> = docs
                        .into_iter()
                        .map(|d| json!({"id": d.id, "content": d.content, "score": d.score, "metadata": d.metadata}))
                        .collect();
                    attrs.json("retrieval.document", &Value::Array(docs));
                }
            }
            SemanticKind::Tool => {
                attrs.str("tool.name", tool_name(o));
                if let Some(i) = &o.input {
                    attrs.str("tool.parameters", text_of(i));
                }
                if let Some(d) = o
                    .metadata
                    .get("tool_config")
                    .and_then(|c| c.get("description"))
                    .and_then(Value::as_str)
                {
                    attrs.str("tool.description", d);
                }
            }
            SemanticKind::Agent => {
                attrs.str("gen_ai.agent.name", &o.name);
            }
            _ => {}
        }
        if o.level == Level::Error {
            attrs.str("error.type", o.error_type().unwrap_or("Error"));
        }
        let mut metadata = o.metadata.clone();
        if is_root(trace, o) {
            for (k, v) in &trace.metadata {
                metadata.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if !metadata.is_empty() {
            attrs.json("metadata", &Value::Object(metadata));
        }
        let tags = merged_tags(trace, o);
        if !tags.is_empty() {
            attrs.str_array("tags", tags);
        }
    }

    async fn project_url(&self, _transport: &Transport) -> Result<Option<String>, ExportError> {
        Ok(Some(CONSOLE_URL.to_owned()))
    }
}

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    validate_url_with_path(config, "endpoint", DEFAULT_ENDPOINT, None)?;
    validate_project_name(config, "app_name", DEFAULT_APP_NAME);
    validate_timeout(config)?;
    config.apply_field_rules()
}

fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let license = env::var(NAME, "ALIYUN_ARMS_LICENSE_KEY")?;
    let endpoint = env::url_var(NAME, "ALIYUN_ARMS_ENDPOINT")?;
    let Some(license) = license else {
        return Ok(None);
    };
    let mut config = ProviderConfig::new(NAME);
    config.set_env("license_key", license, "ALIYUN_ARMS_LICENSE_KEY");
    if let Some(e) = endpoint {
        config.set_env("endpoint", e, "ALIYUN_ARMS_ENDPOINT");
    }
    env::set_from(&mut config, "app_name", &["ALIYUN_ARMS_APP_NAME"])?;
    env::set_otlp_timeout(&mut config)?;
    Ok(Some(config))
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(OtlpProvider::with_timeout(
        Aliyun::from_config(config)?,
        config.timeout()?,
    )?))
}

ops_core::inventory::submit! {
    ProviderFactory::new(NAME, "Alibaba Cloud ARMS", FIELDS, build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(ENV_VARS)
}

/// The ARMS variables (`HOSTNAME` names the host in the resource).
const ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("ALIYUN_ARMS_LICENSE_KEY", "license_key"),
    EnvVar::sets("ALIYUN_ARMS_ENDPOINT", "endpoint"),
    EnvVar::sets("ALIYUN_ARMS_APP_NAME", "app_name"),
    crate::env::OTLP_TIMEOUT_VARS[0],
    crate::env::OTLP_TIMEOUT_VARS[1],
    crate::env::EXPORT_TIMEOUT_VAR,
    EnvVar::other("HOSTNAME"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn dialect(endpoint: &str) -> Aliyun {
        Aliyun::from_config(
            &ProviderConfig::new(NAME)
                .with("license_key", "lk")
                .with("endpoint", endpoint),
        )
        .unwrap()
    }

    #[test]
    fn both_endpoint_forms() {
        assert_eq!(
            dialect(DEFAULT_ENDPOINT).endpoint(),
            "https://tracing-analysis-dc-hz.aliyuncs.com/adapt_lk/api/otlp/traces"
        );
        let sls = dialect("https://proj-xtrace-abc-cn-hangzhou.cn-hangzhou.log.aliyuncs.com");
        assert_eq!(
            sls.endpoint(),
            "https://proj-xtrace-abc-cn-hangzhou.cn-hangzhou.log.aliyuncs.com/adapt_lk/api/v1/traces"
        );
        assert!(sls.headers().contains(&(
            "x-arms-project".into(),
            "proj-xtrace-abc-cn-hangzhou".into()
        )));
        let full = "https://proj-xtrace-abc-cn-hangzhou.cn-hangzhou.log.aliyuncs.com/apm/trace/opentelemetry/v1/traces";
        assert_eq!(dialect(full).endpoint(), full);
        assert!(
            dialect(full)
                .headers()
                .contains(&("x-arms-license-key".into(), "lk".into()))
        );
    }
}
