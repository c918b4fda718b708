//! The producer's options, how it builds its queue and provider from them, and the baseline
//! config of every registered provider (for probes and the every-provider variants).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use ops_core::provider::{self, ConfigError, ProviderConfig, ProviderFactory};
use ops_core::spool::{FsyncPolicy, SpoolConfig};
use ops_core::{Observation, Provider, QueueConfig, QueueStats, Trace};
use ops_providers::otlp::generic::GenericOtlp;
use ops_providers::otlp::{Attributes, Dialect, OtlpProvider, TransportOptions};
use serde_json::{Value, json};

use crate::payload::Shape;

/// Which API the producer sends through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Api {
    /// `TraceTask::from_trace` and `add_trace_task`.
    Explicit,
    /// `#[traced]` functions, the root bound to the queue with `set_default`.
    Traced,
}

/// How a `#[traced]` function takes a hostile value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArgMode {
    /// `&Value`: serialized on the caller.
    Ref,
    /// `Value` by value: captured by clone.
    Owned,
}

/// What the producer does once it has sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum End {
    /// `shutdown(--shutdown-ms)`, print the stats, exit 0.
    Shutdown,
    /// Print `DONE_SENDING` and sleep until killed (the worker keeps delivering).
    Hang,
    /// Print the stats and exit 0 at once, without shutting the queue down.
    Exit,
}

/// The torture producer: a queue with one provider pointed at a loopback sink, optionally
/// spooled, that sends traces with ids derived from `--run` and an index and acknowledges
/// each accepted one on stdout (see `ops_torture_tests::child` for the lines).
#[derive(Debug, Clone, Parser)]
#[command(name = "torture-producer")]
pub struct ProducerOpts {
    /// The sink's base URL (`/v1/traces` is appended).
    #[arg(long)]
    pub endpoint: String,
    /// The provider: `otlp` (default) or any registered name, built from its baseline config.
    #[arg(long, default_value = "otlp")]
    pub provider: String,
    /// The run id traces' ids derive from.
    #[arg(long, default_value_t = 1)]
    pub run: u64,
    /// The first index.
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Traces per phase, comma-separated (`500` or `300,100`); the producer prints
    /// `WAIT <n>` and `STATS` between phases and waits for a line on stdin.
    #[arg(long, default_value = "100", value_delimiter = ',')]
    pub count: Vec<u64>,
    /// The payload shape.
    #[arg(long, default_value = "ordinary")]
    pub shape: Shape,
    /// The shape's size (depth, keys, bytes or tags); default: the figure.
    #[arg(long)]
    pub size: Option<usize>,
    /// The API.
    #[arg(long, value_enum, default_value_t = Api::Explicit)]
    pub api: Api,
    /// How `#[traced]` functions take a hostile value.
    #[arg(long, value_enum, default_value_t = ArgMode::Ref)]
    pub arg: ArgMode,
    /// Traced calls per `#[traced]` trace (the root and its children).
    #[arg(long, default_value_t = 4)]
    pub spans_per_trace: u64,
    /// Traces per second (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// The spool directory (the spool is off without it).
    #[arg(long)]
    pub spool_dir: Option<PathBuf>,
    /// The spool's disk cap in bytes.
    #[arg(long)]
    pub spool_max_bytes: Option<u64>,
    /// The spool's segment size in bytes.
    #[arg(long)]
    pub spool_segment_bytes: Option<u64>,
    /// `always`, `never` or an interval in ms.
    #[arg(long)]
    pub fsync: Option<String>,
    /// The queue's `max_bytes`.
    #[arg(long)]
    pub max_bytes: Option<usize>,
    /// The queue's `max_items`.
    #[arg(long)]
    pub max_items: Option<usize>,
    /// The batch size.
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    /// The export interval in ms.
    #[arg(long, default_value_t = 50)]
    pub interval_ms: u64,
    /// The queue's export timeout in ms.
    #[arg(long)]
    pub export_timeout_ms: Option<u64>,
    /// The `otlp` provider's body compression (`gzip` or `none`).
    #[arg(long, default_value = "gzip")]
    pub compression: String,
    /// The provider's HTTP request timeout in ms (the `otlp` provider has no config key for
    /// it yet: it is set through a dialect that wraps `GenericOtlp`).
    #[arg(long)]
    pub http_timeout_ms: Option<u64>,
    /// The circuit breaker's cooldown in ms.
    #[arg(long, default_value_t = 500)]
    pub breaker_cooldown_ms: u64,
    /// The longest backoff in ms.
    #[arg(long, default_value_t = 500)]
    pub max_backoff_ms: u64,
    /// The longest a batch is retried, in ms.
    #[arg(long)]
    pub max_retry_time_ms: Option<u64>,
    /// Send nothing: start (replaying the spool), then end.
    #[arg(long)]
    pub replay_only: bool,
    /// What to do after sending.
    #[arg(long, value_enum, default_value_t = End::Shutdown)]
    pub end: End,
    /// Shutdown's timeout in ms.
    #[arg(long, default_value_t = 20_000)]
    pub shutdown_ms: u64,
    /// Print `WAIT final` and wait for a line on stdin before the end.
    #[arg(long)]
    pub wait_before_end: bool,
    /// Time every call and print `LAT` figures instead of `ACK` lines.
    #[arg(long)]
    pub latency: bool,
    /// Build and drop one payload before the queue exists and print `HWM warmup`: the app's
    /// own peak, which the queue's memory is measured above.
    #[arg(long)]
    pub hwm_warmup: bool,
    /// Log what the library logs to stderr (`LOG` lines).
    #[arg(long)]
    pub log: bool,
}

impl ProducerOpts {
    /// The shape's size.
    pub fn size(&self) -> usize {
        self.size.unwrap_or(self.shape.default_size())
    }

    /// The queue settings these options give.
    pub fn queue_config(&self) -> Result<QueueConfig, String> {
        let mut c = QueueConfig::default();
        c.batch_size = self.batch_size;
        c.interval = Duration::from_millis(self.interval_ms);
        if let Some(b) = self.max_bytes {
            c.max_bytes = b;
        }
        if let Some(i) = self.max_items {
            c.max_items = i;
        }
        if let Some(t) = self.export_timeout_ms {
            c.export_timeout = Duration::from_millis(t);
        }
        c.breaker_cooldown = Duration::from_millis(self.breaker_cooldown_ms);
        c.max_backoff = Duration::from_millis(self.max_backoff_ms);
        c.initial_backoff = c.initial_backoff.min(c.max_backoff);
        if let Some(t) = self.max_retry_time_ms {
            c.max_retry_time = Duration::from_millis(t);
        }
        c.shutdown_timeout = Duration::from_millis(self.shutdown_ms);
        if let Some(dir) = &self.spool_dir {
            let mut s = SpoolConfig::new(dir);
            if let Some(m) = self.spool_max_bytes {
                s.max_bytes = m;
            }
            if let Some(m) = self.spool_segment_bytes {
                s.segment_bytes = m;
            }
            if let Some(f) = &self.fsync {
                s.fsync = match f.as_str() {
                    "always" => FsyncPolicy::Always,
                    "never" => FsyncPolicy::Never,
                    ms => FsyncPolicy::Interval(Duration::from_millis(
                        ms.parse().map_err(|_| format!("bad --fsync {ms:?}"))?,
                    )),
                };
            }
            c.spool = Some(s);
        }
        Ok(c)
    }

    /// The provider these options name.
    pub fn build_provider(&self) -> Result<Box<dyn Provider>, String> {
        if self.provider == "otlp" {
            let config = ProviderConfig::new("otlp")
                .with("endpoint", self.endpoint.clone())
                .with("compression", self.compression.clone());
            let factory = provider::find("otlp").map_err(|e| e.to_string())?;
            let mut validated = config.clone();
            (factory.validate)(&mut validated).map_err(|e| e.to_string())?;
            return match self.http_timeout_ms {
                None => factory.build(config).map_err(|e| e.to_string()),
                Some(ms) => {
                    let dialect = TimedOtlp {
                        inner: GenericOtlp::from_config(&validated).map_err(|e| e.to_string())?,
                        timeout: Duration::from_millis(ms),
                    };
                    Ok(Box::new(
                        OtlpProvider::new(dialect).map_err(|e| e.to_string())?,
                    ))
                }
            };
        }
        let factory = provider::find(&self.provider).map_err(|e| e.to_string())?;
        factory
            .build(baseline_config(factory, &self.endpoint))
            .map_err(|e| e.to_string())
    }
}

/// The generic OTLP dialect with another HTTP timeout. The `otlp` provider has no timeout
/// key or variable yet (issue 11 §3 asks for one); this is how the slow-backend experiment
/// sets one through the public API.
#[derive(Debug)]
struct TimedOtlp {
    inner: GenericOtlp,
    timeout: Duration,
}

impl Dialect for TimedOtlp {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }

    fn headers(&self) -> Vec<(String, String)> {
        self.inner.headers()
    }

    fn transport_options(&self) -> TransportOptions {
        let mut options = self.inner.transport_options();
        options.timeout = self.timeout;
        options.connect_timeout = options.connect_timeout.min(self.timeout);
        options
    }

    fn resource_attributes(&self, attrs: &mut Attributes) {
        self.inner.resource_attributes(attrs);
    }

    fn span_name(&self, trace: &Trace, observation: &Observation) -> String {
        self.inner.span_name(trace, observation)
    }

    fn span_kind(&self, trace: &Trace, observation: &Observation) -> SpanKind {
        self.inner.span_kind(trace, observation)
    }

    fn span_attributes(&self, trace: &Trace, observation: &Observation, attrs: &mut Attributes) {
        self.inner.span_attributes(trace, observation, attrs);
    }
}

/// Whether a config key holds a URL.
pub fn is_url_key(key: &str) -> bool {
    matches!(key, "endpoint" | "host" | "url" | "tracking_uri")
}

/// A config for `factory` that validates: URL keys point at `url`, required ids are numbers,
/// other required keys are placeholders, optional keys are left out. The env/config probes feed hostile values into
/// one key of it at a time.
pub fn baseline_config(factory: &ProviderFactory, url: &str) -> ProviderConfig {
    let mut config = ProviderConfig::new(factory.name);
    for field in factory.fields {
        let value = if field.name == "url" {
            // Opik's key is the API base, which ends with `/api/`.
            format!("{url}/api/")
        } else if is_url_key(field.name) {
            url.to_owned()
        } else if !field.required {
            continue;
        } else if field.name.ends_with("_id") {
            "1".to_owned()
        } else if field.secret {
            format!("torture-{}", field.name)
        } else {
            "torture".to_owned()
        };
        config.set(field.name, value);
    }
    if factory.name == "databricks" {
        // Databricks needs a token or a service principal, neither of which is required alone.
        config.set("personal_access_token", "dapi-torture");
    }
    config
}

/// Validates and builds `config` with its factory.
pub fn build(factory: &ProviderFactory, config: ProviderConfig) -> Result<(), ConfigError> {
    factory.build(config).map(|_| ())
}

/// `QueueStats` as JSON for a `STATS` line.
pub fn stats_json(stats: &QueueStats) -> Value {
    let dropped: serde_json::Map<String, Value> = stats
        .dropped
        .iter()
        .map(|(r, n)| (r.as_str().to_owned(), json!(n)))
        .collect();
    let providers: Vec<Value> = stats
        .providers
        .iter()
        .map(|p| {
            json!({
                "name": p.name, "exported": p.exported, "failed": p.failed,
                "retried": p.retried, "dropped": p.dropped, "pending": p.pending,
                "circuit_open": p.circuit_open, "last_error": p.last_error,
            })
        })
        .collect();
    let spool = stats.spool.map(|s| {
        json!({
            "written": s.written, "replayed": s.replayed, "torn_bytes": s.torn_bytes,
            "not_spooled": s.not_spooled, "segments_deleted": s.segments_deleted,
            "disk_bytes": s.disk_bytes, "corrupt_records": s.corrupt_records,
            "corrupt_bytes": s.corrupt_bytes, "unreadable_records": s.unreadable_records,
            "write_errors": s.write_errors, "waiting": s.waiting, "unresolved": s.unresolved,
        })
    });
    json!({
        "enqueued": stats.enqueued,
        "exported": stats.exported,
        "exported_observations": stats.exported_observations,
        "failed": stats.failed,
        "retried": stats.retried,
        "truncated": stats.truncated,
        "dropped_total": stats.dropped_total(),
        "dropped": dropped,
        "providers": providers,
        "spool": spool,
        "lost_observations": ops_core::context::lost_observations(),
        "held_bytes": stats.held_bytes,
    })
}

/// A number from a `STATS` JSON object (0 when absent), by a path such as `spool.written`.
pub fn stat(stats: &Value, path: &str) -> u64 {
    path.split('.')
        .try_fold(stats, |v, k| v.get(k))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}
