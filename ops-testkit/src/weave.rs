//! W&B Weave's own trace server for end-to-end tests: weave's SQLite trace server (from
//! PyPI, in a cached virtualenv) behind the thin HTTP layer of the workspace's
//! `tests/e2e/weave` scripts, started on a free loopback port and stopped (its process group
//! only) when the handle is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::e2e::{alive, free_port, pid_and_port, run_script, work_dir};

/// How long the first install may take (it downloads weave and its dependencies from PyPI).
pub const SETUP_LIMIT: Duration = Duration::from_secs(600);
/// How long starting the server may take (start.sh itself waits up to 60 s).
pub const START_LIMIT: Duration = Duration::from_secs(120);

/// The workspace's `tests/e2e/weave` folder.
///
/// # Panics
/// If it has no `start.sh`.
pub fn weave_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/weave");
    assert!(
        dir.join("start.sh").is_file(),
        "{} has no start.sh",
        dir.display()
    );
    dir
}

/// The weave trace server start.sh left running; its process group is stopped and its
/// working directory removed on drop.
#[derive(Debug)]
pub struct WeaveServer {
    pid: u32,
    port: u16,
    work: PathBuf,
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
        let dir = weave_dir();
        let work = work_dir(work_root, "weave-e2e")?;
        let venv = run_script(&dir.join("setup.sh"), &[], &[], SETUP_LIMIT, &work)?;
        eprintln!("weave venv: {}", venv.trim());
        let port = free_port();
        let out = run_script(
            &dir.join("start.sh"),
            &[port.to_string(), work.join("server").display().to_string()],
            &[],
            START_LIMIT,
            &work,
        )
        .unwrap_or_else(|e| panic!("weave is installed but its trace server does not start: {e}"));
        let (pid, answered) = pid_and_port(&out);
        assert_eq!(answered, port, "start.sh answered on another port");
        Ok(Self { pid, port, work })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log so far (one line per request, tracebacks of failed ones), to show
    /// when a test fails.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.work.join("server/weave.log")).unwrap_or_default()
    }
}

impl Drop for WeaveServer {
    fn drop(&mut self) {
        // start.sh runs the server in a session of its own.
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
