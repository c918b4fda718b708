//! A real MLflow tracking server for end-to-end tests: installed from PyPI into a cached
//! virtualenv and started on a free loopback port with a SQLite store by the workspace's
//! `tests/e2e/mlflow` scripts, stopped (its process group only) when the handle is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::e2e::{alive, free_port, pid_and_port, run_script, work_dir};

/// How long the first install may take (it downloads MLflow and its dependencies from PyPI).
pub const SETUP_LIMIT: Duration = Duration::from_secs(900);
/// How long starting MLflow may take (start.sh itself waits up to 120 s).
pub const START_LIMIT: Duration = Duration::from_secs(200);

/// The workspace's `tests/e2e/mlflow` folder.
///
/// # Panics
/// If it has no `start.sh`.
pub fn mlflow_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/mlflow");
    assert!(
        dir.join("start.sh").is_file(),
        "{} has no start.sh",
        dir.display()
    );
    dir
}

/// The MLflow server start.sh left running; its process group is stopped and its working
/// directory removed on drop.
#[derive(Debug)]
pub struct Mlflow {
    pid: u32,
    port: u16,
    work: PathBuf,
}

impl Mlflow {
    /// Installs (first time) and starts MLflow on a free loopback port, with its store under
    /// `work_root`. `Err(why)` when the install fails (no network to PyPI, no `python3-venv`):
    /// a test may skip on it; `Ok` once MLflow answers.
    ///
    /// # Panics
    /// When the install succeeded but MLflow does not start or prints something other than
    /// `PID PORT`: that is a failure, not a reason to skip.
    pub fn start(work_root: &Path) -> Result<Self, String> {
        let dir = mlflow_dir();
        let work = work_dir(work_root, "mlflow-e2e")?;
        let venv = run_script(&dir.join("setup.sh"), &[], &[], SETUP_LIMIT, &work)?;
        eprintln!("mlflow venv: {}", venv.trim());
        let port = free_port();
        let out = run_script(
            &dir.join("start.sh"),
            &[port.to_string(), work.join("server").display().to_string()],
            &[],
            START_LIMIT,
            &work,
        )
        .unwrap_or_else(|e| panic!("MLflow is installed but does not start: {e}"));
        let (pid, answered) = pid_and_port(&out);
        assert_eq!(answered, port, "start.sh answered on another port");
        Ok(Self { pid, port, work })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mlflow {
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
