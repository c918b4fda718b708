//! Two services on loopback, both using ops: a gateway (axum) whose traced handler calls a
//! worker (axum) with reqwest, injecting the trace context; the worker extracts it with
//! `TraceContextLayer`. They produce one trace with the right parents: checked in memory
//! (ops-testkit's capture, one per service, as two processes would each have their own
//! queue) and read back from a real Arize Phoenix through the OTLP `phoenix` provider.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use ops_core::model::{remote_parent_uuid, span_id_bytes};
use ops_core::{Observation, TraceQueueManager, propagation, traced, update_current_trace};
use ops_http::client::RequestBuilderExt as _;
use ops_http::server::TraceContextLayer;
use serde_json::{Value, json};

#[traced(kind = "message", skip(state))]
async fn answer(state: State<Gateway>, query: String) -> String {
    update_current_trace(|t| {
        t.user_id("user 7").session_id("conv-3");
    });
    call_worker(&state.0, &query).await
}

#[traced(kind = "tool", skip(gateway))]
async fn call_worker(gateway: &Gateway, query: &str) -> String {
    gateway
        .client
        .post(&gateway.worker_url)
        .body(query.to_owned())
        .with_trace_context()
        .send()
        .await
        .expect("the worker answers")
        .text()
        .await
        .expect("the worker's body")
}

#[traced(kind = "agent")]
async fn work(task: String) -> String {
    let steps = plan(&task);
    tokio::task::yield_now().await;
    format!("{steps} steps for {task}")
}

#[traced]
fn plan(task: &str) -> usize {
    task.split_whitespace().count()
}

#[derive(Clone)]
struct Gateway {
    client: reqwest::Client,
    worker_url: String,
    queue: TraceQueueManager,
}

/// Serves `router` on a free loopback port; its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// Starts the worker and the gateway, each delivering to its own queue; the gateway's URL.
async fn start(gateway_queue: TraceQueueManager, worker_queue: TraceQueueManager) -> String {
    let worker = Router::new()
        .route(
            "/work",
            post(move |body: String| {
                let queue = worker_queue.clone();
                // The queue is this "process"'s: a scoped default, as the service's global
                // queue would be.
                async move { ops_core::scope_default(queue, async move { work(body).await }).await }
            }),
        )
        .layer(TraceContextLayer);
    let worker_url = format!("{}/work", serve(worker).await);
    let gateway = Router::new()
        .route(
            "/ask",
            post(|state: State<Gateway>, body: String| async move {
                let queue = state.queue.clone();
                ops_core::scope_default(queue, async move { answer(state, body).await }).await
            }),
        )
        .layer(TraceContextLayer)
        .with_state(Gateway {
            client: reqwest::Client::new(),
            worker_url,
            queue: gateway_queue,
        });
    serve(gateway).await
}

fn find<'a>(obs: &'a [Observation], name: &str) -> &'a Observation {
    obs.iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no {name} in {obs:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_and_a_worker_make_one_trace() {
    let gateway_capture = ops_testkit::capture();
    let worker_capture = ops_testkit::capture();
    let url = start(
        gateway_capture.queue().clone(),
        worker_capture.queue().clone(),
    )
    .await;
    let injected = propagation::stats().injected;
    let reply = reqwest::Client::new()
        .post(format!("{url}/ask"))
        .body("pack for rain")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(reply, "3 steps for pack for rain");
    assert!(propagation::stats().injected > injected);

    let (gateway, worker) =
        tokio::task::spawn_blocking(move || (gateway_capture.traces(), worker_capture.traces()))
            .await
            .unwrap();
    assert_eq!(
        (gateway.len(), worker.len()),
        (1, 1),
        "one trace part per service"
    );
    let (g, w) = (&gateway[0], &worker[0]);
    assert_eq!(
        g.id, w.id,
        "the worker's trace id is the gateway's, letter for letter"
    );

    let answer = find(&g.observations, "answer");
    let call = find(&g.observations, "call_worker");
    let work = find(&w.observations, "work");
    let plan = find(&w.observations, "plan");
    assert_eq!(
        answer.parent_id, None,
        "the gateway's root is the trace's root"
    );
    assert_eq!(call.parent_id, Some(answer.id));
    assert_eq!(
        work.parent_id,
        Some(remote_parent_uuid(span_id_bytes(call.id))),
        "the worker's root hangs under the gateway's call"
    );
    assert_eq!(plan.parent_id, Some(work.id));
    // The user and session travel in baggage.
    assert_eq!(w.attributes.user_id.as_deref(), Some("user 7"));
    assert_eq!(w.attributes.session_id.as_deref(), Some("conv-3"));

    // As one tree: one root, and every parent is in it (a remote parent by its span id).
    let all: Vec<&Observation> = g.observations.iter().chain(&w.observations).collect();
    assert_eq!(all.iter().filter(|o| o.parent_id.is_none()).count(), 1);
    for o in &all {
        if let Some(p) = o.parent_id {
            assert!(
                all.iter()
                    .any(|x| x.id == p || remote_parent_uuid(span_id_bytes(x.id)) == p),
                "{}'s parent is in the trace",
                o.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_traceparent_starts_a_trace_of_its_own() {
    let gateway_capture = ops_testkit::capture();
    let worker_capture = ops_testkit::capture();
    let url = start(
        gateway_capture.queue().clone(),
        worker_capture.queue().clone(),
    )
    .await;
    let before = propagation::stats().invalid_traceparent;
    let reply = reqwest::Client::new()
        .post(format!("{url}/ask"))
        .header(
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        )
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success());
    assert!(propagation::stats().invalid_traceparent > before);
    let gateway = tokio::task::spawn_blocking(move || gateway_capture.traces())
        .await
        .unwrap();
    assert_eq!(find(&gateway[0].observations, "answer").parent_id, None);
    assert_ne!(
        gateway[0].id.to_w3c_bytes(),
        u128::from_str_radix("4bf92f3577b34da6a3ce929d0e0e4736", 16)
            .unwrap()
            .to_be_bytes()
    );
}

// ---- the same two services against a real Phoenix ----

const PROJECT: &str = "ops-w3c-e2e";

fn phoenix_queue(base: &str) -> TraceQueueManager {
    use ops_core::provider::ProviderConfig;
    use ops_providers::otlp::OtlpProvider;
    use ops_providers::phoenix::Phoenix;
    let config = ProviderConfig::new("phoenix")
        .with("endpoint", base)
        .with("project", PROJECT);
    TraceQueueManager::builder()
        .interval(Duration::from_millis(50))
        .batch_size(10)
        .provider(OtlpProvider::new(Phoenix::from_config(&config).unwrap()).unwrap())
        .build()
        .unwrap()
}

#[test]
fn two_services_read_back_from_a_real_phoenix_as_one_trace() {
    if !ops_testkit::phoenix::python3_available() {
        eprintln!(
            "SKIPPED two_services_read_back_from_a_real_phoenix_as_one_trace: python3 is not \
             installed, so Phoenix cannot run"
        );
        return;
    }
    let phoenix =
        match ops_testkit::phoenix::Phoenix::start(&PathBuf::from(env!("CARGO_TARGET_TMPDIR"))) {
            Ok(p) => p,
            Err(why) => {
                eprintln!(
                    "SKIPPED two_services_read_back_from_a_real_phoenix_as_one_trace: Phoenix \
                     cannot be set up: {why}"
                );
                return;
            }
        };
    let base = phoenix.base_url();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (gateway_queue, worker_queue) = (phoenix_queue(&base), phoenix_queue(&base));
    let url = runtime.block_on(start(gateway_queue.clone(), worker_queue.clone()));
    let reply = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/ask"))
            .body("pack for rain")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert_eq!(reply, "3 steps for pack for rain");
    for queue in [&gateway_queue, &worker_queue] {
        // The queue may have exported on its own before this flush: count over its life.
        let report = queue.flush(Duration::from_secs(30));
        assert_eq!((report.failed, report.pending), (0, 0), "{report:?}");
        let stats = queue.stats();
        assert_eq!(
            (stats.enqueued, stats.exported, stats.failed),
            (1, 1, 0),
            "{stats:?}"
        );
    }

    // Read back (Phoenix inserts spans in the background).
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move {
            let r = client.get(&url).send().await.ok()?;
            if !r.status().is_success() {
                return None;
            }
            serde_json::from_slice::<Value>(&r.bytes().await.ok()?).ok()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans: Vec<Value> = runtime.block_on(async {
        loop {
            let got = get(format!("{base}/v1/projects/{PROJECT}/spans?limit=100"))
                .await
                .and_then(|b| b["data"].as_array().cloned())
                .unwrap_or_default();
            if got.len() >= 4 || Instant::now() >= deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let span = |name: &str| -> &Value {
        spans
            .iter()
            .find(|s| s["name"] == json!(name))
            .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
    };
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let trace_ids: std::collections::BTreeSet<&str> = spans
        .iter()
        .map(|s| s["context"]["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(trace_ids.len(), 1, "one trace: {trace_ids:?}");
    let id = |name: &str| span(name)["context"]["span_id"].clone();
    assert_eq!(span("answer")["parent_id"], Value::Null);
    assert_eq!(span("call_worker")["parent_id"], id("answer"));
    assert_eq!(span("work")["parent_id"], id("call_worker"));
    assert_eq!(span("plan")["parent_id"], id("work"));
    assert_eq!(span("work")["attributes"]["user.id"], json!("user 7"));
    assert_eq!(span("work")["attributes"]["session.id"], json!("conv-3"));

    let traces = runtime
        .block_on(get(format!("{base}/v1/projects/{PROJECT}/traces")))
        .expect("Phoenix lists the traces");
    let listed = traces["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "Phoenix lists one trace: {traces:#}");
    eprintln!(
        "phoenix read-back: {} trace(s) listed, trace id {}; spans (name <- parent): {}",
        listed.len(),
        trace_ids.iter().next().unwrap(),
        ["answer", "call_worker", "work", "plan"]
            .iter()
            .map(|n| format!(
                "{n}[{}] <- {}",
                span(n)["context"]["span_id"].as_str().unwrap_or("?"),
                span(n)["parent_id"].as_str().unwrap_or("none")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    gateway_queue.shutdown(Duration::from_secs(5));
    worker_queue.shutdown(Duration::from_secs(5));
    drop(runtime);
    drop(phoenix);
}
