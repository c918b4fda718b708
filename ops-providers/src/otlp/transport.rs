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
//!
//! The HTTP parts (the client, the status rules, `Retry-After`, splitting a batch) live in
//! [`crate::http`], shared with the native-API providers; this module adds what is OTLP's own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use ops_core::provider::{Redactor, redact_url};
use ops_core::{ExportError, ExportOutcome};
use prost::Message;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap};

#[cfg(test)]
use crate::http::RpcStatus;
pub use crate::http::{
    Classified, HttpReply, MAX_RETRY_AFTER, MAX_SPLIT_DEPTH, StatusRules, header_map, quote,
    retry_after, server_message,
};

use super::encode::{self, Compression, Encoding, IndexedSpan};

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
            timeout: crate::http::DEFAULT_TIMEOUT,
            connect_timeout: crate::http::DEFAULT_CONNECT_TIMEOUT,
            export_deadline: crate::http::DEFAULT_EXPORT_DEADLINE,
            encoding: Encoding::Protobuf,
            compression: Compression::Gzip,
        }
    }
}

/// Sends OTLP requests to one endpoint with fixed headers.
#[derive(Clone)]
pub struct Transport {
    provider: String,
    client: reqwest::Client,
    endpoint: String,
    headers: HeaderMap,
    options: TransportOptions,
    rejected: Arc<AtomicU64>,
    redactor: Redactor,
    /// The protobuf of the last request, kept for the next one (see [`MAX_SCRATCH`]).
    scratch: Arc<Mutex<Vec<u8>>>,
}

/// The largest request buffer a [`Transport`] keeps between requests; a larger one is freed.
const MAX_SCRATCH: usize = 16 << 20;

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("provider", &self.provider)
            .field(
                "endpoint",
                &self.redactor.redact(&redact_url(&self.endpoint)),
            )
            .field("headers", &crate::http::header_names(&self.headers))
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Builds the HTTP client every provider uses: rustls, the given timeouts, no proxy
/// surprises beyond the system's (see [`crate::http::client`]).
pub fn http_client(options: &TransportOptions) -> Result<reqwest::Client, String> {
    crate::http::client(options.timeout, options.connect_timeout)
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
            redactor: Redactor::default(),
            scratch: Arc::default(),
        })
    }

    /// Removes what `redactor` removes from the log lines and Debug output of this transport
    /// (the provider removes it from its errors).
    #[must_use]
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// The redactor of the provider's secrets.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The redactor of the provider's secrets and of the values of `headers` (headers made per
    /// export, such as a fresh OAuth token).
    pub fn with_header_secrets(&self, headers: &HeaderMap) -> Redactor {
        if headers.is_empty() {
            return self.redactor.clone();
        }
        let values = headers.values().filter_map(|v| v.to_str().ok());
        self.redactor
            .clone()
            .merge(&crate::http::secrets_redactor(values))
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
        crate::http::send(&self.provider, &self.endpoint, request).await
    }

    /// Posts one encoded OTLP request body and classifies the answer.
    pub async fn post(&self, body: Vec<u8>, extra: &HeaderMap) -> Classified {
        self.post_within(body, extra, self.options.timeout).await
    }

    /// [`Transport::post`] with a time limit for this request (at most the configured one).
    async fn post_within(&self, body: Vec<u8>, extra: &HeaderMap, limit: Duration) -> Classified {
        let (body, encoding) = self.options.compression.apply(body);
        self.post_compressed(body, encoding, extra, limit).await
    }

    /// Posts a body that is already compressed (`encoding` is its `Content-Encoding`).
    async fn post_compressed(
        &self,
        body: Vec<u8>,
        encoding: Option<&'static str>,
        extra: &HeaderMap,
        limit: Duration,
    ) -> Classified {
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

    /// The request body of `spans` under `resource` and `scope`, compressed, with its
    /// `Content-Encoding`. Protobuf is written straight from the spans into a buffer the
    /// transport keeps from one request to the next (no owned request is built, no span is
    /// cloned); JSON goes through the owned request.
    fn body(
        &self,
        resource: &Resource,
        scope: &InstrumentationScope,
        spans: &[IndexedSpan],
    ) -> (Vec<u8>, Option<&'static str>) {
        let compression = self.options.compression;
        match self.options.encoding {
            Encoding::Protobuf => {
                // A clone of this transport busy with its own request: a buffer of our own.
                let mut own = Vec::new();
                let mut kept = self.scratch.try_lock().ok();
                let buf = kept.as_deref_mut().unwrap_or(&mut own);
                encode::encode_protobuf_into(resource, scope, spans.iter().map(|s| &s.span), buf);
                let out = compression.apply_to(buf);
                if buf.capacity() > MAX_SCRATCH {
                    *buf = Vec::new();
                }
                out
            }
            Encoding::Json => compression.apply(self.options.encoding.encode(&encode::request(
                resource,
                scope,
                spans.iter().map(|s| s.span.clone()).collect(),
            ))),
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
        // Headers made per export (an OAuth token) are secrets too.
        let redactor = self.with_header_secrets(extra);
        let mut splitter = crate::http::Splitter::new(
            &self.provider,
            &self.endpoint,
            vec![spans],
            traces,
            self.options.export_deadline,
            |s: &IndexedSpan| s.trace,
        );
        while let Some(left) = splitter.next_chunk() {
            let (body, encoding) = self.body(resource, scope, splitter.current());
            let classified = self.post_compressed(body, encoding, extra, left).await;
            if let Classified::Accepted {
                rejected_spans,
                message,
            } = &classified
                && *rejected_spans > 0
            {
                self.rejected.fetch_add(*rejected_spans, Ordering::Relaxed);
                tracing::warn!(
                    provider = %self.provider,
                    rejected_spans,
                    message = %redactor.redact(&quote(message)),
                    "ops: the OTLP receiver rejected some spans (partial success)"
                );
            }
            splitter.done(classified);
        }
        let report = splitter.finish();
        report.outcome(traces)
    }
}

/// Classifies a receiver's answer to an OTLP export (see the module docs): the common rules
/// of [`crate::http::classify_status`], and a 2xx's `partialSuccess`.
pub fn classify(provider: &str, endpoint: &str, reply: &HttpReply, now: SystemTime) -> Classified {
    if reply.status.is_success() {
        let (rejected_spans, message) = partial_success(reply);
        return Classified::Accepted {
            rejected_spans,
            message,
        };
    }
    crate::http::classify_status(provider, endpoint, reply, now, StatusRules::default())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::reply;

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
