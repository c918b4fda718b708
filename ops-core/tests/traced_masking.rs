//! The mask rewrites inputs and outputs before providers see them. The mask is process-wide,
//! so the tests in this binary take a lock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ops_core::context::{RedactKeys, disable_mask, replace_mask, reset_mask, set_mask};
use ops_core::traced;
use serde::Serialize;
use serde_json::{Value, json};

static MASK: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone, Serialize)]
struct Login {
    user: String,
    password: String,
}

#[derive(Debug, Serialize)]
struct Session {
    token_type: String,
    access_token: String,
}

#[traced]
fn call_api(api_key: &str, headers: BTreeMap<String, String>, login: Login) -> Session {
    let _ = (api_key, headers, login);
    Session {
        token_type: "bearer".into(),
        access_token: "at-123".into(),
    }
}

fn headers() -> BTreeMap<String, String> {
    [
        ("Authorization".to_owned(), "Bearer x".to_owned()),
        ("accept".to_owned(), "json".to_owned()),
    ]
    .into_iter()
    .collect()
}

fn login() -> Login {
    Login {
        user: "ada".into(),
        password: "hunter2".into(),
    }
}

#[test]
fn credentials_are_redacted_by_default() {
    let _lock = MASK.lock().unwrap_or_else(|e| e.into_inner());
    reset_mask();
    let capture = ops_testkit::capture();
    capture.run(|| call_api("sk-1", headers(), login()));
    let o = capture.find("call_api").unwrap();
    assert_eq!(
        o.input,
        Some(json!({
            "api_key": "[REDACTED]",
            "headers": {"Authorization": "[REDACTED]", "accept": "json"},
            "login": {"user": "ada", "password": "[REDACTED]"},
        }))
    );
    assert_eq!(
        o.output,
        Some(json!({"token_type": "bearer", "access_token": "[REDACTED]"}))
    );
    let trace = &capture.traces()[0];
    assert_eq!(
        trace.input, o.input,
        "the trace's input is the masked root input"
    );
}

#[traced]
fn email(address: String) -> String {
    ops_core::update_current_observation(|o| {
        o.metadata("note", "kept as is");
    });
    ops_core::update_current_trace(|t| {
        t.output(json!({"sent_to": "bob@example.com"}));
    });
    format!("sent to {address}")
}

#[test]
fn the_mask_is_configurable_and_can_be_turned_off() {
    let _lock = MASK.lock().unwrap_or_else(|e| e.into_inner());
    let capture = ops_testkit::capture();

    set_mask(|v: &mut Value| mask_emails(v));
    capture.run(|| email("ada@example.com".into()));
    let trace = capture.traces()[0].clone();
    let o = &trace.observations[0];
    assert_eq!(o.input, Some(json!({"address": "<email>"})));
    assert_eq!(o.output, Some(json!("sent to <email>")));
    assert_eq!(trace.output, Some(json!({"sent_to": "<email>"})));
    assert_eq!(o.metadata.get("note"), Some(&json!("kept as is")));

    capture.mock().reset();
    replace_mask(RedactKeys::new(["address"]));
    capture.run(|| email("ada@example.com".into()));
    let o = capture.find("email").unwrap();
    assert_eq!(o.input, Some(json!({"address": "[REDACTED]"})));

    capture.mock().reset();
    disable_mask();
    capture.run(|| call_api("sk-1", headers(), login()));
    let o = capture.find("call_api").unwrap();
    assert_eq!(o.input.as_ref().unwrap()["api_key"], json!("sk-1"));

    reset_mask();
}

fn mask_emails(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some(at) = s.find('@') {
                let start = s[..at].rfind(' ').map_or(0, |i| i + 1);
                let end = s[at..].find(' ').map_or(s.len(), |i| at + i);
                s.replace_range(start..end, "<email>");
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_emails),
        Value::Object(map) => map.values_mut().for_each(mask_emails),
        _ => {}
    }
}

#[test]
fn a_panicking_mask_never_leaks_the_value() {
    let _lock = MASK.lock().unwrap_or_else(|e| e.into_inner());
    let capture = ops_testkit::capture();
    set_mask(|_: &mut Value| panic!("mask bug"));
    capture.run(|| email("ada@example.com".into()));
    reset_mask();
    let o = capture.find("email").unwrap();
    assert_eq!(o.input, Some(json!("[REDACTED]")));
    assert_eq!(o.output, Some(json!("[REDACTED]")));
}

/// A mask added with `set_mask` runs after the default credential redaction: adding one for
/// emails does not expose passwords. `replace_mask` is the explicit opt-out.
#[test]
fn an_added_mask_keeps_the_credential_redaction_unless_replaced() {
    let _lock = MASK.lock().unwrap_or_else(|e| e.into_inner());
    let capture = ops_testkit::capture();

    set_mask(|v: &mut Value| mask_emails(v));
    capture.run(|| call_api("sk-1", headers(), login()));
    let o = capture.find("call_api").unwrap();
    assert_eq!(
        o.input.as_ref().unwrap()["api_key"],
        json!("[REDACTED]"),
        "set_mask keeps the default redaction"
    );
    assert_eq!(
        o.input.as_ref().unwrap()["login"]["password"],
        json!("[REDACTED]")
    );
    capture.mock().reset();
    capture.run(|| email("ada@example.com".into()));
    let o = capture.find("email").unwrap();
    assert_eq!(o.input, Some(json!({"address": "<email>"})));

    capture.mock().reset();
    replace_mask(|v: &mut Value| mask_emails(v));
    capture.run(|| call_api("sk-1", headers(), login()));
    let o = capture.find("call_api").unwrap();
    assert_eq!(
        o.input.as_ref().unwrap()["api_key"],
        json!("sk-1"),
        "replace_mask drops the default redaction"
    );
    reset_mask();
}

/// A queue can have a mask of its own (still on top of the credential redaction), and an app's
/// view of a queue one of its own again; neither touches other queues.
#[test]
fn a_queue_and_an_app_have_masks_of_their_own() {
    let _lock = MASK.lock().unwrap_or_else(|e| e.into_inner());
    reset_mask();
    let mock = ops_testkit::MockProvider::new();
    let queue = ops_core::TraceQueueManager::builder()
        .provider(mock.clone())
        .mask(|v: &mut Value| mask_emails(v))
        .build()
        .unwrap();
    {
        let _default = ops_core::set_default(queue.clone());
        call_api("sk-1", headers(), login());
        email("ada@example.com".into());
    }
    queue.flush(std::time::Duration::from_secs(5));
    let find = |name: &str| {
        mock.observations()
            .into_iter()
            .find(|o| o.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(find("email").input, Some(json!({"address": "<email>"})));
    assert_eq!(
        find("call_api").input.unwrap()["api_key"],
        json!("[REDACTED]")
    );

    // The process-wide mask is untouched: another queue does not mask emails.
    let capture = ops_testkit::capture();
    capture.run(|| email("ada@example.com".into()));
    assert_eq!(
        capture.find("email").unwrap().input,
        Some(json!({"address": "ada@example.com"}))
    );

    // An app's mask beats its queue's, for the tasks handed to it.
    mock.reset();
    let app = queue.for_app("app-1", None).with_mask(|v: &mut Value| {
        if let Value::Object(map) = v {
            map.insert("user".into(), json!("<user>"));
        }
    });
    let mut trace = ops_core::Trace::new(
        ops_core::TraceId::generate(),
        ops_core::ObservationKind::Span,
        "by-hand",
        chrono::Utc::now(),
    );
    trace.input = Some(json!({"user": "ada", "password": "p", "to": "bob@example.com"}));
    app.trace(trace).unwrap();
    queue.flush(std::time::Duration::from_secs(5));
    let delivered = mock.traces();
    assert_eq!(
        delivered[0].input,
        Some(json!({"user": "<user>", "password": "[REDACTED]", "to": "bob@example.com"}))
    );
}
