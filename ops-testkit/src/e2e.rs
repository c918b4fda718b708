//! What the end-to-end servers ([`crate::phoenix`], [`crate::mlflow`], [`crate::weave`])
//! share: running their install and start scripts with a time limit, free loopback ports, and
//! process checks.

use std::path::{Path, PathBuf};
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

/// The workspace's `tests/e2e/<name>` folder, which holds a server's `setup.sh` and
/// `start.sh`.
///
/// # Panics
/// If it has no `start.sh`.
pub(crate) fn scripts_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e")
        .join(name);
    assert!(
        dir.join("start.sh").is_file(),
        "{} has no start.sh",
        dir.display()
    );
    dir
}

/// A server a folder's scripts run: `setup.sh` installs it (once, cached), `start.sh PORT
/// DIR` starts it in a session of its own and prints `PID PORT`. Dropping it stops that
/// process group only and removes its working directory.
#[derive(Debug)]
pub(crate) struct ScriptServer {
    pid: u32,
    port: u16,
    work: PathBuf,
}

impl ScriptServer {
    /// Installs (first time) and starts the server of `dir` on a free loopback port, its
    /// data under a fresh `<prefix>-…` directory of `work_root`. `Err(why)` when the install
    /// fails (no network to PyPI, no `python3-venv`); `Ok` once it answers.
    ///
    /// # Panics
    /// When the install succeeded but `what` does not start or prints something other than
    /// `PID PORT`: that is a failure, not a reason to skip.
    pub(crate) fn start(
        dir: &Path,
        work_root: &Path,
        prefix: &str,
        what: &str,
        limits: (Duration, Duration),
    ) -> Result<Self, String> {
        let (setup_limit, start_limit) = limits;
        let work = work_dir(work_root, prefix)?;
        let venv = run_script(&dir.join("setup.sh"), &[], &[], setup_limit, &work)?;
        eprintln!("{what} venv: {}", venv.trim());
        let port = free_port();
        let out = run_script(
            &dir.join("start.sh"),
            &[port.to_string(), work.join("server").display().to_string()],
            &[],
            start_limit,
            &work,
        )
        .unwrap_or_else(|e| panic!("{what} is installed but does not start: {e}"));
        let (pid, answered) = pid_and_port(&out);
        assert_eq!(answered, port, "start.sh answered on another port");
        Ok(Self { pid, port, work })
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its working directory (the server's data is under `server/`).
    pub(crate) fn work(&self) -> &Path {
        &self.work
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        // start.sh runs the server in a session of its own: its workers go with it.
        let group = format!("-{}", self.pid);
        let _ = Command::new("kill").args(["--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while alive(self.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if alive(self.pid) {
            let _ = Command::new("kill").args(["-9", "--", &group]).status();
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}
