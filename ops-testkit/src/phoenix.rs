//! A real Arize Phoenix for end-to-end tests: installed from PyPI into a cached virtualenv and
//! started on free loopback ports by `shared/e2e/phoenix` (beside the workspace), stopped
//! (that PID only) when the handle is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::e2e::{alive, pid_and_port, work_dir};
pub use crate::e2e::{free_port, python3_available, run_script};

/// How long the first install may take (it downloads Phoenix from PyPI).
pub const SETUP_LIMIT: Duration = Duration::from_secs(420);
/// How long starting Phoenix may take (start.sh itself waits up to 60 s).
pub const START_LIMIT: Duration = Duration::from_secs(150);

/// The `shared/e2e/phoenix` folder beside the workspace.
///
/// # Panics
/// If it has no `start.sh`: the `shared/` folder must sit beside the workspace (as in CI).
pub fn phoenix_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/e2e/phoenix");
    assert!(
        dir.join("start.sh").is_file(),
        "{} has no start.sh: the shared/ folder must sit beside the workspace (as in CI)",
        dir.display()
    );
    dir
}

/// The Phoenix process start.sh left running; stopped (that PID only) and its working
/// directory removed on drop.
#[derive(Debug)]
pub struct Phoenix {
    pid: u32,
    port: u16,
    work: PathBuf,
}

impl Phoenix {
    /// Installs (first time) and starts Phoenix on free loopback ports, with a working
    /// directory under `work_root`. `Err(why)` when the install fails (no network to PyPI,
    /// no `python3-venv`): a test may skip on it; `Ok` once Phoenix answers.
    ///
    /// # Panics
    /// When the install succeeded but Phoenix does not start or prints something other than
    /// `PID PORT`: that is a failure, not a reason to skip.
    pub fn start(work_root: &Path) -> Result<Self, String> {
        let dir = phoenix_dir();
        let work = work_dir(work_root, "phoenix-e2e")?;
        let venv = run_script(&dir.join("setup.sh"), &[], &[], SETUP_LIMIT, &work)?;
        eprintln!("phoenix venv: {}", venv.trim());
        let (http, grpc) = (free_port(), free_port());
        let wd = work.join("phoenix");
        std::fs::create_dir_all(&wd).map_err(|e| format!("{}: {e}", wd.display()))?;
        let out = run_script(
            &dir.join("start.sh"),
            &[http.to_string(), grpc.to_string()],
            &[("PHOENIX_WORKING_DIR", &wd)],
            START_LIMIT,
            &work,
        )
        .unwrap_or_else(|e| panic!("Phoenix is installed but does not start: {e}"));
        let (pid, port) = pid_and_port(&out);
        assert_eq!(port, http, "start.sh answered on another port");
        Ok(Self { pid, port, work })
    }

    /// The HTTP port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Phoenix {
    fn drop(&mut self) {
        let pid = self.pid.to_string();
        let _ = Command::new("kill").arg(&pid).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while alive(self.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if alive(self.pid) {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}
