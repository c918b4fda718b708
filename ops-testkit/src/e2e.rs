//! What the end-to-end servers ([`crate::phoenix`], [`crate::mlflow`], [`crate::weave`])
//! share: running their install and start scripts with a time limit, free loopback ports, and
//! process checks.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `python3` runs here (Phoenix and MLflow need it).
pub fn python3_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `bash script args` with a time limit; its stdout, or why it failed. Output goes
/// through files in `work`, so a background process the script leaves running holds no pipe
/// of ours.
pub fn run_script(
    script: &Path,
    args: &[String],
    envs: &[(&str, &Path)],
    limit: Duration,
    work: &Path,
) -> Result<String, String> {
    let name = script
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "script".into());
    let out_path = work.join(format!("{name}.out"));
    let err_path = out_path.with_extension("err");
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut command = Command::new("bash");
    command
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file(&out_path)?)
        .stderr(file(&err_path)?);
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().map_err(|e| format!("bash: {e}"))?;
    let deadline = Instant::now() + limit;
    let stderr = || std::fs::read_to_string(&err_path).unwrap_or_default();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for {name}: {e}")),
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{} did not finish within {limit:?}; stderr:\n{}",
                script.display(),
                stderr()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "{} failed ({status}); stdout:\n{stdout}\nstderr:\n{}",
            script.display(),
            stderr()
        ));
    }
    Ok(stdout)
}

/// A free TCP port on 127.0.0.1.
///
/// # Panics
/// If no loopback port can be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a loopback port can be bound")
}

/// Whether process `pid` is still running.
pub(crate) fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh working directory `<prefix>-<pid>-<nanos>` under `root`, created.
pub(crate) fn work_dir(root: &Path, prefix: &str) -> Result<std::path::PathBuf, String> {
    let work = root.join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    ));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    Ok(work)
}

/// The `PID PORT` line a start script prints.
///
/// # Panics
/// When the line is anything else: the server started wrong, which is a failure.
pub(crate) fn pid_and_port(out: &str) -> (u32, u16) {
    let mut parts = out.split_whitespace();
    let pid = parts.next().and_then(|p| p.parse().ok());
    let port = parts.next().and_then(|p| p.parse().ok());
    match (pid, port) {
        (Some(pid), Some(port)) => (pid, port),
        _ => panic!("start.sh printed {out:?}, not \"PID PORT\""),
    }
}
