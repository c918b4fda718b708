//! Small helpers every provider shares: environment variables, URLs and HTTP Basic auth.

// With only the `http` feature (no provider), nothing uses these.
#![cfg_attr(
    not(any(
        feature = "otlp",
        feature = "langsmith",
        feature = "opik",
        feature = "weave"
    )),
    allow(dead_code)
)]

use std::time::Duration;

use base64::Engine as _;
use ops_core::provider::{ConfigError, EnvVar, ProviderConfig, TIMEOUT_FIELD, check_url};

/// The error for environment variable `var` of `provider`.
fn env_error(provider: &str, error: ops_core::env::EnvError) -> ConfigError {
    ConfigError::Env {
        provider: provider.to_owned(),
        error,
    }
}

/// The value of environment variable `name`, trimmed, when set and not blank; an error naming
/// it when it is not UTF-8.
pub(crate) fn var(provider: &str, name: &str) -> Result<Option<String>, ConfigError> {
    ops_core::env::non_blank(name).map_err(|e| env_error(provider, e))
}

/// The first of `names` that is set (and not blank), with its name.
pub(crate) fn first_var<'a>(
    provider: &str,
    names: &[&'a str],
) -> Result<Option<(&'a str, String)>, ConfigError> {
    for name in names {
        if let Some(v) = var(provider, name)? {
            return Ok(Some((name, v)));
        }
    }
    Ok(None)
}

/// Sets `key` in `config` from the first of `names` that is set, remembering the variable.
pub(crate) fn set_from(
    config: &mut ProviderConfig,
    key: &str,
    names: &[&str],
) -> Result<(), ConfigError> {
    if let Some((name, v)) = first_var(config.provider(), names)? {
        config.set_env(key, v, name);
    }
    Ok(())
}

/// The URL in environment variable `name`, when set: it must be http(s) with a host, else the
/// error names the variable.
pub(crate) fn url_var(provider: &str, name: &str) -> Result<Option<String>, ConfigError> {
    let Some(v) = var(provider, name)? else {
        return Ok(None);
    };
    check_url(&v).map_err(|reason| {
        env_error(
            provider,
            ops_core::env::EnvError::InvalidSecret {
                var: name.to_owned(),
                expected: reason,
            },
        )
    })?;
    Ok(Some(v))
}

/// Sets `key` from the first of `names` that is set, checked as a URL ([`url_var`]).
#[cfg_attr(
    not(any(feature = "langfuse", feature = "langsmith", feature = "weave")),
    allow(dead_code)
)]
pub(crate) fn set_url_from(
    config: &mut ProviderConfig,
    key: &str,
    names: &[&str],
) -> Result<(), ConfigError> {
    for name in names {
        if let Some(v) = url_var(config.provider(), name)? {
            config.set_env(key, v, *name);
            break;
        }
    }
    Ok(())
}

/// The per-request timeout every provider reads when nothing more specific is set: seconds,
/// fractions allowed, 0.01 to 600.
pub(crate) const EXPORT_TIMEOUT_ENV: &str = "OPS_TRACE_EXPORT_TIMEOUT";
/// The OTLP exporters' timeouts (the OpenTelemetry spec: whole milliseconds; the traces one
/// wins).
pub(crate) const OTLP_TIMEOUT_ENVS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
];

/// [`EXPORT_TIMEOUT_ENV`] as a declared variable.
pub(crate) const EXPORT_TIMEOUT_VAR: EnvVar = EnvVar::sets(EXPORT_TIMEOUT_ENV, "timeout");
/// The OTLP timeouts ([`OTLP_TIMEOUT_ENVS`]) as declared variables.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
pub(crate) const OTLP_TIMEOUT_VARS: [EnvVar; 2] = [
    EnvVar::sets(OTLP_TIMEOUT_ENVS[0], "timeout"),
    EnvVar::sets(OTLP_TIMEOUT_ENVS[1], "timeout"),
];

const TIMEOUT_MIN: Duration = Duration::from_millis(10);
const TIMEOUT_MAX: Duration = Duration::from_secs(600);

/// How a provider's timeout variable is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TimeoutUnit {
    /// Seconds, fractions allowed (`OPS_TRACE_EXPORT_TIMEOUT`, `LANGFUSE_TIMEOUT`).
    Seconds,
    /// Whole milliseconds (the OpenTelemetry variables).
    Millis,
}

/// Sets key `timeout` from the first of `vars` that is set (each with its unit), else from
/// `OPS_TRACE_EXPORT_TIMEOUT`. A value out of range (10 ms to 600 s) is an error naming the
/// variable.
pub(crate) fn set_timeout_from(
    config: &mut ProviderConfig,
    vars: &[(&str, TimeoutUnit)],
) -> Result<(), ConfigError> {
    let provider = config.provider().to_owned();
    let all = vars
        .iter()
        .copied()
        .chain([(EXPORT_TIMEOUT_ENV, TimeoutUnit::Seconds)]);
    for (name, unit) in all {
        let parsed = ops_core::env::parse_var(name, |v| match unit {
            TimeoutUnit::Seconds => ops_core::env::seconds(v, TIMEOUT_MIN, TIMEOUT_MAX),
            TimeoutUnit::Millis => ops_core::env::milliseconds(v, TIMEOUT_MIN, TIMEOUT_MAX),
        })
        .map_err(|e| env_error(&provider, e))?;
        if let Some(d) = parsed {
            config.set_env(TIMEOUT_FIELD.name, format!("{}", d.as_secs_f64()), name);
            return Ok(());
        }
    }
    Ok(())
}

/// [`set_timeout_from`] with the OpenTelemetry variables: what every OTLP-based provider reads.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
pub(crate) fn set_otlp_timeout(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    set_timeout_from(
        config,
        &[
            (OTLP_TIMEOUT_ENVS[0], TimeoutUnit::Millis),
            (OTLP_TIMEOUT_ENVS[1], TimeoutUnit::Millis),
        ],
    )
}

/// `Basic base64(user:password)`.
#[cfg_attr(
    not(any(feature = "langfuse", feature = "mlflow", feature = "weave")),
    allow(dead_code)
)]
pub(crate) fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `base` with `path` appended, with exactly one `/` between them.
#[cfg_attr(
    not(any(feature = "otlp", feature = "langsmith", feature = "weave")),
    allow(dead_code)
)]
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// `s` percent-encoded for one URL path segment or query value.
#[cfg_attr(
    not(any(
        feature = "phoenix",
        feature = "langsmith",
        feature = "opik",
        feature = "weave"
    )),
    allow(dead_code)
)]
pub(crate) fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Whether `url`'s host is this machine (`localhost`, `127.x.x.x` or `::1`).
#[cfg_attr(not(feature = "langsmith"), allow(dead_code))]
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_auth() {
        assert_eq!(join("http://h/", "/v1/traces"), "http://h/v1/traces");
        assert_eq!(
            basic_auth("pk-lf-fake-public", "sk-lf-fake-secret"),
            "Basic cGstbGYtZmFrZS1wdWJsaWM6c2stbGYtZmFrZS1zZWNyZXQ="
        );
        assert_eq!(url_segment("my proj/1"), "my%20proj%2F1");
        for (u, want) in [
            ("http://localhost:1", true),
            ("http://127.0.0.2", true),
            ("http://[::1]:8", true),
            ("https://api.smith.langchain.com", false),
        ] {
            assert_eq!(is_loopback(&url::Url::parse(u).unwrap()), want, "{u}");
        }
    }
}
