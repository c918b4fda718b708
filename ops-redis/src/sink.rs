//! The app side: a [`Provider`] that writes each trace to its app's stream, so the queue's
//! lanes (batching, retries, the circuit breaker, the spool) carry it to Redis exactly as they
//! carry traces to a platform. The caller's path is the queue's: `add_trace_task` never
//! blocks and never does I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use ops_core::provider::redact_url;
use ops_core::{ExportError, ExportOutcome, Provider, Trace, TraceQueueBuilder};
use redis::aio::ConnectionManager;

use crate::keys::Keys;
use crate::record;

/// The environment variable naming the Redis the app's traces go to
/// ([`crate::builder_from_env`]).
pub const REDIS_URL_ENV: &str = "OPS_TRACE_REDIS_URL";
/// The environment variable naming the key prefix ([`crate::builder_from_env`]; default
/// `ops`); workers read the same prefix (`ops worker --prefix`, which reads it too).
pub const REDIS_PREFIX_ENV: &str = "OPS_TRACE_REDIS_PREFIX";
/// The name the sink has among the queue's providers (in its stats and errors).
pub const SINK_NAME: &str = "redis";
/// Entries each app stream keeps at most unless told otherwise (`XADD MAXLEN ~`).
pub const DEFAULT_MAX_LEN: u64 = 1_000_000;

/// A problem setting up the Redis destination.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The URL is not a Redis URL.
    #[error(
        "{url:?} is not a Redis URL ({reason}): use redis://[:password@]host[:port][/db] or \
         rediss:// for TLS"
    )]
    BadUrl {
        /// The URL, with any password removed.
        url: String,
        /// What the client said.
        reason: String,
    },
    /// A setting is out of its range.
    #[error("{setting} = {value} is out of range: {expected}")]
    OutOfRange {
        /// The setting.
        setting: &'static str,
        /// Its value.
        value: u64,
        /// The allowed range.
        expected: &'static str,
    },
    /// A name (prefix, group, consumer) is blank.
    #[error("{setting} is blank: give it a name")]
    Blank {
        /// The setting.
        setting: &'static str,
    },
    /// The queue could not be set up from the environment.
    #[error(transparent)]
    Queue(#[from] ops_core::QueueError),
}

/// Opens a client for `url`, with an error that names the URL without its password.
pub(crate) fn client(url: &str) -> Result<redis::Client, SetupError> {
    redis::Client::open(url.trim()).map_err(|e| SetupError::BadUrl {
        url: redact_url(url),
        reason: e.to_string().replace(url.trim(), &redact_url(url)),
    })
}

/// What the sink has written and what the streams' caps cut, shared with whoever holds a
/// [`RedisSink::stats`] handle.
#[derive(Debug, Default)]
pub struct SinkStats {
    written: AtomicU64,
    trimmed: AtomicU64,
    unencodable: AtomicU64,
}

impl SinkStats {
    /// Traces written to a stream.
    pub fn written(&self) -> u64 {
        self.written.load(Relaxed)
    }

    /// Entries the streams' `MAXLEN ~` caps removed while writing: a stream was full, so
    /// its oldest traces (not yet delivered: workers delete what they acknowledge) were
    /// dropped. Add workers, or raise the cap.
    pub fn trimmed(&self) -> u64 {
        self.trimmed.load(Relaxed)
    }

    /// Traces that could not be written as JSON (dropped; never expected).
    pub fn unencodable(&self) -> u64 {
        self.unencodable.load(Relaxed)
    }
}

/// The Redis destination: a provider that `XADD`s each trace to its app's stream
/// (`{prefix}:stream:{app}`, see [`crate::keys`]), in one pipelined `MULTI`/`EXEC` per batch.
pub struct RedisSink {
    client: redis::Client,
    url: String,
    conn: Option<ConnectionManager>,
    keys: Keys,
    max_len: u64,
    timeout: Duration,
    stats: Arc<SinkStats>,
}

impl fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSink")
            .field("url", &redact_url(&self.url))
            .field("keys", &self.keys)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl RedisSink {
    /// A sink writing to the Redis at `url`, under the default prefix (`ops`). Nothing is
    /// connected until the first batch: an app starts while Redis is down.
    pub fn new(url: &str) -> Result<Self, SetupError> {
        Ok(Self {
            client: client(url)?,
            url: url.trim().to_owned(),
            conn: None,
            keys: Keys::default(),
            max_len: DEFAULT_MAX_LEN,
            timeout: Duration::from_secs(5),
            stats: Arc::default(),
        })
    }

    /// Writes under `prefix` instead of `ops` (workers must read the same prefix).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.keys = Keys::new(prefix);
        self
    }

    /// Caps each app stream at about `max_len` entries (default 1,000,000; 1 to 2^62); what
    /// the cap cuts is counted ([`SinkStats::trimmed`]).
    pub fn max_len(mut self, max_len: u64) -> Result<Self, SetupError> {
        if !(1..=1 << 62).contains(&max_len) {
            return Err(SetupError::OutOfRange {
                setting: "max_len",
                value: max_len,
                expected: "1 to 2^62 entries",
            });
        }
        self.max_len = max_len;
        Ok(self)
    }

    /// The sink's counters, to read while the queue owns the sink.
    pub fn stats(&self) -> Arc<SinkStats> {
        Arc::clone(&self.stats)
    }

    fn error(&self, message: impl fmt::Display) -> ExportError {
        ExportError::new(
            SINK_NAME,
            format!("{}: {message}", redact_url(&self.url)).replace(&self.url, "<redis>"),
        )
    }

    fn connection(&mut self) -> Result<ConnectionManager, ExportError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| self.error(e))?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }
}

#[ops_core::async_trait]
impl Provider for RedisSink {
    fn name(&self) -> &str {
        SINK_NAME
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        // Entries per stream, in batch order.
        let mut streams: BTreeMap<String, Vec<[(&'static str, Vec<u8>); 3]>> = BTreeMap::new();
        for trace in batch {
            let app = trace.attributes.app_id.as_deref();
            match record::encode(app, trace) {
                Ok(fields) => streams
                    .entry(self.keys.stream(app.unwrap_or_default()))
                    .or_default()
                    .push(fields),
                Err(e) => {
                    tracing::warn!(trace_id = %trace.id, error = %e, "ops-redis: trace dropped");
                    self.stats.unencodable.fetch_add(1, Relaxed);
                }
            }
        }
        if streams.is_empty() {
            return ExportOutcome::Delivered;
        }
        let mut conn = match self.connection() {
            Ok(conn) => conn,
            Err(e) => return ExportOutcome::retry(e),
        };
        // Atomic, so the lengths before and after each stream's writes tell exactly what
        // its cap cut.
        let mut pipe = redis::pipe();
        pipe.atomic();
        let names: Vec<&String> = streams.keys().collect();
        pipe.cmd("SADD")
            .arg(self.keys.streams())
            .arg(&names)
            .ignore();
        for (stream, entries) in &streams {
            pipe.cmd("XLEN").arg(stream);
            for fields in entries {
                let cmd = pipe
                    .cmd("XADD")
                    .arg(stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(self.max_len)
                    .arg("*");
                for (name, value) in fields {
                    cmd.arg(*name).arg(value.as_slice());
                }
                cmd.ignore();
            }
            pipe.cmd("XLEN").arg(stream);
        }
        let lengths: Vec<u64> =
            match tokio::time::timeout(self.timeout, pipe.query_async(&mut conn)).await {
                Ok(Ok(lengths)) => lengths,
                Ok(Err(e)) => return ExportOutcome::retry(self.error(e)),
                Err(_) => {
                    return ExportOutcome::retry(
                        self.error(format!("no answer within {:?}", self.timeout)),
                    );
                }
            };
        let mut written = 0u64;
        let mut trimmed = 0u64;
        for ((_, entries), pair) in streams.iter().zip(lengths.chunks(2)) {
            let added = entries.len() as u64;
            written += added;
            if let [before, after] = pair {
                trimmed += (before + added).saturating_sub(*after);
            }
        }
        self.stats.written.fetch_add(written, Relaxed);
        if trimmed > 0 {
            self.stats.trimmed.fetch_add(trimmed, Relaxed);
            tracing::warn!(
                trimmed,
                max_len = self.max_len,
                "ops-redis: streams at their cap dropped their oldest undelivered traces (add workers or raise max_len)"
            );
        }
        ExportOutcome::Delivered
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        let mut conn = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| self.error(e))?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }
}

/// Adds the Redis destination to a queue builder: `TraceQueueManager::builder().redis(url)?`.
pub trait RedisQueueExt: Sized {
    /// Sends every trace to the Redis at `url`, under the default prefix; workers
    /// (`ops worker`) deliver them to the app's providers.
    fn redis(self, url: &str) -> Result<Self, SetupError>;

    /// Sends every trace through `sink` (set up with its prefix and cap).
    fn redis_sink(self, sink: RedisSink) -> Self;
}

impl RedisQueueExt for TraceQueueBuilder {
    fn redis(self, url: &str) -> Result<Self, SetupError> {
        Ok(self.redis_sink(RedisSink::new(url)?))
    }

    fn redis_sink(self, sink: RedisSink) -> Self {
        self.provider(sink)
    }
}

/// The queue builder from the environment: `ops_core::builder_from_env`'s settings (spool,
/// batching), sending to the Redis `OPS_TRACE_REDIS_URL` names, under the prefix
/// `OPS_TRACE_REDIS_PREFIX` names (default `ops`). Its providers
/// (`OPS_TRACE_PROVIDER`) are added only when that variable is set: by default the app
/// delivers through the workers alone. Without `OPS_TRACE_REDIS_URL`, it is
/// `ops_core::builder_from_env`.
pub fn builder_from_env() -> Result<TraceQueueBuilder, SetupError> {
    let url = ops_core::env::non_blank(REDIS_URL_ENV).map_err(ops_core::QueueError::from)?;
    let Some(url) = url else {
        return Ok(ops_core::builder_from_env()?);
    };
    let mut sink = RedisSink::new(&url)?;
    if let Some(prefix) =
        ops_core::env::non_blank(REDIS_PREFIX_ENV).map_err(ops_core::QueueError::from)?
    {
        sink = sink.prefix(prefix);
    }
    let builder = if std::env::var_os(ops_core::PROVIDER_ENV).is_some() {
        ops_core::builder_from_env()?
    } else {
        let mut builder = ops_core::TraceQueueManager::builder();
        if let Some(spool) =
            ops_core::spool::SpoolConfig::from_env().map_err(ops_core::QueueError::from)?
        {
            builder = builder.spool(spool);
        }
        builder
    };
    Ok(builder.redis_sink(sink))
}
