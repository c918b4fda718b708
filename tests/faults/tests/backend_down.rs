//! A backend that is down for 30 s and comes back: every trace is delivered, and memory stays
//! under the queue's byte budget while it is down. Alone in its binary so the process's memory
//! is this test's.

use std::collections::HashSet;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use chrono::Utc;
use ops_core::provider::{self, ProviderConfig};
use ops_core::{
    Observation, ObservationKind, QueueConfig, Trace, TraceId, TraceQueueManager, TraceTask, Usage,
};
use ops_fault_tests::{otlp_trace_ids, rss_kib};
use ops_testkit::fake_server::FakeServer;

const DOWN_FOR: Duration = Duration::from_secs(30);
const TRACES: usize = 2_000;
const MAX_BYTES: usize = 32 << 20;

fn trace(i: usize) -> Trace {
    let now = Utc::now();
    let mut t = Trace::new(
        TraceId::generate(),
        ObservationKind::Workflow,
        format!("run-{i}"),
        now,
    );
    let root = Observation::at(ObservationKind::Workflow, "workflow", now);
    let root_id = root.id;
    t.observations.push(root);
    for n in 0..3 {
        let mut o = Observation::at(ObservationKind::Generation, format!("llm-{n}"), now);
        o.parent_id = Some(root_id);
        o.end_time = Some(now);
        o.input = Some(serde_json::json!({"prompt": "x".repeat(400)}));
        o.output = Some(serde_json::json!("y".repeat(200)));
        o.usage = Some(Usage::tokens(120, 40));
        t.observations.push(o);
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_down_for_30_s_gets_every_trace_when_it_is_back() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{port}/v1/traces");
    ops_providers::link();
    let otlp = provider::find("otlp")
        .unwrap()
        .build(ProviderConfig::new("otlp").with("endpoint", endpoint))
        .unwrap();
    let mut config = QueueConfig::default();
    config.interval = Duration::from_millis(50);
    config.max_bytes = MAX_BYTES;
    config.breaker_cooldown = Duration::from_secs(2);
    config.max_backoff = Duration::from_secs(2);
    let queue = TraceQueueManager::builder()
        .config(config)
        .boxed_provider(otlp)
        .build()
        .unwrap();

    let baseline = rss_kib().unwrap();
    let started = Instant::now();
    let mut sent = HashSet::new();
    let mut peak = baseline;
    let mut next = 0;
    // While down: half the traces at once, the rest spread over the outage; sample memory.
    while started.elapsed() < DOWN_FOR {
        let due = if started.elapsed() < Duration::from_secs(1) {
            TRACES / 2
        } else {
            TRACES / 2
                + (TRACES / 2) * started.elapsed().as_millis() as usize
                    / DOWN_FOR.as_millis() as usize
        };
        while next < due.min(TRACES) {
            let t = trace(next);
            sent.insert(t.id.as_uuid().unwrap().simple().to_string());
            queue
                .add_trace_task(TraceTask::from_trace(t))
                .expect("within the byte budget");
            next += 1;
        }
        peak = peak.max(rss_kib().unwrap());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    while next < TRACES {
        let t = trace(next);
        sent.insert(t.id.as_uuid().unwrap().simple().to_string());
        queue.add_trace_task(TraceTask::from_trace(t)).unwrap();
        next += 1;
    }
    let down_stats = queue.stats();
    assert_eq!(
        down_stats.exported, 0,
        "nothing can be delivered while the backend is down"
    );
    assert!(down_stats.retried > 0);

    let server = FakeServer::start_on(TcpListener::bind(port).unwrap()).await;
    let q = queue.clone();
    let report = tokio::task::spawn_blocking(move || q.flush(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(!report.timed_out, "{report:?}");

    let mut delivered = HashSet::new();
    let mut spans = 0;
    for request in server.requests() {
        for (id, n) in otlp_trace_ids(&request.decoded_body()) {
            spans += n;
            delivered.insert(id);
        }
    }
    let lost = sent.difference(&delivered).count();
    let stats = queue.stats();
    eprintln!(
        "backend down {}s: traces sent {TRACES}, delivered {}, lost {lost}, spans {spans}, \
         requests {}, retries {}, dropped {}; RSS baseline {} KiB, peak while down {} KiB \
         (+{} KiB; budget {} KiB)",
        DOWN_FOR.as_secs(),
        delivered.len(),
        server.requests().len(),
        stats.retried,
        stats.dropped_total(),
        baseline,
        peak,
        peak - baseline,
        MAX_BYTES / 1024,
    );
    assert_eq!(lost, 0);
    assert_eq!(delivered.len(), TRACES);
    assert_eq!(spans, TRACES * 4, "every observation arrived");
    assert_eq!(stats.dropped_total(), 0);
    assert!(
        ((peak - baseline) as usize) < MAX_BYTES / 1024,
        "memory stayed under the budget"
    );
}
