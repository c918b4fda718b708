//! Not a stable API: used only by code `#[traced]` generates and by the queue's worker.

use std::cell::Cell;

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
    SUPPRESSED.with(Cell::get)
}
