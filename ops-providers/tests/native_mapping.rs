//! The native-API providers' mapping for every kind of trace (built through
//! `ops_core::TraceTask` as an app would): LangSmith runs, Opik spans and traces (validated
//! against `specs/opik` with the `jsonschema` crate plus the extra rules of
//! wire-protocols.md), and Weave calls (validated against a strict schema of the trace
//! server's request models).

#![cfg(all(feature = "langsmith", feature = "opik", feature = "weave"))]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use ops_core::{Level, Observation, ObservationKind, Trace, TraceId};
use ops_providers::langsmith::LangSmith;
use ops_providers::native::iso;
use ops_providers::opik::Opik;
use ops_providers::weave::{Call, Mode, Weave};
use serde_json::{Value, json};
use uuid::Uuid;

const V7: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";

fn is_v7(s: &str) -> bool {
    let ok = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            14 => b == b'7',
            19 => matches!(b, b'8' | b'9' | b'a' | b'b'),
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
    // Cross-check the hand-written test with the regex the spec gives, through jsonschema.
    let schema = json!({"type": "string", "pattern": V7});
    assert_eq!(ok, jsonschema::is_valid(&schema, &json!(s)), "{s}");
    ok
}

fn v7_millis(s: &str) -> i64 {
    let u: Uuid = s.parse().unwrap();
    let (secs, nanos) = u.get_timestamp().unwrap().to_unix();
    secs as i64 * 1000 + i64::from(nanos / 1_000_000)
}

/// Parents that observations point at but the trace does not hold (sent elsewhere).
fn external_parents(trace: &Trace) -> Vec<Uuid> {
    let ids: HashSet<Uuid> = trace.observations.iter().map(|o| o.id).collect();
    let mut out: Vec<Uuid> = trace
        .observations
        .iter()
        .filter_map(|o| o.parent_id)
        .filter(|p| !ids.contains(p))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A trace holding the given observations as roots, started before `trace`.
fn parents_of(trace: &Trace, parents: &[Uuid]) -> Trace {
    let start = trace.start_time - TimeDelta::seconds(1);
    let mut t = Trace::new(TraceId::generate(), ObservationKind::Span, "parent", start);
    for p in parents {
        let mut o = Observation::at(ObservationKind::Span, "parent", start);
        o.id = *p;
        o.end_time = Some(start + TimeDelta::seconds(5));
        t.observations.push(o);
    }
    t
}

// ---------------------------------------------------------------------------------------------
// LangSmith

fn langsmith() -> LangSmith {
    LangSmith::new(
        "https://api.smith.langchain.com",
        "ops-tests",
        "lsv2-k",
        None,
    )
    .unwrap()
}

/// The runs of `trace` as `/runs/batch` objects, by id. Observations whose parent lives in
/// another export are held until that parent arrives: check that, then send the parents.
fn langsmith_runs(trace: &Trace) -> HashMap<String, Value> {
    let mut p = langsmith();
    let mut parts = p.encode(&arc(trace.clone()));
    let external = external_parents(trace);
    if external.is_empty() {
        assert_eq!(p.dotted_orders().held(), 0);
    } else {
        assert!(p.dotted_orders().held() > 0, "{}", trace.name);
        assert_eq!(
            parts.len() + p.dotted_orders().held(),
            trace.observations.len()
        );
        parts.extend(p.encode(&arc(parents_of(trace, &external))));
        assert_eq!(p.dotted_orders().held(), 0, "the parents released them");
    }
    parts
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.object()).unwrap();
            (v["id"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

fn ls_run_type(k: ObservationKind) -> &'static str {
    match k {
        ObservationKind::Generation
        | ObservationKind::SuggestedQuestion
        | ObservationKind::GenerateConversationName
        | ObservationKind::PromptGeneration => "llm",
        ObservationKind::Tool => "tool",
        ObservationKind::DatasetRetrieval => "retriever",
        _ => "chain",
    }
}

/// `<%Y%m%dT%H%M%S%fZ><uuid>` segments joined by `.`.
fn segments(dotted: &str) -> Vec<(String, String)> {
    dotted
        .split('.')
        .map(|s| {
            assert_eq!(s.len(), 22 + 36, "segment {s}");
            let (t, id) = s.split_at(22);
            assert!(
                t.as_bytes()[8] == b'T'
                    && t.ends_with('Z')
                    && t[..8].bytes().all(|b| b.is_ascii_digit())
                    && t[9..21].bytes().all(|b| b.is_ascii_digit()),
                "timestamp {t}"
            );
            assert!(Uuid::try_parse(id).is_ok(), "id {id}");
            (t.to_owned(), id.to_owned())
        })
        .collect()
}

#[test]
fn langsmith_runs_for_every_kind() {
    for (name, trace) in all_kinds() {
        let runs = langsmith_runs(&trace);
        for o in &trace.observations {
            let run = runs
                .get(&o.id.to_string())
                .unwrap_or_else(|| panic!("{name}: no run for {}", o.name));
            assert_eq!(
                run["run_type"],
                json!(ls_run_type(o.kind)),
                "{name}/{}",
                o.name
            );
            assert_eq!(run["name"], json!(o.name));
            assert_eq!(run["session_name"], json!("ops-tests"));
            let dotted = run["dotted_order"].as_str().unwrap();
            let segs = segments(dotted);
            assert_eq!(
                segs.last().unwrap().1,
                o.id.to_string(),
                "{name}: ends with its id"
            );
            assert_eq!(
                run["trace_id"],
                json!(segs[0].1),
                "{name}: trace id is the root"
            );
            match o.parent_id {
                Some(p) => {
                    assert_eq!(run["parent_run_id"], json!(p));
                    let parent = &runs[&p.to_string()];
                    let pd = parent["dotted_order"].as_str().unwrap();
                    assert!(dotted.starts_with(&format!("{pd}.")), "{name}: {dotted}");
                    assert!(dotted > pd);
                    let pt = segments(pd).last().unwrap().0.clone();
                    assert!(segs.last().unwrap().0 >= pt, "{name}: clamped");
                }
                None => {
                    assert!(run.get("parent_run_id").is_none());
                    assert_eq!(segs.len(), 1);
                }
            }
            assert!(run["inputs"].is_object());
            assert!(run["extra"]["runtime"].is_object());
            let meta = &run["extra"]["metadata"];
            if let Some(m) = &o.model {
                assert_eq!(meta["ls_model_name"], json!(m), "{name}");
            }
            if let Some(p) = &o.model_provider {
                assert_eq!(meta["ls_provider"], json!(p), "{name}");
            }
            if let Some(u) = o.usage.as_ref().filter(|u| !u.is_empty()) {
                let um = &meta["usage_metadata"];
                assert_eq!(
                    run["outputs"]["usage_metadata"], *um,
                    "{name}: in outputs too, where LangSmith reads an llm run's tokens"
                );
                assert_eq!(um["input_tokens"], json!(u.input.unwrap_or(0)), "{name}");
                assert_eq!(um["output_tokens"], json!(u.output.unwrap_or(0)), "{name}");
                assert_eq!(um["total_tokens"], json!(u.total().unwrap_or(0)), "{name}");
                let allowed = [
                    "input_tokens",
                    "output_tokens",
                    "total_tokens",
                    "input_token_details",
                    "output_token_details",
                    "input_cost",
                    "output_cost",
                    "total_cost",
                    "input_cost_details",
                    "output_cost_details",
                ];
                for k in um.as_object().unwrap().keys() {
                    assert!(allowed.contains(&k.as_str()), "{name}: usage_metadata.{k}");
                }
            }
            if o.level == Level::Error {
                assert_eq!(run["error"], json!(o.status_message.clone().unwrap()));
            } else {
                assert!(run.get("error").is_none());
            }
            assert_eq!(
                run["start_time"]
                    .as_str()
                    .unwrap()
                    .parse::<DateTime<Utc>>()
                    .unwrap(),
                o.start_time.trunc_subsecs_us()
            );
        }
    }
}

trait Micros {
    fn trunc_subsecs_us(self) -> Self;
}
impl Micros for DateTime<Utc> {
    fn trunc_subsecs_us(self) -> Self {
        chrono::SubsecRound::trunc_subsecs(self, 6)
    }
}

#[test]
fn langsmith_chatflow_details() {
    let trace = chatflow();
    let runs = langsmith_runs(&trace);
    let root = &runs[&obs(&trace, "message").id.to_string()];
    let meta = &root["extra"]["metadata"];
    assert_eq!(
        meta["session_id"],
        json!("conv-1"),
        "threads group by session_id"
    );
    assert_eq!(meta["user_id"], json!("user-1"));
    assert_eq!(
        meta["workflow_run_id"],
        json!(RUN),
        "the trace's metadata on the root"
    );
    assert_eq!(root["inputs"], json!({"input": "what is ops?"}));
    assert_eq!(root["outputs"], json!({"output": "ops is tracing"}));
    assert_eq!(root["tags"], json!(trace.tags));
    let llm = &runs[&obs(&trace, "LLM").id.to_string()];
    assert_eq!(llm["extra"]["metadata"]["ls_temperature"], json!(0.2));
    assert_eq!(llm["extra"]["metadata"]["ls_max_tokens"], json!(256));
    assert_eq!(
        llm["extra"]["metadata"]["usage_metadata"]["total_cost"],
        json!(0.0021)
    );
    assert_eq!(
        llm["events"][0]["name"],
        json!("new_token"),
        "the first token's time"
    );
    let tool = &runs[&obs(&trace, "Search").id.to_string()];
    assert_eq!(tool["error"], json!("tool exploded"));
}

#[test]
fn langsmith_auxiliary_records_hang_under_their_message() {
    let mut p = langsmith();
    let message_runs = p.encode(&arc(message()));
    assert_eq!(message_runs.len(), 2);
    let message_id = obs(&message(), "message").id;
    for aux in [
        moderation(),
        tool(),
        dataset_retrieval(),
        suggested_question(),
    ] {
        let runs = p.encode(&arc(aux.clone()));
        assert_eq!(runs.len(), 1, "{}", aux.observations[0].name);
        let v: Value = serde_json::from_slice(&runs[0].object()).unwrap();
        assert_eq!(v["parent_run_id"], json!(message_id));
        assert_eq!(v["trace_id"], json!(message_id));
        let parent = p.dotted_orders().dotted_order_of(message_id).unwrap();
        assert!(v["dotted_order"].as_str().unwrap().starts_with(parent));
    }
}

// ---------------------------------------------------------------------------------------------
// Opik

fn specs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs/opik")
}

fn opik_validator(name: &str) -> jsonschema::Validator {
    let path = specs().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; the shared/ folder must sit beside the workspace",
            path.display()
        )
    });
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// Validates an Opik batch body against its schema and the rules the schema does not carry:
/// every id is a UUIDv7 and not in the future, at most 1000 items.
pub fn check_opik_body(validator: &jsonschema::Validator, body: &Value, key: &str) {
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{key}: {errors:?}\n{body:#}");
    let items = body[key].as_array().unwrap();
    assert!(!items.is_empty() && items.len() <= 1000);
    let now = Utc::now().timestamp_millis();
    for item in items {
        for id_key in ["id", "trace_id", "parent_span_id"] {
            if let Some(id) = item.get(id_key) {
                let id = id.as_str().unwrap();
                assert!(is_v7(id), "{key}.{id_key} = {id} is not a UUIDv7");
                assert!(
                    v7_millis(id) <= now,
                    "{key}.{id_key} = {id} is in the future"
                );
            }
        }
    }
}

fn opik() -> Opik {
    Opik::new(
        "https://www.comet.com/opik/api/",
        "ops-tests",
        Some("k"),
        Some("ws"),
    )
    .unwrap()
}

fn opik_span_type(k: ObservationKind) -> &'static str {
    match ls_run_type(k) {
        "llm" => "llm",
        "tool" => "tool",
        _ if k == ObservationKind::Moderation => "guardrail",
        _ => "general",
    }
}

#[test]
fn opik_bodies_for_every_kind_match_the_schemas() {
    let spans_schema = opik_validator("SpanBatch_Write.schema.json");
    let traces_schema = opik_validator("TraceBatch_Write.schema.json");
    for (name, trace) in all_kinds() {
        let (spans, traces) = opik().bodies(&arc(trace.clone()));
        check_opik_body(&spans_schema, &spans, "spans");
        let spans = spans["spans"].as_array().unwrap();
        assert_eq!(spans.len(), trace.observations.len(), "{name}");
        let trace_id = spans[0]["trace_id"].as_str().unwrap().to_owned();
        for (o, s) in trace.observations.iter().zip(spans) {
            assert_eq!(s["trace_id"], json!(trace_id), "{name}: one trace");
            assert_eq!(s["id"], json!(o.id), "{name}: v7 observation ids are kept");
            assert_eq!(
                s["type"],
                json!(opik_span_type(o.kind)),
                "{name}/{}",
                o.name
            );
            assert_eq!(s["project_name"], json!("ops-tests"));
            assert_eq!(
                s.get("parent_span_id").and_then(Value::as_str),
                o.parent_id.map(|p| p.to_string()).as_deref()
            );
            if let Some(u) = o.usage.as_ref().filter(|u| u.total().is_some()) {
                assert_eq!(
                    s["usage"]["total_tokens"],
                    json!(u.total().unwrap()),
                    "{name}"
                );
                if let Some(i) = u.input {
                    assert_eq!(s["usage"]["prompt_tokens"], json!(i));
                }
                if let Some(out) = u.output {
                    assert_eq!(s["usage"]["completion_tokens"], json!(out));
                }
            }
            if let Some(m) = &o.model {
                assert_eq!(s["model"], json!(m));
            }
            if let Some(p) = &o.model_provider {
                assert_eq!(s["provider"], json!(p));
            }
            match o.level {
                Level::Error => {
                    let e = &s["error_info"];
                    assert_eq!(e["message"], json!(o.status_message.clone().unwrap()));
                    assert!(!e["exception_type"].as_str().unwrap().is_empty());
                }
                _ => assert!(s.get("error_info").is_none()),
            }
        }
        // The trace record goes with the export holding the trace's root.
        let has_root = trace.observations.iter().any(|o| o.parent_id.is_none());
        let records = traces["traces"].as_array().unwrap();
        if has_root {
            check_opik_body(&traces_schema, &traces, "traces");
            assert_eq!(records.len(), 1, "{name}");
            let t = &records[0];
            assert_eq!(t["id"], json!(trace_id));
            assert_eq!(t["name"], json!(trace.name));
            assert_eq!(
                t.get("thread_id").and_then(Value::as_str),
                trace.attributes.session_id.as_deref(),
                "{name}: thread_id is the session"
            );
        } else {
            assert!(records.is_empty(), "{name}: a record under another trace");
        }
    }
}

#[test]
fn opik_shapes_io_tags_and_update_times_as_the_sdk_does() {
    let mut trace = chatflow();
    trace.tags = vec!["prod".into()];
    let child = trace
        .observations
        .iter_mut()
        .find(|o| o.parent_id.is_some())
        .unwrap();
    child.output = Some(json!("4"));
    child.input = Some(json!(["a", "b"]));
    child.tags = vec!["own".into()];
    let child_id = child.id;
    let (spans, traces) = opik().bodies(&arc(trace.clone()));
    for (o, s) in trace
        .observations
        .iter()
        .zip(spans["spans"].as_array().unwrap())
    {
        let want_tags: Vec<&str> = match o.parent_id {
            None => vec!["prod"],
            Some(_) if o.id == child_id => vec!["own"],
            Some(_) => vec![],
        };
        let got: Vec<&str> = s
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            got, want_tags,
            "{}: trace tags on the root span only",
            o.name
        );
        assert_eq!(
            s["last_updated_at"],
            json!(iso(o.end_time.unwrap_or(o.start_time))),
            "{}: the span's own time",
            o.name
        );
        if let Some(out) = s.get("output") {
            assert!(out.is_object(), "{}: output {out}", o.name);
        }
        if let Some(input) = s.get("input") {
            assert!(input.is_object(), "{}: input {input}", o.name);
        }
        if o.id == child_id {
            assert_eq!(s["output"], json!({"output": "4"}));
            assert_eq!(s["input"], json!({"input": ["a", "b"]}));
        }
    }
    let t = &traces["traces"][0];
    assert_eq!(t["tags"], json!(["prod"]));
    assert_eq!(
        t["last_updated_at"],
        json!(iso(trace.end_time.unwrap_or(trace.start_time)))
    );
}

#[test]
fn opik_trace_ids_are_v7_at_the_start_and_shared_by_a_traces_records() {
    // An external trace id that is not a UUID: derived as a v7 at the trace's start.
    let mut t = captured_program();
    t.id = TraceId::new("req-42").unwrap();
    t.start_time = "2026-01-02T03:04:05.678Z".parse().unwrap();
    let mut o = opik();
    let (spans, traces) = o.bodies(&arc(t.clone()));
    let id = traces["traces"][0]["id"].as_str().unwrap().to_owned();
    assert!(is_v7(&id));
    assert_eq!(v7_millis(&id), t.start_time.timestamp_millis());
    assert_eq!(spans["spans"][0]["trace_id"], json!(id));
    // A later part of the same trace (starting later) lands on the same Opik trace.
    let mut part = t.clone();
    part.start_time += TimeDelta::seconds(30);
    let (spans, _) = o.bodies(&arc(part));
    assert_eq!(spans["spans"][0]["trace_id"], json!(id));
    // A trace that starts in the future gets an id of now, not of the future.
    let mut future = captured_program();
    future.id = TraceId::new("req-43").unwrap();
    future.start_time = Utc::now() + TimeDelta::days(1);
    let (_, traces) = o.bodies(&arc(future));
    let id = traces["traces"][0]["id"].as_str().unwrap();
    assert!(v7_millis(id) <= Utc::now().timestamp_millis());
    // Dify's message and its moderation record share a trace.
    let mut o = opik();
    let (m, _) = o.bodies(&arc(message()));
    let (md, records) = o.bodies(&arc(moderation()));
    assert_eq!(m["spans"][0]["trace_id"], md["spans"][0]["trace_id"]);
    assert!(records["traces"].as_array().unwrap().is_empty());
    assert_eq!(md["spans"][0]["type"], json!("guardrail"));
    assert_eq!(
        md["spans"][0]["parent_span_id"],
        json!(obs(&message(), "message").id)
    );
}

// ---------------------------------------------------------------------------------------------
// Weave

fn weave() -> Weave {
    Weave::new(
        "https://trace.wandb.ai",
        None,
        Some("ent"),
        "ops-tests",
        "wk",
    )
    .unwrap()
}

/// The trace server's request models as a strict JSON Schema (`extra="forbid"`), from
/// wire-protocols.md §4 and the captured SDK requests.
fn weave_schema(mode: Mode) -> jsonschema::Validator {
    let uuid7 = json!({"type": "string", "pattern": V7});
    let nullable_uuid7 = json!({"anyOf": [{"type": "null"}, {"type": "string", "pattern": V7}]});
    let time = json!({"type": "string", "format": "date-time"});
    let nullable_str = json!({"type": ["string", "null"]});
    let summary = json!({
        "type": "object",
        "properties": {
            "usage": {"type": "object", "additionalProperties": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "requests": {"type": "integer", "minimum": 0},
                    "prompt_tokens": {"type": "integer", "minimum": 0},
                    "completion_tokens": {"type": "integer", "minimum": 0},
                    "total_tokens": {"type": "integer", "minimum": 0},
                    "input_tokens": {"type": "integer", "minimum": 0},
                    "output_tokens": {"type": "integer", "minimum": 0}
                }
            }},
            "status_counts": {"type": "object", "additionalProperties": {"type": "integer"}}
        }
    });
    let start_props = json!({
        "project_id": {"type": "string", "pattern": "^[^/]+/[^/]+$"},
        "id": uuid7, "op_name": {"type": "string", "minLength": 1},
        "display_name": nullable_str, "trace_id": uuid7, "parent_id": nullable_uuid7,
        "thread_id": nullable_str, "turn_id": nullable_uuid7, "started_at": time,
        "attributes": {"type": "object"}, "inputs": {"type": "object"},
        "otel_dump": {"type": ["object", "null"]}, "wb_run_id": nullable_str,
        "wb_run_step": {"type": ["integer", "null"]}
    });
    let end_props = json!({
        "project_id": {"type": "string"}, "id": uuid7, "trace_id": uuid7,
        "is_eval": {"type": "boolean"}, "ended_at": time, "started_at": time,
        "exception": nullable_str, "output": {}, "summary": summary,
        "wb_run_step_end": {"type": ["integer", "null"]}
    });
    let strict = |props: &Value, required: &[&str]| {
        json!({"type": "object", "additionalProperties": false,
               "properties": props, "required": required})
    };
    let schema = match mode {
        Mode::UpsertBatch => json!({
            "type": "object", "additionalProperties": false, "required": ["batch"],
            "properties": {"batch": {"type": "array", "items": {"oneOf": [
                {"type": "object", "additionalProperties": false, "required": ["mode", "req"],
                 "properties": {"mode": {"const": "start"}, "req": {
                    "type": "object", "additionalProperties": false, "required": ["start"],
                    "properties": {"start": strict(&start_props,
                        &["project_id", "op_name", "started_at", "attributes", "inputs"])}}}},
                {"type": "object", "additionalProperties": false, "required": ["mode", "req"],
                 "properties": {"mode": {"const": "end"}, "req": {
                    "type": "object", "additionalProperties": false, "required": ["end"],
                    "properties": {"end": strict(&end_props,
                        &["project_id", "id", "ended_at", "summary"])}}}}
            ]}}}
        }),
        Mode::CallsComplete => {
            let mut props = start_props.as_object().unwrap().clone();
            props.extend(end_props.as_object().unwrap().clone());
            json!({
                "type": "object", "additionalProperties": false, "required": ["batch"],
                "properties": {"batch": {"type": "array", "items": strict(&Value::Object(props),
                    &["project_id", "id", "trace_id", "op_name", "started_at", "ended_at",
                      "attributes", "inputs"])}}
            })
        }
    };
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn weave_calls(trace: &Trace) -> Vec<Call> {
    weave().calls(&arc(trace.clone()), Utc::now())
}

#[test]
fn weave_calls_for_every_kind_match_the_request_models() {
    let upsert = weave_schema(Mode::UpsertBatch);
    let complete = weave_schema(Mode::CallsComplete);
    let w = weave();
    for (name, trace) in all_kinds() {
        let calls = weave_calls(&trace);
        assert_eq!(calls.len(), trace.observations.len(), "{name}");
        for mode in [Mode::UpsertBatch, Mode::CallsComplete] {
            let (url, body) = w.request_body(&calls, mode);
            let validator = if mode == Mode::UpsertBatch {
                &upsert
            } else {
                &complete
            };
            let errors: Vec<String> = validator
                .iter_errors(&body)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{name} {mode:?}: {errors:?}");
            match mode {
                Mode::UpsertBatch => assert_eq!(url, "https://trace.wandb.ai/call/upsert_batch"),
                Mode::CallsComplete => assert_eq!(
                    url,
                    "https://trace.wandb.ai/v2/ent/ops-tests/calls/complete"
                ),
            }
        }
        let trace_id = calls[0].start["trace_id"].clone();
        for (o, c) in trace.observations.iter().zip(&calls) {
            assert_eq!(c.start["project_id"], json!("ent/ops-tests"));
            assert_eq!(c.start["trace_id"], trace_id, "{name}: one trace");
            assert_eq!(c.start["id"], json!(o.id));
            assert_eq!(c.start["op_name"], json!(o.name));
            assert_eq!(
                c.start["parent_id"],
                o.parent_id.map_or(Value::Null, |p| json!(p))
            );
            assert_eq!(
                c.start["thread_id"],
                trace
                    .attributes_of(o)
                    .session_id
                    .map_or(Value::Null, |s| json!(s))
            );
            let end = c.end.as_ref().expect("every sample observation ended");
            match o.level {
                Level::Error => {
                    let text = end["exception"]
                        .as_str()
                        .expect("a JSON string, as the SDK");
                    let e: Value = serde_json::from_str(text).unwrap();
                    assert_eq!(
                        e["message"],
                        json!(o.status_message.clone().unwrap()),
                        "{name}"
                    );
                    assert_eq!(
                        e["type"],
                        json!(o.error_type().unwrap_or("Error")),
                        "{name}: the error's type"
                    );
                }
                _ => assert_eq!(end["exception"], Value::Null),
            }
            if let (Some(model), Some(u)) = (&o.model, o.usage.as_ref().filter(|u| !u.is_empty())) {
                let usage = &end["summary"]["usage"][model];
                assert_eq!(
                    usage["prompt_tokens"],
                    json!(u.input.unwrap_or(0)),
                    "{name}"
                );
                assert_eq!(
                    usage["total_tokens"],
                    json!(u.total().unwrap_or(0)),
                    "{name}"
                );
                assert!(usage["requests"].as_u64().unwrap() >= 1);
            }
        }
    }
}

#[test]
fn weave_usage_rolls_up_per_model() {
    let trace = chatflow();
    let calls = weave_calls(&trace);
    let root_id = obs(&trace, "message").id;
    let root = calls
        .iter()
        .find(|c| c.start["id"] == json!(root_id))
        .unwrap();
    let summary = &root.end.as_ref().unwrap()["summary"];
    // The LLM node (gpt-4o-mini, 12/3) and the agent node (no model, 5/7) under the root.
    assert_eq!(
        summary["usage"]["gpt-4o-mini"],
        json!({"requests": 1, "prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15})
    );
    assert_eq!(
        summary["status_counts"]["error"],
        json!(1),
        "the failed tool"
    );
    assert_eq!(
        summary["status_counts"]["success"].as_u64().unwrap() + 1,
        trace.observations.len() as u64
    );
}

#[test]
fn native_providers_keep_ids_stable_across_resends() {
    let trace = Arc::new(chatflow());
    let mut o = opik();
    let a = o.bodies(std::slice::from_ref(&trace));
    let b = o.bodies(std::slice::from_ref(&trace));
    assert_eq!(a.0["spans"][3]["id"], b.0["spans"][3]["id"]);
    assert_eq!(a.1["traces"][0]["id"], b.1["traces"][0]["id"]);
    let mut l = langsmith();
    let x: Vec<_> = l
        .encode(std::slice::from_ref(&trace))
        .into_iter()
        .map(|r| r.object())
        .collect();
    let y: Vec<_> = l
        .encode(std::slice::from_ref(&trace))
        .into_iter()
        .map(|r| r.object())
        .collect();
    let dotted = |v: &Vec<Vec<u8>>| -> Vec<Value> {
        v.iter()
            .map(|b| serde_json::from_slice::<Value>(b).unwrap()["dotted_order"].clone())
            .collect()
    };
    assert_eq!(dotted(&x), dotted(&y));
}

#[test]
fn the_body_checks_catch_what_servers_reject() {
    let spans_schema = opik_validator("SpanBatch_Write.schema.json");
    let (spans, _) = opik().bodies(&arc(captured_program()));
    let good = spans["spans"][0].clone();
    let bad = |edit: &dyn Fn(&mut Value)| {
        let mut s = good.clone();
        edit(&mut s);
        !spans_schema.is_valid(&json!({ "spans": [s] }))
    };
    assert!(spans_schema.is_valid(&spans));
    assert!(bad(&|s| s["type"] = json!("chain")), "unknown type");
    assert!(bad(&|s| {
        s.as_object_mut().unwrap().remove("start_time");
    }));
    assert!(
        bad(&|s| s["start_time"] = json!("yesterday")),
        "date-time format"
    );
    assert!(
        bad(&|s| s["usage"] = json!({"prompt_tokens": 1.5})),
        "int usage"
    );
    assert!(
        bad(&|s| s["input"] = json!(3)),
        "input must be object, list or string"
    );
    assert!(bad(&|s| s["error_info"] = json!({"exception_type": ""})));
    assert!(
        !spans_schema.is_valid(&json!({"spans": vec![good.clone(); 1001]})),
        "maxItems"
    );
    assert!(!is_v7("6f9619ff-8b86-4011-b42d-00c04fc964ff"), "a v4 id");
    assert!(is_v7(good["id"].as_str().unwrap()));

    let upsert = weave_schema(Mode::UpsertBatch);
    let (_, mut body) = weave().request_body(&weave_calls(&captured_program()), Mode::UpsertBatch);
    assert!(upsert.is_valid(&body));
    body["batch"][0]["req"]["start"]["wb_user_id"] = json!("u");
    assert!(
        !upsert.is_valid(&body),
        "extra=forbid: unknown or server-filled keys"
    );
}

// ---------------------------------------------------------------------------------------------
// A trace joined from another service (W3C trace context)

/// A part of a trace whose root's parent is a span of the calling service, as
/// `ops_core::propagation` records it: the trace id is the caller's, its 16 bytes as a UUID.
fn joined_trace() -> (Trace, Uuid, [u8; 8]) {
    let caller = TraceId::generate();
    let mut t = captured_program();
    t.id = TraceId::from_w3c_bytes(caller.to_w3c_bytes()).unwrap();
    assert_eq!(t.id, caller, "an ops trace id comes back letter for letter");
    let span = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];
    let root = t
        .observations
        .iter_mut()
        .find(|o| o.parent_id.is_none())
        .unwrap();
    root.parent_id = Some(ops_core::model::remote_parent_uuid(span));
    let root_id = root.id;
    (t, root_id, span)
}

#[test]
fn a_root_under_a_remote_span_is_the_top_of_its_part_in_every_native_provider() {
    let (t, root, span) = joined_trace();
    let trace_uuid = t.id.as_uuid().unwrap().to_string();

    // LangSmith: placed at once (not held for a parent it will never see), as a root, with
    // the shared trace id and the caller's span in its metadata.
    let mut p = langsmith();
    let parts = p.encode(&arc(t.clone()));
    assert_eq!(p.dotted_orders().held(), 0);
    assert_eq!(parts.len(), t.observations.len());
    let runs: HashMap<String, Value> = parts
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.object()).unwrap();
            (v["id"].as_str().unwrap().to_owned(), v)
        })
        .collect();
    let run = &runs[&root.to_string()];
    assert!(run.get("parent_run_id").is_none(), "{run:#}");
    let meta = &run["extra"]["metadata"];
    assert_eq!(meta["ops_trace_id"], json!(t.id.as_str()));
    let hex: String = span.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(meta["remote_parent_span_id"], json!(hex));

    // Opik: the caller's trace id (a usable v7), the root without a parent span.
    let mut o = opik();
    let (spans, _) = o.bodies(&arc(t.clone()));
    let spans = spans["spans"].as_array().unwrap();
    assert!(spans.iter().all(|s| s["trace_id"] == json!(trace_uuid)));
    let top = spans
        .iter()
        .find(|s| s["id"] == json!(root.to_string()))
        .unwrap();
    assert!(top.get("parent_span_id").is_none(), "{top:#}");

    // Weave: the same.
    let calls = weave_calls(&t);
    assert!(
        calls
            .iter()
            .all(|c| c.start["trace_id"] == json!(trace_uuid))
    );
    let top = calls
        .iter()
        .find(|c| c.start["id"] == json!(root.to_string()))
        .unwrap();
    assert_eq!(top.start["parent_id"], Value::Null);
}
