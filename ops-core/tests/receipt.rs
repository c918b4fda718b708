//! `AppTraceQueue::add_with_receipt`: the receipt resolves once every provider the trace went
//! to is done with it, and says how each ended.

use std::sync::Arc;
use std::time::Duration;

use ops_core::{
    ExportError, ExportOutcome, ObservationKind, Provider, Trace, TraceId, TraceQueueManager,
    TraceTask,
};

struct Answers {
    name: &'static str,
    fatal: bool,
}

#[ops_core::async_trait]
impl Provider for Answers {
    fn name(&self) -> &str {
        self.name
    }
    async fn export(&mut self, _batch: &[Arc<Trace>]) -> ExportOutcome {
        if self.fatal {
            ExportOutcome::fatal(ExportError::new(self.name, "rejected"))
        } else {
            ExportOutcome::Delivered
        }
    }
    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }
}

fn task() -> TraceTask {
    TraceTask::from_trace(Trace::new(
        TraceId::generate(),
        ObservationKind::Workflow,
        "run",
        chrono::Utc::now(),
    ))
}

#[test]
fn a_receipt_counts_each_provider_that_accepted_or_gave_up() {
    let queue = TraceQueueManager::builder()
        .interval(Duration::from_millis(10))
        .provider(Answers {
            name: "accepts",
            fatal: false,
        })
        .provider(Answers {
            name: "rejects",
            fatal: true,
        })
        .build()
        .unwrap();
    let receipt = queue.for_app("app", None).add_with_receipt(task()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let resolution = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), receipt).await })
        .expect("resolved within 10 s")
        .expect("resolved before shutdown");
    assert_eq!(resolution.delivered, 1);
    assert_eq!(resolution.failed, 1);
    assert!(!resolution.unroutable && !resolution.invalid);
}

struct FailingRouter;

#[ops_core::async_trait]
impl ops_core::ProviderRouter for FailingRouter {
    async fn route(&self, _app_id: &str) -> Result<Vec<String>, ExportError> {
        Err(ExportError::new(
            "router",
            "the config store is unreachable",
        ))
    }
    async fn build(&self, _key: &str) -> Result<Box<dyn Provider>, ExportError> {
        Err(ExportError::new("router", "never asked"))
    }
}

#[test]
fn a_receipt_says_when_routing_failed() {
    let queue = TraceQueueManager::builder()
        .interval(Duration::from_millis(10))
        .router(Arc::new(FailingRouter))
        .build()
        .unwrap();
    let receipt = queue.for_app("app", None).add_with_receipt(task()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let resolution = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), receipt).await })
        .expect("resolved within 10 s")
        .expect("resolved before shutdown");
    assert!(resolution.unroutable);
    assert_eq!((resolution.delivered, resolution.failed), (0, 0));
}
