//! `TraceQueueManager::for_app` routed through `OpsTraceManager`: each app's traces reach the
//! providers its stored config enables, a config change takes effect, and a disabled app costs
//! nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ops_config::{ConfigStore, ConfigUpdate, Keyring, OpsTraceManager, SqliteStore};
use ops_core::{ObservationKind, ProviderRouter, Trace, TraceId, TraceQueueManager, TraceTask};

const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn task(name: &str) -> TraceTask {
    TraceTask::from_trace(Trace::new(
        TraceId::generate(),
        ObservationKind::Workflow,
        name,
        chrono::Utc::now(),
    ))
}

fn names_in(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Trace>(l).unwrap().name)
        .collect()
}

async fn file_config(manager: &OpsTraceManager, app: &str, path: &Path) {
    let update = ConfigUpdate::new().set("file", path.to_string_lossy());
    manager
        .save_config("tenant", app, "file", &update, true)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn for_app_routes_through_the_stored_config() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ConfigStore> =
        Arc::new(SqliteStore::open(&dir.path().join("ops.db")).await.unwrap());
    let manager = Arc::new(
        OpsTraceManager::new(store, Keyring::parse(HEX_KEY, "test").unwrap()).with_cache_ttl(None),
    );
    let first = dir.path().join("first.jsonl");
    let second = dir.path().join("second.jsonl");
    file_config(&manager, "app-on", &first).await;
    manager
        .set_enabled("tenant", "app-on", Some("file"), true)
        .await
        .unwrap();
    file_config(&manager, "app-off", &dir.path().join("never.jsonl")).await;
    manager.warm().await.unwrap();

    let mut config = ops_core::QueueConfig::default();
    config.interval = Duration::from_millis(10);
    let queue = TraceQueueManager::builder()
        .config(config)
        .router(Arc::clone(&manager) as Arc<dyn ProviderRouter>)
        .build()
        .unwrap();

    let off = queue.for_app("app-off", None);
    assert!(!off.is_enabled(), "app-off was never enabled");
    off.add_trace_task(task("dropped-on-the-floor")).unwrap();
    queue
        .for_app("app-on", Some("user-1".into()))
        .add_trace_task(task("one"))
        .unwrap();
    let q = queue.clone();
    tokio::task::spawn_blocking(move || q.flush(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(names_in(&first), ["one"]);
    assert_eq!(queue.stats().enqueued, 1, "the disabled app queued nothing");

    // Point the app at another file: the new config is a new instance and gets new traces.
    file_config(&manager, "app-on", &second).await;
    queue
        .for_app("app-on", None)
        .add_trace_task(task("two"))
        .unwrap();
    let q = queue.clone();
    tokio::task::spawn_blocking(move || q.flush(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(names_in(&first), ["one"]);
    assert_eq!(names_in(&second), ["two"]);
    assert!(
        names_in(&dir.path().join("never.jsonl")).is_empty(),
        "the disabled app's file got nothing"
    );
}
