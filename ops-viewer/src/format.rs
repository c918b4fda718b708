//! How times, durations, tokens and costs read on a page.

use chrono::{DateTime, Utc};

pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

pub(crate) fn duration_ms(ms: Option<i64>) -> String {
    match ms {
        None => "running".to_owned(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.2} s", ms as f64 / 1000.0),
    }
}

pub(crate) fn cost(cost: Option<f64>) -> String {
    cost.map_or_else(|| "–".to_owned(), |c| format!("${c:.6}"))
}

pub(crate) fn pretty(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}
