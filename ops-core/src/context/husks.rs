//! The memory a recorded trace's parts held, handed back to be freed by the threads that
//! record, not by the queue's worker.
//!
//! A traced call allocates on its own thread (its captures, its record); the worker turns the
//! records into a trace and would free them. An allocator like glibc's keeps a lock per arena,
//! and a thread freeing into another thread's arena takes that lock: the worker freeing what
//! the app's threads allocated makes them wait on each other. So the worker hands the emptied
//! records back here, and each recording thread frees one part's worth when it hands a part
//! to the queue. What waits here is bounded ([`CAPACITY`] parts of at most [`MAX_BYTES`]
//! each); past that, or for a larger part, the worker frees it itself.

use std::sync::OnceLock;

use crossbeam_queue::ArrayQueue;

/// What one part held: freed wherever it is dropped.
pub(crate) type Husk = Box<dyn Send>;

/// Parts that may wait to be freed.
const CAPACITY: usize = 128;
/// The largest part (by its estimated size) handed back; larger ones are freed by the worker.
const MAX_BYTES: usize = 32 << 10;

fn queue() -> &'static ArrayQueue<Husk> {
    static QUEUE: OnceLock<ArrayQueue<Husk>> = OnceLock::new();
    QUEUE.get_or_init(|| ArrayQueue::new(CAPACITY))
}

/// Hands back what a part of `bytes` held, or frees it here when it is large or there is no
/// room.
pub(crate) fn give_back(husk: Husk, bytes: usize) {
    if bytes <= MAX_BYTES {
        let _ = queue().push(husk);
    }
}

/// Frees one part handed back (called by a thread that records).
#[inline]
pub(crate) fn free_one() {
    drop(queue().pop());
}

/// Frees everything handed back (when nothing has been recorded for a while).
pub(crate) fn free_all() {
    while queue().pop().is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts where it was dropped.
    struct Spy(Arc<AtomicUsize>, std::thread::ThreadId);

    impl Drop for Spy {
        fn drop(&mut self) {
            if std::thread::current().id() == self.1 {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn small_parts_are_freed_by_the_thread_that_asks_large_ones_at_once() {
        let here = Arc::new(AtomicUsize::new(0));
        let me = std::thread::current().id();
        std::thread::scope(|s| {
            s.spawn(|| {
                // The "worker" hands back a small part and a large one.
                give_back(Box::new(Spy(Arc::clone(&here), me)), 1024);
                give_back(Box::new(Spy(Arc::clone(&here), me)), MAX_BYTES + 1);
            });
        });
        assert_eq!(
            here.load(Ordering::Relaxed),
            0,
            "the large one was freed over there"
        );
        // Other tests may hand parts back too: free until ours is gone.
        for _ in 0..=CAPACITY {
            free_one();
        }
        assert_eq!(
            here.load(Ordering::Relaxed),
            1,
            "the small one was freed here"
        );
    }
}
