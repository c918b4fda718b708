//! The HTTP layer every provider shares: the reqwest client (rustls, timeouts), gzip, reading
//! an answer in full, classifying it into what the queue should do, and sending a batch in as
//! many requests as it takes (split on 413, bisected on a rejected payload, bounded by an
//! export deadline).
//!
//! # Classification ([`classify_status`])
//! - **2xx**: accepted.
//! - **429, 502, 503, 504** and 408: retryable, after `Retry-After` when the server sent one
//!   (seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`]), else after the queue's backoff.
//!   With [`StatusRules::retry_server_errors`] every other 5xx (but 501 and 505) is retryable
//!   too. Connection failures and timeouts are retryable.
//! - **413**: too large: [`Splitter`] splits the request in halves.
//! - **400 and 422** with [`StatusRules::bisect_rejected`]: the payload was rejected;
//!   [`Splitter`] halves a request that holds more than one trace, so one bad trace does not
//!   sink the others, and fails a single trace for good.
//! - **401, 403 and every other status**: fatal, with an error that names the provider, the
//!   status and the URL, and quotes the server's message ([`server_message`]).

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use ops_core::provider::{Redactor, redact_url};
use ops_core::{ExportError, ExportOutcome};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How many times a request answered with 413 (or a rejected payload) is halved at most.
pub const MAX_SPLIT_DEPTH: u32 = 6;
/// The longest a server message is quoted in an error.
const MAX_QUOTE: usize = 500;

/// Builds the HTTP client every provider uses: rustls, the given timeouts, and a
/// `User-Agent` of `ops/<version>`.
pub fn client(timeout: Duration, connect_timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .user_agent(concat!("ops/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Turns `(name, value)` pairs into a header map, naming the bad one on error. Credentials
/// headers are marked sensitive; the Debug output of this crate's clients shows header names
/// only, whatever their values.
pub fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| "a header name is not a valid HTTP header name".to_owned())?;
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| format!("the value of header {k:?} has characters HTTP does not allow"))?;
        if matches!(
            name.as_str(),
            "authorization"
                | "x-api-key"
                | "api_key"
                | "api-key"
                | "x-arms-license-key"
                | "arize-space-id"
                | "space_id"
                | "x-langfuse-public-key"
        ) {
            value.set_sensitive(true);
        }
        map.insert(name, value);
    }
    Ok(map)
}

/// The compression of a request body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Sent as is.
    None,
    /// `Content-Encoding: gzip` (the default, as the OpenTelemetry SDKs send it).
    #[default]
    Gzip,
}

impl Compression {
    /// Parses `gzip` or `none` (the values of `OTEL_EXPORTER_OTLP_COMPRESSION`).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "gzip" => Some(Compression::Gzip),
            "none" | "" => Some(Compression::None),
            _ => None,
        }
    }

    /// Compresses `body`; returns the `Content-Encoding` to send, if any.
    pub fn apply(self, body: Vec<u8>) -> (Vec<u8>, Option<&'static str>) {
        match self {
            Compression::None => (body, None),
            Compression::Gzip => match gzip(&body) {
                Some(zipped) => (zipped, Some("gzip")),
                None => (body, None),
            },
        }
    }

    /// [`Compression::apply`] to a borrowed body (copied when it is sent as is), so the
    /// caller can keep its buffer for the next request.
    pub fn apply_to(self, body: &[u8]) -> (Vec<u8>, Option<&'static str>) {
        match self {
            Compression::None => (body.to_vec(), None),
            Compression::Gzip => match gzip(body) {
                Some(zipped) => (zipped, Some("gzip")),
                None => (body.to_vec(), None),
            },
        }
    }
}

/// The gzip level of every request body: 4 of 9, with flate2's zlib-rs backend.
///
/// Measured on the peer suite's end-to-end bodies (OTLP protobuf of 10-span traces with 1 KB
/// inputs of English words, 1,000 spans a request; `peers-e2e levels`): level 6 (zlib's
/// default) made 210 bytes a span for 48 µs of CPU, level 5 231 bytes (+10%) for 19 µs, level 4
/// 238 bytes (+13%) for 16 µs, level 3 260 bytes (+24%) for 10 µs. End to end, level 4 took
/// 16–23 µs a span against level 5's 20–25 µs: it is the level that keeps ops at twice the
/// OpenTelemetry exporter's throughput on a loaded machine, for 13% more bytes on the wire.
pub const GZIP_LEVEL: u32 = 4;

/// `body` gzipped at [`GZIP_LEVEL`]; `None` if the encoder failed (it writes to memory, so it
/// does not).
fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::new(GZIP_LEVEL),
    );
    gz.write_all(body).ok()?;
    gz.finish().ok()
}

/// An HTTP answer, read in full.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The server's message: see [`server_message`].
    pub fn message(&self) -> String {
        server_message(&self.headers, &self.body)
    }

    /// Whether a 404 came from the application, naming what it did not find (a JSON error
    /// with a message, such as MLflow's "No Experiment with id=7 exists"), rather than from a
    /// server that has no such path at all. Only the latter means the endpoint is wrong.
    pub fn names_what_is_missing(&self) -> bool {
        let Some(json) = self.json() else {
            return false;
        };
        let field = |v: &serde_json::Value, keys: &[&str]| {
            keys.iter().any(|k| {
                v.get(*k)
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|m| !m.trim().is_empty() && !m.eq_ignore_ascii_case("not found"))
            })
        };
        let keys = ["message", "error_code", "detail", "reason", "error"];
        field(&json, &keys) || json.get("error").is_some_and(|e| field(e, &keys))
    }

    /// `Ok` for a 2xx answer; else an error of `provider` describing what `what` (for
    /// example "the credentials check") got, which says the credentials are wrong for 401
    /// and 403.
    pub fn check(&self, provider: &str, what: &str) -> Result<(), ExportError> {
        if self.status.is_success() {
            return Ok(());
        }
        let hint = match self.status.as_u16() {
            401 | 403 => "invalid credentials: check the keys in the tracing config; ",
            404 if self.names_what_is_missing() => "",
            404 => "not found: check the endpoint or host in the tracing config; ",
            _ => "",
        };
        Err(ExportError::new(
            provider,
            format!(
                "{what} failed: {hint}the server answered HTTP {}: {}",
                self.status,
                quote(&self.message())
            ),
        ))
    }
}

/// Header names of `headers`, for Debug output (values may be credentials).
pub(crate) fn header_names(headers: &HeaderMap) -> Vec<&str> {
    headers.keys().map(HeaderName::as_str).collect()
}

/// A redactor of a provider's `secrets` (keys, tokens, credentials header values): each value
/// as it is, percent-encoded, escaped and in base64, and the token of a `Basic …` or
/// `Bearer …` value alone, so a server that quotes our request back cannot put them in an
/// error, a log line or `stats().last_error`.
pub fn secrets_redactor<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Redactor {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let mut r = Redactor::default();
    for secret in secrets {
        let s = secret.as_ref().trim();
        if s.is_empty() {
            continue;
        }
        r = r.with(s);
        for prefix in ["Basic ", "Bearer ", "basic ", "bearer "] {
            if let Some(token) = s.strip_prefix(prefix) {
                r = r.with(token.trim());
            }
        }
        r = r.with_exact([STANDARD.encode(s), URL_SAFE_NO_PAD.encode(s)]);
    }
    r
}

/// Sends `request` and reads the whole answer. A connection failure or timeout is an error of
/// `provider` that names the URL requested and says what happened (`url` only when the
/// request could not even be built).
pub async fn send(
    provider: &str,
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<HttpReply, ExportError> {
    let (client, request) = request.build_split();
    let request = request.map_err(|e| network_error(provider, url, &e))?;
    let url = &request.url().to_string();
    let response = client
        .execute(request)
        .await
        .map_err(|e| network_error(provider, url, &e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| network_error(provider, url, &e))?
        .to_vec();
    Ok(HttpReply {
        status,
        headers,
        body,
    })
}

/// The error for a request that got no answer: timed out, could not connect, or failed, with
/// the whole chain of causes. The URL is shown with credentials removed ([`redact_url`]), and
/// reqwest's own copy of it is left out.
pub fn network_error(provider: &str, url: &str, e: &reqwest::Error) -> ExportError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    // reqwest's message names the URL again (with anything in it); describe it without.
    let mut detail = if e.is_timeout() {
        "operation timed out".to_owned()
    } else if e.is_connect() {
        "error connecting".to_owned()
    } else if e.is_body() || e.is_decode() {
        "error reading the answer".to_owned()
    } else if e.is_builder() {
        "the request could not be built".to_owned()
    } else {
        "error sending the request".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    let shown = redact_url(url);
    let detail = detail.replace(url, &shown);
    ExportError::new(provider, format!("request to {shown} {what}: {detail}"))
}

/// What a server's answer means for the request that got it.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    /// Accepted; `rejected_spans` were refused for good (OTLP `partialSuccess`; 0 elsewhere).
    Accepted {
        /// Spans the receiver refused.
        rejected_spans: u64,
        /// Why, as the receiver said.
        message: String,
    },
    /// The same request may succeed later.
    Retry {
        /// The wait the server asked for.
        after: Option<Duration>,
        /// What happened.
        error: ExportError,
    },
    /// 413: the request is too large.
    TooLarge(ExportError),
    /// 400 or 422 under [`StatusRules::bisect_rejected`]: the payload was rejected, which
    /// may be the fault of one trace in it.
    Rejected(ExportError),
    /// The request can never succeed.
    Fatal(ExportError),
}

impl Classified {
    /// Accepted with nothing refused.
    pub const fn accepted() -> Self {
        Classified::Accepted {
            rejected_spans: 0,
            message: String::new(),
        }
    }
}

/// How statuses are read beyond the common rules (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusRules {
    /// Every 5xx but 501 and 505 is retryable (the native APIs); otherwise only 502, 503 and
    /// 504 are (OTLP, where a 500 means the receiver cannot take the data).
    pub retry_server_errors: bool,
    /// 400 and 422 are [`Classified::Rejected`] rather than fatal.
    pub bisect_rejected: bool,
}

impl StatusRules {
    /// The rules of the native ingestion APIs (LangSmith, Opik, Weave): retry 5xx, bisect
    /// rejected payloads.
    pub const NATIVE: StatusRules = StatusRules {
        retry_server_errors: true,
        bisect_rejected: true,
    };
}

/// Classifies an answer (see the module docs). A 2xx is [`Classified::accepted`]; the caller
/// reads anything a 2xx body says.
pub fn classify_status(
    provider: &str,
    url: &str,
    reply: &HttpReply,
    now: SystemTime,
    rules: StatusRules,
) -> Classified {
    let status = reply.status;
    if status.is_success() {
        return Classified::accepted();
    }
    let code = status.as_u16();
    let error = ExportError::new(
        provider,
        format!(
            "{} answered HTTP {}: {}{}",
            redact_url(url),
            status,
            quote(&reply.message()),
            match code {
                401 | 403 => "; check the credentials in the tracing config",
                404 if reply.names_what_is_missing() => "",
                404 => "; check the endpoint in the tracing config",
                415 => "; the receiver does not take this content type",
                _ => "",
            }
        ),
    )
    .with_status(code);
    let retryable = matches!(code, 408 | 429 | 502 | 503 | 504)
        || (rules.retry_server_errors && code >= 500 && !matches!(code, 501 | 505));
    if retryable {
        return Classified::Retry {
            after: retry_after(&reply.headers, now),
            error,
        };
    }
    match code {
        413 => Classified::TooLarge(error),
        400 | 422 if rules.bisect_rejected => Classified::Rejected(error),
        _ => Classified::Fatal(error),
    }
}

/// `Retry-After` as a wait: delay-seconds or an HTTP date (a past date means now), capped at
/// [`MAX_RETRY_AFTER`]. `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// `google.rpc.Status`, the body OTLP receivers answer errors with in protobuf.
#[cfg(feature = "otlp")]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    #[prost(string, tag = "2")]
    pub(crate) message: String,
}

/// The message in an error answer: the `message` of a protobuf `google.rpc.Status` (OTLP);
/// the `error` (or its `message`), `message`, `detail`, `reason` or `error_code` of a JSON
/// object, or its `errors` list; else the body as text. Empty bodies give `(empty body)`.
pub fn server_message(headers: &HeaderMap, body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".into();
    }
    #[cfg(feature = "otlp")]
    {
        use prost::Message as _;
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if content_type.contains("protobuf")
            && let Ok(status) = RpcStatus::decode(body)
            && !status.message.is_empty()
        {
            return status.message;
        }
    }
    #[cfg(not(feature = "otlp"))]
    let _ = (headers, CONTENT_TYPE);
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let pick = |v: &serde_json::Value| -> Option<String> {
            match v {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Object(o) => {
                    o.get("message").and_then(|m| m.as_str()).map(str::to_owned)
                }
                serde_json::Value::Array(a) if !a.is_empty() => {
                    Some(serde_json::Value::Array(a.clone()).to_string())
                }
                _ => None,
            }
        };
        if let Some(obj) = json.as_object() {
            for key in [
                "error",
                "message",
                "detail",
                "reason",
                "errors",
                "error_code",
            ] {
                if let Some(m) = obj.get(key).and_then(pick) {
                    return m;
                }
            }
        }
        return json.to_string();
    }
    String::from_utf8_lossy(body).trim().to_owned()
}

/// `message` in double quotes, cut to a readable length. A cut falls between words: a word
/// (which may be a token the server echoed) is never shown in part, so a redactor that looks
/// for whole secrets still finds every one that is shown.
pub fn quote(message: &str) -> String {
    let mut cut: String = message.chars().take(MAX_QUOTE).collect();
    if cut.len() < message.len() {
        let word = |c: char| c.is_alphanumeric() || "-_+/=.~%:".contains(c);
        let next_is_word = message[cut.len()..].chars().next().is_some_and(word);
        if next_is_word {
            let keep = cut.trim_end_matches(word).len();
            cut.truncate(keep);
        }
        cut.push('…');
    }
    format!("{cut:?}")
}

/// What a [`Splitter`] saw: which owners (traces, by index) failed, and the first retryable
/// and fatal errors.
#[derive(Debug, Clone, Default)]
pub struct SplitReport {
    /// Per owner: whether any of its items failed.
    pub failed: Vec<bool>,
    /// The longest wait asked for, and the first retryable error.
    pub retry: Option<(Option<Duration>, ExportError)>,
    /// The first fatal error.
    pub fatal: Option<ExportError>,
    /// How many requests were sent.
    pub requests: usize,
}

impl SplitReport {
    /// The outcome for the first `traces` owners (owners past them are the provider's own): `Delivered` when none failed; when all failed, `Retry` if any
    /// request may be retried, else `Fatal`; otherwise `Partial` with the failed ones.
    pub fn outcome(&self, traces: usize) -> ExportOutcome {
        let failed: Vec<usize> = (0..traces)
            .filter(|i| self.failed.get(*i).copied().unwrap_or(false))
            .collect();
        if failed.is_empty() {
            return ExportOutcome::Delivered;
        }
        if failed.len() == traces {
            return match (&self.retry, &self.fatal) {
                (Some((after, error)), _) => ExportOutcome::Retry {
                    after: *after,
                    error: error.clone(),
                },
                (None, Some(error)) => ExportOutcome::Fatal(error.clone()),
                (None, None) => unreachable!("an owner only fails with an error"),
            };
        }
        let error = self
            .fatal
            .clone()
            .or_else(|| self.retry.as_ref().map(|r| r.1.clone()))
            .expect("an owner only fails with an error");
        ExportOutcome::Partial { failed, error }
    }

    /// Whether owner `i` failed.
    pub fn has_failed(&self, i: usize) -> bool {
        self.failed.get(i).copied().unwrap_or(false)
    }
}

/// Sends a batch in as many requests as it takes: it hands out chunks of items to send
/// ([`Splitter::next_chunk`], [`Splitter::current`]) and takes each answer ([`Splitter::done`]),
/// then reports which owners failed ([`Splitter::finish`]).
///
/// ```ignore
/// let mut s = Splitter::new(provider, url, chunks, owners, deadline, |item| item.trace);
/// while let Some(left) = s.next_chunk() {
///     let answer = send(s.current(), left).await;
///     s.done(answer);
/// }
/// let outcome = s.finish().outcome(owners);
/// ```
///
/// `owner` says which owner (a trace of the batch, by index) an item belongs to. A chunk
/// answered with [`Classified::TooLarge`] is halved, up to [`MAX_SPLIT_DEPTH`] times; so is
/// one answered [`Classified::Rejected`] while it holds items of more than one owner. Chunks
/// not started within `deadline`, or past a bound on the number of requests, fail as
/// retryable. Chunks are sent in order, first halves first.
pub struct Splitter<T, O> {
    provider: String,
    url: String,
    work: Vec<(Vec<T>, u32)>,
    current: Option<(Vec<T>, u32)>,
    report: SplitReport,
    deadline: Instant,
    max_requests: usize,
    owner: O,
}

impl<T, O> fmt::Debug for Splitter<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Splitter")
            .field("provider", &self.provider)
            .field("url", &self.url)
            .field("chunks_left", &self.work.len())
            .field("requests", &self.report.requests)
            .finish_non_exhaustive()
    }
}

impl<T, O: Fn(&T) -> usize> Splitter<T, O> {
    /// A splitter over `chunks` (each one request unless split) of items of `owners` owners.
    pub fn new(
        provider: &str,
        url: &str,
        chunks: Vec<Vec<T>>,
        owners: usize,
        deadline: Duration,
        owner: O,
    ) -> Self {
        Self {
            provider: provider.to_owned(),
            url: url.to_owned(),
            max_requests: chunks.len().max(1) * 2usize.pow(MAX_SPLIT_DEPTH + 1),
            work: chunks
                .into_iter()
                .rev()
                .filter(|c| !c.is_empty())
                .map(|c| (c, 0))
                .collect(),
            current: None,
            report: SplitReport {
                failed: vec![false; owners],
                ..SplitReport::default()
            },
            // A deadline past what the clock can hold is no deadline, not a panic.
            deadline: Instant::now()
                .checked_add(deadline)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)),
            owner,
        }
    }

    fn mark(&mut self, chunk: &[T]) {
        for item in chunk {
            let i = (self.owner)(item);
            if let Some(f) = self.report.failed.get_mut(i) {
                *f = true;
            }
        }
    }

    /// The next chunk to send, as the time left for it; `None` when every chunk is done.
    /// A chunk handed out and not answered ([`Splitter::done`]) counts as retryable.
    pub fn next_chunk(&mut self) -> Option<Duration> {
        if let Some((chunk, _)) = self.current.take() {
            self.mark(&chunk);
            self.note_retry(
                None,
                ExportError::new(&self.provider, "a request was abandoned without an answer"),
            );
        }
        while let Some((chunk, depth)) = self.work.pop() {
            if self.report.requests >= self.max_requests || Instant::now() >= self.deadline {
                self.mark(&chunk);
                let sent = self.report.requests;
                let error = ExportError::new(
                    &self.provider,
                    format!(
                        "export to {} ran out of time after {sent} requests; the rest is sent again later",
                        redact_url(&self.url)
                    ),
                );
                self.report.retry.get_or_insert((None, error));
                continue;
            }
            self.report.requests += 1;
            self.current = Some((chunk, depth));
            return Some(self.deadline.saturating_duration_since(Instant::now()));
        }
        None
    }

    /// The chunk handed out by the last [`Splitter::next_chunk`] (empty when there is none).
    pub fn current(&self) -> &[T] {
        self.current.as_ref().map_or(&[], |(c, _)| c.as_slice())
    }

    fn note_retry(&mut self, after: Option<Duration>, error: ExportError) {
        let after = match (self.report.retry.as_ref().and_then(|r| r.0), after) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let error = self.report.retry.take().map_or(error, |r| r.1);
        self.report.retry = Some((after, error));
    }

    /// Takes the answer to the current chunk.
    pub fn done(&mut self, answer: Classified) {
        let Some((chunk, depth)) = self.current.take() else {
            return;
        };
        match answer {
            Classified::Accepted { .. } => {}
            Classified::TooLarge(error) => {
                if chunk.len() > 1 && depth < MAX_SPLIT_DEPTH {
                    push_halves(&mut self.work, chunk, depth);
                } else {
                    self.mark(&chunk);
                    let error = ExportError::new(
                        &self.provider,
                        format!(
                            "{} (even {} item(s) alone are too large; nothing more to split)",
                            error.message,
                            chunk.len()
                        ),
                    );
                    self.report.fatal.get_or_insert(error);
                }
            }
            Classified::Rejected(error) => {
                let first = chunk.first().map(&self.owner);
                let mixed = chunk.iter().any(|i| Some((self.owner)(i)) != first);
                if mixed && depth < MAX_SPLIT_DEPTH {
                    push_halves(&mut self.work, chunk, depth);
                } else {
                    self.mark(&chunk);
                    self.report.fatal.get_or_insert(error);
                }
            }
            Classified::Retry { after, error } => {
                self.mark(&chunk);
                self.note_retry(after, error);
            }
            Classified::Fatal(error) => {
                self.mark(&chunk);
                self.report.fatal.get_or_insert(error);
            }
        }
    }

    /// What happened, once [`Splitter::next_chunk`] gave `None`.
    pub fn finish(mut self) -> SplitReport {
        while self.next_chunk().is_some() {
            self.done(Classified::Retry {
                after: None,
                error: ExportError::new(&self.provider, "the export stopped early"),
            });
        }
        self.report
    }
}

fn push_halves<T>(work: &mut Vec<(Vec<T>, u32)>, mut first: Vec<T>, depth: u32) {
    let second = first.split_off(first.len() / 2);
    // Popped last-in first-out: the first half goes first.
    work.push((second, depth + 1));
    work.push((first, depth + 1));
}

/// A client of one platform's HTTP API: the provider name errors carry, the reqwest client,
/// the headers every request carries, the limits of an export, and the redactor of the
/// provider's secrets.
#[derive(Clone)]
pub struct HttpClient {
    provider: &'static str,
    client: reqwest::Client,
    headers: HeaderMap,
    timeout: Duration,
    redactor: Redactor,
    /// The limit for a whole export, splits included.
    pub export_deadline: Duration,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("provider", &self.provider)
            .field("headers", &header_names(&self.headers))
            .field("timeout", &self.timeout)
            .field("export_deadline", &self.export_deadline)
            .finish_non_exhaustive()
    }
}

/// The default limit for one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default limit for connecting.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default limit for a whole export: below the queue's export timeout (30 s).
pub const DEFAULT_EXPORT_DEADLINE: Duration = Duration::from_secs(25);

impl HttpClient {
    /// A client for `provider` with `headers` on every request and the default timeouts.
    pub fn new(provider: &'static str, headers: &[(String, String)]) -> Result<Self, String> {
        Ok(Self {
            provider,
            client: client(DEFAULT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT)?,
            headers: header_map(headers)?,
            timeout: DEFAULT_TIMEOUT,
            redactor: Redactor::default(),
            export_deadline: DEFAULT_EXPORT_DEADLINE,
        })
    }

    /// Removes `secrets` (see [`secrets_redactor`]) from every error of this client's provider.
    #[must_use]
    pub fn with_secrets<S: AsRef<str>>(mut self, secrets: impl IntoIterator<Item = S>) -> Self {
        self.redactor = self.redactor.merge(&secrets_redactor(secrets));
        self
    }

    /// The redactor of the provider's secrets.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Sets the timeouts: one request, connecting, and a whole export.
    pub fn with_timeouts(
        mut self,
        timeout: Duration,
        connect_timeout: Duration,
        export_deadline: Duration,
    ) -> Result<Self, String> {
        self.client = client(timeout, connect_timeout)?;
        self.timeout = timeout;
        self.export_deadline = export_deadline;
        Ok(self)
    }

    /// Sets the per-request timeout (the `timeout` key): connecting gets at most that too,
    /// and a whole export at least that.
    pub fn with_timeout(self, timeout: Duration) -> Result<Self, String> {
        self.with_timeouts(
            timeout,
            DEFAULT_CONNECT_TIMEOUT.min(timeout),
            DEFAULT_EXPORT_DEADLINE.max(timeout),
        )
    }

    /// The limit for one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The provider name errors carry.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The headers every request carries.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A request with the common headers.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .headers(self.headers.clone())
    }

    /// A GET with the common headers.
    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, url)
    }

    /// A POST with the common headers.
    pub fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, url)
    }

    /// Sends `request` (to `url`, named in errors) and reads the whole answer.
    pub fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> impl Future<Output = Result<HttpReply, ExportError>> + Send + 'static {
        let provider = self.provider;
        let url = url.to_owned();
        async move { send(provider, &url, request).await }
    }

    /// Sends `request` with a time limit of `limit` (at most the client's own) and classifies
    /// the answer with `rules`; a request that got no answer is retryable.
    pub async fn send_classified(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
        limit: Duration,
        rules: StatusRules,
    ) -> (Classified, Option<HttpReply>) {
        let request = request.timeout(limit.min(self.timeout));
        match send(self.provider, url, request).await {
            Ok(reply) => (
                classify_status(self.provider, url, &reply, SystemTime::now(), rules),
                Some(reply),
            ),
            Err(error) => (Classified::Retry { after: None, error }, None),
        }
    }
}

/// A reply as a server would give it, for the unit tests of the HTTP providers.
#[cfg(test)]
pub(crate) fn reply(status: u16, headers: &[(&str, &str)], body: &[u8]) -> HttpReply {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    HttpReply {
        status: StatusCode::from_u16(status).unwrap(),
        headers: map,
        body: body.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_404_hint_follows_the_cause() {
        let now = SystemTime::now();
        let message = |r: &HttpReply| match classify_status("p", "u", r, now, StatusRules::NATIVE) {
            Classified::Fatal(e) => e.to_string(),
            other => panic!("{other:?}"),
        };
        // No such path: the endpoint is wrong.
        for body in [
            &b""[..],
            b"Not Found",
            b"<html>404</html>",
            br#"{"detail":"Not Found"}"#,
        ] {
            let r = reply(404, &[], body);
            assert!(message(&r).contains("check the endpoint"), "{body:?}");
            let check = r.check("p", "the check").unwrap_err().to_string();
            assert!(check.contains("check the endpoint"), "{check}");
        }
        // The application answered and named what it did not find: no endpoint hint.
        for body in [
            &br#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"No Experiment with id=7 exists"}"#[..],
            br#"{"error":{"message":"project p not found"}}"#,
            br#"{"detail":"Project 'x' not found"}"#,
        ] {
            let r = reply(404, &[], body);
            let m = message(&r);
            assert!(!m.contains("check the endpoint"), "{m}");
            let check = r.check("p", "the check").unwrap_err().to_string();
            assert!(!check.contains("check the endpoint"), "{check}");
        }
    }

    #[test]
    fn native_rules_retry_server_errors_and_bisect_rejections() {
        let now = SystemTime::now();
        for code in [500, 502, 503, 504, 507, 520, 429, 408] {
            assert!(
                matches!(
                    classify_status("p", "u", &reply(code, &[], b""), now, StatusRules::NATIVE),
                    Classified::Retry { .. }
                ),
                "{code}"
            );
        }
        for code in [501, 505, 401, 403, 404, 409] {
            assert!(
                matches!(
                    classify_status("p", "u", &reply(code, &[], b""), now, StatusRules::NATIVE),
                    Classified::Fatal(_)
                ),
                "{code}"
            );
        }
        for code in [400, 422] {
            assert!(matches!(
                classify_status("p", "u", &reply(code, &[], b""), now, StatusRules::NATIVE),
                Classified::Rejected(_)
            ));
            assert!(matches!(
                classify_status(
                    "p",
                    "u",
                    &reply(code, &[], b""),
                    now,
                    StatusRules::default()
                ),
                Classified::Fatal(_)
            ));
        }
        assert!(matches!(
            classify_status("p", "u", &reply(500, &[], b""), now, StatusRules::default()),
            Classified::Fatal(_)
        ));
        assert_eq!(
            classify_status("p", "u", &reply(202, &[], b""), now, StatusRules::NATIVE),
            Classified::accepted()
        );
    }

    #[test]
    fn weave_and_opik_messages_are_found() {
        let r = reply(
            400,
            &[],
            br#"{"reason":"project requires calls_complete","error_code":"CALLS_COMPLETE_MODE_REQUIRED"}"#,
        );
        assert_eq!(r.message(), "project requires calls_complete");
        let r = reply(422, &[], br#"{"errors":["id must be a version 7 UUID"]}"#);
        assert_eq!(r.message(), r#"["id must be a version 7 UUID"]"#);
    }

    #[test]
    fn quotes_never_cut_a_word_in_two() {
        let secret = "sk-lf-SECRET-0123456789";
        let message = format!("{} {secret} tail", "x ".repeat(240));
        let q = quote(&message);
        assert!(q.ends_with("…\""), "{q}");
        assert!(
            !q.contains("sk-lf"),
            "no part of the word at the cut is shown: {q}"
        );
        let r = secrets_redactor(["Basic dXNlcjpwdw=="]);
        assert_eq!(r.redact("echo dXNlcjpwdw=="), "echo <redacted>");
        let r = secrets_redactor(["k-123456"]);
        assert_eq!(r.redact("b64 ay0xMjM0NTY="), "b64 <redacted>");
    }

    #[test]
    fn gzip_is_shared() {
        let body = b"hello hello hello hello".to_vec();
        let (zipped, enc) = Compression::Gzip.apply(body.clone());
        assert_eq!(enc, Some("gzip"));
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut out)
            .unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn split_sending_halves_on_413_and_bisects_rejections() {
        // Items are (owner, bad): the server takes at most 2 items and rejects owner 2's.
        let items: Vec<(usize, bool)> = vec![(0, false), (1, false), (2, true), (3, false)];
        let mut seen = Vec::new();
        let mut s = Splitter::new("p", "u", vec![items], 4, Duration::from_secs(5), |i| i.0);
        while s.next_chunk().is_some() {
            let chunk = s.current();
            seen.push(chunk.iter().map(|i| i.0).collect::<Vec<_>>());
            let answer = if chunk.len() > 2 {
                Classified::TooLarge(ExportError::new("p", "too large"))
            } else if chunk.iter().any(|i| i.1) {
                Classified::Rejected(ExportError::new("p", "bad"))
            } else {
                Classified::accepted()
            };
            s.done(answer);
        }
        let report = s.finish();
        assert_eq!(
            seen,
            vec![vec![0, 1, 2, 3], vec![0, 1], vec![2, 3], vec![2], vec![3]]
        );
        assert_eq!(report.failed, vec![false, false, true, false]);
        match report.outcome(4) {
            ExportOutcome::Partial { failed, error } => {
                assert_eq!(failed, vec![2]);
                assert_eq!(error.message, "bad");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_huge_export_deadline_is_no_panic() {
        let mut s = Splitter::new("p", "u", vec![vec![0usize]], 1, Duration::MAX, |i| *i);
        assert!(s.next_chunk().is_some());
        s.done(Classified::accepted());
        assert_eq!(s.finish().outcome(1), ExportOutcome::Delivered);
    }

    #[test]
    fn split_sending_keeps_the_longest_wait_and_stops_at_the_deadline() {
        let mut s = Splitter::new(
            "p",
            "u",
            vec![vec![0usize], vec![1usize]],
            2,
            Duration::from_secs(5),
            |i| *i,
        );
        while s.next_chunk().is_some() {
            let i = s.current()[0];
            s.done(Classified::Retry {
                after: Some(Duration::from_secs(1 + i as u64 * 5)),
                error: ExportError::new("p", format!("busy {i}")),
            });
        }
        match s.finish().outcome(2) {
            ExportOutcome::Retry { after, error } => {
                assert_eq!(after, Some(Duration::from_secs(6)));
                assert_eq!(error.message, "busy 0");
            }
            other => panic!("{other:?}"),
        }
        let mut s = Splitter::new("p", "u", vec![vec![0usize]], 1, Duration::ZERO, |i| *i);
        assert!(
            s.next_chunk().is_none(),
            "nothing starts after the deadline"
        );
        match s.finish().outcome(1) {
            ExportOutcome::Retry { error, .. } => {
                assert!(error.message.contains("ran out of time"), "{error}")
            }
            other => panic!("{other:?}"),
        }
    }
}
