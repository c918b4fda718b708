//! MLflow tracking servers (`mlflow` provider) and Databricks (`databricks` provider), through
//! MLflow's OTLP endpoint.
//!
//! - MLflow: `POST {tracking_uri}/v1/traces` (at the server root, not under `/api`), HTTP
//!   Basic auth when a username and password are configured.
//! - Databricks: `POST {host}/api/2.0/otel/v1/traces` with `Authorization: Bearer` and either
//!   a personal access token or an OAuth machine-to-machine token, fetched with the client id
//!   and secret from `{host}/oidc/v1/token` and cached until shortly before it expires.
//! - Both: the `x-mlflow-experiment-id` header; protobuf (MLflow rejects JSON).
//!
//! Span attributes use MLflow's own keys, JSON-encoded as MLflow stores them:
//! `mlflow.spanType` (LLM, TOOL, RETRIEVER, AGENT, GUARDRAIL, CHAIN), `mlflow.spanInputs`,
//! `mlflow.spanOutputs` (retrieval outputs as a list of `{page_content, metadata, id}`
//! documents), `mlflow.chat.tokenUsage` (`{input_tokens, output_tokens, total_tokens}`),
//! `mlflow.llm.model`, `mlflow.llm.provider`, `mlflow.llm.cost` (the app's own cost, so MLflow
//! does not estimate it); each model parameter and metadata entry as an attribute of its own,
//! as MLflow's autologging records them; plus `user.id` and `session.id`. The root span
//! carries the trace's name, tags and metadata as `mlflow.traceTag.*` attributes, which
//! MLflow's OTLP ingestion turns into trace tags (`mlflow.traceName` fills the trace list's
//! name column). MLflow counts a trace complete when its root span arrives.
//!
//! Config keys (Dify's):
//! - `mlflow`: `tracking_uri` (default `http://localhost:5000`; `databricks…` URIs belong to
//!   the `databricks` provider), `experiment_id` (default `0`, digits), `username`,
//!   `password` (secret).
//! - `databricks`: `host` (required), `experiment_id` (required, digits), and
//!   `personal_access_token` (secret) or `client_id` with `client_secret` (secret).
//! - Both: `timeout` (seconds per request, 0.01 to 600, default 10).
//!
//! Environment (MLflow's and Databricks' SDK variables): `MLFLOW_TRACKING_URI`,
//! `MLFLOW_EXPERIMENT_ID`, `MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD`;
//! `DATABRICKS_HOST`, `DATABRICKS_TOKEN`, `DATABRICKS_CLIENT_ID`, `DATABRICKS_CLIENT_SECRET`;
//! the timeout from `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` (milliseconds) or
//! `OPS_TRACE_EXPORT_TIMEOUT` (seconds).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ops_core::model::SemanticKind;
use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, Provider, ProviderConfig, ProviderFactory,
    TIMEOUT_FIELD, redact_url, validate_integer_id, validate_timeout, validate_url,
    validate_url_with_path,
};
use ops_core::{Observation, ObservationKind, Trace, async_trait};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

use crate::otlp::encode::Attributes;
use crate::otlp::genai::cache_read_tokens;
use crate::otlp::transport::{HttpReply, Transport, quote};
use crate::otlp::{Dialect, OtlpProvider, content, env};

/// The longest an OAuth token is cached, whatever its `expires_in` says: a day.
const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 3600;

/// The MLflow provider's registry name.
pub const MLFLOW: &str = "mlflow";
/// The Databricks provider's registry name.
pub const DATABRICKS: &str = "databricks";
/// Dify's default tracking URI.
pub const DEFAULT_TRACKING_URI: &str = "http://localhost:5000";

/// The `mlflow` config keys.
pub const MLFLOW_FIELDS: &[ConfigField] = &[
    ConfigField::with_default("tracking_uri", DEFAULT_TRACKING_URI),
    ConfigField::with_default("experiment_id", "0"),
    ConfigField::optional("username"),
    ConfigField::secret("password").not_required(),
    TIMEOUT_FIELD,
];

/// The `databricks` config keys.
pub const DATABRICKS_FIELDS: &[ConfigField] = &[
    ConfigField::plain("host"),
    ConfigField::plain("experiment_id"),
    ConfigField::secret("personal_access_token").not_required(),
    ConfigField::optional("client_id"),
    ConfigField::secret("client_secret").not_required(),
    TIMEOUT_FIELD,
];

/// How requests authenticate.
#[derive(Clone)]
enum Auth {
    None,
    /// A fixed `Authorization` value (Basic or Bearer).
    Header(String),
    /// Databricks OAuth machine-to-machine.
    ClientCredentials {
        client_id: String,
        client_secret: String,
    },
}

/// The MLflow / Databricks dialect.
pub struct Mlflow {
    name: &'static str,
    /// The tracking server (MLflow) or workspace (Databricks) URL.
    pub base: String,
    /// The experiment traces go to.
    pub experiment_id: String,
    traces_path: &'static str,
    auth: Auth,
    token: Mutex<Option<(String, Instant)>>,
    secrets: Vec<String>,
}

impl std::fmt::Debug for Mlflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mlflow")
            .field("name", &self.name)
            .field("base", &self.base)
            .field("experiment_id", &self.experiment_id)
            .finish_non_exhaustive()
    }
}

/// MLflow's span type for a kind.
pub fn span_type(kind: ObservationKind) -> &'static str {
    match kind.semantic() {
        SemanticKind::Llm => "LLM",
        SemanticKind::Tool => "TOOL",
        SemanticKind::Retriever => "RETRIEVER",
        SemanticKind::Agent => "AGENT",
        SemanticKind::Guardrail => "GUARDRAIL",
        _ => "CHAIN",
    }
}

impl Mlflow {
    /// The `mlflow` dialect of a validated config.
    pub fn tracking_server(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let auth = match (config.get("username"), config.get("password")) {
            (Some(u), Some(p)) => Auth::Header(env::basic_auth(u, p)),
            _ => Auth::None,
        };
        Ok(Self::new(
            MLFLOW,
            config.get("tracking_uri").unwrap_or(DEFAULT_TRACKING_URI),
            config.get("experiment_id").unwrap_or("0"),
            "/v1/traces",
            auth,
            config
                .get("password")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ))
    }

    /// The `databricks` dialect of a validated config.
    pub fn databricks(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let secrets = ["personal_access_token", "client_secret"]
            .iter()
            .filter_map(|k| config.get(k))
            .map(str::to_owned)
            .collect();
        let auth = if let Some(pat) = config.get("personal_access_token") {
            Auth::Header(format!("Bearer {pat}"))
        } else {
            match (config.get("client_id"), config.get("client_secret")) {
                (Some(id), Some(secret)) => Auth::ClientCredentials {
                    client_id: id.to_owned(),
                    client_secret: secret.to_owned(),
                },
                _ => return Err(missing_databricks_credentials(config)),
            }
        };
        Ok(Self::new(
            DATABRICKS,
            config.require("host")?,
            config.require("experiment_id")?,
            "/api/2.0/otel/v1/traces",
            auth,
            secrets,
        ))
    }

    fn new(
        name: &'static str,
        base: &str,
        experiment_id: &str,
        traces_path: &'static str,
        auth: Auth,
        mut secrets: Vec<String>,
    ) -> Self {
        match &auth {
            Auth::None => {}
            Auth::Header(h) => secrets.push(h.clone()),
            Auth::ClientCredentials {
                client_id,
                client_secret,
            } => secrets.push(env::basic_auth(client_id, client_secret)),
        }
        Self {
            name,
            base: base.trim_end_matches('/').to_owned(),
            experiment_id: experiment_id.to_owned(),
            traces_path,
            auth,
            token: Mutex::new(None),
            secrets,
        }
    }

    /// The `Authorization` value to send now: the fixed one, or a cached or fresh OAuth token.
    async fn authorization(&self, transport: &Transport) -> Result<Option<String>, ExportError> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Header(h) => Ok(Some(h.clone())),
            Auth::ClientCredentials {
                client_id,
                client_secret,
            } => {
                if let Some((token, until)) = self.token.lock().expect("token lock").clone()
                    && Instant::now() < until
                {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let url = env::join(&self.base, "/oidc/v1/token");
                let reply = transport
                    .send(
                        transport
                            .client()
                            .post(&url)
                            .header(AUTHORIZATION, env::basic_auth(client_id, client_secret))
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body("grant_type=client_credentials&scope=all-apis"),
                    )
                    .await?;
                reply.check(self.name, "getting an OAuth token (POST /oidc/v1/token)")?;
                let json = reply.json().unwrap_or(Value::Null);
                let token = json
                    .get("access_token")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ExportError::new(
                            self.name,
                            format!(
                                "{url} answered without an access_token: {}",
                                quote(&reply.message())
                            ),
                        )
                    })?
                    .to_owned();
                // A server's figure: bounded, so that adding it to now cannot overflow.
                let lifetime = json
                    .get("expires_in")
                    .and_then(Value::as_u64)
                    .unwrap_or(3600)
                    .min(MAX_TOKEN_LIFETIME_SECS);
                let until =
                    Instant::now() + Duration::from_secs(lifetime.saturating_sub(60).max(1));
                *self.token.lock().expect("token lock") = Some((token.clone(), until));
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn experiment_url(&self) -> String {
        format!(
            "{}/api/2.0/mlflow/experiments/get?experiment_id={}",
            self.base, self.experiment_id
        )
    }
}

/// What the credentials check makes of the answer to `GET experiments/get`: only MLflow's own
/// answer naming the experiment passes. Any other 2xx (a web app's HTML page, another API's
/// JSON) is "not an MLflow server"; MLflow's `RESOURCE_DOES_NOT_EXIST` is a missing
/// experiment; a 404 that is not MLflow's is a wrong URL.
pub fn check_experiment_reply(
    provider: &str,
    base: &str,
    experiment_id: &str,
    reply: &HttpReply,
) -> Result<(), ExportError> {
    let json = reply.json();
    let mlflow_error = json
        .as_ref()
        .and_then(|j| j.get("error_code"))
        .and_then(Value::as_str);
    let not_mlflow = |what: &str| {
        ExportError::new(
            provider,
            format!(
                "not an MLflow server at {}: GET /api/2.0/mlflow/experiments/get {what}; check \
                 the tracking URI (the server's root, e.g. http://localhost:5000)",
                redact_url(base),
            ),
        )
    };
    if mlflow_error == Some("RESOURCE_DOES_NOT_EXIST") {
        return Err(ExportError::new(
            provider,
            format!(
                "experiment {experiment_id} was not found on {}: {}; check `experiment_id`",
                redact_url(base),
                quote(&reply.message())
            ),
        ));
    }
    match reply.status.as_u16() {
        401 | 403 => return reply.check(provider, "the credentials check (GET experiments/get)"),
        404 if mlflow_error.is_none() => {
            return Err(not_mlflow(&format!(
                "was not found (HTTP 404: {})",
                quote(&reply.message())
            )));
        }
        _ => {}
    }
    reply.check(provider, "the credentials check (GET experiments/get)")?;
    let found = json
        .as_ref()
        .and_then(|j| j.get("experiment"))
        .and_then(|e| e.get("experiment_id"))
        .and_then(Value::as_str);
    match found {
        Some(id) if id == experiment_id => Ok(()),
        Some(id) => Err(ExportError::new(
            provider,
            format!(
                "the server answered with experiment {id}, not {experiment_id}; check \
                 `experiment_id`"
            ),
        )),
        None => {
            let kind = match &json {
                Some(_) => "answered JSON without an experiment".to_owned(),
                None if looks_like_html(&reply.body) => {
                    format!("answered an HTML page (HTTP {})", reply.status.as_u16())
                }
                None => format!(
                    "answered something that is not JSON (HTTP {})",
                    reply.status.as_u16()
                ),
            };
            Err(not_mlflow(&kind))
        }
    }
}

fn looks_like_html(body: &[u8]) -> bool {
    let start = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    let start = start.trim_start();
    start.starts_with("<!doctype html") || start.starts_with("<html") || start.contains("<head")
}

/// A JSON value as MLflow stores span attributes.
/// Attribute keys MLflow or OpenTelemetry give a meaning of their own, which metadata and
/// model parameters must not overwrite.
const RESERVED: &[&str] = &["user.id", "session.id", "service.name"];

/// The prefix of the root-span attributes MLflow's OTLP ingestion turns into trace tags.
pub const TRACE_TAG_PREFIX: &str = "mlflow.traceTag.";

/// `mlflow.llm.cost` (`{input_cost, output_cost, total_cost}`, USD) from the app's own cost, so
/// MLflow shows it rather than its price-table estimate. `None` without a cost in USD.
pub fn cost(o: &Observation) -> Option<Value> {
    let u = o.usage.as_ref()?;
    if u.currency
        .as_deref()
        .is_some_and(|c| !c.eq_ignore_ascii_case("usd"))
    {
        return None;
    }
    let mut m = Map::new();
    for (key, value) in [
        ("input_cost", u.input_cost),
        ("output_cost", u.output_cost),
        ("total_cost", u.total_cost()),
    ] {
        if let Some(v) = value.filter(|v| v.is_finite() && *v >= 0.0) {
            m.insert(key.into(), json!(v));
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// The trace's name, tags and metadata as `mlflow.traceTag.*` attributes of its root span,
/// which MLflow turns into trace tags: `mlflow.traceName` (the trace list's name column), each
/// tag (`key:value` or `key=value` as a key and value, a plain label with the value `true`),
/// and each metadata entry (strings as they are, other values as JSON).
pub fn trace_tags(trace: &Trace, attrs: &mut Attributes) {
    attrs.str(format!("{TRACE_TAG_PREFIX}mlflow.traceName"), &trace.name);
    for tag in &trace.tags {
        let (key, value) = tag
            .split_once([':', '='])
            .filter(|(k, _)| !k.trim().is_empty())
            .map_or((tag.as_str(), "true"), |(k, v)| (k.trim(), v.trim()));
        if !key.starts_with("mlflow.") {
            attrs.str(format!("{TRACE_TAG_PREFIX}{key}"), value);
        }
    }
    for (key, value) in &trace.metadata {
        if key.starts_with("mlflow.") {
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        attrs.str(format!("{TRACE_TAG_PREFIX}{key}"), text);
    }
}

fn mlflow_json(attrs: &mut Attributes, key: &str, value: &Value) {
    attrs.json(key, value);
}

fn retriever_outputs(output: &Value) -> Value {
    match content::documents(output) {
        Some(docs) => Value::Array(
            docs.into_iter()
                .map(|d| {
                    let mut metadata = d.metadata.unwrap_or_default();
                    if let Some(s) = d.score {
                        metadata.entry("score".to_owned()).or_insert(json!(s));
                    }
                    json!({"page_content": d.content, "metadata": metadata, "id": d.id})
                })
                .collect(),
        ),
        None => output.clone(),
    }
}

#[async_trait]
impl Dialect for Mlflow {
    fn name(&self) -> &'static str {
        self.name
    }

    fn endpoint(&self) -> String {
        env::join(&self.base, self.traces_path)
    }

    fn secrets(&self) -> Vec<String> {
        self.secrets.clone()
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![("x-mlflow-experiment-id".into(), self.experiment_id.clone())];
        if let Auth::Header(a) = &self.auth {
            h.push(("authorization".into(), a.clone()));
        }
        h
    }

    async fn dynamic_headers(&self, transport: &Transport) -> Result<HeaderMap, ExportError> {
        let mut h = HeaderMap::new();
        if matches!(self.auth, Auth::ClientCredentials { .. })
            && let Some(a) = self.authorization(transport).await?
        {
            let mut v = HeaderValue::from_str(&a).map_err(|_| {
                ExportError::new(self.name, "the OAuth token is not a valid header value")
            })?;
            v.set_sensitive(true);
            h.insert(AUTHORIZATION, v);
        }
        Ok(h)
    }

    fn span_attributes(&self, trace: &Trace, o: &Observation, attrs: &mut Attributes) {
        let who = trace.attributes_of(o);
        mlflow_json(attrs, "mlflow.spanType", &json!(span_type(o.kind)));
        if let Some(i) = &o.input {
            mlflow_json(attrs, "mlflow.spanInputs", i);
        }
        if let Some(out) = &o.output {
            let out = if o.kind.semantic() == SemanticKind::Retriever {
                retriever_outputs(out)
            } else {
                out.clone()
            };
            mlflow_json(attrs, "mlflow.spanOutputs", &out);
        }
        if o.kind.semantic() == SemanticKind::Llm {
            if let Some(m) = &o.model {
                mlflow_json(attrs, "mlflow.llm.model", &json!(m));
            }
            if let Some(p) = &o.model_provider {
                mlflow_json(attrs, "mlflow.llm.provider", &json!(p));
            }
            if let Some(u) = &o.usage {
                let mut usage = Map::new();
                if let Some(n) = u.input {
                    usage.insert("input_tokens".into(), n.into());
                }
                if let Some(n) = u.output {
                    usage.insert("output_tokens".into(), n.into());
                }
                if let Some(n) = u.total() {
                    usage.insert("total_tokens".into(), n.into());
                }
                if let Some(n) = cache_read_tokens(u) {
                    usage.insert("cache_read_input_tokens".into(), n.into());
                }
                if !usage.is_empty() {
                    mlflow_json(attrs, "mlflow.chat.tokenUsage", &Value::Object(usage));
                }
            }
        }
        if let Some(cost) = cost(o) {
            mlflow_json(attrs, "mlflow.llm.cost", &cost);
        }
        // As MLflow's autologging records them: each model parameter and each metadata entry
        // as an attribute of its own, which the span's Attributes tab shows.
        for (key, value) in o.model_parameters.iter().chain(&o.metadata) {
            if !key.starts_with("mlflow.") && !RESERVED.contains(&key.as_str()) {
                mlflow_json(attrs, key, value);
            }
        }
        attrs.opt_str("user.id", who.user_id);
        attrs.opt_str("session.id", who.session_id);
        if o.parent_id.is_none() || crate::otlp::encode::is_root(trace, o) {
            trace_tags(trace, attrs);
        }
    }

    async fn api_check(&self, transport: &Transport) -> Result<(), ExportError> {
        let mut request = transport.client().get(self.experiment_url());
        if let Some(a) = self.authorization(transport).await? {
            request = request.header(AUTHORIZATION, a);
        }
        let reply = transport.send(request).await?;
        check_experiment_reply(self.name, &self.base, &self.experiment_id, &reply)
    }

    async fn project_key(&self, _transport: &Transport) -> Result<Option<String>, ExportError> {
        Ok(Some(self.experiment_id.clone()))
    }

    async fn project_url(&self, _transport: &Transport) -> Result<Option<String>, ExportError> {
        Ok(Some(match self.name {
            DATABRICKS => format!("{}/ml/experiments/{}/traces", self.base, self.experiment_id),
            _ => format!("{}/#/experiments/{}/traces", self.base, self.experiment_id),
        }))
    }
}

fn missing_databricks_credentials(config: &ProviderConfig) -> ConfigError {
    config.invalid(
        "personal_access_token",
        "Databricks needs credentials: set `personal_access_token`, or `client_id` and `client_secret` of a service principal",
    )
}

fn validate_mlflow(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    if let Some(uri) = config.get("tracking_uri")
        && uri.trim().to_ascii_lowercase().starts_with("databricks")
    {
        return Err(config.invalid(
            "tracking_uri",
            format!(
                "{} is a Databricks URI; use the `databricks` provider for Databricks",
                ops_core::provider::quote_value(uri)
            ),
        ));
    }
    validate_url_with_path(config, "tracking_uri", DEFAULT_TRACKING_URI, None)?;
    config.apply_field_rules()?;
    validate_integer_id(config, "experiment_id")?;
    // The error names the half that is missing.
    match (config.get("username"), config.get("password")) {
        (Some(_), None) => {
            return Err(config.invalid(
                "password",
                "`username` is set but `password` is not; set both for HTTP Basic auth, or \
                 neither",
            ));
        }
        (None, Some(_)) => {
            return Err(config.invalid(
                "username",
                "`password` is set but `username` is not; set both for HTTP Basic auth, or \
                 neither",
            ));
        }
        _ => {}
    }
    validate_timeout(config)?;
    Ok(())
}

fn validate_databricks(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    config.apply_field_rules()?;
    validate_url(config, "host", "")?;
    validate_integer_id(config, "experiment_id")?;
    let pat = config.get("personal_access_token").is_some();
    let m2m = config.get("client_id").is_some() && config.get("client_secret").is_some();
    if !pat && !m2m {
        return Err(missing_databricks_credentials(config));
    }
    validate_timeout(config)?;
    Ok(())
}

fn mlflow_from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let Some(uri) = env::var(MLFLOW, "MLFLOW_TRACKING_URI")? else {
        return Ok(None);
    };
    if uri.to_ascii_lowercase().starts_with("databricks") {
        return Ok(None);
    }
    let uri = env::url_var(MLFLOW, "MLFLOW_TRACKING_URI")?.unwrap_or(uri);
    let mut config = ProviderConfig::new(MLFLOW);
    config.set_env("tracking_uri", uri, "MLFLOW_TRACKING_URI");
    env::set_from(&mut config, "experiment_id", &["MLFLOW_EXPERIMENT_ID"])?;
    env::set_from(&mut config, "username", &["MLFLOW_TRACKING_USERNAME"])?;
    env::set_from(&mut config, "password", &["MLFLOW_TRACKING_PASSWORD"])?;
    env::set_otlp_timeout(&mut config)?;
    Ok(Some(config))
}

fn databricks_from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let host = env::url_var(DATABRICKS, "DATABRICKS_HOST")?;
    let experiment = env::var(DATABRICKS, "MLFLOW_EXPERIMENT_ID")?;
    let (Some(host), Some(experiment)) = (host, experiment) else {
        return Ok(None);
    };
    let mut config = ProviderConfig::new(DATABRICKS);
    config.set_env("host", host, "DATABRICKS_HOST");
    config.set_env("experiment_id", experiment, "MLFLOW_EXPERIMENT_ID");
    env::set_from(&mut config, "personal_access_token", &["DATABRICKS_TOKEN"])?;
    env::set_from(&mut config, "client_id", &["DATABRICKS_CLIENT_ID"])?;
    env::set_from(&mut config, "client_secret", &["DATABRICKS_CLIENT_SECRET"])?;
    env::set_otlp_timeout(&mut config)?;
    Ok(Some(config))
}

fn build_mlflow(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(OtlpProvider::with_timeout(
        Mlflow::tracking_server(config)?,
        config.timeout()?,
    )?))
}

fn build_databricks(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(OtlpProvider::with_timeout(
        Mlflow::databricks(config)?,
        config.timeout()?,
    )?))
}

ops_core::inventory::submit! {
    ProviderFactory::new(MLFLOW, "MLflow", MLFLOW_FIELDS, build_mlflow)
        .with_validate(validate_mlflow)
        .with_env_checked(mlflow_from_env)
        .with_env_vars(MLFLOW_ENV_VARS)
}

ops_core::inventory::submit! {
    ProviderFactory::new(DATABRICKS, "Databricks", DATABRICKS_FIELDS, build_databricks)
        .with_validate(validate_databricks)
        .with_env_checked(databricks_from_env)
        .with_env_vars(DATABRICKS_ENV_VARS)
}

/// The MLflow SDK's variables (a `databricks` tracking URI selects `databricks` instead).
const MLFLOW_ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("MLFLOW_TRACKING_URI", "tracking_uri"),
    EnvVar::sets("MLFLOW_EXPERIMENT_ID", "experiment_id"),
    EnvVar::sets("MLFLOW_TRACKING_USERNAME", "username"),
    EnvVar::sets("MLFLOW_TRACKING_PASSWORD", "password"),
    crate::env::OTLP_TIMEOUT_VARS[0],
    crate::env::OTLP_TIMEOUT_VARS[1],
    crate::env::EXPORT_TIMEOUT_VAR,
];

/// The Databricks SDK's variables.
const DATABRICKS_ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("DATABRICKS_HOST", "host"),
    EnvVar::sets("MLFLOW_EXPERIMENT_ID", "experiment_id"),
    EnvVar::sets("DATABRICKS_TOKEN", "personal_access_token"),
    EnvVar::sets("DATABRICKS_CLIENT_ID", "client_id"),
    EnvVar::sets("DATABRICKS_CLIENT_SECRET", "client_secret"),
    crate::env::OTLP_TIMEOUT_VARS[0],
    crate::env::OTLP_TIMEOUT_VARS[1],
    crate::env::EXPORT_TIMEOUT_VAR,
];
