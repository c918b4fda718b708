//! Our request for the captured program (`agent_run` > `plan_step` > `llm_call`) against the
//! official Langfuse SDK's, recorded in `../shared/captures/langfuse`: same path, same headers
//! (apart from the transport's own and the SDK's name and version), same span tree, and the
//! same attribute keys with the same value shapes on every span.

#![cfg(feature = "langfuse")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::*;
use ops_core::ExportOutcome;
use ops_core::provider::{ProviderConfig, find};
use ops_providers::otlp::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use ops_providers::otlp::proto::tonic::common::v1::any_value::Value as Any;
use ops_providers::otlp::proto::tonic::trace::v1::Span;
use ops_testkit::fake_server::FakeServer;
use serde_json::Value;

fn captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures/langfuse")
}

fn read(name: &str) -> Vec<u8> {
    let path = captures().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the golden capture {}: {e}; the shared/ folder must sit beside the workspace",
            path.display()
        )
    })
}

/// A value's shape: its OTLP type, and for strings that hold JSON, the JSON type.
fn shape(value: Option<&Any>) -> String {
    match value {
        Some(Any::StringValue(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(_)) => "string(json object)".into(),
            Ok(Value::Array(_)) => "string(json array)".into(),
            Ok(Value::String(_)) => "string(json string)".into(),
            Ok(Value::Number(_)) => "string(json number)".into(),
            Ok(_) => "string(json literal)".into(),
            Err(_) => "string(text)".into(),
        },
        Some(Any::ArrayValue(a)) => format!(
            "array[{}]",
            a.values
                .iter()
                .map(|v| shape(v.value.as_ref()))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(Any::BoolValue(_)) => "bool".into(),
        Some(Any::IntValue(_)) => "int".into(),
        Some(Any::DoubleValue(_)) => "double".into(),
        other => format!("{other:?}"),
    }
}

fn shapes(span: &Span) -> BTreeMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                shape(kv.value.as_ref().and_then(|v| v.value.as_ref())),
            )
        })
        .collect()
}

fn by_name(request: &ExportTraceServiceRequest) -> BTreeMap<String, &Span> {
    spans(request)
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect()
}

#[tokio::test]
async fn our_request_matches_the_official_sdks() {
    let golden_meta: Value =
        serde_json::from_slice(&read("001_POST_api_public_otel_v1_traces.json")).unwrap();
    let golden = decode(&read("001_POST_api_public_otel_v1_traces.decoded.bin"));

    let server = FakeServer::start().await;
    let config = ProviderConfig::new("langfuse")
        .with("public_key", "pk-lf-fake-public")
        .with("secret_key", "sk-lf-fake-secret")
        .with("host", server.uri());
    let mut provider = find("langfuse").unwrap().build(config).unwrap();
    assert_eq!(
        provider.export(&arc(captured_program())).await,
        ExportOutcome::Delivered
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let ours = &requests[0];

    // Path and method.
    assert_eq!(ours.method, golden_meta["method"].as_str().unwrap());
    assert_eq!(ours.path, golden_meta["path"].as_str().unwrap());

    // Headers: every header the SDK sets itself is there, with the same value except the
    // SDK's name and version; the transport's own (host, accept, connection, length,
    // user-agent) may differ.
    let transport_headers = [
        "host",
        "user-agent",
        "accept-encoding",
        "accept",
        "connection",
        "content-length",
    ];
    let differs_by_design = ["x-langfuse-sdk-name", "x-langfuse-sdk-version"];
    for (name, value) in golden_meta["headers"].as_object().unwrap() {
        let name = name.to_ascii_lowercase();
        if transport_headers.contains(&name.as_str()) {
            continue;
        }
        let got = ours.header(&name).unwrap_or_else(|| {
            panic!(
                "header {name} is missing; we sent {:?}",
                ours.header_names()
            )
        });
        if !differs_by_design.contains(&name.as_str()) {
            assert_eq!(got, value.as_str().unwrap(), "header {name}");
        }
    }
    assert_eq!(ours.header("x-langfuse-sdk-name"), Some("rust"));

    // The body: the same spans, tree, kinds, flags, scope attributes, attribute keys and
    // value shapes.
    let ours_body = decode(&ours.decoded_body());
    let (g, o) = (by_name(&golden), by_name(&ours_body));
    assert_eq!(g.keys().collect::<Vec<_>>(), o.keys().collect::<Vec<_>>());
    let parent = |m: &BTreeMap<String, &Span>, name: &str| {
        let id = &m[name].parent_span_id;
        m.iter()
            .find(|(_, s)| &s.span_id == id)
            .map(|(n, _)| n.clone())
    };
    for name in g.keys() {
        assert_eq!(parent(&g, name), parent(&o, name), "parent of {name}");
        assert_eq!(g[name].kind, o[name].kind, "kind of {name}");
        assert_eq!(g[name].flags, o[name].flags, "flags of {name}");
        assert_eq!(g[name].status, o[name].status, "status of {name}");
        assert_eq!(
            shapes(g[name]),
            shapes(o[name]),
            "attribute keys and value shapes of {name}"
        );
    }
    // The values that do not depend on ids or clocks are the same too.
    for name in g.keys() {
        for kv in &g[name].attributes {
            let ours = attr(o[name], &kv.key).unwrap();
            let theirs = kv.value.as_ref().unwrap().value.as_ref().unwrap();
            match (theirs, ours) {
                (Any::StringValue(a), Any::StringValue(b)) => {
                    let parse = |s: &str| {
                        serde_json::from_str::<Value>(s).unwrap_or(Value::String(s.into()))
                    };
                    assert_eq!(parse(a), parse(b), "{name}: {}", kv.key);
                }
                (a, b) => assert_eq!(a, b, "{name}: {}", kv.key),
            }
        }
    }
    let scope_attrs = |r: &ExportTraceServiceRequest| -> BTreeSet<(String, String)> {
        r.resource_spans[0].scope_spans[0]
            .scope
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .map(|kv| {
                (
                    kv.key.clone(),
                    shape(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                )
            })
            .collect()
    };
    assert_eq!(scope_attrs(&golden), scope_attrs(&ours_body));
    let trace_ids: BTreeSet<_> = spans(&ours_body)
        .iter()
        .map(|s| s.trace_id.clone())
        .collect();
    assert_eq!(trace_ids.len(), 1, "one trace");
}
