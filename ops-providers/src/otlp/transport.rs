//! Sending OTLP requests over HTTP and classifying the answers.
//!
//! # Classification ([`classify`])
//! - **2xx**: accepted. A `partialSuccess` with `rejectedSpans > 0` is counted (see
//!   [`Transport::rejected_spans`]) and logged as a warning, and the export still counts as
//!   delivered: OTLP receivers reject spans for good (malformed data), so a re-send would be
//!   rejected again.
//! - **429, 502, 503, 504** (and 408): retryable, after `Retry-After` when the receiver sent
//!   one (seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`]), else after the queue's
//!   backoff. Connection failures and timeouts are retryable too.
//! - **413**: too large. [`Transport::export`] splits the spans in halves and sends each half,
//!   up to [`MAX_SPLIT_DEPTH`] times deep; a single span that is still too large fails for
//!   good.
//! - **400, 401, 403 and every other status**: fatal, with an error that names the provider,
//!   the status and the endpoint, and quotes the receiver's message (the `message` of a
//!   protobuf `google.rpc.Status`, the `error`/`message`/`detail` of a JSON body, or the text).
//!
//! # Results of a split export
//! Each trace of a batch fails when any of its spans' requests failed. When every trace was
//! delivered the export is `Delivered`; when none was, it is `Retry` if any request may be
//! retried, else `Fatal`; otherwise it is `Partial` with the failed traces, which the queue
//! sends again alone (a trace rejected for good then fails as `Fatal` on its own).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use ops_core::{ExportError, ExportOutcome};
use prost::Message;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::encode::{self, Compression, Encoding, IndexedSpan};

/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How many times a batch answered with 413 is halved at most (so at most 2^6 = 64 requests).
pub const MAX_SPLIT_DEPTH: u32 = 6;
/// The longest a server message is quoted in an error.
const MAX_QUOTE: usize = 500;

/// How a [`Transport`] sends.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// The limit for one HTTP request, from connecting to the end of the answer.
    pub timeout: Duration,
    /// The limit for connecting.
    pub connect_timeout: Duration,
    /// The limit for a whole export, splits included; requests not started by then are
    /// reported as retryable. Keep it below the queue's export timeout (30 s by default).
    pub export_deadline: Duration,
    /// The body format.
    pub encoding: Encoding,
    /// The body compression.
    pub compression: Compression,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            export_deadline: Duration::from_secs(25),
            encoding: Encoding::Protobuf,
            compression: Compression::Gzip,
        }
    }
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

    /// The receiver's message: see [`server_message`].
    pub fn message(&self) -> String {
        server_message(&self.headers, &self.body)
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

/// What a receiver's answer means for the request that got it.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    /// Accepted; `rejected_spans` were refused for good (OTLP `partialSuccess`).
    Accepted {
        /// Spans the receiver refused.
        rejected_spans: u64,
        /// Why, as the receiver said.
        message: String,
    },
    /// The same request may succeed later.
    Retry {
        /// The wait the receiver asked for.
        after: Option<Duration>,
        /// What happened.
        error: ExportError,
    },
    /// 413: the request is too large.
    TooLarge(ExportError),
    /// The request can never succeed.
    Fatal(ExportError),
}

/// Sends OTLP requests to one endpoint with fixed headers.
#[derive(Debug, Clone)]
pub struct Transport {
    provider: String,
    client: reqwest::Client,
    endpoint: String,
    headers: HeaderMap,
    options: TransportOptions,
    rejected: Arc<AtomicU64>,
}

/// Builds the HTTP client every provider uses: rustls, the given timeouts, no proxy
/// surprises beyond the system's.
pub fn http_client(options: &TransportOptions) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(options.connect_timeout)
        .user_agent(concat!("ops/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Turns `(name, value)` pairs into a header map, naming the bad one on error.
pub fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("{k:?} is not a valid HTTP header name"))?;
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| format!("the value of header {k:?} has characters HTTP does not allow"))?;
        if matches!(
            name.as_str(),
            "authorization" | "x-api-key" | "api_key" | "api-key" | "x-arms-license-key"
        ) {
            value.set_sensitive(true);
        }
        map.insert(name, value);
    }
    Ok(map)
}

impl Transport {
    /// A transport of `provider` posting to `endpoint` with `headers`.
    pub fn new(
        provider: impl Into<String>,
        endpoint: impl Into<String>,
        headers: HeaderMap,
        options: TransportOptions,
    ) -> Result<Self, String> {
        Ok(Self {
            provider: provider.into(),
            client: http_client(&options)?,
            endpoint: endpoint.into(),
            headers,
            options,
            rejected: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The provider name errors carry.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The headers every request carries.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The options.
    pub fn options(&self) -> &TransportOptions {
        &self.options
    }

    /// The HTTP client, for a dialect's own requests (credentials checks, tokens).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Spans receivers refused through OTLP `partialSuccess`, since this transport was built.
    pub fn rejected_spans(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Sends `request` and reads the whole answer. A connection failure or timeout is an
    /// error that says so.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<HttpReply, ExportError> {
        let response = request.send().await.map_err(|e| self.network_error(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.network_error(&e))?
            .to_vec();
        Ok(HttpReply {
            status,
            headers,
            body,
        })
    }

    fn network_error(&self, e: &reqwest::Error) -> ExportError {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "failed"
        };
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        ExportError::new(
            &self.provider,
            format!("request to {} {what}: {detail}", self.endpoint),
        )
    }

    /// Posts one encoded OTLP request body and classifies the answer.
    pub async fn post(&self, body: Vec<u8>, extra: &HeaderMap) -> Classified {
        self.post_within(body, extra, self.options.timeout).await
    }

    /// [`Transport::post`] with a time limit for this request (at most the configured one).
    async fn post_within(&self, body: Vec<u8>, extra: &HeaderMap, limit: Duration) -> Classified {
        let (body, encoding) = self.options.compression.apply(body);
        let mut request = self
            .client
            .post(&self.endpoint)
            .timeout(limit.min(self.options.timeout))
            .headers(self.headers.clone())
            .headers(extra.clone())
            .header(CONTENT_TYPE, self.options.encoding.content_type());
        if let Some(encoding) = encoding {
            request = request.header(CONTENT_ENCODING, encoding);
        }
        match self.send(request.body(body)).await {
            Ok(reply) => classify(&self.provider, &self.endpoint, &reply, SystemTime::now()),
            Err(error) => Classified::Retry { after: None, error },
        }
    }

    /// Sends `spans` (of a batch of `traces` traces) under `resource` and `scope`, splitting
    /// on 413, and reports the batch's outcome (see the module docs).
    pub async fn export(
        &self,
        resource: &Resource,
        scope: &InstrumentationScope,
        spans: Vec<IndexedSpan>,
        traces: usize,
        extra: &HeaderMap,
    ) -> ExportOutcome {
        if spans.is_empty() {
            return ExportOutcome::Delivered;
        }
        let deadline = Instant::now() + self.options.export_deadline;
        let mut failed = vec![false; traces];
        let mut retry: Option<(Option<Duration>, ExportError)> = None;
        let mut fatal: Option<ExportError> = None;
        let mut work: Vec<(Vec<IndexedSpan>, u32)> = vec![(spans, 0)];
        let max_requests = 2usize.pow(MAX_SPLIT_DEPTH + 1);
        let mut sent = 0usize;
        while let Some((chunk, depth)) = work.pop() {
            let mark = |failed: &mut Vec<bool>| {
                for s in &chunk {
                    if let Some(f) = failed.get_mut(s.trace) {
                        *f = true;
                    }
                }
            };
            if sent >= max_requests || Instant::now() >= deadline {
                mark(&mut failed);
                retry.get_or_insert((
                    None,
                    ExportError::new(
                        &self.provider,
                        format!(
                            "export to {} ran out of time after {sent} requests; the rest is sent again later",
                            self.endpoint
                        ),
                    ),
                ));
                continue;
            }
            sent += 1;
            let request = encode::request(
                resource,
                scope,
                chunk.iter().map(|s| s.span.clone()).collect(),
            );
            let left = deadline.saturating_duration_since(Instant::now());
            let body = self.options.encoding.encode(&request);
            match self.post_within(body, extra, left).await {
                Classified::Accepted {
                    rejected_spans,
                    message,
                } => {
                    if rejected_spans > 0 {
                        self.rejected.fetch_add(rejected_spans, Ordering::Relaxed);
                        tracing::warn!(
                            provider = %self.provider,
                            rejected_spans,
                            message = %message,
                            "ops: the OTLP receiver rejected some spans (partial success)"
                        );
                    }
                }
                Classified::TooLarge(error) => {
                    if chunk.len() > 1 && depth < MAX_SPLIT_DEPTH {
                        let mut first = chunk;
                        let second = first.split_off(first.len() / 2);
                        // Popped last-in first-out: the first half goes first.
                        work.push((second, depth + 1));
                        work.push((first, depth + 1));
                    } else {
                        mark(&mut failed);
                        fatal.get_or_insert(ExportError::new(
                            &self.provider,
                            format!(
                                "{} (even {} span(s) alone are too large; nothing more to split)",
                                error.message,
                                chunk.len()
                            ),
                        ));
                    }
                }
                Classified::Retry { after, error } => {
                    mark(&mut failed);
                    let after = match (retry.as_ref().and_then(|r| r.0), after) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                    let error = retry.take().map_or(error, |r| r.1);
                    retry = Some((after, error));
                }
                Classified::Fatal(error) => {
                    mark(&mut failed);
                    fatal.get_or_insert(error);
                }
            }
        }
        let failed: Vec<usize> = (0..traces).filter(|i| failed[*i]).collect();
        if failed.is_empty() {
            return ExportOutcome::Delivered;
        }
        if failed.len() == traces {
            return match (retry, fatal) {
                (Some((after, error)), _) => ExportOutcome::Retry { after, error },
                (None, Some(error)) => ExportOutcome::Fatal(error),
                (None, None) => unreachable!("a trace only fails with an error"),
            };
        }
        let error = fatal
            .or(retry.map(|r| r.1))
            .expect("a trace only fails with an error");
        ExportOutcome::Partial { failed, error }
    }
}

/// Classifies a receiver's answer to an OTLP export (see the module docs).
pub fn classify(provider: &str, endpoint: &str, reply: &HttpReply, now: SystemTime) -> Classified {
    let status = reply.status;
    if status.is_success() {
        let (rejected_spans, message) = partial_success(reply);
        return Classified::Accepted {
            rejected_spans,
            message,
        };
    }
    let error = ExportError::new(
        provider,
        format!(
            "{} answered HTTP {}: {}{}",
            endpoint,
            status,
            quote(&reply.message()),
            match status.as_u16() {
                401 | 403 => "; check the credentials in the tracing config",
                404 => "; check the endpoint in the tracing config",
                415 => "; the receiver does not take this content type",
                _ => "",
            }
        ),
    );
    match status.as_u16() {
        408 | 429 | 502 | 503 | 504 => Classified::Retry {
            after: retry_after(&reply.headers, now),
            error,
        },
        413 => Classified::TooLarge(error),
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

fn partial_success(reply: &HttpReply) -> (u64, String) {
    if reply.body.is_empty() {
        return (0, String::new());
    }
    let is_json = reply
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        let Some(json) = reply.json() else {
            return (0, String::new());
        };
        let Some(p) = json.get("partialSuccess") else {
            return (0, String::new());
        };
        let rejected = p
            .get("rejectedSpans")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0);
        let message = p
            .get("errorMessage")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        return (rejected, message);
    }
    match ExportTraceServiceResponse::decode(&reply.body[..]) {
        Ok(r) => r.partial_success.map_or((0, String::new()), |p| {
            (
                u64::try_from(p.rejected_spans).unwrap_or(0),
                p.error_message,
            )
        }),
        Err(_) => (0, String::new()),
    }
}

/// `google.rpc.Status`, the body OTLP receivers answer errors with in protobuf.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The message in an error answer: the `message` of a protobuf `google.rpc.Status`; the
/// `error` (or its `message`), `message`, `detail` or `error_code` of a JSON object; else the
/// body as text. Empty bodies give `(empty body)`.
pub fn server_message(headers: &HeaderMap, body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".into();
    }
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
            for key in ["error", "message", "detail", "error_code"] {
                if let Some(m) = obj.get(key).and_then(pick) {
                    return m;
                }
            }
        }
        return json.to_string();
    }
    String::from_utf8_lossy(body).trim().to_owned()
}

/// `message` in double quotes, cut to a readable length.
pub fn quote(message: &str) -> String {
    let mut cut: String = message.chars().take(MAX_QUOTE).collect();
    if cut.len() < message.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&str, &str)], body: &[u8]) -> HttpReply {
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

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let r = reply(429, &[("retry-after", "7")], b"");
        assert_eq!(retry_after(&r.headers, now), Some(Duration::from_secs(7)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(90));
        let r = reply(503, &[("retry-after", &date)], b"");
        assert_eq!(retry_after(&r.headers, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        let r = reply(503, &[("retry-after", &past)], b"");
        assert_eq!(retry_after(&r.headers, now), Some(Duration::ZERO));
        let r = reply(503, &[("retry-after", "999999")], b"");
        assert_eq!(retry_after(&r.headers, now), Some(MAX_RETRY_AFTER));
        let r = reply(503, &[("retry-after", "soon")], b"");
        assert_eq!(retry_after(&r.headers, now), None);
    }

    #[test]
    fn statuses_are_classified() {
        let now = SystemTime::now();
        for code in [408, 429, 502, 503, 504] {
            assert!(
                matches!(
                    classify("p", "u", &reply(code, &[], b""), now),
                    Classified::Retry { .. }
                ),
                "{code}"
            );
        }
        assert!(matches!(
            classify("p", "u", &reply(413, &[], b""), now),
            Classified::TooLarge(_)
        ));
        for code in [400, 401, 403, 404, 415, 500, 507] {
            assert!(
                matches!(
                    classify("p", "u", &reply(code, &[], b""), now),
                    Classified::Fatal(_)
                ),
                "{code}"
            );
        }
        match classify(
            "langfuse",
            "http://h/api/public/otel/v1/traces",
            &reply(
                401,
                &[("content-type", "application/json")],
                br#"{"error":"Invalid credentials"}"#,
            ),
            now,
        ) {
            Classified::Fatal(e) => {
                let text = e.to_string();
                assert!(text.starts_with("langfuse: "), "{text}");
                assert!(text.contains("401 Unauthorized"), "{text}");
                assert!(text.contains("\"Invalid credentials\""), "{text}");
                assert!(text.contains("check the credentials"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_success_is_read_in_both_formats() {
        let body = ExportTraceServiceResponse {
            partial_success: Some(
                opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess {
                    rejected_spans: 2,
                    error_message: "bad span".into(),
                },
            ),
        }
        .encode_to_vec();
        let r = reply(200, &[("content-type", "application/x-protobuf")], &body);
        assert_eq!(
            classify("p", "u", &r, SystemTime::now()),
            Classified::Accepted {
                rejected_spans: 2,
                message: "bad span".into()
            }
        );
        let r = reply(
            200,
            &[("content-type", "application/json")],
            br#"{"partialSuccess":{"rejectedSpans":"3","errorMessage":"m"}}"#,
        );
        assert!(matches!(
            classify("p", "u", &r, SystemTime::now()),
            Classified::Accepted {
                rejected_spans: 3,
                ..
            }
        ));
        let r = reply(200, &[("content-type", "application/json")], b"{}");
        assert!(matches!(
            classify("p", "u", &r, SystemTime::now()),
            Classified::Accepted {
                rejected_spans: 0,
                ..
            }
        ));
    }

    #[test]
    fn server_messages_are_found() {
        let status = RpcStatus {
            code: 3,
            message: "spans missing".into(),
        }
        .encode_to_vec();
        let r = reply(400, &[("content-type", "application/x-protobuf")], &status);
        assert_eq!(r.message(), "spans missing");
        let r = reply(
            400,
            &[],
            br#"{"detail":"Invalid OpenTelemetry protobuf format"}"#,
        );
        assert_eq!(r.message(), "Invalid OpenTelemetry protobuf format");
        let r = reply(400, &[], br#"{"error":{"message":"nested"}}"#);
        assert_eq!(r.message(), "nested");
        let r = reply(400, &[], b"  plain text \n");
        assert_eq!(r.message(), "plain text");
        assert_eq!(reply(400, &[], b"").message(), "(empty body)");
        let long = "x".repeat(600);
        assert!(quote(&long).ends_with("…\""));
        let err = reply(401, &[], b"nope")
            .check("phoenix", "the credentials check")
            .unwrap_err();
        assert!(err.to_string().contains("invalid credentials"), "{err}");
        assert!(reply(204, &[], b"").check("p", "x").is_ok());
    }
}
