//! Every provider declares the environment variables it reads (`ProviderFactory::env_vars`),
//! records which variable each key's value came from, and so its errors name the variable to
//! fix. Every key of every provider refuses control characters with an error naming the key.
//! Environment cases run in a child process (this test binary) with only the variables given.

#![cfg(feature = "full")]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use ops_core::provider::{ConfigError, ProviderConfig, ProviderFactory, find, registered};

const CHILD: &str = "OPS_PROVIDERS_ENV_NAMES_CHILD";

/// Runs in a child process: `sources <name>` prints the keys the provider's environment
/// reader set, each with the variable it recorded; `build <name>` builds it from the
/// environment. Does nothing in a normal test run.
#[test]
fn env_names_child() {
    let Some(args) = std::env::var_os(CHILD) else {
        return;
    };
    ops_providers::link();
    let args = args.into_string().unwrap();
    let (mode, name) = args.split_once(' ').unwrap();
    let factory = find(name).unwrap();
    let result = match mode {
        "sources" => match factory.env_config() {
            Ok(Some(config)) => {
                let keys: BTreeMap<&str, Option<&str>> = config
                    .iter()
                    .map(|(k, _)| (k, config.env_source(k)))
                    .collect();
                format!("OK {}", serde_json::to_string(&keys).unwrap())
            }
            Ok(None) => "NONE".to_owned(),
            Err(e) => format!("ERROR {e}"),
        },
        "build" => match factory.build_from_env() {
            Ok(Some(_)) => "OK".to_owned(),
            Ok(None) => "NONE".to_owned(),
            Err(e) => format!("ERROR {e}"),
        },
        other => panic!("unknown mode {other}"),
    };
    println!("\nRESULT {result}");
}

fn run(mode: &str, name: &str, env: &[(&str, OsString)]) -> String {
    // Whatever a provider creates (the `file` provider's file) goes to a directory of its own.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .current_dir(dir.path())
        .args([
            "env_names_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env(CHILD, format!("{mode} {name}"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{name} {env:?}: {stderr}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("{name}: no result in {stdout}{stderr}"))
        .to_owned()
}

/// A valid value for a variable that sets `key` (`None`: one that sets no key).
fn sample(key: Option<&str>) -> &'static str {
    match key {
        Some("url") => "http://127.0.0.1:9/api",
        Some("endpoint" | "host" | "tracking_uri") => "http://127.0.0.1:9",
        Some("experiment_id") => "1",
        // Valid as seconds and as milliseconds.
        Some("timeout") => "100",
        Some("protocol") => "http/protobuf",
        Some("compression") => "gzip",
        Some("headers") => "x-a=1",
        Some("file") => "t.jsonl",
        _ => "torture",
    }
}

/// Every declared variable of `factory` set to a valid value, except those that set the same
/// key as `only` (so that `only` is the one read for its key).
fn declared_env(factory: &ProviderFactory, only: Option<&str>) -> Vec<(&'static str, OsString)> {
    let only_key = only
        .and_then(|o| factory.env_vars.iter().find(|v| v.name == o))
        .and_then(|v| v.key);
    factory
        .env_vars
        .iter()
        .filter(|v| Some(v.name) == only || only_key.is_none() || v.key != only_key)
        .map(|v| (v.name, OsString::from(sample(v.key))))
        .collect()
}

#[test]
fn every_network_provider_declares_its_variables() {
    ops_providers::link();
    for f in registered() {
        if !matches!(f.name, "console" | "file") {
            assert!(!f.env_vars.is_empty(), "{} declares no variables", f.name);
        }
        for v in f.env_vars {
            if let Some(key) = v.key {
                assert!(
                    f.fields.iter().any(|field| field.name == key),
                    "{}: {} sets unknown key {key}",
                    f.name,
                    v.name
                );
            }
        }
    }
}

#[test]
fn each_key_read_from_the_environment_records_the_winning_variable() {
    ops_providers::link();
    for f in registered() {
        let got = run("sources", f.name, &declared_env(f, None));
        let json = got
            .strip_prefix("OK ")
            .unwrap_or_else(|| panic!("{}: {got}", f.name));
        let sources: BTreeMap<String, Option<String>> = serde_json::from_str(json).unwrap();
        for (key, source) in &sources {
            let declared = f.env_vars_for(key);
            if declared.is_empty() {
                continue;
            }
            // With all set, the first declared (the one that wins) is the one recorded.
            assert_eq!(
                source.as_deref(),
                Some(declared[0]),
                "{}: key `{key}` ({declared:?})",
                f.name
            );
        }
        for v in f.env_vars {
            if let Some(key) = v.key {
                assert!(
                    sources.contains_key(key),
                    "{}: {} was set but `{key}` has no value: {sources:?}",
                    f.name,
                    v.name
                );
            }
        }
    }
}

#[test]
fn each_declared_variable_is_read_and_an_unreadable_value_names_it() {
    ops_providers::link();
    for f in registered() {
        for v in f.env_vars {
            let mut env = declared_env(f, Some(v.name));
            for (name, value) in &mut env {
                if *name == v.name {
                    *value = OsString::from_vec(vec![b'x', 0xff, 0xfe]);
                }
            }
            // A variable that sets no key (`HOSTNAME`) is read when the provider is built.
            let mode = if v.key.is_some() { "sources" } else { "build" };
            let got = run(mode, f.name, &env);
            assert!(
                got.starts_with("ERROR") && got.contains(v.name) && got.contains("not valid UTF-8"),
                "{}, {}: {got}",
                f.name,
                v.name
            );
        }
    }
}

fn build_with(name: &str, pairs: &[(&str, &str)]) -> String {
    let env: Vec<(&str, OsString)> = pairs.iter().map(|(k, v)| (*k, OsString::from(v))).collect();
    run("build", name, &env)
}

#[test]
fn errors_about_keys_name_the_variable_their_value_came_from() {
    let otlp = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9");
    for (var, value, key) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "0", "protocol"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", "protocol"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "br", "compression"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "headers"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a\u{7}=1", "headers"),
    ] {
        let got = build_with("otlp", &[otlp, (var, value)]);
        assert!(
            got.starts_with(&format!(
                "ERROR environment variable {var}: otlp: `{key}` is invalid: "
            )),
            "{var}={value}: {got}"
        );
    }
    let got = build_with(
        "mlflow",
        &[
            ("MLFLOW_TRACKING_URI", "http://127.0.0.1:9"),
            ("MLFLOW_EXPERIMENT_ID", "2.7"),
        ],
    );
    assert!(
        got.starts_with(
            "ERROR environment variable MLFLOW_EXPERIMENT_ID: mlflow: `experiment_id` is invalid"
        ),
        "{got}"
    );
    let got = build_with("langsmith", &[("LANGCHAIN_API_KEY", "lsv2\r\nInjected: 1")]);
    assert!(
        got.starts_with(
            "ERROR environment variable LANGCHAIN_API_KEY: langsmith: `api_key` is invalid: it \
             holds a control character"
        ) && !got.contains("Injected"),
        "{got}"
    );
}

#[test]
fn errors_about_keys_left_empty_name_the_empty_variable() {
    let got = build_with("weave", &[("WANDB_API_KEY", "k"), ("WANDB_PROJECT", "")]);
    assert!(
        got.contains("`project` is required")
            && got.ends_with(
                "`project` is read from environment variable WANDB_PROJECT or WEAVE_PROJECT; \
                 WANDB_PROJECT is set but empty"
            ),
        "{got}"
    );
    let mlflow = ("MLFLOW_TRACKING_URI", "http://127.0.0.1:9");
    for (set, empty) in [
        ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"),
        ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_USERNAME"),
    ] {
        let got = build_with("mlflow", &[mlflow, (set, "u"), (empty, "")]);
        assert!(
            got.ends_with(&format!(
                "is read from environment variable {empty}, which is set but empty"
            )),
            "{empty}: {got}"
        );
    }
    let got = build_with(
        "databricks",
        &[
            ("DATABRICKS_HOST", "http://127.0.0.1:9"),
            ("MLFLOW_EXPERIMENT_ID", "1"),
            ("DATABRICKS_TOKEN", " "),
        ],
    );
    assert!(
        got.contains("`personal_access_token` is invalid")
            && got.contains("DATABRICKS_TOKEN, which is set but empty"),
        "{got}"
    );
}

#[test]
fn mlflow_basic_auth_errors_name_the_missing_half() {
    let field = |config: ProviderConfig| {
        let e = find("mlflow").unwrap().build(config).unwrap_err();
        (e.field().map(str::to_owned), e.to_string())
    };
    let (f, e) = field(ProviderConfig::new("mlflow").with("username", "u"));
    assert_eq!(f.as_deref(), Some("password"), "{e}");
    let (f, e) = field(ProviderConfig::new("mlflow").with("password", "p"));
    assert_eq!(f.as_deref(), Some("username"), "{e}");
}

#[test]
fn every_key_of_every_provider_refuses_control_characters() {
    ops_providers::link();
    for f in registered() {
        for field in f.fields {
            for value in ["a\u{0}b", "a\r\nInjected: 1", "\u{1}".repeat(1000).as_str()] {
                if field.multiline && !value.contains(['\u{0}', '\u{1}']) {
                    continue;
                }
                let err = f
                    .build(ProviderConfig::new(f.name).with(field.name, format!("sk-x{value}")))
                    .unwrap_err();
                assert!(
                    matches!(&err, ConfigError::Invalid { field: k, reason, .. }
                        if k == field.name && reason.contains("control character")),
                    "{}.{}={value:?}: {err}",
                    f.name,
                    field.name
                );
                assert!(!err.to_string().contains("sk-x"), "{err}");
            }
        }
    }
}

#[test]
fn otlp_header_lists_may_span_lines() {
    let otlp = find("otlp").unwrap();
    assert!(
        otlp.fields
            .iter()
            .any(|f| f.name == "headers" && f.multiline)
    );
    otlp.build(
        ProviderConfig::new("otlp")
            .with("endpoint", "http://127.0.0.1:9")
            .with("headers", "x-a=1\r\nx-b=2\n"),
    )
    .unwrap();
}
