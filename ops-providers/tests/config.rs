//! Registration, Dify's config keys, defaults and validation, and the SDK environment
//! variables of every provider.

#![cfg(feature = "full")]

use ops_core::provider::{ConfigError, ProviderConfig, find};

fn validated(config: ProviderConfig) -> Result<ProviderConfig, ConfigError> {
    let factory = find(config.provider()).unwrap();
    let mut config = config;
    (factory.validate)(&mut config)?;
    factory.build(config.clone())?;
    Ok(config)
}

fn error(config: ProviderConfig) -> String {
    let factory = find(config.provider()).unwrap();
    factory.build(config).unwrap_err().to_string()
}

#[test]
fn every_provider_is_registered_with_difys_keys() {
    let expected: [(&str, &[&str], &[&str]); 12] = [
        (
            "langfuse",
            &["public_key", "secret_key"],
            &["host", "project_key"],
        ),
        ("phoenix", &["api_key"], &["project", "endpoint"]),
        ("arize", &["api_key", "space_id"], &["project", "endpoint"]),
        ("aliyun", &["license_key"], &["endpoint", "app_name"]),
        ("tencent", &["token"], &["endpoint", "service_name"]),
        ("datadog", &["api_key"], &["site", "ml_app"]),
        (
            "mlflow",
            &["password"],
            &["tracking_uri", "experiment_id", "username"],
        ),
        (
            "databricks",
            &["personal_access_token", "client_secret"],
            &["host", "experiment_id", "client_id"],
        ),
        (
            "otlp",
            &["headers"],
            &["endpoint", "service_name", "protocol", "compression"],
        ),
        // Dify's keys, plus `workspace_id` (X-Tenant-Id for org-scoped keys).
        (
            "langsmith",
            &["api_key"],
            &["project", "endpoint", "workspace_id"],
        ),
        ("opik", &["api_key"], &["project", "url", "workspace"]),
        (
            "weave",
            &["api_key"],
            &["project", "entity", "endpoint", "host"],
        ),
    ];
    for (name, secret, other) in expected {
        let f = find(name).unwrap_or_else(|e| panic!("{e}"));
        let mut got: Vec<_> = f.secret_keys().collect();
        got.sort_unstable();
        let mut want = secret.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{name} secret keys");
        let mut got: Vec<_> = f.other_keys().collect();
        got.sort_unstable();
        let mut want = other.to_vec();
        // Every network provider also has `timeout` (seconds per request).
        want.push("timeout");
        want.sort_unstable();
        assert_eq!(got, want, "{name} other keys");
    }
}

#[test]
fn defaults_are_difys() {
    let c = validated(
        ProviderConfig::new("langfuse")
            .with("public_key", "pk")
            .with("secret_key", "sk"),
    )
    .unwrap();
    assert_eq!(c.get("host"), Some("https://api.langfuse.com"));
    let c = validated(ProviderConfig::new("phoenix")).unwrap();
    assert_eq!(c.get("endpoint"), Some("https://app.phoenix.arize.com"));
    assert_eq!(c.get("project"), Some("default"));
    let c = validated(
        ProviderConfig::new("arize")
            .with("api_key", "a")
            .with("space_id", "s"),
    )
    .unwrap();
    assert_eq!(c.get("endpoint"), Some("https://otlp.arize.com"));
    assert_eq!(c.get("project"), Some("default"));
    let c = validated(ProviderConfig::new("aliyun").with("license_key", "l")).unwrap();
    assert_eq!(
        c.get("endpoint"),
        Some("https://tracing-analysis-dc-hz.aliyuncs.com")
    );
    assert_eq!(c.get("app_name"), Some("dify_app"));
    let c = validated(
        ProviderConfig::new("tencent")
            .with("token", "t")
            .with("endpoint", "http://apm:4318"),
    )
    .unwrap();
    assert_eq!(c.get("service_name"), Some("dify_app"));
    let c = validated(ProviderConfig::new("mlflow")).unwrap();
    assert_eq!(c.get("tracking_uri"), Some("http://localhost:5000"));
    assert_eq!(c.get("experiment_id"), Some("0"));
    let c = validated(ProviderConfig::new("otlp").with("endpoint", "http://c:4318")).unwrap();
    assert_eq!(c.get("service_name"), Some("ops"));
    assert_eq!(c.get("protocol"), Some("http/protobuf"));
    let c = validated(
        ProviderConfig::new("langsmith")
            .with("api_key", "k")
            .with("project", " p "),
    )
    .unwrap();
    assert_eq!(c.get("endpoint"), Some("https://api.smith.langchain.com"));
    assert_eq!(c.get("project"), Some("p"));
    let c = validated(ProviderConfig::new("opik")).unwrap();
    assert_eq!(c.get("url"), Some("https://www.comet.com/opik/api/"));
    assert_eq!(c.get("project"), Some("Default Project"));
    assert_eq!(c.get("api_key"), None, "self-hosted Opik needs no key");
    let c = validated(
        ProviderConfig::new("weave")
            .with("api_key", "k")
            .with("project", "p"),
    )
    .unwrap();
    assert_eq!(c.get("endpoint"), Some("https://trace.wandb.ai"));
    assert_eq!(
        c.get("entity"),
        None,
        "the key's default entity is looked up"
    );
}

#[test]
fn native_provider_urls_and_projects() {
    // LangSmith keeps the path (self-hosted `/api/v1`), and http only to this machine.
    let c = validated(
        ProviderConfig::new("langsmith")
            .with("api_key", "k")
            .with("project", "p")
            .with("endpoint", "https://ls.example.com/api/v1/"),
    )
    .unwrap();
    assert_eq!(c.get("endpoint"), Some("https://ls.example.com/api/v1"));
    let c = validated(
        ProviderConfig::new("langsmith")
            .with("api_key", "k")
            .with("project", "p")
            .with("endpoint", "http://127.0.0.1:1984"),
    )
    .unwrap();
    assert_eq!(c.get("endpoint"), Some("http://127.0.0.1:1984"));
    // Opik's URL keeps its required `/api/` suffix.
    let c =
        validated(ProviderConfig::new("opik").with("url", "http://localhost:5173/api/")).unwrap();
    assert_eq!(c.get("url"), Some("http://localhost:5173/api/"));
    // Weave takes `entity/project` in `project`, and keeps a dedicated server's path.
    let c = validated(
        ProviderConfig::new("weave")
            .with("api_key", "k")
            .with("project", "team/proj")
            .with("endpoint", "https://acme.wandb.io/traces/"),
    )
    .unwrap();
    assert_eq!(
        (c.get("entity"), c.get("project"), c.get("endpoint")),
        (
            Some("team"),
            Some("proj"),
            Some("https://acme.wandb.io/traces")
        )
    );
}

#[test]
fn urls_keep_or_drop_their_path_as_dify_does() {
    let c = validated(
        ProviderConfig::new("langfuse")
            .with("public_key", "pk")
            .with("secret_key", "sk")
            .with("host", "https://example.com/langfuse/"),
    )
    .unwrap();
    assert_eq!(c.get("host"), Some("https://example.com/langfuse"));
    let c = validated(
        ProviderConfig::new("phoenix").with("endpoint", "https://app.phoenix.arize.com/s/me/"),
    )
    .unwrap();
    assert_eq!(
        c.get("endpoint"),
        Some("https://app.phoenix.arize.com/s/me")
    );
    let c = validated(
        ProviderConfig::new("arize")
            .with("api_key", "a")
            .with("space_id", "s")
            .with("endpoint", "https://otlp.eu-west-1a.arize.com/v1"),
    )
    .unwrap();
    assert_eq!(c.get("endpoint"), Some("https://otlp.eu-west-1a.arize.com"));
    let c = validated(
        ProviderConfig::new("databricks")
            .with("host", "https://dbc-1.cloud.databricks.com/x")
            .with("experiment_id", "1")
            .with("personal_access_token", "dapi"),
    )
    .unwrap();
    assert_eq!(c.get("host"), Some("https://dbc-1.cloud.databricks.com"));
}

#[test]
fn bad_configs_get_errors_that_say_what_to_fix() {
    for (config, needles) in [
        (
            ProviderConfig::new("langfuse").with("public_key", "pk"),
            &["langfuse", "`secret_key` is required"][..],
        ),
        (
            ProviderConfig::new("langfuse")
                .with("public_key", "pk")
                .with("secret_key", "sk")
                .with("host", "ftp://h"),
            &["`host`", "http://"],
        ),
        (
            ProviderConfig::new("langfuse")
                .with("public_key", "pk")
                .with("secret_key", "sk")
                .with("hots", "x"),
            &["unknown config key `hots`", "host"],
        ),
        (
            ProviderConfig::new("arize").with("api_key", "a"),
            &["arize", "`space_id` is required"],
        ),
        (
            ProviderConfig::new("aliyun"),
            &["`license_key` is required"],
        ),
        (
            ProviderConfig::new("tencent").with("token", "t"),
            &["`endpoint` is required"],
        ),
        (
            ProviderConfig::new("tencent")
                .with("token", "t")
                .with("endpoint", "http://ap-guangzhou.apm.tencentcs.com:4317"),
            &["4317", "gRPC", "4318"],
        ),
        (
            ProviderConfig::new("mlflow").with("tracking_uri", "databricks://profile"),
            &["`tracking_uri`", "`databricks` provider"],
        ),
        (
            ProviderConfig::new("mlflow").with("experiment_id", "exp-1"),
            &["`experiment_id`", "digits"],
        ),
        (
            ProviderConfig::new("mlflow").with("username", "u"),
            &["`username`", "`password`"],
        ),
        (
            ProviderConfig::new("databricks")
                .with("host", "https://dbc")
                .with("experiment_id", "1"),
            &["personal_access_token", "client_id", "client_secret"],
        ),
        (
            ProviderConfig::new("databricks")
                .with("experiment_id", "1")
                .with("personal_access_token", "p"),
            &["`host` is required"],
        ),
        (ProviderConfig::new("otlp"), &["`endpoint` is required"]),
        (
            ProviderConfig::new("otlp")
                .with("endpoint", "http://c")
                .with("protocol", "grpc"),
            &["`protocol`", "http/protobuf", "gRPC is not supported"],
        ),
        (
            ProviderConfig::new("otlp")
                .with("endpoint", "http://c")
                .with("headers", "novalue"),
            &["`headers`", "key1=value1"],
        ),
        (
            ProviderConfig::new("otlp")
                .with("endpoint", "http://c")
                .with("compression", "br"),
            &["`compression`", "gzip or none"],
        ),
        (
            ProviderConfig::new("langsmith").with("api_key", "k"),
            &["langsmith", "`project` is required"],
        ),
        (
            ProviderConfig::new("langsmith").with("project", "p"),
            &["`api_key` is required"],
        ),
        (
            ProviderConfig::new("langsmith")
                .with("api_key", "k")
                .with("project", "p")
                .with("endpoint", "http://api.smith.langchain.com"),
            &["`endpoint`", "https://"],
        ),
        (
            ProviderConfig::new("opik").with("url", "http://localhost:5173/api"),
            &["opik", "`url`", "must end with \"/api/\""],
        ),
        (
            ProviderConfig::new("opik").with("url", "not a url/api/"),
            &["`url`", "not a URL"],
        ),
        (
            ProviderConfig::new("weave").with("api_key", "k"),
            &["weave", "`project` is required"],
        ),
        (
            ProviderConfig::new("weave")
                .with("api_key", "k")
                .with("entity", "a")
                .with("project", "b/p"),
            &["`project`", "entity \"b\"", "`entity` is \"a\""],
        ),
        (
            ProviderConfig::new("weave")
                .with("api_key", "k")
                .with("project", "a/b/c"),
            &["`project`", "entity/project"],
        ),
    ] {
        let name = format!("{config:?}");
        let err = error(config);
        for n in needles {
            assert!(err.contains(n), "{name}: {err:?} lacks {n:?}");
        }
    }
}

#[test]
fn secrets_never_show_in_debug() {
    let provider = find("langfuse")
        .unwrap()
        .build(
            ProviderConfig::new("langfuse")
                .with("public_key", "pk-lf-visible")
                .with("secret_key", "sk-lf-very-secret"),
        )
        .unwrap();
    let dbg = format!("{provider:?}");
    assert!(!dbg.contains("very-secret"), "{dbg}");
    let dialect = ops_providers::arize::Arize::from_config(
        &ProviderConfig::new("arize")
            .with("api_key", "ak-very-secret")
            .with("space_id", "s"),
    )
    .unwrap();
    assert!(!format!("{dialect:?}").contains("very-secret"));
    for config in [
        ProviderConfig::new("langsmith")
            .with("api_key", "lsv2-very-secret")
            .with("project", "p"),
        ProviderConfig::new("opik").with("api_key", "opik-very-secret"),
        ProviderConfig::new("weave")
            .with("api_key", "wandb-very-secret")
            .with("project", "p"),
    ] {
        let name = config.provider().to_owned();
        let provider = find(&name).unwrap().build(config).unwrap();
        let dbg = format!("{provider:?}");
        assert!(!dbg.contains("very-secret"), "{name}: {dbg}");
    }
    let langsmith = ops_providers::langsmith::LangSmith::new(
        "https://api.smith.langchain.com",
        "p",
        "lsv2-very-secret",
        None,
    )
    .unwrap();
    let dbg = format!("{langsmith:?}");
    assert!(
        !dbg.contains("very-secret") && dbg.contains("x-api-key"),
        "{dbg}"
    );
}

const CHILD: &str = "OPS_PROVIDERS_ENV_CHILD";

/// Runs in a child process with a controlled environment (see
/// `from_env_reads_the_sdk_variables`); does nothing otherwise.
#[test]
fn env_child() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let get = |name: &str| {
        let f = find(name).unwrap();
        let config = f
            .env_config()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: from_env gave nothing"));
        assert!(f.build(config.clone()).is_ok(), "{name}: {config:?}");
        config
    };
    let c = get("langfuse");
    assert_eq!(c.get("public_key"), Some("pk-lf-env"));
    assert_eq!(c.get("secret_key"), Some("sk-lf-env"));
    assert_eq!(
        c.get("host"),
        Some("https://us.cloud.langfuse.com"),
        "LANGFUSE_BASE_URL wins over LANGFUSE_HOST"
    );
    let c = get("phoenix");
    assert_eq!(c.get("endpoint"), Some("http://127.0.0.1:6006"));
    assert_eq!(c.get("api_key"), Some("px-env"));
    assert_eq!(c.get("project"), Some("env-project"));
    let c = get("otlp");
    assert_eq!(c.get("endpoint"), Some("http://collector:4318/v1/traces"));
    assert_eq!(c.get("headers"), Some("x-api-key=k1"));
    assert_eq!(c.get("service_name"), Some("env-svc"));
    let c = get("arize");
    assert_eq!(
        (c.get("api_key"), c.get("space_id")),
        (Some("ak-env"), Some("sp-env"))
    );
    let c = get("mlflow");
    assert_eq!(c.get("tracking_uri"), Some("http://mlflow:5000"));
    assert_eq!(c.get("experiment_id"), Some("12"));
    let c = get("databricks");
    assert_eq!(c.get("personal_access_token"), Some("dapi-env"));
    let c = get("aliyun");
    assert_eq!(c.get("license_key"), Some("lk-env"));
    let c = get("tencent");
    assert_eq!(c.get("token"), Some("tk-env"));
    let c = get("langsmith");
    assert_eq!(c.get("api_key"), Some("lsv2-env"));
    assert_eq!(
        c.get("endpoint"),
        Some("https://eu.api.smith.langchain.com")
    );
    assert_eq!(c.get("project"), Some("ls-project"));
    assert_eq!(c.get("workspace_id"), Some("ws-1"));
    let c = get("opik");
    assert_eq!(c.get("api_key"), Some("opik-env"));
    assert_eq!(
        c.get("url"),
        Some("http://localhost:5173/api/"),
        "the SDK's URL without the slash Dify's key requires"
    );
    assert_eq!(c.get("workspace"), Some("opik-ws"));
    assert_eq!(c.get("project"), Some("opik-project"));
    let c = get("weave");
    assert_eq!(c.get("api_key"), Some("wandb-env"));
    assert_eq!(c.get("endpoint"), Some("https://acme.wandb.io/traces"));
    assert_eq!(c.get("project"), Some("team/weave-project"));
}

#[test]
fn from_env_reads_the_sdk_variables() {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["env_child", "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env(CHILD, "1")
        .env("LANGFUSE_PUBLIC_KEY", "pk-lf-env")
        .env("LANGFUSE_SECRET_KEY", "sk-lf-env")
        .env("LANGFUSE_HOST", "https://cloud.langfuse.com")
        .env("LANGFUSE_BASE_URL", "https://us.cloud.langfuse.com")
        .env(
            "PHOENIX_COLLECTOR_ENDPOINT",
            "http://127.0.0.1:6006/v1/traces",
        )
        .env("PHOENIX_API_KEY", "px-env")
        .env("PHOENIX_PROJECT_NAME", "env-project")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k1")
        .env("OTEL_SERVICE_NAME", "env-svc")
        .env("ARIZE_API_KEY", "ak-env")
        .env("ARIZE_SPACE_ID", "sp-env")
        .env("MLFLOW_TRACKING_URI", "http://mlflow:5000")
        .env("MLFLOW_EXPERIMENT_ID", "12")
        .env("DATABRICKS_HOST", "https://dbc-1.cloud.databricks.com")
        .env("DATABRICKS_TOKEN", "dapi-env")
        .env("ALIYUN_ARMS_LICENSE_KEY", "lk-env")
        .env("TENCENT_APM_TOKEN", "tk-env")
        .env("TENCENT_APM_ENDPOINT", "http://apm:4318")
        .env("LANGSMITH_API_KEY", "lsv2-env")
        .env("LANGSMITH_ENDPOINT", "https://eu.api.smith.langchain.com")
        .env("LANGSMITH_PROJECT", "ls-project")
        .env("LANGSMITH_WORKSPACE_ID", "ws-1")
        .env("OPIK_API_KEY", "opik-env")
        .env("OPIK_URL_OVERRIDE", "http://localhost:5173/api")
        .env("OPIK_WORKSPACE", "opik-ws")
        .env("OPIK_PROJECT_NAME", "opik-project")
        .env("WANDB_API_KEY", "wandb-env")
        .env("WF_TRACE_SERVER_URL", "https://acme.wandb.io/traces")
        .env("WANDB_PROJECT", "team/weave-project")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the child test failed; run it with {CHILD}=1 to see why"
    );
}

#[test]
fn without_the_variables_nothing_is_configured() {
    // The parent's environment may hold some of these (a developer's shell); only check the
    // ones that are unset here.
    for (name, var) in [
        ("langfuse", "LANGFUSE_PUBLIC_KEY"),
        ("arize", "ARIZE_API_KEY"),
        ("aliyun", "ALIYUN_ARMS_LICENSE_KEY"),
        ("tencent", "TENCENT_APM_TOKEN"),
        ("datadog", "DD_API_KEY"),
        ("databricks", "DATABRICKS_HOST"),
        ("langsmith", "LANGSMITH_API_KEY"),
        ("weave", "WANDB_API_KEY"),
    ] {
        if std::env::var_os(var).is_none() {
            assert!(
                find(name).unwrap().env_config().unwrap().is_none(),
                "{name}"
            );
        }
    }
}
