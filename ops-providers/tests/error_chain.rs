//! A `#[traced]` function's error with a `source()` chain: its causes reach LangSmith's run
//! `error` (the message, then the causes, as the SDK sends the message then the traceback),
//! OTLP's `exception.stacktrace` and Weave's `exception` `traceback`.

#![cfg(all(feature = "langsmith", feature = "otlp", feature = "weave"))]

use std::fmt;
use std::sync::Arc;

use chrono::Utc;
use ops_core::provider::ProviderConfig;
use ops_core::{Level, Observation, Trace};
use ops_providers::langsmith::LangSmith;
use ops_providers::otlp::encode::encode_request;
use ops_providers::otlp::generic::GenericOtlp;
use ops_providers::otlp::proto::tonic::common::v1::any_value::Value as Any;
use ops_providers::weave::{Weave, exception};
use serde_json::Value;

/// An error with an optional cause.
#[derive(Debug)]
struct Failure(&'static str, Option<Box<Failure>>);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.as_deref().map(|e| e as _)
    }
}

#[ops_core::traced]
fn fetch_answer(question: &str) -> Result<u32, Failure> {
    let _ = question;
    Err(Failure(
        "the model call failed",
        Some(Box::new(Failure(
            "connecting to api.example.com",
            Some(Box::new(Failure("connection refused", None))),
        ))),
    ))
}

#[ops_core::traced]
fn plain_failure() -> Result<u32, Failure> {
    Err(Failure("no cause", None))
}

const CHAIN: &str = "the model call failed\n\nCaused by:\n    0: connecting to api.example.com\n    1: connection refused";

fn traced(f: impl FnOnce()) -> Trace {
    let capture = ops_testkit::capture();
    capture.run(f);
    capture.flush();
    let traces = capture.traces();
    assert_eq!(traces.len(), 1);
    (*traces[0]).clone()
}

fn failed(trace: &Trace) -> &Observation {
    trace
        .observations
        .iter()
        .find(|o| o.level == Level::Error)
        .unwrap()
}

fn langsmith_error(trace: &Trace) -> Value {
    let mut p = LangSmith::new("https://api.smith.langchain.com", "ops-tests", "k", None).unwrap();
    let parts = p.encode(&[Arc::new(trace.clone())]);
    let run: Value = serde_json::from_slice(&parts[0].object()).unwrap();
    run["error"].clone()
}

fn stacktrace(trace: &Trace) -> Option<String> {
    let dialect = GenericOtlp::from_config(
        &ProviderConfig::new("otlp").with("endpoint", "http://collector:4318"),
    )
    .unwrap();
    let request = encode_request(&dialect, &[Arc::new(trace.clone())]);
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    let event = span.events.iter().find(|e| e.name == "exception").unwrap();
    event
        .attributes
        .iter()
        .find(|a| a.key == "exception.stacktrace")
        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            Any::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

#[test]
fn a_traced_errors_causes_reach_langsmith_otlp_and_weave() {
    let trace = traced(|| {
        let _ = fetch_answer("2+2?");
    });
    let o = failed(&trace);
    assert_eq!(o.status_message.as_deref(), Some("the model call failed"));
    assert_eq!(o.error_chain(), Some(CHAIN));
    assert_eq!(langsmith_error(&trace), Value::String(CHAIN.into()));
    assert_eq!(stacktrace(&trace).as_deref(), Some(CHAIN));
    let e: Value = serde_json::from_str(exception(o).as_str().unwrap()).unwrap();
    assert_eq!(e["message"], "the model call failed");
    assert_eq!(e["traceback"], CHAIN);
    assert!(e["type"].as_str().unwrap().ends_with("Failure"), "{e}");
    // The Weave call carries it as sent.
    let mut w = Weave::new("http://127.0.0.1:9", None, Some("e"), "p", "k").unwrap();
    let calls = w.calls(&[Arc::new(trace.clone())], Utc::now());
    let end = calls[0].end.as_ref().unwrap();
    assert_eq!(end["exception"], exception(o));
}

#[test]
fn an_error_without_a_cause_sends_its_message_only() {
    let trace = traced(|| {
        let _ = plain_failure();
    });
    let o = failed(&trace);
    assert_eq!(o.error_chain(), None);
    assert!(!o.metadata.contains_key("error_chain"));
    assert_eq!(langsmith_error(&trace), Value::String("no cause".into()));
    assert_eq!(stacktrace(&trace), None);
    let e: Value = serde_json::from_str(exception(o).as_str().unwrap()).unwrap();
    assert!(e.get("traceback").is_none(), "{e}");
}
