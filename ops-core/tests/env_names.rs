//! Errors of configuration read from the environment name the variable to fix: the one a
//! key's value came from, the ones that would set a key that has none, the ones a selected
//! provider reads when they do not configure it, `OPS_TRACE_PROVIDER` for an unknown name,
//! `OPS_TRACE_FILE` and `FILES_URL`. Values with control characters are errors naming the key
//! for every provider. Environment cases run in a child process (this test binary) with only
//! the variables given.

use std::ffi::OsString;

use ops_core::local::LocalProvider;
use ops_core::model::MessageRun;
use ops_core::provider::{
    self, ConfigError, ConfigField, EnvVar, Provider, ProviderConfig, ProviderFactory,
};

/// A provider for these tests: `token` turns it on from the environment, `name` is required,
/// `mode` must be `calm` or `quiet`, `list` may span lines.
const TEST: &str = "env-names-test";

fn build(_: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(LocalProvider::console()))
}

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    config.apply_field_rules()?;
    match config.get("mode") {
        Some("calm" | "quiet") => Ok(()),
        Some(other) => Err(config.invalid("mode", format!("{other:?}: use calm or quiet"))),
        None => Ok(()),
    }
}

fn from_env() -> Result<Option<ProviderConfig>, ConfigError> {
    let mut config = ProviderConfig::new(TEST);
    if !config.set_from_env("token", "ENV_NAMES_TOKEN")? {
        return Ok(None);
    }
    for (key, var) in [
        ("name", "ENV_NAMES_NAME"),
        ("mode", "ENV_NAMES_MODE"),
        ("list", "ENV_NAMES_LIST"),
    ] {
        config.set_from_env(key, var)?;
    }
    if config.get("name").is_none() {
        config.set_from_env("name", "ENV_NAMES_NAME_OLD")?;
    }
    Ok(Some(config))
}

const FIELDS: &[ConfigField] = &[
    ConfigField::secret("token").not_required(),
    ConfigField::plain("name"),
    ConfigField::with_default("mode", "calm"),
    ConfigField::optional("list").multiline(),
];

ops_core::inventory::submit! {
    ProviderFactory::new(TEST, "Env names test", FIELDS, build)
        .with_validate(validate)
        .with_env_checked(from_env)
        .with_env_vars(&[
            EnvVar::sets("ENV_NAMES_TOKEN", "token"),
            EnvVar::sets("ENV_NAMES_NAME", "name"),
            EnvVar::sets("ENV_NAMES_NAME_OLD", "name"),
            EnvVar::sets("ENV_NAMES_MODE", "mode"),
            EnvVar::sets("ENV_NAMES_LIST", "list"),
        ])
}

const CHILD: &str = "OPS_ENV_NAMES_CHILD";

/// Runs in a child process: `build` builds the test provider from the environment, `init`
/// runs `ops_core::init()`, `files` queues a message with a relative file URL on a queue of
/// its own and prints the trace. Does nothing in a normal test run.
#[test]
fn child() {
    let Some(mode) = std::env::var_os(CHILD) else {
        return;
    };
    let result = match mode.to_str() {
        Some("build") => match provider::find(TEST).unwrap().build_from_env() {
            Ok(Some(_)) => "OK".to_owned(),
            Ok(None) => "NONE".to_owned(),
            Err(e) => format!("ERROR {e}"),
        },
        Some("init") => match ops_core::init() {
            Ok(_) => "OK".to_owned(),
            Err(e) => format!("ERROR {e}"),
        },
        Some("files") => {
            let capture = ops_testkit::capture();
            let message = MessageRun {
                id: "m-1".into(),
                conversation_id: "c".into(),
                app_id: "a".into(),
                query: "q".into(),
                answer: "a".into(),
                created_at: chrono::Utc::now(),
                message_files: vec!["upload/a.png".into()],
                ..MessageRun::default()
            };
            capture.queue().trace_message_run(message).unwrap();
            let traces: Vec<String> = capture
                .traces()
                .iter()
                .map(|t| serde_json::to_string(t.as_ref()).unwrap())
                .collect();
            format!("TRACE {}", traces.join(" "))
        }
        other => panic!("unknown mode {other:?}"),
    };
    println!("\nRESULT {result}");
}

fn run(mode: &str, env: &[(&str, OsString)]) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env(CHILD, mode)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{env:?}: {stderr}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("{env:?}: no result in {stdout}{stderr}"))
        .to_owned()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, OsString)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect()
}

fn build_with(pairs: &[(&str, &str)]) -> String {
    let e = env(pairs);
    let e: Vec<(&str, OsString)> = e.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    run("build", &e)
}

fn init_with(pairs: &[(&str, &str)]) -> String {
    let e = env(pairs);
    let e: Vec<(&str, OsString)> = e.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    run("init", &e)
}

#[test]
fn an_invalid_value_from_a_variable_names_the_variable_and_the_key() {
    let got = build_with(&[
        ("ENV_NAMES_TOKEN", "t"),
        ("ENV_NAMES_NAME", "n"),
        ("ENV_NAMES_MODE", "loud"),
    ]);
    assert_eq!(
        got,
        "ERROR environment variable ENV_NAMES_MODE: env-names-test: `mode` is invalid: \
         \"loud\": use calm or quiet"
    );
    let got = build_with(&[("ENV_NAMES_TOKEN", "t"), ("ENV_NAMES_NAME", "n")]);
    assert_eq!(got, "OK", "valid values build");
    assert_eq!(
        build_with(&[]),
        "NONE",
        "without its variables it is not configured"
    );
}

#[test]
fn a_key_no_variable_set_names_the_variables_that_set_it() {
    let got = build_with(&[("ENV_NAMES_TOKEN", "t")]);
    assert!(
        got.starts_with("ERROR env-names-test: `name` is required")
            && got.ends_with(
                "`name` is read from environment variable ENV_NAMES_NAME or \
                 ENV_NAMES_NAME_OLD; none of them is set"
            ),
        "{got}"
    );
    let got = build_with(&[("ENV_NAMES_TOKEN", "t"), ("ENV_NAMES_NAME_OLD", " ")]);
    assert!(
        got.ends_with("ENV_NAMES_NAME_OLD is set but empty"),
        "{got}"
    );
}

#[test]
fn control_characters_are_errors_naming_the_key_and_the_variable() {
    let got = build_with(&[
        ("ENV_NAMES_TOKEN", "sk-secret\r\nInjected: 1"),
        ("ENV_NAMES_NAME", "n"),
    ]);
    assert!(
        got.starts_with(
            "ERROR environment variable ENV_NAMES_TOKEN: env-names-test: `token` is invalid: it \
             holds a control character (U+000D, character 10 of 22"
        ),
        "{got}"
    );
    assert!(!got.contains("sk-secret"), "the value is not shown: {got}");
    // `list` may span lines, but other control characters are still refused.
    let ok = build_with(&[
        ("ENV_NAMES_TOKEN", "t"),
        ("ENV_NAMES_NAME", "n"),
        ("ENV_NAMES_LIST", "a=1\nb=2\r\n\tc=3"),
    ]);
    assert_eq!(ok, "OK");
    let got = build_with(&[
        ("ENV_NAMES_TOKEN", "t"),
        ("ENV_NAMES_NAME", "n"),
        ("ENV_NAMES_LIST", "a=1\u{7}"),
    ]);
    assert!(
        got.contains("ENV_NAMES_LIST") && got.contains("`list` is invalid: it holds a control"),
        "{got}"
    );
}

#[test]
fn control_characters_are_invalid_for_every_provider_built_in_code() {
    let factory = provider::find(TEST).unwrap();
    for value in ["a\u{0}b", "a\r\nInjected: 1", "\u{1b}[31m", "x\u{85}"] {
        let err = factory
            .build(
                ProviderConfig::new(TEST)
                    .with("name", "n")
                    .with("token", format!("sk-secret{value}")),
            )
            .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { field, reason, .. }
                if field == "token" && reason.contains("control character")),
            "{value:?}: {err}"
        );
        assert!(!err.to_string().contains("sk-secret"), "{err}");
    }
    // The embedded `file` provider too: before, a NUL in the path was an open error.
    let err = provider::find("file")
        .unwrap()
        .build(ProviderConfig::new("file").with("file", "a\u{0}b.jsonl"))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("file: `file` is invalid: it holds a control character (U+0000"),
        "{err}"
    );
}

#[test]
fn a_selected_provider_left_unconfigured_names_its_variables() {
    let got = init_with(&[("OPS_TRACE_PROVIDER", TEST), ("ENV_NAMES_TOKEN", "")]);
    assert_eq!(
        got,
        "ERROR env-names-test: selected by OPS_TRACE_PROVIDER, but its environment variables \
         do not configure it (ENV_NAMES_TOKEN is set but empty); it needs `name` from \
         ENV_NAMES_NAME or ENV_NAMES_NAME_OLD; it also reads `token` from ENV_NAMES_TOKEN, \
         `mode` from ENV_NAMES_MODE, `list` from ENV_NAMES_LIST"
    );
    let got = init_with(&[("OPS_TRACE_PROVIDER", TEST)]);
    assert!(
        got.contains("do not configure it; it needs `name`"),
        "{got}"
    );
}

#[test]
fn an_unknown_provider_name_names_the_variable() {
    let got = init_with(&[("OPS_TRACE_PROVIDER", "console,nope")]);
    assert!(
        got.starts_with(
            "ERROR environment variable OPS_TRACE_PROVIDER=\"console,nope\" is invalid: no \
             provider is registered as \"nope\"; registered providers: "
        ) && got.contains("console, env-names-test, file"),
        "{got}"
    );
    let long = "x".repeat(64 << 10);
    let got = init_with(&[("OPS_TRACE_PROVIDER", &long)]);
    assert!(
        got.contains("OPS_TRACE_PROVIDER") && got.len() < 1000,
        "a huge name makes no huge message: {} bytes",
        got.len()
    );
}

#[test]
fn the_trace_file_variable_is_named_when_its_file_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("t.jsonl");
    let path = path.to_str().unwrap();
    for provider in ["file", "console"] {
        let got = init_with(&[("OPS_TRACE_PROVIDER", provider), ("OPS_TRACE_FILE", path)]);
        assert!(
            got.starts_with(&format!(
                "ERROR environment variable OPS_TRACE_FILE: {provider}: `file` is invalid: \
                 cannot open"
            )),
            "{got}"
        );
    }
    let long = dir.path().join("x".repeat(64 << 10));
    let got = init_with(&[("OPS_TRACE_FILE", long.to_str().unwrap())]);
    assert!(
        got.contains("OPS_TRACE_FILE") && got.len() < 1000,
        "{} bytes",
        got.len()
    );
}

#[test]
fn files_url_must_be_an_http_url_with_a_host() {
    for bad in ["none", "0", "http://", "ftp://files", "files.example.com"] {
        let got = init_with(&[("FILES_URL", bad)]);
        assert!(
            got.starts_with("ERROR environment variable FILES_URL is invalid: "),
            "{bad}: {got}"
        );
    }
    assert_eq!(
        init_with(&[("FILES_URL", "https://files.example:5001")]),
        "OK"
    );
    assert_eq!(init_with(&[("FILES_URL", " ")]), "OK", "blank is unset");
}

#[test]
fn a_bad_files_url_read_later_falls_back_to_the_default() {
    let trace = |value: &str| {
        let got = run("files", &[("FILES_URL", OsString::from(value))]);
        got.strip_prefix("TRACE ")
            .unwrap_or_else(|| panic!("{got}"))
            .to_owned()
    };
    let got = trace("https://files.example");
    assert!(got.contains("https://files.example/upload/a.png"), "{got}");
    let got = trace("none");
    assert!(
        got.contains("http://127.0.0.1:5001/upload/a.png") && !got.contains("none/upload"),
        "{got}"
    );
}
