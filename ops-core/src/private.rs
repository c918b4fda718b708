//! Not a stable API: used only by code `#[traced]` generates and by the queue's worker. Every
//! path generated code names is under here, so a mismatch between `ops-macros` and `ops-core`
//! fails to compile instead of misbehaving.

pub use crate::context::reduce::{Ignore, collect};
pub use crate::context::seam::*;
pub use crate::model::{Level, ObservationKind};

/// Marks the current thread as one whose calls are never traced (the queue's worker, so its own
/// export traffic is never traced).
pub fn suppress_current_thread() {
    crate::context::suppress_thread();
}

/// Whether tracing is suppressed on this thread.
#[inline]
pub fn is_suppressed() -> bool {
    crate::context::is_suppressed()
}

/// Entry points for the fuzz targets in `fuzz/`: what a process reads from disk or the
/// environment, reachable without a queue. Not a stable API.
pub mod fuzz {
    use std::path::Path;

    /// Reads a spool segment's bytes as a restart would; returns the intact records found.
    pub fn spool_decode(bytes: &[u8]) -> usize {
        crate::spool::fuzz_decode(bytes)
    }

    /// Opens the spool in `dir` as a restart would, reads back every record and resolves
    /// it; returns how many were read back.
    pub fn spool_replay(dir: &Path) -> Result<usize, String> {
        crate::spool::fuzz_replay(dir, usize::MAX)
    }

    /// [`spool_replay`] that stops, as a crash would, once `max` records are resolved.
    pub fn spool_replay_at_most(dir: &Path, max: usize) -> Result<usize, String> {
        crate::spool::fuzz_replay(dir, max)
    }
}
