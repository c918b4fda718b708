//! The observation tree every provider consumes: a [`Trace`] holding [`Observation`]s.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{ObservationKind, TraceId};

/// How important an observation is, as Langfuse grades it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Detail that is usually hidden.
    Debug,
    /// The normal level.
    #[default]
    Default,
    /// Something went wrong but the call completed.
    Warning,
    /// The call failed.
    Error,
}

impl Level {
    /// The level's name, as Langfuse spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Default => "DEFAULT",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// The unit usage is counted in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum UsageUnit {
    /// Tokens, the usual unit for LLM calls.
    #[default]
    Tokens,
    /// Characters.
    Characters,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// Images.
    Images,
    /// Requests.
    Requests,
}

/// What an observation consumed: token counts and their cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    /// Input (prompt) units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<u64>,
    /// Output (completion) units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<u64>,
    /// Total units; when absent, [`Usage::total`] adds input and output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// The unit of the counts.
    pub unit: UsageUnit,
    /// Cost of the input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_cost: Option<f64>,
    /// Cost of the output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_cost: Option<f64>,
    /// Total cost; when absent, [`Usage::total_cost`] adds input and output costs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cost: Option<f64>,
    /// The currency of the costs (ISO 4217, for example `USD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Finer counts, such as `cache_read_input_tokens` or `reasoning_tokens`.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
}

impl Usage {
    /// Token usage with the given input and output counts; the total is their sum.
    pub fn tokens(input: u64, output: u64) -> Self {
        Self {
            input: Some(input),
            output: Some(output),
            total: Some(input.saturating_add(output)),
            ..Self::default()
        }
    }

    /// Sets the total cost and its currency.
    #[must_use]
    pub fn with_cost(mut self, total_cost: f64, currency: impl Into<String>) -> Self {
        self.total_cost = Some(total_cost);
        self.currency = Some(currency.into());
        self
    }

    /// The total: the recorded one, else input plus output.
    pub fn total(&self) -> Option<u64> {
        self.total.or(match (self.input, self.output) {
            (None, None) => None,
            (i, o) => Some(i.unwrap_or(0).saturating_add(o.unwrap_or(0))),
        })
    }

    /// The total cost: the recorded one, else input plus output cost.
    pub fn total_cost(&self) -> Option<f64> {
        self.total_cost
            .or(match (self.input_cost, self.output_cost) {
                (None, None) => None,
                (i, o) => Some(i.unwrap_or(0.0) + o.unwrap_or(0.0)),
            })
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.input.is_none()
            && self.output.is_none()
            && self.total.is_none()
            && self.total_cost().is_none()
            && self.details.is_empty()
    }
}

/// Attributes that describe who and what a trace is for. They live on the [`Trace`]; an
/// observation may override them, and [`Trace::attributes_of`] resolves the pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceAttributes {
    /// The end user or account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The session: Dify's conversation id or `trace_session_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The Dify app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The tenant (workspace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The deployment environment, for example `production`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The release of the application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The version of what is traced, for example a workflow version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl TraceAttributes {
    /// Each field of `self`, else the one of `fallback`.
    #[must_use]
    pub fn or(&self, fallback: &TraceAttributes) -> TraceAttributes {
        fn pick(a: &Option<String>, b: &Option<String>) -> Option<String> {
            a.as_ref().or(b.as_ref()).cloned()
        }
        TraceAttributes {
            user_id: pick(&self.user_id, &fallback.user_id),
            session_id: pick(&self.session_id, &fallback.session_id),
            app_id: pick(&self.app_id, &fallback.app_id),
            tenant_id: pick(&self.tenant_id, &fallback.tenant_id),
            environment: pick(&self.environment, &fallback.environment),
            release: pick(&self.release, &fallback.release),
            version: pick(&self.version, &fallback.version),
        }
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == TraceAttributes::default()
    }
}

/// One observation: a span, a generation (LLM call) or any other [`ObservationKind`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// A UUIDv7.
    pub id: Uuid,
    /// The parent observation; `None` for a root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Uuid>,
    /// The display name.
    pub name: String,
    /// What it is.
    pub kind: ObservationKind,
    /// When it started.
    pub start_time: DateTime<Utc>,
    /// When it ended; `None` while it is still open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    /// The input, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The output, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Its level; ERROR for a failure.
    #[serde(default)]
    pub level: Level,
    /// Why it has its level, for example the error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// Units consumed and their cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The model, for generations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The model's provider, such as `openai`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_provider: Option<String>,
    /// The model parameters (temperature, max_tokens, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub model_parameters: Map<String, Value>,
    /// When the first token arrived, for streamed generations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_start_time: Option<DateTime<Utc>>,
    /// Attributes that override the trace's for this observation.
    #[serde(default, skip_serializing_if = "TraceAttributes::is_empty")]
    pub attributes: TraceAttributes,
}

impl Observation {
    /// A new observation with a fresh UUIDv7 id, starting now.
    pub fn new(kind: ObservationKind, name: impl Into<String>) -> Self {
        Self::at(kind, name, Utc::now())
    }

    /// A new observation with a fresh UUIDv7 id, starting at `start_time`.
    pub fn at(kind: ObservationKind, name: impl Into<String>, start_time: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            parent_id: None,
            name: name.into(),
            kind,
            start_time,
            end_time: None,
            input: None,
            output: None,
            metadata: Map::new(),
            tags: Vec::new(),
            level: Level::Default,
            status_message: None,
            usage: None,
            model: None,
            model_provider: None,
            model_parameters: Map::new(),
            completion_start_time: None,
            attributes: TraceAttributes::default(),
        }
    }

    /// How long it took, when it has ended.
    pub fn duration(&self) -> Option<chrono::TimeDelta> {
        self.end_time.map(|end| end - self.start_time)
    }

    /// The type of the error it failed with, as captured (the `error_type` metadata entry a
    /// traced call's `Err` or panic records, e.g. `std::io::Error`), when one is known.
    pub fn error_type(&self) -> Option<&str> {
        self.metadata
            .get("error_type")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The error's chain of causes, as captured (the `error_chain` metadata entry a traced
    /// call's `Err` records when the error is a `std::error::Error` with a `source()`): the
    /// message, then `Caused by:` and one numbered line per cause, as Rust writes an error
    /// report. Providers send it where their platform shows a traceback.
    pub fn error_chain(&self) -> Option<&str> {
        self.metadata
            .get("error_chain")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// A trace: one request's observations with the attributes they share.
///
/// A provider may receive the same trace id in several exports (a long-running trace is
/// delivered in parts, and the queue retries); it must upsert by id rather than assume one
/// export per trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The trace id.
    pub id: TraceId,
    /// The trace's name, usually the root observation's.
    pub name: String,
    /// The kind of the root observation: a `message` root makes a message trace.
    pub kind: ObservationKind,
    /// When the trace started.
    pub start_time: DateTime<Utc>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    /// The trace's input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The trace's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Metadata shared by the whole trace.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// Tags of the trace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Who and what the trace is for.
    #[serde(default)]
    pub attributes: TraceAttributes,
    /// The observations, parents before children.
    #[serde(default)]
    pub observations: Vec<Observation>,
}

impl Trace {
    /// An empty trace.
    pub fn new(
        id: TraceId,
        kind: ObservationKind,
        name: impl Into<String>,
        start_time: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            name: name.into(),
            kind,
            start_time,
            end_time: None,
            input: None,
            output: None,
            metadata: Map::new(),
            tags: Vec::new(),
            attributes: TraceAttributes::default(),
            observations: Vec::new(),
        }
    }

    /// The observations without a parent in this trace.
    pub fn roots(&self) -> impl Iterator<Item = &Observation> {
        self.observations.iter().filter(|o| {
            o.parent_id
                .is_none_or(|p| !self.observations.iter().any(|x| x.id == p))
        })
    }

    /// The direct children of `id`.
    pub fn children_of(&self, id: Uuid) -> impl Iterator<Item = &Observation> {
        self.observations
            .iter()
            .filter(move |o| o.parent_id == Some(id))
    }

    /// The observation with this id.
    pub fn observation(&self, id: Uuid) -> Option<&Observation> {
        self.observations.iter().find(|o| o.id == id)
    }

    /// The attributes that apply to `observation`: its own, else the trace's.
    pub fn attributes_of(&self, observation: &Observation) -> TraceAttributes {
        observation.attributes.or(&self.attributes)
    }

    /// Total usage units over every observation.
    pub fn total_usage(&self) -> u64 {
        self.observations
            .iter()
            .filter_map(|o| o.usage.as_ref().and_then(Usage::total))
            .sum()
    }

    /// The heap the trace holds, estimated from its layout (linear in its size, without
    /// recursion): what it counts against the queue's byte budget.
    pub fn approx_size(&self) -> usize {
        super::size::trace(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_totals() {
        let u = Usage::tokens(12, 1);
        assert_eq!(u.total(), Some(13));
        let partial = Usage {
            input: Some(5),
            ..Usage::default()
        };
        assert_eq!(partial.total(), Some(5));
        assert_eq!(Usage::default().total(), None);
        let costs = Usage {
            input_cost: Some(0.5),
            output_cost: Some(0.25),
            ..Usage::default()
        };
        assert_eq!(costs.total_cost(), Some(0.75));
        assert!(Usage::default().is_empty());
        assert!(!costs.is_empty());
    }

    #[test]
    fn observation_round_trips_losslessly() {
        let mut o = Observation::new(ObservationKind::Generation, "llm");
        o.parent_id = Some(Uuid::now_v7());
        o.end_time = Some(o.start_time + chrono::TimeDelta::milliseconds(5));
        o.input = Some(json!({"messages": [{"role": "user", "content": "hi"}]}));
        o.output = Some(json!("hello"));
        o.metadata.insert("node_type".into(), json!("llm"));
        o.tags.push("t".into());
        o.level = Level::Warning;
        o.status_message = Some("slow".into());
        o.usage = Some(Usage::tokens(3, 4).with_cost(0.01, "USD"));
        o.model = Some("gpt-4o-mini".into());
        o.model_parameters.insert("temperature".into(), json!(0.2));
        o.completion_start_time = Some(o.start_time);
        o.attributes.user_id = Some("u".into());
        let json = serde_json::to_string(&o).unwrap();
        let back: Observation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn attributes_fall_back_to_the_trace() {
        let mut t = Trace::new(
            TraceId::generate(),
            ObservationKind::Message,
            "m",
            Utc::now(),
        );
        t.attributes.user_id = Some("trace-user".into());
        t.attributes.session_id = Some("s".into());
        let mut o = Observation::new(ObservationKind::Span, "x");
        o.attributes.user_id = Some("obs-user".into());
        let a = t.attributes_of(&o);
        assert_eq!(a.user_id.as_deref(), Some("obs-user"));
        assert_eq!(a.session_id.as_deref(), Some("s"));
    }

    #[test]
    fn tree_navigation() {
        let mut t = Trace::new(
            TraceId::generate(),
            ObservationKind::Workflow,
            "w",
            Utc::now(),
        );
        let root = Observation::new(ObservationKind::Workflow, "w");
        let mut child = Observation::new(ObservationKind::Generation, "llm");
        child.parent_id = Some(root.id);
        child.usage = Some(Usage::tokens(2, 3));
        let root_id = root.id;
        t.observations = vec![root, child];
        assert_eq!(t.roots().count(), 1);
        assert_eq!(t.children_of(root_id).count(), 1);
        assert_eq!(t.total_usage(), 5);
        assert!(t.approx_size() > 512);
    }
}
