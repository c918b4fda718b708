//! LangSmith through its runs API (`langsmith` provider), sent as the official SDK sends it.
//!
//! - **Endpoints**: `GET /info` once (whether multipart ingestion is on, and the batch size
//!   limit), then `POST /runs/multipart`: parts `post.<id>` (or `patch.<id>`) with the run,
//!   plus `.inputs`, `.outputs`, `.events` and `.extra`, each with its own `Content-Type` and
//!   `Content-Length`. Where `/info` says multipart is off, or the endpoint answers 404/405,
//!   runs go to `POST /runs/batch` as `{"post": [...], "patch": [...]}`.
//! - **Auth**: `x-api-key`, plus `X-Tenant-Id` when `workspace_id` is set (org-scoped keys).
//! - **Runs** ([`runs`]): one per observation, `run_type` from its kind (`llm`, `tool`,
//!   `retriever`, `chain`); `trace_id`, `parent_run_id` and `dotted_order` from the tree and
//!   the start times, clamped so a child never sorts before its parent ([`dotted`]); token
//!   usage in `extra.metadata.usage_metadata` with `ls_provider` and `ls_model_name`;
//!   `session_name` = the project; the session (Dify's conversation) as
//!   `extra.metadata.session_id`, which LangSmith groups threads by.
//! - **Answers**: 2xx and 409 (the run is already there) are delivered; batches stay within
//!   20 MiB (or the smaller limit `/info` gives) and are split on 413. See [`crate::http`] for
//!   the rest.
//!
//! Config keys (Dify's): `api_key` (secret), `project` (required), `endpoint` (default
//! `https://api.smith.langchain.com`; https, or http to this machine; the path is kept, so a
//! self-hosted `https://host/api/v1` works, where Dify keeps only the host), `workspace_id`
//! (optional, not in Dify: the `X-Tenant-Id` of org-scoped keys), and `timeout` (seconds per
//! request, 0.01 to 600, default 10).
//! Environment (the SDK's): `LANGSMITH_API_KEY`, `LANGSMITH_ENDPOINT`, `LANGSMITH_PROJECT`,
//! `LANGSMITH_WORKSPACE_ID` (or their `LANGCHAIN_*` names); the timeout from
//! `OPS_TRACE_EXPORT_TIMEOUT` (seconds).
//!
//! The credentials check lists projects (`GET /sessions?limit=1`); the project URL is
//! `{ui}/o/{tenant}/projects/p/{project id}`, looked up by name.

pub mod dotted;
pub mod runs;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ops_core::limits::split_batches;
use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, Provider, ProviderConfig, ProviderFactory,
    TIMEOUT_FIELD, validate_project_name, validate_timeout,
};
use ops_core::{ExportOutcome, Trace, async_trait};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;

use self::dotted::{DottedOrders, Limits, Node, Resolved};
use self::runs::{Draft, RunParts};
use crate::env;
use crate::http::{Classified, HttpClient, Splitter, StatusRules};
use crate::native::observations;

/// The registry name.
pub const NAME: &str = "langsmith";
/// Dify's default endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://api.smith.langchain.com";
/// The SDK's batch limit: 20 MiB.
pub const MAX_BATCH_BYTES: usize = 20 * 1024 * 1024;
/// The SDK's default number of runs per batch (`/info`'s `size_limit`).
pub const DEFAULT_BATCH_RUNS: usize = 100;
/// The time limit of the `/info` lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a held run's request may fail before it is dropped.
const MAX_HELD_ATTEMPTS: u8 = 3;

/// The config keys.
pub const FIELDS: &[ConfigField] = &[
    ConfigField::secret("api_key"),
    ConfigField::plain("project"),
    ConfigField::with_default("endpoint", DEFAULT_ENDPOINT),
    ConfigField::optional("workspace_id"),
    TIMEOUT_FIELD,
];

/// What `GET /info` says about ingestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestInfo {
    /// Whether `/runs/multipart` is the endpoint to use.
    pub multipart: bool,
    /// The most bytes per request.
    pub max_bytes: usize,
    /// The most runs per request.
    pub max_runs: usize,
}

impl Default for IngestInfo {
    fn default() -> Self {
        Self {
            multipart: true,
            max_bytes: MAX_BATCH_BYTES,
            max_runs: DEFAULT_BATCH_RUNS,
        }
    }
}

impl IngestInfo {
    /// Reads `/info`'s `batch_ingest_config`; missing fields keep their defaults, and the byte
    /// limit never exceeds 20 MiB.
    pub fn parse(info: &Value) -> Self {
        let d = Self::default();
        let cfg = info.get("batch_ingest_config");
        let get = |k: &str| cfg.and_then(|c| c.get(k));
        Self {
            multipart: get("use_multipart_endpoint")
                .and_then(Value::as_bool)
                .unwrap_or(d.multipart),
            max_bytes: get("size_limit_bytes")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .map_or(d.max_bytes, |n| n.min(MAX_BATCH_BYTES)),
            max_runs: get("size_limit")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(d.max_runs),
        }
    }
}

/// The LangSmith provider.
pub struct LangSmith {
    endpoint: String,
    project: String,
    http: HttpClient,
    info: Option<IngestInfo>,
    state: DottedOrders<Draft>,
    export: u64,
}

impl fmt::Debug for LangSmith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LangSmith")
            .field("endpoint", &ops_core::provider::redact_url(&self.endpoint))
            .field("project", &self.project)
            .field("http", &self.http)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// One run ready to send, and who answers for it.
struct Item {
    owner: usize,
    parts: RunParts,
}

impl LangSmith {
    /// A provider for `endpoint` (the API root) and `project`, authenticated with `api_key`
    /// and, for org-scoped keys, `workspace_id`.
    pub fn new(
        endpoint: &str,
        project: &str,
        api_key: &str,
        workspace_id: Option<&str>,
    ) -> Result<Self, ConfigError> {
        ops_core::provider::check_url(endpoint).map_err(|reason| ConfigError::Invalid {
            provider: NAME.into(),
            field: "endpoint".into(),
            reason,
        })?;
        let mut headers = vec![("x-api-key".to_owned(), api_key.to_owned())];
        if let Some(w) = workspace_id.filter(|w| !w.trim().is_empty()) {
            headers.push(("x-tenant-id".to_owned(), w.trim().to_owned()));
        }
        let http = HttpClient::new(NAME, &headers)
            .map_err(|message| ConfigError::Build {
                provider: NAME.into(),
                message,
            })?
            .with_secrets([api_key]);
        Ok(Self {
            endpoint: endpoint.trim().trim_end_matches('/').to_owned(),
            project: project.to_owned(),
            http,
            info: None,
            state: DottedOrders::default(),
            export: 0,
        })
    }

    /// The provider of a validated config.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let mut p = Self::new(
            config.get("endpoint").unwrap_or(DEFAULT_ENDPOINT),
            config.require("project")?,
            config.require("api_key")?,
            config.get("workspace_id"),
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

    /// Replaces the limits of the dotted-order state (what is remembered and held).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.state = DottedOrders::new(limits);
        self
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

    /// The API root requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The project runs go to.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The dotted-order state: how many runs are remembered and held.
    pub fn dotted_orders(&self) -> &DottedOrders<Draft> {
        &self.state
    }

    /// What `/info` said, once it was asked.
    pub fn ingest_info(&self) -> Option<IngestInfo> {
        self.info
    }

    fn url(&self, path: &str) -> String {
        env::join(&self.endpoint, path)
    }

    /// Asks `/info` once. A server without it (404) gets the defaults; a failure is tried
    /// again with the next export, using the defaults meanwhile.
    async fn ingest(&mut self) -> IngestInfo {
        if let Some(i) = self.info {
            return i;
        }
        let url = self.url("/info");
        // Short, so that it leaves the export its time.
        let request = self
            .http
            .get(&url)
            .header(ACCEPT, "application/json")
            .timeout(LOOKUP_TIMEOUT.min(self.http.timeout()));
        match self.http.send(&url, request).await {
            Ok(reply) if reply.status.is_success() => {
                let info = reply
                    .json()
                    .map_or_else(IngestInfo::default, |j| IngestInfo::parse(&j));
                self.info = Some(info);
                info
            }
            Ok(reply) if reply.status.as_u16() == 404 => {
                self.info = Some(IngestInfo::default());
                IngestInfo::default()
            }
            Ok(reply) => {
                tracing::debug!(status = %reply.status, "ops: langsmith /info failed; using defaults");
                IngestInfo::default()
            }
            Err(e) => {
                let e = self.http.redactor().error(e);
                tracing::debug!(error = %e, "ops: langsmith /info failed; using defaults");
                IngestInfo::default()
            }
        }
    }

    /// The runs of `batch`, placed: those of this export's traces, and held ones that can be
    /// placed now.
    fn place(&mut self, batch: &[Arc<Trace>]) -> Vec<Resolved<Draft>> {
        self.export += 1;
        let export = self.export;
        let mut nodes = Vec::new();
        for (i, trace) in batch.iter().enumerate() {
            for o in observations(trace).iter() {
                let draft = Draft::new(trace, o, i, export, &self.project);
                nodes.push(Node {
                    id: o.id,
                    parent: crate::native::local_parent(o),
                    start: o.start_time,
                    ended: o.end_time.is_some(),
                    size: 512
                        + o.input
                            .as_ref()
                            .map_or(0, |v| ops_core::limits::measure(v).0)
                        + o.output
                            .as_ref()
                            .map_or(0, |v| ops_core::limits::measure(v).0),
                    payload: draft,
                });
            }
        }
        self.state.resolve(nodes, Instant::now())
    }

    /// Sends placed runs; returns the report and the held runs (with their owner index) for
    /// putting back when their request failed.
    async fn send(
        &mut self,
        runs: Vec<Resolved<Draft>>,
        traces: usize,
    ) -> (crate::http::SplitReport, Vec<(usize, Resolved<Draft>)>) {
        let info = self.ingest().await;
        let mut held = Vec::new();
        let mut items = Vec::with_capacity(runs.len());
        for run in runs {
            let owner = if run.payload.export == self.export {
                run.payload.trace
            } else {
                let owner = traces + held.len();
                held.push((owner, run.clone()));
                owner
            };
            items.push(Item {
                owner,
                parts: RunParts::new(&run),
            });
        }
        // Each trace's runs together (parents first, as placed), so a split request keeps
        // traces apart where it can.
        items.sort_by_key(|i| i.owner);
        let owners = traces + held.len();
        let chunks = split_batches(items, info.max_runs, info.max_bytes, |i| i.parts.size());
        let mut multipart = info.multipart;
        let mut splitter = Splitter::new(
            NAME,
            &self.url("/runs/multipart"),
            chunks,
            owners,
            self.http.export_deadline,
            |i: &Item| i.owner,
        );
        while let Some(left) = splitter.next_chunk() {
            let parts: Vec<&RunParts> = splitter.current().iter().map(|i| &i.parts).collect();
            let mut answer = self.post(&parts, multipart, left).await;
            if multipart && matches!(answer.1, Some(404 | 405)) {
                // This server has no multipart ingestion: use /runs/batch from now on.
                multipart = false;
                self.info = Some(IngestInfo {
                    multipart: false,
                    ..info
                });
                answer = self.post(&parts, false, left).await;
            }
            splitter.done(answer.0);
        }
        (splitter.finish(), held)
    }

    /// Posts `runs` to `/runs/multipart` or `/runs/batch`; returns the classified answer and
    /// the status.
    async fn post(
        &self,
        runs: &[&RunParts],
        multipart: bool,
        left: Duration,
    ) -> (Classified, Option<u16>) {
        let (url, content_type, body) = if multipart {
            let (boundary, body) = runs::multipart(runs);
            (
                self.url("/runs/multipart"),
                format!("multipart/form-data; boundary={boundary}"),
                body,
            )
        } else {
            (
                self.url("/runs/batch"),
                "application/json".to_owned(),
                runs::batch(runs),
            )
        };
        let request = self
            .http
            .post(&url)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, content_type)
            .body(body);
        let (classified, reply) = self
            .http
            .send_classified(&url, request, left, StatusRules::NATIVE)
            .await;
        let status = reply.as_ref().map(|r| r.status.as_u16());
        if status == Some(409) {
            // Already there: a re-sent run (the queue retried, or a part came twice).
            return (Classified::accepted(), status);
        }
        (classified, status)
    }

    /// Puts held runs whose request failed back, to go with the next export; drops a run
    /// after [`MAX_HELD_ATTEMPTS`] failures.
    fn rehold(&mut self, report: &crate::http::SplitReport, held: Vec<(usize, Resolved<Draft>)>) {
        for (owner, run) in held {
            if !report.has_failed(owner) {
                continue;
            }
            let mut payload = run.payload;
            payload.attempts += 1;
            if let (Some(parent), Some(m)) = (
                run.orphaned,
                payload
                    .extra
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut),
            ) {
                m.insert(
                    "ops_parent_run_id".into(),
                    Value::String(parent.to_string()),
                );
            }
            if payload.attempts >= MAX_HELD_ATTEMPTS {
                tracing::warn!(run = %run.id, "ops: langsmith dropped a run after repeated failures");
                continue;
            }
            let start = payload
                .main
                .get("start_time")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(chrono::Utc::now);
            let ended = payload.main.contains_key("end_time");
            self.state.hold(
                Node {
                    id: run.id,
                    // An orphan that was sent as a root stays one.
                    parent: run.parent,
                    start,
                    ended,
                    size: 512,
                    payload,
                },
                Instant::now(),
            );
        }
    }

    /// The placed runs a batch is sent as, serialised, for inspection and tests. Places them
    /// as an export would (held runs included) but sends nothing.
    pub fn encode(&mut self, batch: &[Arc<Trace>]) -> Vec<RunParts> {
        self.place(batch).iter().map(RunParts::new).collect()
    }

    /// The web app's root for this endpoint.
    pub fn ui_root(&self) -> String {
        let e = &self.endpoint;
        if let Some(rest) = e.strip_prefix("https://api.smith.langchain.com") {
            return format!("https://smith.langchain.com{rest}");
        }
        if let Some(rest) = e.strip_prefix("https://eu.api.smith.langchain.com") {
            return format!("https://eu.smith.langchain.com{rest}");
        }
        e.strip_suffix("/api/v1")
            .or_else(|| e.strip_suffix("/api"))
            .unwrap_or(e)
            .to_owned()
    }

    async fn session(&self) -> Result<Option<Value>, ExportError> {
        let url = format!(
            "{}?name={}&limit=1",
            self.url("/sessions"),
            env::url_segment(&self.project)
        );
        let reply = self.http.send(&url, self.http.get(&url)).await?;
        reply.check(NAME, "looking up the project (GET /sessions)")?;
        Ok(reply
            .json()
            .and_then(|j| j.as_array().and_then(|a| a.first().cloned())))
    }
}

/// The provider's calls before their errors are redacted (see the `Provider` impl).
impl LangSmith {
    async fn export_raw(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        let runs = self.place(batch);
        if runs.is_empty() {
            // Everything is held for a parent that has not arrived yet.
            return ExportOutcome::Delivered;
        }
        let (report, held) = self.send(runs, batch.len()).await;
        self.rehold(&report, held);
        report.outcome(batch.len())
    }

    async fn api_check_raw(&self) -> Result<(), ExportError> {
        let url = format!("{}?limit=1", self.url("/sessions"));
        self.http
            .send(&url, self.http.get(&url))
            .await?
            .check(NAME, "the credentials check (GET /sessions)")
    }

    async fn project_key_raw(&self) -> Result<Option<String>, ExportError> {
        Ok(self
            .session()
            .await?
            .and_then(|s| s.get("id").and_then(Value::as_str).map(str::to_owned)))
    }

    async fn project_url_raw(&self) -> Result<Option<String>, ExportError> {
        let ui = self.ui_root();
        Ok(Some(match self.session().await? {
            Some(s) => match (
                s.get("tenant_id").and_then(Value::as_str),
                s.get("id").and_then(Value::as_str),
            ) {
                (Some(tenant), Some(id)) => format!("{ui}/o/{tenant}/projects/p/{id}"),
                _ => ui,
            },
            // LangSmith creates the project with its first run.
            None => ui,
        }))
    }

    async fn shutdown_raw(&mut self) {
        // Runs still waiting for a parent will not get one now: send them as roots.
        let runs = self.state.release_all();
        if runs.is_empty() {
            return;
        }
        self.export += 1;
        let (report, _) = self.send(runs, 0).await;
        if report.failed.iter().any(|f| *f) {
            tracing::warn!("ops: langsmith could not send some held runs at shutdown");
        }
    }
}

#[async_trait]
impl Provider for LangSmith {
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

    async fn project_key(&self) -> Result<Option<String>, ExportError> {
        let result = self.project_key_raw().await;
        result.map_err(|e| self.http.redactor().error(e))
    }

    async fn project_url(&self) -> Result<Option<String>, ExportError> {
        let result = self.project_url_raw().await;
        result.map_err(|e| self.http.redactor().error(e))
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.http.timeout())
    }

    async fn shutdown(&mut self) {
        self.shutdown_raw().await;
    }
}

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    config.apply_field_rules()?;
    let raw = config
        .get("endpoint")
        .unwrap_or(DEFAULT_ENDPOINT)
        .to_owned();
    let url = url::Url::parse(raw.trim()).map_err(|e| {
        config.invalid(
            "endpoint",
            format!("{raw:?} is not a URL ({e}); expected e.g. {DEFAULT_ENDPOINT}"),
        )
    })?;
    let loopback = env::is_loopback(&url);
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(config.invalid(
            "endpoint",
            format!(
                "{raw:?} must start with https:// (LangSmith only takes https; http is allowed for localhost)"
            ),
        ));
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(config.invalid("endpoint", format!("{raw:?} has no host")));
    };
    let mut out = format!("{}://{host}", url.scheme());
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path().trim_end_matches('/'));
    config.set("endpoint", out);
    let project = validate_project_name(config, "project", "");
    if project.is_empty() {
        return Err(ConfigError::Missing {
            provider: NAME.into(),
            field: "project".into(),
        });
    }
    validate_timeout(config)?;
    Ok(())
}

fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let Some((key_var, key)) = env::first_var(NAME, &["LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"])?
    else {
        return Ok(None);
    };
    let mut config = ProviderConfig::new(NAME);
    config.set_env("api_key", key, key_var);
    match env::first_var(NAME, &["LANGSMITH_PROJECT", "LANGCHAIN_PROJECT"])? {
        Some((var, project)) => config.set_env("project", project, var),
        None => config.set("project", "default"),
    }
    env::set_url_from(
        &mut config,
        "endpoint",
        &["LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT"],
    )?;
    env::set_from(
        &mut config,
        "workspace_id",
        &["LANGSMITH_WORKSPACE_ID", "LANGCHAIN_WORKSPACE_ID"],
    )?;
    env::set_timeout_from(&mut config, &[])?;
    Ok(Some(config))
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(LangSmith::from_config(config)?))
}

ops_core::inventory::submit! {
    ProviderFactory::new(NAME, "LangSmith", FIELDS, build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(ENV_VARS)
}

/// The LangSmith SDK's variables (the `LANGSMITH_` ones win over the older `LANGCHAIN_`).
const ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("LANGSMITH_API_KEY", "api_key"),
    EnvVar::sets("LANGCHAIN_API_KEY", "api_key"),
    EnvVar::sets("LANGSMITH_PROJECT", "project"),
    EnvVar::sets("LANGCHAIN_PROJECT", "project"),
    EnvVar::sets("LANGSMITH_ENDPOINT", "endpoint"),
    EnvVar::sets("LANGCHAIN_ENDPOINT", "endpoint"),
    EnvVar::sets("LANGSMITH_WORKSPACE_ID", "workspace_id"),
    EnvVar::sets("LANGCHAIN_WORKSPACE_ID", "workspace_id"),
    crate::env::EXPORT_TIMEOUT_VAR,
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn info_is_read_with_defaults() {
        let i = IngestInfo::parse(&json!({"batch_ingest_config": {
            "use_multipart_endpoint": false, "size_limit": 10, "size_limit_bytes": 1000
        }}));
        assert_eq!(
            i,
            IngestInfo {
                multipart: false,
                max_bytes: 1000,
                max_runs: 10
            }
        );
        let i =
            IngestInfo::parse(&json!({"batch_ingest_config": {"size_limit_bytes": 1u64 << 40}}));
        assert_eq!(i.max_bytes, MAX_BATCH_BYTES);
        assert_eq!(IngestInfo::parse(&json!({})), IngestInfo::default());
    }

    #[test]
    fn ui_roots() {
        let ui = |e: &str| LangSmith::new(e, "p", "k", None).unwrap().ui_root();
        assert_eq!(ui(DEFAULT_ENDPOINT), "https://smith.langchain.com");
        assert_eq!(
            ui("https://eu.api.smith.langchain.com"),
            "https://eu.smith.langchain.com"
        );
        assert_eq!(
            ui("https://ls.example.com/api/v1/"),
            "https://ls.example.com"
        );
    }
}
