//! End to end: `#[traced]` through ops's `otlp` provider against the OpenTelemetry SDK through
//! opentelemetry-otlp, both OTLP over HTTP, protobuf, gzip, into the same loopback sink
//! (`peers-sink`, a process of its own that decodes and counts spans).
//!
//! Each round makes `traces` traces ([`TRACES`] in the bench) of 10 spans (a root and 9 children), each span with a
//! 1 KB input of English words (different in every span), then flushes and waits until the
//! sink has counted every span: the time and the producer process's CPU time
//! (`CLOCK_PROCESS_CPUTIME_ID`, user + system, as `getrusage` counts it) cover making,
//! batching, encoding, compressing and sending. The SDK's batch processor gets a queue large
//! enough for a round (its default of 2,048 spans would drop); ops runs with its defaults.
//! Rounds alternate between the two; a round that loses a span panics.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpu_time::ProcessTime;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Compression, Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use ops_core::provider::ProviderConfig;
use ops_core::{TraceQueueManager, traced};
use ops_providers::otlp::OtlpProvider;
use ops_providers::otlp::generic::GenericOtlp;

/// Traces per round in the bench.
pub const TRACES: usize = 2_000;
/// Spans per trace.
pub const SPANS: usize = 10;

/// The loopback sink, running as a child process.
#[derive(Debug)]
pub struct Sink {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
}

/// What the sink has counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// Spans decoded.
    pub spans: u64,
    /// Requests received.
    pub requests: u64,
    /// Bytes on the wire (request bodies as sent).
    pub bytes: u64,
    /// Requests whose body was not an OTLP protobuf.
    pub undecodable: u64,
}

impl Sink {
    /// Starts the sink binary at `path` and waits until it listens.
    pub fn start(path: &str) -> Sink {
        let mut child = Command::new(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the sink starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the sink prints its port");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the sink printed {line:?}, not `listening <port>`"));
        let stdin = child.stdin.take();
        Sink { child, stdin, port }
    }

    /// The sink's OTLP traces URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.port)
    }

    /// What the sink counted.
    pub fn counts(&self) -> SinkCounts {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("the sink answers");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout");
        write!(
            stream,
            "GET /count HTTP/1.1\r\nHost: sink\r\nConnection: close\r\n\r\n"
        )
        .expect("the sink reads");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("the sink answers");
        let body = response.rsplit("\r\n\r\n").next().unwrap_or("");
        let n: Vec<u64> = body
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        match n[..] {
            [spans, requests, bytes, undecodable] => SinkCounts {
                spans,
                requests,
                bytes,
                undecodable,
            },
            _ => panic!("the sink answered {response:?}"),
        }
    }

    /// Waits (at most 60 s) until the sink has counted `spans` spans; panics if it has not.
    fn wait_for(&self, spans: u64) -> SinkCounts {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let counts = self.counts();
            if counts.spans >= spans || Instant::now() > deadline {
                assert_eq!(
                    counts.spans, spans,
                    "the sink did not get every span: {counts:?}"
                );
                assert_eq!(counts.undecodable, 0, "{counts:?}");
                return counts;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// 1 KB of English words, different for each `seed`.
pub fn words(seed: u64) -> String {
    const WORDS: [&str; 32] = [
        "the",
        "model",
        "answered",
        "question",
        "about",
        "weather",
        "in",
        "Paris",
        "with",
        "a",
        "short",
        "summary",
        "of",
        "documents",
        "retrieved",
        "from",
        "index",
        "user",
        "asked",
        "for",
        "more",
        "detail",
        "on",
        "pricing",
        "and",
        "support",
        "hours",
        "assistant",
        "replied",
        "politely",
        "that",
        "tomorrow",
    ];
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = String::with_capacity(1100);
    while out.len() < 1024 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push_str(WORDS[(state >> 59) as usize]);
        out.push(' ');
    }
    out.truncate(1024);
    out
}

/// One trace through ops: a root with `inputs[0]` and a child for each other input.
pub fn ops_trace(inputs: &[String]) {
    ops_root(&inputs[0], &inputs[1..]);
}

#[traced(skip(children), capture_output = false)]
fn ops_root(input: &str, children: &[String]) {
    let _ = input;
    for c in children {
        ops_child(c);
    }
}

#[traced(capture_output = false)]
fn ops_child(input: &str) {
    std::hint::black_box(input);
}

/// One trace through the OpenTelemetry SDK, the same shape as [`ops_trace`]'s.
pub fn otel_trace(tracer: &opentelemetry_sdk::trace::SdkTracer, inputs: &[String]) {
    tracer.in_span("otel_root", |cx| {
        cx.span()
            .set_attribute(KeyValue::new("input.value", inputs[0].clone()));
        for input in &inputs[1..] {
            let mut span = tracer.start("otel_child");
            span.set_attribute(KeyValue::new("input.value", input.clone()));
            span.end();
        }
    });
}

/// One round's figures.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// Spans delivered per second of wall time.
    pub spans_per_sec: f64,
    /// Producer CPU time per span, in microseconds.
    pub cpu_us_per_span: f64,
    /// Bytes on the wire per span.
    pub bytes_per_span: f64,
}

fn measure(sink: &Sink, spans: u64, run: impl FnOnce()) -> Round {
    let before = sink.counts();
    let cpu = ProcessTime::now();
    let start = Instant::now();
    run();
    let after = sink.wait_for(before.spans + spans);
    let wall = start.elapsed();
    let cpu = cpu.elapsed();
    Round {
        spans_per_sec: spans as f64 / wall.as_secs_f64(),
        cpu_us_per_span: cpu.as_secs_f64() * 1e6 / spans as f64,
        bytes_per_span: (after.bytes - before.bytes) as f64 / spans as f64,
    }
}

/// Runs `rounds` rounds of `traces` traces on each side (alternating) against the sink at
/// `sink_bin`; returns (ops rounds, opentelemetry-otlp rounds).
pub fn run(sink_bin: &str, rounds: usize, traces: usize) -> (Vec<Round>, Vec<Round>) {
    run_sides(sink_bin, rounds, traces, Sides::Both)
}

/// Which sides [`run_sides`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sides {
    /// Both, alternating (the comparison).
    Both,
    /// ops alone (to profile it).
    Ops,
    /// opentelemetry-otlp alone (to profile it).
    Otel,
}

/// [`run`], measuring only `sides` (the other side's list is empty).
pub fn run_sides(
    sink_bin: &str,
    rounds: usize,
    traces: usize,
    sides: Sides,
) -> (Vec<Round>, Vec<Round>) {
    let sink = Sink::start(sink_bin);
    let config = ProviderConfig::new("otlp")
        .with("endpoint", sink.url())
        .with("compression", "gzip");
    let provider =
        OtlpProvider::new(GenericOtlp::from_config(&config).expect("a valid otlp config"))
            .expect("the otlp provider builds");
    let queue = TraceQueueManager::builder()
        .provider(provider)
        .build()
        .expect("the queue builds");
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_compression(Compression::Gzip)
        .with_endpoint(sink.url())
        .build()
        .expect("the OTLP exporter builds");
    let bsp = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(4 * traces * SPANS)
                .build(),
        )
        .build();
    let otel = SdkTracerProvider::builder()
        .with_span_processor(bsp)
        .build();
    let tracer = otel.tracer("peers");

    let spans = (traces * SPANS) as u64;
    let inputs = |round: usize| -> Vec<Vec<String>> {
        (0..traces)
            .map(|t| {
                (0..SPANS)
                    .map(|s| words((round * traces * SPANS + t * SPANS + s) as u64))
                    .collect()
            })
            .collect()
    };
    let (mut ops, mut peer) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let traces = inputs(round);
        if sides != Sides::Otel {
            let _guard = ops_core::set_default(queue.clone());
            ops.push(measure(&sink, spans, || {
                for t in &traces {
                    ops_trace(t);
                }
                let report = queue.flush(Duration::from_secs(60));
                assert!(!report.timed_out, "{report:?}");
            }));
            drop(_guard);
        }
        if sides != Sides::Ops {
            peer.push(measure(&sink, spans, || {
                for t in &traces {
                    otel_trace(&tracer, t);
                }
                // Its 5 s timeout can pass on a loaded machine while the export goes on; the
                // sink's count decides whether everything arrived.
                let _ = otel.force_flush();
            }));
        }
    }
    let stats = queue.stats();
    assert_eq!(stats.dropped_total(), 0, "ops dropped: {stats:?}");
    assert_eq!(stats.failed, 0, "ops failed to deliver: {stats:?}");
    let _ = otel.shutdown();
    (ops, peer)
}

/// The median, minimum and maximum of `f` over `rounds`.
pub fn spread(rounds: &[Round], f: impl Fn(&Round) -> f64) -> (f64, f64, f64) {
    let mut v: Vec<f64> = rounds.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// The end-to-end table: median [min max] of spans/s and CPU µs per span, and bytes on the
/// wire per span, for each side that ran.
pub fn table(rounds: usize, traces: usize, ops: &[Round], peer: &[Round]) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "end_to_end: {traces} traces of {SPANS} spans with 1 KB inputs, OTLP HTTP protobuf + gzip, {rounds} rounds each, median [min max]\n"
    );
    for (name, rounds) in [("ops", ops), ("opentelemetry-otlp (BSP)", peer)] {
        if rounds.is_empty() {
            continue;
        }
        let (m, lo, hi) = spread(rounds, |r| r.spans_per_sec);
        let (cm, clo, chi) = spread(rounds, |r| r.cpu_us_per_span);
        let (bm, _, _) = spread(rounds, |r| r.bytes_per_span);
        let _ = writeln!(
            out,
            "  {name:<26} {m:>9.0} spans/s [{lo:.0} {hi:.0}]   CPU {cm:.2} µs/span [{clo:.2} {chi:.2}]   {bm:.0} B/span on the wire"
        );
    }
    out
}

/// Keeps every batch it is given (to encode them again outside the queue).
#[derive(Debug, Default)]
struct Collect(Arc<Mutex<Vec<Vec<Arc<ops_core::Trace>>>>>);

#[ops_core::async_trait]
impl ops_core::Provider for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    async fn export(&mut self, batch: &[Arc<ops_core::Trace>]) -> ops_core::ExportOutcome {
        self.0.lock().expect("collect lock").push(batch.to_vec());
        ops_core::ExportOutcome::Delivered
    }
    async fn api_check(&self) -> Result<(), ops_core::ExportError> {
        Ok(())
    }
}

/// The batches ops's queue (default settings) hands its provider for `traces` of the
/// end-to-end traces.
pub fn ops_batches(traces: usize) -> Vec<Vec<Arc<ops_core::Trace>>> {
    let batches = Arc::new(Mutex::new(Vec::new()));
    let queue = TraceQueueManager::builder()
        .provider(Collect(Arc::clone(&batches)))
        .build()
        .expect("the queue builds");
    {
        let _guard = ops_core::set_default(queue.clone());
        for t in 0..traces {
            let inputs: Vec<String> = (0..SPANS).map(|s| words((t * SPANS + s) as u64)).collect();
            ops_trace(&inputs);
        }
    }
    let report = queue.flush(Duration::from_secs(60));
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(queue.stats().dropped_total(), 0);
    let mut kept = batches.lock().expect("collect lock");
    std::mem::take(&mut *kept)
}

/// The `otlp` provider the end-to-end bench uses, sending to `url`.
pub fn ops_provider(url: &str) -> OtlpProvider<GenericOtlp> {
    let config = ProviderConfig::new("otlp")
        .with("endpoint", url)
        .with("compression", "gzip");
    OtlpProvider::new(GenericOtlp::from_config(&config).expect("a valid otlp config"))
        .expect("the otlp provider builds")
}

/// For each gzip level: bytes per span and compression CPU time per span of ops's request bodies
/// for `traces` end-to-end traces (the protobuf as the `otlp` provider encodes it).
pub fn gzip_levels(traces: usize, levels: &[u32]) -> String {
    use prost::Message as _;
    use std::fmt::Write as _;
    let provider = ops_provider("http://127.0.0.1:9/v1/traces");
    let bodies: Vec<Vec<u8>> = ops_batches(traces)
        .iter()
        .map(|b| provider.encode(b).encode_to_vec())
        .collect();
    let spans = (traces * SPANS) as f64;
    let plain: usize = bodies.iter().map(Vec::len).sum();
    let mut out = format!(
        "gzip levels, {traces} traces, {} requests, {:.0} B/span before compression\n",
        bodies.len(),
        plain as f64 / spans
    );
    for &level in levels {
        // This thread's CPU time: preemption on a loaded machine does not count.
        let start = cpu_time::ThreadTime::now();
        let mut bytes = 0;
        for body in &bodies {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::new(level),
            );
            gz.write_all(body).expect("a Vec takes it");
            bytes += gz.finish().expect("a Vec takes it").len();
        }
        let took = start.elapsed();
        let _ = writeln!(
            out,
            "  level {level}: {:.1} B/span, {:.2} µs/span",
            bytes as f64 / spans,
            took.as_secs_f64() * 1e6 / spans
        );
    }
    out
}

/// Encodes (and gzips, as the provider does) `batches` `times` times: the export's CPU work
/// without the network, for callgrind (`--toggle-collect='*encode_loop*'`) and perf. Returns
/// the bytes made.
pub fn encode_only(batches: &[Vec<Arc<ops_core::Trace>>], times: usize) -> usize {
    let provider = ops_provider("http://127.0.0.1:9/v1/traces");
    encode_loop(&provider, batches, times)
}

#[inline(never)]
fn encode_loop(
    provider: &OtlpProvider<GenericOtlp>,
    batches: &[Vec<Arc<ops_core::Trace>>],
    times: usize,
) -> usize {
    use ops_providers::otlp::encode;
    let dialect = provider.dialect();
    let mut buf = Vec::new();
    let mut bytes = 0;
    for _ in 0..times {
        for b in batches {
            let (resource, scope) = (encode::resource(dialect), encode::scope(dialect));
            let spans = encode::encode_spans(dialect, b);
            encode::encode_protobuf_into(
                &resource,
                &scope,
                spans.iter().map(|s| &s.span),
                &mut buf,
            );
            let (zipped, _) = ops_providers::otlp::Compression::Gzip.apply_to(&buf);
            bytes += zipped.len();
        }
    }
    bytes
}
