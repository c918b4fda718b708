//! Weave's side requests against the testkit's fake server: ops published as the SDK
//! publishes them (`file/create`, `obj/create`, then `op_name` as a `weave:///` ref), the
//! app's cost registered as model prices (`cost/create`), and an "already exists" answer
//! taken as delivered. None of them may keep a call from being delivered.

#![cfg(feature = "weave")]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ops_core::model::{TraceId, Usage};
use ops_core::{ExportOutcome, Observation, ObservationKind, Provider, Trace};
use ops_providers::weave::{
    MAX_DISPLAY_NAME, OP_SOURCE, Weave, WeaveStats, object_name, token_prices,
};
use ops_testkit::fake_server::{FakeResponse, FakeServer, RecordedRequest};
use serde_json::{Value, json};

fn weave(server: &FakeServer) -> Weave {
    Weave::new(
        &server.uri(),
        Some(&server.uri()),
        Some("ent"),
        "ops-tests",
        "wandb-key",
    )
    .unwrap()
}

/// An agent span with one generation under it that carries tokens and the app's cost.
fn priced_trace(start: DateTime<Utc>) -> Trace {
    let mut trace = Trace::new(
        TraceId::generate(),
        ObservationKind::Span,
        "agent run",
        start,
    );
    let mut agent = Observation::at(ObservationKind::Span, "agent run", start);
    agent.output = Some(json!("4"));
    let mut llm = Observation::at(
        ObservationKind::Generation,
        "llm_call",
        start + TimeDelta::milliseconds(2),
    );
    llm.parent_id = Some(agent.id);
    llm.model = Some("gpt-4o-mini".into());
    llm.model_provider = Some("openai".into());
    llm.usage = Some(Usage {
        input: Some(12),
        output: Some(2),
        input_cost: Some(0.0012),
        output_cost: Some(0.0006),
        currency: Some("USD".into()),
        ..Usage::default()
    });
    let end = start + TimeDelta::milliseconds(5);
    for o in [&mut agent, &mut llm] {
        o.end_time = Some(end);
    }
    trace.end_time = Some(end);
    trace.observations = vec![agent, llm];
    trace
}

fn on(server: &FakeServer, path: &str) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

fn calls_of(server: &FakeServer) -> Vec<Value> {
    on(server, "/call/upsert_batch")
        .iter()
        .flat_map(|r| r.json().unwrap()["batch"].as_array().unwrap().clone())
        .filter(|i| i["mode"] == json!("start"))
        .map(|i| i["req"]["start"].clone())
        .collect()
}

fn publishing(server: &FakeServer) {
    server.route(
        "POST",
        "/file/create",
        FakeResponse::ok().json(&json!({"digest": "FileDigest1"})),
    );
    server.route(
        "POST",
        "/obj/create",
        FakeResponse::ok().json(&json!({"digest": "OpDigest22"})),
    );
}

#[tokio::test]
async fn weave_registers_the_apps_prices_once_and_keeps_the_cost_on_the_call() {
    let server = FakeServer::start().await;
    publishing(&server);
    server.route(
        "POST",
        "/cost/create",
        FakeResponse::ok().json(&json!({"ids": [["cost-1", "gpt-4o-mini"]]})),
    );
    let mut p = weave(&server);
    let start = "2026-11-21T01:08:19.510277Z"
        .parse::<DateTime<Utc>>()
        .unwrap();
    let trace = Arc::new(priced_trace(start));
    assert_eq!(
        p.export(std::slice::from_ref(&trace)).await,
        ExportOutcome::Delivered
    );
    let costs = on(&server, "/cost/create");
    assert_eq!(costs.len(), 1);
    let r = &costs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.header("authorization"),
        Some("Basic YXBpOndhbmRiLWtleQ==")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json().unwrap();
    assert_eq!(body["project_id"], json!("ent/ops-tests"));
    let price = &body["costs"]["gpt-4o-mini"];
    // 0.0012 for 12 prompt tokens, 0.0006 for 2 completion tokens.
    assert!((price["prompt_token_cost"].as_f64().unwrap() - 0.0001).abs() < 1e-12);
    assert!((price["completion_token_cost"].as_f64().unwrap() - 0.0003).abs() < 1e-12);
    assert_eq!(price["prompt_token_cost_unit"], json!("USD"));
    assert_eq!(price["completion_token_cost_unit"], json!("USD"));
    assert_eq!(price["provider_id"], json!("openai"));
    // Effective from the call's start, so weave prices this very call with it.
    assert_eq!(
        price["effective_date"],
        json!("2026-11-21T01:08:19.512277Z")
    );
    let keys: Vec<&str> = price
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "completion_token_cost",
            "completion_token_cost_unit",
            "effective_date",
            "prompt_token_cost",
            "prompt_token_cost_unit",
            "provider_id"
        ],
        "only CostCreateInput's fields (the server forbids others)"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "project_id and costs only"
    );
    // The app's own figures stay on the call.
    let llm = calls_of(&server)
        .into_iter()
        .find(|c| c["op_name"].as_str().unwrap().contains("llm_call"))
        .unwrap();
    assert_eq!(
        llm["attributes"]["ops"]["cost"],
        json!({"input": 0.0012, "output": 0.0006, "total": 0.0018, "currency": "USD"})
    );
    // Once per model and price: the same trace again registers nothing.
    assert_eq!(p.export(&[trace]).await, ExportOutcome::Delivered);
    assert_eq!(on(&server, "/cost/create").len(), 1);
    // An earlier call at the same price registers it again, from that call's start.
    let earlier = Arc::new(priced_trace(start - TimeDelta::hours(1)));
    assert_eq!(p.export(&[earlier]).await, ExportOutcome::Delivered);
    let costs = on(&server, "/cost/create");
    assert_eq!(costs.len(), 2);
    assert_eq!(
        costs[1].json().unwrap()["costs"]["gpt-4o-mini"]["effective_date"],
        json!("2026-11-21T00:08:19.512277Z")
    );
    assert_eq!(p.stats().prices_registered, 2);
    assert_eq!(p.stats().price_failures, 0);
}

#[tokio::test]
async fn weave_delivers_the_calls_when_cost_create_fails() {
    let server = FakeServer::start().await;
    publishing(&server);
    server.route(
        "POST",
        "/cost/create",
        FakeResponse::status(500).json(&json!({"reason": "Internal server error"})),
    );
    let mut p = weave(&server);
    let trace = Arc::new(priced_trace(Utc::now()));
    assert_eq!(
        p.export(std::slice::from_ref(&trace)).await,
        ExportOutcome::Delivered
    );
    assert_eq!(calls_of(&server).len(), 2, "both calls went out");
    assert_eq!(on(&server, "/cost/create").len(), 1);
    assert_eq!(p.stats().price_failures, 1);
    assert_eq!(p.stats().prices_registered, 0);
    // Tried again by later exports, a bounded number of times.
    for _ in 0..5 {
        assert_eq!(
            p.export(std::slice::from_ref(&trace)).await,
            ExportOutcome::Delivered
        );
    }
    assert_eq!(on(&server, "/cost/create").len(), 3);
    assert_eq!(p.stats().price_failures, 3);
    assert_eq!(
        calls_of(&server).len(),
        12,
        "every export delivered its calls"
    );
}

#[tokio::test]
async fn weave_publishes_each_op_once_and_names_calls_by_ref() {
    let server = FakeServer::start().await;
    publishing(&server);
    let mut p = weave(&server);
    let trace = Arc::new(priced_trace(Utc::now()));
    assert_eq!(
        p.export(std::slice::from_ref(&trace)).await,
        ExportOutcome::Delivered
    );
    let files = on(&server, "/file/create");
    assert_eq!(files.len(), 1, "one source file for every op");
    let f = &files[0];
    assert!(
        f.header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    let text = String::from_utf8(f.body.clone()).unwrap();
    assert!(
        text.contains("name=\"project_id\"\r\n\r\nent/ops-tests\r\n"),
        "{text}"
    );
    assert!(
        text.contains("name=\"file\"; filename=\"obj.py\"\r\nContent-Type: text/x-python\r\n\r\n"),
        "{text}"
    );
    assert!(text.contains(OP_SOURCE), "{text}");
    let objs: Vec<Value> = on(&server, "/obj/create")
        .iter()
        .map(|r| r.json().unwrap())
        .collect();
    let mut ids: Vec<&str> = objs
        .iter()
        .map(|o| o["obj"]["object_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["agent-run", "llm_call"]);
    assert_eq!(
        objs[0]["obj"]["val"],
        json!({"_type": "CustomWeaveType", "weave_type": {"type": "Op"}, "files": {"obj.py": "FileDigest1"}})
    );
    assert_eq!(objs[0]["obj"]["project_id"], json!("ent/ops-tests"));
    let calls = calls_of(&server);
    let names: Vec<(&str, &Value)> = calls
        .iter()
        .map(|c| (c["op_name"].as_str().unwrap(), &c["display_name"]))
        .collect();
    assert_eq!(
        names,
        [
            (
                "weave:///ent/ops-tests/op/agent-run:OpDigest22",
                &json!("agent run")
            ),
            (
                "weave:///ent/ops-tests/op/llm_call:OpDigest22",
                &Value::Null
            ),
        ],
        "the ref, and the name as it was where weave spells it otherwise"
    );
    // Published once per process: a second export creates nothing.
    assert_eq!(p.export(&[trace]).await, ExportOutcome::Delivered);
    assert_eq!(on(&server, "/obj/create").len(), 2);
    assert_eq!(on(&server, "/file/create").len(), 1);
    assert_eq!(calls_of(&server)[2]["op_name"], calls[0]["op_name"]);
    assert_eq!(
        p.stats(),
        WeaveStats {
            ops_published: 2,
            prices_registered: 1,
            ..WeaveStats::default()
        }
    );
}

#[tokio::test]
async fn weave_keeps_plain_op_names_when_obj_create_fails() {
    let server = FakeServer::start().await;
    server.route(
        "POST",
        "/file/create",
        FakeResponse::ok().json(&json!({"digest": "FileDigest1"})),
    );
    server.route(
        "POST",
        "/obj/create",
        FakeResponse::status(403).json(&json!({"reason": "Forbidden"})),
    );
    let mut p = weave(&server);
    let trace = Arc::new(priced_trace(Utc::now()));
    assert_eq!(
        p.export(std::slice::from_ref(&trace)).await,
        ExportOutcome::Delivered
    );
    let names: Vec<Value> = calls_of(&server)
        .iter()
        .map(|c| c["op_name"].clone())
        .collect();
    assert_eq!(names, [json!("agent run"), json!("llm_call")]);
    assert_eq!(p.stats().op_failures, 2);
    assert_eq!(p.stats().ops_published, 0);
    // A bounded number of tries per op, then the plain name for good.
    for _ in 0..4 {
        assert_eq!(
            p.export(std::slice::from_ref(&trace)).await,
            ExportOutcome::Delivered
        );
    }
    assert_eq!(on(&server, "/obj/create").len(), 6, "3 tries of 2 ops");
}

#[tokio::test]
async fn weave_takes_an_already_exists_answer_as_delivered() {
    let server = FakeServer::start().await;
    publishing(&server);
    let mut p = weave(&server);
    let trace = Arc::new(priced_trace(Utc::now()));
    server.push(FakeResponse::status(409).json(&json!({"reason": "Call already exists"})));
    assert_eq!(
        p.export(std::slice::from_ref(&trace)).await,
        ExportOutcome::Delivered
    );
    assert_eq!(on(&server, "/call/upsert_batch").len(), 1, "not retried");
    assert_eq!(p.stats().duplicates, 1);
    // A unique-constraint message in another error is recognised too; an ordinary 500 is not.
    server.push(
        FakeResponse::status(500).json(&json!({"reason": "UNIQUE constraint failed: calls.id"})),
    );
    assert_eq!(
        p.export(std::slice::from_ref(&trace)).await,
        ExportOutcome::Delivered
    );
    server.push(FakeResponse::status(500).json(&json!({"reason": "Internal server error"})));
    assert!(matches!(
        p.export(std::slice::from_ref(&trace)).await,
        ExportOutcome::Retry { .. }
    ));
    assert_eq!(p.stats().duplicates, 2);
    // In a request of two traces, the one already there is found by halving: the other is
    // still delivered.
    server.clear_requests();
    let other = Arc::new(priced_trace(Utc::now()));
    server.push(FakeResponse::status(409).json(&json!({"reason": "already exists"})));
    server.push(FakeResponse::status(409).json(&json!({"reason": "already exists"})));
    assert_eq!(p.export(&[trace, other]).await, ExportOutcome::Delivered);
    let sizes: Vec<usize> = on(&server, "/call/upsert_batch")
        .iter()
        .map(|r| r.json().unwrap()["batch"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [8, 4, 4]);
    assert_eq!(p.stats().duplicates, 3);
}

#[test]
fn prices_follow_the_apps_cost() {
    let mut o = priced_trace(Utc::now()).observations[1].clone();
    let (prompt, completion) = token_prices(&o).unwrap();
    assert!((prompt - 0.0001).abs() < 1e-15 && (completion - 0.0003).abs() < 1e-15);
    // Only a total: one price per token.
    let u = o.usage.as_mut().unwrap();
    (u.input_cost, u.output_cost, u.total_cost) = (None, None, Some(0.0028));
    assert_eq!(token_prices(&o), Some((0.0002, 0.0002)));
    // No cost, no model, no tokens, or a cost that makes no price: nothing to register.
    o.usage.as_mut().unwrap().total_cost = None;
    assert_eq!(token_prices(&o), None);
    let mut no_model = priced_trace(Utc::now()).observations[1].clone();
    no_model.model = None;
    assert_eq!(token_prices(&no_model), None);
    let mut no_tokens = priced_trace(Utc::now()).observations[1].clone();
    no_tokens.usage.as_mut().unwrap().input = Some(0);
    assert_eq!(token_prices(&no_tokens), None);
    let mut negative = priced_trace(Utc::now()).observations[1].clone();
    negative.usage.as_mut().unwrap().input_cost = Some(-1.0);
    assert_eq!(token_prices(&negative), None);
}

#[test]
fn object_names_are_sanitized_as_the_sdk_does() {
    assert_eq!(object_name("llm_call").as_deref(), Some("llm_call"));
    assert_eq!(object_name("agent run").as_deref(), Some("agent-run"));
    assert_eq!(
        object_name("chat gpt-4o / v2").as_deref(),
        Some("chat-gpt-4o-v2")
    );
    assert_eq!(object_name("a..b__c").as_deref(), Some("a-b-c"));
    assert_eq!(object_name("__x__").as_deref(), Some("x"));
    assert_eq!(object_name("模型 调用").as_deref(), Some("模型-调用"));
    assert_eq!(object_name("!!!"), None);
    assert_eq!(object_name(&"a".repeat(300)).unwrap().chars().count(), 128);
}

#[tokio::test]
async fn weave_long_op_names_fit_the_servers_limits() {
    let server = FakeServer::start().await;
    publishing(&server);
    let mut p = weave(&server);
    let mut trace = priced_trace(Utc::now());
    let long = "step ".repeat(400);
    trace.observations[0].name = long.clone();
    assert_eq!(p.export(&[Arc::new(trace)]).await, ExportOutcome::Delivered);
    let root = calls_of(&server).remove(0);
    let op = root["op_name"].as_str().unwrap();
    let object_id = op
        .strip_prefix("weave:///ent/ops-tests/op/")
        .and_then(|r| r.split(':').next())
        .unwrap();
    assert_eq!(object_id.chars().count(), 128, "MAX_OBJECT_NAME_LENGTH");
    let shown = root["display_name"].as_str().unwrap();
    assert_eq!(shown.chars().count(), MAX_DISPLAY_NAME);
    assert!(long.starts_with(shown));
}

#[test]
fn weave_puts_the_traces_metadata_on_its_root_call() {
    let mut p = Weave::new(
        "http://127.0.0.1:1",
        None,
        Some("ent"),
        "ops-tests",
        "wandb-key",
    )
    .unwrap();
    let mut trace = priced_trace(Utc::now());
    trace
        .metadata
        .insert("release_channel".into(), json!("beta"));
    trace.metadata.insert("route".into(), json!("trace's"));
    trace.observations[0]
        .metadata
        .insert("route".into(), json!("root's"));
    let calls = p.calls(&[Arc::new(trace)], Utc::now());
    let metadata = |i: usize| calls[i].start["attributes"]["ops"]["metadata"].clone();
    assert_eq!(metadata(0)["release_channel"], json!("beta"));
    assert_eq!(
        metadata(0)["route"],
        json!("root's"),
        "the root's own entry wins"
    );
    assert_eq!(
        metadata(1)["release_channel"],
        Value::Null,
        "only on the root"
    );
}
