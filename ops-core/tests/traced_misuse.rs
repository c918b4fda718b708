//! A `ContextGuard` leaked with `mem::forget` inside a traced call changes the thread's context
//! under it: the calls it strands cannot be recorded, and are counted, not lost silently; no
//! call panics, and the thread goes on tracing. In a process of its own, because the leaked
//! guard keeps its trace alive for good.

use ops_core::{ObservationContext, traced};

#[traced]
fn leaks_a_guard() {
    std::mem::forget(ObservationContext::root().enter());
}

#[traced]
fn after_the_leak(n: u8) -> u8 {
    n
}

#[traced]
fn stranded() -> u8 {
    leaks_a_guard();
    after_the_leak(1)
}

#[traced]
fn healthy() -> u8 {
    after_the_leak(2)
}

#[test]
fn calls_stranded_by_a_leaked_guard_are_counted_and_tracing_goes_on() {
    let capture = ops_testkit::capture();
    let lost_before = ops_core::context::lost_observations();
    assert_eq!(capture.run(stranded), 1);
    // `leaks_a_guard` and `stranded` both end in a context that is no longer theirs.
    assert_eq!(ops_core::context::lost_observations() - lost_before, 2);
    capture.flush();
    // The call made after the leak found no context, so it started a trace of its own.
    let traces = capture.traces();
    assert_eq!(traces.len(), 1, "{}", capture.render());
    assert_eq!(traces[0].name, "after_the_leak");
    // A new root on the same thread is recorded whole.
    assert_eq!(capture.run(healthy), 2);
    capture.flush();
    let traces = capture.traces();
    let healthy = traces.iter().find(|t| t.name == "healthy").unwrap();
    assert_eq!(healthy.observations.len(), 2);
    assert_eq!(ops_core::context::lost_observations() - lost_before, 2);
}
