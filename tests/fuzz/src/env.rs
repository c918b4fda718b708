//! The parsers of what a process reads from its environment and its stored config.

use std::time::Duration;

use arbitrary::Unstructured;
use ops_config::{Keyring, MasterKey, SecretContext, SecretUpdate};
use ops_core::env;
use ops_core::provider::ProviderConfig;

const MS: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);
/// The range of every provider's `timeout` key and timeout variables: 10 ms to 600 s.
const TIMEOUT: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(600));

/// Feeds text to every environment and config parser, with the ranges the crates use and with
/// ranges taken from the input. Asserts that nothing panics and that every `Ok` value lies in
/// the range asked for; that a timeout read in milliseconds is accepted by the `timeout` key
/// it is handed to as seconds; that an obfuscated secret is recognised as one; that a sealed
/// secret opens for its own context only; and that no key parser's error quotes a key.
pub fn env_parsers(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let lo: u64 = u.arbitrary().unwrap_or(0);
    let hi: u64 = u.arbitrary().unwrap_or(u64::MAX);
    let dmin = duration(&mut u);
    let dmax = duration(&mut u);
    let fmin: f64 = u.arbitrary().unwrap_or(0.0);
    let fmax: f64 = u.arbitrary().unwrap_or(1.0);
    let text = String::from_utf8_lossy(u.take_rest());
    let text = text.as_ref();

    // Whole numbers, as the queue and the spool read them, and any range.
    for (min, max) in [(1, 10_000_000), (1, 1 << 50), (lo, hi), (0, u64::MAX)] {
        if let Ok(n) = env::whole_number(text, min, max) {
            assert!(
                (min..=max).contains(&n),
                "{text:?}: {n} outside {min}..={max}"
            );
        }
    }
    // Decimal numbers and fractions (sample rates).
    for (min, max) in [(0.0, 1.0), (fmin, fmax), (f64::MIN, f64::MAX)] {
        if let Ok(x) = env::number(text, min, max) {
            assert!(
                x.is_finite() && x >= min && x <= max,
                "{text:?}: {x} outside {min}..={max}"
            );
        }
    }
    if let Ok(x) = env::fraction(text) {
        assert!((0.0..=1.0).contains(&x), "{text:?}: fraction {x}");
    }
    // Durations: intervals and fsync (1 ms to 1 h), timeouts (10 ms to 600 s), any range.
    for (min, max) in [
        (MS, HOUR),
        TIMEOUT,
        (dmin, dmax),
        (Duration::ZERO, Duration::MAX),
    ] {
        if let Ok(d) = env::seconds(text, min, max) {
            assert!(
                d >= min && d <= max,
                "{text:?}: {d:?} outside {min:?}..={max:?} (seconds)"
            );
        }
        if let Ok(d) = env::milliseconds(text, min, max) {
            assert!(
                d >= min && d <= max,
                "{text:?}: {d:?} outside {min:?}..={max:?} (ms)"
            );
        }
        let _ = env::describe(min);
    }
    // An OTLP timeout variable (whole ms) becomes the `timeout` key (seconds).
    if let Ok(d) = env::milliseconds(text, TIMEOUT.0, TIMEOUT.1) {
        let key = format!("{}", d.as_secs_f64());
        assert_eq!(
            env::seconds(&key, TIMEOUT.0, TIMEOUT.1),
            Ok(d),
            "{text:?} as {key:?}"
        );
    }

    // Provider config values: the `timeout` key and Dify's validators.
    let mut config = ProviderConfig::new("fuzz").with("timeout", text);
    if let Ok(d) = config.timeout() {
        assert!(d >= TIMEOUT.0 && d <= TIMEOUT.1, "timeout {text:?}: {d:?}");
    }
    if let Ok(d) = ops_core::provider::validate_timeout(&mut config) {
        assert!(d >= TIMEOUT.0 && d <= TIMEOUT.1, "timeout {text:?}: {d:?}");
        assert_eq!(config.timeout(), Ok(d), "the stored timeout reads back");
    }
    config.set("endpoint", text);
    config.set("id", text);
    let _ = ops_core::provider::validate_url(&mut config, "endpoint", "http://127.0.0.1:9");
    let _ = ops_core::provider::validate_url_with_path(&mut config, "id", "http://h", Some("/x"));
    let _ = ops_core::provider::validate_integer_id(&mut config, "id");
    let _ = ops_core::provider::check_url(text);
    let _ = ops_core::provider::redact_url(text);
    let quoted = ops_core::provider::quote_value(text);
    assert!(
        quoted.chars().count() <= 12 * 100 + 40,
        "quote_value kept {quoted:?}"
    );
    let _ = ops_core::TraceId::new(text);

    // Secrets: display rule and the merge of a displayed value sent back.
    let shown = ops_config::obfuscate::obfuscate(text);
    if !text.is_empty() {
        assert!(
            ops_config::is_obfuscated(&shown),
            "{text:?} shown as {shown:?}"
        );
    }
    match ops_config::merge_secret("p", "f", Some(text), Some("stored")) {
        Ok(SecretUpdate::Replace(v)) => assert_eq!(v, text),
        Ok(SecretUpdate::Keep | SecretUpdate::Clear) | Err(_) => {}
    }

    // Master keys, as `OPS_ENCRYPTION_KEY` or a key file holds them.
    match Keyring::parse(text, "fuzz") {
        Ok(ring) => {
            let versions = ring.versions();
            assert!(
                !versions.is_empty() && versions[0] >= 1,
                "versions {versions:?}"
            );
            assert_eq!(ring.current_version(), *versions.last().unwrap_or(&0));
        }
        Err(e) => {
            let message = e.to_string();
            for entry in text.split(|c: char| c == ',' || c.is_whitespace()) {
                let (version, key) = entry.split_once(':').unwrap_or(("", entry));
                assert!(
                    key.chars().count() < 16 || version.contains(key) || !message.contains(key),
                    "the error quotes a key: {message}"
                );
            }
        }
    }
    // Sealed secrets, as a store holds them.
    let ring = keyring();
    let ctx = SecretContext {
        tenant_id: "t",
        app_id: "a",
        provider: "langfuse",
        field: "secret_key",
    };
    let _ = ring.open(&ctx, text);
    let _ = ring.reseal(&ctx, text);
    let _ = ops_config::crypto::key_version_of(text);
    if text.len() <= 4096 {
        let sealed = ring.seal(&ctx, text).expect("any text seals");
        assert_eq!(ring.open(&ctx, &sealed).expect("it opens").as_str(), text);
        let other = SecretContext {
            field: "public_key",
            ..ctx
        };
        assert!(
            ring.open(&other, &sealed).is_err(),
            "opened for another field"
        );
    }
}

fn duration(u: &mut Unstructured<'_>) -> Duration {
    let secs: u64 = u.arbitrary().unwrap_or(0);
    let nanos: u32 = u.arbitrary().unwrap_or(0);
    Duration::new(secs, nanos % 1_000_000_000)
}

fn keyring() -> Keyring {
    Keyring::new([
        MasterKey::from_bytes(1, [7; 32]),
        MasterKey::from_bytes(2, [9; 32]),
    ])
    .expect("two versions")
}
