//! The `otlp` provider: any OTLP/HTTP endpoint (an OpenTelemetry Collector, Jaeger, Tempo,
//! Honeycomb, ...), with the GenAI semantic conventions ([`super::genai`]).
//!
//! Config keys:
//! - `endpoint` (required): the base URL (`/v1/traces` is appended) or the full traces URL.
//! - `headers` (secret): `key=value` pairs separated by commas, values percent-encoded.
//! - `service_name` (default `ops`): the resource's `service.name`.
//! - `protocol` (default `http/protobuf`; or `http/json`).
//! - `compression` (default `gzip`; or `none`).
//! - `timeout` (default `10`): seconds one request may take, 0.01 to 600.
//!
//! Environment (the OpenTelemetry SDK variables): `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as
//! is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (base), `OTEL_EXPORTER_OTLP_TRACES_HEADERS` or
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`,
//! `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION`, `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` (whole
//! milliseconds; else `OPS_TRACE_EXPORT_TIMEOUT` in seconds). An endpoint variable that is not an
//! http(s) URL with a host is an error naming it.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use ops_core::provider::{
    ConfigError, ConfigField, EnvVar, Provider, ProviderConfig, ProviderFactory, TIMEOUT_FIELD,
    quote_value, validate_project_name, validate_timeout, validate_url_with_path,
};
use ops_core::{Observation, Trace};

use super::encode::{Attributes, Compression, Encoding};
use super::transport::TransportOptions;
use super::{Dialect, OtlpProvider, env, genai};

/// The registry name.
pub const NAME: &str = "otlp";

/// The config keys.
pub const FIELDS: &[ConfigField] = &[
    ConfigField::plain("endpoint"),
    ConfigField::secret("headers").not_required().multiline(),
    ConfigField::with_default("service_name", "ops"),
    ConfigField::with_default("protocol", "http/protobuf"),
    ConfigField::with_default("compression", "gzip"),
    TIMEOUT_FIELD,
];

/// The generic OTLP dialect. Its Debug output shows header names, never their values.
#[derive(Clone)]
pub struct GenericOtlp {
    /// The full traces URL.
    pub endpoint: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// `service.name`.
    pub service_name: String,
    /// The body format.
    pub encoding: Encoding,
    /// The body compression.
    pub compression: Compression,
}

impl std::fmt::Debug for GenericOtlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericOtlp")
            .field("endpoint", &ops_core::provider::redact_url(&self.endpoint))
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("service_name", &self.service_name)
            .field("encoding", &self.encoding)
            .field("compression", &self.compression)
            .finish()
    }
}

impl GenericOtlp {
    /// The dialect of a validated config.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let endpoint = config.require("endpoint")?;
        let headers = match config.get("headers") {
            Some(h) => env::parse_headers(config, "headers", h)?,
            None => Vec::new(),
        };
        let protocol = config.get("protocol").unwrap_or("http/protobuf");
        let encoding = Encoding::parse(protocol).ok_or_else(|| {
            config.invalid(
                "protocol",
                format!(
                    "{} is not supported; use http/protobuf or http/json (gRPC is not supported)",
                    quote_value(protocol)
                ),
            )
        })?;
        let compression_value = config.get("compression").unwrap_or("gzip");
        let compression = Compression::parse(compression_value).ok_or_else(|| {
            config.invalid(
                "compression",
                format!(
                    "{} is not supported; use gzip or none",
                    quote_value(compression_value)
                ),
            )
        })?;
        Ok(Self {
            endpoint: env::traces_url(endpoint, "/v1/traces"),
            headers,
            service_name: config.get("service_name").unwrap_or("ops").to_owned(),
            encoding,
            compression,
        })
    }
}

impl Dialect for GenericOtlp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn headers(&self) -> Vec<(String, String)> {
        self.headers.clone()
    }

    fn secrets(&self) -> Vec<String> {
        // The whole header list is a secret (`authorization`, `x-honeycomb-team`, ...).
        self.headers.iter().map(|(_, v)| v.clone()).collect()
    }

    fn transport_options(&self) -> TransportOptions {
        TransportOptions {
            encoding: self.encoding,
            compression: self.compression,
            ..TransportOptions::default()
        }
    }

    fn resource_attributes(&self, attrs: &mut Attributes) {
        attrs.str("service.name", &self.service_name);
    }

    fn span_name(&self, _trace: &Trace, observation: &Observation) -> String {
        genai::span_name(observation)
    }

    fn span_kind(&self, _trace: &Trace, observation: &Observation) -> SpanKind {
        genai::span_kind(observation)
    }

    fn span_attributes(&self, trace: &Trace, observation: &Observation, attrs: &mut Attributes) {
        genai::span_attributes(trace, observation, attrs);
    }
}

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    config.require("endpoint")?;
    validate_url_with_path(config, "endpoint", "", None)?;
    validate_project_name(config, "service_name", "ops");
    validate_timeout(config)?;
    config.apply_field_rules()?;
    GenericOtlp::from_config(config).map(|_| ())
}

fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let (var, endpoint) = match env::url_var(NAME, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")? {
        Some(traces) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces),
        None => match env::url_var(NAME, "OTEL_EXPORTER_OTLP_ENDPOINT")? {
            Some(base) => (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                env::traces_url(&base, "/v1/traces"),
            ),
            None => return Ok(None),
        },
    };
    let mut config = ProviderConfig::new(NAME);
    config.set_env("endpoint", endpoint, var);
    env::set_from(
        &mut config,
        "headers",
        &[
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ],
    )?;
    env::set_from(&mut config, "service_name", &["OTEL_SERVICE_NAME"])?;
    env::set_from(
        &mut config,
        "protocol",
        &[
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ],
    )?;
    env::set_from(
        &mut config,
        "compression",
        &[
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ],
    )?;
    env::set_otlp_timeout(&mut config)?;
    Ok(Some(config))
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(OtlpProvider::with_timeout(
        GenericOtlp::from_config(config)?,
        config.timeout()?,
    )?))
}

ops_core::inventory::submit! {
    ProviderFactory::new(NAME, "OpenTelemetry (OTLP/HTTP)", FIELDS, build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(ENV_VARS)
}

/// The OpenTelemetry SDK's variables (the `TRACES_` ones win).
const ENV_VARS: &[EnvVar] = &[
    EnvVar::sets("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "endpoint"),
    EnvVar::sets("OTEL_EXPORTER_OTLP_ENDPOINT", "endpoint"),
    EnvVar::sets("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "headers"),
    EnvVar::sets("OTEL_EXPORTER_OTLP_HEADERS", "headers"),
    EnvVar::sets("OTEL_SERVICE_NAME", "service_name"),
    EnvVar::sets("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "protocol"),
    EnvVar::sets("OTEL_EXPORTER_OTLP_PROTOCOL", "protocol"),
    EnvVar::sets("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "compression"),
    EnvVar::sets("OTEL_EXPORTER_OTLP_COMPRESSION", "compression"),
    crate::env::OTLP_TIMEOUT_VARS[0],
    crate::env::OTLP_TIMEOUT_VARS[1],
    crate::env::EXPORT_TIMEOUT_VAR,
];
