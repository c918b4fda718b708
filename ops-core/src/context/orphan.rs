//! Traced calls that found no queue although one was installed elsewhere: the usual sign of
//! a task spawned with plain `tokio::spawn` (or a thread with `std::thread::spawn`) under a
//! scoped default queue, which loses the task-local default and the trace context.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// At most this many orphaned calls are kept with their names; past it only the count grows.
pub const ORPHANS_KEPT: usize = 10_000;

/// A traced call that started no trace because no queue was reachable from its task or
/// thread, while a queue was installed somewhere else in the process (a scoped or thread
/// default, such as a test's capture). Its task or thread lost the context: spawn it with
/// [`crate::spawn`] (or [`crate::spawn_blocking`], [`crate::spawn_thread`]), or wrap the
/// future with [`.in_current_trace()`](crate::TraceFutureExt::in_current_trace).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrphanedCall {
    /// Its position among every orphaned call of the process, from 1.
    pub seq: u64,
    /// The traced function's observation name.
    pub name: &'static str,
    /// The name of the thread it ran on, if the thread has one (libtest names a test's thread
    /// after the test; tokio's worker threads are `tokio-runtime-worker`).
    pub thread: Option<String>,
}

static COUNT: AtomicU64 = AtomicU64::new(0);
static KEPT: Mutex<Vec<OrphanedCall>> = Mutex::new(Vec::new());

/// Records an orphaned call of `name`.
#[cold]
pub(crate) fn record(name: &'static str) {
    let seq = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    if seq == 1 {
        tracing::warn!(
            target: "ops_core",
            function = name,
            "a traced call found no queue although one is installed elsewhere: its task or \
             thread lost the trace context; spawn it with ops_core::spawn (or spawn_blocking, \
             spawn_thread) or wrap the future with .in_current_trace()"
        );
    }
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() < ORPHANS_KEPT {
        kept.push(OrphanedCall {
            seq,
            name,
            thread: std::thread::current().name().map(str::to_owned),
        });
    }
}

/// How many traced calls this process made that found no queue while one was installed
/// elsewhere (see [`OrphanedCall`]).
pub fn orphaned_calls() -> u64 {
    COUNT.load(Ordering::Relaxed)
}

/// The orphaned calls after the `seq`-th (pass [`orphaned_calls`] read earlier to see those
/// since then), oldest first; at most [`ORPHANS_KEPT`] are kept in all.
pub fn orphans_after(seq: u64) -> Vec<OrphanedCall> {
    let kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    let start = kept.partition_point(|o| o.seq <= seq);
    kept[start..].to_vec()
}
