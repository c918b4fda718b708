//! W&B Weave's own trace server for end-to-end tests: weave's SQLite trace server (from
//! PyPI, in a cached virtualenv) behind the thin HTTP layer of the workspace's
//! `tests/e2e/weave` scripts, started on a free loopback port and stopped (its process group
//! only) when the handle is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::e2e::{ScriptServer, scripts_dir};

/// How long the first install may take (it downloads weave and its dependencies from PyPI).
pub const SETUP_LIMIT: Duration = Duration::from_secs(600);
/// How long starting the server may take (start.sh itself waits up to 60 s).
pub const START_LIMIT: Duration = Duration::from_secs(120);

/// The workspace's `tests/e2e/weave` folder.
///
/// # Panics
/// If it has no `start.sh`.
pub fn weave_dir() -> PathBuf {
    scripts_dir("weave")
}

/// The weave trace server start.sh left running; its process group is stopped and its
/// working directory removed on drop.
#[derive(Debug)]
pub struct WeaveServer {
    server: ScriptServer,
}

impl WeaveServer {
    /// Installs (first time) and starts the trace server on a free loopback port, with its
    /// database under `work_root`. `Err(why)` when the install fails (no network to PyPI, no
    /// `python3-venv`): a test may skip on it (outside CI); `Ok` once the server answers.
    ///
    /// # Panics
    /// When the install succeeded but the server does not start or prints something other
    /// than `PID PORT`: that is a failure, not a reason to skip.
    pub fn start(work_root: &Path) -> Result<Self, String> {
        let limits = (SETUP_LIMIT, START_LIMIT);
        let server = ScriptServer::start(
            &weave_dir(),
            work_root,
            "weave-e2e",
            "weave's trace server",
            limits,
        )?;
        Ok(Self { server })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The server's log so far (one line per request, tracebacks of failed ones), to show
    /// when a test fails.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.server.work().join("server/weave.log")).unwrap_or_default()
    }
}
