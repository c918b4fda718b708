//! The admin API's logs at trace level, in a test binary of its own: a thread-local log
//! subscriber only sees every event when no other test in the process registers the same
//! callsites first.

mod common;

use axum::http::StatusCode;
use common::{ACME, ADMIN, Env, OTHER, PK, SK};
use ops_admin::Limits;
use serde_json::{Value, json};

fn assert_no_secret(text: &str) {
    for secret in [SK, PK, ACME, OTHER, ADMIN] {
        assert!(!text.contains(secret), "{secret} leaked in {text}");
    }
}

/// A log writer collecting everything into one buffer.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Current-thread runtime: the log subscriber set for this thread sees every handler.
#[tokio::test(flavor = "current_thread")]
async fn logs_hold_no_secret_or_token_at_trace_level() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = Env::new(401, Limits::default()).await;
    let failed = env
        .call(
            "PUT",
            "/apps/app-1/configs/langfuse",
            ACME,
            env.langfuse_body(),
        )
        .await;
    assert_eq!(failed.code(), "check_failed");
    let body = json!({"values": {"public_key": PK, "secret_key": SK, "host": env.server.uri()},
                      "check": false});
    let saved = env
        .call("PUT", "/apps/app-1/configs/langfuse", ACME, body)
        .await;
    assert_eq!(saved.status, StatusCode::CREATED);
    let refused = env
        .call("GET", "/apps/app-1/configs", OTHER, Value::Null)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("config saved"), "the save is logged: {text}");
    assert!(text.contains("secret_key"), "keys are named: {text}");
    assert_no_secret(&text);
}
