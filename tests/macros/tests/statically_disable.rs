//! Proves that `ops-core`'s `disabled` feature makes `#[traced]` emit functions unchanged:
//! builds and runs `statically-disable/main.rs` as a crate of its own with that feature on.
//!
//! It is built outside this workspace (in `CARGO_TARGET_TMPDIR`, with a copy of the
//! workspace's `Cargo.lock`, offline), so the feature never reaches the workspace's own build:
//! features unify across a workspace build, and `disabled` would turn tracing off for every
//! other test.

use std::path::{Path, PathBuf};
use std::process::Command;

fn build(features: &str, command: &str) -> (bool, String) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = here.join("../..").canonicalize().unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("statically-disable");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        r#"[package]
name = "statically-disable"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
ops-core = {{ path = {ops_core:?}, features = [{features}] }}

[workspace]
"#,
        ops_core = workspace.join("ops-core").display().to_string(),
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(
        here.join("statically-disable/main.rs"),
        dir.join("src/main.rs"),
    )
    .unwrap();
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([command, "--quiet", "--offline", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_disabled_feature_emits_functions_unchanged() {
    let (ok, out) = build("\"disabled\"", "run");
    assert!(ok, "the crate failed with `disabled`:\n{out}");
    assert!(out.contains("statically disabled: ok"), "{out}");
    // The control: without the feature the same file does not compile, because the traced
    // function captures a parameter that cannot be serialized.
    let (ok, out) = build("", "build");
    assert!(!ok, "without `disabled` the crate must not compile:\n{out}");
    assert!(
        out.contains("parameter `x` cannot be captured"),
        "the expected error:\n{out}"
    );
}
