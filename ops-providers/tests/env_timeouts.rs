//! Every environment variable a provider reads: a value that is not UTF-8, an endpoint that is
//! not an http(s) URL with a host, and a timeout out of range are errors that name the
//! variable. The `timeout` config key of every provider, and that requests really give up
//! after it. Environment cases run in a child process (this test binary) with only the
//! variables given.

#![cfg(feature = "full")]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ops_core::provider::{ProviderConfig, find, registered};
use ops_core::{ExportOutcome, ObservationKind, Trace, TraceId};
use ops_testkit::fake_server::{FakeResponse, FakeServer};

const CHILD: &str = "OPS_PROVIDERS_BUILD_CHILD";

/// Builds the provider named by `OPS_PROVIDERS_BUILD_CHILD` from the environment and prints
/// the outcome; does nothing in a normal test run.
#[test]
fn build_child() {
    let Some(name) = std::env::var_os(CHILD) else {
        return;
    };
    ops_providers::link();
    let name = name.into_string().unwrap();
    match find(&name).unwrap().build_from_env() {
        Ok(Some(p)) => println!("\nRESULT OK timeout={:?}", p.timeout()),
        Ok(None) => println!("\nRESULT NONE"),
        Err(e) => println!("\nRESULT ERROR {e}"),
    }
}

fn build_with(provider: &str, env: &[(&str, OsString)]) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["build_child", "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env(CHILD, provider)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{provider} {env:?}: {stderr}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("{provider}: no result in {stdout}{stderr}"))
        .to_owned()
}

fn os(v: &str) -> OsString {
    OsString::from(v)
}

/// A provider, variables that make it configured, and every variable it reads.
type Case = (&'static str, Env, Vec<&'static str>);
/// Variable names and values.
type Env = Vec<(&'static str, &'static str)>;

/// Every provider with an environment, as a [`Case`].
fn providers() -> Vec<Case> {
    vec![
        (
            "otlp",
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")],
            vec![
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
                "OTEL_SERVICE_NAME",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "OPS_TRACE_EXPORT_TIMEOUT",
            ],
        ),
        (
            "langfuse",
            vec![
                ("LANGFUSE_PUBLIC_KEY", "pk-lf-env"),
                ("LANGFUSE_SECRET_KEY", "sk-lf-env"),
            ],
            vec![
                "LANGFUSE_PUBLIC_KEY",
                "LANGFUSE_SECRET_KEY",
                "LANGFUSE_BASE_URL",
                "LANGFUSE_HOST",
                "LANGFUSE_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "OPS_TRACE_EXPORT_TIMEOUT",
            ],
        ),
        (
            "phoenix",
            vec![("PHOENIX_API_KEY", "px-env")],
            vec![
                "PHOENIX_COLLECTOR_ENDPOINT",
                "PHOENIX_API_KEY",
                "PHOENIX_PROJECT_NAME",
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            ],
        ),
        (
            "arize",
            vec![("ARIZE_API_KEY", "ak"), ("ARIZE_SPACE_ID", "sp")],
            vec!["ARIZE_API_KEY", "ARIZE_SPACE_ID", "ARIZE_PROJECT_NAME"],
        ),
        (
            "aliyun",
            vec![("ALIYUN_ARMS_LICENSE_KEY", "lk-env")],
            vec![
                "ALIYUN_ARMS_LICENSE_KEY",
                "ALIYUN_ARMS_ENDPOINT",
                "ALIYUN_ARMS_APP_NAME",
                "HOSTNAME",
            ],
        ),
        (
            "tencent",
            vec![
                ("TENCENT_APM_TOKEN", "tk"),
                ("TENCENT_APM_ENDPOINT", "http://apm:4318"),
            ],
            vec![
                "TENCENT_APM_TOKEN",
                "TENCENT_APM_ENDPOINT",
                "TENCENT_APM_SERVICE_NAME",
                "HOSTNAME",
            ],
        ),
        (
            "datadog",
            vec![("DD_API_KEY", "dd-env")],
            vec!["DD_API_KEY", "DD_SITE", "DD_LLMOBS_ML_APP"],
        ),
        (
            "mlflow",
            vec![("MLFLOW_TRACKING_URI", "http://mlflow:5000")],
            vec![
                "MLFLOW_TRACKING_URI",
                "MLFLOW_EXPERIMENT_ID",
                "MLFLOW_TRACKING_USERNAME",
                "MLFLOW_TRACKING_PASSWORD",
            ],
        ),
        (
            "databricks",
            vec![
                ("DATABRICKS_HOST", "https://dbc-1.cloud.databricks.com"),
                ("MLFLOW_EXPERIMENT_ID", "12"),
                ("DATABRICKS_TOKEN", "dapi-env"),
            ],
            vec![
                "DATABRICKS_HOST",
                "MLFLOW_EXPERIMENT_ID",
                "DATABRICKS_TOKEN",
                "DATABRICKS_CLIENT_ID",
                "DATABRICKS_CLIENT_SECRET",
            ],
        ),
        (
            "langsmith",
            vec![("LANGSMITH_API_KEY", "lsv2-env")],
            vec![
                "LANGSMITH_API_KEY",
                "LANGSMITH_PROJECT",
                "LANGCHAIN_PROJECT",
                "LANGSMITH_ENDPOINT",
                "LANGCHAIN_ENDPOINT",
                "LANGSMITH_WORKSPACE_ID",
                "LANGCHAIN_WORKSPACE_ID",
                "OPS_TRACE_EXPORT_TIMEOUT",
            ],
        ),
        (
            "opik",
            vec![("OPIK_API_KEY", "opik-env")],
            vec![
                "OPIK_API_KEY",
                "OPIK_URL_OVERRIDE",
                "OPIK_WORKSPACE",
                "OPIK_PROJECT_NAME",
                "OPS_TRACE_EXPORT_TIMEOUT",
            ],
        ),
        (
            "weave",
            vec![("WANDB_API_KEY", "wandb-env"), ("WANDB_PROJECT", "p")],
            vec![
                "WANDB_API_KEY",
                "WF_TRACE_SERVER_URL",
                "WANDB_BASE_URL",
                "WANDB_ENTITY",
                "WANDB_PROJECT",
                "OPS_TRACE_EXPORT_TIMEOUT",
            ],
        ),
    ]
}

fn env_with(
    base: &[(&str, &str)],
    var: &'static str,
    value: OsString,
) -> Vec<(&'static str, OsString)> {
    let mut env: Vec<(&'static str, OsString)> = base
        .iter()
        .filter(|(k, _)| *k != var)
        .map(|(k, v)| {
            // `base` names are 'static in `providers()`.
            let k: &'static str = Box::leak(k.to_string().into_boxed_str());
            (k, os(v))
        })
        .collect();
    env.push((var, value));
    env
}

#[test]
fn the_base_environments_configure_each_provider() {
    for (name, base, _) in providers() {
        let env: Vec<_> = base.iter().map(|(k, v)| (*k, os(v))).collect();
        let got = build_with(name, &env);
        assert!(got.starts_with("OK"), "{name}: {got}");
    }
}

#[test]
fn values_that_are_not_utf8_are_errors_naming_the_variable() {
    for (name, base, vars) in providers() {
        for var in vars {
            let env = env_with(&base, var, OsString::from_vec(vec![b'x', 0xff, 0xfe]));
            let got = build_with(name, &env);
            assert!(
                got.starts_with("ERROR") && got.contains(var) && got.contains("not valid UTF-8"),
                "{name}, {var}: {got}"
            );
        }
    }
}

#[test]
fn endpoint_variables_must_be_urls_with_a_host() {
    type UrlCase<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [UrlCase<'_>; 14] = [
        ("otlp", &[], "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ("otlp", &[], "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        (
            "langfuse",
            &[("LANGFUSE_PUBLIC_KEY", "p"), ("LANGFUSE_SECRET_KEY", "s")],
            "LANGFUSE_BASE_URL",
        ),
        (
            "langfuse",
            &[("LANGFUSE_PUBLIC_KEY", "p"), ("LANGFUSE_SECRET_KEY", "s")],
            "LANGFUSE_HOST",
        ),
        ("phoenix", &[], "PHOENIX_COLLECTOR_ENDPOINT"),
        (
            "aliyun",
            &[("ALIYUN_ARMS_LICENSE_KEY", "l")],
            "ALIYUN_ARMS_ENDPOINT",
        ),
        (
            "tencent",
            &[("TENCENT_APM_TOKEN", "t")],
            "TENCENT_APM_ENDPOINT",
        ),
        ("mlflow", &[], "MLFLOW_TRACKING_URI"),
        (
            "databricks",
            &[("MLFLOW_EXPERIMENT_ID", "1"), ("DATABRICKS_TOKEN", "d")],
            "DATABRICKS_HOST",
        ),
        (
            "langsmith",
            &[("LANGSMITH_API_KEY", "k")],
            "LANGSMITH_ENDPOINT",
        ),
        (
            "langsmith",
            &[("LANGSMITH_API_KEY", "k")],
            "LANGCHAIN_ENDPOINT",
        ),
        ("opik", &[], "OPIK_URL_OVERRIDE"),
        (
            "weave",
            &[("WANDB_API_KEY", "k"), ("WANDB_PROJECT", "p")],
            "WF_TRACE_SERVER_URL",
        ),
        (
            "weave",
            &[("WANDB_API_KEY", "k"), ("WANDB_PROJECT", "p")],
            "WANDB_BASE_URL",
        ),
    ];
    for (name, base, var) in cases {
        for (bad, why) in [
            ("http://", "has no host"),
            ("https://", "has no host"),
            ("http:///v1/traces", "has no host"),
            ("ftp://files.example.com", "http:// or https://"),
            ("collector:4318", "http:// or https://"),
            ("not a url", "not a URL"),
        ] {
            let got = build_with(name, &env_with(base, var, os(bad)));
            assert!(
                got.starts_with("ERROR") && got.contains(var) && got.contains(why),
                "{name}, {var}={bad:?}: {got}"
            );
        }
    }
}

#[test]
fn timeouts_come_from_each_sdks_variable() {
    let otlp = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")];
    let got = build_with(
        "otlp",
        &env_with(&otlp, "OTEL_EXPORTER_OTLP_TIMEOUT", os("2500")),
    );
    assert_eq!(
        got, "OK timeout=Some(2.5s)",
        "OTLP timeouts are milliseconds"
    );
    let mut env = env_with(&otlp, "OTEL_EXPORTER_OTLP_TIMEOUT", os("2500"));
    env.push(("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", os("700")));
    assert_eq!(
        build_with("otlp", &env),
        "OK timeout=Some(700ms)",
        "the traces one wins"
    );
    let got = build_with(
        "otlp",
        &env_with(&otlp, "OPS_TRACE_EXPORT_TIMEOUT", os("4")),
    );
    assert_eq!(got, "OK timeout=Some(4s)");
    assert_eq!(
        build_with("otlp", &env_with(&otlp, "OTEL_SERVICE_NAME", os("x"))),
        "OK timeout=Some(10s)",
        "the default is 10 s"
    );

    let lf = [("LANGFUSE_PUBLIC_KEY", "p"), ("LANGFUSE_SECRET_KEY", "s")];
    let mut env = env_with(&lf, "LANGFUSE_TIMEOUT", os("3"));
    env.push(("OTEL_EXPORTER_OTLP_TIMEOUT", os("9000")));
    assert_eq!(
        build_with("langfuse", &env),
        "OK timeout=Some(3s)",
        "the SDK's own variable wins"
    );

    for (name, base) in [
        ("langsmith", vec![("LANGSMITH_API_KEY", "k")]),
        ("opik", vec![("OPIK_API_KEY", "k")]),
        (
            "weave",
            vec![("WANDB_API_KEY", "k"), ("WANDB_PROJECT", "p")],
        ),
    ] {
        let got = build_with(
            name,
            &env_with(&base, "OPS_TRACE_EXPORT_TIMEOUT", os("0.25")),
        );
        assert_eq!(got, "OK timeout=Some(250ms)", "{name}");
    }

    for (var, bad, range) in [
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2.5", "from 10 to 600000"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "0", "from 10 to 600000"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "18446744073709551616",
            "from 10 to 600000",
        ),
        ("OPS_TRACE_EXPORT_TIMEOUT", "inf", "from 0.01 to 600"),
        ("OPS_TRACE_EXPORT_TIMEOUT", "NaN", "from 0.01 to 600"),
        ("OPS_TRACE_EXPORT_TIMEOUT", "-1", "from 0.01 to 600"),
        ("OPS_TRACE_EXPORT_TIMEOUT", "1e308", "from 0.01 to 600"),
    ] {
        let got = build_with("otlp", &env_with(&otlp, var, os(bad)));
        assert!(
            got.starts_with("ERROR") && got.contains(var) && got.contains(range),
            "{var}={bad}: {got}"
        );
    }
    let got = build_with("langfuse", &env_with(&lf, "LANGFUSE_TIMEOUT", os("601")));
    assert!(
        got.contains("LANGFUSE_TIMEOUT") && got.contains("from 0.01 to 600"),
        "{got}"
    );
}

/// A valid config of every registered provider that has a `timeout` key, for `endpoint`.
fn config_for(name: &str, endpoint: &str) -> ProviderConfig {
    let c = ProviderConfig::new(name);
    match name {
        "otlp" => c.with("endpoint", endpoint),
        "langfuse" => c
            .with("public_key", "pk")
            .with("secret_key", "sk")
            .with("host", endpoint),
        "phoenix" => c.with("endpoint", endpoint),
        "arize" => c
            .with("api_key", "a")
            .with("space_id", "s")
            .with("endpoint", endpoint),
        "aliyun" => c
            .with("license_key", "l")
            .with("endpoint", format!("{endpoint}/v1/traces")),
        "tencent" => c.with("token", "t").with("endpoint", endpoint),
        "datadog" => c.with("api_key", "d").with("site", endpoint),
        "mlflow" => c.with("tracking_uri", endpoint),
        "databricks" => c
            .with("host", endpoint)
            .with("experiment_id", "1")
            .with("personal_access_token", "d"),
        "langsmith" => c
            .with("api_key", "k")
            .with("project", "p")
            .with("endpoint", endpoint),
        "opik" => c.with("url", format!("{endpoint}/api/")),
        "weave" => c
            .with("api_key", "k")
            .with("project", "e/p")
            .with("endpoint", endpoint)
            .with("host", endpoint),
        other => panic!("no config for {other}"),
    }
}

fn network_providers() -> Vec<&'static str> {
    ops_providers::link();
    registered()
        .into_iter()
        .filter(|f| f.fields.iter().any(|x| x.name == "timeout"))
        .map(|f| f.name)
        .collect()
}

#[test]
fn every_network_provider_has_a_checked_timeout_key() {
    let names = network_providers();
    assert_eq!(names.len(), 12, "{names:?}");
    for name in names {
        let factory = find(name).unwrap();
        let p = factory
            .build(config_for(name, "http://127.0.0.1:9"))
            .unwrap();
        assert_eq!(
            p.timeout(),
            Some(Duration::from_secs(10)),
            "{name}: default"
        );
        let p = factory
            .build(config_for(name, "http://127.0.0.1:9").with("timeout", "2.5"))
            .unwrap();
        assert_eq!(p.timeout(), Some(Duration::from_millis(2500)), "{name}");
        for bad in [
            "NaN",
            "inf",
            "0",
            "-1",
            "601",
            "1e308",
            "18446744073709551616",
            "10s",
        ] {
            let err = factory
                .build(config_for(name, "http://127.0.0.1:9").with("timeout", bad))
                .err()
                .unwrap_or_else(|| panic!("{name}: timeout={bad} was accepted"))
                .to_string();
            assert!(
                err.contains("`timeout`") && err.contains("from 0.01 to 600"),
                "{name}, {bad}: {err}"
            );
        }
    }
}

#[test]
fn endpoint_keys_without_a_host_are_refused_when_built() {
    for name in network_providers() {
        let factory = find(name).unwrap();
        let config = config_for(name, "http://");
        let err = factory
            .build(config)
            .err()
            .unwrap_or_else(|| panic!("{name}: http:// was accepted"))
            .to_string();
        assert!(
            err.starts_with(name) && (err.contains("has no host") || err.contains("not a URL")),
            "{name}: {err}"
        );
    }
}

fn trace() -> Arc<Trace> {
    Arc::new(Trace::new(
        TraceId::generate(),
        ObservationKind::Span,
        "slow",
        chrono::Utc::now(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_give_up_after_the_configured_timeout() {
    let server = FakeServer::start().await;
    // Every answer comes after 3 s; each provider is told to wait 300 ms.
    server.set_default(
        FakeResponse::ok()
            .json(&serde_json::json!({"data": {"viewer": {"username": "u", "defaultEntity": {"name": "e"}}}}))
            .delay(Duration::from_secs(3)),
    );
    for name in network_providers() {
        let factory = find(name).unwrap();
        let mut p = factory
            .build(config_for(name, &server.uri()).with("timeout", "0.3"))
            .unwrap();
        let started = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(20), p.export(&[trace()]))
            .await
            .unwrap_or_else(|_| panic!("{name}: export did not return"));
        let took = started.elapsed();
        match outcome {
            ExportOutcome::Retry { error, .. } => {
                assert!(error.message.contains("timed out"), "{name}: {error}")
            }
            other => panic!("{name}: {other:?}"),
        }
        // A 300 ms timeout per request; a native provider may make a lookup and a post.
        assert!(took < Duration::from_millis(2500), "{name} took {took:?}");
    }
}
