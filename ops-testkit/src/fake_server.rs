//! A scripted fake HTTP server for wire tests of providers.
//!
//! [`FakeServer`] listens on `127.0.0.1` (a free port, through `wiremock`), records every
//! request it gets, and answers each with the next scripted [`FakeResponse`]
//! ([`FakeServer::push`]), or with a fixed answer for a method and path
//! ([`FakeServer::route`]), or else with its default (200, empty body). Recorded bodies can be
//! read as sent or decompressed ([`RecordedRequest::decoded_body`]), so a test decodes an OTLP
//! protobuf body with `prost` and asserts on the spans.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use ops_testkit::fake_server::{FakeResponse, FakeServer};
//!
//! let server = FakeServer::start().await;
//! server.push(FakeResponse::status(429).header("retry-after", "3"));
//! // ... point a provider at server.url("/v1/traces") and export ...
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeResponse {
    /// The HTTP status.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How long to wait before answering (to provoke client timeouts).
    pub delay: Option<Duration>,
    /// Whether the body quotes the request back ([`FakeResponse::echo`]).
    pub echo: bool,
}

impl FakeResponse {
    /// An answer with `status` and an empty body.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
            echo: false,
        }
    }

    /// An answer with `status` whose JSON body quotes the request back, as a careless server
    /// does: `{"message": "...", "error": "..."}` holding the method, path and query, every
    /// header with its value, and the body (decompressed; as text, lossily). For tests that a
    /// client never repeats its own credentials in its errors or logs.
    pub fn echo(status: u16) -> Self {
        Self {
            echo: true,
            ..Self::status(status)
        }
        .header("content-type", "application/json")
    }

    /// 200 with an empty body: what OTLP receivers answer a full success with.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    #[must_use]
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }

    /// Delays the answer.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    fn template(&self, request: &RecordedRequest) -> ResponseTemplate {
        let mut t = ResponseTemplate::new(self.status);
        for (k, v) in &self.headers {
            t = t.append_header(k.as_str(), v.as_str());
        }
        let body = if self.echo {
            echo_body(request)
        } else {
            self.body.clone()
        };
        t = t.set_body_bytes(body);
        if let Some(d) = self.delay {
            t = t.set_delay(d);
        }
        t
    }
}

/// A request the server received.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The headers, names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as sent (possibly compressed).
    pub body: Vec<u8>,
    /// When the server received it.
    pub received_at: std::time::Instant,
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl RecordedRequest {
    /// The value of header `name` (case-insensitive); the first one if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The header names, lowercase.
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// The body decompressed according to `content-encoding` (gzip or deflate; as is
    /// otherwise).
    ///
    /// # Panics
    /// When the body does not decompress: the request was malformed, which a test should see.
    pub fn decoded_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self
            .header("content-encoding")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("gzip") => {
                flate2::read::GzDecoder::new(&self.body[..])
                    .read_to_end(&mut out)
                    .expect("the body is not valid gzip although content-encoding says gzip");
            }
            Some("deflate") => {
                flate2::read::ZlibDecoder::new(&self.body[..])
                    .read_to_end(&mut out)
                    .expect("the body is not valid zlib although content-encoding says deflate");
            }
            _ => out.clone_from(&self.body),
        }
        out
    }

    /// The decoded body as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.decoded_body()).ok()
    }
}

/// The most body bytes an echo quotes.
const ECHO_MAX_BODY: usize = 1 << 20;

fn echo_body(request: &RecordedRequest) -> Vec<u8> {
    let mut text = format!(
        "rejected {} {}{}{}",
        request.method,
        request.path,
        if request.query.is_some() { "?" } else { "" },
        request.query.as_deref().unwrap_or_default()
    );
    for (k, v) in &request.headers {
        text.push_str(&format!(" | {k}: {v}"));
    }
    let mut body = Vec::new();
    let decoded = std::panic::catch_unwind(|| request.decoded_body()).unwrap_or_default();
    body.extend_from_slice(&decoded[..decoded.len().min(ECHO_MAX_BODY)]);
    text.push_str(" | body: ");
    text.push_str(&String::from_utf8_lossy(&body));
    serde_json::json!({ "message": text.clone(), "error": text })
        .to_string()
        .into_bytes()
}

#[derive(Default)]
struct State {
    script: VecDeque<FakeResponse>,
    routes: Vec<(String, String, FakeResponse)>,
    default: Option<FakeResponse>,
    received: Vec<RecordedRequest>,
}

struct Responder(Arc<Mutex<State>>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let recorded = RecordedRequest {
            method: request.method.as_str().to_owned(),
            path: request.url.path().to_owned(),
            query: request.url.query().map(str::to_owned),
            headers: request
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: request.body.clone(),
            received_at: std::time::Instant::now(),
        };
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let routed = state
            .routes
            .iter()
            .find(|(m, p, _)| m.eq_ignore_ascii_case(&recorded.method) && *p == recorded.path)
            .map(|(_, _, r)| r.clone());
        let answer = routed
            .or_else(|| state.script.pop_front())
            .or_else(|| state.default.clone())
            .unwrap_or_else(FakeResponse::ok);
        let template = answer.template(&recorded);
        state.received.push(recorded);
        template
    }
}

/// A fake HTTP server on loopback that records requests and answers as scripted.
pub struct FakeServer {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeServer")
            .field("uri", &self.server.uri())
            .finish_non_exhaustive()
    }
}

impl FakeServer {
    /// Starts a server on `127.0.0.1` and a free port. It stops when dropped.
    pub async fn start() -> Self {
        Self::serve(MockServer::start().await).await
    }

    /// Starts a server on `listener`, for example to bring a backend back on the port it had
    /// before it went down.
    pub async fn start_on(listener: std::net::TcpListener) -> Self {
        Self::serve(MockServer::builder().listener(listener).start().await).await
    }

    async fn serve(server: MockServer) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        Mock::given(any())
            .respond_with(Responder(Arc::clone(&state)))
            .mount(&server)
            .await;
        Self { server, state }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.uri(), path.trim_start_matches('/'))
    }

    /// Queues the answer to the next request that no route matches.
    pub fn push(&self, response: FakeResponse) -> &Self {
        self.state().script.push_back(response);
        self
    }

    /// Answers every `method` request to `path` with `response` (before the script).
    pub fn route(&self, method: &str, path: &str, response: FakeResponse) -> &Self {
        self.state()
            .routes
            .push((method.to_owned(), path.to_owned(), response));
        self
    }

    /// Sets the answer used when the script is empty (200 with an empty body by default).
    pub fn set_default(&self, response: FakeResponse) -> &Self {
        self.state().default = Some(response);
        self
    }

    /// How many scripted answers are still queued.
    pub fn pending(&self) -> usize {
        self.state().script.len()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().received.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.state().received.clear();
    }

    /// Waits until at least `n` requests arrived or `timeout` passed (polling every 10 ms),
    /// and returns what arrived.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.requests();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
