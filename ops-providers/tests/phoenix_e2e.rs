//! End to end against a real Arize Phoenix: a chatflow goes through the queue and the
//! `phoenix` provider, and is read back through Phoenix's REST API.
//!
//! Phoenix is installed from PyPI into a cached virtualenv and started on free loopback ports
//! by `../shared/e2e/phoenix` (beside the workspace). The test skips, saying why, only when
//! `python3` is missing; anything else that goes wrong fails it.

#![cfg(feature = "phoenix")]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use ops_core::provider::{ProviderConfig, find};
use ops_core::{TraceQueueManager, TraceTask};
use ops_providers::otlp::{OtlpProvider, span_id_hex, trace_id_hex};
use ops_providers::phoenix::Phoenix;
use ops_testkit::phoenix::{self as e2e, python3_available};
use serde_json::{Value, json};

/// How long spans may take to show up (Phoenix inserts them in the background).
const READ_LIMIT: Duration = Duration::from_secs(30);
const PROJECT: &str = "ops-e2e";

async fn get(client: &reqwest::Client, url: &str) -> Value {
    let response = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[test]
fn a_chatflow_reaches_a_real_phoenix() {
    if !python3_available() {
        eprintln!(
            "SKIPPED a_chatflow_reaches_a_real_phoenix: python3 is not installed, so Phoenix cannot run"
        );
        return;
    }
    let phoenix = e2e::Phoenix::start(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
        .unwrap_or_else(|e| panic!("Phoenix cannot be installed: {e}"));
    let base = phoenix.base_url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // The provider, as an app configures it (Dify's keys, validated by the registry).
    let factory = find("phoenix").unwrap();
    let mut config = ProviderConfig::new("phoenix")
        .with("endpoint", &base)
        .with("project", PROJECT);
    (factory.validate)(&mut config).unwrap();
    let checked = factory.build(config.clone()).unwrap();
    runtime
        .block_on(checked.api_check())
        .expect("the credentials check passes");

    // The chatflow, through the queue.
    let (run, nodes) = chatflow_run();
    let trace = TraceTask::workflow_run(run.clone(), nodes.clone())
        .unwrap()
        .preprocess()
        .unwrap();
    let queue = TraceQueueManager::builder()
        .interval(Duration::from_millis(50))
        .batch_size(10)
        .provider(OtlpProvider::new(Phoenix::from_config(&config).unwrap()).unwrap())
        .build()
        .unwrap();
    queue.trace_workflow_run(run, nodes).unwrap();
    let report = queue.flush(Duration::from_secs(30));
    assert_eq!(
        (report.delivered, report.failed, report.pending),
        (1, 0, 0),
        "{report:?}"
    );
    queue.shutdown(Duration::from_secs(5));

    // Read it back.
    let client = reqwest::Client::new();
    let spans_url = format!("{base}/v1/projects/{PROJECT}/spans?limit=100");
    let deadline = Instant::now() + READ_LIMIT;
    let spans: Vec<Value> = runtime.block_on(async {
        loop {
            let got = match client.get(&spans_url).send().await {
                Ok(r) if r.status().is_success() => {
                    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
                    body["data"].as_array().cloned().unwrap_or_default()
                }
                _ => Vec::new(),
            };
            if got.len() >= trace.observations.len() || Instant::now() >= deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    assert_eq!(
        spans.len(),
        trace.observations.len(),
        "Phoenix has {} of {} spans after {READ_LIMIT:?}: {spans:#?}",
        spans.len(),
        trace.observations.len()
    );
    let span = |name: &str| -> &Value {
        let id = span_id_hex(obs(&trace, name).id);
        spans
            .iter()
            .find(|s| s["context"]["span_id"] == json!(id))
            .unwrap_or_else(|| panic!("no span {name} ({id}) in {spans:#?}"))
    };

    // The tree.
    let trace_hex = trace_id_hex(&trace.id);
    for o in &trace.observations {
        let s = span(&o.name);
        assert_eq!(s["context"]["trace_id"], json!(trace_hex), "{}", o.name);
        assert_eq!(s["name"], json!(o.name));
        let parent = o.parent_id.map(span_id_hex);
        assert_eq!(s["parent_id"], json!(parent), "parent of {}", o.name);
    }
    assert_eq!(
        span("workflow")["parent_id"],
        span("message")["context"]["span_id"]
    );
    assert_eq!(
        span("LLM")["parent_id"],
        span("workflow")["context"]["span_id"]
    );
    assert_eq!(
        span("Inner")["parent_id"],
        span("Loop")["context"]["span_id"]
    );

    // The span kinds.
    for (name, kind) in [
        ("message", "CHAIN"),
        ("workflow", "CHAIN"),
        ("LLM", "LLM"),
        ("Search", "TOOL"),
        ("Agent", "AGENT"),
        ("Knowledge", "RETRIEVER"),
        ("Loop", "CHAIN"),
        ("Inner", "CHAIN"),
    ] {
        assert_eq!(span(name)["span_kind"], json!(kind), "{name}");
    }

    // Token counts, inputs and outputs.
    let llm = &span("LLM")["attributes"];
    assert_eq!(llm["llm.token_count.prompt"], json!(12), "{llm:#}");
    assert_eq!(llm["llm.token_count.completion"], json!(3));
    assert_eq!(llm["llm.token_count.total"], json!(15));
    assert_eq!(llm["llm.model_name"], json!("gpt-4o-mini"));
    let prompts: Value = serde_json::from_str(llm["input.value"].as_str().unwrap()).unwrap();
    assert_eq!(prompts[1]["text"], json!("what is ops?"));
    let answer: Value = serde_json::from_str(llm["output.value"].as_str().unwrap()).unwrap();
    assert_eq!(answer["text"], json!("ops is tracing"));
    let root = &span("message")["attributes"];
    assert_eq!(root["input.value"], json!("what is ops?"));
    assert_eq!(root["output.value"], json!("ops is tracing"));
    assert_eq!(root["session.id"], json!("conv-1"));
    assert_eq!(root["user.id"], json!("user-1"));
    assert_eq!(
        span("Agent")["attributes"]["llm.token_count.total"],
        json!(12)
    );
    let kr = &span("Knowledge")["attributes"];
    assert!(
        kr.to_string().contains("ops traces LLM apps"),
        "retrieved documents are kept: {kr:#}"
    );
    let tool = span("Search");
    assert_eq!(tool["status_code"], json!("ERROR"));
    assert_eq!(tool["status_message"], json!("tool exploded"));
    assert_eq!(tool["attributes"]["input.value"], json!("{\"q\":\"ops\"}"));

    // Phoenix's per-trace totals count the LLM spans.
    let traces = runtime.block_on(get(
        &client,
        &format!("{base}/v1/projects/{PROJECT}/traces"),
    ));
    let ours = traces["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["trace_id"] == json!(trace_hex))
        .unwrap_or_else(|| panic!("trace {trace_hex} not listed: {traces:#}"));
    assert_eq!(ours["token_count_prompt"], json!(12), "{ours:#}");
    assert_eq!(ours["token_count_completion"], json!(3));
    assert_eq!(ours["token_count_total"], json!(15));

    // The project URL points at the project Phoenix created.
    let projects = runtime.block_on(get(&client, &format!("{base}/v1/projects")));
    let id = projects["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == json!(PROJECT))
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .expect("the project exists");
    assert_eq!(
        runtime.block_on(checked.project_url()).unwrap(),
        Some(format!("{base}/projects/{id}"))
    );
    drop(phoenix);
}
