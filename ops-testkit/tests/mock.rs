//! The mock provider: scripted outcomes through a real queue, shutdown, reset, and its
//! registration in the provider inventory.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::tree;
use ops_core::provider::{ConfigError, ProviderConfig};
use ops_core::{
    DropReason, ExportError, ExportOutcome, Provider, QueueConfig, TraceQueueManager, TraceTask,
};
use ops_testkit::{MockProvider, capture, capture_with};

fn small_backoff() -> QueueConfig {
    let mut config = QueueConfig::default();
    config.interval = Duration::from_millis(10);
    config.initial_backoff = Duration::from_millis(1);
    config.max_backoff = Duration::from_millis(5);
    config.max_retries = 3;
    config
}

fn enqueue(queue: &TraceQueueManager, name: &str) {
    queue
        .add_trace_task(TraceTask::from_trace(tree(name, &[])))
        .expect("queued");
}

fn unavailable() -> ExportError {
    ExportError::new("mock", "503 Service Unavailable")
}

#[test]
fn a_scripted_retry_is_retried_then_delivered() {
    let mock = MockProvider::with_script([
        ExportOutcome::retry(unavailable()),
        ExportOutcome::Delivered,
    ]);
    let queue = TraceQueueManager::builder()
        .config(small_backoff())
        .provider(mock.clone())
        .build()
        .unwrap();
    enqueue(&queue, "retried");
    let report = queue.flush(Duration::from_secs(10));
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(report.delivered, 1);

    let stats = queue.stats();
    assert_eq!(stats.retried, 1);
    assert_eq!(stats.exported, 1);
    assert_eq!(stats.failed, 0);
    let provider = &stats.providers[0];
    assert_eq!(provider.name, "mock");
    assert_eq!(provider.retried, 1);
    assert!(
        provider.last_error.as_deref().unwrap().contains("503"),
        "{provider:?}"
    );
    assert_eq!(mock.export_calls(), 2);
    assert_eq!(mock.traces().len(), 1, "a refused attempt is not kept");
    assert_eq!(mock.traces()[0].name, "retried");
}

#[test]
fn a_scripted_fatal_error_counts_as_failed_and_later_batches_are_delivered() {
    let mock = MockProvider::with_script([ExportOutcome::fatal(ExportError::new(
        "mock",
        "401 invalid credentials",
    ))]);
    let capture = capture_with(mock.clone());
    enqueue(capture.queue(), "rejected");
    capture.flush();
    let stats = capture.queue().stats();
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.exported, 0);
    assert_eq!(stats.retried, 0);
    assert_eq!(stats.providers[0].failed, 1);
    assert!(mock.traces().is_empty());
    assert_eq!(mock.export_calls(), 1);

    // The script is used up: the next batch is accepted.
    enqueue(capture.queue(), "accepted");
    assert_eq!(common::names(&capture.traces()), ["accepted"]);
    assert_eq!(capture.queue().stats().exported, 1);
    assert_eq!(mock.export_calls(), 2);
}

#[test]
fn retries_that_never_succeed_are_dropped_after_the_budget() {
    let mock = MockProvider::with_script((0..10).map(|_| ExportOutcome::retry(unavailable())));
    let queue = TraceQueueManager::builder()
        .config(small_backoff())
        .provider(mock.clone())
        .build()
        .unwrap();
    enqueue(&queue, "doomed");
    queue.flush(Duration::from_secs(10));
    let stats = queue.stats();
    // One attempt plus max_retries (3) retries, then the trace is dropped.
    assert_eq!(mock.export_calls(), 4);
    assert_eq!(stats.retried, 3);
    assert_eq!(stats.dropped(DropReason::RetriesExhausted), 1);
    assert!(mock.traces().is_empty());
}

#[tokio::test]
async fn a_scripted_partial_keeps_only_the_accepted_traces() {
    let failed = ExportOutcome::Partial {
        failed: vec![1],
        error: unavailable(),
    };
    let mut mock = MockProvider::with_script([failed.clone()]);
    let batch = [Arc::new(tree("kept", &[])), Arc::new(tree("refused", &[]))];
    assert_eq!(mock.export(&batch).await, failed);
    assert_eq!(common::names(&mock.traces()), ["kept"]);
    assert_eq!(mock.export(&batch[1..]).await, ExportOutcome::Delivered);
    assert_eq!(common::names(&mock.traces()), ["kept", "refused"]);
    assert_eq!(mock.export_calls(), 2);
}

#[test]
fn clones_share_the_store_and_reset_clears_it() {
    let mock = MockProvider::new();
    let capture = capture_with(mock.clone());
    enqueue(capture.queue(), "one");
    capture.flush();
    assert_eq!(mock.traces().len(), 1);
    assert_eq!(mock.observations().len(), 1);
    mock.reset();
    assert!(capture.mock().traces().is_empty());
    assert_eq!(capture.mock().export_calls(), 0);
    enqueue(capture.queue(), "two");
    assert_eq!(common::names(&capture.traces()), ["two"]);
}

#[test]
fn shutting_the_queue_down_shuts_the_mock_down() {
    let live = capture();
    let mock = live.mock().clone();
    enqueue(live.queue(), "last");
    assert!(!mock.is_shutdown());
    let report = live.queue().shutdown(Duration::from_secs(10));
    assert!(!report.timed_out, "{report:?}");
    assert!(mock.is_shutdown());
    assert_eq!(
        common::names(&mock.traces()),
        ["last"],
        "delivered before shutdown"
    );

    // Dropping the last handle of a capture shuts down too.
    let dropped = capture();
    let dropped_mock = dropped.mock().clone();
    drop(dropped);
    assert!(dropped_mock.is_shutdown());
}

#[test]
fn mock_is_registered_in_the_inventory_and_shares_its_channel() {
    let factory = ops_core::provider::find("mock").expect("ops-testkit registers `mock`");
    assert!(
        ops_core::provider::registered()
            .iter()
            .any(|f| f.name == "mock")
    );
    let built = factory
        .build(ProviderConfig::new("mock").with("channel", "inventory-test"))
        .expect("a valid config");
    assert_eq!(built.name(), "mock");
    let queue = TraceQueueManager::builder()
        .boxed_provider(built)
        .build()
        .unwrap();
    enqueue(&queue, "via-registry");
    queue.flush(Duration::from_secs(10));
    let reader = MockProvider::channel("inventory-test");
    assert_eq!(common::names(&reader.traces()), ["via-registry"]);
    assert_eq!(reader.channel_name(), Some("inventory-test"));

    let error = factory
        .build(ProviderConfig::new("mock").with("chanel", "typo"))
        .expect_err("an unknown key is refused");
    assert!(matches!(error, ConfigError::UnknownField { .. }), "{error}");
    assert!(error.to_string().contains("channel"), "{error}");
}

#[tokio::test]
async fn the_registry_defaults_to_the_default_channel() {
    let factory = ops_core::provider::find("mock").unwrap();
    let built = factory.build(ProviderConfig::new("mock")).unwrap();
    assert_eq!(
        built.project_url().await.unwrap().as_deref(),
        Some("mock://default")
    );
    assert!(built.api_check().await.is_ok());
}
