//! A real MLflow tracking server for end-to-end tests: installed from PyPI into a cached
//! virtualenv and started on a free loopback port with a SQLite store by the workspace's
//! `tests/e2e/mlflow` scripts, stopped (its process group only) when the handle is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::e2e::{ScriptServer, scripts_dir};

/// How long the first install may take (it downloads MLflow and its dependencies from PyPI).
pub const SETUP_LIMIT: Duration = Duration::from_secs(900);
/// How long starting MLflow may take (start.sh itself waits up to 120 s).
pub const START_LIMIT: Duration = Duration::from_secs(200);

/// The workspace's `tests/e2e/mlflow` folder.
///
/// # Panics
/// If it has no `start.sh`.
pub fn mlflow_dir() -> PathBuf {
    scripts_dir("mlflow")
}

/// The MLflow server start.sh left running; its process group is stopped and its working
/// directory removed on drop.
#[derive(Debug)]
pub struct Mlflow {
    server: ScriptServer,
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
        let limits = (SETUP_LIMIT, START_LIMIT);
        let server = ScriptServer::start(&mlflow_dir(), work_root, "mlflow-e2e", "MLflow", limits)?;
        Ok(Self { server })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }
}
