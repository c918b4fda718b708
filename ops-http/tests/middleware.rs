//! `TraceContextMiddleware`: a `reqwest-middleware` client's requests carry the current trace.

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use ops_core::propagation::TraceParent;
use ops_core::{traced, update_current_trace};
use ops_http::middleware::TraceContextMiddleware;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

/// A server that answers with the trace headers it was sent, one per line.
async fn echo_server() -> String {
    async fn echo(headers: HeaderMap) -> String {
        ["traceparent", "tracestate", "baggage"]
            .iter()
            .map(|name| {
                let value = headers.get(*name).and_then(|v| v.to_str().ok());
                format!("{name}={}", value.unwrap_or("-"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/", get(echo)))
            .await
            .unwrap();
    });
    format!("http://{addr}/")
}

fn client() -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(TraceContextMiddleware)
        .build()
}

fn header<'a>(echoed: &'a str, name: &str) -> &'a str {
    echoed
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .unwrap()
}

#[traced(skip_all, kind = "tool", user_id = "u-1", capture_output = false)]
async fn call(client: &ClientWithMiddleware, url: &str) -> String {
    update_current_trace(|t| {
        t.session_id("s-1");
    });
    let response = client.get(url).send().await.unwrap();
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_carries_the_current_observation() {
    let url = echo_server().await;
    let client = client();
    let capture = ops_testkit::capture();
    let echoed = capture.scope(call(&client, &url)).await;
    let call = capture.find("call").unwrap();
    let trace = &capture.traces()[0];
    let parent = TraceParent::parse(header(&echoed, "traceparent").as_bytes())
        .unwrap_or_else(|e| panic!("{e}: {echoed}"));
    assert_eq!(parent.trace_id(), trace.id.to_w3c_bytes());
    assert_eq!(parent.parent_id(), ops_core::model::span_id_bytes(call.id));
    assert!(parent.is_sampled());
    assert_eq!(header(&echoed, "baggage"), "user.id=u-1,session.id=s-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_a_trace_a_request_goes_out_unchanged() {
    let url = echo_server().await;
    // (The process-wide `propagation::stats()` is not compared: the other test injects
    // concurrently.)
    let echoed = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(header(&echoed, "traceparent"), "-");
    assert_eq!(header(&echoed, "tracestate"), "-");
    assert_eq!(header(&echoed, "baggage"), "-");
}
