//! W&B Weave through its trace server's calls API (`weave` provider), as the official SDK
//! sends it.
//!
//! - **Endpoints**: `POST {endpoint}/call/upsert_batch` with a `start` and an `end` item per
//!   call (`{"batch": [{"mode": "start", "req": {"start": {...}}}, ...]}`), or, for a project
//!   in calls-complete mode, `POST {endpoint}/v2/{entity}/{project}/calls/complete` with one
//!   finished call per item. The provider starts with `upsert_batch`, which every trace server
//!   takes; when the server answers that the project needs calls-complete mode
//!   (`CALLS_COMPLETE_MODE_REQUIRED`) it switches and re-sends, and a server without the v2
//!   endpoint (404) switches it back.
//! - **Project**: `project_id` is `entity/project`; without an entity, the key's default
//!   entity is looked up once (W&B GraphQL `viewer`).
//! - **Auth**: HTTP Basic `api:<key>` (`wb_at_…` tokens as Bearer).
//! - **Calls**: one per observation, ids UUIDv7 ([`crate::native::IdDeriver`]);
//!   `summary.usage` per model and `summary.status_counts` over the call and its descendants
//!   in the export, as the SDK rolls them up; `exception` as the SDK's JSON string of the
//!   error's type, message and (when the error had causes) `traceback`; the session as
//!   `thread_id`, with the trace's root call as `turn_id`; the app's cost as
//!   `attributes.ops.cost`; metadata in `attributes.ops.metadata`, the trace's on its root
//!   call (which stands for the trace in weave).
//! - **Ops**, as the SDK publishes them, so the UI's op filter and grouping work: the source
//!   file once (`POST /file/create`, multipart, `obj.py` holding the placeholder weave's own
//!   server stores for ops it did not see the code of, [`OP_SOURCE`]), then each op name once
//!   (`POST /obj/create` of `{"_type": "CustomWeaveType", "weave_type": {"type": "Op"},
//!   "files": {"obj.py": <digest>}}` under the SDK's object name, [`object_name`]); the call's
//!   `op_name` is then `weave:///{entity}/{project}/op/{name}:{digest}` (and `display_name`
//!   the name as it was, when weave spells it otherwise). An op that could not be published
//!   keeps its plain name; it is tried again by later exports, [`MAX_OP_ATTEMPTS`] times.
//! - **Cost**: weave computes costs when it reads calls, from per-token prices per model and
//!   project (`llm_token_prices`). For each model whose generations carry tokens and the
//!   app's cost, the provider registers the prices that cost implies ([`token_prices`]) with
//!   `POST /cost/create` (`{"project_id", "costs": {model: {prompt_token_cost,
//!   completion_token_cost, *_unit, effective_date, provider_id}}}`), effective from the
//!   call's start, once per model and price; so the cost column shows the app's cost. Exact
//!   while a model's prices stay the same; a call is priced with the latest registered price
//!   effective at its start.
//! - **Side requests** (ops, prices) never fail an export: failures are counted
//!   ([`Weave::stats`]) and logged, each kind takes at most [`SIDE_REQUESTS_BUDGET`] per
//!   export, and the caches are bounded ([`MAX_OPS`], [`MAX_PRICES`]).
//! - **Already there**: weave's ClickHouse trace server accepts a re-sent call (it appends the
//!   row and merges by id), so re-sending a trace is delivered as is. An answer that says the
//!   calls exist (HTTP 409, "already exists", a unique-constraint message) is taken as
//!   delivered and counted, for a request of one trace; a request of several is halved.
//! - **Limits**: at most 31 MiB per request (the server takes 32 MiB); split on 413.
//!
//! Config keys (Dify's): `api_key` (secret), `project` (required; `entity/project` also
//! works), `entity` (optional), `endpoint` (the trace server, default
//! `https://trace.wandb.ai`, path kept for dedicated `…/traces` servers), `host` (the W&B API,
//! default `https://api.wandb.ai`), `timeout` (seconds per request, 0.01 to 600, default 10).
//! Environment (the SDK's): `WANDB_API_KEY`, `WF_TRACE_SERVER_URL`, `WANDB_BASE_URL`,
//! `WANDB_ENTITY`, `WANDB_PROJECT`; the timeout from `OPS_TRACE_EXPORT_TIMEOUT` (seconds).
//!
//! The credentials check asks W&B who the key belongs to (GraphQL `viewer`); the project URL
//! is `https://wandb.ai/{entity}/{project}`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::limits::split_batches;
use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, ExportError, Provider, ProviderConfig, ProviderFactory,
    TIMEOUT_FIELD, validate_timeout, validate_url_with_path,
};
use ops_core::{ExportOutcome, Level, Observation, Trace, async_trait};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::env;
use crate::http::{Classified, HttpClient, Splitter, StatusRules};
use crate::native::{
    IdDeriver, as_object, attribute_metadata, error_text, iso, observations, tags,
};

/// The registry name.
pub const NAME: &str = "weave";
/// Dify's default trace server.
pub const DEFAULT_ENDPOINT: &str = "https://trace.wandb.ai";
/// The W&B API host.
pub const DEFAULT_HOST: &str = "https://api.wandb.ai";
/// The most bytes per request: the client keeps 1 MiB below the server's 32 MiB.
pub const MAX_BYTES: usize = 31 * 1024 * 1024;
/// The most calls per request.
pub const MAX_CALLS: usize = 1000;
/// The error code of a project that only takes `calls/complete`.
pub const CALLS_COMPLETE_MODE_REQUIRED: &str = "CALLS_COMPLETE_MODE_REQUIRED";
/// The client capabilities sent with every request: `end` items carry `trace_id`.
pub const CLIENT_CAPABILITIES: &str = "trace_id_on_end";

const DEFAULT_ENTITY_QUERY: &str = "query DefaultEntity {\n  viewer {\n    username\n    defaultEntity {\n      name\n    }\n  }\n}";

/// The config keys.
pub const FIELDS: &[ConfigField] = &[
    ConfigField::secret("api_key"),
    ConfigField::optional("entity"),
    ConfigField::plain("project"),
    ConfigField::with_default("endpoint", DEFAULT_ENDPOINT),
    ConfigField::optional("host"),
    TIMEOUT_FIELD,
];

/// A call's `exception`, as the SDK sends a failure: a JSON string of the error's type and
/// message (`{"type": "std::io::Error", "message": "..."}`), so the UI shows the type, with
/// the error's chain of causes as `traceback` when one was captured
/// ([`Observation::error_chain`]); `null` for a call that did not fail.
pub fn exception(o: &Observation) -> Value {
    match error_text(o) {
        Some(message) => {
            let mut e = json!({"type": crate::native::error_type(o), "message": message});
            if let Some(chain) = o.error_chain() {
                e["traceback"] = json!(chain);
            }
            Value::String(e.to_string())
        }
        None => Value::Null,
    }
}

/// The source the provider uploads for every op it publishes (`obj.py`), the placeholder
/// weave's trace server itself stores for ops it creates from OpenTelemetry spans: Rust code
/// is not captured.
pub const OP_SOURCE: &str =
    "def func(*args, **kwargs):\n    ... # Code-capture unavailable for this op\n";
/// The longest `display_name` weave takes, in characters (`MAX_DISPLAY_NAME_LENGTH`).
pub const MAX_DISPLAY_NAME: usize = 1024;
/// The most op names whose publication the provider remembers; past it, new names go as
/// plain names.
pub const MAX_OPS: usize = 1024;
/// The most ops published in one export (the rest go as plain names, and are published by
/// a later export).
pub const MAX_OPS_PER_EXPORT: usize = 64;
/// How many times the provider tries to publish an op before it keeps its plain name.
pub const MAX_OP_ATTEMPTS: u8 = 3;
/// The most prices the provider remembers having registered; past it, it forgets them all
/// (a price registered twice is harmless).
pub const MAX_PRICES: usize = 1024;
/// The most `cost/create` requests in one export.
pub const MAX_PRICE_REQUESTS_PER_EXPORT: usize = 8;
/// The longest an export spends publishing ops and registering prices, each.
pub const SIDE_REQUESTS_BUDGET: Duration = Duration::from_secs(5);

/// What the provider did besides writing calls. None of it ever fails or delays a call's
/// delivery beyond [`SIDE_REQUESTS_BUDGET`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WeaveStats {
    /// Ops published (`obj/create` answered with a digest).
    pub ops_published: u64,
    /// Op publications that failed (the calls kept their plain name).
    pub op_failures: u64,
    /// Model prices registered through `cost/create`.
    pub prices_registered: u64,
    /// `cost/create` requests that failed.
    pub price_failures: u64,
    /// Requests the server answered with "already exists", counted as delivered.
    pub duplicates: u64,
}

/// An op name's publication.
#[derive(Debug, Clone)]
enum OpState {
    /// Published: the `weave:///…/op/name:digest` ref.
    Ref(String),
    /// Failed this many times.
    Failed(u8),
}

/// A model's per-token prices (as `f64` bits) and unit, with its provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PriceKey {
    model: String,
    provider: Option<String>,
    prompt: u64,
    completion: u64,
    unit: String,
}

/// A price's registration.
#[derive(Debug, Clone, Copy)]
enum PriceState {
    /// Registered, effective from this time.
    Registered(DateTime<Utc>),
    /// Failed this many times.
    Failed(u8),
}

/// The per-token prices the app's cost implies for a generation: `(prompt, completion)`.
/// With input and output costs, each divided by its token count; with only a total, one
/// price for every token (`total / (input + output)`). `None` without a model, token counts
/// or a cost, or for a non-finite or negative price.
pub fn token_prices(o: &Observation) -> Option<(f64, f64)> {
    o.model.as_ref().filter(|m| !m.is_empty())?;
    let u = o.usage.as_ref()?;
    if u.unit != ops_core::model::UsageUnit::Tokens {
        return None;
    }
    let (input, output) = (u.input.unwrap_or(0), u.output.unwrap_or(0));
    let per = |cost: Option<f64>, tokens: u64| match cost {
        None => Some(0.0),
        Some(c) if tokens > 0 => Some(c / tokens as f64),
        Some(c) => (c == 0.0).then_some(0.0),
    };
    let prices = if u.input_cost.is_some() || u.output_cost.is_some() {
        (per(u.input_cost, input)?, per(u.output_cost, output)?)
    } else {
        let total = u.total_cost?;
        let tokens = input.checked_add(output).filter(|t| *t > 0)?;
        let p = total / tokens as f64;
        (p, p)
    };
    let valid = |p: f64| p.is_finite() && p >= 0.0;
    (valid(prices.0) && valid(prices.1)).then_some(prices)
}

/// An object name as the SDK makes one (`sanitize_object_name`): every run of characters
/// other than letters, digits, `_` and `.` becomes `-`, runs of `.`, `_` and `-` collapse to
/// `-`, `-` and `_` are trimmed from both ends, and the name is cut to 128 characters.
/// `None` when nothing is left.
pub fn object_name(name: &str) -> Option<String> {
    let keep = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let mut dashed = String::with_capacity(name.len());
    for c in name.chars() {
        if keep(c) {
            dashed.push(c);
        } else if !dashed.ends_with('-') {
            dashed.push('-');
        }
    }
    let sep = |c: char| matches!(c, '.' | '_' | '-');
    let mut out = String::with_capacity(dashed.len());
    let chars: Vec<char> = dashed.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        while j < chars.len() && sep(chars[j]) {
            j += 1;
        }
        if j - i >= 2 {
            out.push('-');
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    let trimmed: String = out
        .trim_matches(|c| c == '-' || c == '_')
        .chars()
        .take(128)
        .collect();
    (!trimmed.is_empty()).then_some(trimmed)
}

/// Whether an answer to a call write says the calls are already there: HTTP 409, or a
/// message saying "already exists" or naming a unique-constraint violation.
pub fn says_already_exists(status: u16, body: Option<&Value>) -> bool {
    if status == 409 {
        return true;
    }
    if !(400..600).contains(&status) {
        return false;
    }
    let Some(body) = body else { return false };
    let text = body.to_string().to_lowercase();
    text.contains("already exists") || text.contains("unique constraint")
}

/// The namespace of the name-based hash in [`retry_id`].
const RETRY_ID_NAMESPACE: Uuid = Uuid::from_u128(0x8e4394ea_d1d3_4119_b847_79c891015d52);

/// The `x-weave-retry-id` of a request writing `calls` in `mode`: a UUIDv7, as the SDK sends,
/// but the same for every attempt at the same request (the SDK keeps it across retries), and
/// different for other calls or the same calls once they have ended. Its time is the first
/// call's start; its random bits are a name-based hash of the calls' ids and the mode.
pub fn retry_id(calls: &[Call], mode: Mode) -> Uuid {
    let mut key = String::with_capacity(8 + calls.len() * 40);
    key.push_str(match mode {
        Mode::UpsertBatch => "upsert",
        Mode::CallsComplete => "complete",
    });
    for c in calls {
        key.push(' ');
        key.push_str(c.start.get("id").and_then(Value::as_str).unwrap_or(""));
        key.push(if c.end.is_some() { '.' } else { '+' });
    }
    let hash = Uuid::new_v5(&RETRY_ID_NAMESPACE, key.as_bytes());
    let millis = calls
        .iter()
        .filter_map(|c| c.start.get("started_at")?.as_str())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
        .min()
        .and_then(|m| u64::try_from(m).ok())
        .unwrap_or(0);
    let mut random = [0u8; 10];
    random.copy_from_slice(&hash.as_bytes()[6..]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

/// How calls are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `POST /call/upsert_batch` with start and end items.
    UpsertBatch,
    /// `POST /v2/{entity}/{project}/calls/complete` with finished calls.
    CallsComplete,
}

/// One call: its `start` and `end` requests and its calls-complete item, with the index of
/// the trace it came from.
#[derive(Debug, Clone)]
pub struct Call {
    /// The trace's index in the exported batch.
    pub trace: usize,
    /// The `start` object.
    pub start: Map<String, Value>,
    /// The `end` object; `None` while the call is still running.
    pub end: Option<Map<String, Value>>,
    size: usize,
}

impl Call {
    /// The call as one `calls/complete` item: the start's fields and the end's (an unfinished
    /// call ends when it started, and says so in `attributes.ops.unfinished`).
    pub fn complete(&self) -> Value {
        let mut m = self.start.clone();
        match &self.end {
            Some(end) => {
                for k in [
                    "ended_at",
                    "exception",
                    "output",
                    "summary",
                    "wb_run_step_end",
                ] {
                    m.insert(k.into(), end.get(k).cloned().unwrap_or(Value::Null));
                }
            }
            None => {
                m.insert(
                    "ended_at".into(),
                    m.get("started_at").cloned().unwrap_or(Value::Null),
                );
                for k in ["exception", "output", "wb_run_step_end"] {
                    m.insert(k.into(), Value::Null);
                }
                m.insert("summary".into(), json!({}));
                if let Some(ops) = m
                    .get_mut("attributes")
                    .and_then(|a| a.get_mut("ops"))
                    .and_then(Value::as_object_mut)
                {
                    ops.insert("unfinished".into(), json!(true));
                }
            }
        }
        Value::Object(m)
    }

    /// The call's `upsert_batch` items: a start, and an end once it ended.
    pub fn upsert_items(&self) -> Vec<Value> {
        let mut items = vec![json!({"mode": "start", "req": {"start": self.start}})];
        if let Some(end) = &self.end {
            items.push(json!({"mode": "end", "req": {"end": end}}));
        }
        items
    }
}

/// The Weave provider.
pub struct Weave {
    endpoint: String,
    host: String,
    entity: Option<String>,
    project: String,
    http: HttpClient,
    mode: Mode,
    ids: IdDeriver,
    ops: HashMap<String, OpState>,
    op_source: Option<String>,
    prices: HashMap<PriceKey, PriceState>,
    stats: WeaveStats,
}

impl fmt::Debug for Weave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Weave")
            .field("endpoint", &ops_core::provider::redact_url(&self.endpoint))
            .field("host", &ops_core::provider::redact_url(&self.host))
            .field("entity", &self.entity)
            .field("project", &self.project)
            .field("mode", &self.mode)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// The `Authorization` of a W&B key: Basic `api:<key>`, or Bearer for `wb_at_` tokens.
pub fn authorization(api_key: &str) -> String {
    if api_key.starts_with("wb_at_") {
        format!("Bearer {api_key}")
    } else {
        env::basic_auth("api", api_key)
    }
}

/// Usage per model and status counts of a call and its descendants.
#[derive(Debug, Clone, Default)]
struct Rollup {
    usage: BTreeMap<String, [u64; 4]>,
    success: u64,
    error: u64,
}

impl Rollup {
    fn add(&mut self, other: &Rollup) {
        self.success += other.success;
        self.error += other.error;
        for (model, counts) in &other.usage {
            let slot = self.usage.entry(model.clone()).or_default();
            for (s, c) in slot.iter_mut().zip(counts) {
                *s = s.saturating_add(*c);
            }
        }
    }

    fn summary(&self) -> Value {
        let usage: Map<String, Value> = self
            .usage
            .iter()
            .map(|(model, [requests, prompt, completion, total])| {
                (
                    model.clone(),
                    json!({
                        "requests": requests,
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "total_tokens": total,
                    }),
                )
            })
            .collect();
        json!({
            "usage": usage,
            "status_counts": {"success": self.success, "error": self.error},
        })
    }
}

/// The roll-ups of every observation of `obs`: its own usage and status plus its
/// descendants'. Linear in the observations: each adds its subtree's total to its parent once,
/// children before parents. Observations on a parent cycle (no root above them) count only
/// what hangs below the point where the walk entered the cycle.
fn rollups(obs: &[Observation]) -> HashMap<Uuid, Rollup> {
    let index: HashMap<Uuid, usize> = obs.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
    let parent: Vec<Option<usize>> = obs
        .iter()
        .map(|o| {
            o.parent_id
                .filter(|p| *p != o.id)
                .and_then(|p| index.get(&p).copied())
        })
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); obs.len()];
    for (i, p) in parent.iter().enumerate() {
        if let Some(p) = p {
            children[*p].push(i);
        }
    }
    let mut totals: Vec<Rollup> = obs
        .iter()
        .map(|o| {
            let mut r = Rollup::default();
            if o.level == Level::Error {
                r.error = 1;
            } else {
                r.success = 1;
            }
            if let Some(u) = o.usage.as_ref().filter(|u| !u.is_empty()) {
                r.usage.insert(
                    o.model.clone().unwrap_or_else(|| "unknown".into()),
                    [
                        1,
                        u.input.unwrap_or(0),
                        u.output.unwrap_or(0),
                        u.total().unwrap_or(0),
                    ],
                );
            }
            r
        })
        .collect();
    // Post-order from every root, then from anything left (cycles): children first.
    let mut visited = vec![false; obs.len()];
    let starts = (0..obs.len())
        .filter(|i| parent[*i].is_none())
        .chain(0..obs.len());
    for start in starts {
        if visited[start] {
            continue;
        }
        visited[start] = true;
        let mut stack = vec![(start, 0usize)];
        while let Some((node, next)) = stack.pop() {
            if let Some(&child) = children[node].get(next) {
                stack.push((node, next + 1));
                if !visited[child] {
                    visited[child] = true;
                    stack.push((child, 0));
                }
                continue;
            }
            // Every child of `node` is done: add `node`'s total to its parent.
            if let Some(p) = parent[node]
                && stack.last().is_some_and(|(top, _)| *top == p)
            {
                let (done, into) = if node < p {
                    let (a, b) = totals.split_at_mut(p);
                    (&a[node], &mut b[0])
                } else {
                    let (a, b) = totals.split_at_mut(node);
                    (&b[0], &mut a[p])
                };
                into.add(done);
            }
        }
    }
    obs.iter().map(|o| o.id).zip(totals).collect()
}

impl Weave {
    /// A provider for the trace server at `endpoint` and the W&B API at `host`, writing to
    /// `entity/project` (the key's default entity when `entity` is `None`).
    pub fn new(
        endpoint: &str,
        host: Option<&str>,
        entity: Option<&str>,
        project: &str,
        api_key: &str,
    ) -> Result<Self, ConfigError> {
        let check = |field: &str, url: &str| {
            ops_core::provider::check_url(url).map_err(|reason| ConfigError::Invalid {
                provider: NAME.into(),
                field: field.into(),
                reason,
            })
        };
        check("endpoint", endpoint)?;
        if let Some(h) = host.map(str::trim).filter(|h| !h.is_empty()) {
            check("host", h)?;
        }
        let headers = vec![("authorization".to_owned(), authorization(api_key))];
        let http = HttpClient::new(NAME, &headers)
            .map_err(|message| ConfigError::Build {
                provider: NAME.into(),
                message,
            })?
            .with_secrets([api_key.to_owned(), authorization(api_key)]);
        Ok(Self {
            endpoint: endpoint.trim().trim_end_matches('/').to_owned(),
            host: host
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .unwrap_or(DEFAULT_HOST)
                .trim_end_matches('/')
                .to_owned(),
            entity: entity
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned),
            project: project.trim().to_owned(),
            http,
            mode: Mode::UpsertBatch,
            ids: IdDeriver::default(),
            ops: HashMap::new(),
            op_source: None,
            prices: HashMap::new(),
            stats: WeaveStats::default(),
        })
    }

    /// What the provider did besides writing calls (ops published, prices registered, and
    /// their failures; duplicate answers).
    pub fn stats(&self) -> WeaveStats {
        self.stats
    }

    /// The provider of a validated config.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let mut p = Self::new(
            config.get("endpoint").unwrap_or(DEFAULT_ENDPOINT),
            config.get("host"),
            config.get("entity"),
            config.require("project")?,
            config.require("api_key")?,
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

    /// Starts in `mode` (the provider finds the right one by itself; this saves a request).
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// How calls are written now.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The entity, once known.
    pub fn entity(&self) -> Option<&str> {
        self.entity.as_deref()
    }

    /// `entity/project`, with `entity` standing in for an unknown entity.
    fn project_id(&self) -> String {
        format!(
            "{}/{}",
            self.entity.as_deref().unwrap_or("entity"),
            self.project
        )
    }

    async fn viewer(&self) -> Result<Value, ExportError> {
        self.viewer_or_why().await.map_err(|(e, _)| e)
    }

    /// W&B's `viewer` of the key; on failure, the error and whether it is for good (the key
    /// is refused) rather than worth retrying.
    async fn viewer_or_why(&self) -> Result<Value, (ExportError, bool)> {
        let url = env::join(&self.host, "/graphql");
        let request = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .timeout(Duration::from_secs(5).min(self.http.timeout()))
            .body(json!({ "query": DEFAULT_ENTITY_QUERY }).to_string());
        let reply = self
            .http
            .send(&url, request)
            .await
            .map_err(|e| (e, false))?;
        let refused = matches!(reply.status.as_u16(), 401 | 403);
        reply
            .check(NAME, "the credentials check (W&B GraphQL viewer)")
            .map_err(|e| (e, refused))?;
        let viewer = reply
            .json()
            .and_then(|j| j.pointer("/data/viewer").cloned())
            .filter(|v| !v.is_null());
        viewer.ok_or_else(|| {
            let e = ExportError::new(
                NAME,
                format!(
                    "the credentials check failed: {url} does not know this API key; check `api_key` (and `host` for a dedicated W&B)"
                ),
            );
            (e, true)
        })
    }

    /// The entity: the configured one, else the key's default entity (asked once).
    async fn ensure_entity(&mut self) -> Result<String, (ExportError, bool)> {
        if let Some(e) = &self.entity {
            return Ok(e.clone());
        }
        let viewer = self.viewer_or_why().await?;
        let entity = viewer
            .pointer("/defaultEntity/name")
            .or_else(|| viewer.get("entity"))
            .or_else(|| viewer.get("username"))
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                let e = ExportError::new(
                    NAME,
                    "W&B did not say which entity this key writes to; set `entity` in the tracing config",
                );
                (e, true)
            })?;
        self.entity = Some(entity.clone());
        Ok(entity)
    }

    /// The calls `batch` is sent as, at time `now` (which bounds the ids). Their
    /// `project_id` says `entity/…` until the entity is known (an export looks it up first).
    pub fn calls(&mut self, batch: &[Arc<Trace>], now: DateTime<Utc>) -> Vec<Call> {
        let project_id = self.project_id();
        let mut out = Vec::new();
        for (index, trace) in batch.iter().enumerate() {
            let trace_id = self.ids.trace_id(trace, now);
            let obs = observations(trace);
            let rollups = rollups(&obs);
            let ids = crate::native::observation_ids(trace);
            let root = obs
                .iter()
                .find(|o| crate::native::is_root_in(&ids, o))
                .map(|o| self.ids.observation_id(o.id, trace_id, now));
            for o in obs.iter() {
                let id = self.ids.observation_id(o.id, trace_id, now);
                let session = trace.attributes_of(o).session_id;
                let mut ops = Map::new();
                ops.insert("kind".into(), json!(o.kind.as_str()));
                let tags = tags(trace, o);
                if !tags.is_empty() {
                    ops.insert("tags".into(), json!(tags));
                }
                let mut metadata = o.metadata.clone();
                attribute_metadata(trace, o, &mut metadata);
                // The root call stands for the trace: the trace's metadata goes on it (the
                // observation's own entries win).
                if crate::native::is_root_in(&ids, o) {
                    for (k, v) in &trace.metadata {
                        metadata.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                if !metadata.is_empty() {
                    ops.insert("metadata".into(), Value::Object(metadata));
                }
                if let Some(m) = &o.model {
                    ops.insert("model".into(), json!(m));
                }
                if let Some(p) = &o.model_provider {
                    ops.insert("model_provider".into(), json!(p));
                }
                if !o.model_parameters.is_empty() {
                    ops.insert(
                        "model_parameters".into(),
                        Value::Object(o.model_parameters.clone()),
                    );
                }
                if o.level != Level::Default {
                    ops.insert("level".into(), json!(o.level.as_str()));
                }
                if let Some(cost) = o.usage.as_ref().and_then(app_cost) {
                    ops.insert("cost".into(), cost);
                }
                let mut start = Map::new();
                start.insert("project_id".into(), json!(project_id));
                start.insert("id".into(), json!(id));
                start.insert("op_name".into(), json!(o.name));
                start.insert("display_name".into(), Value::Null);
                start.insert("trace_id".into(), json!(trace_id));
                start.insert(
                    "parent_id".into(),
                    crate::native::local_parent(o).map_or(Value::Null, |p| {
                        json!(self.ids.observation_id(p, trace_id, now))
                    }),
                );
                start.insert(
                    "thread_id".into(),
                    session.as_ref().map_or(Value::Null, |s| json!(s)),
                );
                start.insert(
                    "turn_id".into(),
                    match (&session, root) {
                        (Some(_), Some(r)) => json!(r),
                        _ => Value::Null,
                    },
                );
                start.insert("started_at".into(), json!(iso(o.start_time)));
                start.insert(
                    "attributes".into(),
                    json!({
                        "weave": {
                            "source": "ops",
                            "client_version": env!("CARGO_PKG_VERSION"),
                            "sys_version": "rust",
                        },
                        "ops": ops,
                    }),
                );
                start.insert(
                    "inputs".into(),
                    Value::Object(
                        o.input
                            .as_ref()
                            .map_or_else(Map::new, |v| as_object(v, "input")),
                    ),
                );
                start.insert("otel_dump".into(), Value::Null);
                start.insert("wb_run_id".into(), Value::Null);
                start.insert("wb_run_step".into(), Value::Null);
                let end = o.end_time.map(|ended| {
                    let mut end = Map::new();
                    end.insert("project_id".into(), json!(project_id));
                    end.insert("id".into(), json!(id));
                    end.insert("trace_id".into(), json!(trace_id));
                    end.insert("is_eval".into(), json!(false));
                    end.insert("ended_at".into(), json!(iso(ended)));
                    end.insert("started_at".into(), json!(iso(o.start_time)));
                    end.insert("exception".into(), exception(o));
                    end.insert("output".into(), o.output.clone().unwrap_or(Value::Null));
                    end.insert(
                        "summary".into(),
                        rollups.get(&o.id).cloned().unwrap_or_default().summary(),
                    );
                    end.insert("wb_run_step_end".into(), Value::Null);
                    end
                });
                let size = 256
                    + ops_core::limits::measure(&Value::Object(start.clone())).0
                    + end.as_ref().map_or(0, |e| {
                        ops_core::limits::measure(&Value::Object(e.clone())).0
                    });
                out.push(Call {
                    trace: index,
                    start,
                    end,
                    size,
                });
            }
        }
        out
    }

    fn upsert_url(&self) -> String {
        env::join(&self.endpoint, "/call/upsert_batch")
    }

    fn complete_url(&self) -> String {
        let entity = self.entity.as_deref().unwrap_or("entity");
        format!(
            "{}/v2/{}/{}/calls/complete",
            self.endpoint,
            env::url_segment(entity),
            env::url_segment(&self.project)
        )
    }

    /// The request of `calls` in `mode`: URL and body.
    pub fn request_body(&self, calls: &[Call], mode: Mode) -> (String, Value) {
        match mode {
            Mode::UpsertBatch => {
                // All starts before all ends, as the SDK batches them.
                let (mut starts, mut ends) = (Vec::new(), Vec::new());
                for c in calls {
                    let mut items = c.upsert_items().into_iter();
                    starts.extend(items.next());
                    ends.extend(items);
                }
                starts.extend(ends);
                (self.upsert_url(), json!({ "batch": starts }))
            }
            Mode::CallsComplete => (
                self.complete_url(),
                json!({ "batch": calls.iter().map(Call::complete).collect::<Vec<_>>() }),
            ),
        }
    }

    async fn post(
        &self,
        calls: &[Call],
        mode: Mode,
        left: Duration,
    ) -> (Classified, Option<(u16, Option<Value>)>) {
        let (url, body) = self.request_body(calls, mode);
        let request = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header("x-weave-retry-id", retry_id(calls, mode).to_string())
            .header("x-weave-client-capabilities", CLIENT_CAPABILITIES)
            .body(body.to_string());
        let (classified, reply) = self
            .http
            .send_classified(&url, request, left, StatusRules::NATIVE)
            .await;
        (classified, reply.map(|r| (r.status.as_u16(), r.json())))
    }
}

/// The cost the app set on a call (`attributes.ops.cost`: `input`, `output`, `total`,
/// `currency`), kept on the call as sent; `None` without one.
fn app_cost(u: &ops_core::Usage) -> Option<Value> {
    let total = u.total_cost()?;
    let mut cost = Map::new();
    if let Some(c) = u.input_cost {
        cost.insert("input".into(), json!(c));
    }
    if let Some(c) = u.output_cost {
        cost.insert("output".into(), json!(c));
    }
    cost.insert("total".into(), json!(total));
    cost.insert(
        "currency".into(),
        json!(u.currency.as_deref().unwrap_or("USD")),
    );
    Some(Value::Object(cost))
}

/// The `digest` of an `obj/create` or `file/create` answer.
fn digest_of(answer: &Value) -> Option<String> {
    answer
        .get("digest")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

/// One model's prices as `cost/create` takes them (`CostCreateInput`).
fn price_body(k: &PriceKey, at: DateTime<Utc>) -> Value {
    let mut m = Map::new();
    m.insert("prompt_token_cost".into(), json!(f64::from_bits(k.prompt)));
    m.insert(
        "completion_token_cost".into(),
        json!(f64::from_bits(k.completion)),
    );
    m.insert("prompt_token_cost_unit".into(), json!(k.unit));
    m.insert("completion_token_cost_unit".into(), json!(k.unit));
    m.insert("effective_date".into(), json!(iso(at)));
    if let Some(p) = &k.provider {
        m.insert("provider_id".into(), json!(p));
    }
    Value::Object(m)
}

/// The error an answer carries; `None` for an accepted one.
fn answer_error(answer: Classified) -> Option<ExportError> {
    match answer {
        Classified::Accepted { .. } => None,
        Classified::Retry { error, .. }
        | Classified::TooLarge(error)
        | Classified::Rejected(error)
        | Classified::Fatal(error) => Some(error),
    }
}

/// Whether an answer says the project only takes `calls/complete`.
pub fn needs_calls_complete(status: u16, body: Option<&Value>) -> bool {
    status == 400
        && body
            .and_then(|b| b.get("error_code"))
            .and_then(Value::as_str)
            == Some(CALLS_COMPLETE_MODE_REQUIRED)
}

/// The provider's calls before their errors are redacted (see the `Provider` impl).
impl Weave {
    async fn export_raw(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        match self.ensure_entity().await {
            Ok(_) => {}
            Err((error, true)) => return ExportOutcome::Fatal(error),
            Err((error, false)) => return ExportOutcome::retry(error),
        }
        let mut calls = self.calls(batch, Utc::now());
        self.publish_ops(&mut calls).await;
        let chunks = split_batches(calls, MAX_CALLS, MAX_BYTES, |c| c.size);
        let mut splitter = Splitter::new(
            NAME,
            &self.endpoint,
            chunks,
            batch.len(),
            self.http.export_deadline,
            |c: &Call| c.trace,
        );
        while let Some(left) = splitter.next_chunk() {
            let chunk = splitter.current();
            let (mut answer, mut reply) = self.post(chunk, self.mode, left).await;
            let switch = match (self.mode, &reply) {
                (Mode::UpsertBatch, Some((status, body)))
                    if needs_calls_complete(*status, body.as_ref()) =>
                {
                    Some(Mode::CallsComplete)
                }
                (Mode::CallsComplete, Some((404 | 405, _))) => Some(Mode::UpsertBatch),
                _ => None,
            };
            if let Some(mode) = switch {
                tracing::info!(?mode, "ops: weave switches how it writes calls");
                self.mode = mode;
                (answer, reply) = self.post(chunk, mode, left).await;
            }
            if let Some((status, body)) = &reply
                && !matches!(answer, Classified::Accepted { .. })
                && says_already_exists(*status, body.as_ref())
            {
                // Already there: a re-sent trace. A request of one trace is done; one of
                // several is halved until the trace that is there stands alone.
                let first = chunk.first().map(|c| c.trace);
                if chunk.iter().all(|c| Some(c.trace) == first) {
                    self.stats.duplicates += 1;
                    tracing::info!(status, "ops: weave already has these calls; done");
                    answer = Classified::accepted();
                } else if let Some(error) = answer_error(answer) {
                    answer = Classified::Rejected(error);
                } else {
                    answer = Classified::accepted();
                }
            }
            splitter.done(answer);
        }
        let outcome = splitter.finish().outcome(batch.len());
        self.register_prices(batch).await;
        outcome
    }

    /// `weave:///{entity}/{project}/op/{name}:{digest}`.
    fn op_ref(&self, object_id: &str, digest: &str) -> String {
        format!(
            "weave:///{}/{}/op/{object_id}:{digest}",
            self.entity.as_deref().unwrap_or("entity"),
            self.project
        )
    }

    /// Posts a side request (a file, an op, prices) with at most `limit`; the answer's JSON
    /// on a 2xx.
    async fn side_post(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
        limit: Duration,
        what: &str,
    ) -> Result<Value, ExportError> {
        let request = request
            .header(ACCEPT, "application/json")
            .timeout(limit.min(self.http.timeout()));
        let reply = self.http.send(url, request).await?;
        reply.check(NAME, what)?;
        Ok(reply.json().unwrap_or(Value::Null))
    }

    /// The digest of the op source file ([`OP_SOURCE`]), uploaded once (`POST /file/create`,
    /// multipart `project_id` and `file` `obj.py`, as the SDK sends it).
    async fn op_source(&mut self, limit: Duration) -> Result<String, ExportError> {
        if let Some(d) = &self.op_source {
            return Ok(d.clone());
        }
        let url = env::join(&self.endpoint, "/file/create");
        let boundary = format!("ops{}", Uuid::now_v7().simple());
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"project_id\"\r\n\r\n{}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"obj.py\"\r\n\
             Content-Type: text/x-python\r\n\r\n{OP_SOURCE}\r\n--{boundary}--\r\n",
            self.project_id()
        );
        let request = self
            .http
            .post(&url)
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        let answer = self
            .side_post(
                &url,
                request,
                limit,
                "uploading the op source (file/create)",
            )
            .await?;
        let digest = digest_of(&answer).ok_or_else(|| {
            ExportError::new(NAME, format!("{url} answered file/create without a digest"))
        })?;
        self.op_source = Some(digest.clone());
        Ok(digest)
    }

    /// Publishes op `object_id` (`POST /obj/create` of a `CustomWeaveType` `Op` whose source
    /// is [`OP_SOURCE`]); its ref.
    async fn publish_op(
        &mut self,
        object_id: &str,
        limit: Duration,
    ) -> Result<String, ExportError> {
        let started = std::time::Instant::now();
        let file = self.op_source(limit).await?;
        let url = env::join(&self.endpoint, "/obj/create");
        let body = json!({"obj": {
            "project_id": self.project_id(),
            "object_id": object_id,
            "val": {
                "_type": "CustomWeaveType",
                "weave_type": {"type": "Op"},
                "files": {"obj.py": file},
            },
        }});
        let request = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let left = limit.saturating_sub(started.elapsed());
        let answer = self
            .side_post(&url, request, left, "publishing an op (obj/create)")
            .await?;
        let digest = digest_of(&answer).ok_or_else(|| {
            ExportError::new(NAME, format!("{url} answered obj/create without a digest"))
        })?;
        Ok(self.op_ref(object_id, &digest))
    }

    /// Publishes the ops of `calls` not yet published (each name once per provider, at most
    /// [`MAX_OPS_PER_EXPORT`] per export, within [`SIDE_REQUESTS_BUDGET`]) and names each
    /// call's op by its ref; a call whose op could not be published keeps its plain name.
    async fn publish_ops(&mut self, calls: &mut [Call]) {
        let deadline =
            std::time::Instant::now() + SIDE_REQUESTS_BUDGET.min(self.http.export_deadline / 4);
        let mut todo: Vec<String> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for c in calls.iter() {
            let Some(name) = c.start.get("op_name").and_then(Value::as_str) else {
                continue;
            };
            if !seen.insert(name) || todo.len() >= MAX_OPS_PER_EXPORT {
                continue;
            }
            match self.ops.get(name) {
                Some(OpState::Ref(_)) => {}
                Some(OpState::Failed(n)) if *n >= MAX_OP_ATTEMPTS => {}
                None if self.ops.len() >= MAX_OPS => {}
                _ => todo.push(name.to_owned()),
            }
        }
        for name in todo {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let published = match object_name(&name) {
                Some(object_id) => self.publish_op(&object_id, left).await,
                None => Err(ExportError::new(
                    NAME,
                    "the op name has no character weave takes in an object name",
                )),
            };
            match published {
                Ok(r) => {
                    self.stats.ops_published += 1;
                    self.ops.insert(name, OpState::Ref(r));
                }
                Err(e) => {
                    self.stats.op_failures += 1;
                    let e = self.http.redactor().error(e);
                    tracing::warn!(error = %e, "ops: weave could not publish an op; its calls keep the plain name");
                    let n = match self.ops.get(&name) {
                        Some(OpState::Failed(n)) => n.saturating_add(1),
                        _ => 1,
                    };
                    let n = if object_name(&name).is_none() {
                        MAX_OP_ATTEMPTS
                    } else {
                        n
                    };
                    self.ops.insert(name, OpState::Failed(n));
                }
            }
        }
        for c in calls.iter_mut() {
            let Some(name) = c.start.get("op_name").and_then(Value::as_str) else {
                continue;
            };
            let Some(OpState::Ref(r)) = self.ops.get(name) else {
                continue;
            };
            let (name, r) = (name.to_owned(), r.clone());
            // The ref names the op as weave spells it; the UI shows the name as it was.
            if object_name(&name).as_deref() != Some(name.as_str()) {
                let shown: String = name.chars().take(MAX_DISPLAY_NAME).collect();
                c.size += shown.len();
                c.start.insert("display_name".into(), Value::String(shown));
            }
            c.size += r.len();
            c.start.insert("op_name".into(), Value::String(r));
        }
    }

    /// Registers, for each model whose generations in `batch` carry tokens and the app's
    /// cost, the per-token prices that cost implies ([`token_prices`]): `POST /cost/create`,
    /// effective from the first such call's start, so the UI's cost column shows the app's
    /// cost. Each model and price once per provider (again for an earlier call); failures
    /// are counted and logged, and tried again by later exports (at most
    /// [`MAX_OP_ATTEMPTS`] times).
    async fn register_prices(&mut self, batch: &[Arc<Trace>]) {
        let mut wanted: HashMap<PriceKey, DateTime<Utc>> = HashMap::new();
        for trace in batch {
            for o in observations(trace).iter() {
                let Some((prompt, completion)) = token_prices(o) else {
                    continue;
                };
                let key = PriceKey {
                    model: o.model.clone().unwrap_or_default(),
                    provider: o.model_provider.clone().filter(|p| !p.is_empty()),
                    prompt: prompt.to_bits(),
                    completion: completion.to_bits(),
                    unit: o
                        .usage
                        .as_ref()
                        .and_then(|u| u.currency.clone())
                        .filter(|c| !c.is_empty())
                        .unwrap_or_else(|| "USD".into()),
                };
                let at = wanted.entry(key).or_insert(o.start_time);
                *at = (*at).min(o.start_time);
            }
        }
        wanted.retain(|key, at| match self.prices.get(key) {
            None => true,
            Some(PriceState::Registered(from)) => *at < *from,
            Some(PriceState::Failed(n)) => *n < MAX_OP_ATTEMPTS,
        });
        if wanted.is_empty() {
            return;
        }
        if self.prices.len() + wanted.len() > MAX_PRICES {
            self.prices.clear();
        }
        // One price per model per request (`costs` is keyed by model).
        let mut requests: Vec<Vec<(PriceKey, DateTime<Utc>)>> = Vec::new();
        let mut wanted: Vec<_> = wanted.into_iter().collect();
        wanted.sort_by(|a, b| (a.1, &a.0.model).cmp(&(b.1, &b.0.model)));
        for (key, at) in wanted {
            let free = requests
                .iter()
                .position(|r| r.iter().all(|(k, _)| k.model != key.model));
            match free {
                Some(i) => requests[i].push((key, at)),
                None if requests.len() < MAX_PRICE_REQUESTS_PER_EXPORT => {
                    requests.push(vec![(key, at)]);
                }
                None => {}
            }
        }
        let url = env::join(&self.endpoint, "/cost/create");
        let deadline =
            std::time::Instant::now() + SIDE_REQUESTS_BUDGET.min(self.http.export_deadline / 4);
        for prices in requests {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let costs: Map<String, Value> = prices
                .iter()
                .map(|(k, at)| (k.model.clone(), price_body(k, *at)))
                .collect();
            let body = json!({"project_id": self.project_id(), "costs": costs});
            let request = self
                .http
                .post(&url)
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
            match self
                .side_post(
                    &url,
                    request,
                    left,
                    "registering model prices (cost/create)",
                )
                .await
            {
                Ok(_) => {
                    self.stats.prices_registered += prices.len() as u64;
                    for (k, at) in prices {
                        self.prices.insert(k, PriceState::Registered(at));
                    }
                }
                Err(e) => {
                    self.stats.price_failures += 1;
                    let e = self.http.redactor().error(e);
                    tracing::warn!(error = %e, "ops: weave could not register model prices; the UI shows weave's own prices for them");
                    for (k, _) in prices {
                        let n = match self.prices.get(&k) {
                            Some(PriceState::Failed(n)) => n.saturating_add(1),
                            _ => 1,
                        };
                        self.prices.insert(k, PriceState::Failed(n));
                    }
                }
            }
        }
    }

    async fn api_check_raw(&self) -> Result<(), ExportError> {
        self.viewer().await.map(|_| ())
    }

    async fn project_key_raw(&self) -> Result<Option<String>, ExportError> {
        let entity = match &self.entity {
            Some(e) => e.clone(),
            None => self
                .viewer()
                .await?
                .pointer("/defaultEntity/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_default(),
        };
        Ok((!entity.is_empty()).then(|| format!("{entity}/{}", self.project)))
    }

    async fn project_url_raw(&self) -> Result<Option<String>, ExportError> {
        let ui = match self.host.as_str() {
            DEFAULT_HOST => "https://wandb.ai".to_owned(),
            other => other.to_owned(),
        };
        Ok(self.project_key().await?.map(|key| format!("{ui}/{key}")))
    }
}

#[async_trait]
impl Provider for Weave {
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
}

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    config.apply_field_rules()?;
    validate_url_with_path(config, "endpoint", DEFAULT_ENDPOINT, None)?;
    if config.get("host").is_some() {
        let host = config.get("host").unwrap_or(DEFAULT_HOST).to_owned();
        validate_url_with_path(config, "host", &host, None)?;
    }
    let project = config.require("project")?.trim().to_owned();
    let entity = config.get("entity").map(|e| e.trim().to_owned());
    match project.split_once('/') {
        Some((e, p)) if !e.is_empty() && !p.is_empty() && !p.contains('/') => {
            if entity.as_deref().is_some_and(|x| x != e) {
                return Err(config.invalid(
                    "project",
                    format!(
                        "{project:?} names entity {e:?} but `entity` is {:?}; set one of them",
                        entity.unwrap_or_default()
                    ),
                ));
            }
            config.set("entity", e);
            config.set("project", p);
        }
        Some(_) => {
            return Err(config.invalid(
                "project",
                format!("{project:?} must be a project name, or `entity/project`"),
            ));
        }
        None => config.set("project", project),
    }
    validate_timeout(config)?;
    Ok(())
}

fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let Some(key) = env::var(NAME, "WANDB_API_KEY")? else {
        return Ok(None);
    };
    let mut config = ProviderConfig::new(NAME);
    config.set_env("api_key", key, "WANDB_API_KEY");
    env::set_url_from(&mut config, "endpoint", &["WF_TRACE_SERVER_URL"])?;
    env::set_url_from(&mut config, "host", &["WANDB_BASE_URL"])?;
    env::set_from(&mut config, "entity", &["WANDB_ENTITY"])?;
    env::set_from(&mut config, "project", &["WANDB_PROJECT", "WEAVE_PROJECT"])?;
    env::set_timeout_from(&mut config, &[])?;
    Ok(Some(config))
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(Weave::from_config(config)?))
}

ops_core::inventory::submit! {
    ProviderFactory::new(NAME, "W&B Weave", FIELDS, build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(ENV_VARS)
}

/// The W&B SDK's variables.
const ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("WANDB_API_KEY", "api_key"),
    EnvVar::sets("WF_TRACE_SERVER_URL", "endpoint"),
    EnvVar::sets("WANDB_BASE_URL", "host"),
    EnvVar::sets("WANDB_ENTITY", "entity"),
    EnvVar::sets("WANDB_PROJECT", "project"),
    EnvVar::sets("WEAVE_PROJECT", "project"),
    crate::env::EXPORT_TIMEOUT_VAR,
];

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::{ObservationKind, Usage};

    #[test]
    fn auth_follows_the_key_kind() {
        assert_eq!(authorization("k"), "Basic YXBpOms=");
        assert_eq!(authorization("wb_at_x"), "Bearer wb_at_x");
    }

    #[test]
    fn usage_and_statuses_roll_up_to_ancestors() {
        let root = Observation::new(ObservationKind::Span, "root");
        let mut mid = Observation::new(ObservationKind::Span, "mid");
        mid.parent_id = Some(root.id);
        mid.level = Level::Error;
        let mut llm = Observation::new(ObservationKind::Generation, "llm");
        llm.parent_id = Some(mid.id);
        llm.model = Some("m".into());
        llm.usage = Some(Usage::tokens(12, 1));
        let r = rollups(&[root.clone(), mid.clone(), llm.clone()]);
        assert_eq!(
            r[&root.id].summary(),
            json!({"usage": {"m": {"requests": 1, "prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}},
                   "status_counts": {"success": 2, "error": 1}})
        );
        assert_eq!(r[&llm.id].success, 1);
        assert_eq!(r[&mid.id].error, 1);
    }

    #[test]
    fn a_parent_cycle_rolls_up_finitely() {
        let mut a = Observation::new(ObservationKind::Span, "a");
        let mut b = Observation::new(ObservationKind::Span, "b");
        a.parent_id = Some(b.id);
        b.parent_id = Some(a.id);
        let r = rollups(&[a.clone(), b.clone()]);
        let counts = |id| r[&id].success;
        assert_eq!(
            counts(a.id) + counts(b.id),
            3,
            "one of them holds the other"
        );
    }

    #[test]
    fn the_calls_complete_error_is_recognised() {
        let body = json!({"reason": "upgrade", "error_code": CALLS_COMPLETE_MODE_REQUIRED});
        assert!(needs_calls_complete(400, Some(&body)));
        assert!(!needs_calls_complete(500, Some(&body)));
        assert!(!needs_calls_complete(400, Some(&json!({"reason": "bad"}))));
    }
}
