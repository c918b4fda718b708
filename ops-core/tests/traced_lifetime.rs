//! A trace outlives the scope that installed its queue: calls made in its context afterwards
//! are still recorded and delivered to that queue. One test only, so nothing else in this
//! process has a queue installed while it runs.

use ops_core::{ObservationContext, traced};
use ops_testkit::expect;
use serde_json::json;

#[traced(capture_output = false)]
fn keep_context() -> ObservationContext {
    ObservationContext::current()
}

#[traced]
fn later(n: u8) -> u8 {
    n
}

#[test]
fn calls_in_a_live_trace_are_recorded_after_its_scope_ended() {
    let capture = ops_testkit::capture();
    let ctx = capture.run(keep_context);
    assert!(
        ops_core::current_queue().is_none(),
        "no queue is installed anywhere now"
    );
    assert!(
        ops_core::is_enabled(),
        "but a trace is alive, so calls check for it"
    );
    // Outside any traced call and with no queue installed, a root is not recorded...
    assert_eq!(later(1), 1);
    // ...but a call in the context of a live trace is, to the trace's own queue.
    ctx.in_scope(|| later(2));
    drop(ctx);
    capture.assert(
        expect::trace().root(
            expect::observation("keep_context")
                .child(expect::observation("later").input(json!({"n": 2})))
                .only(),
        ),
    );
    assert_eq!(capture.traces().len(), 1);
}
