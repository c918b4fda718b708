//! Langfuse, through its OTLP endpoint (`langfuse` provider), and scores through its
//! ingestion API ([`ScoreClient`]).
//!
//! Traces go to `POST {host}/api/public/otel/v1/traces` as the official SDK (langfuse 5)
//! sends them: protobuf, gzip, `Authorization: Basic base64(public_key:secret_key)`,
//! `x-langfuse-ingestion-version: 4` (real-time ingestion on Langfuse v4) and the
//! `x-langfuse-sdk-*` / `x-langfuse-public-key` headers.
//!
//! Each observation is a span with the `langfuse.observation.*` attributes (type, input,
//! output, metadata.*, level, status_message, model.name, model.parameters, usage_details,
//! cost_details, completion_start_time) and the trace's `user.id`, `session.id` and
//! `langfuse.trace.tags` (on every span, as the SDK propagates them); a root span also
//! carries `langfuse.internal.is_app_root`, and the trace's name, input, output and metadata
//! where they differ from the root's. Langfuse's trace id is the OTLP trace id in hex
//! ([`crate::otlp::trace_id_hex`]) and its observation id the span id in hex.
//!
//! Spans are reported under the instrumentation scope `ops` (with the SDK's `public_key`
//! scope attribute), not `langfuse-sdk`: Langfuse applies rules meant for its own SDK to that
//! scope name. Scores are not part of OTLP; [`ScoreClient`] sends them.
//!
//! Config keys (Dify's): `public_key`, `secret_key` (secrets, required), `host` (default
//! `https://api.langfuse.com`, path kept), `project_key` (optional; otherwise looked up), and
//! `timeout` (seconds per request, 0.01 to 600, default 10).
//! Environment: `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY`, `LANGFUSE_BASE_URL` or
//! `LANGFUSE_HOST`, `LANGFUSE_TIMEOUT` (seconds, the SDK's; else
//! `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` in milliseconds, else `OPS_TRACE_EXPORT_TIMEOUT`).

mod scores;

use chrono::SecondsFormat;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use ops_core::model::SemanticKind;
use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, Provider, ProviderConfig, ProviderFactory,
    TIMEOUT_FIELD, validate_timeout, validate_url_with_path,
};
use ops_core::{Level, Observation, ObservationKind, Trace, async_trait};
use serde_json::{Map, Value};

pub use scores::{Score, ScoreClient, ScoreTarget, ScoreValue};

use crate::otlp::encode::{Attributes, is_root};
use crate::otlp::transport::{Transport, TransportOptions};
use crate::otlp::{Dialect, OtlpProvider, env};

/// The registry name.
pub const NAME: &str = "langfuse";
/// Dify's default host.
pub const DEFAULT_HOST: &str = "https://api.langfuse.com";
/// The OTLP path under the host.
pub const OTLP_PATH: &str = "/api/public/otel/v1/traces";
/// The ingestion version header's value: real-time ingestion on Langfuse v4.
pub const INGESTION_VERSION: &str = "4";

/// The config keys.
pub const FIELDS: &[ConfigField] = &[
    ConfigField::secret("public_key"),
    ConfigField::secret("secret_key"),
    ConfigField::with_default("host", DEFAULT_HOST),
    ConfigField::optional("project_key"),
    TIMEOUT_FIELD,
];

/// The Langfuse dialect.
#[derive(Clone)]
pub struct Langfuse {
    /// The host, without a trailing `/`.
    pub host: String,
    /// The public key (`pk-lf-...`).
    pub public_key: String,
    secret_key: String,
    /// The project id, when configured.
    pub project_key: Option<String>,
}

impl std::fmt::Debug for Langfuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Langfuse")
            .field("host", &self.host)
            .field("public_key", &"<redacted>")
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

impl Langfuse {
    /// A dialect for `host` with a key pair.
    pub fn new(
        host: impl Into<String>,
        public_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into().trim_end_matches('/').to_owned(),
            public_key: public_key.into(),
            secret_key: secret_key.into(),
            project_key: None,
        }
    }

    /// The dialect of a validated config.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let mut l = Self::new(
            config.get("host").unwrap_or(DEFAULT_HOST),
            config.require("public_key")?,
            config.require("secret_key")?,
        );
        l.project_key = config.get("project_key").map(str::to_owned);
        Ok(l)
    }

    /// `Basic base64(public_key:secret_key)`.
    pub fn authorization(&self) -> String {
        env::basic_auth(&self.public_key, &self.secret_key)
    }

    /// The observation type Langfuse shows for a kind.
    pub fn observation_type(kind: ObservationKind) -> &'static str {
        match kind.semantic() {
            SemanticKind::Llm => "generation",
            SemanticKind::Tool => "tool",
            SemanticKind::Retriever => "retriever",
            SemanticKind::Agent => "agent",
            SemanticKind::Guardrail => "guardrail",
            SemanticKind::Chain => "chain",
            _ => "span",
        }
    }

    async fn projects(&self, transport: &Transport) -> Result<Value, ExportError> {
        let reply = transport
            .send(
                transport
                    .client()
                    .get(env::join(&self.host, "/api/public/projects"))
                    .header("authorization", self.authorization()),
            )
            .await?;
        reply.check(NAME, "the credentials check (GET /api/public/projects)")?;
        reply.json().ok_or_else(|| {
            ExportError::new(
                NAME,
                format!(
                    "GET {}/api/public/projects did not answer JSON; is `host` a Langfuse server?",
                    self.host
                ),
            )
        })
    }
}

/// A JSON value as Langfuse's SDK sends input and output: a string as it is, anything else as
/// JSON.
fn io_text(value: &Value) -> String {
    crate::otlp::encode::text_of(value)
}

fn usage_details(o: &Observation) -> Option<Value> {
    let u = o.usage.as_ref()?;
    let mut m = Map::new();
    if let Some(n) = u.input {
        m.insert("input".into(), n.into());
    }
    if let Some(n) = u.output {
        m.insert("output".into(), n.into());
    }
    if let Some(n) = u.total {
        m.insert("total".into(), n.into());
    }
    for (k, v) in &u.details {
        if let Some(n) = v.as_u64() {
            m.entry(k.clone()).or_insert(n.into());
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

fn cost_details(o: &Observation) -> Option<Value> {
    let u = o.usage.as_ref()?;
    let mut m = Map::new();
    if let Some(c) = u.input_cost {
        m.insert("input".into(), c.into());
    }
    if let Some(c) = u.output_cost {
        m.insert("output".into(), c.into());
    }
    if let Some(c) = u.total_cost() {
        m.insert("total".into(), c.into());
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

#[async_trait]
impl Dialect for Langfuse {
    fn name(&self) -> &'static str {
        NAME
    }

    fn endpoint(&self) -> String {
        env::join(&self.host, OTLP_PATH)
    }

    fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("authorization".into(), self.authorization()),
            ("x-langfuse-sdk-name".into(), "rust".into()),
            (
                "x-langfuse-sdk-version".into(),
                crate::otlp::encode::VERSION.into(),
            ),
            ("x-langfuse-public-key".into(), self.public_key.clone()),
            (
                "x-langfuse-ingestion-version".into(),
                INGESTION_VERSION.into(),
            ),
        ]
    }

    fn secrets(&self) -> Vec<String> {
        vec![
            self.public_key.clone(),
            self.secret_key.clone(),
            self.authorization(),
        ]
    }

    fn transport_options(&self) -> TransportOptions {
        TransportOptions::default()
    }

    fn scope_attributes(&self, attrs: &mut Attributes) {
        attrs.str("public_key", &self.public_key);
    }

    fn span_events(&self, _trace: &Trace, _observation: &Observation) -> Vec<Event> {
        // Level and status message carry failures; Langfuse needs no exception events.
        Vec::new()
    }

    fn span_attributes(&self, trace: &Trace, o: &Observation, attrs: &mut Attributes) {
        let who = trace.attributes_of(o);
        let root = o.parent_id.is_none();
        if root {
            attrs.bool("langfuse.internal.is_app_root", true);
        }
        attrs.opt_str("user.id", who.user_id.clone());
        attrs.opt_str("session.id", who.session_id.clone());
        if !trace.tags.is_empty() {
            attrs.str_array("langfuse.trace.tags", trace.tags.iter().cloned());
        }
        // Langfuse v4 takes a trace's input and output from its root observation: the root
        // carries the trace's when it has none of its own.
        let app_root = is_root(trace, o);
        let input = o.input.as_ref().or(trace.input.as_ref().filter(|_| root));
        if let Some(i) = input {
            attrs.str("langfuse.observation.input", io_text(i));
        }
        if let Some(m) = &o.model {
            attrs.str("langfuse.observation.model.name", m);
        }
        if let Some(u) = usage_details(o) {
            attrs.str("langfuse.observation.usage_details", u.to_string());
        }
        if let Some(c) = cost_details(o) {
            attrs.str("langfuse.observation.cost_details", c.to_string());
        }
        if !o.model_parameters.is_empty() {
            attrs.str(
                "langfuse.observation.model.parameters",
                Value::Object(o.model_parameters.clone()).to_string(),
            );
        }
        if let Some(p) = &o.model_provider
            && !o.metadata.contains_key("provider")
        {
            attrs.json(
                "langfuse.observation.metadata.provider",
                &Value::String(p.clone()),
            );
        }
        for (k, v) in &o.metadata {
            attrs.json(format!("langfuse.observation.metadata.{k}"), v);
        }
        if !o.tags.is_empty() {
            attrs.json(
                "langfuse.observation.metadata.tags",
                &Value::from(o.tags.clone()),
            );
        }
        attrs.str("langfuse.observation.type", Self::observation_type(o.kind));
        if o.level != Level::Default {
            attrs.str("langfuse.observation.level", o.level.as_str());
        }
        attrs.opt_str(
            "langfuse.observation.status_message",
            o.status_message.clone(),
        );
        if let Some(t) = o.completion_start_time {
            attrs.json(
                "langfuse.observation.completion_start_time",
                &Value::String(t.to_rfc3339_opts(SecondsFormat::Micros, true)),
            );
        }
        let output = o.output.as_ref().or(trace.output.as_ref().filter(|_| root));
        if let Some(out) = output {
            attrs.str("langfuse.observation.output", io_text(out));
        }
        attrs.opt_str("langfuse.environment", who.environment.clone());
        attrs.opt_str("langfuse.release", who.release.clone());
        attrs.opt_str("langfuse.version", who.version.clone());
        if app_root {
            if trace.name != o.name {
                attrs.str("langfuse.trace.name", &trace.name);
            }
            if let Some(i) = trace
                .input
                .as_ref()
                .filter(|i| Some(*i) != o.input.as_ref())
            {
                attrs.str("langfuse.trace.input", io_text(i));
            }
            if let Some(out) = trace
                .output
                .as_ref()
                .filter(|x| Some(*x) != o.output.as_ref())
            {
                attrs.str("langfuse.trace.output", io_text(out));
            }
            for (k, v) in &trace.metadata {
                attrs.json(format!("langfuse.trace.metadata.{k}"), v);
            }
        }
    }

    async fn api_check(&self, transport: &Transport) -> Result<(), ExportError> {
        self.projects(transport).await.map(|_| ())
    }

    async fn project_key(&self, transport: &Transport) -> Result<Option<String>, ExportError> {
        if let Some(k) = &self.project_key {
            return Ok(Some(k.clone()));
        }
        let projects = self.projects(transport).await?;
        Ok(projects
            .get("data")
            .and_then(Value::as_array)
            .and_then(|d| d.first())
            .and_then(|p| p.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    async fn project_url(&self, transport: &Transport) -> Result<Option<String>, ExportError> {
        Ok(self
            .project_key(transport)
            .await?
            .map(|id| format!("{}/project/{id}", self.host)))
    }
}

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    config.apply_field_rules()?;
    validate_url_with_path(config, "host", DEFAULT_HOST, None)?;
    validate_timeout(config)?;
    Ok(())
}

fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let public_key = env::var(NAME, "LANGFUSE_PUBLIC_KEY")?;
    let secret_key = env::var(NAME, "LANGFUSE_SECRET_KEY")?;
    let (Some(public_key), Some(secret_key)) = (public_key, secret_key) else {
        return Ok(None);
    };
    let mut config = ProviderConfig::new(NAME);
    config.set_env("public_key", public_key, "LANGFUSE_PUBLIC_KEY");
    config.set_env("secret_key", secret_key, "LANGFUSE_SECRET_KEY");
    env::set_url_from(&mut config, "host", &["LANGFUSE_BASE_URL", "LANGFUSE_HOST"])?;
    env::set_timeout_from(
        &mut config,
        &[
            ("LANGFUSE_TIMEOUT", env::TimeoutUnit::Seconds),
            (crate::env::OTLP_TIMEOUT_ENVS[0], env::TimeoutUnit::Millis),
            (crate::env::OTLP_TIMEOUT_ENVS[1], env::TimeoutUnit::Millis),
        ],
    )?;
    Ok(Some(config))
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(OtlpProvider::with_timeout(
        Langfuse::from_config(config)?,
        config.timeout()?,
    )?))
}

ops_core::inventory::submit! {
    ProviderFactory::new(NAME, "Langfuse", FIELDS, build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(ENV_VARS)
}

/// The Langfuse SDK's variables (`LANGFUSE_BASE_URL` wins over `LANGFUSE_HOST`).
const ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("LANGFUSE_PUBLIC_KEY", "public_key"),
    EnvVar::sets("LANGFUSE_SECRET_KEY", "secret_key"),
    EnvVar::sets("LANGFUSE_BASE_URL", "host"),
    EnvVar::sets("LANGFUSE_HOST", "host"),
    EnvVar::sets("LANGFUSE_TIMEOUT", "timeout"),
    crate::env::OTLP_TIMEOUT_VARS[0],
    crate::env::OTLP_TIMEOUT_VARS[1],
    crate::env::EXPORT_TIMEOUT_VAR,
];
