//! Experiment 7: every environment variable the project reads, and every provider config key,
//! fed hostile values: NaN, inf, -1, 0, 1e308, 2^64, 2.7, '', ',,,', 'none', a 64 KiB
//! string, non-UTF-8 bytes (and for some variables the values the issue names). Each value
//! runs in a child process with only the variables of its case set (and a proxy pointing at a
//! closed loopback port, so nothing can leave the machine).
//!
//! Every case must: not panic or abort; name the variable (or config key) in any error; and
//! meet the variable's oracle: a value that is not valid for the variable must be an error
//! (a warning that names the variable is accepted for the two read lazily, the sample rate
//! and `FILES_URL`), a valid sample must be accepted, and a path that is accepted must be the
//! one used. `OPS_TRACE_PROVIDER=none` must leave tracing off.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use ops_torture_tests::child::{Child, describe};
use ops_torture_tests::report::summary;
use serde_json::Value;

const PROBE: &str = env!("CARGO_BIN_EXE_torture-probe");
const CLOSED: &str = "http://127.0.0.1:9";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `OPS_TRACE_PROVIDER`.
    Provider,
    /// Seconds > 0, fractions allowed.
    Secs,
    /// A whole number > 0.
    Count,
    /// A whole number of bytes.
    Bytes,
    /// `always`, `never` or milliseconds > 0.
    Fsync,
    /// 0.0..=1.0, read lazily.
    Rate,
    /// A URL read lazily (`FILES_URL`).
    LazyUrl,
    /// A file path that must be used when accepted.
    File,
    /// A directory path that must be used when accepted.
    Dir,
    /// An http(s) URL.
    Url,
    /// `key=value,...` headers.
    Headers,
    /// One of a few words (the first is the sample accepted).
    Choice(&'static [&'static str]),
    /// A whole-number id.
    IntId,
    /// Free text (keys, names).
    Text,
    /// An encryption key.
    Key,
    /// A key file path.
    KeyFile,
    /// A database URL.
    DbUrl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Accept,
    Reject,
    Either,
}

struct Var {
    name: &'static str,
    kind: Kind,
    /// The probe mode.
    mode: &'static str,
    /// Other variables set for the case.
    base: &'static [(&'static str, &'static str)],
}

const fn var(
    name: &'static str,
    kind: Kind,
    mode: &'static str,
    base: &'static [(&'static str, &'static str)],
) -> Var {
    Var {
        name,
        kind,
        mode,
        base,
    }
}

const SPOOL: &[(&str, &str)] = &[("OPS_TRACE_SPOOL_DIR", "spool")];
const OTLP: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "otlp"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", CLOSED),
];
const OTLP_ONLY: &[(&str, &str)] = &[("OPS_TRACE_PROVIDER", "otlp")];
const LANGFUSE: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "langfuse"),
    ("LANGFUSE_PUBLIC_KEY", "pk-lf-torture"),
    ("LANGFUSE_SECRET_KEY", "sk-lf-torture"),
    ("LANGFUSE_HOST", CLOSED),
];
const LANGSMITH: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "langsmith"),
    ("LANGSMITH_API_KEY", "lsv2-torture"),
    ("LANGSMITH_PROJECT", "torture"),
    ("LANGSMITH_ENDPOINT", CLOSED),
];
const LANGCHAIN: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "langsmith"),
    ("LANGCHAIN_API_KEY", "lsv2-torture"),
    ("LANGCHAIN_PROJECT", "torture"),
    ("LANGCHAIN_ENDPOINT", CLOSED),
];
const OPIK: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "opik"),
    ("OPIK_API_KEY", "torture"),
    ("OPIK_URL_OVERRIDE", "http://127.0.0.1:9/api"),
];
const WEAVE: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "weave"),
    ("WANDB_API_KEY", "torture"),
    ("WANDB_PROJECT", "torture"),
    ("WF_TRACE_SERVER_URL", CLOSED),
    ("WANDB_BASE_URL", CLOSED),
];
const WEAVE_ALT: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "weave"),
    ("WANDB_API_KEY", "torture"),
    ("WF_TRACE_SERVER_URL", CLOSED),
    ("WANDB_BASE_URL", CLOSED),
];
const PHOENIX: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "phoenix"),
    ("PHOENIX_COLLECTOR_ENDPOINT", CLOSED),
];
const ARIZE: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "arize"),
    ("ARIZE_API_KEY", "torture"),
    ("ARIZE_SPACE_ID", "torture"),
];
const ALIYUN: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "aliyun"),
    ("ALIYUN_ARMS_LICENSE_KEY", "torture"),
    ("ALIYUN_ARMS_ENDPOINT", CLOSED),
];
const TENCENT: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "tencent"),
    ("TENCENT_APM_TOKEN", "torture"),
    ("TENCENT_APM_ENDPOINT", CLOSED),
];
const MLFLOW: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "mlflow"),
    ("MLFLOW_TRACKING_URI", CLOSED),
    ("MLFLOW_EXPERIMENT_ID", "1"),
];
// HTTP Basic auth needs both halves: each is probed with the other set.
const MLFLOW_PASSWORD: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "mlflow"),
    ("MLFLOW_TRACKING_URI", CLOSED),
    ("MLFLOW_TRACKING_PASSWORD", "torture"),
];
const MLFLOW_USERNAME: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "mlflow"),
    ("MLFLOW_TRACKING_URI", CLOSED),
    ("MLFLOW_TRACKING_USERNAME", "torture"),
];
const PROTOCOLS: &[&str] = &["http/protobuf", "http/json"];
const COMPRESSIONS: &[&str] = &["gzip", "none"];
const DATABRICKS: &[(&str, &str)] = &[
    ("OPS_TRACE_PROVIDER", "databricks"),
    ("DATABRICKS_HOST", CLOSED),
    ("MLFLOW_EXPERIMENT_ID", "1"),
    ("DATABRICKS_TOKEN", "dapi-torture"),
];

/// Every variable the workspace reads (`grep -rn 'env::var' --include=*.rs`), except the CLI's
/// own (`OPS_SECRET_*`, read by `ops-cli` only).
fn vars() -> Vec<Var> {
    use Kind::*;
    vec![
        var("OPS_TRACE_PROVIDER", Provider, "core", &[]),
        var("OPS_TRACE_FILE", File, "core", &[]),
        var("TRACE_QUEUE_MANAGER_INTERVAL", Secs, "core", &[]),
        var("TRACE_QUEUE_MANAGER_BATCH_SIZE", Count, "core", &[]),
        var("OPS_TRACE_SPOOL_DIR", Dir, "core", &[]),
        var("OPS_TRACE_SPOOL_FSYNC", Fsync, "core", SPOOL),
        var("OPS_TRACE_SPOOL_MAX_BYTES", Bytes, "core", SPOOL),
        var("OPS_TRACE_SAMPLE_RATE", Rate, "core", &[]),
        var("FILES_URL", LazyUrl, "core", &[]),
        var("OTEL_EXPORTER_OTLP_ENDPOINT", Url, "provider", OTLP_ONLY),
        var(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            Url,
            "provider",
            OTLP_ONLY,
        ),
        var("OTEL_EXPORTER_OTLP_HEADERS", Headers, "provider", OTLP),
        var(
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            Headers,
            "provider",
            OTLP,
        ),
        var("OTEL_SERVICE_NAME", Text, "provider", OTLP),
        var(
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            Choice(PROTOCOLS),
            "provider",
            OTLP,
        ),
        var(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            Choice(PROTOCOLS),
            "provider",
            OTLP,
        ),
        var(
            "OTEL_EXPORTER_OTLP_COMPRESSION",
            Choice(COMPRESSIONS),
            "provider",
            OTLP,
        ),
        var(
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            Choice(COMPRESSIONS),
            "provider",
            OTLP,
        ),
        var("LANGFUSE_PUBLIC_KEY", Text, "provider", LANGFUSE),
        var("LANGFUSE_SECRET_KEY", Text, "provider", LANGFUSE),
        var("LANGFUSE_HOST", Url, "provider", LANGFUSE),
        var("LANGFUSE_BASE_URL", Url, "provider", LANGFUSE),
        var("LANGSMITH_API_KEY", Text, "provider", LANGSMITH),
        var("LANGSMITH_PROJECT", Text, "provider", LANGSMITH),
        var("LANGSMITH_ENDPOINT", Url, "provider", LANGSMITH),
        var("LANGSMITH_WORKSPACE_ID", Text, "provider", LANGSMITH),
        var("LANGCHAIN_API_KEY", Text, "provider", LANGCHAIN),
        var("LANGCHAIN_PROJECT", Text, "provider", LANGCHAIN),
        var("LANGCHAIN_ENDPOINT", Url, "provider", LANGCHAIN),
        var("LANGCHAIN_WORKSPACE_ID", Text, "provider", LANGCHAIN),
        var("OPIK_API_KEY", Text, "provider", OPIK),
        var("OPIK_URL_OVERRIDE", Url, "provider", OPIK),
        var("OPIK_WORKSPACE", Text, "provider", OPIK),
        var("OPIK_PROJECT_NAME", Text, "provider", OPIK),
        var("WANDB_API_KEY", Text, "provider", WEAVE),
        var("WF_TRACE_SERVER_URL", Url, "provider", WEAVE),
        var("WANDB_BASE_URL", Url, "provider", WEAVE),
        var("WANDB_ENTITY", Text, "provider", WEAVE),
        var("WANDB_PROJECT", Text, "provider", WEAVE),
        var("WEAVE_PROJECT", Text, "provider", WEAVE_ALT),
        var("PHOENIX_COLLECTOR_ENDPOINT", Url, "provider", PHOENIX),
        var("PHOENIX_API_KEY", Text, "provider", PHOENIX),
        var("PHOENIX_PROJECT_NAME", Text, "provider", PHOENIX),
        var("ARIZE_API_KEY", Text, "provider", ARIZE),
        var("ARIZE_SPACE_ID", Text, "provider", ARIZE),
        var("ARIZE_PROJECT_NAME", Text, "provider", ARIZE),
        var("ALIYUN_ARMS_LICENSE_KEY", Text, "provider", ALIYUN),
        var("ALIYUN_ARMS_ENDPOINT", Url, "provider", ALIYUN),
        var("ALIYUN_ARMS_APP_NAME", Text, "provider", ALIYUN),
        var("HOSTNAME", Text, "provider", ALIYUN),
        var("TENCENT_APM_TOKEN", Text, "provider", TENCENT),
        var("TENCENT_APM_ENDPOINT", Url, "provider", TENCENT),
        var("TENCENT_APM_SERVICE_NAME", Text, "provider", TENCENT),
        var("MLFLOW_TRACKING_URI", Url, "provider", MLFLOW),
        var("MLFLOW_EXPERIMENT_ID", IntId, "provider", MLFLOW),
        var(
            "MLFLOW_TRACKING_USERNAME",
            Text,
            "provider",
            MLFLOW_PASSWORD,
        ),
        var(
            "MLFLOW_TRACKING_PASSWORD",
            Text,
            "provider",
            MLFLOW_USERNAME,
        ),
        var("DATABRICKS_HOST", Url, "provider", DATABRICKS),
        var("DATABRICKS_TOKEN", Text, "provider", DATABRICKS),
        var("DATABRICKS_CLIENT_ID", Text, "provider", DATABRICKS),
        var("DATABRICKS_CLIENT_SECRET", Text, "provider", DATABRICKS),
        var("OPS_ENCRYPTION_KEY", Key, "config-key", &[]),
        var("OPS_ENCRYPTION_KEY_FILE", KeyFile, "config-key", &[]),
        var("OPS_CONFIG_DATABASE_URL", DbUrl, "config-db", &[]),
        var("OPS_CONFIG_DB", File, "config-db", &[]),
    ]
}

const HOSTILE: &[&str] = &[
    "NaN",
    "inf",
    "-1",
    "0",
    "1e308",
    "18446744073709551616",
    "2.7",
    "",
    ",,,",
    "none",
    "<long>",
    "<non-utf8>",
];

fn os(label: &str) -> OsString {
    match label {
        "<long>" => OsString::from("x".repeat(64 << 10)),
        "<non-utf8>" => OsString::from_vec(vec![b't', b'o', 0xff, 0xfe, b'x']),
        other => OsString::from(other),
    }
}

/// A value of the variable that must be accepted, if there is an obvious one.
fn valid(v: &Var) -> Option<&'static str> {
    if v.name == "OPIK_URL_OVERRIDE" {
        // The SDK's form: the API base.
        return Some("http://127.0.0.1:9/api");
    }
    Some(match v.kind {
        Kind::Provider => "console",
        Kind::Secs => "0.5",
        Kind::Count => "10",
        Kind::Bytes => "1000000",
        Kind::Fsync => "200",
        Kind::Rate => "0.5",
        Kind::LazyUrl => "http://127.0.0.1:5001",
        Kind::File => "torture-file.jsonl",
        Kind::Dir => "torture-dir",
        Kind::Url => CLOSED,
        Kind::Headers => "x-torture=1",
        Kind::Choice(words) => words[0],
        Kind::IntId => "1",
        Kind::Text => "torture",
        Kind::Key => "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
        Kind::KeyFile | Kind::DbUrl => return None,
    })
}

/// Extra hostile values the issue names for a kind.
fn extra(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Url => &["http://", "::::"],
        Kind::DbUrl => &["::::", "postgres:/typo@127.0.0.1/test"],
        Kind::Secs => &["1e-12"],
        _ => &[],
    }
}

fn expect(v: &Var, label: &str) -> Expect {
    use Expect::*;
    if Some(label) == valid(v) {
        return Accept;
    }
    match (v.kind, label) {
        (Kind::Choice(words), l) if words.contains(&l) => Accept,
        (Kind::Rate, "0" | "1") => Accept,
        (Kind::Provider, "none") => Accept,
        (Kind::Provider, _) => Reject,
        (_, "") => Either,
        (Kind::Secs, "2.7") => Accept,
        (Kind::Bytes, "0") | (Kind::Fsync, "2.7") => Either,
        (Kind::Headers, ",,,") => Either,
        (Kind::IntId, "0" | "18446744073709551616") => Either,
        (Kind::File | Kind::Dir, _) => Either,
        (Kind::Text, "<non-utf8>") => Reject,
        (Kind::Text, _) => Either,
        (Kind::DbUrl, "::::" | "postgres:/typo@127.0.0.1/test" | "<long>" | "<non-utf8>") => Reject,
        (Kind::DbUrl, _) => Either,
        _ => Reject,
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|e| {
            e.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn shown(label: &str) -> String {
    match label {
        UNSET => "<unset>".into(),
        "" => "''".into(),
        "18446744073709551616" => "2^64".into(),
        other => other.to_owned(),
    }
}

/// The pseudo-value of a case that leaves the variable unset: only a reference for what
/// the non-UTF-8 value must not look like.
const UNSET: &str = "<unset>";

/// Runs one case; returns what went wrong, if anything, and the outcome with its error.
fn run(v: &Var, label: &str) -> (Option<String>, String) {
    let (problem, outcome, error) = judge(v, label);
    (problem, format!("{outcome}: {error}"))
}

fn judge(v: &Var, label: &str) -> (Option<String>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(PROBE);
    command.arg(v.mode).env_clear().current_dir(dir.path());
    for proxy in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
    ] {
        command.env(proxy, CLOSED);
    }
    for (k, value) in v.base {
        command.env(k, value);
    }
    if label != UNSET {
        command.env(v.name, os(label));
    }
    let case = format!("{}={}", v.name, shown(label));
    let mut child = Child::spawn_command(&case, command);
    let status = child.finish(Duration::from_secs(60));
    let result: Value = child.out.results.first().cloned().unwrap_or_default();
    let outcome = result["outcome"].as_str().unwrap_or("none").to_owned();
    let error = result["error"].as_str().unwrap_or("").to_owned();
    let (outcome, error) = (outcome.as_str(), error.as_str());
    let named_in_log = child.logs().iter().any(|l| l.contains(v.name));
    let lazy = matches!(v.kind, Kind::Rate | Kind::LazyUrl);
    let crashed = !status.success() || outcome == "panic" || outcome == "none";
    let problem = if crashed {
        let why = child
            .stderr_tail(2000)
            .lines()
            .find(|l| l.contains("panicked") || l.contains("overflow"))
            .map(str::to_owned)
            .unwrap_or_else(|| error.chars().take(200).collect());
        Some(format!("{} / {outcome}: {why}", describe(status)))
    } else if label == UNSET {
        None
    } else if outcome == "err" && !error.contains(v.name) {
        Some(format!(
            "the error does not name the variable: {}",
            error.chars().take(200).collect::<String>()
        ))
    } else {
        match (expect(v, label), outcome) {
            (Expect::Accept, "err") => Some(format!(
                "a valid value was rejected: {}",
                error.chars().take(200).collect::<String>()
            )),
            (Expect::Reject, "ok") if !(lazy && named_in_log) => {
                Some("accepted silently (no error naming the variable)".into())
            }
            (_, "ok") => used(v, label, &result, dir.path()),
            _ => None,
        }
    };
    (problem, outcome.to_owned(), error.to_owned())
}

/// For an accepted value: whether it was used as it should be.
fn used(v: &Var, label: &str, result: &Value, dir: &Path) -> Option<String> {
    let made = files_in(dir);
    match (v.kind, label) {
        (Kind::Provider, "none") if result["enabled"].as_bool() != Some(false) => Some(format!(
            "tracing is still on (providers {})",
            result["providers"]
        )),
        (Kind::File | Kind::Dir, l) if !l.is_empty() => {
            let path = dir.join(os(l));
            (!path.exists()).then(|| {
                format!(
                    "accepted, but nothing was created at the path (the directory holds {made:?})"
                )
            })
        }
        (Kind::DbUrl, "::::" | "postgres:/typo@127.0.0.1/test") if !made.is_empty() => {
            Some(format!("created {made:?}"))
        }
        _ => None,
    }
}

#[test]
fn every_env_var_fed_hostile_values() {
    let vars = vars();
    let mut cases: Vec<(usize, String)> = Vec::new();
    for (i, v) in vars.iter().enumerate() {
        for label in HOSTILE.iter().chain(extra(v.kind)) {
            cases.push((i, (*label).to_owned()));
        }
        if let Some(ok) = valid(v) {
            cases.push((i, ok.to_owned()));
        }
        cases.push((i, UNSET.to_owned()));
    }
    let total = cases.len();
    let queue = Mutex::new(cases);
    let failures = Mutex::new(Vec::new());
    let outcomes = Mutex::new(std::collections::HashMap::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let Some((i, label)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let (problem, outcome) = run(&vars[i], &label);
                    if let Some(problem) = problem {
                        failures.lock().unwrap().push((i, shown(&label), problem));
                    }
                    outcomes.lock().unwrap().insert((i, label), outcome);
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    // A value that is set but not UTF-8 must not be read as if the variable were unset
    // (issue 11: "a non-UTF-8 OPS_ENCRYPTION_KEY was reported as 'no encryption key'").
    let outcomes = outcomes.into_inner().unwrap();
    for i in 0..vars.len() {
        let non_utf8 = shown("<non-utf8>");
        // (An accepted value is judged by the oracle and, for paths, by whether it was used.)
        let set = outcomes.get(&(i, "<non-utf8>".to_owned()));
        let unset = outcomes.get(&(i, UNSET.to_owned()));
        let same = set.is_some_and(|o| o.starts_with("err") && Some(o) == unset);
        if same && !failures.iter().any(|(j, l, _)| *j == i && *l == non_utf8) {
            failures.push((
                i,
                non_utf8,
                format!(
                    "read as if the variable were unset ({})",
                    outcomes[&(i, UNSET.to_owned())]
                        .chars()
                        .take(160)
                        .collect::<String>()
                ),
            ));
        }
    }
    failures.sort();
    let failing_vars: std::collections::BTreeSet<&str> =
        failures.iter().map(|(i, _, _)| vars[*i].name).collect();
    let panics = failures
        .iter()
        .filter(|(_, _, p)| p.contains("panic") || p.contains("signal"))
        .count();
    summary(
        "env-vars",
        &[
            ("variables", &vars.len()),
            ("cases", &total),
            ("failed", &failures.len()),
            ("panics_or_aborts", &panics),
            ("variables_with_failures", &failing_vars.len()),
        ],
    );
    let lines: Vec<String> = failures
        .iter()
        .map(|(i, label, p)| format!("{}={label}: {p}", vars[*i].name))
        .collect();
    for l in &lines {
        eprintln!("  {l}");
    }
    assert!(
        failures.is_empty(),
        "{} of {total} hostile env values were mishandled ({} variables):\n  {}",
        failures.len(),
        failing_vars.len(),
        lines.join("\n  ")
    );
}

#[test]
fn every_provider_config_key_fed_hostile_values() {
    ops_providers::link();
    let names: Vec<&str> = ops_core::provider::registered()
        .into_iter()
        .map(|f| f.name)
        .collect();
    let mut failures = Vec::new();
    let mut cases = 0;
    for name in &names {
        let mut command = Command::new(PROBE);
        command.args(["provider-keys", name]).env_clear();
        for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            command.env(proxy, CLOSED);
        }
        let dir = tempfile::tempdir().unwrap();
        command.current_dir(dir.path());
        let mut child = Child::spawn_command(format!("provider-keys {name}"), command);
        let status = child.finish(Duration::from_secs(120));
        let results = child.out.results.clone();
        if !status.success() {
            let last = results.last().map(|r| r.to_string()).unwrap_or_default();
            failures.push(format!(
                "{name}: the probe ended with {} after {last}",
                describe(status)
            ));
        }
        for r in &results {
            let outcome = r["outcome"].as_str().unwrap_or("");
            let error = r["error"].as_str().unwrap_or("");
            if r["case"] == "baseline" {
                if outcome != "ok" {
                    failures.push(format!(
                        "{name}: the suite's baseline config does not build ({error}); fix \
                         ops_torture_tests::config::baseline_config"
                    ));
                }
                continue;
            }
            cases += 1;
            let field = r["field"].as_str().unwrap_or("");
            let value = r["value"].as_str().unwrap_or("");
            let problem = match outcome {
                "panic" => Some(format!("panicked: {error}")),
                "err" if !error.contains(field) => Some(format!(
                    "the error does not name the key: {}",
                    error.chars().take(200).collect::<String>()
                )),
                "ok" if r["url"] == true && value != "empty" => {
                    Some("a URL key accepted a value that is not a URL".into())
                }
                _ => None,
            };
            if let Some(p) = problem {
                failures.push(format!("{name}.{field}={value}: {p}"));
            }
        }
    }
    summary(
        "config-keys",
        &[
            ("providers", &names.len()),
            ("cases", &cases),
            ("failed", &failures.len()),
        ],
    );
    for f in &failures {
        eprintln!("  {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} hostile config values were mishandled:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
