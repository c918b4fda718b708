//! The hot-path check an app makes before tracing: `is_enabled_cached` for a disabled app,
//! an enabled app, and an app that is not cached.
//!
//! It reads the manager's cache only: no trace is made and no queue exists, so nothing can be
//! dropped (the benches that enqueue assert 0 drops; see `ops-core/benches`).
//!
//! Run: `cargo bench -p ops-config --bench hot_path -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use ops_config::{ConfigStore, ConfigUpdate, Keyring, OpsTraceManager, SqliteStore};

fn hot_path(c: &mut Criterion) {
    // Links ops-testkit, which registers the `mock` provider used below.
    black_box(ops_testkit::MockProvider::new as fn() -> ops_testkit::MockProvider);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manager = rt.block_on(async {
        let store: Arc<dyn ConfigStore> = Arc::new(
            SqliteStore::open(dir.path().join("bench.db"))
                .await
                .unwrap(),
        );
        let keys = Keyring::parse(&"ab".repeat(32), "bench").unwrap();
        let m = OpsTraceManager::new(store, keys).with_cache_ttl(None);
        m.save_config("t", "on", "mock", &ConfigUpdate::new(), false)
            .await
            .unwrap();
        m.set_enabled("t", "on", Some("mock"), true).await.unwrap();
        // 10 000 disabled apps in the cache, as in a busy multi-tenant platform.
        for i in 0..10_000 {
            m.is_enabled(&format!("off-{i}")).await.unwrap();
        }
        m.is_enabled("on").await.unwrap();
        m
    });
    assert_eq!(manager.is_enabled_cached("off-42"), Some(false));
    assert_eq!(manager.is_enabled_cached("on"), Some(true));

    let mut group = c.benchmark_group("is_enabled_cached");
    group.bench_function("disabled app", |b| {
        b.iter(|| manager.is_enabled_cached(black_box("off-4242")))
    });
    group.bench_function("enabled app", |b| {
        b.iter(|| manager.is_enabled_cached(black_box("on")))
    });
    group.bench_function("not cached", |b| {
        b.iter(|| manager.is_enabled_cached(black_box("never-seen")))
    });
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
