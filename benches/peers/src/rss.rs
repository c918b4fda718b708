//! Peak memory with the backend down: ops's `otlp` provider (default queue) beside
//! opentelemetry-otlp with its batch span processor (default settings), each in a process of its
//! own (`peers-rss`), making the end-to-end bench's traces (10 spans, 1 KB inputs) at a fixed
//! rate for a fixed time into an OTLP endpoint that is down.
//!
//! Two ways of being down ([`Down`]): a port that refuses connections (every export fails at
//! once), and a server that accepts connections and never answers (every export waits for its
//! timeout, so the queues fill). At the end the process reads its own peak resident set
//! (`VmHWM` in `/proc/self/status`) and counts what was lost:
//! - ops: its queue's stats (dropped by reason, failed, still held);
//! - the SDK: its batch processor's drop count is private, so a wrapper around the exporter
//!   counts the spans handed to it; made − handed is what was dropped or is still queued (at
//!   most the queue's 2,048 spans).

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Compression, Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use ops_core::TraceQueueManager;
use ops_core::provider::ProviderConfig;
use ops_providers::otlp::OtlpProvider;
use ops_providers::otlp::generic::GenericOtlp;

use crate::e2e::{SPANS, ops_trace, otel_trace, words};

/// How the backend is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// Nothing listens: connections are refused.
    Refuse,
    /// A server accepts connections and never reads or answers.
    Hang,
}

/// An OTLP endpoint that is down in the given way, on loopback. Kept alive while it lives.
#[derive(Debug)]
pub struct DownEndpoint {
    url: String,
    _listener: Option<TcpListener>,
}

impl DownEndpoint {
    /// Starts one.
    pub fn start(down: Down) -> DownEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("an address").port();
        let url = format!("http://127.0.0.1:{port}/v1/traces");
        match down {
            // The port was just free; with the listener closed nothing listens on it.
            Down::Refuse => DownEndpoint {
                url,
                _listener: None,
            },
            Down::Hang => {
                let accept = listener.try_clone().expect("a listener handle");
                std::thread::spawn(move || {
                    // Connections are kept open and never read.
                    let mut open: Vec<TcpStream> = Vec::new();
                    for stream in accept.incoming().flatten() {
                        open.push(stream);
                    }
                });
                DownEndpoint {
                    url,
                    _listener: Some(listener),
                }
            }
        }
    }

    /// The traces URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// The peak resident set of this process, in KiB (`VmHWM`), or 0 where `/proc` has none.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// The resident set of this process now, in KiB (`VmRSS`).
pub fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

fn status_kib(field: &str) -> u64 {
    let mut text = String::new();
    if std::fs::File::open("/proc/self/status")
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return 0;
    }
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `ops` or `otel`.
    pub side: &'static str,
    /// Resident set before the first trace, KiB.
    pub rss_before_kib: u64,
    /// Peak resident set, KiB.
    pub peak_kib: u64,
    /// Spans made.
    pub made: u64,
    /// What was lost and how it was counted, in words.
    pub accounting: String,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: peak RSS {:.1} MiB (before the first trace {:.1} MiB), {} spans made; {}",
            self.side,
            self.peak_kib as f64 / 1024.0,
            self.rss_before_kib as f64 / 1024.0,
            self.made,
            self.accounting
        )
    }
}

/// Makes `rate` traces a second for `seconds` through `trace`; returns the spans made.
fn produce(seconds: f64, rate: u64, mut trace: impl FnMut(&[String])) -> u64 {
    let start = Instant::now();
    let total = (seconds * rate as f64) as u64;
    let mut made = 0;
    for i in 0..total {
        let inputs: Vec<String> = (0..SPANS)
            .map(|s| words(i * SPANS as u64 + s as u64))
            .collect();
        trace(&inputs);
        made += SPANS as u64;
        // Keep to the rate: sleep while ahead of it.
        let due = Duration::from_secs_f64((i + 1) as f64 / rate as f64);
        if let Some(ahead) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
    made
}

/// ops's `otlp` provider, `rate` traces a second for `seconds`, into `endpoint`, with the
/// default queue (64 MiB), or a byte budget of `max_bytes` (each of these traces counts about
/// 26 KB against it, so the SDK's 2,048 spans are about 5.3 MB).
pub fn ops(endpoint: &DownEndpoint, seconds: f64, rate: u64, max_bytes: Option<usize>) -> Report {
    let config = ProviderConfig::new("otlp")
        .with("endpoint", endpoint.url())
        .with("compression", "gzip");
    let provider =
        OtlpProvider::new(GenericOtlp::from_config(&config).expect("a valid otlp config"))
            .expect("the otlp provider builds");
    let mut builder = TraceQueueManager::builder().provider(provider);
    if let Some(bytes) = max_bytes {
        builder = builder.max_queue(65_536, bytes);
    }
    let queue = builder.build().expect("the queue builds");
    let rss_before_kib = rss_kib();
    let made = {
        let _guard = ops_core::set_default(queue.clone());
        produce(seconds, rate, ops_trace)
    };
    let peak_kib = peak_rss_kib();
    let stats = queue.stats();
    let dropped: Vec<String> = stats
        .dropped
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(reason, n)| format!("{n} {reason:?}"))
        .collect();
    let accounting = format!(
        "queue budget {} bytes; traces (of 10 spans): {} enqueued, {} exported, dropped {} ({}), {} failed, {} retried, {} bytes still held",
        max_bytes.map_or("the default 64 MiB of".to_owned(), |n| n.to_string()),
        stats.enqueued,
        stats.exported,
        stats.dropped_total(),
        if dropped.is_empty() {
            "none".to_owned()
        } else {
            dropped.join(", ")
        },
        stats.failed,
        stats.retried,
        stats.held_bytes
    );
    Report {
        side: "ops",
        rss_before_kib,
        peak_kib,
        made,
        accounting,
    }
}

/// Counts the spans the batch processor hands to the exporter it wraps.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    handed: Arc<AtomicU64>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.handed.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.inner.export(batch).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// opentelemetry-otlp (HTTP protobuf, gzip) behind the SDK's batch span processor with its
/// defaults, `rate` traces a second for `seconds`, into `endpoint`.
pub fn otel(endpoint: &DownEndpoint, seconds: f64, rate: u64) -> Report {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_compression(Compression::Gzip)
        .with_endpoint(endpoint.url())
        .build()
        .expect("the OTLP exporter builds");
    let handed = Arc::new(AtomicU64::new(0));
    let exporter = Counted {
        inner: exporter,
        handed: Arc::clone(&handed),
    };
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .build();
    let tracer = provider.tracer("peers");
    let rss_before_kib = rss_kib();
    let made = produce(seconds, rate, |inputs| otel_trace(&tracer, inputs));
    let peak_kib = peak_rss_kib();
    let handed = handed.load(Ordering::Relaxed);
    let accounting = format!(
        "spans handed to the exporter (every export failed): {handed}; not handed: {} (dropped as queue-full, or still queued: at most the queue's 2,048; the SDK keeps its drop count private)",
        made.saturating_sub(handed)
    );
    Report {
        side: "otel",
        rss_before_kib,
        peak_kib,
        made,
        accounting,
    }
}
