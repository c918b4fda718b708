//! Configuration from the environment and from code: every bad value is an error that names
//! the variable or setting and its range, never a panic, never silently something else.
//! Environment cases run `init()` in a child process (this test binary, one ignored test) with
//! a controlled environment.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use ops_core::{QueueConfig, QueueError, TraceQueueManager};

const VARS: &[&str] = &[
    "OPS_TRACE_PROVIDER",
    "OPS_TRACE_FILE",
    "OPS_TRACE_SAMPLE_RATE",
    "OPS_TRACE_SPOOL_DIR",
    "OPS_TRACE_SPOOL_FSYNC",
    "OPS_TRACE_SPOOL_MAX_BYTES",
    "TRACE_QUEUE_MANAGER_INTERVAL",
    "TRACE_QUEUE_MANAGER_BATCH_SIZE",
    "FILES_URL",
];

/// Runs `child_init` with only `env` set (of the variables `init` reads) and returns its
/// stdout and stderr.
fn init_with(env: &[(&str, OsString)]) -> (String, String) {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_init", "--ignored", "--nocapture"]);
    for v in VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn text(pairs: &[(&str, &str)]) -> Vec<(&'static str, OsString)> {
    pairs
        .iter()
        .map(|(k, v)| {
            let k: &'static str = VARS.iter().find(|n| *n == k).expect("a known variable");
            (k, OsString::from(*v))
        })
        .collect()
}

fn not_utf8() -> OsString {
    OsString::from_vec(vec![b'5', 0xff, 0xfe])
}

#[test]
#[ignore = "run by the tests below in a child process"]
fn child_init() {
    match ops_core::init() {
        Ok(guard) => {
            println!(
                "OK installed={} enabled={} queue={}",
                guard.is_installed(),
                ops_core::is_enabled(),
                guard.queue().is_some()
            );
            if let Some(q) = guard.queue() {
                let c = q.config();
                println!("interval={:?} batch_size={}", c.interval, c.batch_size);
            }
        }
        Err(e) => println!("ERROR {e}"),
    }
}

/// Asserts that `init` failed with an error that mentions every one of `words`, and that
/// nothing panicked.
fn assert_error(env: &[(&str, OsString)], words: &[&str]) {
    let (stdout, stderr) = init_with(env);
    assert!(!stderr.contains("panicked"), "{env:?}: {stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("ERROR "))
        .unwrap_or_else(|| panic!("{env:?}: no error: {stdout}{stderr}"));
    for w in words {
        assert!(line.contains(w), "{env:?}: {w:?} missing in {line}");
    }
}

#[test]
fn queue_numbers_from_the_environment_are_checked() {
    for bad in [
        "inf",
        "-inf",
        "NaN",
        "1e308",
        "18446744073709551616",
        "1e-12",
        "-1",
        "0",
        "5 s",
    ] {
        assert_error(
            &text(&[("TRACE_QUEUE_MANAGER_INTERVAL", bad)]),
            &["TRACE_QUEUE_MANAGER_INTERVAL", "from 0.001 to 3600"],
        );
    }
    for bad in [
        "2.7",
        "inf",
        "0.5",
        "0",
        "-3",
        "1e3",
        "10000001",
        "18446744073709551616",
    ] {
        assert_error(
            &text(&[("TRACE_QUEUE_MANAGER_BATCH_SIZE", bad)]),
            &[
                "TRACE_QUEUE_MANAGER_BATCH_SIZE",
                "whole number from 1 to 10000000",
            ],
        );
    }
    let (stdout, _) = init_with(&text(&[
        ("OPS_TRACE_PROVIDER", "file"),
        ("OPS_TRACE_FILE", "/dev/null"),
        ("TRACE_QUEUE_MANAGER_INTERVAL", "0.5"),
        ("TRACE_QUEUE_MANAGER_BATCH_SIZE", " 7 "),
    ]));
    assert!(
        stdout.contains("interval=500ms batch_size=7"),
        "valid values are used: {stdout}"
    );
}

#[test]
fn spool_and_sampling_variables_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let spool = |k: &'static str, v: &str| {
        vec![
            ("OPS_TRACE_SPOOL_DIR", dir.path().as_os_str().to_owned()),
            (k, OsString::from(v)),
        ]
    };
    for bad in ["0", "-5", "2.5", "inf", "3600001", "sometimes"] {
        assert_error(
            &spool("OPS_TRACE_SPOOL_FSYNC", bad),
            &[
                "OPS_TRACE_SPOOL_FSYNC",
                "`always`, `never`",
                "from 1 to 3600000",
            ],
        );
    }
    for bad in ["-1", "1e9", "2.5", "inf", "0", "18446744073709551616"] {
        assert_error(
            &spool("OPS_TRACE_SPOOL_MAX_BYTES", bad),
            &[
                "OPS_TRACE_SPOOL_MAX_BYTES",
                "whole number from 1 to 1125899906842624",
            ],
        );
    }
    for bad in ["NaN", "inf", "1.5", "-0.1", "half"] {
        assert_error(
            &text(&[("OPS_TRACE_SAMPLE_RATE", bad)]),
            &["OPS_TRACE_SAMPLE_RATE", "from 0.0", "to 1.0"],
        );
    }
}

#[test]
fn values_that_are_not_utf8_name_their_variable() {
    for var in [
        "OPS_TRACE_PROVIDER",
        "TRACE_QUEUE_MANAGER_INTERVAL",
        "TRACE_QUEUE_MANAGER_BATCH_SIZE",
        "OPS_TRACE_SAMPLE_RATE",
        "OPS_TRACE_FILE",
        "FILES_URL",
    ] {
        assert_error(&[(var, not_utf8())], &[var, "not valid UTF-8"]);
    }
    let dir = tempfile::tempdir().unwrap();
    for var in ["OPS_TRACE_SPOOL_FSYNC", "OPS_TRACE_SPOOL_MAX_BYTES"] {
        assert_error(
            &[
                ("OPS_TRACE_SPOOL_DIR", dir.path().as_os_str().to_owned()),
                (var, not_utf8()),
            ],
            &[var, "not valid UTF-8"],
        );
    }
}

#[test]
fn provider_selection() {
    let (stdout, stderr) = init_with(&text(&[("OPS_TRACE_PROVIDER", "none")]));
    assert!(
        stdout.contains("OK installed=false enabled=false queue=false"),
        "`none` installs no queue: {stdout}{stderr}"
    );
    let (stdout, _) = init_with(&text(&[("OPS_TRACE_PROVIDER", " None ")]));
    assert!(stdout.contains("OK installed=false"), "{stdout}");
    let (stdout, _) = init_with(&[]);
    assert!(
        stdout.contains("OK installed=true enabled=true queue=true"),
        "unset means console: {stdout}"
    );
    for (bad, why) in [
        ("", "set but empty"),
        (",,,", "is empty"),
        ("console,,", "is empty"),
        ("none,console", "cannot be combined"),
        ("console,console", "named twice"),
    ] {
        assert_error(
            &text(&[("OPS_TRACE_PROVIDER", bad)]),
            &["OPS_TRACE_PROVIDER", why],
        );
    }
}

fn build_error(set: impl FnOnce(&mut QueueConfig)) -> (&'static str, &'static str) {
    let mut c = QueueConfig::default();
    set(&mut c);
    match TraceQueueManager::builder().config(c).build() {
        Err(QueueError::InvalidSetting { setting, expected }) => (setting, expected),
        other => panic!("expected an invalid setting, got {other:?}"),
    }
}

#[test]
fn settings_in_code_have_ranges_and_never_panic_later() {
    const HUGE: Duration = Duration::MAX;
    type Set = Box<dyn FnOnce(&mut QueueConfig)>;
    let cases: Vec<(&str, Set)> = vec![
        ("breaker_cooldown", Box::new(|c| c.breaker_cooldown = HUGE)),
        ("export_timeout", Box::new(|c| c.export_timeout = HUGE)),
        ("interval", Box::new(|c| c.interval = HUGE)),
        ("interval", Box::new(|c| c.interval = Duration::ZERO)),
        ("max_backoff", Box::new(|c| c.max_backoff = HUGE)),
        ("max_retry_time", Box::new(|c| c.max_retry_time = HUGE)),
        (
            "lane_idle_timeout",
            Box::new(|c| c.lane_idle_timeout = HUGE),
        ),
        ("batch_size", Box::new(|c| c.batch_size = 0)),
        ("max_items", Box::new(|c| c.max_items = usize::MAX)),
        ("breaker_threshold", Box::new(|c| c.breaker_threshold = 0)),
    ];
    for (setting, set) in cases {
        let (got, expected) = build_error(set);
        assert_eq!(got, setting);
        assert!(expected.contains("from"), "{setting}: {expected}");
    }
    let err = TraceQueueManager::builder()
        .interval(Duration::from_secs(1 << 40))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid queue setting `interval`: must be from 1 ms to 1 h"
    );
}
