//! A provider's config, as an app's stored tracing config or the CLI hands it over: a JSON
//! object of keys and values, validated and built through the registry.

use std::time::Duration;

use ops_core::provider::{ProviderConfig, ProviderFactory, RegistryError, find, registered};
use serde_json::{Map, Value};

/// The shortest secret whose appearance in a message counts as a leak (shorter ones match
/// ordinary words).
const MIN_SECRET: usize = 12;

/// Reads `data` as a JSON object of config keys, builds the provider it names (key
/// `"provider"`; otherwise one picked by the input's length) from it through
/// [`ProviderFactory::build`], and asserts: nothing panics; a built provider has a name and a
/// timeout from 10 ms to 600 s; neither an error nor the provider's `Debug` shows a secret
/// value. Nothing is sent: no provider is ever asked to export or check credentials.
pub fn provider_config(data: &[u8]) {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let factories = registered();
    let factory = match object.get("provider") {
        Some(Value::String(name)) => match find(name) {
            Ok(f) => f,
            Err(RegistryError::Unknown(e)) => {
                assert!(e.known.contains("langfuse"), "{e}");
                return;
            }
            Err(e) => panic!("the registry holds a duplicate name: {e}"),
        },
        _ => factories[data.len() % factories.len()],
    };
    let Some(shown) = build(factory, &object) else {
        return;
    };
    // A secret value seen in the output: a leak unless it is text the output has anyway
    // (a URL, a word of the message). Rebuild with unique stand-ins to tell.
    let secrets: Vec<&str> = factory.secret_keys().collect();
    let leaked = object.iter().any(|(k, v)| {
        secrets.contains(&k.as_str()) && value_text(v).is_some_and(|t| shows(&shown, &t))
    });
    if !leaked {
        return;
    }
    let mut canaries = object.clone();
    for (i, key) in secrets.iter().enumerate() {
        if let Some(v) = canaries.get_mut(*key)
            && value_text(v).is_some_and(|t| t.chars().count() >= MIN_SECRET)
        {
            *v = Value::String(format!("Cz{i}q7canaryXw{i}"));
        }
    }
    if let Some(shown) = build(factory, &canaries) {
        assert!(
            !shown.contains("canaryXw"),
            "{}: a secret value is shown: {shown}",
            factory.name
        );
    }
}

/// Builds the provider; returns what it shows (its error, or its `Debug`).
fn build(factory: &ProviderFactory, object: &Map<String, Value>) -> Option<String> {
    let mut config = ProviderConfig::new(factory.name);
    for (key, value) in object {
        if key == "provider" {
            continue;
        }
        if let Some(text) = value_text(value) {
            config.set(key.as_str(), text);
        }
    }
    let _ = format!("{config:?}");
    match factory.build(config) {
        Ok(provider) => {
            assert!(!provider.name().is_empty(), "{}: no name", factory.name);
            if let Some(t) = provider.timeout() {
                assert!(
                    t >= Duration::from_millis(10) && t <= Duration::from_secs(600),
                    "{}: timeout {t:?}",
                    factory.name
                );
            }
            Some(format!("{provider:?}"))
        }
        Err(e) => Some(e.to_string()),
    }
}

/// A JSON value as a config value: strings as they are, other scalars as JSON, `null` unset.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn shows(output: &str, secret: &str) -> bool {
    secret.trim().chars().count() >= MIN_SECRET && output.contains(secret.trim())
}
