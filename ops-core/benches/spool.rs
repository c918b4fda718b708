//! What the durable spool costs the caller: `add_trace_task` with the spool on, for each fsync
//! policy, next to the same queue without a spool (criterion, `harness = false`).
//!
//! ```text
//! cargo bench -p ops-core --bench spool -- --warm-up-time 1 --measurement-time 5
//! ```
//!
//! Each iteration enqueues one small trace (one observation, the `queue` bench's) into a queue whose provider
//! accepts everything, so spool segments are acknowledged and deleted as in an app. With the
//! spool on, the caller serializes the task and appends it to the segment before returning;
//! `always` also waits for `fdatasync`.

mod shared;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ops_core::TraceQueueManager;
use ops_core::spool::{FsyncPolicy, SpoolConfig};
use ops_testkit::Discard;
use shared::{timed, trace};

fn spool(c: &mut Criterion) {
    let template = trace(1);
    let mut group = c.benchmark_group("spool_enqueue");
    group.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().expect("temp dir");
    let policies: [(&str, Option<FsyncPolicy>); 4] = [
        ("memory_only", None),
        ("fsync_never", Some(FsyncPolicy::Never)),
        (
            "fsync_interval_200ms",
            Some(FsyncPolicy::Interval(Duration::from_millis(200))),
        ),
        ("fsync_always", Some(FsyncPolicy::Always)),
    ];
    for (name, policy) in policies {
        let mut builder = TraceQueueManager::builder()
            .interval(Duration::from_millis(5))
            .max_queue(1 << 17, 1 << 30)
            .provider(Discard::default());
        if let Some(fsync) = policy {
            let mut config = SpoolConfig::new(dir.path().join(name));
            config.fsync = fsync;
            config.max_bytes = 1 << 30;
            builder = builder.spool(config);
        }
        let queue = builder.build().expect("queue");
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    &template,
                    &mut (),
                    |(), task| {
                        black_box(queue.add_trace_task(task)).expect("accepted");
                    },
                    |()| {
                        queue.flush(Duration::from_secs(30));
                    },
                )
            });
        });
        queue.flush(Duration::from_secs(30));
        let stats = queue.stats();
        assert_eq!(stats.dropped_total(), 0, "{name}: the bench must not drop");
        if let Some(s) = stats.spool {
            eprintln!(
                "spool_enqueue/{name}: written {}, segments deleted {}, on disk {} bytes",
                s.written, s.segments_deleted, s.disk_bytes
            );
        }
    }
    group.finish();
}

criterion_group!(benches, spool);
criterion_main!(benches);
