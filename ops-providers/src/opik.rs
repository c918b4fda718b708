//! Opik (Comet) through its REST batch API (`opik` provider), as the official SDK sends it.
//!
//! - **Endpoints**: `POST {url}v1/private/spans/batch` `{"spans": [...]}` and
//!   `POST {url}v1/private/traces/batch` `{"traces": [...]}`, at most 1000 items and 50 MB
//!   per request, gzip JSON.
//! - **Ids**: UUIDv7 whose timestamps match the start times and are never in the future
//!   ([`crate::native::IdDeriver`]): observations keep their v7 ids; the trace id is the trace
//!   id when that is a v7, else a v7 derived from it at the trace's start.
//! - **Spans**: one per observation; `type` `llm`, `tool`, `guardrail` or `general`; `usage`
//!   as `prompt_tokens`, `completion_tokens`, `total_tokens`; `model`, `provider`,
//!   `total_estimated_cost`; `error_info` for failures. **Traces**: one record per trace, sent
//!   with the export that holds the trace's root (so a part of a long trace, or Dify's
//!   moderation record under a message, does not overwrite the message's trace), with
//!   `thread_id` = the session (Dify's conversation).
//! - **Auth**: `authorization: <api key>` (no `Bearer`) and `Comet-Workspace` when an API key
//!   is set (Opik Cloud); nothing for a self-hosted Opik.
//! - **Answers**: 429 waits for the longest of `Retry-After`, `RateLimit-Reset` and Opik's
//!   `Opik-*-Remaining-Limit-TTL-Millis`; the rest as in [`crate::http`].
//!
//! Config keys (Dify's): `api_key` (secret, optional), `project` (default `Default Project`),
//! `workspace` (optional), `url` (default `https://www.comet.com/opik/api/`; must end with
//! `/api/`), `timeout` (seconds per request, 0.01 to 600, default 10). Environment (the SDK's):
//! `OPIK_API_KEY`, `OPIK_URL_OVERRIDE`, `OPIK_WORKSPACE`, `OPIK_PROJECT_NAME`; the timeout from
//! `OPS_TRACE_EXPORT_TIMEOUT` (seconds).
//!
//! The credentials check is Opik's access check (`POST v1/private/auth`); the project URL is
//! `{ui}/{workspace}/redirect/projects?name={project}`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use ops_core::limits::split_batches;
use ops_core::model::{SemanticKind, UsageUnit};
use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, Provider, ProviderConfig, ProviderFactory,
    TIMEOUT_FIELD, validate_project_name, validate_timeout, validate_url_with_path,
};
use ops_core::{ExportOutcome, Level, Observation, ObservationKind, Trace, async_trait};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::env;
use crate::http::{Classified, Compression, HttpClient, MAX_RETRY_AFTER, Splitter, StatusRules};
use crate::native::{
    IdDeriver, attribute_metadata, error_text, error_type, iso, observations, tags,
};

/// The registry name.
pub const NAME: &str = "opik";
/// Dify's default URL: Opik Cloud's API.
pub const DEFAULT_URL: &str = "https://www.comet.com/opik/api/";
/// Dify's default project.
pub const DEFAULT_PROJECT: &str = "Default Project";
/// The workspace the SDK uses when none is configured.
pub const DEFAULT_WORKSPACE: &str = "default";
/// The most items per batch request.
pub const MAX_ITEMS: usize = 1000;
/// The most bytes per batch request (before compression), as the SDK batches.
pub const MAX_BYTES: usize = 50_000_000;

/// The config keys.
pub const FIELDS: &[ConfigField] = &[
    ConfigField::secret("api_key").not_required(),
    ConfigField::with_default("project", DEFAULT_PROJECT),
    ConfigField::optional("workspace"),
    ConfigField::with_default("url", DEFAULT_URL),
    TIMEOUT_FIELD,
];

/// Opik's span `type` for an observation kind: `llm`, `tool`, `guardrail` or `general`.
pub fn span_type(kind: ObservationKind) -> &'static str {
    match kind.semantic() {
        SemanticKind::Llm => "llm",
        SemanticKind::Tool => "tool",
        SemanticKind::Guardrail => "guardrail",
        _ => "general",
    }
}

/// A value as Opik's SDK sends `input`/`output`: an object as it is, anything else (a string,
/// an array, a number) under `key`, e.g. `{"output": "4"}`.
pub fn io_value(value: &Value, key: &str) -> Value {
    match value {
        Value::Object(_) => value.clone(),
        other => json!({ key: other }),
    }
}

/// Opik's `usage` (`{string: int32}`): `prompt_tokens`, `completion_tokens`, `total_tokens`
/// and the integer details, for token usage.
pub fn usage(o: &Observation) -> Option<Map<String, Value>> {
    let u = o.usage.as_ref()?;
    if u.unit != UsageUnit::Tokens {
        return None;
    }
    let int = |n: u64| json!(i32::try_from(n).unwrap_or(i32::MAX));
    let mut m = Map::new();
    if let Some(n) = u.input {
        m.insert("prompt_tokens".into(), int(n));
    }
    if let Some(n) = u.output {
        m.insert("completion_tokens".into(), int(n));
    }
    if let Some(n) = u.total() {
        m.insert("total_tokens".into(), int(n));
    }
    for (k, v) in &u.details {
        if let Some(n) = v.as_u64() {
            m.entry(k.clone()).or_insert(int(n));
        }
    }
    (!m.is_empty()).then_some(m)
}

/// Opik's `error_info` for a failed observation: `exception_type` and `traceback` (both
/// required and non-empty) and `message`.
pub fn error_info(o: &Observation) -> Option<Value> {
    let message = error_text(o)?;
    Some(json!({
        "exception_type": error_type(o),
        "message": message,
        "traceback": message,
    }))
}

/// The wait a 429 asks for: the longest of `Retry-After`, `RateLimit-Reset` (seconds) and any
/// `Opik-*-Remaining-Limit-TTL-Millis`, capped at an hour. `None` when there is none.
pub fn rate_limit_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let mut wait = crate::http::retry_after(headers, now);
    let mut longer = |d: Duration| wait = Some(wait.map_or(d, |w| w.max(d)));
    for (name, value) in headers {
        let Some(v) = value.to_str().ok().map(str::trim) else {
            continue;
        };
        let name = name.as_str();
        if name.starts_with("opik-") && name.ends_with("-remaining-limit-ttl-millis") {
            if let Ok(ms) = v.parse::<u64>() {
                longer(Duration::from_millis(ms));
            }
        } else if name == "ratelimit-reset"
            && let Ok(s) = v.parse::<u64>()
        {
            longer(Duration::from_secs(s));
        }
    }
    wait.map(|w| w.min(MAX_RETRY_AFTER))
}

/// The Opik provider.
pub struct Opik {
    url: String,
    project: String,
    workspace: Option<String>,
    http: HttpClient,
    ids: IdDeriver,
}

impl fmt::Debug for Opik {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opik")
            .field("url", &ops_core::provider::redact_url(&self.url))
            .field("project", &self.project)
            .field("workspace", &self.workspace)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// Which batch endpoint an item goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/v1/private/traces/batch`.
    Trace,
    /// `/v1/private/spans/batch`.
    Span,
}

/// One trace or span record, with the index of the trace it came from.
#[derive(Debug, Clone)]
pub struct Record {
    /// The batch endpoint.
    pub kind: Kind,
    /// The trace's index in the exported batch.
    pub trace: usize,
    /// The record.
    pub json: Value,
    size: usize,
}

impl Opik {
    /// A provider for the API at `url` (ending with `/api/`), sending to `project`;
    /// `api_key` (and `workspace`) for Opik Cloud.
    pub fn new(
        url: &str,
        project: &str,
        api_key: Option<&str>,
        workspace: Option<&str>,
    ) -> Result<Self, ConfigError> {
        ops_core::provider::check_url(url).map_err(|reason| ConfigError::Invalid {
            provider: NAME.into(),
            field: "url".into(),
            reason,
        })?;
        let api_key = api_key.map(str::trim).filter(|k| !k.is_empty());
        let workspace = workspace
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_owned);
        let mut headers = Vec::new();
        if let Some(k) = api_key {
            headers.push(("authorization".to_owned(), k.to_owned()));
        }
        if api_key.is_some() || workspace.is_some() {
            headers.push((
                "comet-workspace".to_owned(),
                workspace
                    .clone()
                    .unwrap_or_else(|| DEFAULT_WORKSPACE.into()),
            ));
        }
        let http = HttpClient::new(NAME, &headers)
            .map_err(|message| ConfigError::Build {
                provider: NAME.into(),
                message,
            })?
            .with_secrets(api_key);
        let mut url = url.trim().to_owned();
        if !url.ends_with('/') {
            url.push('/');
        }
        Ok(Self {
            url,
            project: project.to_owned(),
            workspace,
            http,
            ids: IdDeriver::default(),
        })
    }

    /// The provider of a validated config.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let mut p = Self::new(
            config.get("url").unwrap_or(DEFAULT_URL),
            config.get("project").unwrap_or(DEFAULT_PROJECT),
            config.get("api_key"),
            config.get("workspace"),
        )?;
        p.http = p
            .http
            .with_timeout(config.timeout()?)
            .map_err(|message| ConfigError::Build {
                provider: NAME.into(),
                message,
            })?;
        Ok(p)
    }

    /// Replaces the timeouts: one request, connecting, a whole export.
    pub fn with_timeouts(
        mut self,
        timeout: Duration,
        connect: Duration,
        export: Duration,
    ) -> Result<Self, String> {
        self.http = self.http.with_timeouts(timeout, connect, export)?;
        Ok(self)
    }

    /// The API root (ending with `/api/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn endpoint(&self, kind: Kind) -> String {
        match kind {
            Kind::Trace => format!("{}v1/private/traces/batch", self.url),
            Kind::Span => format!("{}v1/private/spans/batch", self.url),
        }
    }

    /// The records `batch` is sent as, spans first, at time `now` (which bounds the ids).
    pub fn records(&mut self, batch: &[Arc<Trace>], now: DateTime<Utc>) -> Vec<Record> {
        let mut spans: Vec<Record> = Vec::new();
        let mut traces: Vec<Record> = Vec::new();
        let mut span_at: HashMap<String, usize> = HashMap::new();
        let mut trace_at: HashMap<String, usize> = HashMap::new();
        for (index, trace) in batch.iter().enumerate() {
            let trace_id = self.ids.trace_id(trace, now);
            let obs = observations(trace);
            let ids = crate::native::observation_ids(trace);
            for o in obs.iter() {
                let json = self.span(trace, o, trace_id, now);
                let id = json["id"].as_str().unwrap_or_default().to_owned();
                let record = Record::new(Kind::Span, index, json);
                // One request must not hold an id twice; a later copy wins.
                match span_at.get(&id) {
                    Some(&at) => spans[at] = record,
                    None => {
                        span_at.insert(id, spans.len());
                        spans.push(record);
                    }
                }
            }
            let root = obs.iter().find(|o| {
                crate::native::local_parent(o).is_none()
                    || (crate::native::is_root_in(&ids, o)
                        && o.kind == trace.kind
                        && o.name == trace.name)
            });
            if let Some(root) = root {
                let record = Record::new(Kind::Trace, index, self.trace(trace, root, trace_id));
                let id = trace_id.to_string();
                match trace_at.get(&id) {
                    Some(&at) => traces[at] = record,
                    None => {
                        trace_at.insert(id, traces.len());
                        traces.push(record);
                    }
                }
            }
        }
        spans.extend(traces);
        spans
    }

    /// The request bodies of `batch` (`{"spans": [...]}` and `{"traces": [...]}`, before any
    /// split), for inspection and tests.
    pub fn bodies(&mut self, batch: &[Arc<Trace>]) -> (Value, Value) {
        let records = self.records(batch, Utc::now());
        let pick = |k: Kind| -> Vec<Value> {
            records
                .iter()
                .filter(|r| r.kind == k)
                .map(|r| r.json.clone())
                .collect()
        };
        (
            json!({ "spans": pick(Kind::Span) }),
            json!({ "traces": pick(Kind::Trace) }),
        )
    }

    fn span(&self, trace: &Trace, o: &Observation, trace_id: Uuid, now: DateTime<Utc>) -> Value {
        let mut m = Map::new();
        m.insert(
            "id".into(),
            json!(self.ids.observation_id(o.id, trace_id, now)),
        );
        m.insert("project_name".into(), json!(self.project));
        m.insert("trace_id".into(), json!(trace_id));
        if let Some(p) = crate::native::local_parent(o) {
            m.insert(
                "parent_span_id".into(),
                json!(self.ids.observation_id(p, trace_id, now)),
            );
        }
        m.insert("name".into(), json!(o.name));
        m.insert("type".into(), json!(span_type(o.kind)));
        m.insert("start_time".into(), json!(iso(o.start_time)));
        if let Some(end) = o.end_time {
            m.insert("end_time".into(), json!(iso(end)));
        }
        if let Some(v) = &o.input {
            m.insert("input".into(), io_value(v, "input"));
        }
        if let Some(v) = &o.output {
            m.insert("output".into(), io_value(v, "output"));
        }
        let mut metadata = o.metadata.clone();
        attribute_metadata(trace, o, &mut metadata);
        metadata.insert("ops_kind".into(), json!(o.kind.as_str()));
        if o.level != Level::Default {
            metadata.insert("level".into(), json!(o.level.as_str()));
            if let Some(s) = &o.status_message {
                metadata.insert("status_message".into(), json!(s));
            }
        }
        if !o.model_parameters.is_empty() {
            metadata.insert(
                "model_parameters".into(),
                Value::Object(o.model_parameters.clone()),
            );
        }
        if let Some(t) = o.completion_start_time {
            metadata.insert("completion_start_time".into(), json!(iso(t)));
        }
        m.insert("metadata".into(), Value::Object(metadata));
        if let Some(model) = &o.model {
            m.insert("model".into(), json!(model));
        }
        if let Some(p) = &o.model_provider {
            m.insert("provider".into(), json!(p));
        }
        // As the SDK: the trace's tags go on the trace and its root span only.
        let tags = if crate::native::local_parent(o).is_none() {
            tags(trace, o)
        } else {
            crate::native::unique(&o.tags)
        };
        if !tags.is_empty() {
            m.insert("tags".into(), json!(tags));
        }
        if let Some(u) = usage(o) {
            m.insert("usage".into(), Value::Object(u));
        }
        if let Some(e) = error_info(o) {
            m.insert("error_info".into(), e);
        }
        if let Some(u) = &o.usage
            && u.currency
                .as_deref()
                .is_none_or(|c| c.eq_ignore_ascii_case("usd"))
            && let Some(cost) = u.total_cost().filter(|c| c.is_finite() && *c >= 0.0)
        {
            m.insert("total_estimated_cost".into(), json!(cost));
        }
        // The span's own time, as the SDK sends it: when it was last written (its end).
        m.insert(
            "last_updated_at".into(),
            json!(iso(o.end_time.unwrap_or(o.start_time))),
        );
        Value::Object(m)
    }

    fn trace(&self, trace: &Trace, root: &Observation, trace_id: Uuid) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(trace_id));
        m.insert("project_name".into(), json!(self.project));
        m.insert("name".into(), json!(trace.name));
        m.insert("start_time".into(), json!(iso(trace.start_time)));
        if let Some(end) = trace.end_time.or(root.end_time) {
            m.insert("end_time".into(), json!(iso(end)));
        }
        if let Some(v) = trace.input.as_ref().or(root.input.as_ref()) {
            m.insert("input".into(), io_value(v, "input"));
        }
        if let Some(v) = trace.output.as_ref().or(root.output.as_ref()) {
            m.insert("output".into(), io_value(v, "output"));
        }
        let mut metadata = trace.metadata.clone();
        attribute_metadata(trace, root, &mut metadata);
        metadata.insert("created_from".into(), json!("ops"));
        metadata.insert("ops_kind".into(), json!(trace.kind.as_str()));
        metadata.insert("ops_trace_id".into(), json!(trace.id.as_str()));
        m.insert("metadata".into(), Value::Object(metadata));
        let tags = crate::native::unique(&trace.tags);
        if !tags.is_empty() {
            m.insert("tags".into(), json!(tags));
        }
        if let Some(e) = error_info(root) {
            m.insert("error_info".into(), e);
        }
        if let Some(s) = trace.attributes_of(root).session_id {
            m.insert("thread_id".into(), json!(s));
        }
        m.insert(
            "last_updated_at".into(),
            json!(iso(trace
                .end_time
                .or(root.end_time)
                .unwrap_or(trace.start_time))),
        );
        Value::Object(m)
    }

    async fn post(&self, kind: Kind, records: &[Record], left: Duration) -> Classified {
        let url = self.endpoint(kind);
        let items: Vec<&Value> = records.iter().map(|r| &r.json).collect();
        let body = match kind {
            Kind::Trace => serde_json::to_vec(&json!({ "traces": items })),
            Kind::Span => serde_json::to_vec(&json!({ "spans": items })),
        }
        .expect("JSON values serialise");
        let (body, encoding) = Compression::Gzip.apply(body);
        let mut request = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json");
        if let Some(e) = encoding {
            request = request.header(CONTENT_ENCODING, e);
        }
        let (classified, reply) = self
            .http
            .send_classified(&url, request.body(body), left, StatusRules::NATIVE)
            .await;
        match (classified, reply) {
            (Classified::Retry { after, error }, Some(r)) if r.status.as_u16() == 429 => {
                Classified::Retry {
                    after: rate_limit_wait(&r.headers, SystemTime::now()).or(after),
                    error,
                }
            }
            (c, _) => c,
        }
    }

    fn ui_root(&self) -> String {
        let base = self.url.trim_end_matches('/');
        let base = base.strip_suffix("/api").unwrap_or(base);
        format!("{base}/")
    }
}

impl Record {
    fn new(kind: Kind, trace: usize, json: Value) -> Self {
        let size = ops_core::limits::measure(&json).0;
        Self {
            kind,
            trace,
            json,
            size,
        }
    }
}

/// The provider's calls before their errors are redacted (see the `Provider` impl).
impl Opik {
    async fn export_raw(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        let records = self.records(batch, Utc::now());
        let (spans, traces): (Vec<Record>, Vec<Record>) =
            records.into_iter().partition(|r| r.kind == Kind::Span);
        let mut chunks = split_batches(spans, MAX_ITEMS, MAX_BYTES, |r| r.size);
        chunks.extend(split_batches(traces, MAX_ITEMS, MAX_BYTES, |r| r.size));
        let mut splitter = Splitter::new(
            NAME,
            &self.url,
            chunks,
            batch.len(),
            self.http.export_deadline,
            |r: &Record| r.trace,
        );
        while let Some(left) = splitter.next_chunk() {
            let chunk = splitter.current();
            let kind = chunk.first().map_or(Kind::Span, |r| r.kind);
            let answer = self.post(kind, chunk, left).await;
            splitter.done(answer);
        }
        splitter.finish().outcome(batch.len())
    }

    async fn api_check_raw(&self) -> Result<(), ExportError> {
        let url = format!("{}v1/private/auth", self.url);
        let request = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body("{}");
        let reply = self.http.send(&url, request).await?;
        if matches!(reply.status.as_u16(), 404 | 405) {
            // An Opik without the access check: any authenticated read will do.
            let url = format!("{}v1/private/projects?size=1", self.url);
            return self
                .http
                .send(&url, self.http.get(&url))
                .await?
                .check(NAME, "the credentials check (GET v1/private/projects)");
        }
        reply.check(NAME, "the credentials check (POST v1/private/auth)")
    }

    async fn project_url_raw(&self) -> Result<Option<String>, ExportError> {
        Ok(Some(format!(
            "{}{}/redirect/projects?name={}",
            self.ui_root(),
            env::url_segment(self.workspace.as_deref().unwrap_or(DEFAULT_WORKSPACE)),
            env::url_segment(&self.project)
        )))
    }
}

#[async_trait]
impl Provider for Opik {
    fn name(&self) -> &str {
        NAME
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        let outcome = self.export_raw(batch).await;
        self.http.redactor().outcome(outcome)
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        let result = self.api_check_raw().await;
        result.map_err(|e| self.http.redactor().error(e))
    }

    async fn project_url(&self) -> Result<Option<String>, ExportError> {
        let result = self.project_url_raw().await;
        result.map_err(|e| self.http.redactor().error(e))
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.http.timeout())
    }
}

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    config.apply_field_rules()?;
    validate_url_with_path(config, "url", DEFAULT_URL, Some("/api/"))?;
    validate_project_name(config, "project", DEFAULT_PROJECT);
    validate_timeout(config)?;
    Ok(())
}

fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let key = env::var(NAME, "OPIK_API_KEY")?;
    let url = env::url_var(NAME, "OPIK_URL_OVERRIDE")?;
    if key.is_none() && url.is_none() {
        return Ok(None);
    }
    let mut config = ProviderConfig::new(NAME);
    if let Some(k) = key {
        config.set_env("api_key", k, "OPIK_API_KEY");
    }
    if let Some(u) = url {
        // The SDK takes `http://localhost:5173/api`; Dify's key wants the trailing slash.
        let u = u.trim_end_matches('/');
        config.set_env("url", format!("{u}/"), "OPIK_URL_OVERRIDE");
    }
    env::set_from(&mut config, "workspace", &["OPIK_WORKSPACE"])?;
    env::set_from(&mut config, "project", &["OPIK_PROJECT_NAME"])?;
    env::set_timeout_from(&mut config, &[])?;
    Ok(Some(config))
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(Opik::from_config(config)?))
}

ops_core::inventory::submit! {
    ProviderFactory::new(NAME, "Opik", FIELDS, build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(ENV_VARS)
}

/// The Opik SDK's variables.
const ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("OPIK_API_KEY", "api_key"),
    EnvVar::sets("OPIK_URL_OVERRIDE", "url"),
    EnvVar::sets("OPIK_WORKSPACE", "workspace"),
    EnvVar::sets("OPIK_PROJECT_NAME", "project"),
    crate::env::EXPORT_TIMEOUT_VAR,
];

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    #[test]
    fn rate_limit_waits_take_the_longest_hint() {
        let mut h = HeaderMap::new();
        let mut set = |k: &str, v: &str| {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        };
        set("retry-after", "2");
        set("opik-user-limit", "user");
        set("opik-user-remaining-limit-ttl-millis", "4500");
        set("ratelimit-reset", "3");
        let now = SystemTime::now();
        assert_eq!(rate_limit_wait(&h, now), Some(Duration::from_millis(4500)));
        assert_eq!(rate_limit_wait(&HeaderMap::new(), now), None);
    }

    #[test]
    fn io_values_fit_opiks_shapes() {
        assert_eq!(io_value(&json!("x"), "input"), json!({"input": "x"}));
        assert_eq!(io_value(&json!("4"), "output"), json!({"output": "4"}));
        assert_eq!(io_value(&json!({"a": 1}), "input"), json!({"a": 1}));
        assert_eq!(
            io_value(&json!([{"a": 1}]), "input"),
            json!({"input": [{"a": 1}]})
        );
        assert_eq!(io_value(&json!(["a"]), "output"), json!({"output": ["a"]}));
        assert_eq!(io_value(&json!(3), "output"), json!({"output": 3}));
    }

    #[test]
    fn project_urls() {
        let o = Opik::new(DEFAULT_URL, "My Project", Some("k"), Some("ws")).unwrap();
        assert_eq!(
            o.ui_root(),
            "https://www.comet.com/opik/",
            "the UI is the API URL without api/"
        );
        let local = Opik::new("http://localhost:5173/api/", "p", None, None).unwrap();
        assert_eq!(local.ui_root(), "http://localhost:5173/");
        assert!(local.http.headers().is_empty(), "self-hosted sends no auth");
        assert_eq!(o.http.headers().len(), 2);
    }
}
