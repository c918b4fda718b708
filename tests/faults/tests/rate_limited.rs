//! A storm of 429s with Retry-After: no request goes out before the stated time, and every
//! trace is delivered.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use ops_core::provider::{self, ProviderConfig};
use ops_core::{
    Observation, ObservationKind, QueueConfig, Trace, TraceId, TraceQueueManager, TraceTask,
};
use ops_fault_tests::otlp_trace_ids;
use ops_testkit::fake_server::{FakeResponse, FakeServer};

const TRACES: usize = 300;
const STORM: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_is_waited_out_exactly_as_told() {
    let server = FakeServer::start().await;
    for _ in 0..STORM {
        server.push(FakeResponse::status(429).header("Retry-After", "1"));
    }
    ops_providers::link();
    let otlp = provider::find("otlp")
        .unwrap()
        .build(ProviderConfig::new("otlp").with("endpoint", server.url("/v1/traces")))
        .unwrap();
    let mut config = QueueConfig::default();
    config.interval = Duration::from_millis(20);
    config.breaker_threshold = 100;
    let queue = TraceQueueManager::builder()
        .config(config)
        .boxed_provider(otlp)
        .build()
        .unwrap();
    let mut sent = HashSet::new();
    for i in 0..TRACES {
        let mut t = Trace::new(
            TraceId::generate(),
            ObservationKind::Span,
            format!("t{i}"),
            Utc::now(),
        );
        t.observations
            .push(Observation::new(ObservationKind::Span, "step"));
        sent.insert(t.id.as_uuid().unwrap().simple().to_string());
        queue.add_trace_task(TraceTask::from_trace(t)).unwrap();
    }
    let q = queue.clone();
    let report = tokio::task::spawn_blocking(move || q.flush(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(!report.timed_out, "{report:?}");

    let requests = server.requests();
    let mut early = 0;
    for pair in requests.windows(2).take(STORM) {
        let waited = pair[1].received_at - pair[0].received_at;
        if waited < Duration::from_secs(1) {
            early += 1;
        }
        eprintln!("after a 429 with Retry-After: 1, the next request came {waited:?} later");
    }
    let delivered: HashSet<String> = requests
        .iter()
        .skip(STORM)
        .flat_map(|r| otlp_trace_ids(&r.decoded_body()).into_keys())
        .collect();
    let lost = sent.difference(&delivered).count();
    eprintln!(
        "429 storm: {STORM} throttled answers, {} requests, {early} early; traces sent {TRACES}, \
         delivered {}, lost {lost}",
        requests.len(),
        delivered.len()
    );
    assert_eq!(early, 0, "no request before the stated time");
    assert_eq!(lost, 0);
    assert_eq!(queue.stats().retried, STORM as u64);
}
