//! The app side against the real Redis: traces reach their app's stream and a worker
//! delivers them; the stream cap counts what it cuts; with Redis unreachable the spool holds
//! traces and forwards them, and without it the drops are counted with their reason.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use ops_core::spool::SpoolConfig;
use ops_core::{DropReason, QueueConfig, TraceQueueManager};
use ops_redis::{Keys, RedisQueueExt, RedisSink, Worker};
use support::*;

/// Retries that come quickly, so the tests are short.
fn quick() -> QueueConfig {
    let mut config = QueueConfig::default();
    config.interval = Duration::from_millis(20);
    config.initial_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(200);
    config.breaker_cooldown = Duration::from_millis(200);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_their_apps_streams_and_a_worker_delivers_them_to_the_apps_providers() {
    let Some(mut conn) = redis_or_skip("app to worker").await else {
        return;
    };
    let prefix = prefix("e2e");
    let keys = Keys::new(prefix.clone());
    let sink = RedisSink::new(&url()).unwrap().prefix(prefix.clone());
    let written = sink.stats();
    let app = TraceQueueManager::builder()
        .config(quick())
        .redis_sink(sink)
        .build()
        .unwrap();
    for i in 0..100 {
        let app_id = if i % 2 == 0 { "app-1" } else { "app-2" };
        app.for_app(app_id, None)
            .trace(trace(app_id, &format!("{app_id}-{i}")))
            .unwrap();
    }
    let report = tokio::task::spawn_blocking(move || app.shutdown(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(report.dropped, 0);
    assert_eq!(written.written(), 100);
    assert_eq!(names_in_stream(&mut conn, &keys, "app-1").await.len(), 50);
    assert_eq!(names_in_stream(&mut conn, &keys, "app-2").await.len(), 50);

    let recorder = Recorder::default();
    let worker = Worker::new(
        &url(),
        worker_config(&prefix, "w"),
        worker_queue(recorder.clone(), 50),
    )
    .unwrap();
    let counters = worker.counters();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async move {
        let _ = stop_rx.await;
    }));
    let done = wait_until(Duration::from_secs(20), async || counters.acked() == 100).await;
    let _ = stop_tx.send(());
    running.await.unwrap().unwrap();
    assert!(done, "acknowledged {} of 100", counters.acked());
    let names: HashSet<String> = recorder.names().into_iter().collect();
    assert_eq!(names.len(), 100);
    assert_eq!(counters.delivered(), 100);
    // Acknowledged entries are deleted: what a stream holds is what waits.
    assert!(names_in_stream(&mut conn, &keys, "app-1").await.is_empty());

    let stats = ops_redis::stats::collect(&mut conn, &keys, ops_redis::keys::DEFAULT_GROUP)
        .await
        .unwrap();
    assert_eq!(stats.total("acked"), 100);
    assert_eq!(stats.total("provider:recorder:exported"), 100);
    assert!(
        stats.streams.iter().all(|s| s.pending == 0 && s.lag == 0),
        "{stats:?}"
    );
    clean(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_at_its_cap_counts_the_undelivered_traces_it_trims() {
    let Some(mut conn) = redis_or_skip("stream cap").await else {
        return;
    };
    let prefix = prefix("cap");
    let keys = Keys::new(prefix.clone());
    let sink = RedisSink::new(&url())
        .unwrap()
        .prefix(prefix.clone())
        .max_len(100)
        .unwrap();
    let stats = sink.stats();
    let app = TraceQueueManager::builder()
        .config(quick())
        .redis_sink(sink)
        .build()
        .unwrap();
    for i in 0..1_000 {
        app.for_app("app-1", None)
            .trace(trace("app-1", &format!("t-{i}")))
            .unwrap();
    }
    tokio::task::spawn_blocking(move || app.shutdown(Duration::from_secs(10)))
        .await
        .unwrap();
    let kept = names_in_stream(&mut conn, &keys, "app-1").await;
    eprintln!("cap 100: {} kept, {} trimmed", kept.len(), stats.trimmed());
    assert_eq!(stats.written(), 1_000);
    assert!(kept.len() >= 100 && kept.len() < 1_000);
    assert_eq!(stats.trimmed(), 1_000 - kept.len() as u64);
    // The newest are kept.
    assert_eq!(kept.last().map(String::as_str), Some("t-999"));
    clean(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_spool_on_traces_wait_while_redis_is_unreachable_and_are_forwarded_when_it_returns()
 {
    let Some(mut conn) = redis_or_skip("spool while Redis is down").await else {
        return;
    };
    let prefix = prefix("spool");
    let keys = Keys::new(prefix.clone());
    let proxy = Proxy::down_at_first().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = quick();
    config.spool = Some(SpoolConfig::new(dir.path()));
    let sink = RedisSink::new(&proxy.url(""))
        .unwrap()
        .prefix(prefix.clone());
    let app = TraceQueueManager::builder()
        .config(config)
        .redis_sink(sink)
        .build()
        .unwrap();
    for i in 0..300 {
        app.for_app("app-1", None)
            .trace(trace("app-1", &format!("t-{i}")))
            .unwrap();
    }
    // Down for a while: nothing gets through, nothing is dropped.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(names_in_stream(&mut conn, &keys, "app-1").await.is_empty());
    let stats = app.stats();
    assert_eq!(stats.dropped_total(), 0);
    assert!(
        stats
            .spool
            .as_ref()
            .is_some_and(|s| s.written == 300 && s.unresolved > 0),
        "{stats:?}"
    );

    proxy.up().await;
    let forwarded = wait_until(Duration::from_secs(60), async || {
        names_in_stream(&mut conn, &keys, "app-1").await.len() >= 300
    })
    .await;
    let names: HashSet<String> = names_in_stream(&mut conn, &keys, "app-1")
        .await
        .into_iter()
        .collect();
    let stats = app.stats();
    tokio::task::spawn_blocking(move || app.shutdown(Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(
        forwarded,
        "{} of 300 forwarded within 60 s of Redis returning",
        names.len()
    );
    assert_eq!(names.len(), 300);
    assert_eq!(stats.dropped_total(), 0);
    clean(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_traces_an_app_could_not_send_are_forwarded_by_its_next_start() {
    let Some(mut conn) = redis_or_skip("spool across a restart").await else {
        return;
    };
    let prefix = prefix("restart");
    let keys = Keys::new(prefix.clone());
    let closed = Proxy::down_at_first().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = quick();
    config.spool = Some(SpoolConfig::new(dir.path()));
    config.shutdown_timeout = Duration::from_millis(200);
    // First run: Redis is at a closed port.
    let sink = RedisSink::new(&closed.url(""))
        .unwrap()
        .prefix(prefix.clone());
    let app = TraceQueueManager::builder()
        .config(config.clone())
        .redis_sink(sink)
        .build()
        .unwrap();
    for i in 0..200 {
        app.for_app("app-1", None)
            .trace(trace("app-1", &format!("t-{i}")))
            .unwrap();
    }
    tokio::task::spawn_blocking(move || app.shutdown(Duration::from_millis(500)))
        .await
        .unwrap();
    assert!(names_in_stream(&mut conn, &keys, "app-1").await.is_empty());
    // Next start: the real Redis.
    let sink = RedisSink::new(&url()).unwrap().prefix(prefix.clone());
    let app = TraceQueueManager::builder()
        .config(config)
        .redis_sink(sink)
        .build()
        .unwrap();
    let forwarded = wait_until(Duration::from_secs(30), async || {
        names_in_stream(&mut conn, &keys, "app-1").await.len() >= 200
    })
    .await;
    tokio::task::spawn_blocking(move || app.shutdown(Duration::from_secs(5)))
        .await
        .unwrap();
    let names: HashSet<String> = names_in_stream(&mut conn, &keys, "app-1")
        .await
        .into_iter()
        .collect();
    assert!(
        forwarded,
        "{} of 200 forwarded after the restart",
        names.len()
    );
    assert_eq!(names.len(), 200);
    clean(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_spool_traces_redis_never_took_are_dropped_and_counted_with_the_reason() {
    let closed = Proxy::down_at_first().await;
    let mut config = quick();
    config.max_retry_time = Duration::from_millis(300);
    config.breaker_threshold = 1_000_000;
    let sink = RedisSink::new(&closed.url(":hunter2@")).unwrap();
    let app = TraceQueueManager::builder()
        .config(config)
        .redis_sink(sink)
        .build()
        .unwrap();
    for i in 0..50 {
        // The caller's path does no I/O: it returns while Redis is unreachable.
        app.for_app("app-1", None)
            .trace(trace("app-1", &format!("t-{i}")))
            .unwrap();
    }
    let stats = tokio::task::spawn_blocking(move || {
        app.flush(Duration::from_secs(10));
        app.stats()
    })
    .await
    .unwrap();
    assert_eq!(stats.dropped(DropReason::RetriesExhausted), 50, "{stats:?}");
    let redis = stats.providers.iter().find(|p| p.name == "redis").unwrap();
    let error = redis.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&format!("127.0.0.1:{}", closed.port)),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "the password leaked: {error}");
}

const ENV_CHILD: &str = "OPS_REDIS_TEST_ENV_CHILD";

/// An app set up from the environment alone, run by the test below in a child process (the
/// environment is the process's). Does nothing in a normal test run.
#[test]
#[ignore = "run by an app_side test in a child process"]
fn env_child() {
    if std::env::var_os(ENV_CHILD).is_none() {
        return;
    }
    let queue = ops_redis::builder_from_env().unwrap().build().unwrap();
    let names: Vec<String> = queue
        .stats()
        .providers
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(
        names,
        vec!["redis".to_owned()],
        "only the Redis destination"
    );
    for i in 0..5 {
        queue
            .for_app("app-env", None)
            .trace(trace("app-env", &format!("env-{i}")))
            .unwrap();
    }
    let report = queue.shutdown(Duration::from_secs(10));
    assert_eq!(report.dropped, 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_trace_redis_url_and_prefix_alone_send_an_apps_traces_to_redis() {
    let Some(mut conn) = redis_or_skip("OPS_TRACE_REDIS_URL").await else {
        return;
    };
    let prefix = prefix("env");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "env_child", "--ignored", "--nocapture"])
        .env(ENV_CHILD, "1")
        .env(ops_redis::REDIS_URL_ENV, url())
        .env(ops_redis::REDIS_PREFIX_ENV, &prefix)
        .env_remove(ops_core::PROVIDER_ENV)
        .env_remove("OPS_TRACE_SPOOL_DIR")
        .status()
        .unwrap();
    assert!(status.success(), "the app process failed: {status}");
    let names = names_in_stream(&mut conn, &Keys::new(prefix.clone()), "app-env").await;
    assert_eq!(
        names,
        (0..5).map(|i| format!("env-{i}")).collect::<Vec<_>>()
    );
    clean(&mut conn, &prefix).await;
}
