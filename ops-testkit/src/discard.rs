//! A provider that takes every batch and keeps nothing: for benches and load tests, where
//! delivery must cost as little as possible and only the counts matter.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ops_core::{ExportError, ExportOutcome, Provider, Trace};

/// Accepts every batch, counts its traces and drops them: the cheapest delivery a queue can
/// have. Clones share the count.
///
/// ```
/// use ops_core::TraceQueueManager;
/// use ops_testkit::Discard;
///
/// let discard = Discard::default();
/// let queue = TraceQueueManager::builder().provider(discard.clone()).build()?;
/// # drop(queue);
/// assert_eq!(discard.traces(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Discard {
    traces: Arc<AtomicU64>,
}

impl Discard {
    /// Traces delivered to it so far.
    pub fn traces(&self) -> u64 {
        self.traces.load(Ordering::Relaxed)
    }
}

#[ops_core::async_trait]
impl Provider for Discard {
    fn name(&self) -> &str {
        "discard"
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        self.traces.fetch_add(batch.len() as u64, Ordering::Relaxed);
        black_box(batch);
        ExportOutcome::Delivered
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }
}
