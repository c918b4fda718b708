//! `ops worker`: the delivery tier on Redis Streams (ops-redis), its figures and its
//! dead-letter stream.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use ops_redis::{Keys, Worker, WorkerConfig};

use crate::commands::{Open, manager};
use crate::{Cli, Failure, exit};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct WorkerArgs {
    #[command(subcommand)]
    action: Option<WorkerAction>,
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// Where the tier lives: the Redis, the key prefix and the consumer group.
#[derive(Debug, Args)]
struct RedisArgs {
    /// The Redis the apps write to: `redis://[:password@]host[:port][/db]`.
    #[arg(
        long,
        global = true,
        env = ops_redis::REDIS_URL_ENV,
        hide_env_values = true,
        value_name = "URL"
    )]
    redis: Option<String>,
    /// The key prefix the apps write under.
    #[arg(long, global = true, env = ops_redis::REDIS_PREFIX_ENV,
        default_value = ops_redis::keys::DEFAULT_PREFIX)]
    prefix: String,
    /// The consumer group the workers share.
    #[arg(long, global = true, default_value = ops_redis::keys::DEFAULT_GROUP)]
    group: String,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// This worker's name in the group, unique per running worker [default: {host}-{pid}].
    #[arg(long)]
    consumer: Option<String>,
    /// Seconds an entry may sit with a stopped worker before another claims it (1 to 86400).
    #[arg(long, default_value_t = 60, value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    claim_idle: u64,
    /// Deliveries of one entry after which it goes to the dead-letter stream (1 to 1000).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_deliveries: u32,
    /// Entries held unacknowledged at most; after a crash, at most these are delivered twice
    /// (1 to 1000000).
    #[arg(long, default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_in_flight: u64,
    /// Entries read from each app stream at a time (1 to 10000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    read_count: u64,
    /// Seconds a stop (SIGTERM, Ctrl-C) waits for in-flight deliveries (0 to 3600).
    #[arg(long, default_value_t = 10, value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(0..=3600))]
    shutdown_timeout: u64,
}

#[derive(Debug, Subcommand)]
enum WorkerAction {
    /// Show each app stream's backlog (pending: being delivered; lag: not read yet), the
    /// dead-letter count, and the workers' figures: read, acked, delivered, retried,
    /// dead-lettered, and per provider.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List or replay the dead-letter stream.
    #[command(subcommand)]
    DeadLetter(DeadLetterAction),
}

#[derive(Debug, Subcommand)]
enum DeadLetterAction {
    /// List the oldest dead-lettered entries with their reason.
    List {
        /// How many (1 to 100000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        count: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the oldest dead-lettered entries back to their app streams (after fixing the
    /// cause) and remove them from the dead-letter stream.
    Replay {
        /// How many (1 to 100000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        count: u64,
    },
}

impl WorkerArgs {
    /// The command's name as typed, for the log.
    pub(crate) fn name(&self) -> &'static str {
        match &self.action {
            None => "worker",
            Some(WorkerAction::Stats { .. }) => "worker stats",
            Some(WorkerAction::DeadLetter(DeadLetterAction::List { .. })) => {
                "worker dead-letter list"
            }
            Some(WorkerAction::DeadLetter(DeadLetterAction::Replay { .. })) => {
                "worker dead-letter replay"
            }
        }
    }
}

fn url(args: &RedisArgs) -> Result<String, Failure> {
    args.redis
        .clone()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                format!(
                    "no Redis: pass --redis redis://host:port or set {}",
                    ops_redis::REDIS_URL_ENV
                ),
            )
        })
}

fn redis_failure(url: &str, e: impl std::fmt::Display) -> Failure {
    let shown = ops_core::provider::redact_url(url);
    Failure::new(
        exit::OTHER,
        format!("redis at {shown}: {}", e.to_string().replace(url, &shown)),
    )
}

async fn connect(url: &str) -> Result<redis::aio::MultiplexedConnection, Failure> {
    let client = redis::Client::open(url).map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    match tokio::time::timeout(
        Duration::from_secs(10),
        client.get_multiplexed_async_connection(),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(redis_failure(url, e)),
        Err(_) => Err(redis_failure(url, "no answer within 10 s")),
    }
}

/// Runs `ops worker ...`.
pub(crate) async fn run(cli: &Cli, args: &WorkerArgs) -> Result<(), Failure> {
    let url = url(&args.redis)?;
    let keys = Keys::new(args.redis.prefix.clone());
    match &args.action {
        None => work(cli, args, &url).await,
        Some(WorkerAction::Stats { json }) => {
            let mut conn = connect(&url).await?;
            let stats = ops_redis::stats::collect(&mut conn, &keys, &args.redis.group)
                .await
                .map_err(|e| redis_failure(&url, e))?;
            if *json {
                let streams: Vec<serde_json::Value> = stats
                    .streams
                    .iter()
                    .map(|s| serde_json::json!({"stream": s.stream, "pending": s.pending, "lag": s.lag}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "streams": streams,
                        "dead_letters": stats.dead_letters,
                        "workers": stats.workers,
                    })
                );
            } else {
                println!("{stats}");
            }
            Ok(())
        }
        Some(WorkerAction::DeadLetter(DeadLetterAction::List { count, json })) => {
            let mut conn = connect(&url).await?;
            let entries = ops_redis::dead::list(&mut conn, &keys, *count as usize)
                .await
                .map_err(|e| redis_failure(&url, e))?;
            for e in &entries {
                if *json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": e.id,
                            "stream": e.stream,
                            "original_id": e.original_id,
                            "app": e.app,
                            "trace_id": e.trace_id,
                            "deliveries": e.deliveries,
                            "reason": e.reason,
                        })
                    );
                } else {
                    println!(
                        "{} app={} trace={} deliveries={} from {} {}\n    {}",
                        e.id,
                        e.app.as_deref().unwrap_or("-"),
                        e.trace_id.as_deref().unwrap_or("-"),
                        e.deliveries,
                        e.stream,
                        e.original_id,
                        e.reason
                    );
                }
            }
            if !*json {
                println!("{} dead-lettered entries shown", entries.len());
            }
            Ok(())
        }
        Some(WorkerAction::DeadLetter(DeadLetterAction::Replay { count })) => {
            let mut conn = connect(&url).await?;
            let n = ops_redis::dead::replay(&mut conn, &keys, *count as usize)
                .await
                .map_err(|e| redis_failure(&url, e))?;
            println!("replayed {n} entries to their app streams");
            Ok(())
        }
    }
}

/// Runs a worker until SIGTERM or Ctrl-C.
async fn work(cli: &Cli, args: &WorkerArgs, url: &str) -> Result<(), Failure> {
    // A config shared by several machines changes under the worker: apps are re-read
    // after 30 s.
    let router = manager(cli, Open::Existing)
        .await?
        .with_cache_ttl(Some(Duration::from_secs(30)));
    let queue = ops_core::TraceQueueManager::builder()
        .interval(Duration::from_millis(200))
        .router(Arc::new(router))
        .build()
        .map_err(|e| Failure::new(exit::OTHER, e.to_string()))?;
    let run = &args.run;
    let config = WorkerConfig {
        prefix: args.redis.prefix.clone(),
        group: args.redis.group.clone(),
        consumer: run
            .consumer
            .clone()
            .unwrap_or_else(ops_redis::default_consumer),
        read_count: run.read_count as usize,
        max_in_flight: run.max_in_flight as usize,
        claim_idle: Duration::from_secs(run.claim_idle),
        max_deliveries: run.max_deliveries,
        shutdown_timeout: Duration::from_secs(run.shutdown_timeout),
        ..WorkerConfig::default()
    };
    let consumer = config.consumer.clone();
    let worker =
        Worker::new(url, config, queue).map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    let stop = stop_signal()?;
    eprintln!(
        "ops worker {consumer}: delivering from {} (prefix {}, group {})",
        ops_core::provider::redact_url(url),
        args.redis.prefix,
        args.redis.group
    );
    let report = worker
        .run(stop)
        .await
        .map_err(|e| Failure::new(exit::OTHER, e.to_string()))?;
    eprintln!(
        "ops worker {consumer}: stopped; {} acknowledged, {} dead-lettered, {} left for other workers",
        report.acked, report.dead_lettered, report.unfinished
    );
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (Ctrl-C only where there is no SIGTERM).
pub(crate) fn stop_signal() -> Result<impl std::future::Future<Output = ()>, Failure> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::new(exit::OTHER, format!("cannot watch SIGTERM: {e}")))?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}
