//! Guards dropped in another order than they were entered leave the thread in a context that is
//! not the one the running calls entered: those calls are counted as lost, and none of them is
//! recorded into the trace the thread was left in. In a process of its own, so the loss count
//! is this test's alone.

use ops_core::{ObservationContext, traced};

#[traced(capture_output = false)]
fn keep_context() -> ObservationContext {
    ObservationContext::current()
}

#[traced(skip_all)]
fn drops_guards_out_of_order(other: &ObservationContext) {
    let first = other.enter();
    let second = ObservationContext::root().enter();
    drop(first);
    drop(second);
}

#[traced(skip_all)]
fn outer(other: &ObservationContext) {
    drops_guards_out_of_order(other);
}

#[test]
fn calls_under_guards_dropped_out_of_order_are_lost_and_counted_not_misfiled() {
    let capture = ops_testkit::capture();
    let other = capture.run(keep_context);
    let lost_before = ops_core::context::lost_observations();
    capture.run(|| outer(&other));
    // Both calls ended in `keep_context`'s trace, not their own.
    assert_eq!(ops_core::context::lost_observations() - lost_before, 2);
    drop(other);
    capture.flush();
    let traces = capture.traces();
    assert_eq!(traces.len(), 1, "{}", capture.render());
    assert_eq!(traces[0].name, "keep_context");
    assert_eq!(
        traces[0].observations.len(),
        1,
        "nothing of `outer`'s trace was filed into it: {}",
        capture.render()
    );
}
