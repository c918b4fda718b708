//! A loopback OTLP/HTTP receiver that counts, per span id and per trace id, how often it
//! received each, so an experiment can compute what was delivered, duplicated and lost.
//!
//! Unlike `ops-testkit`'s `FakeServer`, it can be switched while it runs: up, down (the
//! listener is closed and open connections are cut, so clients get "connection refused"), an
//! error status, slow answers, and "poisoned" traces that get their own answer. Bodies are
//! decoded as sent (gzip or not) with `prost`; a body that is not an OTLP protobuf is counted
//! as undecodable.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::sync::watch;

/// How the sink answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 at once.
    Up,
    /// Down: nothing listens on the port and open connections are closed.
    Refuse,
    /// This status at once (the body is still read and counted).
    Status(u16),
    /// 200 after this delay (the body is counted when it arrives).
    Delay(Duration),
}

/// What a request that carries a poisoned trace gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// This status at once.
    Status(u16),
    /// 200 after this delay.
    Delay(Duration),
}

/// Traces whose requests get a fixed answer, whatever the mode.
#[derive(Debug, Clone)]
pub struct Poison {
    /// The trace ids (as [`crate::ids::trace_key`] gives them).
    pub traces: HashSet<u128>,
    /// The answer to any request carrying one of them.
    pub answer: Answer,
}

/// What the sink saw of one trace.
#[derive(Debug, Clone, Copy)]
pub struct TraceSeen {
    /// Requests that carried any of its spans.
    pub requests: u32,
    /// Its spans received, over all requests.
    pub spans: u32,
    /// When it first arrived.
    pub first_seen: Instant,
    /// When a request carrying it was first answered 2xx at once: the client certainly saw
    /// it delivered. Delayed answers do not count (the client may have timed out).
    pub delivered_at: Option<Instant>,
}

/// Everything the sink received.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Requests whose body was read.
    pub requests: u64,
    /// Requests whose body was not an OTLP protobuf.
    pub undecodable: u64,
    /// Body bytes as sent.
    pub bytes: u64,
    /// Answers sent after a delay.
    pub late_answers: u64,
    /// Receipts per span, keyed by trace id and span id (a span id is unique within its
    /// trace in OTLP, not across traces).
    pub spans: HashMap<(u128, u64), u32>,
    /// Per trace id.
    pub traces: HashMap<u128, TraceSeen>,
}

impl Counts {
    /// Trace ids received at least once.
    pub fn received(&self) -> HashSet<u128> {
        self.traces.keys().copied().collect()
    }

    /// Span receipts beyond the first, summed over span ids.
    pub fn duplicate_spans(&self) -> u64 {
        self.spans
            .values()
            .map(|n| u64::from(n.saturating_sub(1)))
            .sum()
    }

    /// Requests carrying a trace beyond the first, summed over trace ids: how many times whole
    /// traces were sent again (each trace here fits one request).
    pub fn duplicate_traces(&self) -> u64 {
        self.traces
            .values()
            .map(|t| u64::from(t.requests.saturating_sub(1)))
            .sum()
    }

    /// Traces in `ids` received more than once.
    pub fn duplicated_among(&self, ids: &HashSet<u128>) -> u64 {
        ids.iter()
            .filter_map(|id| self.traces.get(id))
            .map(|t| u64::from(t.requests.saturating_sub(1)))
            .sum()
    }
}

struct State {
    counts: Mutex<Counts>,
    poison: Mutex<Option<Poison>>,
    mode: watch::Receiver<Mode>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("mode", &*self.mode.borrow())
            .finish_non_exhaustive()
    }
}

/// The running sink. Dropping it stops it.
#[derive(Debug)]
pub struct Sink {
    addr: SocketAddr,
    state: Arc<State>,
    mode: watch::Sender<Mode>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Sink {
    /// Starts a sink on a free loopback port in `mode`.
    pub fn start(mode: Mode) -> Sink {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port");
        let (tx, rx) = watch::channel(mode);
        let state = Arc::new(State {
            counts: Mutex::new(Counts::default()),
            poison: Mutex::new(None),
            mode: rx.clone(),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("torture-sink")
            .enable_all()
            .build()
            .expect("the sink's runtime");
        runtime.spawn(serve(addr, Arc::clone(&state), rx));
        let sink = Sink {
            addr,
            state,
            mode: tx,
            runtime: Some(runtime),
        };
        if mode != Mode::Refuse {
            sink.wait_listening(true);
        }
        sink
    }

    /// `http://127.0.0.1:<port>`; the `otlp` provider appends `/v1/traces`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches how it answers. Switching to [`Mode::Refuse`] closes the port and every open
    /// connection before it returns; switching away from it opens the port again.
    pub fn set_mode(&self, mode: Mode) {
        let _ = self.mode.send(mode);
        self.wait_listening(mode != Mode::Refuse);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    fn wait_listening(&self, listening: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let up = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(200))
                .is_ok();
            if up == listening {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "the sink on {} did not become {} within 10 s",
            self.addr,
            if listening {
                "reachable"
            } else {
                "unreachable"
            }
        );
    }

    /// Gives requests carrying these traces a fixed answer (or stops doing so).
    pub fn set_poison(&self, poison: Option<Poison>) {
        *self.state.poison.lock().expect("sink lock") = poison;
    }

    /// What it received so far.
    pub fn counts(&self) -> Counts {
        self.state.counts.lock().expect("sink lock").clone()
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.state.counts.lock().expect("sink lock").requests
    }

    /// Forgets what it received.
    pub fn reset(&self) {
        *self.state.counts.lock().expect("sink lock") = Counts::default();
    }

    /// Waits until `done` holds for the counts, at most `timeout`; returns whether it did.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&Counts) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.state.counts.lock().expect("sink lock")) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

async fn bind(addr: SocketAddr) -> tokio::net::TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the sink could not listen on {addr} again: {e}"),
        }
    }
}

async fn serve(addr: SocketAddr, state: Arc<State>, mut mode: watch::Receiver<Mode>) {
    loop {
        if *mode.borrow_and_update() == Mode::Refuse {
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let listener = bind(addr).await;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(connection(stream, Arc::clone(&state)));
                    }
                }
                changed = mode.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if *mode.borrow() == Mode::Refuse {
                        break;
                    }
                }
            }
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, state: Arc<State>) {
    let mut mode = state.mode.clone();
    let service_state = Arc::clone(&state);
    let conn = http1::Builder::new().serve_connection(
        TokioIo::new(stream),
        service_fn(move |req| handle(req, Arc::clone(&service_state))),
    );
    let down = async {
        loop {
            if *mode.borrow_and_update() == Mode::Refuse {
                return;
            }
            if mode.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = conn => {}
        () = down => {}
    }
}

fn decode(body: &[u8], gzip: bool) -> Option<ExportTraceServiceRequest> {
    let plain;
    let bytes = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .ok()?;
        plain = out;
        &plain[..]
    } else {
        body
    };
    ExportTraceServiceRequest::decode(bytes).ok()
}

fn key16(bytes: &[u8]) -> Option<u128> {
    Some(u128::from_be_bytes(bytes.try_into().ok()?))
}

fn key8(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let gzip = req
        .headers()
        .get(hyper::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(answer(400)),
    };
    let decoded = tokio::task::spawn_blocking(move || {
        let len = body.len();
        (decode(&body, gzip), len)
    })
    .await;
    let Ok((decoded, len)) = decoded else {
        return Ok(answer(500));
    };
    let mut spans: Vec<(u128, u64)> = Vec::new();
    let mut traces: HashMap<u128, u32> = HashMap::new();
    if let Some(request) = &decoded {
        for span in request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            if let (Some(trace), Some(id)) = (key16(&span.trace_id), key8(&span.span_id)) {
                spans.push((trace, id));
            }
            if let Some(id) = key16(&span.trace_id) {
                *traces.entry(id).or_default() += 1;
            }
        }
    }
    let poisoned = state
        .poison
        .lock()
        .expect("sink lock")
        .as_ref()
        .filter(|p| traces.keys().any(|t| p.traces.contains(t)))
        .map(|p| p.answer);
    let action = match (poisoned, *state.mode.borrow()) {
        (Some(a), _) => a,
        (None, Mode::Up | Mode::Refuse) => Answer::Status(200),
        (None, Mode::Status(s)) => Answer::Status(s),
        (None, Mode::Delay(d)) => Answer::Delay(d),
    };
    let now = Instant::now();
    {
        let mut counts = state.counts.lock().expect("sink lock");
        counts.requests += 1;
        counts.bytes += len as u64;
        if decoded.is_none() {
            counts.undecodable += 1;
        }
        for id in spans {
            *counts.spans.entry(id).or_default() += 1;
        }
        let delivered = matches!(action, Answer::Status(200..=299));
        for (id, n) in traces {
            let seen = counts.traces.entry(id).or_insert(TraceSeen {
                requests: 0,
                spans: 0,
                first_seen: now,
                delivered_at: None,
            });
            seen.requests += 1;
            seen.spans += n;
            if delivered && seen.delivered_at.is_none() {
                seen.delivered_at = Some(now);
            }
        }
        if matches!(action, Answer::Delay(_)) {
            counts.late_answers += 1;
        }
    }
    Ok(match action {
        Answer::Status(s) => answer(s),
        Answer::Delay(d) => {
            tokio::time::sleep(d).await;
            answer(200)
        }
    })
}

fn answer(status: u16) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-protobuf"),
    );
    response
}
