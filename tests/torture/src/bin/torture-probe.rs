//! The env and config probe: one child process per hostile value, so a panic or an abort is
//! observed, not fatal. It prints `RESULT <json>` lines; what the library logged goes to
//! stderr as `LOG` lines.
//!
//! - `torture-probe core`: `ops_core::init()` from the environment the parent set; when it
//!   succeeds, a `#[traced]` root, a message run with a relative file URL and an explicit
//!   trace go to the configured (local) providers, then `shutdown`. Reports whether tracing
//!   is enabled after `init`.
//! - `torture-probe provider`: `ops_core::init()` with a network provider selected; sends
//!   nothing (the endpoints may be real platforms' defaults) and shuts down.
//! - `torture-probe config-key`: `ops_config::Keyring::from_env()`.
//! - `torture-probe config-db`: `ops_config::store::connect_from_env()`.
//! - `torture-probe provider-keys <name>`: every config key of the provider fed hostile
//!   values through `ProviderFactory::build`, one `RESULT` line per case, each in
//!   `catch_unwind`.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use ops_core::model::MessageRun;
use ops_core::provider;
use ops_core::{TraceTask, traced};
use ops_torture_tests::config::{baseline_config, is_url_key};
use ops_torture_tests::{logs, payload};
use serde_json::{Value, json};

fn say(value: &Value) {
    println!("RESULT {value}");
}

#[traced(kind = "workflow")]
fn probe_root(n: u64) -> u64 {
    probe_child(n) + 1
}

#[traced(kind = "generation")]
fn probe_child(n: u64) -> u64 {
    n * 2
}

fn panic_message(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".into())
}

fn core(send: bool) -> Value {
    match ops_core::init() {
        Err(e) => json!({ "outcome": "err", "error": e.to_string() }),
        Ok(guard) => {
            let enabled = ops_core::is_enabled();
            let providers: Vec<String> = guard
                .queue()
                .map(|q| q.stats().providers.into_iter().map(|p| p.name).collect())
                .unwrap_or_default();
            if send && let Some(queue) = guard.queue() {
                probe_root(1);
                let message = MessageRun {
                    id: uuid::Uuid::now_v7().to_string(),
                    conversation_id: "c".into(),
                    app_id: "a".into(),
                    query: "q".into(),
                    answer: "a".into(),
                    created_at: chrono::Utc::now(),
                    message_files: vec!["upload/a.png".into()],
                    ..MessageRun::default()
                };
                let _ = queue.trace_message_run(message);
                let trace = payload::explicit_trace(7, 1, payload::Shape::Ordinary, 0);
                let _ = queue.add_trace_task(TraceTask::from_trace(trace));
            }
            let report = ops_core::shutdown(Duration::from_secs(3));
            drop(guard);
            json!({
                "outcome": "ok", "enabled": enabled, "providers": providers,
                "shutdown_timed_out": report.timed_out,
            })
        }
    }
}

fn config_key() -> Value {
    match ops_config::Keyring::from_env() {
        Ok(_) => json!({ "outcome": "ok" }),
        Err(e) => json!({ "outcome": "err", "error": e.to_string() }),
    }
}

fn config_db() -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        match tokio::time::timeout(
            Duration::from_secs(10),
            ops_config::store::connect_from_env(),
        )
        .await
        {
            Ok(Ok(_)) => json!({ "outcome": "ok" }),
            Ok(Err(e)) => json!({ "outcome": "err", "error": e.to_string() }),
            Err(_) => json!({ "outcome": "err", "error": "timed out after 10 s" }),
        }
    })
}

/// Hostile string values for config keys, with a label for the report.
fn key_values() -> Vec<(&'static str, String)> {
    vec![
        ("NaN", "NaN".into()),
        ("inf", "inf".into()),
        ("-1", "-1".into()),
        ("0", "0".into()),
        ("1e308", "1e308".into()),
        ("2^64", "18446744073709551616".into()),
        ("2.7", "2.7".into()),
        ("empty", String::new()),
        (",,,", ",,,".into()),
        ("none", "none".into()),
        ("http://", "http://".into()),
        ("long", "x".repeat(64 << 10)),
        ("nul", "a\u{0}b".into()),
        ("crlf", "a\r\nInjected: 1".into()),
        ("control", "\u{1}".repeat(1000)),
    ]
}

fn provider_keys(name: &str) {
    let factory = match provider::find(name) {
        Ok(f) => f,
        Err(e) => {
            say(&json!({ "outcome": "err", "error": e.to_string() }));
            return;
        }
    };
    let url = "http://127.0.0.1:9";
    let baseline = baseline_config(factory, url);
    let built = std::panic::catch_unwind(AssertUnwindSafe(|| factory.build(baseline.clone())));
    say(&json!({
        "case": "baseline", "provider": name,
        "outcome": match &built { Ok(Ok(_)) => "ok", Ok(Err(_)) => "err", Err(_) => "panic" },
        "error": match &built {
            Ok(Err(e)) => e.to_string(),
            Err(p) => panic_message(p),
            Ok(Ok(_)) => String::new(),
        },
    }));
    for field in factory.fields {
        for (label, value) in key_values() {
            let mut config = baseline.clone();
            config.set(field.name, value.clone());
            let result =
                std::panic::catch_unwind(AssertUnwindSafe(|| factory.build(config.clone())));
            let (outcome, error) = match result {
                Ok(Ok(_)) => ("ok", String::new()),
                Ok(Err(e)) => ("err", e.to_string()),
                Err(p) => ("panic", panic_message(&p)),
            };
            say(&json!({
                "case": "key", "provider": name, "field": field.name, "secret": field.secret,
                "url": is_url_key(field.name), "value": label, "outcome": outcome,
                "error": error.chars().take(600).collect::<String>(),
            }));
        }
    }
}

fn main() {
    logs::install();
    ops_providers::link();
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    if mode == "provider-keys" {
        std::panic::set_hook(Box::new(|_| {}));
        provider_keys(&args.next().unwrap_or_default());
        return;
    }
    let result = std::panic::catch_unwind(|| match mode.as_str() {
        "core" => core(true),
        "provider" => core(false),
        "config-key" => config_key(),
        "config-db" => config_db(),
        other => json!({ "outcome": "err", "error": format!("unknown probe mode {other:?}") }),
    });
    match result {
        Ok(v) => say(&v),
        Err(p) => say(&json!({ "outcome": "panic", "error": panic_message(&p) })),
    }
}
