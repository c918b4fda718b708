//! The worker side: reads the app streams in a consumer group, delivers each trace to its
//! app's providers through an ops queue (its lanes, retries, circuit breakers and limits), and
//! acknowledges an entry only once every provider resolved it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_core::provider::redact_url;
use ops_core::{TraceQueueManager, TraceTask};
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use redis::{RedisError, Value};
use tokio::sync::{Notify, Semaphore, mpsc};

use crate::keys::{DEFAULT_GROUP, DEFAULT_PREFIX, Keys};
use crate::record;
use crate::sink::{SetupError, client};

/// How a worker reads, claims and gives up. Every duration and count has a range, checked by
/// [`Worker::new`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The key prefix the apps write under (default `ops`).
    pub prefix: String,
    /// The consumer group (default `ops-workers`).
    pub group: String,
    /// This worker's name in the group; unique per running worker (default
    /// `{host}-{pid}`).
    pub consumer: String,
    /// Entries read from each stream per read (default 100; 1 to 10,000). A read takes up
    /// to this many from every app stream, so one app's backlog never starves another.
    pub read_count: usize,
    /// Entries read and not yet acknowledged, at most (default 1,000; 1 to 1,000,000). After
    /// a crash, another worker redelivers at most these.
    pub max_in_flight: usize,
    /// How long an entry may sit unacknowledged with a worker that stopped refreshing it
    /// before another worker claims it (default 60 s; 10 ms to 24 h).
    pub claim_idle: Duration,
    /// Deliveries of one entry (reads and claims) after which it goes to the dead-letter
    /// stream (default 5; 1 to 1,000).
    pub max_deliveries: u32,
    /// How long to wait before reading again when every stream was empty (default 100 ms;
    /// 1 ms to 10 s).
    pub poll: Duration,
    /// Streams named in one read (default 64; 1 to 10,000); the worker rotates through
    /// the rest.
    pub streams_per_read: usize,
    /// How long a stop waits for in-flight deliveries and their acknowledgements (default
    /// 10 s; 0 to 1 h).
    pub shutdown_timeout: Duration,
    /// Entries the dead-letter stream keeps, about (default 1,000,000).
    pub dead_max_len: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            group: DEFAULT_GROUP.to_owned(),
            consumer: default_consumer(),
            read_count: 100,
            max_in_flight: 1_000,
            claim_idle: Duration::from_secs(60),
            max_deliveries: 5,
            poll: Duration::from_millis(100),
            streams_per_read: 64,
            shutdown_timeout: Duration::from_secs(10),
            dead_max_len: 1_000_000,
        }
    }
}

/// `{host}-{pid}`: unique among the workers of one group.
pub fn default_consumer() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

impl WorkerConfig {
    fn check(&self) -> Result<(), SetupError> {
        fn range(
            setting: &'static str,
            value: u64,
            min: u64,
            max: u64,
            expected: &'static str,
        ) -> Result<(), SetupError> {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(SetupError::OutOfRange {
                    setting,
                    value,
                    expected,
                })
            }
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        range(
            "read_count",
            self.read_count as u64,
            1,
            10_000,
            "1 to 10,000",
        )?;
        range(
            "max_in_flight",
            self.max_in_flight as u64,
            1,
            1_000_000,
            "1 to 1,000,000",
        )?;
        range(
            "claim_idle (ms)",
            ms(self.claim_idle),
            10,
            86_400_000,
            "10 ms to 24 h",
        )?;
        range(
            "max_deliveries",
            u64::from(self.max_deliveries),
            1,
            1_000,
            "1 to 1,000",
        )?;
        range("poll (ms)", ms(self.poll), 1, 10_000, "1 ms to 10 s")?;
        range(
            "streams_per_read",
            self.streams_per_read as u64,
            1,
            10_000,
            "1 to 10,000",
        )?;
        range(
            "shutdown_timeout (ms)",
            ms(self.shutdown_timeout),
            0,
            3_600_000,
            "0 to 1 h",
        )?;
        range("dead_max_len", self.dead_max_len, 1, 1 << 62, "1 to 2^62")?;
        for (setting, value) in [
            ("prefix", &self.prefix),
            ("group", &self.group),
            ("consumer", &self.consumer),
        ] {
            if value.trim().is_empty() {
                return Err(SetupError::Blank { setting });
            }
        }
        Ok(())
    }
}

/// A worker's running figures, for `ops worker stats` and for tests.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    read: AtomicU64,
    claimed: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    dead_lettered: AtomicU64,
    refused: AtomicU64,
    unroutable: AtomicU64,
}

macro_rules! getters {
    ($($(#[$doc:meta])* $name:ident),*) => {
        impl WorkerCounters {
            $($(#[$doc])* pub fn $name(&self) -> u64 { self.$name.load(Relaxed) })*

            /// Every figure with its name, as published to Redis.
            pub fn figures(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Relaxed))),*]
            }
        }
    };
}

getters!(
    /// Entries read from the streams (first deliveries).
    read,
    /// Entries claimed from workers that stopped (redeliveries).
    claimed,
    /// Entries acknowledged and deleted: every provider resolved them.
    acked,
    /// Provider deliveries that succeeded (a trace with two providers counts two).
    delivered,
    /// Provider deliveries given up for good (counted in the queue's stats with the reason).
    failed,
    /// Entries moved to the dead-letter stream.
    dead_lettered,
    /// Entries the local queue refused (full); they are redelivered after `claim_idle`.
    refused,
    /// Entries whose routing failed; they are redelivered after `claim_idle`.
    unroutable
);

/// What a stopped worker left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// Entries acknowledged over the worker's life.
    pub acked: u64,
    /// Entries moved to the dead-letter stream over the worker's life.
    pub dead_lettered: u64,
    /// Entries still in flight when the stop's deadline passed: not acknowledged, so another
    /// worker delivers them after `claim_idle` (possibly again).
    pub unfinished: u64,
}

/// A problem that stops a worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Redis refused a command the worker cannot do without.
    #[error("redis at {url}: {message}")]
    Redis {
        /// The URL, without its password.
        url: String,
        /// What failed.
        message: String,
    },
}

/// A delivery worker: run any number of them, on any machines, against the same Redis.
pub struct Worker {
    client: redis::Client,
    url: String,
    config: WorkerConfig,
    keys: Keys,
    queue: TraceQueueManager,
    counters: Arc<WorkerCounters>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("url", &redact_url(&self.url))
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One entry in flight: which stream it came from.
type EntryKey = (Arc<str>, String);
/// Why entries were last left unacknowledged.
type Failures = Arc<Mutex<HashMap<EntryKey, String>>>;

struct Run {
    conn: ConnectionManager,
    config: WorkerConfig,
    keys: Keys,
    url: String,
    queue: TraceQueueManager,
    counters: Arc<WorkerCounters>,
    permits: Arc<Semaphore>,
    /// Entries being delivered, by stream, so their idle time is refreshed and a claim of
    /// our own entry is not delivered twice.
    in_flight: Mutex<HashMap<Arc<str>, HashSet<String>>>,
    /// Why an entry was last left unacknowledged, for its dead-letter reason.
    last_failure: Failures,
    /// Taken at the stop, which ends the acknowledging task once it has sent the rest.
    acks: Mutex<Option<mpsc::UnboundedSender<EntryKey>>>,
    released: Notify,
    stopping: AtomicBool,
}

impl Worker {
    /// A worker reading the Redis at `url`, delivering through `queue` (built with the
    /// providers or the router, for example ops-config's `OpsTraceManager`, that say where
    /// each app's traces go).
    pub fn new(
        url: &str,
        config: WorkerConfig,
        queue: TraceQueueManager,
    ) -> Result<Self, SetupError> {
        config.check()?;
        Ok(Self {
            client: client(url)?,
            url: url.trim().to_owned(),
            keys: Keys::new(config.prefix.clone()),
            config,
            queue,
            counters: Arc::default(),
        })
    }

    /// The worker's figures, readable while it runs.
    pub fn counters(&self) -> Arc<WorkerCounters> {
        Arc::clone(&self.counters)
    }

    /// Runs until `stop` completes (for example on `SIGTERM`), then finishes what is in
    /// flight within [`WorkerConfig::shutdown_timeout`] and returns. The queue is shut down
    /// with it.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<WorkerReport, WorkerError> {
        let redis_error = |e: RedisError| WorkerError::Redis {
            url: redact_url(&self.url),
            message: e.to_string(),
        };
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(self.client.clone(), manager)
            .await
            .map_err(redis_error)?;
        let (acks, ack_rx) = mpsc::unbounded_channel();
        let last_failure = Failures::default();
        let acker = tokio::spawn(
            Acker {
                conn: conn.clone(),
                group: self.config.group.clone(),
                counters: Arc::clone(&self.counters),
                last_failure: Arc::clone(&last_failure),
            }
            .run(ack_rx),
        );
        let run = Arc::new(Run {
            conn,
            permits: Arc::new(Semaphore::new(self.config.max_in_flight)),
            config: self.config,
            keys: self.keys,
            url: redact_url(&self.url),
            queue: self.queue,
            counters: self.counters,
            in_flight: Mutex::default(),
            last_failure,
            acks: Mutex::new(Some(acks)),
            released: Notify::new(),
            stopping: AtomicBool::new(false),
        });
        let upkeep = tokio::spawn(Arc::clone(&run).upkeep_loop());
        tokio::select! {
            () = stop => {}
            () = Arc::clone(&run).read_loop() => {}
        }
        run.stopping.store(true, Relaxed);
        upkeep.abort();
        // Finish what is in flight, within the deadline.
        let deadline = Instant::now() + run.config.shutdown_timeout;
        while run.in_flight_count() > 0 && Instant::now() < deadline {
            // Bounded waits: a release between the check and the wait is seen at the next.
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20));
            let _ = tokio::time::timeout(wait, run.released.notified()).await;
        }
        let unfinished = run.in_flight_count() as u64;
        let queue = run.queue.clone();
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::task::spawn_blocking(move || queue.shutdown(left)).await;
        // The acker sends what is left, then ends.
        drop(run.acks.lock().unwrap_or_else(|e| e.into_inner()).take());
        let _ = tokio::time::timeout(Duration::from_secs(5), acker).await;
        run.publish_stats().await;
        Ok(WorkerReport {
            acked: run.counters.acked(),
            dead_lettered: run.counters.dead_lettered(),
            unfinished,
        })
    }
}

fn field_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

impl Run {
    /// Entries being delivered here (read or claimed, not resolved yet).
    fn in_flight_count(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(HashSet::len)
            .sum()
    }

    /// The app streams, as the apps registered them.
    async fn streams(&self) -> Result<Vec<String>, RedisError> {
        let mut conn = self.conn.clone();
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.streams())
            .query_async(&mut conn)
            .await?;
        names.retain(|n| self.keys.app_of(n).is_some());
        names.sort();
        Ok(names)
    }

    /// Creates the group on `streams` where it is missing, from their first entry.
    async fn ensure_groups(&self, streams: &[String]) -> Result<(), RedisError> {
        let mut conn = self.conn.clone();
        for stream in streams {
            let created: Result<(), RedisError> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(&self.config.group)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            match created {
                Err(e) if e.code() != Some("BUSYGROUP") => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    async fn read_loop(self: Arc<Self>) {
        let mut streams: Vec<String> = Vec::new();
        let mut known: HashSet<String> = HashSet::new();
        let mut refreshed = Instant::now() - Duration::from_secs(3600);
        let mut next = 0usize;
        let mut empty_reads = 0usize;
        let mut failures = 0u32;
        loop {
            if refreshed.elapsed() >= Duration::from_secs(1) {
                match self.streams().await {
                    Ok(found) => {
                        let new: Vec<String> = found
                            .iter()
                            .filter(|s| !known.contains(*s))
                            .cloned()
                            .collect();
                        if let Err(e) = self.ensure_groups(&new).await {
                            tracing::warn!(error = %e, "ops-redis: creating consumer groups failed");
                        } else {
                            known.extend(new);
                        }
                        streams = found;
                        refreshed = Instant::now();
                    }
                    Err(e) => {
                        tracing::warn!(redis = %self.url, error = %e, "ops-redis: listing streams failed")
                    }
                }
            }
            let available = self.permits.available_permits();
            if streams.is_empty() || available == 0 {
                let _ = tokio::time::timeout(self.config.poll, self.released.notified()).await;
                continue;
            }
            let per_read = self.config.streams_per_read.min(streams.len());
            let start = next % streams.len();
            let chunk: Vec<&String> = streams.iter().cycle().skip(start).take(per_read).collect();
            next = start + per_read;
            let count = (available / chunk.len()).clamp(1, self.config.read_count);
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(&self.config.group)
                .arg(&self.config.consumer)
                .arg("COUNT")
                .arg(count)
                .arg("STREAMS")
                .arg(&chunk);
            for _ in &chunk {
                cmd.arg(">");
            }
            let mut conn = self.conn.clone();
            let reply: Result<Option<StreamReadReply>, RedisError> =
                cmd.query_async(&mut conn).await;
            let reply = match reply {
                Ok(reply) => {
                    failures = 0;
                    reply
                }
                Err(e) => {
                    if e.code() == Some("NOGROUP") {
                        // A stream was deleted and written again: its group is recreated.
                        known.clear();
                        refreshed = Instant::now() - Duration::from_secs(3600);
                    } else {
                        tracing::warn!(redis = %self.url, error = %e, "ops-redis: reading failed");
                    }
                    failures = failures.saturating_add(1);
                    let wait = Duration::from_millis(50 << failures.min(5));
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let mut got = 0usize;
            for key in reply.map(|r| r.keys).unwrap_or_default() {
                let stream: Arc<str> = Arc::from(key.key.as_str());
                for entry in key.ids {
                    got += 1;
                    self.counters.read.fetch_add(1, Relaxed);
                    Arc::clone(&self)
                        .dispatch(Arc::clone(&stream), entry, 1)
                        .await;
                }
            }
            if got == 0 {
                empty_reads += 1;
                // Every stream was read once and nothing came: wait a little.
                if empty_reads * per_read >= streams.len() {
                    empty_reads = 0;
                    let _ = tokio::time::timeout(self.config.poll, self.released.notified()).await;
                }
            } else {
                empty_reads = 0;
            }
        }
    }

    /// Hands one entry to the queue and acknowledges it once every provider resolved it.
    async fn dispatch(self: Arc<Self>, stream: Arc<str>, entry: StreamId, deliveries: u64) {
        let record = record::decode(|name| entry.map.get(name).and_then(field_bytes));
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let reason = format!("undecodable record: {e}");
                self.dead_letter(&stream, &entry, &reason, deliveries).await;
                return;
            }
        };
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if !in_flight
                .entry(Arc::clone(&stream))
                .or_default()
                .insert(entry.id.clone())
            {
                // Already being delivered here (claimed back from ourselves).
                return;
            }
        }
        // A claim may go past the limit by its count: no permit then.
        let permit = Arc::clone(&self.permits).try_acquire_owned().ok();
        let app = record.app.unwrap_or_default();
        let receipt = self
            .queue
            .for_app(app, None)
            .add_with_receipt(TraceTask::from_trace(record.trace));
        let key: EntryKey = (stream, entry.id);
        match receipt {
            Err(e) => {
                self.counters.refused.fetch_add(1, Relaxed);
                self.remember(&key, format!("the worker's queue refused it: {e}"));
                self.finish(&key);
                drop(permit);
                self.released.notify_waiters();
            }
            Ok(receipt) => {
                let run = Arc::clone(&self);
                tokio::spawn(async move {
                    match receipt.await {
                        Some(r) if !r.unroutable => {
                            run.counters
                                .delivered
                                .fetch_add(u64::from(r.delivered), Relaxed);
                            run.counters.failed.fetch_add(u64::from(r.failed), Relaxed);
                            if let Some(acks) = &*run.acks.lock().unwrap_or_else(|e| e.into_inner())
                            {
                                let _ = acks.send(key.clone());
                            }
                        }
                        Some(_) => {
                            run.counters.unroutable.fetch_add(1, Relaxed);
                            run.remember(&key, "routing its app to providers failed".into());
                        }
                        // The queue stopped first: another worker delivers it.
                        None => {}
                    }
                    run.finish(&key);
                    drop(permit);
                    run.released.notify_waiters();
                });
            }
        }
    }

    fn remember(&self, key: &EntryKey, reason: String) {
        let mut failures = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: reasons only help the dead-letter record.
        if failures.len() >= 100_000 {
            failures.clear();
        }
        failures.insert(key.clone(), reason);
    }

    fn finish(&self, key: &EntryKey) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ids) = in_flight.get_mut(&key.0) {
            ids.remove(&key.1);
            if ids.is_empty() {
                in_flight.remove(&key.0);
            }
        }
    }

    /// Moves an entry to the dead-letter stream with its reason, then acknowledges and
    /// deletes it.
    async fn dead_letter(&self, stream: &str, entry: &StreamId, reason: &str, deliveries: u64) {
        tracing::warn!(stream, id = %entry.id, reason, "ops-redis: entry dead-lettered");
        let mut pipe = redis::pipe();
        pipe.atomic();
        let cmd = pipe
            .cmd("XADD")
            .arg(self.keys.dead())
            .arg("MAXLEN")
            .arg("~")
            .arg(self.config.dead_max_len)
            .arg("*")
            .arg(crate::dead::STREAM_FIELD)
            .arg(stream)
            .arg(crate::dead::ID_FIELD)
            .arg(&entry.id)
            .arg(crate::dead::REASON_FIELD)
            .arg(reason)
            .arg(crate::dead::DELIVERIES_FIELD)
            .arg(deliveries);
        let mut fields: Vec<(&String, &Value)> = entry.map.iter().collect();
        fields.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in fields {
            if let Some(bytes) = field_bytes(value) {
                cmd.arg(format!("{}{name}", crate::dead::ORIGINAL_PREFIX))
                    .arg(bytes);
            }
        }
        cmd.ignore();
        pipe.cmd("XACK")
            .arg(stream)
            .arg(&self.config.group)
            .arg(&entry.id)
            .ignore();
        pipe.cmd("XDEL").arg(stream).arg(&entry.id).ignore();
        let mut conn = self.conn.clone();
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => {
                self.counters.dead_lettered.fetch_add(1, Relaxed);
            }
            // Left pending: the next claim tries again.
            Err(e) => tracing::warn!(error = %e, "ops-redis: dead-lettering failed"),
        }
    }

    /// Claims entries of stopped workers, refreshes our own, and publishes figures.
    async fn upkeep_loop(self: Arc<Self>) {
        let tick = (self.config.claim_idle / 3).max(Duration::from_millis(10));
        let mut published = Instant::now() - Duration::from_secs(60);
        loop {
            tokio::time::sleep(tick).await;
            if self.stopping.load(Relaxed) {
                return;
            }
            self.refresh_own().await;
            match self.streams().await {
                Ok(streams) => {
                    for stream in streams {
                        if let Err(e) = self.claim(&stream).await {
                            tracing::warn!(stream, error = %e, "ops-redis: claiming failed");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "ops-redis: listing streams failed"),
            }
            if published.elapsed() >= Duration::from_secs(1) {
                self.publish_stats().await;
                published = Instant::now();
            }
        }
    }

    /// Resets the idle time of the entries being delivered here, so slow deliveries (a
    /// provider retrying) are not claimed by other workers.
    async fn refresh_own(&self) {
        let held: Vec<(Arc<str>, Vec<String>)> = {
            let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            in_flight
                .iter()
                .map(|(s, ids)| (Arc::clone(s), ids.iter().cloned().collect()))
                .collect()
        };
        for (stream, ids) in held {
            for ids in ids.chunks(1_000) {
                let mut conn = self.conn.clone();
                let refreshed: Result<Vec<String>, RedisError> = redis::cmd("XCLAIM")
                    .arg(&*stream)
                    .arg(&self.config.group)
                    .arg(&self.config.consumer)
                    .arg(0)
                    .arg(ids)
                    .arg("JUSTID")
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = refreshed {
                    tracing::debug!(error = %e, "ops-redis: refreshing in-flight entries failed");
                }
            }
        }
    }

    /// Takes over `stream`'s entries idle longer than `claim_idle`; those delivered more
    /// than `max_deliveries` times go to the dead-letter stream.
    async fn claim(self: &Arc<Self>, stream: &str) -> Result<(), RedisError> {
        let mut conn = self.conn.clone();
        let idle = u64::try_from(self.config.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(stream)
            .arg(&self.config.group)
            .arg(&self.config.consumer)
            .arg(idle)
            .arg("0-0")
            .arg("COUNT")
            .arg(self.config.read_count)
            .query_async(&mut conn)
            .await?;
        if !reply.deleted_ids.is_empty() {
            // Deleted while pending (trimmed by the cap): nothing left to deliver.
            redis::cmd("XACK")
                .arg(stream)
                .arg(&self.config.group)
                .arg(&reply.deleted_ids)
                .query_async::<()>(&mut conn)
                .await?;
        }
        if reply.claimed.is_empty() {
            return Ok(());
        }
        let first = &reply.claimed[0].id;
        let last = &reply.claimed[reply.claimed.len() - 1].id;
        let pending: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(stream)
            .arg(&self.config.group)
            .arg(first)
            .arg(last)
            .arg(reply.claimed.len().max(1) * 4)
            .arg(&self.config.consumer)
            .query_async(&mut conn)
            .await?;
        let deliveries: HashMap<&str, u64> = pending
            .ids
            .iter()
            .map(|p| (p.id.as_str(), p.times_delivered as u64))
            .collect();
        let stream: Arc<str> = Arc::from(stream);
        for entry in reply.claimed {
            let n = deliveries.get(entry.id.as_str()).copied().unwrap_or(1);
            let key: EntryKey = (Arc::clone(&stream), entry.id.clone());
            let mine = self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&stream)
                .is_some_and(|ids| ids.contains(&entry.id));
            if mine {
                continue;
            }
            self.counters.claimed.fetch_add(1, Relaxed);
            if n > u64::from(self.config.max_deliveries) {
                let why = self
                    .last_failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key)
                    .unwrap_or_else(|| {
                        "never acknowledged: the workers holding it stopped or could not \
                         resolve it each time"
                            .to_owned()
                    });
                let reason = format!(
                    "delivered {n} times (more than {}): {why}",
                    self.config.max_deliveries
                );
                self.dead_letter(&stream, &entry, &reason, n).await;
            } else {
                Arc::clone(self)
                    .dispatch(Arc::clone(&stream), entry, n)
                    .await;
            }
        }
        Ok(())
    }

    /// Publishes this worker's figures (and its queue's, per provider) for `ops worker stats`.
    async fn publish_stats(&self) {
        let key = self.keys.worker(&self.config.consumer);
        let mut fields: Vec<(String, u64)> = self
            .counters
            .figures()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        let stats = self.queue.stats();
        fields.push(("retried".into(), stats.retried));
        fields.push(("in_flight".into(), self.in_flight_count() as u64));
        for p in &stats.providers {
            for (figure, value) in [
                ("exported", p.exported),
                ("failed", p.failed),
                ("retried", p.retried),
                ("dropped", p.dropped),
                ("pending", p.pending),
            ] {
                fields.push((format!("provider:{}:{figure}", p.name), value));
            }
        }
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&key).ignore();
        pipe.cmd("HSET").arg(&key).arg(&fields).ignore();
        pipe.cmd("EXPIRE").arg(&key).arg(60).ignore();
        pipe.cmd("SADD")
            .arg(self.keys.workers())
            .arg(&self.config.consumer)
            .ignore();
        let mut conn = self.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::debug!(error = %e, "ops-redis: publishing figures failed");
        }
    }
}

/// Acknowledges (and deletes) resolved entries, in pipelined batches per stream.
struct Acker {
    conn: ConnectionManager,
    group: String,
    counters: Arc<WorkerCounters>,
    last_failure: Failures,
}

impl Acker {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<EntryKey>) {
        let mut batch: Vec<EntryKey> = Vec::new();
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < 1_000 {
                match rx.try_recv() {
                    Ok(key) => batch.push(key),
                    Err(_) => break,
                }
            }
            self.ack(&mut batch).await;
        }
    }

    async fn ack(&self, batch: &mut Vec<EntryKey>) {
        let mut by_stream: HashMap<&str, Vec<&str>> = HashMap::new();
        for (stream, id) in batch.iter() {
            by_stream.entry(stream).or_default().push(id);
        }
        let mut pipe = redis::pipe();
        for (stream, ids) in &by_stream {
            pipe.cmd("XACK")
                .arg(*stream)
                .arg(&self.group)
                .arg(ids)
                .ignore();
            pipe.cmd("XDEL").arg(*stream).arg(ids).ignore();
        }
        // Retried a few times; an entry left unacknowledged is delivered again later
        // (a duplicate, never a loss).
        for attempt in 0..5u32 {
            let mut conn = self.conn.clone();
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => {
                    self.counters.acked.fetch_add(batch.len() as u64, Relaxed);
                    let mut failures = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
                    if !failures.is_empty() {
                        for key in batch.iter() {
                            failures.remove(key);
                        }
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "ops-redis: acknowledging failed");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones_and_settings_out_of_range_are_refused() {
        let d = WorkerConfig::default();
        assert_eq!(
            (d.read_count, d.max_in_flight, d.max_deliveries),
            (100, 1_000, 5)
        );
        assert_eq!(d.claim_idle, Duration::from_secs(60));
        assert_eq!(d.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(
            (d.prefix.as_str(), d.group.as_str()),
            ("ops", "ops-workers")
        );
        assert!(d.check().is_ok());
        let bad = WorkerConfig {
            max_in_flight: 0,
            ..WorkerConfig::default()
        };
        let e = bad.check().unwrap_err().to_string();
        assert!(
            e.contains("max_in_flight") && e.contains("1 to 1,000,000"),
            "{e}"
        );
        let bad = WorkerConfig {
            consumer: " ".into(),
            ..WorkerConfig::default()
        };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "consumer is blank: give it a name"
        );
    }
}
