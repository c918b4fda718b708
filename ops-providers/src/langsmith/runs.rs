//! Observations as LangSmith runs, and the two ways of sending them: `multipart/form-data`
//! (`POST /runs/multipart`, as the SDK sends it) and JSON (`POST /runs/batch`).

use ops_core::model::{SemanticKind, UsageUnit};
use ops_core::{Level, Observation, ObservationKind, Trace};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::dotted::{Op, Resolved};
use crate::native::{as_object, attribute_metadata, iso, tags};

/// LangSmith's `run_type` for an observation kind: `llm`, `tool`, `retriever` or `chain`
/// (agents, guardrails, workflows and plain steps are chains, as the SDK records them).
pub fn run_type(kind: ObservationKind) -> &'static str {
    match kind.semantic() {
        SemanticKind::Llm => "llm",
        SemanticKind::Tool => "tool",
        SemanticKind::Retriever => "retriever",
        _ => "chain",
    }
}

/// `extra.runtime`, which says what sent the run.
fn runtime() -> Value {
    json!({
        "sdk": "ops",
        "sdk_version": env!("CARGO_PKG_VERSION"),
        "library": "ops",
        "runtime": "rust",
    })
}

/// `extra.metadata.usage_metadata` (LangSmith allows only its own keys here): token counts,
/// their details and costs. `None` without token usage.
pub fn usage_metadata(o: &Observation) -> Option<Value> {
    let u = o.usage.as_ref()?;
    if u.unit != UsageUnit::Tokens || u.is_empty() {
        return None;
    }
    let mut m = Map::new();
    m.insert("input_tokens".into(), json!(u.input.unwrap_or(0)));
    m.insert("output_tokens".into(), json!(u.output.unwrap_or(0)));
    m.insert("total_tokens".into(), json!(u.total().unwrap_or(0)));
    let detail = |keys: &[&str]| keys.iter().find_map(|k| u.details.get(*k)?.as_u64());
    let mut input_details = Map::new();
    for (name, keys) in [
        (
            "cache_read",
            &["cache_read_input_tokens", "cached_tokens", "cache_read"][..],
        ),
        (
            "cache_creation",
            &["cache_creation_input_tokens", "cache_creation"][..],
        ),
        ("audio", &["input_audio_tokens", "audio_input_tokens"][..]),
    ] {
        if let Some(n) = detail(keys) {
            input_details.insert(name.into(), json!(n));
        }
    }
    let mut output_details = Map::new();
    for (name, keys) in [
        ("reasoning", &["reasoning_tokens", "reasoning"][..]),
        ("audio", &["output_audio_tokens", "audio_output_tokens"][..]),
    ] {
        if let Some(n) = detail(keys) {
            output_details.insert(name.into(), json!(n));
        }
    }
    if !input_details.is_empty() {
        m.insert("input_token_details".into(), Value::Object(input_details));
    }
    if !output_details.is_empty() {
        m.insert("output_token_details".into(), Value::Object(output_details));
    }
    for (k, v) in [
        ("input_cost", u.input_cost),
        ("output_cost", u.output_cost),
        ("total_cost", u.total_cost()),
    ] {
        if let Some(c) = v.filter(|c| c.is_finite()) {
            m.insert(k.into(), json!(c));
        }
    }
    Some(Value::Object(m))
}

/// A run's `outputs`: its output as an object, with `usage_metadata` in it too once the run
/// has ended (LangSmith reads an llm run's tokens and cost there, as the SDK sends them).
fn outputs(o: &Observation, usage: Option<Value>) -> Option<Value> {
    let mut outputs = o.output.as_ref().map(|v| as_object(v, "output"));
    if let Some(u) = usage.filter(|_| o.end_time.is_some() || outputs.is_some()) {
        outputs
            .get_or_insert_with(Map::new)
            .insert("usage_metadata".into(), u);
    }
    outputs.map(Value::Object)
}

/// What a run is sent with, apart from its place in the tree (filled in when resolved).
#[derive(Debug, Clone)]
pub struct Draft {
    /// The export it came from (the provider's sequence number).
    pub export: u64,
    /// Its trace's index in that export's batch.
    pub trace: usize,
    /// How many times a held run's request failed.
    pub attempts: u8,
    /// The run's own fields (name, run_type, times, tags, session, error).
    pub main: Map<String, Value>,
    /// `inputs`.
    pub inputs: Value,
    /// `outputs`, when it has any.
    pub outputs: Option<Value>,
    /// `events`.
    pub events: Value,
    /// `extra` (`metadata` and `runtime`).
    pub extra: Value,
}

impl Draft {
    /// The draft of observation `o` of `trace` (index `trace_index` of export `export`) in
    /// project `project`.
    pub fn new(
        trace: &Trace,
        o: &Observation,
        trace_index: usize,
        export: u64,
        project: &str,
    ) -> Self {
        let mut main = Map::new();
        main.insert("name".into(), json!(o.name));
        main.insert("run_type".into(), json!(run_type(o.kind)));
        main.insert("start_time".into(), json!(iso(o.start_time)));
        if let Some(end) = o.end_time {
            main.insert("end_time".into(), json!(iso(end)));
        }
        let tags = tags(trace, o);
        if !tags.is_empty() {
            main.insert("tags".into(), json!(tags));
        }
        main.insert("session_name".into(), json!(project));
        // The message then the causes, as the SDK sends `repr(error)` then the traceback.
        if let Some(e) = crate::native::error_report(o) {
            main.insert("error".into(), json!(e));
        }

        let mut metadata = o.metadata.clone();
        if crate::native::local_parent(o).is_none() {
            for (k, v) in &trace.metadata {
                metadata.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        attribute_metadata(trace, o, &mut metadata);
        metadata.insert("ops_kind".into(), json!(o.kind.as_str()));
        // A run whose parent is a span of another service (W3C trace context): LangSmith
        // links runs by dotted order, which `traceparent` does not carry, so this service's
        // part is a trace of its own; the shared trace id and the caller's span find it.
        if let Some(span) = o.parent_id.and_then(ops_core::model::remote_span_id) {
            metadata.insert("ops_trace_id".into(), json!(trace.id.as_str()));
            metadata.insert(
                "remote_parent_span_id".into(),
                json!(span.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            );
        }
        if o.level != Level::Default && o.level != Level::Error {
            metadata.insert("level".into(), json!(o.level.as_str()));
            if let Some(m) = &o.status_message {
                metadata.insert("status_message".into(), json!(m));
            }
        }
        if let Some(p) = &o.model_provider {
            metadata.insert("ls_provider".into(), json!(p));
        }
        if let Some(m) = &o.model {
            metadata.insert("ls_model_name".into(), json!(m));
            metadata.insert("ls_model_type".into(), json!("chat"));
        }
        for (param, key) in [
            ("temperature", "ls_temperature"),
            ("max_tokens", "ls_max_tokens"),
            ("stop", "ls_stop"),
        ] {
            if let Some(v) = o.model_parameters.get(param) {
                metadata.insert(key.into(), v.clone());
            }
        }
        if !o.model_parameters.is_empty() {
            metadata.insert(
                "ls_invocation_params".into(),
                Value::Object(o.model_parameters.clone()),
            );
        }
        let usage = usage_metadata(o);
        match &usage {
            Some(u) => {
                metadata.insert("usage_metadata".into(), u.clone());
            }
            None => {
                if let Some(u) = o.usage.as_ref().filter(|u| !u.is_empty()) {
                    metadata.insert("usage".into(), json!(u));
                }
            }
        }
        let mut extra = Map::new();
        extra.insert("metadata".into(), Value::Object(metadata));
        extra.insert("runtime".into(), runtime());
        let events = match o.completion_start_time {
            Some(t) => json!([{"name": "new_token", "time": iso(t), "kwargs": {"token": ""}}]),
            None => json!([]),
        };
        Self {
            export,
            trace: trace_index,
            attempts: 0,
            main,
            inputs: o
                .input
                .as_ref()
                .map_or_else(|| json!({}), |v| Value::Object(as_object(v, "input"))),
            outputs: outputs(o, usage),
            events,
            extra: Value::Object(extra),
        }
    }
}

/// A placed run, serialised: its multipart parts (name and JSON body), in the SDK's order.
#[derive(Debug, Clone)]
pub struct RunParts {
    /// The run id.
    pub id: Uuid,
    /// `post` or `patch`.
    pub op: Op,
    /// `(part name, JSON)`: `<op>.<id>` first, then `.inputs`, `.outputs`, `.events`,
    /// `.extra`.
    pub parts: Vec<(String, Vec<u8>)>,
}

/// The bytes multipart framing adds to a part (boundary, headers), roughly.
pub const PART_OVERHEAD: usize = 200;

impl RunParts {
    /// Serialises a placed run.
    pub fn new(run: &Resolved<Draft>) -> Self {
        let d = &run.payload;
        let op = match run.op {
            Op::Post => "post",
            Op::Patch => "patch",
        };
        let mut main = Map::new();
        main.insert("id".into(), json!(run.id));
        main.insert("trace_id".into(), json!(run.trace_id));
        main.insert("dotted_order".into(), json!(run.dotted_order));
        match (run.parent, run.op) {
            (Some(p), _) => {
                main.insert("parent_run_id".into(), json!(p));
            }
            (None, Op::Patch) => {
                main.insert("parent_run_id".into(), Value::Null);
            }
            (None, Op::Post) => {}
        }
        for (k, v) in &d.main {
            main.insert(k.clone(), v.clone());
        }
        let mut extra = d.extra.clone();
        if let (Some(parent), Some(m)) = (
            run.orphaned,
            extra.get_mut("metadata").and_then(Value::as_object_mut),
        ) {
            // It was sent as a root (its parent never arrived, or its tree was too deep): say
            // where it belonged.
            m.insert("ops_parent_run_id".into(), json!(parent));
        }
        let json = |v: &Value| serde_json::to_vec(v).expect("JSON values serialise");
        let mut parts = vec![(format!("{op}.{}", run.id), json(&Value::Object(main)))];
        if run.op == Op::Post {
            parts.push((format!("{op}.{}.inputs", run.id), json(&d.inputs)));
        }
        if let Some(outputs) = &d.outputs {
            parts.push((format!("{op}.{}.outputs", run.id), json(outputs)));
        }
        parts.push((format!("{op}.{}.events", run.id), json(&d.events)));
        parts.push((format!("{op}.{}.extra", run.id), json(&extra)));
        // As the SDK: an llm run's creation says what ran, by name.
        if run.op == Op::Post && d.main.get("run_type") == Some(&json!("llm")) {
            let name = d.main.get("name").cloned().unwrap_or(Value::Null);
            parts.push((
                format!("{op}.{}.serialized", run.id),
                json(&json!({ "name": name })),
            ));
        }
        Self {
            id: run.id,
            op: run.op,
            parts,
        }
    }

    /// The size of the run on the wire, roughly.
    pub fn size(&self) -> usize {
        self.parts
            .iter()
            .map(|(n, b)| n.len() + b.len() + PART_OVERHEAD)
            .sum()
    }

    /// The run as one JSON object (the main part with the other parts as fields), for
    /// `/runs/batch`.
    pub fn object(&self) -> Vec<u8> {
        let mut parts = self.parts.iter();
        let Some((_, main)) = parts.next() else {
            return b"{}".to_vec();
        };
        // `main` is a non-empty JSON object: splice the fields in before its closing brace.
        let mut out = main[..main.len() - 1].to_vec();
        for (name, body) in parts {
            let field = name.rsplit('.').next().unwrap_or_default();
            out.extend_from_slice(format!(",\"{field}\":").as_bytes());
            out.extend_from_slice(body);
        }
        out.push(b'}');
        out
    }
}

/// A `multipart/form-data` body of `runs` and its boundary: every part with its own
/// `Content-Type: application/json` and `Content-Length`, as the SDK frames it.
pub fn multipart(runs: &[&RunParts]) -> (String, Vec<u8>) {
    let contains =
        |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    let mut boundary = Uuid::now_v7().simple().to_string();
    // A boundary must not occur in any part; with 122 random bits it never does, but check.
    for _ in 0..8 {
        let clash = runs
            .iter()
            .flat_map(|r| &r.parts)
            .any(|(_, body)| contains(body, boundary.as_bytes()));
        if !clash {
            break;
        }
        boundary = Uuid::now_v7().simple().to_string();
    }
    let mut body = Vec::with_capacity(runs.iter().map(|r| r.size()).sum());
    for run in runs {
        for (name, json) in &run.parts {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    json.len()
                )
                .as_bytes(),
            );
            body.extend_from_slice(json);
            body.extend_from_slice(b"\r\n");
        }
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

/// A `/runs/batch` body: `{"post": [...], "patch": [...]}`.
pub fn batch(runs: &[&RunParts]) -> Vec<u8> {
    let mut out = b"{\"post\":[".to_vec();
    let mut first = true;
    for r in runs.iter().filter(|r| r.op == Op::Post) {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.extend(r.object());
    }
    out.extend_from_slice(b"],\"patch\":[");
    first = true;
    for r in runs.iter().filter(|r| r.op == Op::Patch) {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.extend(r.object());
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use ops_core::{TraceId, Usage};

    #[test]
    fn run_types_follow_the_semantic_kind() {
        assert_eq!(run_type(ObservationKind::Generation), "llm");
        assert_eq!(run_type(ObservationKind::PromptGeneration), "llm");
        assert_eq!(run_type(ObservationKind::Tool), "tool");
        assert_eq!(run_type(ObservationKind::DatasetRetrieval), "retriever");
        assert_eq!(run_type(ObservationKind::Workflow), "chain");
        assert_eq!(run_type(ObservationKind::Moderation), "chain");
        assert_eq!(run_type(ObservationKind::NodeExecution), "chain");
    }

    #[test]
    fn parts_and_batch_bodies_are_framed_right() {
        let trace = Trace::new(TraceId::generate(), ObservationKind::Span, "t", Utc::now());
        let mut o = Observation::new(ObservationKind::Generation, "llm");
        o.usage = Some(Usage::tokens(12, 1));
        o.input = Some(json!("hi"));
        let run = Resolved {
            id: o.id,
            parent: None,
            trace_id: o.id,
            dotted_order: format!("20260101T000000000000Z{}", o.id),
            op: Op::Post,
            orphaned: None,
            payload: Draft::new(&trace, &o, 0, 1, "p"),
        };
        let parts = RunParts::new(&run);
        let names: Vec<_> = parts.parts.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(
            names,
            [
                format!("post.{}", o.id),
                format!("post.{}.inputs", o.id),
                format!("post.{}.events", o.id),
                format!("post.{}.extra", o.id),
                format!("post.{}.serialized", o.id)
            ]
        );
        let object: Value = serde_json::from_slice(&parts.object()).unwrap();
        assert_eq!(object["inputs"], json!({"input": "hi"}));
        assert_eq!(
            object["extra"]["metadata"]["usage_metadata"],
            json!({"input_tokens": 12, "output_tokens": 1, "total_tokens": 13})
        );
        let batch: Value = serde_json::from_slice(&batch(&[&parts])).unwrap();
        assert_eq!(batch["post"][0]["id"], json!(o.id));
        assert_eq!(batch["patch"], json!([]));
        let (boundary, body) = multipart(&[&parts]);
        let text = String::from_utf8(body).unwrap();
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert_eq!(text.matches("Content-Length: ").count(), 5);
        assert_eq!(object["serialized"], json!({"name": "llm"}));
    }
}
