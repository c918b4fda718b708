//! What the app's threads allocated, handed back by the worker to be freed by them.
//!
//! An allocator with a lock per arena (glibc's) makes a thread that frees memory from another
//! thread's arena take that arena's lock: the worker freeing what the app allocated would
//! make the app's threads wait for it while they allocate. So the worker hands it back here,
//! and the threads that enqueue free what waits, a few items per call:
//! - a `#[traced]` task, once the worker has built its trace without freeing anything it
//!   holds (its records, its captures), and a Dify-style run, once the worker has built its
//!   trace from a copy;
//! - a trace the app built ([`TraceTask::from_trace`]), once every provider is done with it.
//!
//! What waits is bounded, in count and in bytes, and its bytes stay counted against the
//! queue's budget until it is freed.

use crossbeam_queue::ArrayQueue;

use std::sync::Arc;

use super::Shared;
use crate::model::Trace;
use crate::task::TraceTask;

/// Items that may wait to be freed.
const CAPACITY: usize = 64;
/// The largest item (by its estimated size) handed back; larger ones are freed by the worker,
/// as are items that find no room.
pub(crate) const MAX_BYTES: usize = 64 << 10;
/// Items a thread frees each time it enqueues: more than one, so the queue drains when a
/// recorded trace is delivered in several parts.
const PER_CALL: usize = 2;

/// What the app allocated, for an app thread to free.
pub(crate) enum Husk {
    /// A task the app filled (recorded or a Dify-style run) whose trace is built.
    Task(#[allow(dead_code)] Box<TraceTask>),
    /// A trace the app built, delivered.
    Trace(#[allow(dead_code)] Arc<Trace>),
}

/// Items waiting for an app thread to free them, with the bytes each counts.
pub(crate) struct Reclaim {
    tasks: ArrayQueue<(Husk, usize)>,
}

impl Reclaim {
    pub(crate) fn new() -> Self {
        Self {
            tasks: ArrayQueue::new(CAPACITY),
        }
    }
}

impl std::fmt::Debug for Reclaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reclaim")
            .field("waiting", &self.tasks.len())
            .finish()
    }
}

impl Shared {
    /// Hands back what the app allocated, whose `size` bytes are still counted; frees it here
    /// when it is large or there is no room.
    pub(crate) fn give_back(&self, task: Husk, size: usize) {
        if size > MAX_BYTES {
            drop(task);
            self.release_bytes(size);
            return;
        }
        if let Err((task, size)) = self.reclaim.tasks.push((task, size)) {
            drop(task);
            self.release_bytes(size);
        }
    }

    /// Frees a few tasks handed back (called by the threads that enqueue).
    #[inline]
    pub(crate) fn free_some(&self) {
        if self.reclaim.tasks.is_empty() {
            return;
        }
        for _ in 0..PER_CALL {
            let Some((task, size)) = self.reclaim.tasks.pop() else {
                return;
            };
            drop(task);
            self.release_bytes(size);
        }
    }

    /// Frees every task handed back (by the worker, when nothing was enqueued for an
    /// interval, and at shutdown).
    pub(crate) fn free_all(&self) {
        while let Some((task, size)) = self.reclaim.tasks.pop() {
            drop(task);
            self.release_bytes(size);
        }
    }
}
