//! A traced call spawned with plain `tokio::spawn` inside `capture.scope` reaches no queue:
//! the capture reports it (count and names) instead of losing it silently, and the fix
//! (`ops_core::spawn`, `.in_current_trace()`) makes it part of the trace.

use ops_core::{TraceFutureExt as _, traced};
use ops_testkit::capture;

#[traced(kind = "tool")]
async fn lookup(query: &str) -> usize {
    query.len()
}

#[traced]
async fn handler(spawn_plainly: bool) -> usize {
    if spawn_plainly {
        tokio::spawn(async { lookup("lost").await }).await.unwrap()
    } else {
        let a = ops_core::spawn(async { lookup("kept").await })
            .await
            .unwrap();
        let b = tokio::spawn(async { lookup("also kept").await }.in_current_trace())
            .await
            .unwrap();
        a + b
    }
}

#[tokio::test]
async fn a_plain_tokio_spawn_is_reported_as_an_orphan() {
    let capture = capture();
    capture.scope(handler(true)).await;
    let orphans = capture.orphans();
    assert_eq!(orphans.count, 1, "{orphans:?}");
    assert_eq!(orphans.names, ["lookup"]);
    let message =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| capture.assert_no_orphans()))
            .expect_err("an orphan fails the assertion");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("1 traced call(s) reached no queue: lookup")
            && message.contains("ops_core::spawn")
            && message.contains(".in_current_trace()"),
        "{message}"
    );
    // The orphan is in no trace.
    assert!(capture.find("lookup").is_none(), "{}", capture.render());
}

#[tokio::test]
async fn spawning_with_the_context_leaves_no_orphan() {
    let capture = capture();
    capture.scope(handler(false)).await;
    capture.assert_no_orphans();
    let lookups = capture
        .observations()
        .into_iter()
        .filter(|o| o.name == "lookup")
        .count();
    assert_eq!(lookups, 2, "{}", capture.render());
}
