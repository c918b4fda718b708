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

use base64::Engine as _;
use ops_core::provider::ProviderConfig;

/// The value of environment variable `name`, when set and not blank.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The first of `names` that is set.
pub(crate) fn first_var(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| var(n))
}

/// Sets `key` in `config` from the first of `names` that is set.
pub(crate) fn set_from(config: &mut ProviderConfig, key: &str, names: &[&str]) {
    if let Some(v) = first_var(names) {
        config.set(key, v);
    }
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
