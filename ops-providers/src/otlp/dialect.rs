//! What differs between OTLP platforms, and the provider built from it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use ops_core::async_trait;
use ops_core::provider::{ConfigError, Redactor, redact_url};
use ops_core::{ExportError, ExportOutcome, Observation, Provider, Trace};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap};

use super::encode::{self, Attributes};
use super::transport::{Transport, TransportOptions};

/// A platform's flavour of OTLP: where spans go, how they authenticate, and which attributes
/// carry the LLM semantics. [`OtlpProvider`] turns a dialect into an [`ops_core::Provider`].
///
/// Only [`Dialect::name`], [`Dialect::endpoint`] and [`Dialect::span_attributes`] are
/// required; the rest have defaults that suit a plain OTLP receiver.
#[async_trait]
pub trait Dialect: Send + Sync + fmt::Debug + 'static {
    /// The provider's registry name, which errors start with.
    fn name(&self) -> &'static str;

    /// The URL spans are POSTed to.
    fn endpoint(&self) -> String;

    /// Headers every request carries (authentication, project routing).
    fn headers(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The secret values of the dialect's config (keys, tokens, and the credentials headers'
    /// values): [`OtlpProvider`] removes them (and their encoded forms) from every error, log
    /// line and Debug output, so a server that quotes the request back cannot leak them.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }

    /// Headers computed for each export, such as short-lived OAuth tokens.
    async fn dynamic_headers(&self, _transport: &Transport) -> Result<HeaderMap, ExportError> {
        Ok(HeaderMap::new())
    }

    /// The transport options: encoding, compression, timeouts.
    fn transport_options(&self) -> TransportOptions {
        TransportOptions::default()
    }

    /// Adds resource attributes; `service.name` (default `ops`) and `telemetry.sdk.*` are
    /// already there and may be replaced.
    fn resource_attributes(&self, _attrs: &mut Attributes) {}

    /// The instrumentation scope's name.
    fn scope_name(&self) -> &str {
        encode::SCOPE_NAME
    }

    /// Adds attributes of the instrumentation scope.
    fn scope_attributes(&self, _attrs: &mut Attributes) {}

    /// The span's name; the observation's name by default.
    fn span_name(&self, _trace: &Trace, observation: &Observation) -> String {
        observation.name.clone()
    }

    /// The span's OTLP kind; `INTERNAL` by default.
    fn span_kind(&self, _trace: &Trace, _observation: &Observation) -> SpanKind {
        SpanKind::Internal
    }

    /// The span's attributes: the platform's keys for the observation and its trace.
    fn span_attributes(&self, trace: &Trace, observation: &Observation, attrs: &mut Attributes);

    /// The span's events; an `exception` event for a failed observation by default.
    fn span_events(&self, _trace: &Trace, observation: &Observation) -> Vec<Event> {
        encode::exception_event(observation).into_iter().collect()
    }

    /// Checks the credentials with an authenticated request. By default it posts an export
    /// with no spans to [`Dialect::endpoint`], which OTLP receivers accept once authenticated.
    async fn api_check(&self, transport: &Transport) -> Result<(), ExportError> {
        empty_export_check(self, transport).await
    }

    /// The platform's id of the project, where it has one.
    async fn project_key(&self, _transport: &Transport) -> Result<Option<String>, ExportError> {
        Ok(None)
    }

    /// Where the user sees the traces, where the platform has such a page.
    async fn project_url(&self, _transport: &Transport) -> Result<Option<String>, ExportError> {
        Ok(None)
    }
}

/// The default credentials check: an export with no spans, with the dialect's headers.
pub async fn empty_export_check<D: Dialect + ?Sized>(
    dialect: &D,
    transport: &Transport,
) -> Result<(), ExportError> {
    let options = transport.options();
    let body = options
        .encoding
        .encode(&ExportTraceServiceRequest::default());
    let (body, content_encoding) = options.compression.apply(body);
    let mut request = transport
        .client()
        .post(transport.endpoint())
        .headers(transport.headers().clone())
        .headers(dialect.dynamic_headers(transport).await?)
        .header(CONTENT_TYPE, options.encoding.content_type());
    if let Some(e) = content_encoding {
        request = request.header(CONTENT_ENCODING, e);
    }
    transport.send(request.body(body)).await?.check(
        dialect.name(),
        "the credentials check (an empty OTLP export)",
    )
}

/// The [`Provider`] of a [`Dialect`]: encodes each batch as one OTLP request (split on 413)
/// and classifies the answer.
pub struct OtlpProvider<D: Dialect> {
    dialect: Arc<D>,
    transport: Transport,
    redactor: Redactor,
}

impl<D: Dialect> fmt::Debug for OtlpProvider<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dialect = format!("{:?}", self.dialect);
        f.debug_struct("OtlpProvider")
            .field(
                "dialect",
                &format_args!("{}", self.redactor.redact(&dialect)),
            )
            .field(
                "endpoint",
                &self.redactor.redact(&redact_url(self.transport.endpoint())),
            )
            .field("timeout", &self.transport.options().timeout)
            .finish_non_exhaustive()
    }
}

impl<D: Dialect> OtlpProvider<D> {
    /// A provider for `dialect` with its own transport options. Fails when its endpoint is not
    /// an http(s) URL with a host, its headers are not valid HTTP, or the HTTP client cannot be
    /// built.
    pub fn new(dialect: D) -> Result<Self, ConfigError> {
        let options = dialect.transport_options();
        Self::with_options(dialect, options)
    }

    /// A provider for `dialect` whose requests time out after `timeout` (the `timeout` key of
    /// every provider); connecting gets at most that too, and a whole export (splits included)
    /// at least that.
    pub fn with_timeout(dialect: D, timeout: Duration) -> Result<Self, ConfigError> {
        let mut options = dialect.transport_options();
        options.timeout = timeout;
        options.connect_timeout = options.connect_timeout.min(timeout);
        options.export_deadline = options.export_deadline.max(timeout);
        Self::with_options(dialect, options)
    }

    fn with_options(dialect: D, options: TransportOptions) -> Result<Self, ConfigError> {
        let build = |message: String| ConfigError::Build {
            provider: dialect.name().to_owned(),
            message,
        };
        let endpoint = dialect.endpoint();
        ops_core::provider::check_url(&endpoint).map_err(|reason| ConfigError::Invalid {
            provider: dialect.name().to_owned(),
            field: "endpoint".to_owned(),
            reason,
        })?;
        let headers = super::transport::header_map(&dialect.headers()).map_err(build)?;
        let redactor = crate::http::secrets_redactor(dialect.secrets());
        let transport = Transport::new(dialect.name(), endpoint, headers, options)
            .map_err(build)?
            .with_redactor(redactor.clone());
        Ok(Self {
            dialect: Arc::new(dialect),
            transport,
            redactor,
        })
    }

    /// The dialect.
    pub fn dialect(&self) -> &D {
        &self.dialect
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The request a batch is sent as (before any split), for inspection and tests.
    pub fn encode(&self, batch: &[Arc<Trace>]) -> ExportTraceServiceRequest {
        encode::encode_request(self.dialect.as_ref(), batch)
    }

    /// Spans the platform refused through OTLP `partialSuccess` so far.
    pub fn rejected_spans(&self) -> u64 {
        self.transport.rejected_spans()
    }
}

#[async_trait]
impl<D: Dialect> Provider for OtlpProvider<D> {
    fn name(&self) -> &str {
        self.dialect.name()
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        let dialect = self.dialect.as_ref();
        let extra = match dialect.dynamic_headers(&self.transport).await {
            Ok(h) => h,
            Err(error) => return ExportOutcome::retry(self.redactor.error(error)),
        };
        let spans = encode::encode_spans(dialect, batch);
        let outcome = self
            .transport
            .export(
                &encode::resource(dialect),
                &encode::scope(dialect),
                spans,
                batch.len(),
                &extra,
            )
            .await;
        self.transport.with_header_secrets(&extra).outcome(outcome)
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        self.dialect
            .api_check(&self.transport)
            .await
            .map_err(|e| self.redactor.error(e))
    }

    async fn project_key(&self) -> Result<Option<String>, ExportError> {
        self.dialect
            .project_key(&self.transport)
            .await
            .map_err(|e| self.redactor.error(e))
    }

    async fn project_url(&self) -> Result<Option<String>, ExportError> {
        self.dialect
            .project_url(&self.transport)
            .await
            .map_err(|e| self.redactor.error(e))
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.transport.options().timeout)
    }
}
