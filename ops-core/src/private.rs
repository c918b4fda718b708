//! Not a stable API: used only by code `#[traced]` generates and by the queue's worker. Every
//! path generated code names is under here, so a mismatch between `ops-macros` and `ops-core`
//! fails to compile instead of misbehaving.

use std::cell::Cell;

pub use crate::context::reduce::{Ignore, collect};
pub use crate::context::seam::*;
pub use crate::model::{Level, ObservationKind};

thread_local! {
    static SUPPRESSED: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as one whose calls are never traced (the queue's worker, so its own
/// export traffic is never traced).
pub fn suppress_current_thread() {
    SUPPRESSED.with(|s| s.set(true));
}

/// Whether tracing is suppressed on this thread.
#[inline]
pub fn is_suppressed() -> bool {
    SUPPRESSED.try_with(Cell::get).unwrap_or(true)
}
