//! The quickstart with tracing off (`OPS_TRACE_PROVIDER=none`): it says so and still runs.
//! The example's own `run()` runs in a child process (this test binary), since it sets up
//! the process-wide queue from the environment.

#[allow(dead_code)] // Its `main` is the example's.
#[path = "../examples/quickstart.rs"]
mod quickstart;

#[test]
#[ignore = "run by quickstart_runs_with_tracing_off in a child process"]
fn child_quickstart() {
    match quickstart::run() {
        Ok(()) => println!("RESULT OK"),
        Err(e) => println!("RESULT ERROR {e}"),
    }
}

#[test]
fn quickstart_runs_with_tracing_off() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_quickstart",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OPS_TRACE_PROVIDER", "none")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("RESULT OK"), "{stdout}{stderr}");
    assert!(
        stdout.contains("tracing is off (OPS_TRACE_PROVIDER=none)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("answer: Pack light"),
        "the app still answers: {stdout}"
    );
}
