//! LangSmith, Opik and Weave against the testkit's scripted fake server: what goes on the
//! wire, and how each answer (409, 413, 429 with `Retry-After` or Opik's TTL headers, 5xx,
//! 400 on one trace of a batch, the endpoint switches) becomes an `ExportOutcome`.

#![cfg(all(feature = "langsmith", feature = "opik", feature = "weave"))]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use common::native::*;
use common::*;
use ops_core::provider::{ProviderConfig, find};
use ops_core::{ExportOutcome, Observation, ObservationKind, Provider, Trace};
use ops_testkit::fake_server::{FakeResponse, FakeServer, RecordedRequest};
use serde_json::{Value, json};

fn build(config: ProviderConfig) -> Box<dyn Provider> {
    find(config.provider()).unwrap().build(config).unwrap()
}

/// Two message traces (two observations each).
fn two_messages() -> Vec<Arc<Trace>> {
    let a = message();
    let mut run = message_run();
    run.id = "0192f5a0-0000-7000-8000-0000000000cc".into();
    let b = ops_core::TraceTask::message_run(run)
        .unwrap()
        .preprocess()
        .unwrap();
    vec![Arc::new(a), Arc::new(b)]
}

/// A trace of `n` observations under one root.
fn wide(n: usize) -> Trace {
    let mut t = captured_program();
    let root = t.observations[0].clone();
    t.observations.truncate(1);
    for i in 1..n {
        let mut o = Observation::at(ObservationKind::Span, format!("step-{i}"), root.start_time);
        o.parent_id = Some(root.id);
        o.end_time = root.end_time;
        o.input = Some(json!({"i": i, "pad": "x".repeat(200)}));
        t.observations.push(o);
    }
    t
}

// ---------------------------------------------------------------------------------------------
// LangSmith

const INFO: &str = r#"{"version":"test","batch_ingest_config":{"use_multipart_endpoint":true,"size_limit":100,"size_limit_bytes":20971520}}"#;

async fn langsmith_server(info: &str) -> FakeServer {
    let server = FakeServer::start().await;
    server.route(
        "GET",
        "/info",
        FakeResponse::ok().json(&serde_json::from_str(info).unwrap()),
    );
    server
}

fn langsmith(server: &FakeServer) -> Box<dyn Provider> {
    build(
        ProviderConfig::new("langsmith")
            .with("api_key", "lsv2-key")
            .with("project", "ops-tests")
            .with("endpoint", server.uri()),
    )
}

fn posts(server: &FakeServer) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect()
}

/// The `post.<id>` / `patch.<id>` runs of a multipart request, by id.
fn multipart_runs(r: &RecordedRequest) -> HashMap<String, Value> {
    let b = boundary(r.header("content-type").unwrap());
    parse_multipart(&r.decoded_body(), &b)
        .into_iter()
        .filter(|p| p.name.matches('.').count() == 1)
        .map(|p| (p.name.split('.').nth(1).unwrap().to_owned(), p.json()))
        .collect()
}

#[tokio::test]
async fn langsmith_posts_multipart_with_its_headers() {
    let server = langsmith_server(INFO).await;
    let mut p = build(
        ProviderConfig::new("langsmith")
            .with("api_key", "lsv2-key")
            .with("project", "ops-tests")
            .with("endpoint", server.uri())
            .with("workspace_id", "ws-uuid"),
    );
    let trace = chatflow();
    assert_eq!(
        p.export(&arc(trace.clone())).await,
        ExportOutcome::Delivered
    );
    let requests = server.requests();
    assert_eq!(
        requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect::<Vec<_>>(),
        [("GET", "/info"), ("POST", "/runs/multipart")]
    );
    for r in &requests {
        assert_eq!(r.header("x-api-key"), Some("lsv2-key"));
        assert_eq!(r.header("x-tenant-id"), Some("ws-uuid"));
    }
    let runs = multipart_runs(&requests[1]);
    assert_eq!(runs.len(), trace.observations.len());
    // A second export does not ask /info again.
    assert_eq!(p.export(&arc(message())).await, ExportOutcome::Delivered);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn langsmith_treats_409_as_already_there() {
    let server = langsmith_server(INFO).await;
    server.push(
        FakeResponse::status(409).json(&json!({"error": "Conflict", "details": "run exists"})),
    );
    let mut p = langsmith(&server);
    assert_eq!(p.export(&arc(message())).await, ExportOutcome::Delivered);
    assert_eq!(posts(&server).len(), 1, "nothing is re-sent");
}

#[tokio::test]
async fn langsmith_splits_on_413_and_every_run_arrives_once() {
    let server = langsmith_server(INFO).await;
    server.push(FakeResponse::status(413).json(&json!({"error": "Payload Too Large"})));
    let mut p = langsmith(&server);
    let batch = two_messages();
    assert_eq!(p.export(&batch).await, ExportOutcome::Delivered);
    let posts = posts(&server);
    assert_eq!(posts.len(), 3, "the whole batch, then each half");
    let first: BTreeSet<String> = multipart_runs(&posts[0]).into_keys().collect();
    let halves: Vec<BTreeSet<String>> = posts[1..]
        .iter()
        .map(|r| multipart_runs(r).into_keys().collect())
        .collect();
    assert_eq!(first.len(), 4);
    assert_eq!(halves[0].len() + halves[1].len(), 4);
    assert!(halves[0].is_disjoint(&halves[1]));
    assert_eq!(&halves[0] | &halves[1], first);
}

#[tokio::test]
async fn langsmith_batches_stay_within_the_size_limit() {
    let server = langsmith_server(
        r#"{"batch_ingest_config":{"use_multipart_endpoint":true,"size_limit":100,"size_limit_bytes":8000}}"#,
    )
    .await;
    let mut p = langsmith(&server);
    let trace = wide(30);
    assert_eq!(
        p.export(&arc(trace.clone())).await,
        ExportOutcome::Delivered
    );
    let posts = posts(&server);
    assert!(posts.len() > 1, "{} requests", posts.len());
    let mut ids = BTreeSet::new();
    for r in &posts {
        assert!(r.body.len() <= 8000 + 2000, "{} bytes", r.body.len());
        for id in multipart_runs(r).into_keys() {
            assert!(ids.insert(id), "sent twice");
        }
    }
    assert_eq!(ids.len(), 30);
}

#[tokio::test]
async fn langsmith_429_honours_retry_after() {
    let server = langsmith_server(INFO).await;
    server.push(
        FakeResponse::status(429)
            .header("retry-after", "7")
            .json(&json!({"error": "Too many requests"})),
    );
    let mut p = langsmith(&server);
    match p.export(&arc(message())).await {
        ExportOutcome::Retry { after, error } => {
            assert_eq!(after, Some(Duration::from_secs(7)));
            assert_eq!(error.provider, "langsmith");
            assert!(error.message.contains("429") && error.message.contains("Too many requests"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn langsmith_server_errors_are_retryable() {
    let server = langsmith_server(INFO).await;
    let mut p = langsmith(&server);
    for status in [500, 502, 503] {
        server.push(FakeResponse::status(status).body("boom"));
        match p.export(&arc(message())).await {
            ExportOutcome::Retry { after: None, error } => {
                assert!(error.message.contains(&status.to_string()), "{error}");
                assert!(error.message.contains("\"boom\""), "{error}");
            }
            other => panic!("{status}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn langsmith_bisects_a_rejected_batch_to_the_bad_trace() {
    let server = langsmith_server(INFO).await;
    server.push(FakeResponse::status(400).json(&json!({"error": "invalid dotted_order"})));
    server.push(FakeResponse::status(400).json(&json!({"error": "invalid dotted_order"})));
    let mut p = langsmith(&server);
    match p.export(&two_messages()).await {
        ExportOutcome::Partial { failed, error } => {
            assert_eq!(failed, vec![0]);
            assert!(error.message.contains("invalid dotted_order"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(posts(&server).len(), 3);
}

#[tokio::test]
async fn langsmith_uses_runs_batch_where_info_says_multipart_is_off() {
    let server = langsmith_server(
        r#"{"batch_ingest_config":{"use_multipart_endpoint":false,"size_limit_bytes":20971520}}"#,
    )
    .await;
    let mut p = langsmith(&server);
    let trace = chatflow();
    assert_eq!(
        p.export(&arc(trace.clone())).await,
        ExportOutcome::Delivered
    );
    let posts = posts(&server);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, "/runs/batch");
    assert_eq!(posts[0].header("content-type"), Some("application/json"));
    let body = posts[0].json().unwrap();
    let runs = body["post"].as_array().unwrap();
    assert_eq!(runs.len(), trace.observations.len());
    assert_eq!(body["patch"], json!([]));
    for r in runs {
        for key in [
            "id",
            "trace_id",
            "dotted_order",
            "inputs",
            "extra",
            "run_type",
        ] {
            assert!(r.get(key).is_some(), "{key} in {r}");
        }
    }
}

#[tokio::test]
async fn langsmith_falls_back_to_runs_batch_when_multipart_is_missing() {
    let server = FakeServer::start().await;
    server.route("GET", "/info", FakeResponse::status(404));
    server.route("POST", "/runs/multipart", FakeResponse::status(404));
    let mut p = langsmith(&server);
    assert_eq!(p.export(&arc(message())).await, ExportOutcome::Delivered);
    assert_eq!(p.export(&arc(message())).await, ExportOutcome::Delivered);
    let paths: Vec<String> = posts(&server).into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/runs/multipart", "/runs/batch", "/runs/batch"]);
}

/// `#[traced]` delivers a long trace in parts, children first: part 1 has `plan_step` and
/// `llm_call` (their parent `agent_run` is still running), part 2 has `agent_run`.
#[tokio::test]
async fn langsmith_holds_orphans_until_their_parent_arrives() {
    let server = langsmith_server(INFO).await;
    let mut p = langsmith(&server);
    let full = captured_program();
    // A child that started (by its clock) before its parent.
    let mut part1 = full.clone();
    part1.observations.remove(0);
    part1.observations[0].start_time = full.start_time - TimeDelta::milliseconds(40);
    let mut part2 = full.clone();
    part2.observations.truncate(1);
    assert_eq!(p.export(&arc(part1)).await, ExportOutcome::Delivered);
    assert!(
        posts(&server).is_empty(),
        "nothing to send before the parent is known"
    );
    assert_eq!(p.export(&arc(part2)).await, ExportOutcome::Delivered);
    let posts = posts(&server);
    assert_eq!(posts.len(), 1);
    let runs = multipart_runs(&posts[0]);
    assert_eq!(runs.len(), 3);
    let root = full.observations[0].id.to_string();
    let by_name: HashMap<&str, &Value> = runs
        .values()
        .map(|r| (r["name"].as_str().unwrap(), r))
        .collect();
    let d = |n: &str| by_name[n]["dotted_order"].as_str().unwrap().to_owned();
    assert!(d("plan_step").starts_with(&format!("{}.", d("agent_run"))));
    assert!(d("llm_call").starts_with(&format!("{}.", d("plan_step"))));
    for r in runs.values() {
        assert_eq!(r["trace_id"], json!(root));
    }
    // A straggler delivered after everything else finds its parent remembered.
    let mut straggler = full.clone();
    let mut late = Observation::at(ObservationKind::Tool, "late_tool", full.start_time);
    late.parent_id = Some(full.observations[2].id);
    late.end_time = Some(full.start_time + TimeDelta::milliseconds(5));
    straggler.observations = vec![late];
    assert_eq!(p.export(&arc(straggler)).await, ExportOutcome::Delivered);
    let last = server.requests().pop().unwrap();
    let runs = multipart_runs(&last);
    let late = runs.values().next().unwrap();
    assert!(
        late["dotted_order"]
            .as_str()
            .unwrap()
            .starts_with(&d("llm_call"))
    );
}

#[tokio::test]
async fn langsmith_sends_runs_that_lost_their_parent_as_roots_at_shutdown() {
    let server = langsmith_server(INFO).await;
    let mut p = langsmith(&server);
    let mut orphan = captured_program();
    orphan.observations.remove(0);
    assert_eq!(
        p.export(&arc(orphan.clone())).await,
        ExportOutcome::Delivered
    );
    assert!(posts(&server).is_empty());
    p.shutdown().await;
    let posts = posts(&server);
    assert_eq!(posts.len(), 1);
    let runs = multipart_runs(&posts[0]);
    let plan = runs
        .values()
        .find(|r| r["name"] == json!("plan_step"))
        .unwrap();
    assert!(plan.get("parent_run_id").is_none());
    assert_eq!(plan["trace_id"], plan["id"]);
    assert!(!plan["dotted_order"].as_str().unwrap().contains('.'));
}

#[tokio::test]
async fn langsmith_checks_credentials_and_finds_the_project() {
    let server = FakeServer::start().await;
    server.route(
        "GET",
        "/sessions",
        FakeResponse::ok()
            .json(&json!([{"id": "proj-1", "tenant_id": "tenant-1", "name": "ops-tests"}])),
    );
    let p = langsmith(&server);
    p.api_check().await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(r.header("x-api-key"), Some("lsv2-key"));
    assert_eq!(p.project_key().await.unwrap().as_deref(), Some("proj-1"));
    assert_eq!(
        p.project_url().await.unwrap().unwrap(),
        format!("{}/o/tenant-1/projects/p/proj-1", server.uri())
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.query.as_deref() == Some("name=ops-tests&limit=1"))
    );
    let bad = FakeServer::start().await;
    bad.set_default(FakeResponse::status(401).json(&json!({"detail": "Invalid token"})));
    let err = langsmith(&bad).api_check().await.unwrap_err().to_string();
    assert!(
        err.contains("invalid credentials") && err.contains("Invalid token"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Opik

fn opik(server: &FakeServer, cloud: bool) -> Box<dyn Provider> {
    let mut c = ProviderConfig::new("opik")
        .with("project", "ops-tests")
        .with("url", server.url("/api/"));
    if cloud {
        c = c.with("api_key", "opik-key").with("workspace", "ws");
    }
    build(c)
}

#[tokio::test]
async fn opik_posts_gzip_json_batches_with_cloud_auth_only_when_configured() {
    for cloud in [true, false] {
        let server = FakeServer::start().await;
        server.set_default(FakeResponse::status(204));
        let mut p = opik(&server, cloud);
        let trace = chatflow();
        assert_eq!(
            p.export(&arc(trace.clone())).await,
            ExportOutcome::Delivered
        );
        let requests = server.requests();
        assert_eq!(
            requests.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
            [
                "/api/v1/private/spans/batch",
                "/api/v1/private/traces/batch"
            ]
        );
        for r in &requests {
            assert_eq!(r.header("content-encoding"), Some("gzip"));
            assert_eq!(r.header("content-type"), Some("application/json"));
            if cloud {
                assert_eq!(r.header("authorization"), Some("opik-key"), "no Bearer");
                assert_eq!(r.header("comet-workspace"), Some("ws"));
            } else {
                assert!(r.header("authorization").is_none());
                assert!(r.header("comet-workspace").is_none());
            }
        }
        assert_eq!(
            requests[0].json().unwrap()["spans"]
                .as_array()
                .unwrap()
                .len(),
            trace.observations.len()
        );
    }
}

#[tokio::test]
async fn opik_keeps_1000_items_per_request() {
    let server = FakeServer::start().await;
    let mut p = opik(&server, true);
    let trace = wide(1500);
    assert_eq!(p.export(&arc(trace)).await, ExportOutcome::Delivered);
    let requests = server.requests();
    let counts: Vec<(String, usize)> = requests
        .iter()
        .map(|r| {
            let body = r.json().unwrap();
            let key = if r.path.ends_with("spans/batch") {
                "spans"
            } else {
                "traces"
            };
            (key.to_owned(), body[key].as_array().unwrap().len())
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("spans".into(), 1000),
            ("spans".into(), 500),
            ("traces".into(), 1)
        ]
    );
}

#[tokio::test]
async fn opik_429_waits_for_the_rate_limit_ttl() {
    let server = FakeServer::start().await;
    server.push(
        FakeResponse::status(429)
            .header("opik-user-limit", "user_limit")
            .header("opik-user-remaining-limit", "0")
            .header("opik-user-remaining-limit-ttl-millis", "12500")
            .header("ratelimit-reset", "3")
            .json(&json!({"errors": ["Too Many Requests"]})),
    );
    let mut p = opik(&server, true);
    match p.export(&arc(message())).await {
        ExportOutcome::Retry { after, error } => {
            assert_eq!(after, Some(Duration::from_millis(12500)));
            assert!(error.message.contains("429"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    server.push(FakeResponse::status(429).header("retry-after", "9"));
    match p.export(&arc(message())).await {
        ExportOutcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(9))),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn opik_server_errors_retry_and_413_splits() {
    let server = FakeServer::start().await;
    let mut p = opik(&server, true);
    server.push(FakeResponse::status(503).body("unavailable"));
    assert!(matches!(
        p.export(&arc(message())).await,
        ExportOutcome::Retry { after: None, .. }
    ));
    server.clear_requests();
    server.push(FakeResponse::status(413));
    assert_eq!(p.export(&two_messages()).await, ExportOutcome::Delivered);
    let spans: Vec<usize> = server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("spans/batch"))
        .map(|r| r.json().unwrap()["spans"].as_array().unwrap().len())
        .collect();
    assert_eq!(spans, [4, 2, 2], "the 413'd request, then its halves");
}

#[tokio::test]
async fn opik_bad_request_is_fatal_and_quotes_the_server() {
    let server = FakeServer::start().await;
    server.push(
        FakeResponse::status(400)
            .json(&json!({"code": 400, "message": "id must be a version 7 UUID"})),
    );
    let mut p = opik(&server, true);
    match p.export(&arc(message())).await {
        ExportOutcome::Fatal(e) => {
            assert!(e.message.contains("id must be a version 7 UUID"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn opik_checks_access_and_links_the_project() {
    let server = FakeServer::start().await;
    server.set_default(FakeResponse::status(204));
    let p = opik(&server, true);
    p.api_check().await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v1/private/auth")
    );
    assert_eq!(r.header("authorization"), Some("opik-key"));
    assert_eq!(
        p.project_url().await.unwrap().unwrap(),
        format!("{}/ws/redirect/projects?name=ops-tests", server.uri())
    );
    let bad = FakeServer::start().await;
    bad.set_default(
        FakeResponse::status(401).json(&json!({"code": 401, "message": "User not allowed"})),
    );
    let err = opik(&bad, true).api_check().await.unwrap_err().to_string();
    assert!(
        err.contains("invalid credentials") && err.contains("User not allowed"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Weave

fn weave(server: &FakeServer, entity: Option<&str>) -> Box<dyn Provider> {
    let mut c = ProviderConfig::new("weave")
        .with("api_key", "wandb-key")
        .with("project", "ops-tests")
        .with("endpoint", server.uri())
        .with("host", server.uri());
    if let Some(e) = entity {
        c = c.with("entity", e);
    }
    // Ops are published before the calls (see weave_wire.rs); these tests script the calls.
    server.route(
        "POST",
        "/file/create",
        FakeResponse::ok().json(&json!({"digest": "f"})),
    );
    server.route(
        "POST",
        "/obj/create",
        FakeResponse::ok().json(&json!({"digest": "o"})),
    );
    build(c)
}

/// The requests but the ops' publication.
fn call_requests(server: &FakeServer) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| !r.path.ends_with("/create"))
        .collect()
}

#[tokio::test]
async fn weave_looks_up_the_default_entity_once() {
    let server = FakeServer::start().await;
    server.route(
        "POST",
        "/graphql",
        FakeResponse::ok().json(
            &json!({"data": {"viewer": {"username": "me", "defaultEntity": {"name": "team"}}}}),
        ),
    );
    let mut p = weave(&server, None);
    assert_eq!(p.export(&arc(message())).await, ExportOutcome::Delivered);
    assert_eq!(p.export(&arc(message())).await, ExportOutcome::Delivered);
    let requests = call_requests(&server);
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/graphql", "/call/upsert_batch", "/call/upsert_batch"]
    );
    assert!(
        requests[0].json().unwrap()["query"]
            .as_str()
            .unwrap()
            .contains("defaultEntity")
    );
    let body = requests[1].json().unwrap();
    assert_eq!(
        body["batch"][0]["req"]["start"]["project_id"],
        json!("team/ops-tests")
    );
    assert_eq!(
        p.project_key().await.unwrap().as_deref(),
        Some("team/ops-tests")
    );
}

#[tokio::test]
async fn weave_switches_to_calls_complete_when_the_project_requires_it_and_back_on_404() {
    let server = FakeServer::start().await;
    server.push(FakeResponse::status(400).json(&json!({
        "reason": "calls_complete required", "error_code": "CALLS_COMPLETE_MODE_REQUIRED"
    })));
    let mut p = weave(&server, Some("ent"));
    assert_eq!(p.export(&arc(chatflow())).await, ExportOutcome::Delivered);
    server.push(FakeResponse::status(404).json(&json!({"detail": "Not Found"})));
    assert_eq!(p.export(&arc(message())).await, ExportOutcome::Delivered);
    let paths: Vec<String> = call_requests(&server).into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/call/upsert_batch",
            "/v2/ent/ops-tests/calls/complete",
            "/v2/ent/ops-tests/calls/complete",
            "/call/upsert_batch"
        ]
    );
}

#[tokio::test]
async fn weave_retries_429_and_5xx_and_splits_on_413() {
    let server = FakeServer::start().await;
    let mut p = weave(&server, Some("ent"));
    server.push(FakeResponse::status(429).header("retry-after", "4"));
    match p.export(&arc(message())).await {
        ExportOutcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(4))),
        other => panic!("{other:?}"),
    }
    server.push(FakeResponse::status(500).json(&json!({"reason": "Internal server error"})));
    match p.export(&arc(message())).await {
        ExportOutcome::Retry { after: None, error } => {
            assert!(error.message.contains("Internal server error"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    server.clear_requests();
    server.push(FakeResponse::status(413).json(&json!({"reason": "Request too large"})));
    assert_eq!(p.export(&two_messages()).await, ExportOutcome::Delivered);
    let starts: Vec<usize> = call_requests(&server)
        .iter()
        .map(|r| {
            r.json().unwrap()["batch"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["mode"] == json!("start"))
                .count()
        })
        .collect();
    assert_eq!(starts, [4, 2, 2]);
}

#[tokio::test]
async fn weave_keeps_the_retry_id_across_retries_of_one_request() {
    let server = FakeServer::start().await;
    let mut p = weave(&server, Some("ent"));
    let trace = arc(message());
    server.push(FakeResponse::status(503).json(&json!({"reason": "unavailable"})));
    assert!(matches!(
        p.export(&trace).await,
        ExportOutcome::Retry { .. }
    ));
    assert_eq!(p.export(&trace).await, ExportOutcome::Delivered);
    assert_eq!(p.export(&arc(chatflow())).await, ExportOutcome::Delivered);
    let ids: Vec<String> = call_requests(&server)
        .iter()
        .map(|r| r.header("x-weave-retry-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], ids[1], "a retry of the same request keeps its id");
    assert_ne!(ids[1], ids[2], "another request gets another id");
    assert_eq!(
        uuid::Uuid::parse_str(&ids[0]).unwrap().get_version_num(),
        7,
        "a UUIDv7, as the SDK sends"
    );
}

#[tokio::test]
async fn weave_checks_the_key_with_wandb() {
    let server = FakeServer::start().await;
    server.route(
        "POST",
        "/graphql",
        FakeResponse::ok().json(
            &json!({"data": {"viewer": {"username": "me", "defaultEntity": {"name": "team"}}}}),
        ),
    );
    let p = weave(&server, Some("ent"));
    p.api_check().await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(
        r.header("authorization"),
        Some("Basic YXBpOndhbmRiLWtleQ==")
    );
    assert_eq!(
        p.project_url().await.unwrap().unwrap(),
        format!("{}/ent/ops-tests", server.uri())
    );
    let nobody = FakeServer::start().await;
    nobody.set_default(FakeResponse::ok().json(&json!({"data": {"viewer": null}})));
    let err = weave(&nobody, None)
        .api_check()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not know this API key"), "{err}");
    let bad = FakeServer::start().await;
    bad.set_default(FakeResponse::status(401).body("unauthorized"));
    let err = weave(&bad, None).api_check().await.unwrap_err().to_string();
    assert!(err.contains("invalid credentials"), "{err}");
}

#[tokio::test]
async fn weave_entity_lookup_failures_retry_unless_the_key_is_refused() {
    let server = FakeServer::start().await;
    server.set_default(FakeResponse::status(503));
    let mut p = weave(&server, None);
    match p.export(&arc(message())).await {
        ExportOutcome::Retry { error, .. } => {
            assert!(error.message.contains("503"), "{error}");
            assert!(server.requests().iter().all(|r| r.path == "/graphql"));
        }
        other => panic!("{other:?}"),
    }
    // A refused key is not worth retrying.
    let refused = FakeServer::start().await;
    refused.set_default(FakeResponse::status(401).body("bad key"));
    match weave(&refused, None).export(&arc(message())).await {
        ExportOutcome::Fatal(error) => assert!(error.message.contains("invalid credentials")),
        other => panic!("{other:?}"),
    }
}
