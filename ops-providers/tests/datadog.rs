//! The `datadog` provider on the wire, against the testkit's fake server standing in for
//! Datadog's OTLP intake and API (no Datadog server can run here). The attributes checked are
//! those Datadog documents for LLM Observability's OpenTelemetry ingestion (GenAI semantic
//! conventions 1.37+).

#![cfg(feature = "full")]

mod common;

use common::*;
use ops_core::provider::{ProviderConfig, find};
use ops_core::{ExportOutcome, Provider};
use ops_testkit::fake_server::{FakeResponse, FakeServer};
use serde_json::json;

fn config(server: &FakeServer) -> ProviderConfig {
    ProviderConfig::new("datadog")
        .with("api_key", "dd-secret-key")
        .with("site", server.uri())
        .with("ml_app", "support-bot")
}

fn build(config: ProviderConfig) -> Box<dyn Provider> {
    find(config.provider()).unwrap().build(config).unwrap()
}

#[tokio::test]
async fn spans_go_to_the_otlp_intake_for_llm_observability() {
    let server = FakeServer::start().await;
    let mut provider = build(config(&server));
    let trace = message();
    assert_eq!(
        provider.export(&arc(trace.clone())).await,
        ExportOutcome::Delivered
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/traces"));
    assert_eq!(r.header("dd-api-key"), Some("dd-secret-key"));
    assert_eq!(r.header("dd-otlp-source"), Some("llmobs"));
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    let body = decode(&r.decoded_body());
    assert_tree(&trace, &body);
    assert_eq!(resource_attr(&body, "service.name"), Some("support-bot"));

    // The LLM call: the documented GenAI attributes.
    let llm = span_of(&body, obs(&trace, "llm"));
    assert_eq!(str_attr(llm, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(str_attr(llm, "gen_ai.provider.name"), Some("openai"));
    assert_eq!(str_attr(llm, "gen_ai.request.model"), Some("gpt-4o-mini"));
    assert_eq!(int_attr(llm, "gen_ai.usage.input_tokens"), Some(12));
    assert_eq!(int_attr(llm, "gen_ai.usage.output_tokens"), Some(1));
    assert_eq!(
        json_attr(llm, "gen_ai.input.messages"),
        Some(json!([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]))
    );
    let output = json_attr(llm, "gen_ai.output.messages").unwrap();
    assert_eq!(output[0]["role"], json!("assistant"));
    assert_eq!(output[0]["parts"][0]["content"], json!("hello"));
    assert_eq!(str_attr(llm, "gen_ai.conversation.id"), Some("conv-1"));
    assert_eq!(str_attr(llm, "user.id"), Some("eu-1"));
    assert_eq!(llm.kind, 3, "CLIENT, as GenAI client spans are");

    // A failed tool call: its name, arguments and the error's type.
    let tool = tool();
    provider.export(&arc(tool.clone())).await;
    let body = decode(&server.requests()[1].decoded_body());
    let o = &tool.observations[0];
    let span = span_of(&body, o);
    assert_eq!(
        str_attr(span, "gen_ai.operation.name"),
        Some("execute_tool")
    );
    assert!(str_attr(span, "gen_ai.tool.name").is_some());
    if o.level == ops_core::Level::Error {
        assert!(str_attr(span, "error.type").is_some());
        assert_eq!(span.status.as_ref().unwrap().code, 2);
    }
}

#[tokio::test]
async fn the_key_is_checked_with_datadogs_validate_endpoint() {
    let server = FakeServer::start().await;
    let provider = build(config(&server));
    server.push(FakeResponse::ok().json(&json!({"valid": true})));
    provider.api_check().await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/api/v1/validate")
    );
    assert_eq!(r.header("dd-api-key"), Some("dd-secret-key"));

    server.push(FakeResponse::status(403).json(&json!({"errors": ["Forbidden"]})));
    let err = provider.api_check().await.unwrap_err().to_string();
    assert!(err.contains("invalid credentials"), "{err}");
    assert!(!err.contains("dd-secret-key"), "{err}");
    // A 200 that is not Datadog's answer does not pass.
    server.push(FakeResponse::ok().body("<html>proxy</html>"));
    let err = provider.api_check().await.unwrap_err().to_string();
    assert!(err.contains("check `site`"), "{err}");

    assert_eq!(
        provider.project_url().await.unwrap(),
        Some(format!(
            "{}/llm/traces?query=%40ml_app%3Asupport-bot",
            server.uri()
        ))
    );
}

#[test]
fn config_names_what_is_wrong_and_keys_stay_secret() {
    let factory = find("datadog").unwrap();
    let err = factory
        .build(ProviderConfig::new("datadog"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("api_key"), "{err}");
    let err = factory
        .build(
            ProviderConfig::new("datadog")
                .with("api_key", "k")
                .with("site", "not a site!"),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a Datadog site"), "{err}");
    for bad in ["2.7", "datadoghq", "..", "-.com", "datadoghq.com/x"] {
        let err = factory
            .build(
                ProviderConfig::new("datadog")
                    .with("api_key", "k")
                    .with("site", bad),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("`site`"), "{bad}: {err}");
    }
    let provider = factory
        .build(
            ProviderConfig::new("datadog")
                .with("api_key", "dd-secret-key")
                .with("site", "datadoghq.eu"),
        )
        .unwrap();
    let debug = format!("{provider:?}");
    assert!(!debug.contains("dd-secret-key"), "{debug}");
    // Dify's `service_name` names the app when `ml_app` is not set.
    let d = ops_providers::datadog::Datadog::from_config(
        &ProviderConfig::new("datadog")
            .with("api_key", "k")
            .with("service_name", "dify_app"),
    )
    .unwrap();
    assert_eq!(d.ml_app, "dify_app");
    assert_eq!(
        ops_providers::otlp::Dialect::endpoint(&d),
        "https://otlp.datadoghq.com/v1/traces"
    );
}
