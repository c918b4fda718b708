//! The `ops` binary end to end: real processes (assert_cmd) against a fake Langfuse server on
//! loopback and the local `file` provider, asserting output, exit codes, and that secrets
//! never appear in output or on the command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use ops_testkit::fake_server::{FakeResponse, FakeServer};
use prost::Message as _;

const PK: &str = "pk-lf-0123456789abcdef";
const SK: &str = "sk-lf-fedcba9876543210";
const KEY_V1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OTHER_KEY: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

/// One `ops` run: its exit code and output.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    fn code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit code {code}: {self:#?}");
        self
    }
}

/// A sandbox: its own database, a key, and only the environment given here.
struct Sandbox {
    dir: tempfile::TempDir,
    key: String,
    secrets: Vec<String>,
}

impl Sandbox {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            key: KEY_V1.to_owned(),
            secrets: vec![PK.to_owned(), SK.to_owned(), KEY_V1.to_owned()],
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> assert_cmd::Command {
        for arg in args {
            for secret in &self.secrets {
                assert!(!arg.contains(secret.as_str()), "a secret is on argv: {arg}");
            }
        }
        let mut cmd = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin!("ops"));
        cmd.env_clear()
            .env("OPS_CONFIG_DB", self.path("config.db"))
            .env("NO_PROXY", "*")
            .args(args)
            .timeout(Duration::from_secs(60));
        if !self.key.is_empty() {
            cmd.env("OPS_ENCRYPTION_KEY", &self.key);
        }
        cmd
    }

    fn finish(&self, mut cmd: assert_cmd::Command) -> Run {
        let out = cmd.output().expect("ops runs");
        let run = Run {
            code: out.status.code().expect("ops exited normally"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        for secret in &self.secrets {
            assert!(
                !run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()),
                "a secret leaked into the output: {run:#?}"
            );
        }
        run
    }

    fn run(&self, args: &[&str]) -> Run {
        self.finish(self.command(args))
    }

    /// Runs with the Langfuse secrets in `OPS_SECRET_*`.
    fn run_with_secrets(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        cmd.env("OPS_SECRET_PUBLIC_KEY", PK)
            .env("OPS_SECRET_SECRET_KEY", SK);
        self.finish(cmd)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut cmd = self.command(args);
        cmd.write_stdin(stdin.to_owned());
        self.finish(cmd)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A fake Langfuse: the projects endpoint answers `projects` with `status`.
fn fake_langfuse(rt: &tokio::runtime::Runtime, status: u16) -> FakeServer {
    let server = rt.block_on(FakeServer::start());
    let answer = if status == 200 {
        FakeResponse::ok().json(&serde_json::json!({"data": [{"id": "proj-123", "name": "demo"}]}))
    } else {
        FakeResponse::status(status)
            .json(&serde_json::json!({"message": "Invalid credentials. Confirm that you've configured the correct host."}))
    };
    server.route("GET", "/api/public/projects", answer);
    server
}

fn basic_auth() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{PK}:{SK}"))
    )
}

fn obfuscated(secret: &str) -> String {
    ops_config::obfuscate::obfuscate(secret)
}

#[test]
fn help_documents_commands_environment_and_exit_codes() {
    let s = Sandbox::new();
    let help = s.run(&["--help"]).ok().stdout;
    for word in [
        "providers",
        "config",
        "enable",
        "disable",
        "check",
        "send-test",
        "rotate-key",
        "OPS_ENCRYPTION_KEY",
        "OPS_CONFIG_DATABASE_URL",
        "OPS_SECRET_<KEY>",
        "Exit codes",
        "6  encryption key missing",
    ] {
        assert!(help.contains(word), "--help lacks {word:?}:\n{help}");
    }
    let set_help = s.run(&["config", "set", "--help"]).ok().stdout;
    assert!(
        set_help.contains("OPS_SECRET_SECRET_KEY") && set_help.contains("--stdin"),
        "{set_help}"
    );
    let bad = s.run(&["config", "frobnicate"]).code(2);
    assert!(bad.stderr.contains("frobnicate"), "{bad:#?}");
    let missing = s.run(&["enable"]).code(2);
    assert!(missing.stderr.contains("--app"), "{missing:#?}");
}

#[test]
fn providers_lists_the_registry_with_keys() {
    let s = Sandbox::new();
    let text = s.run(&["providers"]).ok().stdout;
    for line in [
        "langfuse (Langfuse)",
        "public_key   secret, required, from $OPS_SECRET_PUBLIC_KEY",
        "secret_key   secret, required, from $OPS_SECRET_SECRET_KEY",
        "host         optional, default https://api.langfuse.com",
        "file (JSON lines file)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // Every provider of ops-providers is linked in.
    for name in [
        "aliyun",
        "arize",
        "console",
        "databricks",
        "datadog",
        "file",
        "langfuse",
        "langsmith",
        "mlflow",
        "opik",
        "otlp",
        "phoenix",
        "tencent",
        "weave",
    ] {
        assert!(
            text.contains(&format!("\n{name} (")) || text.starts_with(&format!("{name} (")),
            "{name} missing:\n{text}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&s.run(&["providers", "--json"]).ok().stdout).unwrap();
    let langfuse = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "langfuse")
        .unwrap();
    assert_eq!(langfuse["fields"][1]["name"], "secret_key");
    assert_eq!(langfuse["fields"][1]["secret"], true);
    assert_eq!(langfuse["fields"][2]["default"], "https://api.langfuse.com");
}

#[test]
fn langfuse_end_to_end_against_a_fake_server() {
    let rt = runtime();
    let server = fake_langfuse(&rt, 200);
    let host = server.uri();
    let s = Sandbox::new();

    // Save: checked against the server with the secrets from the environment.
    let saved = s
        .run_with_secrets(&[
            "config",
            "set",
            "--app",
            "app-1",
            "--provider",
            "langfuse",
            "--set",
            &format!("host={host}"),
        ])
        .ok()
        .stdout;
    assert!(
        saved.contains(
            "saved langfuse config for app app-1 (version 1, created, credentials checked)"
        ),
        "{saved}"
    );
    assert!(
        saved.contains("secrets from the environment: public_key, secret_key"),
        "{saved}"
    );
    assert!(
        saved.contains(&format!("project: {host}/project/proj-123")),
        "{saved}"
    );
    assert!(
        saved.contains(
            "not active yet; turn it on with: ops enable --app app-1 --provider langfuse"
        ),
        "{saved}"
    );
    assert!(saved.contains(&obfuscated(SK)), "{saved}");
    let checks = server.requests();
    assert!(!checks.is_empty());
    assert!(
        checks.iter().all(|r| r.path == "/api/public/projects"
            && r.header("authorization") == Some(basic_auth().as_str())),
        "{checks:#?}"
    );
    // At rest: not in the database file.
    let db = std::fs::read(s.path("config.db")).unwrap();
    let wal = std::fs::read(s.path("config.db-wal")).unwrap_or_default();
    for secret in [PK, SK] {
        for bytes in [&db, &wal] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }

    // Show: obfuscated with Dify's rule, as text and JSON.
    let shown = s.run(&["config", "show", "--app", "app-1"]).ok().stdout;
    assert!(
        shown.contains("app app-1 (tenant default): tracing off; active providers: none"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("public_key  {}  (secret, key v1)", obfuscated(PK))),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("secret_key  {}  (secret, key v1)", obfuscated(SK))),
        "{shown}"
    );
    assert!(shown.contains(&format!("host        {host}")), "{shown}");
    let json: serde_json::Value = serde_json::from_str(
        &s.run(&["config", "show", "--app", "app-1", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["configs"][0]["values"]["secret_key"], obfuscated(SK));
    assert_eq!(json["enabled"], false);

    // Not enabled yet: nothing to send to.
    let off = s.run(&["send-test", "--app", "app-1"]).code(4);
    assert!(
        off.stderr.contains("tracing is off for app app-1"),
        "{off:#?}"
    );

    let on = s
        .run(&["enable", "--app", "app-1", "--provider", "langfuse"])
        .ok()
        .stdout;
    assert!(
        on.contains("tracing on for app app-1; active providers: langfuse"),
        "{on}"
    );

    // Send the sample chatflow: delivered as OTLP with the decrypted credentials.
    server.clear_requests();
    let sent = s.run(&["send-test", "--app", "app-1"]).ok().stdout;
    assert!(sent.contains("sending sample chatflow trace"), "{sent}");
    assert!(sent.contains("langfuse: delivered"), "{sent}");
    assert!(
        sent.contains(&format!("project: {host}/project/proj-123")),
        "{sent}"
    );
    let requests = server.requests();
    let otlp: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/public/otel/v1/traces")
        .collect();
    assert_eq!(otlp.len(), 1, "{requests:#?}");
    assert_eq!(otlp[0].header("authorization"), Some(basic_auth().as_str()));
    let body = otlp[0].decoded_body();
    let export =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
            &body[..],
        )
        .expect("an OTLP protobuf body");
    let names: Vec<String> = export
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect();
    for node in ["LLM", "Knowledge", "Answer"] {
        assert!(
            names.iter().any(|n| n == node),
            "no span {node:?} in {names:?}"
        );
    }
    assert!(names.len() >= 5, "{names:?}");

    let checked = s.run(&["check", "--app", "app-1"]).ok().stdout;
    assert!(checked.contains("langfuse: ok"), "{checked}");
    assert!(checked.contains("project key: proj-123"), "{checked}");

    // The form round trip: masked secrets sent back on stdin keep the stored ones.
    let masked = format!(
        "public_key={}\nsecret_key={}\n",
        obfuscated(PK),
        obfuscated(SK)
    );
    let updated = s
        .run_with_stdin(
            &[
                "config",
                "set",
                "--app",
                "app-1",
                "--provider",
                "langfuse",
                "--stdin",
                "--set",
                "project_key=proj-123",
            ],
            &masked,
        )
        .ok()
        .stdout;
    assert!(
        updated.contains("(version 2, updated, credentials checked)"),
        "{updated}"
    );
    server.clear_requests();
    s.run(&["check", "--app", "app-1", "--provider", "langfuse"])
        .ok();
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(basic_auth().as_str()),
        "the stored secrets were kept"
    );

    // Dify's bug: a masked value with nothing stored. Refused, nothing saved.
    let refused = s
        .run_with_stdin(
            &[
                "config",
                "set",
                "--app",
                "app-2",
                "--provider",
                "langfuse",
                "--stdin",
                "--set",
                &format!("host={host}"),
            ],
            &masked,
        )
        .code(3);
    assert!(
        refused.stderr.contains("obfuscated display form")
            && refused.stderr.contains("no public_key is stored"),
        "{refused:#?}"
    );
    let none = s.run(&["config", "show", "--app", "app-2"]).code(4);
    assert!(
        none.stderr.contains("app app-2 has no tracing config"),
        "{none:#?}"
    );

    // Secrets on argv are refused before anything happens.
    let argv = s
        .run(&[
            "config",
            "set",
            "--app",
            "app-1",
            "--provider",
            "langfuse",
            "--set",
            "secret_key=sk-on-argv-123",
        ])
        .code(2);
    assert!(
        argv.stderr.contains("not accepted on the command line")
            && argv.stderr.contains("OPS_SECRET_SECRET_KEY"),
        "{argv:#?}"
    );
    assert!(!argv.stderr.contains("sk-on-argv-123"));

    // Invalid values name the field (exit 3).
    let bad_host = s
        .run_with_secrets(&[
            "config",
            "set",
            "--app",
            "app-4",
            "--provider",
            "langfuse",
            "--set",
            "host=ftp://example.com",
        ])
        .code(3);
    assert!(
        bad_host.stderr.contains("`host`") && bad_host.stderr.contains("http://"),
        "{bad_host:#?}"
    );
    let unknown_key = s
        .run(&[
            "config",
            "set",
            "--app",
            "app-1",
            "--provider",
            "langfuse",
            "--set",
            "hots=x",
        ])
        .code(3);
    assert!(
        unknown_key.stderr.contains("`hots`") && unknown_key.stderr.contains("known keys"),
        "{unknown_key:#?}"
    );
    let unknown_provider = s
        .run(&["config", "show", "--app", "app-1", "--provider", "langfuze"])
        .code(3);
    assert!(
        unknown_provider.stderr.contains("langfuse"),
        "lists registered providers: {unknown_provider:#?}"
    );

    // Another tenant cannot touch the app.
    let other = s
        .run(&["--tenant", "other", "disable", "--app", "app-1"])
        .code(3);
    assert!(
        other.stderr.contains("belongs to another tenant"),
        "{other:#?}"
    );

    // Disable: nothing is sent any more.
    let disabled = s.run(&["disable", "--app", "app-1"]).ok().stdout;
    assert!(disabled.contains("tracing off for app app-1"), "{disabled}");
    s.run(&["send-test", "--app", "app-1"]).code(4);

    // Delete.
    let deleted = s
        .run(&[
            "config",
            "delete",
            "--app",
            "app-1",
            "--provider",
            "langfuse",
        ])
        .ok()
        .stdout;
    assert!(
        deleted.contains("deleted the langfuse config of app app-1"),
        "{deleted}"
    );
    s.run(&[
        "config",
        "delete",
        "--app",
        "app-1",
        "--provider",
        "langfuse",
    ])
    .code(4);
}

#[test]
fn bad_credentials_exit_5_and_save_nothing() {
    let rt = runtime();
    let server = fake_langfuse(&rt, 401);
    let s = Sandbox::new();
    let run = s
        .run_with_secrets(&[
            "config",
            "set",
            "--app",
            "app-1",
            "--provider",
            "langfuse",
            "--set",
            &format!("host={}", server.uri()),
        ])
        .code(5);
    assert!(run.stderr.contains("credentials check failed"), "{run:#?}");
    assert!(run.stderr.contains("nothing was saved"), "{run:#?}");
    assert!(run.stderr.contains("401"), "{run:#?}");
    s.run(&["config", "show", "--app", "app-1"]).code(4);
    // --no-check saves, and `ops check` then reports the failure with exit 5.
    s.run_with_secrets(&[
        "config",
        "set",
        "--app",
        "app-1",
        "--provider",
        "langfuse",
        "--no-check",
        "--set",
        &format!("host={}", server.uri()),
    ])
    .ok();
    let check = s.run(&["check", "--app", "app-1"]).code(5);
    assert!(check.stdout.contains("langfuse: FAILED"), "{check:#?}");
}

#[test]
fn key_problems_exit_6_with_clear_errors() {
    let s = Sandbox::new();
    s.run_with_secrets(&[
        "config",
        "set",
        "--app",
        "app-1",
        "--provider",
        "langfuse",
        "--no-check",
    ])
    .ok();

    let mut missing = Sandbox::new();
    missing.dir = tempfile::tempdir().unwrap();
    let db = s.path("config.db");
    let run_with_key = |key: &str, args: &[&str]| {
        let mut cmd = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin!("ops"));
        cmd.env_clear().env("OPS_CONFIG_DB", &db).args(args);
        if !key.is_empty() {
            cmd.env("OPS_ENCRYPTION_KEY", key);
        }
        s.finish(cmd)
    };
    let none = run_with_key("", &["config", "show", "--app", "app-1"]).code(6);
    assert!(
        none.stderr
            .contains("no encryption key: set OPS_ENCRYPTION_KEY"),
        "{none:#?}"
    );
    let short = run_with_key("abc123", &["config", "show", "--app", "app-1"]).code(6);
    assert!(
        short.stderr.contains("OPS_ENCRYPTION_KEY, key entry 1")
            && short.stderr.contains("32-byte"),
        "{short:#?}"
    );
    let wrong = run_with_key(OTHER_KEY, &["config", "show", "--app", "app-1"]).code(6);
    assert!(
        wrong.stderr.contains("cannot decrypt `public_key`"),
        "{wrong:#?}"
    );
    // Switching needs no key.
    run_with_key("", &["enable", "--app", "app-1", "--provider", "langfuse"]).ok();
    let _ = missing;
}

#[test]
fn rotate_key_with_a_key_file() {
    let mut s = Sandbox::new();
    let key_file = s.path("ops.key");
    std::fs::write(&key_file, format!("# ops master keys\n1:{KEY_V1}\n")).unwrap();
    s.key = String::new();
    let file_arg = key_file.to_str().unwrap().to_owned();
    s.run_with_secrets(&[
        "--key-file",
        &file_arg,
        "config",
        "set",
        "--app",
        "app-1",
        "--provider",
        "langfuse",
        "--no-check",
    ])
    .ok();

    // --generate needs a key file.
    let no_file = s.run(&["rotate-key", "--generate"]).code(2);
    assert!(no_file.stderr.contains("--key-file"), "{no_file:#?}");

    let rotated = s
        .run(&["--key-file", &file_arg, "rotate-key", "--generate"])
        .ok()
        .stdout;
    assert!(rotated.contains("added key version 2"), "{rotated}");
    assert!(
        rotated.contains(
            "re-encrypted 2 secret(s) in 1 config(s) under key version 2 (2 from version 1)"
        ),
        "{rotated}"
    );
    assert!(
        rotated.contains("old version(s) 1 can be removed"),
        "{rotated}"
    );
    let text = std::fs::read_to_string(&key_file).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[1].starts_with("2:"));
    s.secrets.push(lines[1][2..].to_owned());

    let shown = s
        .run(&["--key-file", &file_arg, "config", "show", "--app", "app-1"])
        .ok()
        .stdout;
    assert!(
        shown.contains("(secret, key v2)") && !shown.contains("key v1"),
        "{shown}"
    );

    // Version 1 can go now.
    std::fs::write(&key_file, format!("{}\n", lines[1])).unwrap();
    let shown = s
        .run(&["--key-file", &file_arg, "config", "show", "--app", "app-1"])
        .ok()
        .stdout;
    assert!(shown.contains(&obfuscated(SK)), "{shown}");
    // A second rotation has nothing to do.
    let again = s.run(&["--key-file", &file_arg, "rotate-key"]).ok().stdout;
    assert!(
        again.contains("re-encrypted 0 secret(s)")
            && again.contains("2 secret(s) already used key version 2"),
        "{again}"
    );
    // Both the variable and the file: ambiguous.
    s.key = KEY_V1.to_owned();
    let both = s
        .run(&["--key-file", &file_arg, "config", "show", "--app", "app-1"])
        .code(6);
    assert!(both.stderr.contains("set only one"), "{both:#?}");
}

#[test]
fn file_provider_send_test_and_database_errors() {
    let s = Sandbox::new();
    let out = s.path("traces.jsonl");
    let out_arg = format!("file={}", out.display());
    let saved = s
        .run(&[
            "config",
            "set",
            "--app",
            "app-f",
            "--provider",
            "file",
            "--set",
            &out_arg,
            "--enable",
        ])
        .ok()
        .stdout;
    assert!(
        saved.contains("tracing on for app app-f; active providers: file"),
        "{saved}"
    );
    let sent = s.run(&["send-test", "--app", "app-f"]).ok().stdout;
    assert!(sent.contains("file: delivered"), "{sent}");
    assert!(
        sent.contains(&format!("project: file://{}", out.display())),
        "{sent}"
    );
    let line = std::fs::read_to_string(&out).unwrap();
    let trace: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let names: Vec<&str> = trace["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"LLM") && names.contains(&"Knowledge"),
        "{names:?}"
    );
    assert_eq!(trace["attributes"]["app_id"], "app-f", "{trace}");
    // --provider narrows to an active provider.
    s.run(&["send-test", "--app", "app-f", "--provider", "console"])
        .code(4);

    // An unreachable database: exit 7, and the password is not shown.
    let db = s
        .run(&[
            "--database",
            "postgres://ops:hunter2@127.0.0.1:1/ops",
            "config",
            "show",
            "--app",
            "a",
        ])
        .code(7);
    assert!(
        db.stderr.contains("config database") && !db.stderr.contains("hunter2"),
        "{db:#?}"
    );
}

#[test]
fn keygen_prints_usable_keys() {
    let s = Sandbox::new();
    let key = s.run(&["keygen"]).ok().stdout.trim().to_owned();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&key)
            .unwrap()
            .len(),
        32
    );
    let entry = s
        .run(&["keygen", "--key-version", "3"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert!(entry.starts_with("3:"), "{entry}");
    assert!(ops_config::Keyring::parse(&entry, "t").unwrap().versions() == [3]);
    s.run(&["keygen", "--key-version", "0"]).code(2);
    let _ = Path::new("");
}

fn not_utf8() -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(vec![b'k', 0xff, 0xfe])
}

/// Every file and directory under `dir`, relative.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn database_urls_are_checked_and_reads_never_create_a_database() {
    let s = Sandbox::new();
    let work = s.path("work");
    std::fs::create_dir(&work).unwrap();
    let in_work = |args: &[&str]| {
        let mut cmd = s.command(args);
        cmd.current_dir(&work);
        s.finish(cmd)
    };
    for url in ["::::", "postgres:/typo@127.0.0.1/test", "mysql://u:pw@h/db"] {
        for args in [
            vec!["--database", url, "config", "show", "--app", "a"],
            vec!["--database", url, "check", "--app", "a"],
            vec!["--database", url, "send-test", "--app", "a"],
            vec![
                "--database",
                url,
                "config",
                "set",
                "--app",
                "a",
                "--provider",
                "file",
                "--set",
                "file=x.jsonl",
            ],
        ] {
            let run = in_work(&args).code(7);
            assert!(
                run.stderr.contains("config database URL")
                    && !run.stderr.contains("pw@")
                    && !run.stderr.contains("has no tracing config"),
                "{args:?}: {run:#?}"
            );
        }
    }
    assert!(files_under(&work).is_empty(), "{:?}", files_under(&work));

    // No database yet: every command but `config set` says so, creating nothing.
    let missing = work.join("sub").join("config.db");
    let db = missing.to_str().unwrap().to_owned();
    for args in [
        vec!["config", "show", "--app", "a"],
        vec!["check", "--app", "a"],
        vec!["send-test", "--app", "a"],
        vec!["enable", "--app", "a"],
        vec!["disable", "--app", "a"],
        vec!["config", "delete", "--app", "a", "--provider", "file"],
        vec!["rotate-key"],
    ] {
        let mut full = vec!["--database", db.as_str()];
        full.extend(args.iter().copied());
        let run = in_work(&full).code(4);
        assert!(run.stderr.contains("does not exist"), "{args:?}: {run:#?}");
        let mut env_cmd = s.command(&args);
        env_cmd.current_dir(&work).env("OPS_CONFIG_DB", &missing);
        s.finish(env_cmd).code(4);
    }
    assert!(files_under(&work).is_empty(), "{:?}", files_under(&work));

    // `config set` creates it; reads then find it.
    in_work(&[
        "--database",
        &db,
        "config",
        "set",
        "--app",
        "a",
        "--provider",
        "file",
        "--set",
        "file=x.jsonl",
    ])
    .ok();
    assert!(missing.is_file());
    in_work(&["--database", &db, "config", "show", "--app", "a"]).ok();
}

#[test]
fn naming_another_tenant_never_reads_its_configs() {
    let rt = runtime();
    let server = fake_langfuse(&rt, 200);
    let host = server.uri();
    let s = Sandbox::new();
    s.run_with_secrets(&[
        "--tenant",
        "acme",
        "config",
        "set",
        "--app",
        "app-1",
        "--provider",
        "langfuse",
        "--set",
        &format!("host={host}"),
        "--enable",
    ])
    .ok();
    server.clear_requests();
    // Another tenant, by flag or by $OPS_TENANT, reads nothing of app-1 and reaches no server.
    for args in [
        vec!["config", "show", "--app", "app-1"],
        vec!["config", "show", "--app", "app-1", "--json"],
        vec!["check", "--app", "app-1"],
        vec!["send-test", "--app", "app-1"],
        vec!["config", "show", "--app", "app-1", "--provider", "langfuse"],
    ] {
        let mut flagged = vec!["--tenant", "intruder"];
        flagged.extend(args.iter().copied());
        let mut by_env = s.command(&args);
        by_env.env("OPS_TENANT", "intruder");
        for run in [s.run(&flagged), s.finish(by_env)] {
            let run = run.code(3);
            assert!(
                run.stderr
                    .contains("app app-1 belongs to another tenant than intruder"),
                "{args:?}: {run:#?}"
            );
            assert!(
                !run.stdout.contains(&host) && !run.stdout.contains("langfuse:"),
                "nothing of the config is shown: {run:#?}"
            );
        }
        // The default tenant is a tenant too.
        s.run(&args).code(3);
    }
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    // The owner still sees it all.
    let shown = s
        .run(&["--tenant", "acme", "config", "show", "--app", "app-1"])
        .ok()
        .stdout;
    assert!(shown.contains("app app-1 (tenant acme)"), "{shown}");
    s.run(&["--tenant", "acme", "send-test", "--app", "app-1"])
        .ok();
}

#[test]
fn exit_codes_match_the_table() {
    let s = Sandbox::new();
    // 0
    s.run(&["providers"]).code(0);
    s.run(&[
        "config",
        "set",
        "--app",
        "app-f",
        "--provider",
        "file",
        "--set",
    ]);
    let out = s.path("t.jsonl");
    s.run(&[
        "config",
        "set",
        "--app",
        "app-f",
        "--provider",
        "file",
        "--set",
        &format!("file={}", out.display()),
        "--enable",
    ])
    .code(0);
    // 1: stdin cannot be read (a directory).
    let out1 = std::process::Command::new(assert_cmd::cargo::cargo_bin!("ops"))
        .env_clear()
        .env("OPS_CONFIG_DB", s.path("config.db"))
        .env("OPS_ENCRYPTION_KEY", KEY_V1)
        .args([
            "config",
            "set",
            "--app",
            "app-f",
            "--provider",
            "file",
            "--stdin",
        ])
        .stdin(std::fs::File::open(s.dir.path()).unwrap())
        .output()
        .unwrap();
    assert_eq!(out1.status.code(), Some(1), "{out1:?}");
    assert!(
        String::from_utf8_lossy(&out1.stderr).contains("cannot read stdin"),
        "{out1:?}"
    );
    // 2: command line, unreadable environment, stdin too large or not text.
    s.run(&["send-test", "--app", "app-f", "--timeout", "0"])
        .code(2);
    s.run(&[
        "send-test",
        "--app",
        "app-f",
        "--timeout",
        "18446744073709551616",
    ])
    .code(2);
    for var in ["OPS_CONFIG_DB", "OPS_CONFIG_DATABASE_URL", "OPS_TENANT"] {
        let mut cmd = s.command(&["config", "show", "--app", "app-f"]);
        cmd.env(var, not_utf8());
        let run = s.finish(cmd).code(2);
        assert!(
            run.stderr.contains(var) && run.stderr.contains("not valid UTF-8"),
            "{var}: {run:#?}"
        );
    }
    let big = format!("public_key={}\n", "x".repeat(70 * 1024));
    let run = s
        .run_with_stdin(
            &[
                "config",
                "set",
                "--app",
                "app-2",
                "--provider",
                "langfuse",
                "--stdin",
            ],
            &big,
        )
        .code(2);
    assert!(run.stderr.contains("more than 64 KiB"), "{run:#?}");
    let mut cmd = s.command(&[
        "config",
        "set",
        "--app",
        "app-2",
        "--provider",
        "langfuse",
        "--stdin",
    ]);
    cmd.write_stdin(vec![b'a', b'=', 0xff, b'\n']);
    s.finish(cmd).code(2);
    // 3: invalid config.
    s.run(&["config", "show", "--app", "app-f", "--provider", "nope"])
        .code(3);
    s.run(&["--tenant", "other", "config", "show", "--app", "app-f"])
        .code(3);
    // 4: not found.
    s.run(&["config", "show", "--app", "nothing-here"]).code(4);
    s.run(&["check", "--app", "nothing-here"]).code(4);
    s.run(&["send-test", "--app", "nothing-here"]).code(4);
    // 5: a provider that does not answer.
    s.run_with_secrets(&[
        "config",
        "set",
        "--app",
        "app-5",
        "--provider",
        "langfuse",
        "--no-check",
        "--enable",
        "--set",
        "host=http://127.0.0.1:9",
    ])
    .ok();
    s.run(&["check", "--app", "app-5"]).code(5);
    s.run(&["send-test", "--app", "app-5", "--timeout", "20"])
        .code(5);
    // 6: the key: not UTF-8, or a secret that does not decrypt — in every command.
    let mut cmd = s.command(&["config", "show", "--app", "app-5"]);
    cmd.env("OPS_ENCRYPTION_KEY", not_utf8());
    let run = s.finish(cmd).code(6);
    assert!(
        run.stderr.contains("OPS_ENCRYPTION_KEY")
            && run.stderr.contains("UTF-8")
            && !run.stderr.contains("no encryption key"),
        "{run:#?}"
    );
    let mut wrong = Sandbox::new();
    wrong.dir = tempfile::tempdir().unwrap();
    wrong.key = OTHER_KEY.to_owned();
    for args in [
        &["config", "show", "--app", "app-5"][..],
        &["check", "--app", "app-5", "--provider", "langfuse"],
        &["send-test", "--app", "app-5", "--provider", "langfuse"],
    ] {
        let mut cmd = wrong.command(args);
        cmd.env("OPS_CONFIG_DB", s.path("config.db"));
        let run = wrong.finish(cmd).code(6);
        assert!(
            format!("{}{}", run.stdout, run.stderr).contains("cannot decrypt"),
            "{args:?}: {run:#?}"
        );
    }
    // 7: the database.
    s.run(&[
        "--database",
        "postgres://u@127.0.0.1:1/db",
        "config",
        "show",
        "--app",
        "a",
    ])
    .code(7);
}

#[test]
fn a_secret_variable_that_is_not_utf8_saves_nothing() {
    let s = Sandbox::new();
    let mut cmd = s.command(&[
        "config",
        "set",
        "--app",
        "app-1",
        "--provider",
        "langfuse",
        "--no-check",
    ]);
    cmd.env("OPS_SECRET_PUBLIC_KEY", PK)
        .env("OPS_SECRET_SECRET_KEY", not_utf8());
    let run = s.finish(cmd).code(2);
    assert!(
        run.stderr.contains("OPS_SECRET_SECRET_KEY") && run.stderr.contains("UTF-8"),
        "{run:#?}"
    );
    assert!(!run.stdout.contains("saved"), "{run:#?}");
    assert!(!s.path("config.db").exists(), "nothing was written");
}

#[test]
fn aliyun_license_keys_never_show_in_check_or_send_test() {
    const LICENSE: &str = "lk-SENTINEL-aliyun-7f3a";
    let rt = runtime();
    let echo = rt.block_on(FakeServer::start());
    echo.set_default(FakeResponse::echo(401));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let mut s = Sandbox::new();
    s.secrets.push(LICENSE.to_owned());
    s.secrets.push("7f3a".to_owned());
    for (app, endpoint) in [("app-closed", closed), ("app-echo", echo.uri())] {
        let mut cmd = s.command(&[
            "config",
            "set",
            "--app",
            app,
            "--provider",
            "aliyun",
            "--enable",
            "--set",
            &format!("endpoint={endpoint}"),
        ]);
        cmd.env("OPS_SECRET_LICENSE_KEY", LICENSE);
        // The check before saving fails, and says so without the key.
        let run = s.finish(cmd).code(5);
        assert!(run.stderr.contains("credentials check failed"), "{run:#?}");
        let mut cmd = s.command(&[
            "config",
            "set",
            "--app",
            app,
            "--provider",
            "aliyun",
            "--enable",
            "--no-check",
            "--set",
            &format!("endpoint={endpoint}"),
        ]);
        cmd.env("OPS_SECRET_LICENSE_KEY", LICENSE);
        s.finish(cmd).ok();
        let check = s.run(&["check", "--app", app]).code(5);
        assert!(check.stdout.contains("<redacted>"), "{check:#?}");
        let sent = s
            .run(&["send-test", "--app", app, "--timeout", "20"])
            .code(5);
        assert!(sent.stdout.contains("aliyun: FAILED"), "{sent:#?}");
    }
    assert!(
        echo.requests().iter().any(|r| r.path.contains(LICENSE)),
        "the server was sent the key in the path, and echoed it"
    );
}

#[test]
fn a_database_named_by_a_variable_is_named_in_its_errors() {
    let s = Sandbox::new();
    // Not found (exit 4): the variable that named the missing file.
    let missing = s.path("missing").join("config.db");
    let mut cmd = s.command(&["config", "show", "--app", "a"]);
    cmd.env("OPS_CONFIG_DB", &missing);
    let run = s.finish(cmd).code(4);
    assert!(
        run.stderr
            .contains("environment variable OPS_CONFIG_DB: config database")
            && run.stderr.contains("does not exist"),
        "{run:#?}"
    );
    // A bad URL (exit 7), in the URL variable, which wins over the path.
    for url in ["::::", "postgres:/typo@127.0.0.1/test"] {
        let mut cmd = s.command(&["config", "show", "--app", "a"]);
        cmd.env("OPS_CONFIG_DATABASE_URL", url);
        let run = s.finish(cmd).code(7);
        assert!(
            run.stderr
                .contains("environment variable OPS_CONFIG_DATABASE_URL: config database URL"),
            "{url}: {run:#?}"
        );
    }
    // Given on the command line, no variable is named.
    let run = s
        .run(&["--database", "::::", "config", "show", "--app", "a"])
        .code(7);
    assert!(!run.stderr.contains("environment variable"), "{run:#?}");
}

/// The exit-code table is in the help of `ops` and of every subcommand, at any depth.
#[test]
fn every_subcommand_help_shows_the_exit_codes() {
    let s = Sandbox::new();
    let top = s.run(&["--help"]).ok();
    assert!(top.stdout.contains("Exit codes:"), "{top:#?}");
    for args in [
        &["providers", "--help"][..],
        &["config", "--help"],
        &["config", "set", "--help"],
        &["config", "show", "--help"],
        &["config", "delete", "--help"],
        &["enable", "--help"],
        &["disable", "--help"],
        &["check", "--help"],
        &["send-test", "--help"],
        &["rotate-key", "--help"],
        &["keygen", "--help"],
    ] {
        let run = s.run(args).ok();
        assert!(
            run.stdout.contains("Exit codes:")
                && run.stdout.contains("  0  success")
                && run.stdout.contains("  7  config database error"),
            "{args:?}: {run:#?}"
        );
    }
}

/// An option read from the environment shows the variable's name, never `VAR=` with an empty
/// (or any) value after it.
#[test]
fn env_backed_options_show_the_variable_not_an_empty_value() {
    let s = Sandbox::new();
    let mut cmd = s.command(&["--help"]);
    cmd.env("OPS_ENCRYPTION_KEY_FILE", "/secret/path/keys");
    let run = s.finish(cmd).ok();
    assert!(
        run.stdout.contains("[env: OPS_ENCRYPTION_KEY_FILE]"),
        "{run:#?}"
    );
    assert!(
        !run.stdout.contains("OPS_ENCRYPTION_KEY_FILE=") && !run.stdout.contains("/secret/path"),
        "{run:#?}"
    );
    let run = s.run(&["config", "show", "--help"]).ok();
    assert!(!run.stdout.contains("=]"), "{run:#?}");
}

/// Malformed `--stdin` input is a bad command line (2) and an unsupported database URL is a
/// database error (7), as the table says.
#[test]
fn malformed_stdin_and_unsupported_urls_exit_as_the_table_says() {
    let s = Sandbox::new();
    let help = s.run(&["--help"]).ok().stdout;
    assert!(help.contains("not KEY=VALUE lines / a JSON object of strings (malformed)"));
    assert!(help.contains("(mysql://... too)"));
    for malformed in [
        "this is not a key value line\n",
        "{\"public_key\": 42}",
        "{not json",
    ] {
        let run = s
            .run_with_stdin(
                &[
                    "config",
                    "set",
                    "--app",
                    "app-1",
                    "--provider",
                    "langfuse",
                    "--stdin",
                    "--no-check",
                ],
                malformed,
            )
            .code(2);
        assert!(!run.stderr.is_empty(), "{malformed:?}: {run:#?}");
    }
    let run = s
        .run(&[
            "--database",
            "mysql://u@127.0.0.1/db",
            "config",
            "show",
            "--app",
            "app-1",
        ])
        .code(7);
    assert!(run.stderr.contains("mysql"), "{run:#?}");
}

/// App and tenant ids outside the documented charset are refused (exit 3) before anything is
/// opened, naming the id; nothing is created.
#[test]
fn app_and_tenant_ids_are_validated() {
    let s = Sandbox::new();
    for app in ["../../etc", "my app", ".hidden", "a/b"] {
        let run = s
            .run_with_secrets(&[
                "config",
                "set",
                "--app",
                app,
                "--provider",
                "langfuse",
                "--no-check",
            ])
            .code(3);
        assert!(
            run.stderr.contains("invalid app id")
                && run
                    .stderr
                    .contains("ASCII letters, digits, `_`, `-` and `.`"),
            "{app:?}: {run:#?}"
        );
    }
    let run = s
        .run(&["--tenant", "../x", "config", "show", "--app", "app-1"])
        .code(3);
    assert!(run.stderr.contains("invalid tenant id"), "{run:#?}");
    let mut cmd = s.command(&["config", "show", "--app", "app-1"]);
    cmd.env("OPS_TENANT", "acme corp");
    let run = s.finish(cmd).code(3);
    assert!(
        run.stderr.contains("invalid tenant id \"acme corp\"")
            && run.stderr.contains("from $OPS_TENANT"),
        "{run:#?}"
    );
    assert!(!s.path("config.db").exists(), "nothing was created");
    // Commands that name no app do not care about the tenant.
    s.run(&["providers"]).ok();
}

/// A required key left out names how to give it: the variable for a secret.
#[test]
fn a_missing_required_key_names_the_variable_to_set() {
    let s = Sandbox::new();
    let mut cmd = s.command(&[
        "config",
        "set",
        "--app",
        "app-1",
        "--provider",
        "langfuse",
        "--no-check",
    ]);
    cmd.env("OPS_SECRET_SECRET_KEY", SK);
    let run = s.finish(cmd).code(3);
    assert!(
        run.stderr
            .contains("`public_key` is required; set OPS_SECRET_PUBLIC_KEY (or pass --stdin"),
        "{run:#?}"
    );
}

/// `-v` and `RUST_LOG` turn on a logger on stderr; by default it is quiet; a bad `RUST_LOG` is
/// a usage error naming it. No secret or database URL is logged.
#[test]
fn the_logger_follows_verbose_and_rust_log() {
    let s = Sandbox::new();
    let quiet = s.run(&["providers"]).ok();
    assert!(quiet.stderr.is_empty(), "{quiet:#?}");
    let info = s.run(&["-v", "providers"]).ok();
    assert!(
        info.stderr.contains("INFO") && info.stderr.contains("running"),
        "{info:#?}"
    );
    assert!(!info.stderr.contains("DEBUG"), "{info:#?}");
    let debug = s
        .run(&[
            "-vv",
            "--database",
            "postgres://u:hunter2@127.0.0.1:1/db",
            "config",
            "show",
            "--app",
            "app-1",
        ])
        .code(7);
    assert!(
        debug.stderr.contains("DEBUG") && debug.stderr.contains("opening the config database"),
        "{debug:#?}"
    );
    assert!(!debug.stderr.contains("hunter2"), "{debug:#?}");
    let mut cmd = s.command(&["providers"]);
    cmd.env("RUST_LOG", "ops=info");
    let run = s.finish(cmd).ok();
    assert!(run.stderr.contains("running"), "{run:#?}");
    let mut cmd = s.command(&["providers"]);
    cmd.env("RUST_LOG", "ops=loud");
    let run = s.finish(cmd).code(2);
    assert!(run.stderr.contains("RUST_LOG"), "{run:#?}");
}
