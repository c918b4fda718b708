//! Counters of what the queue did with every task.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Why a trace was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The queue was at its item or byte limit when the task was added.
    QueueFull,
    /// The task could not be turned into a trace (for example an invalid id).
    Invalid,
    /// A provider's own backlog was full because it could not keep up or was down.
    ProviderBacklog,
    /// The retry budget ran out for a retryable failure.
    RetriesExhausted,
    /// Shutdown's timeout passed before the trace was delivered.
    Shutdown,
    /// The queue was already shut down.
    AfterShutdown,
    /// The spool was full and its policy is to refuse new tasks.
    SpoolFull,
    /// The app's providers could not be resolved or built (see the warning for why).
    Unroutable,
}

impl DropReason {
    const ALL: [DropReason; 8] = [
        DropReason::QueueFull,
        DropReason::Invalid,
        DropReason::ProviderBacklog,
        DropReason::RetriesExhausted,
        DropReason::Shutdown,
        DropReason::AfterShutdown,
        DropReason::SpoolFull,
        DropReason::Unroutable,
    ];

    /// A short name, for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Invalid => "invalid",
            DropReason::ProviderBacklog => "provider_backlog",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::Shutdown => "shutdown",
            DropReason::AfterShutdown => "after_shutdown",
            DropReason::SpoolFull => "spool_full",
            DropReason::Unroutable => "unroutable",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Written by every producer: on a cache line of its own so the worker's writes to the
    /// other counters never contend with enqueue.
    pub(crate) enqueued: crossbeam_utils::CachePadded<AtomicU64>,
    pub(crate) exported: AtomicU64,
    pub(crate) exported_observations: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) truncated: AtomicU64,
    dropped: [AtomicU64; 8],
    warned: [AtomicBool; 8],
}

impl Counters {
    pub(crate) fn drop(&self, reason: DropReason, count: u64, context: &str) {
        self.dropped[reason.index()].fetch_add(count, Relaxed);
        if !self.warned[reason.index()].swap(true, Relaxed) {
            tracing::warn!(
                reason = reason.as_str(),
                "ops: dropping traces ({context}); further drops for this reason are counted \
                 without a warning: read TraceQueueManager::stats()"
            );
        }
    }

    pub(crate) fn snapshot(&self, providers: Vec<ProviderStats>) -> QueueStats {
        QueueStats {
            enqueued: self.enqueued.load(Relaxed),
            exported: self.exported.load(Relaxed),
            exported_observations: self.exported_observations.load(Relaxed),
            failed: self.failed.load(Relaxed),
            retried: self.retried.load(Relaxed),
            truncated: self.truncated.load(Relaxed),
            dropped: DropReason::ALL
                .iter()
                .map(|r| (*r, self.dropped[r.index()].load(Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            providers,
            spool: None,
            held_bytes: 0,
        }
    }
}

/// A snapshot of the queue's counters. Trace counts are per provider delivery: a trace sent to
/// two providers counts twice in `exported`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Tasks accepted by `add_trace_task`.
    pub enqueued: u64,
    /// Traces a provider accepted.
    pub exported: u64,
    /// Observations in the traces a provider accepted.
    pub exported_observations: u64,
    /// Traces a provider rejected for good (fatal errors).
    pub failed: u64,
    /// Export attempts that were retried.
    pub retried: u64,
    /// Values replaced by a truncation marker or removed as invalid (NaN costs), each noted
    /// in the trace itself.
    pub truncated: u64,
    /// Dropped traces, by reason (only reasons with drops are listed).
    pub dropped: Vec<(DropReason, u64)>,
    /// Per-provider counters.
    pub providers: Vec<ProviderStats>,
    /// The spool's counters, when it is on.
    pub spool: Option<crate::spool::SpoolStats>,
    /// Bytes of heap the queue's traces hold now, as estimated: what is counted against
    /// [`crate::QueueConfig::max_bytes`].
    pub held_bytes: u64,
}

impl QueueStats {
    /// Traces dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|(_, n)| n).sum()
    }

    /// Traces dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

/// One provider's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderStats {
    /// The provider's name.
    pub name: String,
    /// Traces it accepted.
    pub exported: u64,
    /// Traces it rejected for good.
    pub failed: u64,
    /// Export attempts retried.
    pub retried: u64,
    /// Traces dropped on its way (backlog full, retries exhausted, shutdown).
    pub dropped: u64,
    /// Traces waiting for it or in flight.
    pub pending: u64,
    /// The last error it reported.
    pub last_error: Option<String>,
    /// Whether its circuit is open: it failed repeatedly and waits before trying again.
    pub circuit_open: bool,
}
