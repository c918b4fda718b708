//! Traces for the viewer's tests: a chat message run with a tool call, a failed tool, usage
//! and cost, and a hostile string in its input.

#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ops_core::model::{Level, Observation, ObservationKind, Trace, TraceId, Usage};
use ops_store::{Retention, TraceStore};
use serde_json::json;
use uuid::Uuid;

pub const HOSTILE: &str = "<script>alert('pwned')</script>";

fn at(start: DateTime<Utc>, ms: i64) -> DateTime<Utc> {
    start + TimeDelta::milliseconds(ms)
}

fn obs(
    kind: ObservationKind,
    name: &str,
    parent: Option<Uuid>,
    start: DateTime<Utc>,
    from_ms: i64,
    to_ms: i64,
    seed: &str,
) -> Observation {
    let mut o = Observation::at(kind, name, at(start, from_ms));
    o.id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{seed}/{name}").as_bytes());
    o.parent_id = parent;
    o.end_time = Some(at(start, to_ms));
    o
}

/// A message trace: answer → workflow → (retrieve, forecast [failed], complete [llm]).
/// `answer` is the assistant's reply, so two runs can differ in it.
pub fn chat_trace(id: &str, minute: u32, answer: &str) -> Trace {
    let start = Utc.with_ymd_and_hms(2026, 12, 6, 10, minute, 0).unwrap();
    let mut t = Trace::new(
        TraceId::new(id).unwrap(),
        ObservationKind::Message,
        "answer",
        start,
    );
    t.end_time = Some(at(start, 1800));
    t.attributes.user_id = Some("traveller-42".into());
    t.attributes.session_id = Some("trip-planning".into());
    t.tags = vec!["quickstart".into()];
    let question = format!("What should I pack? {HOSTILE}");
    t.input = Some(json!({ "query": question }));
    t.output = Some(json!(answer));

    let root = obs(ObservationKind::Message, "answer", None, start, 0, 1800, id);
    let workflow = obs(
        ObservationKind::Workflow,
        "run_workflow",
        Some(root.id),
        start,
        20,
        1790,
        id,
    );
    let mut retrieve = obs(
        ObservationKind::DatasetRetrieval,
        "retrieve",
        Some(workflow.id),
        start,
        40,
        300,
        id,
    );
    retrieve.input = Some(json!({ "query": question, "top_k": 2 }));
    retrieve.output = Some(json!(["packing guide 1", "packing guide 2"]));
    let mut forecast = obs(
        ObservationKind::Tool,
        "forecast",
        Some(workflow.id),
        start,
        310,
        500,
        id,
    );
    forecast.input = Some(json!({ "city": "Lisbon" }));
    forecast.level = Level::Error;
    forecast.status_message = Some("weather service timed out".into());
    let mut llm = obs(
        ObservationKind::Generation,
        "complete",
        Some(workflow.id),
        start,
        520,
        1780,
        id,
    );
    llm.model = Some("gpt-4o-mini".into());
    llm.model_provider = Some("openai".into());
    llm.model_parameters
        .insert("temperature".into(), json!(0.3));
    llm.input = Some(json!([
        { "role": "system", "content": "You are a travel assistant." },
        { "role": "user", "content": question },
        { "role": "assistant", "content": null, "tool_calls": [
            { "id": "call_1", "type": "function",
              "function": { "name": "get_weather", "arguments": "{\"city\":\"Lisbon\"}" } }
        ] },
        { "role": "tool", "tool_call_id": "call_1", "content": "Lisbon: 24°C, sunny" }
    ]));
    llm.output = Some(json!({ "role": "assistant", "content": answer }));
    llm.usage = Some(Usage::tokens(612, 148).with_cost(0.000_180_6, "USD"));
    let mut embed = obs(
        ObservationKind::Generation,
        "embed",
        Some(retrieve.id),
        start,
        50,
        120,
        id,
    );
    embed.model = Some("text-embedding-3-small".into());
    embed.usage = Some(Usage::tokens(40, 0).with_cost(0.000_001, "USD"));
    t.observations = vec![root, workflow, retrieve, embed, forecast, llm];
    t
}

pub async fn store_with(traces: &[Trace]) -> (tempfile::TempDir, TraceStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(
        dir.path().join("traces.db"),
        Retention {
            max_traces: None,
            max_bytes: None,
            max_age: None,
        },
    )
    .await
    .unwrap();
    store.insert(traces).await.unwrap();
    (dir, store)
}
