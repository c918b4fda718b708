//! What the trace list shows of one trace, computed once when the trace is stored.

use chrono::{DateTime, Utc};
use ops_core::model::{Level, Trace};
use serde::Serialize;

/// A trace's outcome: the worst level among its observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceStatus {
    /// No observation warned or failed.
    Ok,
    /// Some observation has level `WARNING`, none `ERROR`.
    Warning,
    /// Some observation has level `ERROR`.
    Error,
}

impl TraceStatus {
    /// The status as stored and as the list filter takes it: `ok`, `warning` or `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TraceStatus::Ok => "ok",
            TraceStatus::Warning => "warning",
            TraceStatus::Error => "error",
        }
    }

    /// The status named `name` (`ok`, `warning`, `error`), if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ok" => Some(TraceStatus::Ok),
            "warning" => Some(TraceStatus::Warning),
            "error" => Some(TraceStatus::Error),
            _ => None,
        }
    }

    fn of(trace: &Trace) -> Self {
        match trace.observations.iter().map(|o| o.level).max() {
            Some(Level::Error) => TraceStatus::Error,
            Some(Level::Warning) => TraceStatus::Warning,
            _ => TraceStatus::Ok,
        }
    }
}

/// One row of the trace list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSummary {
    /// The store's sequence number: higher is newer; live updates resume after it.
    pub seq: i64,
    /// The trace id.
    pub id: String,
    /// The trace's name.
    pub name: String,
    /// Its kind (`message`, `workflow`, ...).
    pub kind: String,
    /// The user, when known.
    pub user_id: Option<String>,
    /// The session (conversation), when known.
    pub session_id: Option<String>,
    /// When it started.
    pub start_time: DateTime<Utc>,
    /// How long it took, in milliseconds, when it ended.
    pub duration_ms: Option<i64>,
    /// Tokens (usage units) over every observation.
    pub tokens: i64,
    /// Cost over every observation that reported one.
    pub cost: Option<f64>,
    /// The worst level among its observations.
    pub status: TraceStatus,
    /// Its tags.
    pub tags: Vec<String>,
    /// How many observations it has.
    pub observations: i64,
}

impl TraceSummary {
    /// The summary of `trace` (its `seq` is 0 until stored).
    pub fn of(trace: &Trace) -> Self {
        let end = trace
            .end_time
            .or_else(|| trace.observations.iter().filter_map(|o| o.end_time).max());
        let costs: Vec<f64> = trace
            .observations
            .iter()
            .filter_map(|o| o.usage.as_ref().and_then(|u| u.total_cost()))
            .collect();
        TraceSummary {
            seq: 0,
            id: trace.id.to_string(),
            name: trace.name.clone(),
            kind: trace.kind.as_str().to_owned(),
            user_id: trace.attributes.user_id.clone(),
            session_id: trace.attributes.session_id.clone(),
            start_time: trace.start_time,
            duration_ms: end.map(|e| (e - trace.start_time).num_milliseconds().max(0)),
            tokens: i64::try_from(trace.total_usage()).unwrap_or(i64::MAX),
            cost: (!costs.is_empty()).then(|| costs.iter().sum()),
            status: TraceStatus::of(trace),
            tags: trace.tags.clone(),
            observations: i64::try_from(trace.observations.len()).unwrap_or(i64::MAX),
        }
    }
}

/// The text the search looks in: the inputs and outputs of the trace and its observations,
/// lower-cased.
pub(crate) fn search_text(trace: &Trace) -> String {
    let mut text = String::new();
    let values = [&trace.input, &trace.output].into_iter().chain(
        trace
            .observations
            .iter()
            .flat_map(|o| [&o.input, &o.output]),
    );
    for value in values.flatten() {
        match value {
            serde_json::Value::String(s) => text.push_str(s),
            other => text.push_str(&other.to_string()),
        }
        text.push('\n');
    }
    text.to_lowercase()
}
