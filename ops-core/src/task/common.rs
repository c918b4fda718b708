//! Helpers the trace builders share.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::{BaseTraceInfo, Level, Observation, ObservationKind};

use super::FILES_URL_ENV;

const DEFAULT_FILES_URL: &str = "http://127.0.0.1:5001";

pub(super) fn parent_context(metadata: &Map<String, Value>) -> Option<(String, Option<String>)> {
    let ctx = metadata.get("parent_trace_context")?;
    let run = ctx.get("parent_workflow_run_id")?.as_str()?.to_owned();
    let node = ctx
        .get("parent_node_execution_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((run, node))
}

/// The observation id of a record whose id is a UUIDv7 (Dify's newer run and node ids), so
/// records sent in separate tasks can point at it without knowing its start time.
pub(super) fn linkable_id(source: Option<&str>) -> Option<Uuid> {
    Uuid::try_parse(source?)
        .ok()
        .filter(|u| u.get_version_num() == 7)
}

/// The base of relative file URLs: `FILES_URL`, else Dify's default. A value that is not
/// UTF-8 or not an http(s) URL with a host ([`crate::init`] refuses it) is warned about once,
/// naming the variable, and the default is used.
pub(super) fn files_url() -> String {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    match crate::global::files_url_from_env() {
        Ok(url) => url.unwrap_or_else(|| DEFAULT_FILES_URL.to_owned()),
        Err(e) => {
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    "ops: {e}; relative file URLs use {DEFAULT_FILES_URL} instead ({FILES_URL_ENV})"
                );
            }
            DEFAULT_FILES_URL.to_owned()
        }
    }
}

pub(super) fn absolute_file_url(url: &str, base: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_owned()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            url.trim_start_matches('/')
        )
    }
}

pub(super) fn secs(seconds: f64) -> TimeDelta {
    if seconds.is_finite() && seconds > 0.0 {
        TimeDelta::microseconds((seconds * 1e6) as i64)
    } else {
        TimeDelta::zero()
    }
}

pub(super) fn insert_opt(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v.into());
    }
}

pub(super) fn file_ref(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("remote_url")
            .or_else(|| o.get("url"))
            .or_else(|| o.get("id"))
            .and_then(Value::as_str)
            .map_or_else(|| v.to_string(), str::to_owned),
        other => other.to_string(),
    }
}

pub(super) fn base_observation(
    kind: ObservationKind,
    name: &str,
    id: Uuid,
    base: &BaseTraceInfo,
    fallback_start: DateTime<Utc>,
) -> Observation {
    let mut o = Observation::at(kind, name, base.start_time.unwrap_or(fallback_start));
    o.id = id;
    o.end_time = base.end_time.or(Some(o.start_time));
    o.input = base.inputs.clone();
    o.output = base.outputs.clone();
    o.metadata = base.metadata.clone();
    o
}

pub(super) fn fail(o: &mut Observation, error: Option<&str>) {
    if let Some(e) = error.filter(|e| !e.is_empty()) {
        o.level = Level::Error;
        o.status_message = Some(e.to_owned());
    }
}

pub(super) fn session_of(
    metadata: &Map<String, Value>,
    conversation_id: Option<&str>,
) -> Option<String> {
    metadata
        .get("trace_session_id")
        .and_then(Value::as_str)
        .or(conversation_id)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
