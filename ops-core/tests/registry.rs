//! The inventory registry, the embedded local providers and `init()` from the environment.

use std::time::Duration;

use chrono::Utc;
use ops_core::local::LocalProvider;
use ops_core::provider::{self, ConfigError, ProviderConfig};
use ops_core::{Observation, ObservationKind, Trace, TraceId, TraceQueueManager, TraceTask, Usage};

fn sample(name: &str) -> Trace {
    let mut trace = Trace::new(
        TraceId::generate(),
        ObservationKind::Message,
        name,
        Utc::now(),
    );
    trace.attributes.user_id = Some("user-1".into());
    let root = Observation::new(ObservationKind::Message, "message");
    let mut llm = Observation::new(ObservationKind::Generation, "llm");
    llm.parent_id = Some(root.id);
    llm.model = Some("gpt-4o-mini".into());
    llm.usage = Some(Usage::tokens(12, 1));
    trace.observations = vec![root, llm];
    trace
}

fn temp_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "ops-{tag}-{}-{}.jsonl",
        std::process::id(),
        uuid::Uuid::now_v7()
    ))
}

#[test]
fn built_in_providers_are_registered_and_unknown_names_list_them() {
    let names: Vec<&str> = provider::registered().iter().map(|f| f.name).collect();
    assert!(
        names.contains(&"console") && names.contains(&"file"),
        "{names:?}"
    );
    assert_eq!(
        provider::find("CONSOLE").unwrap().name,
        "console",
        "lookup ignores case"
    );
    let err = provider::find("langfusee").unwrap_err().to_string();
    assert!(
        err.starts_with("unknown trace provider \"langfusee\"; registered providers: "),
        "{err}"
    );
    assert!(err.contains("console") && err.contains("file"), "{err}");
}

#[test]
fn factories_check_keys_and_name_the_bad_field() {
    let file = provider::find("file").unwrap();
    assert_eq!(file.other_keys().collect::<Vec<_>>(), ["file"]);
    let err = file
        .build(ProviderConfig::new("file").with("path", "x.jsonl"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "file: unknown config key `path`; known keys: file"
    );
    let err = file
        .build(ProviderConfig::new("file").with("file", "/nonexistent-dir/x.jsonl"))
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Invalid { field, .. } if field == "file"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("cannot open \"/nonexistent-dir/x.jsonl\""),
        "{err}"
    );
}

#[test]
fn the_file_provider_writes_json_lines_that_read_back_losslessly() {
    let path = temp_path("file");
    let provider = LocalProvider::file(path.to_string_lossy()).unwrap();
    let queue = TraceQueueManager::builder()
        .provider(provider)
        .build()
        .unwrap();
    let traces = [sample("first"), sample("second")];
    for t in &traces {
        queue
            .add_trace_task(TraceTask::from_trace(t.clone()))
            .unwrap();
    }
    assert!(!queue.shutdown(Duration::from_secs(5)).timed_out);
    let text = std::fs::read_to_string(&path).unwrap();
    let back: Vec<Trace> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, traces);
    std::fs::remove_file(path).unwrap();
}

#[tokio::test]
async fn the_file_provider_reports_where_it_writes() {
    let path = temp_path("url");
    let factory = provider::find("file").unwrap();
    let p = factory
        .build(ProviderConfig::new("file").with("file", path.to_string_lossy()))
        .unwrap();
    assert_eq!(p.name(), "file");
    p.api_check().await.unwrap();
    assert_eq!(
        p.project_url().await.unwrap(),
        Some(format!("file://{}", path.to_string_lossy()))
    );
    std::fs::remove_file(path).unwrap();
}

fn run_child(test: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--ignored", "--nocapture"]);
    cmd.env_remove("OPS_TRACE_PROVIDER")
        .env_remove("OPS_TRACE_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
#[ignore = "run by init_reads_the_environment in a child process"]
fn child_init() {
    match ops_core::init() {
        Ok(guard) => {
            let queue = guard.queue().expect("init installs the global queue");
            assert!(ops_core::is_enabled());
            queue
                .add_trace_task(TraceTask::from_trace(sample("from-init")))
                .unwrap();
            drop(queue);
            drop(guard);
            assert!(
                !ops_core::is_enabled(),
                "dropping the guard shuts tracing down"
            );
            println!("DONE");
        }
        Err(e) => println!("ERROR {e}"),
    }
}

#[test]
fn init_reads_the_environment() {
    let out = run_child("child_init", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(String::from_utf8_lossy(&out.stdout).contains("DONE"));
    assert!(
        stderr.contains("trace from-init [message]"),
        "console is the default: {stderr}"
    );
    assert!(stderr.contains("llm [generation] {"), "{stderr}");
    assert!(
        stderr.contains("model=gpt-4o-mini, usage=12/1/13"),
        "{stderr}"
    );

    let path = temp_path("init");
    let out = run_child(
        "child_init",
        &[
            ("OPS_TRACE_PROVIDER", "file"),
            ("OPS_TRACE_FILE", &path.to_string_lossy()),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("DONE"));
    assert!(out.stderr.is_empty(), "the file provider prints nothing");
    let text = std::fs::read_to_string(&path).unwrap();
    let trace: Trace = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(trace.name, "from-init");
    std::fs::remove_file(&path).unwrap();

    // `none` (no queue at all) is covered by tests/env_config.rs.

    let out = run_child("child_init", &[("OPS_TRACE_PROVIDER", "console,nope")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "ERROR environment variable OPS_TRACE_PROVIDER=\"console,nope\" is invalid: no \
             provider is registered as \"nope\"; registered providers:"
        ),
        "{stdout}"
    );
}

#[test]
fn scoped_defaults_route_to_the_innermost_queue() {
    let outer = TraceQueueManager::builder().build().unwrap();
    let inner = TraceQueueManager::builder().build().unwrap();
    // Enqueues through `current_queue()` and tells whether `expected` received it.
    let routes_to = |expected: &TraceQueueManager| {
        let before = expected.stats().enqueued;
        let current = ops_core::current_queue().expect("a default is set");
        current
            .add_trace_task(TraceTask::from_trace(sample("probe")))
            .unwrap();
        expected.stats().enqueued == before + 1
    };
    let guard = ops_core::set_default(outer.clone());
    assert!(ops_core::is_enabled());
    assert!(routes_to(&outer));
    ops_core::with_default(inner.clone(), || assert!(routes_to(&inner)));
    assert!(
        routes_to(&outer),
        "the inner default is gone with its scope"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(ops_core::scope_default(inner.clone(), async {
        assert!(routes_to(&inner), "a task-local default beats the thread's");
    }));
    drop(guard);
    let other_thread = std::thread::spawn(|| ops_core::current_queue().is_none());
    assert!(
        other_thread.join().unwrap(),
        "a thread default does not leak to other threads"
    );
}

/// A required plain key has its own constructor; the old `optional(..).required()` is
/// deprecated.
#[test]
fn a_required_plain_key_has_its_own_constructor() {
    let field = provider::ConfigField::plain("endpoint");
    assert!(field.required && !field.secret && field.default.is_none());
    assert!(!provider::ConfigField::optional("endpoint").required);
}
