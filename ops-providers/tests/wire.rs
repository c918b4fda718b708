//! The OTLP transport against the testkit's scripted fake server: what goes on the wire, and
//! how each answer (200 with partial success, 429, 502/503/504, 413, 400, 401, network
//! failures) becomes an `ExportOutcome`.

#![cfg(feature = "full")]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use ops_core::provider::{ProviderConfig, find};
use ops_core::{ExportOutcome, Observation, Provider, Trace};
use ops_providers::langfuse::{Score, ScoreClient, ScoreTarget};
use ops_providers::otlp::encode::Attributes;
use ops_providers::otlp::proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use ops_providers::otlp::{Dialect, OtlpProvider, TransportOptions, span_id_hex, trace_id_hex};
use ops_providers::phoenix::Phoenix;
use ops_testkit::fake_server::{FakeResponse, FakeServer, RecordedRequest};
use prost::Message;
use serde_json::{Value, json};

fn phoenix_config(server: &FakeServer) -> ProviderConfig {
    ProviderConfig::new("phoenix")
        .with("endpoint", server.uri())
        .with("project", "ops-tests")
        .with("api_key", "px-key")
}

fn build(config: ProviderConfig) -> Box<dyn Provider> {
    find(config.provider()).unwrap().build(config).unwrap()
}

fn body_spans(request: &RecordedRequest) -> Vec<Vec<u8>> {
    spans(&decode(&request.decoded_body()))
        .into_iter()
        .map(|s| s.span_id.clone())
        .collect()
}

fn two_messages() -> Vec<Arc<Trace>> {
    let a = message();
    let mut run = message_run();
    run.id = "0192f5a0-0000-7000-8000-0000000000cc".into();
    let b = ops_core::TraceTask::message_run(run)
        .unwrap()
        .preprocess()
        .unwrap();
    assert_eq!((a.observations.len(), b.observations.len()), (2, 2));
    vec![Arc::new(a), Arc::new(b)]
}

#[tokio::test]
async fn delivers_gzipped_protobuf_with_the_dialects_headers() {
    let server = FakeServer::start().await;
    let mut provider = build(phoenix_config(&server));
    let trace = chatflow();
    assert_eq!(
        provider.export(&arc(trace.clone())).await,
        ExportOutcome::Delivered
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/traces"));
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("authorization"), Some("Bearer px-key"));
    let request = decode(&r.decoded_body());
    assert_tree(&trace, &request);
    assert_eq!(
        resource_attr(&request, "openinference.project.name"),
        Some("ops-tests")
    );
    assert_eq!(
        resource_attr(&request, "telemetry.sdk.language"),
        Some("rust")
    );
    let scope = request.resource_spans[0].scope_spans[0]
        .scope
        .as_ref()
        .unwrap();
    assert_eq!(scope.name, "ops");
    assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn too_many_requests_honours_retry_after_seconds() {
    let server = FakeServer::start().await;
    server.push(
        FakeResponse::status(429)
            .header("retry-after", "7")
            .json(&json!({"error": "slow down"})),
    );
    let mut provider = build(phoenix_config(&server));
    match provider.export(&arc(message())).await {
        ExportOutcome::Retry { after, error } => {
            assert_eq!(after, Some(Duration::from_secs(7)));
            assert_eq!(error.provider, "phoenix");
            assert!(error.message.contains("429"), "{error}");
            assert!(error.message.contains("\"slow down\""), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.requests().len(),
        1,
        "the provider does not retry by itself"
    );
}

#[tokio::test]
async fn unavailable_honours_an_http_date_retry_after() {
    let server = FakeServer::start().await;
    let at = SystemTime::now() + Duration::from_secs(120);
    server.push(FakeResponse::status(503).header("retry-after", httpdate::fmt_http_date(at)));
    let mut provider = build(phoenix_config(&server));
    match provider.export(&arc(message())).await {
        ExportOutcome::Retry {
            after: Some(after), ..
        } => {
            assert!(after <= Duration::from_secs(120), "{after:?}");
            assert!(after >= Duration::from_secs(100), "{after:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn gateway_errors_are_retryable_without_a_stated_wait() {
    let server = FakeServer::start().await;
    let mut provider = build(phoenix_config(&server));
    for status in [502, 503, 504] {
        server.push(FakeResponse::status(status).body("upstream down"));
        match provider.export(&arc(message())).await {
            ExportOutcome::Retry { after: None, error } => {
                assert!(error.message.contains(&status.to_string()), "{error}");
                assert!(error.message.contains("\"upstream down\""), "{error}");
            }
            other => panic!("{status}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn too_large_batches_are_split_in_halves() {
    let server = FakeServer::start().await;
    server.push(FakeResponse::status(413).body("request entity too large"));
    let mut provider = build(phoenix_config(&server));
    let batch = vec![Arc::new(chatflow()), Arc::new(message())];
    let total: usize = batch.iter().map(|t| t.observations.len()).sum();
    assert_eq!(total, 10);
    assert_eq!(provider.export(&batch).await, ExportOutcome::Delivered);
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "the whole batch, then each half");
    let whole = body_spans(&requests[0]);
    let first = body_spans(&requests[1]);
    let second = body_spans(&requests[2]);
    assert_eq!(whole.len(), total);
    assert_eq!((first.len(), second.len()), (5, 5));
    let halves: HashSet<_> = first.iter().chain(&second).cloned().collect();
    assert_eq!(
        halves,
        whole.into_iter().collect::<HashSet<_>>(),
        "every span once"
    );
    assert_eq!(
        first,
        body_spans(&requests[0])[..5],
        "the first half goes first"
    );
}

#[tokio::test]
async fn a_span_too_large_on_its_own_fails_for_good() {
    let server = FakeServer::start().await;
    server.set_default(FakeResponse::status(413));
    let mut provider = build(phoenix_config(&server));
    let batch = two_messages();
    match provider.export(&batch).await {
        ExportOutcome::Fatal(error) => {
            assert!(error.message.contains("413"), "{error}");
            assert!(error.message.contains("too large"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // 4 spans: 1 request of 4, 2 of 2, 4 of 1; nothing is split below one span.
    assert_eq!(server.requests().len(), 7);
}

#[tokio::test]
async fn a_rejected_half_makes_a_partial_outcome() {
    let server = FakeServer::start().await;
    server
        .push(FakeResponse::status(413))
        .push(FakeResponse::ok())
        .push(FakeResponse::status(400).json(&json!({"error": "span 2 is malformed"})));
    let mut provider = build(phoenix_config(&server));
    match provider.export(&two_messages()).await {
        ExportOutcome::Partial { failed, error } => {
            assert_eq!(
                failed,
                vec![1],
                "the second trace's spans were in the rejected half"
            );
            assert!(error.message.contains("\"span 2 is malformed\""), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_request_is_fatal_and_quotes_the_server() {
    let server = FakeServer::start().await;
    server.push(
        FakeResponse::status(400)
            .json(&json!({"error": "Invalid request: spans[0].traceId must be 16 bytes"})),
    );
    let mut provider = build(phoenix_config(&server));
    match provider.export(&arc(message())).await {
        ExportOutcome::Fatal(error) => {
            let text = error.to_string();
            assert!(text.starts_with("phoenix: "), "{text}");
            assert!(text.contains("400 Bad Request"), "{text}");
            assert!(
                text.contains("\"Invalid request: spans[0].traceId must be 16 bytes\""),
                "{text}"
            );
            assert!(text.contains(&server.url("/v1/traces")), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unauthorized_and_forbidden_are_fatal_with_a_hint() {
    let server = FakeServer::start().await;
    let mut provider = build(phoenix_config(&server));
    for status in [401, 403] {
        server.push(FakeResponse::status(status).body("Invalid API key"));
        match provider.export(&arc(message())).await {
            ExportOutcome::Fatal(error) => {
                assert!(error.message.contains("\"Invalid API key\""), "{error}");
                assert!(error.message.contains("check the credentials"), "{error}");
            }
            other => panic!("{status}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn partial_success_is_counted_and_the_batch_delivered() {
    let server = FakeServer::start().await;
    let response = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 2,
            error_message: "2 spans had no name".into(),
        }),
    };
    server.push(
        FakeResponse::ok()
            .header("content-type", "application/x-protobuf")
            .body(response.encode_to_vec()),
    );
    let mut provider = OtlpProvider::new(Phoenix::new(server.uri(), "p", None)).unwrap();
    assert_eq!(
        provider.export(&arc(chatflow())).await,
        ExportOutcome::Delivered
    );
    assert_eq!(provider.rejected_spans(), 2);
    assert_eq!(
        provider.export(&arc(message())).await,
        ExportOutcome::Delivered
    );
    assert_eq!(provider.rejected_spans(), 2);
}

#[tokio::test]
async fn connection_failures_are_retryable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut provider =
        build(ProviderConfig::new("phoenix").with("endpoint", format!("http://127.0.0.1:{port}")));
    match provider.export(&arc(message())).await {
        ExportOutcome::Retry { after: None, error } => {
            assert!(error.message.contains("could not connect"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

/// A minimal custom dialect, with a short timeout.
#[derive(Debug)]
struct Impatient(String, TransportOptions);

impl Dialect for Impatient {
    fn name(&self) -> &'static str {
        "impatient"
    }
    fn endpoint(&self) -> String {
        self.0.clone()
    }
    fn transport_options(&self) -> TransportOptions {
        self.1.clone()
    }
    fn span_attributes(&self, _trace: &Trace, o: &Observation, attrs: &mut Attributes) {
        attrs.str("kind", o.kind.as_str());
    }
}

#[tokio::test]
async fn timeouts_are_retryable() {
    let server = FakeServer::start().await;
    server.push(FakeResponse::ok().delay(Duration::from_secs(3)));
    let options = TransportOptions {
        timeout: Duration::from_millis(300),
        ..TransportOptions::default()
    };
    let mut provider = OtlpProvider::new(Impatient(server.url("/v1/traces"), options)).unwrap();
    match provider.export(&arc(message())).await {
        ExportOutcome::Retry { error, .. } => {
            assert_eq!(error.provider, "impatient");
            assert!(error.message.contains("timed out"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let sent = decode(&server.requests()[0].decoded_body());
    assert_eq!(str_attr(spans(&sent)[0], "kind"), Some("message"));
}

#[tokio::test]
async fn otlp_json_follows_the_json_mapping() {
    let server = FakeServer::start().await;
    let mut provider = build(
        ProviderConfig::new("otlp")
            .with("endpoint", server.uri())
            .with("protocol", "http/json")
            .with("compression", "none")
            .with("headers", "x-api-key=abc,x-team=a%2Cb"),
    );
    let trace = chatflow();
    assert_eq!(
        provider.export(&arc(trace.clone())).await,
        ExportOutcome::Delivered
    );
    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1/traces");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("x-api-key"), Some("abc"));
    assert_eq!(r.header("x-team"), Some("a,b"));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    let spans = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap();
    assert_eq!(spans.len(), trace.observations.len());
    let hex = |v: &Value, n: usize| {
        let s = v.as_str().unwrap();
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    for s in spans {
        assert!(hex(&s["traceId"], 32), "{}", s["traceId"]);
        assert_eq!(s["traceId"], json!(trace_id_hex(&trace.id)));
        assert!(hex(&s["spanId"], 16), "{}", s["spanId"]);
        assert!(s["kind"].is_i64(), "enums are integers: {}", s["kind"]);
        assert!(s["status"]["code"].is_i64(), "{}", s["status"]);
        let start = s["startTimeUnixNano"].as_str().expect("int64 as a string");
        assert!(start.parse::<u64>().unwrap() > 1_700_000_000_000_000_000);
        assert!(s["endTimeUnixNano"].is_string());
        for kv in s["attributes"].as_array().expect("attributes are a list") {
            assert!(kv["key"].is_string() && kv["value"].is_object(), "{kv}");
            if let Some(i) = kv["value"].get("intValue") {
                assert!(i.is_string(), "intValue as a string: {kv}");
            }
        }
    }
    let llm = spans
        .iter()
        .find(|s| s["name"] == "chat gpt-4o-mini")
        .unwrap();
    let tokens = llm["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv["key"] == "gen_ai.usage.input_tokens")
        .unwrap();
    assert_eq!(tokens["value"], json!({"intValue": "12"}));
    let workflow = spans.iter().find(|s| s["name"] == "workflow").unwrap();
    let message = spans.iter().find(|s| s["name"] == "message").unwrap();
    assert_eq!(workflow["parentSpanId"], message["spanId"]);
}

#[tokio::test]
async fn api_checks_make_authenticated_requests() {
    let server = FakeServer::start().await;
    // Langfuse: GET /api/public/projects with Basic auth.
    let langfuse = build(
        ProviderConfig::new("langfuse")
            .with("public_key", "pk-lf-1")
            .with("secret_key", "sk-lf-1")
            .with("host", server.uri()),
    );
    server.push(FakeResponse::ok().json(&json!({"data": [{"id": "proj-1"}]})));
    langfuse.api_check().await.unwrap();
    server.push(FakeResponse::status(401).json(&json!({"message": "Invalid credentials. Confirm that you've configured the correct host."})));
    let err = langfuse.api_check().await.unwrap_err().to_string();
    assert!(err.starts_with("langfuse: "), "{err}");
    assert!(err.contains("invalid credentials"), "{err}");
    assert!(
        err.contains("Confirm that you've configured the correct host"),
        "{err}"
    );
    let r = server.requests();
    assert_eq!(
        (r[0].method.as_str(), r[0].path.as_str()),
        ("GET", "/api/public/projects")
    );
    assert_eq!(
        r[0].header("authorization"),
        Some("Basic cGstbGYtMTpzay1sZi0x")
    );

    // Phoenix: GET /v1/projects with the bearer key.
    server.clear_requests();
    let phoenix = build(phoenix_config(&server));
    server.push(FakeResponse::ok().json(&json!({"data": [], "next_cursor": null})));
    phoenix.api_check().await.unwrap();
    server.push(FakeResponse::status(401).body("Unauthorized"));
    assert!(
        phoenix
            .api_check()
            .await
            .unwrap_err()
            .to_string()
            .contains("invalid credentials")
    );
    let r = server.requests();
    assert_eq!(r[0].path, "/v1/projects");
    assert_eq!(r[0].header("authorization"), Some("Bearer px-key"));

    // Generic OTLP: an empty export with the configured headers.
    server.clear_requests();
    let otlp = build(
        ProviderConfig::new("otlp")
            .with("endpoint", server.url("/otlp/v1/traces"))
            .with("headers", "authorization=Bearer t"),
    );
    otlp.api_check().await.unwrap();
    server.push(FakeResponse::status(403).body("forbidden"));
    assert!(
        otlp.api_check()
            .await
            .unwrap_err()
            .to_string()
            .contains("\"forbidden\"")
    );
    let r = server.requests();
    assert_eq!(
        (r[0].method.as_str(), r[0].path.as_str()),
        ("POST", "/otlp/v1/traces")
    );
    assert_eq!(r[0].header("authorization"), Some("Bearer t"));
    assert!(spans(&decode(&r[0].decoded_body())).is_empty());

    // MLflow: the experiment must exist.
    server.clear_requests();
    let mlflow = build(
        ProviderConfig::new("mlflow")
            .with("tracking_uri", server.uri())
            .with("experiment_id", "7")
            .with("username", "u")
            .with("password", "p"),
    );
    server.push(FakeResponse::ok().json(
        &json!({"experiment": {"experiment_id": "7", "name": "Default", "lifecycle_stage": "active"}}),
    ));
    mlflow.api_check().await.unwrap();
    server.push(FakeResponse::status(404).json(&json!({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "No Experiment with id=7 exists"})));
    let err = mlflow.api_check().await.unwrap_err().to_string();
    assert!(err.contains("experiment 7 was not found"), "{err}");
    assert!(err.contains("No Experiment with id=7 exists"), "{err}");
    let r = server.requests();
    assert_eq!(r[0].path, "/api/2.0/mlflow/experiments/get");
    assert_eq!(r[0].query.as_deref(), Some("experiment_id=7"));
    assert_eq!(r[0].header("authorization"), Some("Basic dTpw"));
}

#[tokio::test]
async fn mlflow_check_reads_the_answer_not_just_the_status() {
    let server = FakeServer::start().await;
    let mlflow = build(
        ProviderConfig::new("mlflow")
            .with("tracking_uri", server.uri())
            .with("experiment_id", "7"),
    );
    let check = |reply: FakeResponse| {
        server.push(reply);
        async { mlflow.api_check().await.map_err(|e| e.to_string()) }
    };
    // Another web app's page: a 200 is not enough.
    let err = check(
        FakeResponse::ok()
            .header("content-type", "text/html")
            .body("<!DOCTYPE html><html><head><title>Phoenix</title></head></html>"),
    )
    .await
    .unwrap_err();
    assert!(err.contains("not an MLflow server at"), "{err}");
    assert!(err.contains("HTML page"), "{err}");
    // Another API's JSON.
    let err = check(FakeResponse::ok().json(&json!({"data": []})))
        .await
        .unwrap_err();
    assert!(err.contains("not an MLflow server"), "{err}");
    // A wrong base path: a 404 that is not MLflow's is not a missing experiment.
    let err = check(FakeResponse::status(404).body("Not Found"))
        .await
        .unwrap_err();
    assert!(err.contains("not an MLflow server"), "{err}");
    assert!(!err.contains("experiment_id"), "{err}");
    assert!(err.contains("tracking URI"), "{err}");
    // Another experiment than the one configured.
    let err = check(FakeResponse::ok().json(&json!({"experiment": {"experiment_id": "8"}})))
        .await
        .unwrap_err();
    assert!(err.contains("experiment 8, not 7"), "{err}");
    // Refused credentials stay a credentials error.
    let err = check(FakeResponse::status(401).body("unauthorized"))
        .await
        .unwrap_err();
    assert!(err.contains("invalid credentials"), "{err}");
}

#[tokio::test]
async fn a_network_error_names_the_url_that_was_requested() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mlflow = build(
        ProviderConfig::new("mlflow")
            .with("tracking_uri", format!("http://127.0.0.1:{port}"))
            .with("experiment_id", "7"),
    );
    let err = mlflow.api_check().await.unwrap_err().to_string();
    assert!(err.contains("experiments/get"), "{err}");
    assert!(!err.contains("/v1/traces"), "{err}");
    let langfuse = build(
        ProviderConfig::new("langfuse")
            .with("public_key", "pk-lf-1")
            .with("secret_key", "sk-lf-1")
            .with("host", format!("http://127.0.0.1:{port}")),
    );
    let err = langfuse.project_key().await.unwrap_err().to_string();
    assert!(err.contains("/api/public/projects"), "{err}");
    assert!(!err.contains("/v1/traces"), "{err}");
}

#[tokio::test]
async fn project_keys_and_urls() {
    let server = FakeServer::start().await;
    server.route(
        "GET",
        "/api/public/projects",
        FakeResponse::ok().json(&json!({"data": [{"id": "proj-1", "name": "p"}]})),
    );
    let langfuse = build(
        ProviderConfig::new("langfuse")
            .with("public_key", "pk")
            .with("secret_key", "sk")
            .with("host", server.uri()),
    );
    assert_eq!(
        langfuse.project_key().await.unwrap().as_deref(),
        Some("proj-1")
    );
    assert_eq!(
        langfuse.project_url().await.unwrap(),
        Some(format!("{}/project/proj-1", server.uri()))
    );
    server.route(
        "GET",
        "/v1/projects/ops%20tests",
        FakeResponse::ok().json(&json!({"data": {"id": "UHJvamVjdDoy", "name": "ops tests"}})),
    );
    let phoenix = build(phoenix_config(&server).with("project", "ops tests"));
    assert_eq!(
        phoenix.project_url().await.unwrap(),
        Some(format!("{}/projects/UHJvamVjdDoy", server.uri()))
    );
    let unknown = build(phoenix_config(&server).with("project", "not-yet"));
    // Phoenix's own answer (plain text) for a project it has not seen yet.
    server.push(FakeResponse::status(404).body("Project with name not-yet not found"));
    assert_eq!(
        unknown.project_url().await.unwrap(),
        Some(format!("{}/projects", server.uri())),
        "a project Phoenix has not seen yet"
    );
}

#[tokio::test]
async fn phoenix_checks_that_phoenix_answered() {
    let server = FakeServer::start().await;
    let phoenix = build(phoenix_config(&server));
    // Another web app's page, or another API's JSON: a 200 is not enough.
    server.push(
        FakeResponse::ok()
            .header("content-type", "text/html")
            .body("<!doctype html><html></html>"),
    );
    let err = phoenix.api_check().await.unwrap_err().to_string();
    assert!(err.contains("not a Phoenix server at"), "{err}");
    server.push(FakeResponse::ok().json(&json!({"experiment": {}})));
    let err = phoenix.api_check().await.unwrap_err().to_string();
    assert!(err.contains("not a Phoenix server"), "{err}");
    // A 404 from a server that is not Phoenix gives no project URL.
    server.push(FakeResponse::status(404).body("<html>Not Found</html>"));
    let err = phoenix.project_url().await.unwrap_err().to_string();
    assert!(err.contains("not a Phoenix server"), "{err}");
    assert!(err.contains("check the endpoint"), "{err}");
    // Nor does a refused key.
    server.push(FakeResponse::status(401).body("Unauthorized"));
    let err = phoenix.project_url().await.unwrap_err().to_string();
    assert!(err.contains("invalid credentials"), "{err}");
}

#[tokio::test]
async fn databricks_fetches_and_caches_an_oauth_token() {
    let server = FakeServer::start().await;
    server.route(
        "POST",
        "/oidc/v1/token",
        FakeResponse::ok()
            .json(&json!({"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600})),
    );
    let mut provider = build(
        ProviderConfig::new("databricks")
            .with("host", server.uri())
            .with("experiment_id", "42")
            .with("client_id", "sp-id")
            .with("client_secret", "sp-secret"),
    );
    assert_eq!(
        provider.export(&arc(message())).await,
        ExportOutcome::Delivered
    );
    assert_eq!(
        provider.export(&arc(chatflow())).await,
        ExportOutcome::Delivered
    );
    let requests = server.requests();
    let token_requests: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/oidc/v1/token")
        .collect();
    assert_eq!(token_requests.len(), 1, "the token is cached");
    assert_eq!(
        token_requests[0].header("authorization"),
        Some("Basic c3AtaWQ6c3Atc2VjcmV0")
    );
    assert_eq!(
        String::from_utf8_lossy(&token_requests[0].body),
        "grant_type=client_credentials&scope=all-apis"
    );
    let exports: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/api/2.0/otel/v1/traces")
        .collect();
    assert_eq!(exports.len(), 2);
    for r in exports {
        assert_eq!(r.header("authorization"), Some("Bearer tok-1"));
        assert_eq!(r.header("x-mlflow-experiment-id"), Some("42"));
        assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    }
    assert_eq!(
        provider.project_url().await.unwrap(),
        Some(format!("{}/ml/experiments/42/traces", server.uri()))
    );
}

#[tokio::test]
async fn langfuse_scores_go_to_the_ingestion_api() {
    let server = FakeServer::start().await;
    let client = ScoreClient::from_config(
        &ProviderConfig::new("langfuse")
            .with("public_key", "pk-lf-1")
            .with("secret_key", "sk-lf-1")
            .with("host", server.uri()),
    )
    .unwrap();
    let trace = chatflow();
    let llm = obs(&trace, "LLM").id;
    let scores = vec![
        Score::numeric("quality", 0.75, ScoreTarget::Trace(trace.id.clone())).with_comment("good"),
        Score::boolean(
            "grounded",
            true,
            ScoreTarget::Observation {
                trace: trace.id.clone(),
                observation: llm,
            },
        ),
        Score::categorical("tone", "friendly", ScoreTarget::Session("conv-1".into())),
    ];
    server.push(
        FakeResponse::status(207)
            .json(&json!({"successes": [{"id": "a", "status": 201}], "errors": []})),
    );
    client.send(&scores).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/public/ingestion")
    );
    assert_eq!(
        r.header("authorization"),
        Some("Basic cGstbGYtMTpzay1sZi0x")
    );
    let body = r.json().unwrap();
    let batch = body["batch"].as_array().unwrap();
    assert_eq!(batch.len(), 3);
    for e in batch {
        assert_eq!(e["type"], "score-create");
        assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_ne!(
            e["id"], e["body"]["id"],
            "envelope ids differ from score ids"
        );
    }
    assert_eq!(batch[0]["body"]["dataType"], "NUMERIC");
    assert_eq!(batch[0]["body"]["value"], json!(0.75));
    assert_eq!(batch[0]["body"]["traceId"], json!(trace_id_hex(&trace.id)));
    assert_eq!(batch[0]["body"]["comment"], "good");
    assert_eq!(batch[1]["body"]["dataType"], "BOOLEAN");
    assert_eq!(batch[1]["body"]["value"], json!(1));
    assert_eq!(batch[1]["body"]["observationId"], json!(span_id_hex(llm)));
    assert_eq!(batch[2]["body"]["dataType"], "CATEGORICAL");
    assert_eq!(batch[2]["body"]["value"], "friendly");
    assert_eq!(batch[2]["body"]["sessionId"], "conv-1");

    server.push(FakeResponse::status(207).json(&json!({
        "successes": [],
        "errors": [{"id": "e1", "status": 400, "message": "Invalid score value", "error": "zod"}]
    })));
    let err = client.send(&scores[..1]).await.unwrap_err().to_string();
    assert!(err.contains("rejected 1 of 1"), "{err}");
    assert!(err.contains("\"Invalid score value\""), "{err}");
    let bad = Score::numeric("nan", f64::NAN, ScoreTarget::Trace(trace.id.clone()));
    assert!(
        client
            .send(&[bad])
            .await
            .unwrap_err()
            .to_string()
            .contains("non-finite")
    );
}

#[tokio::test]
async fn an_export_stops_at_its_deadline() {
    let server = FakeServer::start().await;
    server.push(FakeResponse::status(413));
    server.set_default(FakeResponse::ok().delay(Duration::from_secs(3)));
    let options = TransportOptions {
        timeout: Duration::from_secs(10),
        export_deadline: Duration::from_millis(600),
        ..TransportOptions::default()
    };
    let mut provider = OtlpProvider::new(Impatient(server.url("/v1/traces"), options)).unwrap();
    match provider.export(&two_messages()).await {
        // The server answers in 3 s and the request limit is 10 s: only the time left before
        // the export's deadline can have cut the first half short.
        ExportOutcome::Retry { error, .. } => {
            assert!(error.message.contains("timed out"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.requests().len(),
        2,
        "the second half is not started after the deadline"
    );
}
