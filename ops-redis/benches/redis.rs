//! Benches of the Redis tier against the local Redis (criterion, `harness = false`).
//!
//! ```text
//! cargo bench -p ops-redis --bench redis -- --warm-up-time 1 --measurement-time 5
//! ```
//!
//! - `enqueue/*`: what `add_trace_task` costs the app's thread for a small trace, with the
//!   Redis destination (`redis_sink`) beside the in-process queue with a no-op provider
//!   (`in_process_noop`, the baseline). Both use ops-core's bench loop (tasks built before
//!   the clock starts, an untimed flush between chunks).
//! - `delivery/{1,2,4}_workers`: 5,000 traces (10 observations each) already in one app's
//!   stream, delivered through Redis into a no-op provider by 1, 2 or 4 workers (each with its
//!   own connection, queue and thread), until every entry is acknowledged. Besides the wall
//!   time, it prints the CPU each trace cost this process and the Redis server.
//!
//! Skipped, saying so, when no Redis answers (`OPS_TEST_REDIS_URL` or 127.0.0.1:6379).

#[path = "../../ops-core/benches/shared.rs"]
mod shared;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ops_core::TraceQueueManager;
use ops_redis::{Keys, RedisQueueExt, RedisSink, Worker, WorkerConfig};
use ops_testkit::Discard;
use shared::{timed, trace};

fn url() -> String {
    std::env::var("OPS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn connect(rt: &tokio::runtime::Runtime) -> Option<redis::aio::MultiplexedConnection> {
    rt.block_on(async {
        let client = redis::Client::open(url()).ok()?;
        tokio::time::timeout(
            Duration::from_secs(3),
            client.get_multiplexed_async_connection(),
        )
        .await
        .ok()?
        .ok()
    })
}

fn clean(rt: &tokio::runtime::Runtime, conn: &mut redis::aio::MultiplexedConnection, prefix: &str) {
    rt.block_on(async {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(conn)
            .await
            .unwrap_or_default();
        for chunk in keys.chunks(1000) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(conn).await;
        }
    });
}

/// CPU seconds this process has used (user + system), from /proc (Linux).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds the Redis server has used, from INFO.
fn redis_cpu(rt: &tokio::runtime::Runtime, conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = rt
        .block_on(redis::cmd("INFO").arg("cpu").query_async(conn))
        .unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k == "used_cpu_user" || k == "used_cpu_sys").then(|| v.trim().parse::<f64>().ok())?
        })
        .sum()
}

fn enqueue(c: &mut Criterion) {
    let rt = runtime();
    let Some(mut conn) = connect(&rt) else {
        eprintln!("SKIPPED enqueue: no Redis answers at {}", url());
        return;
    };
    let prefix = format!("ops-bench:enqueue:{}", std::process::id());
    let template = trace(1);
    let mut group = c.benchmark_group("enqueue");
    let in_process = TraceQueueManager::builder()
        .interval(Duration::from_millis(1))
        .max_queue(1 << 17, 1 << 30)
        .provider(Discard::default())
        .build()
        .unwrap();
    let sink = RedisSink::new(&url())
        .unwrap()
        .prefix(prefix.clone())
        .max_len(100_000)
        .unwrap();
    let redis_queue = TraceQueueManager::builder()
        .interval(Duration::from_millis(1))
        .max_queue(1 << 17, 1 << 30)
        .redis_sink(sink)
        .build()
        .unwrap();
    for (name, queue) in [
        ("in_process_noop", &in_process),
        ("redis_sink", &redis_queue),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    &template,
                    &mut (),
                    |(), task| {
                        let _ = black_box(queue.add_trace_task(task));
                    },
                    |()| {
                        queue.flush(Duration::from_secs(60));
                    },
                )
            });
        });
        let stats = queue.stats();
        assert_eq!(stats.dropped_total(), 0, "{name}: the bench must not drop");
    }
    group.finish();
    clean(&rt, &mut conn, &prefix);
}

fn delivery(c: &mut Criterion) {
    const TRACES: u64 = 5_000;
    let rt = runtime();
    let Some(mut conn) = connect(&rt) else {
        eprintln!("SKIPPED delivery: no Redis answers at {}", url());
        return;
    };
    let template = trace(10);
    let mut group = c.benchmark_group("delivery");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TRACES));
    for workers in [1usize, 2, 4] {
        let prefix = format!("ops-bench:delivery:{}:{workers}", std::process::id());
        let keys = Keys::new(prefix.clone());
        let (mut cpu, mut server_cpu, mut delivered) = (0.0, 0.0, 0u64);
        group.bench_function(format!("{workers}_workers"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // The backlog, untimed: written as the sink writes it.
                    rt.block_on(async {
                        let stream = keys.stream("app-1");
                        let mut pipe = redis::pipe();
                        for _ in 0..TRACES {
                            let mut t = template.clone();
                            t.id = ops_core::TraceId::generate();
                            let fields = ops_redis::record::encode(Some("app-1"), &t).unwrap();
                            let cmd = pipe.cmd("XADD").arg(&stream).arg("*");
                            for (name, value) in &fields {
                                cmd.arg(*name).arg(value.as_slice());
                            }
                            cmd.ignore();
                        }
                        pipe.cmd("SADD").arg(keys.streams()).arg(&stream).ignore();
                        pipe.query_async::<()>(&mut conn).await.unwrap();
                    });
                    let (cpu0, server0) = (process_cpu(), redis_cpu(&rt, &mut conn));
                    let start = Instant::now();
                    let acked = rt.block_on(async {
                        let mut running = Vec::new();
                        let mut counters = Vec::new();
                        for w in 0..workers {
                            let queue = TraceQueueManager::builder()
                                .interval(Duration::from_millis(10))
                                .provider(Discard::default())
                                .build()
                                .unwrap();
                            let config = WorkerConfig {
                                prefix: prefix.clone(),
                                consumer: format!("bench-{w}"),
                                poll: Duration::from_millis(5),
                                ..WorkerConfig::default()
                            };
                            let worker = Worker::new(&url(), config, queue).unwrap();
                            counters.push(worker.counters());
                            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                            running.push((
                                stop,
                                tokio::spawn(worker.run(async move {
                                    let _ = stopped.await;
                                })),
                            ));
                        }
                        let deadline = Instant::now() + Duration::from_secs(120);
                        let acked = || counters.iter().map(|c| c.acked()).sum::<u64>();
                        while acked() < TRACES && Instant::now() < deadline {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        let done = acked();
                        for (stop, handle) in running {
                            let _ = stop.send(());
                            let _ = handle.await;
                        }
                        done
                    });
                    total += start.elapsed();
                    cpu += process_cpu() - cpu0;
                    server_cpu += redis_cpu(&rt, &mut conn) - server0;
                    delivered += acked;
                    assert_eq!(acked, TRACES, "not every trace was delivered within 120 s");
                }
                total
            });
        });
        if delivered > 0 {
            eprintln!(
                "delivery/{workers}_workers: {delivered} traces; CPU per trace: workers {:.1} µs, \
                 Redis server {:.1} µs",
                cpu / delivered as f64 * 1e6,
                server_cpu / delivered as f64 * 1e6
            );
        }
        clean(&rt, &mut conn, &prefix);
    }
    group.finish();
}

criterion_group!(benches, enqueue, delivery);
criterion_main!(benches);
