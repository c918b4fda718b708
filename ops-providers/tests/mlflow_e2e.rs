//! End to end against a real MLflow tracking server (3.17, from PyPI): a trace carrying every
//! field of the model goes through the `mlflow` provider and is read back through MLflow's
//! REST API, field by field.
//!
//! MLflow is installed into a cached virtualenv and started on a free loopback port with a
//! SQLite store by the workspace's `tests/e2e/mlflow` scripts. The test skips, saying why,
//! only when `python3` is missing or MLflow cannot be installed; anything else fails it.

#![cfg(feature = "mlflow")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use ops_core::model::Usage;
use ops_core::provider::{ProviderConfig, find};
use ops_core::{ExportOutcome, Level, Observation, ObservationKind, Trace, TraceId};
use ops_providers::otlp::trace_id_hex;
use ops_testkit::mlflow::Mlflow;
use ops_testkit::phoenix::python3_available;
use serde_json::{Value, json};

/// How long the trace may take to show up.
const READ_LIMIT: Duration = Duration::from_secs(30);

/// A trace with every field a user can set.
fn every_field() -> Trace {
    let start = Utc::now() - TimeDelta::seconds(5);
    let mut trace = Trace::new(
        TraceId::generate(),
        ObservationKind::Workflow,
        "answer-question",
        start,
    );
    trace.tags = vec!["e2e".into(), "team:search".into()];
    trace
        .metadata
        .insert("release_channel".into(), json!("beta"));
    trace.attributes.user_id = Some("user-42".into());
    trace.attributes.session_id = Some("conv-7".into());
    trace.end_time = Some(start + TimeDelta::milliseconds(900));

    let mut root = Observation::at(ObservationKind::Workflow, "answer-question", start);
    root.input = Some(json!({"question": "¿Qué es ops? 🚀"}));
    root.output = Some(json!({"answer": "tracing ✓"}));
    root.end_time = trace.end_time;

    let mut llm = Observation::at(
        ObservationKind::Generation,
        "chat",
        start + TimeDelta::milliseconds(100),
    );
    llm.parent_id = Some(root.id);
    llm.model = Some("gpt-4o-mini".into());
    llm.model_provider = Some("openai".into());
    llm.model_parameters
        .insert("temperature".into(), json!(0.2));
    llm.model_parameters.insert("max_tokens".into(), json!(256));
    llm.input = Some(json!([{"role": "user", "content": "¿Qué es ops? 🚀"}]));
    llm.output = Some(json!({"role": "assistant", "content": "tracing ✓"}));
    let mut usage = Usage::tokens(12, 3);
    usage.input_cost = Some(0.00018);
    usage.output_cost = Some(0.00024);
    usage.currency = Some("USD".into());
    llm.usage = Some(usage);
    llm.end_time = Some(start + TimeDelta::milliseconds(600));

    let mut tool = Observation::at(
        ObservationKind::Tool,
        "web_search",
        start + TimeDelta::milliseconds(650),
    );
    tool.parent_id = Some(root.id);
    tool.input = Some(json!({"q": "ops"}));
    tool.level = Level::Error;
    tool.status_message = Some("timed out".into());
    tool.metadata
        .insert("error_type".into(), json!("reqwest::Error"));
    tool.end_time = Some(start + TimeDelta::milliseconds(800));

    trace.observations = vec![root, llm, tool];
    trace
}

/// An OTLP-JSON `AnyValue` as plain JSON; strings holding JSON (as MLflow stores attribute
/// values) are decoded.
fn any(value: &Value) -> Value {
    let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
        return Value::Null;
    };
    match kind.as_str() {
        "string_value" => {
            let text = v.as_str().unwrap_or_default();
            serde_json::from_str(text).unwrap_or_else(|_| json!(text))
        }
        "int_value" => v
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
            .map_or_else(|| v.clone(), |n| json!(n)),
        "kvlist_value" => Value::Object(
            v["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|kv| {
                    (
                        kv["key"].as_str().unwrap_or_default().to_owned(),
                        any(&kv["value"]),
                    )
                })
                .collect(),
        ),
        "array_value" => Value::Array(
            v["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(any)
                .collect(),
        ),
        _ => v.clone(),
    }
}

/// A span's attribute, as plain JSON (`Null` when absent).
fn attribute(span: &Value, key: &str) -> Value {
    span["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["key"] == json!(key))
        .map_or(Value::Null, |a| any(&a["value"]))
}

/// The hex of a base64 id, as MLflow returns span ids.
fn hex_of(base64_id: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(base64_id.as_str().unwrap_or_default())
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Named checks of what came back; all are reported, then the test fails on any miss.
#[derive(Default)]
struct Points(Vec<(&'static str, bool, String)>);

impl Points {
    fn check(&mut self, field: &'static str, got: Value, want: Value) {
        let ok = got == want;
        self.0.push((field, ok, format!("got {got}, want {want}")));
    }
}

#[test]
fn every_field_reaches_a_real_mlflow() {
    if !python3_available() {
        eprintln!("SKIPPED every_field_reaches_a_real_mlflow: python3 is not installed");
        return;
    }
    let mlflow = match Mlflow::start(&PathBuf::from(env!("CARGO_TARGET_TMPDIR"))) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("SKIPPED every_field_reaches_a_real_mlflow: MLflow cannot be installed: {e}");
            return;
        }
    };
    let base = mlflow.base_url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let factory = find("mlflow").unwrap();
    let mut config = ProviderConfig::new("mlflow")
        .with("tracking_uri", &base)
        .with("experiment_id", "0")
        // A cold MLflow on a loaded machine can take seconds over its first requests.
        .with("timeout", "120");
    (factory.validate)(&mut config).unwrap();
    let mut provider = factory.build(config).unwrap();
    runtime
        .block_on(provider.api_check())
        .expect("the credentials check passes against MLflow");

    let trace = every_field();
    let batch = [std::sync::Arc::new(trace.clone())];
    let mut outcome = runtime.block_on(provider.export(&batch));
    for _ in 0..2 {
        if !matches!(outcome, ExportOutcome::Retry { .. }) {
            break;
        }
        outcome = runtime.block_on(provider.export(&batch));
    }
    assert_eq!(outcome, ExportOutcome::Delivered);

    let client = reqwest::Client::new();
    let trace_id = format!("tr-{}", trace_id_hex(&trace.id));
    let deadline = Instant::now() + READ_LIMIT;
    let (info, spans) = runtime.block_on(async {
        let mut last = String::new();
        loop {
            let url = format!("{base}/api/3.0/mlflow/traces/batchGet?trace_ids={trace_id}");
            if let Ok(r) = client.get(&url).send().await {
                let status = r.status();
                let bytes = r.bytes().await.unwrap();
                last = format!("{status}: {}", String::from_utf8_lossy(&bytes));
                if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
                    let t = &body["traces"][0];
                    let spans = t["spans"].as_array().cloned().unwrap_or_default();
                    if spans.len() >= trace.observations.len() {
                        break (t["trace_info"].clone(), spans);
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "trace {trace_id} not found in time: {last}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let span = |name: &str| -> &Value {
        spans
            .iter()
            .find(|s| s["name"] == json!(name))
            .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
    };
    let (root, llm, tool) = (span("answer-question"), span("chat"), span("web_search"));
    let o = |name: &str| trace.observations.iter().find(|o| o.name == name).unwrap();
    let nanos = |t: chrono::DateTime<Utc>| json!(t.timestamp_nanos_opt().unwrap());
    let number = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .map_or_else(|| v.clone(), |n| json!(n))
    };
    let tags = &info["tags"];
    let metadata = &info["trace_metadata"];
    let parse = |v: &Value| {
        serde_json::from_str::<Value>(v.as_str().unwrap_or("null")).unwrap_or(Value::Null)
    };

    let mut p = Points::default();
    // The trace, as MLflow's trace list shows it.
    p.check(
        "trace name",
        tags["mlflow.traceName"].clone(),
        json!("answer-question"),
    );
    p.check("trace tag (label)", tags["e2e"].clone(), json!("true"));
    p.check(
        "trace tag (key:value)",
        tags["team"].clone(),
        json!("search"),
    );
    p.check(
        "trace metadata",
        tags["release_channel"].clone(),
        json!("beta"),
    );
    p.check(
        "user",
        metadata["mlflow.trace.user"].clone(),
        json!("user-42"),
    );
    p.check(
        "session",
        metadata["mlflow.trace.session"].clone(),
        json!("conv-7"),
    );
    p.check(
        "cost (the app's, not estimated)",
        parse(&metadata["mlflow.trace.cost"])["total_cost"].clone(),
        json!(0.00042),
    );
    p.check(
        "token usage",
        parse(&metadata["mlflow.trace.tokenUsage"])["total_tokens"].clone(),
        json!(15),
    );
    p.check(
        "trace input (unicode, emoji)",
        parse(&info["request_preview"]),
        json!({"question": "¿Qué es ops? 🚀"}),
    );
    p.check(
        "trace output",
        parse(&info["response_preview"]),
        json!({"answer": "tracing ✓"}),
    );
    p.check("trace status", info["state"].clone(), json!("OK"));
    p.check(
        "trace duration",
        info["execution_duration"].clone(),
        json!("0.900s"),
    );
    // The tree.
    p.check("spans", json!(spans.len()), json!(3));
    p.check(
        "parent of the LLM call",
        json!(hex_of(&llm["parent_span_id"])),
        json!(hex_of(&root["span_id"])),
    );
    p.check(
        "parent of the tool call",
        json!(hex_of(&tool["parent_span_id"])),
        json!(hex_of(&root["span_id"])),
    );
    // Kinds, I/O, model, usage, cost, parameters.
    p.check(
        "root kind",
        attribute(root, "mlflow.spanType"),
        json!("CHAIN"),
    );
    p.check("LLM kind", attribute(llm, "mlflow.spanType"), json!("LLM"));
    p.check(
        "tool kind",
        attribute(tool, "mlflow.spanType"),
        json!("TOOL"),
    );
    p.check(
        "LLM input",
        attribute(llm, "mlflow.spanInputs"),
        json!([{"role": "user", "content": "¿Qué es ops? 🚀"}]),
    );
    p.check(
        "LLM output",
        attribute(llm, "mlflow.spanOutputs"),
        json!({"role": "assistant", "content": "tracing ✓"}),
    );
    p.check(
        "model",
        attribute(llm, "mlflow.llm.model"),
        json!("gpt-4o-mini"),
    );
    p.check(
        "model provider",
        attribute(llm, "mlflow.llm.provider"),
        json!("openai"),
    );
    p.check(
        "span usage",
        attribute(llm, "mlflow.chat.tokenUsage"),
        json!({"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}),
    );
    p.check(
        "span cost",
        attribute(llm, "mlflow.llm.cost")["total_cost"].clone(),
        json!(0.00042),
    );
    p.check(
        "model parameter temperature",
        attribute(llm, "temperature"),
        json!(0.2),
    );
    p.check(
        "model parameter max_tokens",
        attribute(llm, "max_tokens"),
        json!(256),
    );
    p.check("span user", attribute(llm, "user.id"), json!("user-42"));
    p.check(
        "span session",
        attribute(llm, "session.id"),
        json!("conv-7"),
    );
    // The failure.
    p.check(
        "error status",
        tool["status"]["code"].clone(),
        json!("STATUS_CODE_ERROR"),
    );
    p.check(
        "status message",
        tool["status"]["message"].clone(),
        json!("timed out"),
    );
    let exception = tool["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == json!("exception"));
    p.check(
        "exception type",
        exception.map_or(Value::Null, |e| attribute(e, "exception.type")),
        json!("reqwest::Error"),
    );
    p.check(
        "observation metadata",
        attribute(tool, "error_type"),
        json!("reqwest::Error"),
    );
    // Times.
    p.check(
        "LLM start",
        number(&llm["start_time_unix_nano"]),
        nanos(o("chat").start_time),
    );
    p.check(
        "LLM end",
        number(&llm["end_time_unix_nano"]),
        nanos(o("chat").end_time.unwrap()),
    );

    let passed = p.0.iter().filter(|(_, ok, _)| *ok).count();
    eprintln!(
        "MLFLOW E2E: {passed} of {} fields read back as sent",
        p.0.len()
    );
    let misses: Vec<String> =
        p.0.iter()
            .filter(|(_, ok, _)| !ok)
            .map(|(field, _, detail)| format!("{field}: {detail}"))
            .collect();
    assert!(
        misses.is_empty(),
        "fields MLflow did not show as sent:\n{}",
        misses.join("\n")
    );
}
