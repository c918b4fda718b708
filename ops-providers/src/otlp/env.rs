//! Small helpers shared by the dialects: environment variables, header lists, URLs, auth.

use ops_core::provider::{ConfigError, ProviderConfig};

#[cfg(any(feature = "langfuse", feature = "mlflow"))]
pub(crate) use crate::env::basic_auth;
#[cfg(feature = "langfuse")]
pub(crate) use crate::env::{TimeoutUnit, set_timeout_from, set_url_from};
pub(crate) use crate::env::{join, set_from, set_otlp_timeout, url_var, var};

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a header list in the `OTEL_EXPORTER_OTLP_HEADERS` format: `key=value` pairs
/// separated by commas, values percent-encoded. Also accepts newlines as separators and
/// `key: value` pairs.
pub(crate) fn parse_headers(
    config: &ProviderConfig,
    field: &str,
    list: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (position, item) in list
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let (k, v) = item
            .split_once('=')
            .or_else(|| item.split_once(':'))
            .ok_or_else(|| {
                // The list holds credentials: say where, never what.
                config.invalid(
                    field,
                    format!(
                        "header {} of the list is not `key=value` (its text is not shown); write \
                         headers as `key1=value1,key2=value2`",
                        position + 1
                    ),
                )
            })?;
        let key = k.trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(config.invalid(
                field,
                format!(
                    "header {} of the list has no valid name (letters, digits, '-', '_', '.'; its \
                     text is not shown)",
                    position + 1
                ),
            ));
        }
        out.push((key.to_ascii_lowercase(), percent_decode(v.trim())));
    }
    Ok(out)
}

/// A URL to POST traces to: `endpoint` as given when its path already ends with `suffix`,
/// else `endpoint` + `suffix`.
pub(crate) fn traces_url(endpoint: &str, suffix: &str) -> String {
    let trimmed = endpoint.trim().trim_end_matches('/');
    if trimmed.ends_with(suffix.trim_end_matches('/')) {
        trimmed.to_owned()
    } else {
        join(trimmed, suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists() {
        let c = ProviderConfig::new("otlp");
        let h =
            parse_headers(&c, "headers", "Authorization=Basic%20abc, x-team = a=b ,\n").unwrap();
        assert_eq!(
            h,
            [
                ("authorization".into(), "Basic abc".into()),
                ("x-team".into(), "a=b".into())
            ]
        );
        let h = parse_headers(&c, "headers", "api-key: k").unwrap();
        assert_eq!(h, [("api-key".into(), "k".into())]);
        let err = parse_headers(&c, "headers", "novalue")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`headers`") && err.contains("key1=value1"),
            "{err}"
        );
        let err = parse_headers(&c, "headers", "x=1,authorization Bearer sk-secret-token")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("header 2") && !err.contains("sk-secret"),
            "values are never quoted: {err}"
        );
        let err = parse_headers(&c, "headers", "bad key sk-secret-token=v")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("sk-secret"), "{err}");
        assert_eq!(percent_decode("a%2Cb%zz%"), "a,b%zz%");
    }

    #[test]
    fn urls_and_auth() {
        assert_eq!(
            traces_url("http://h:4318", "/v1/traces"),
            "http://h:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://h/v1/traces/", "/v1/traces"),
            "http://h/v1/traces"
        );
        assert_eq!(
            crate::env::basic_auth("pk-lf-fake-public", "sk-lf-fake-secret"),
            "Basic cGstbGYtZmFrZS1wdWJsaWM6c2stbGYtZmFrZS1zZWNyZXQ="
        );
    }
}
