//! Sampling is decided at the root and inherited. The rate is process-wide, so the tests in
//! this binary take a lock; the environment variable is checked in a child process.

use ops_core::context::{SAMPLE_RATE_ENV, sample_rate, set_sample_rate};
use ops_core::{ObservationContext, traced};
use ops_testkit::expect;
use serde_json::json;

/// Serializes the tests that change the process's rate (an async-aware lock: one test holds
/// it across `.await`).
static RATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[traced]
fn leaf(n: u32) -> u32 {
    n
}

#[traced]
async fn async_leaf(n: u32) -> u32 {
    tokio::task::yield_now().await;
    n
}

#[traced(kind = "workflow")]
fn root(n: u32) -> (bool, bool) {
    let sampled = ObservationContext::current().is_sampled();
    let updated = ops_core::update_current_observation(|o| {
        o.metadata("seen", true);
    });
    leaf(n);
    leaf(n + 1);
    (sampled, updated)
}

#[traced(kind = "workflow", sample_rate = 1.0)]
fn always_root() {
    leaf(0);
}

#[test]
fn an_unsampled_root_records_nothing_below_it() {
    let _lock = RATE.blocking_lock();
    let capture = ops_testkit::capture();
    set_sample_rate(0.0).unwrap();
    let (sampled, updated) = capture.run(|| root(1));
    assert!(!sampled, "the context says the trace is not sampled");
    assert!(!updated, "updates in an unsampled trace change nothing");
    // The per-function rate beats the process's.
    capture.run(always_root);
    set_sample_rate(1.0).unwrap();
    let traces = capture.traces();
    assert_eq!(traces.len(), 1, "{}", capture.render());
    capture.assert(
        expect::trace().name("always_root").root(
            expect::observation("always_root")
                .child(expect::observation("leaf"))
                .only(),
        ),
    );
}

#[traced(kind = "workflow")]
async fn async_root() -> u32 {
    let spawned = ops_core::spawn(async_leaf(1)).await.unwrap();
    spawned + async_leaf(2).await + leaf(3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsampled_traces_stay_unsampled_across_await_and_spawn() {
    let capture = ops_testkit::capture();
    {
        let _lock = RATE.lock().await;
        set_sample_rate(0.0).unwrap();
        assert_eq!(capture.scope(async_root()).await, 6);
        set_sample_rate(1.0).unwrap();
    }
    assert!(capture.traces().is_empty(), "{}", capture.render());
}

#[test]
fn each_trace_is_kept_or_dropped_whole() {
    let _lock = RATE.blocking_lock();
    let capture = ops_testkit::capture();
    set_sample_rate(0.5).unwrap();
    for n in 0..400 {
        capture.run(|| root(n));
    }
    set_sample_rate(1.0).unwrap();
    let traces = capture.traces();
    assert!(
        (120..280).contains(&traces.len()),
        "about half of 400 traces kept: {}",
        traces.len()
    );
    for trace in &traces {
        assert_eq!(trace.observations.len(), 3, "a kept trace is complete");
        let root = trace.roots().next().unwrap();
        assert_eq!(root.metadata.get("seen"), Some(&json!(true)));
    }
}

/// Runs in a child process with `OPS_TRACE_SAMPLE_RATE` set (see the test below).
#[test]
fn env_child() {
    let Ok(expected) = std::env::var("OPS_TEST_EXPECTED_RATE") else {
        return;
    };
    assert_eq!(sample_rate(), expected.parse::<f64>().unwrap());
    let capture = ops_testkit::capture();
    capture.run(|| root(1));
    let kept = capture.traces().len();
    assert_eq!(kept, usize::from(expected != "0"));
}

#[test]
fn the_rate_comes_from_the_environment_unless_set_in_code() {
    for (value, expected) in [
        ("0", "0"),
        ("0.0", "0"),
        ("1", "1"),
        ("2.5", "1"),
        ("x", "1"),
    ] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "env_child", "--nocapture"])
            .env(SAMPLE_RATE_ENV, value)
            .env("OPS_TEST_EXPECTED_RATE", expected)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{SAMPLE_RATE_ENV}={value}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "the child ran the test"
        );
    }
}

#[test]
fn invalid_rates_are_refused() {
    let err = set_sample_rate(-0.1).unwrap_err();
    assert!(err.to_string().contains("from 0.0"), "{err}");
}
