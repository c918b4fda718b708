//! The worker against the real Redis: poisoned entries go to the dead-letter stream while
//! the others flow, one app's backlog does not starve another, records of the previous
//! format are read, and the dead-letter stream can be listed and replayed.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ops_core::ProviderRouter;
use ops_core::{ExportError, Provider, TraceQueueManager};
use ops_redis::{Keys, Worker, dead};
use support::*;

/// Runs `worker` until the returned sender is used (or dropped).
fn start(
    worker: Worker,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<ops_redis::WorkerReport, ops_redis::WorkerError>>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async move {
        let _ = stop_rx.await;
    }));
    (stop_tx, running)
}

/// Routes every app to the recorder, except `broken`, whose routing fails.
struct Router(Recorder);

#[ops_core::async_trait]
impl ProviderRouter for Router {
    async fn route(&self, app_id: &str) -> Result<Vec<String>, ExportError> {
        if app_id == "broken" {
            Err(ExportError::new(
                "router",
                "the config store is unreachable",
            ))
        } else {
            Ok(vec!["recorder".into()])
        }
    }
    async fn build(&self, _key: &str) -> Result<Box<dyn Provider>, ExportError> {
        Ok(Box::new(self.0.clone()))
    }
}

async fn xadd(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    app: &str,
    fields: &[(&str, &[u8])],
) {
    let stream = keys.stream(app);
    let mut cmd = redis::cmd("XADD");
    cmd.arg(&stream).arg("*");
    for (name, value) in fields {
        cmd.arg(*name).arg(*value);
    }
    cmd.query_async::<String>(conn).await.unwrap();
    redis::cmd("SADD")
        .arg(keys.streams())
        .arg(&stream)
        .query_async::<()>(conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_entries_go_to_the_dead_letter_stream_with_their_reason_and_the_others_flow() {
    let Some(mut conn) = redis_or_skip("poisoned entries").await else {
        return;
    };
    let prefix = prefix("poison");
    let keys = Keys::new(prefix.clone());
    backlog(&mut conn, &keys, "app-1", "good", 50).await;
    // Not JSON; a future format; an app whose routing keeps failing.
    xadd(
        &mut conn,
        &keys,
        "app-1",
        &[("v", b"1"), ("app", b"app-1"), ("trace", b"{not json")],
    )
    .await;
    xadd(
        &mut conn,
        &keys,
        "app-1",
        &[("v", b"2"), ("app", b"app-1"), ("payload", b"...")],
    )
    .await;
    backlog(&mut conn, &keys, "broken", "unroutable", 1).await;
    backlog(&mut conn, &keys, "app-1", "more", 50).await;

    let recorder = Recorder::default();
    let queue = TraceQueueManager::builder()
        .interval(Duration::from_millis(10))
        .router(Arc::new(Router(recorder.clone())))
        .build()
        .unwrap();
    let config = ops_redis::WorkerConfig {
        claim_idle: Duration::from_millis(100),
        max_deliveries: 2,
        ..worker_config(&prefix, "w1")
    };
    let worker = Worker::new(&url(), config, queue).unwrap();
    let counters = worker.counters();
    let (stop, running) = start(worker);
    let settled = wait_until(Duration::from_secs(30), async || {
        recorder.names().len() >= 100 && counters.dead_lettered() >= 3
    })
    .await;
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    assert!(
        settled,
        "delivered {:?}, dead-lettered {}",
        recorder.names().len(),
        counters.dead_lettered()
    );

    let names = recorder.names();
    for i in 0..50 {
        assert!(names.contains(&format!("good-{i}")) && names.contains(&format!("more-{i}")));
    }
    assert!(!names.iter().any(|n| n.starts_with("unroutable")));
    let dead = dead::list(&mut conn, &keys, 100).await.unwrap();
    assert_eq!(dead.len(), 3, "{dead:#?}");
    let reason_of = |pred: &dyn Fn(&dead::DeadEntry) -> bool| {
        dead.iter()
            .find(|d| pred(d))
            .map(|d| d.reason.clone())
            .unwrap_or_default()
    };
    assert!(
        reason_of(&|d| d.reason.contains("not a valid trace")).starts_with("undecodable record")
    );
    assert!(reason_of(&|d| d.reason.contains("version 2")).contains("upgrade the worker"));
    let unroutable = dead
        .iter()
        .find(|d| d.app.as_deref() == Some("broken"))
        .expect("the unroutable entry");
    assert!(
        unroutable.reason.contains("routing"),
        "{}",
        unroutable.reason
    );
    assert_eq!(
        unroutable.deliveries, 3,
        "dead-lettered after max_deliveries (2) + 1"
    );
    assert_eq!(unroutable.stream, keys.stream("broken"));
    assert!(unroutable.trace_id.is_some());
    // Nothing is left pending or waiting in the app streams.
    for app in ["app-1", "broken"] {
        let len: usize = redis::cmd("XLEN")
            .arg(keys.stream(app))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(len, 0, "{app}'s stream still holds entries");
    }

    // Replay puts them back in their streams, as first written.
    let replayed = dead::replay(&mut conn, &keys, 100).await.unwrap();
    assert_eq!(replayed, 3);
    assert!(dead::list(&mut conn, &keys, 100).await.unwrap().is_empty());
    let back: usize = redis::cmd("XLEN")
        .arg(keys.stream("broken"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(back, 1);
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(keys.stream("broken"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let record = ops_redis::record::decode(|name| match entries.ids[0].map.get(name)? {
        redis::Value::BulkString(b) => Some(b.as_slice()),
        _ => None,
    })
    .unwrap();
    assert_eq!(record.trace.name, "unroutable-0");
    clean(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_apps_backlog_of_10000_delays_another_apps_trace_by_a_few_batches_at_most() {
    let Some(mut conn) = redis_or_skip("fairness").await else {
        return;
    };
    let prefix = prefix("fair");
    let keys = Keys::new(prefix.clone());
    // B's stream exists from the start (its first trace), then A's backlog.
    backlog(&mut conn, &keys, "tenant-b", "b-first", 1).await;
    backlog(&mut conn, &keys, "tenant-a", "a", 10_000).await;

    let recorder = Recorder {
        delay: Duration::from_millis(5),
        ..Recorder::default()
    };
    let batch = 50;
    let config = ops_redis::WorkerConfig {
        read_count: 50,
        max_in_flight: 200,
        ..worker_config(&prefix, "fair")
    };
    let bound = config.max_in_flight + config.read_count;
    let worker = Worker::new(&url(), config, worker_queue(recorder.clone(), batch)).unwrap();
    let (stop, running) = start(worker);
    let a_count = |names: &[String]| names.iter().filter(|n| n.starts_with("a-")).count();
    assert!(
        wait_until(Duration::from_secs(30), async || a_count(&recorder.names())
            >= 500)
        .await,
        "A's backlog is not being delivered"
    );
    let a_before = a_count(&recorder.names());
    backlog(&mut conn, &keys, "tenant-b", "b-late", 1).await;
    let got_b = wait_until(Duration::from_secs(30), async || {
        recorder.names().iter().any(|n| n == "b-late-0")
    })
    .await;
    let names = recorder.names();
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    assert!(got_b, "B's trace was not delivered within 30 s");
    let at_b = names.iter().position(|n| n == "b-late-0").unwrap();
    let a_ahead = a_count(&names[..at_b]) - a_before;
    eprintln!(
        "fairness: B's trace was written with {} of A's 10,000 delivered; {a_ahead} of A's went \
         ahead of it ({} batches of {batch}; bound {bound})",
        a_before,
        a_ahead.div_ceil(batch)
    );
    assert!(
        a_ahead <= bound,
        "{a_ahead} of A's traces went ahead of B's (bound {bound})"
    );
    assert!(
        a_count(&names[..at_b]) < 9_000,
        "A's backlog was nearly done anyway: the test proves nothing"
    );
    clean(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_reads_records_written_in_the_previous_format_version() {
    let Some(mut conn) = redis_or_skip("rolling upgrade").await else {
        return;
    };
    let prefix = prefix("upgrade");
    let keys = Keys::new(prefix.clone());
    // Version 1's fields, as an ops 0.1 app wrote them (frozen in a fixture), plus a field a
    // later writer may add without a version bump.
    let fixture: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(include_str!("fixtures/record-v1.json")).unwrap();
    let mut fields: Vec<(&str, &[u8])> = fixture
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap().as_bytes()))
        .collect();
    fields.push(("written_at", b"1733479200000"));
    xadd(&mut conn, &keys, "app-v1", &fields).await;

    let recorder = Recorder::default();
    let worker = Worker::new(
        &url(),
        worker_config(&prefix, "new"),
        worker_queue(recorder.clone(), 10),
    )
    .unwrap();
    let counters = worker.counters();
    let (stop, running) = start(worker);
    let got = wait_until(Duration::from_secs(20), async || counters.acked() == 1).await;
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    assert!(got, "the v1 record was not delivered and acknowledged");
    assert_eq!(recorder.names(), vec!["golden".to_owned()]);
    assert_eq!(counters.dead_lettered(), 0);
    clean(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_workers_slow_deliveries_are_not_claimed_by_another_worker() {
    let Some(mut conn) = redis_or_skip("slow deliveries").await else {
        return;
    };
    let prefix = prefix("slow");
    let keys = Keys::new(prefix.clone());
    backlog(&mut conn, &keys, "app-1", "t", 20).await;
    // Each export takes 1.5 s, five times the claim time.
    let recorder = Recorder {
        delay: Duration::from_millis(1_500),
        ..Recorder::default()
    };
    let config = |consumer: &str| ops_redis::WorkerConfig {
        claim_idle: Duration::from_millis(300),
        ..worker_config(&prefix, consumer)
    };
    let first = Worker::new(&url(), config("first"), worker_queue(recorder.clone(), 100)).unwrap();
    let first_counters = first.counters();
    let (stop_first, first_running) = start(first);
    // The first worker holds all 20 before the second starts.
    assert!(
        wait_until(Duration::from_secs(10), async || first_counters.read()
            == 20)
        .await
    );
    let second = Worker::new(
        &url(),
        config("second"),
        worker_queue(recorder.clone(), 100),
    )
    .unwrap();
    let second_counters = second.counters();
    let (stop_second, second_running) = start(second);
    // Mid-delivery, three claim times in: every entry is still the first's, read once.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let pending: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(keys.stream("app-1"))
        .arg(ops_redis::keys::DEFAULT_GROUP)
        .arg("-")
        .arg("+")
        .arg(100)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending.ids.len(), 20);
    for p in &pending.ids {
        assert_eq!(
            (p.consumer.as_str(), p.times_delivered),
            ("first", 1),
            "{p:?}"
        );
    }
    let done = wait_until(Duration::from_secs(30), async || {
        first_counters.acked() == 20
    })
    .await;
    // Longer than a claim cycle after the first delivery: a claim would have happened.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _ = stop_first.send(());
    let _ = stop_second.send(());
    first_running.await.unwrap().unwrap();
    second_running.await.unwrap().unwrap();
    assert!(
        done,
        "the first worker acknowledged {} of 20",
        first_counters.acked()
    );
    assert_eq!(
        second_counters.claimed(),
        0,
        "the second worker claimed live entries"
    );
    assert_eq!(
        recorder.names().len(),
        20,
        "delivered twice: {:?}",
        recorder.names()
    );
    clean(&mut conn, &prefix).await;
}
