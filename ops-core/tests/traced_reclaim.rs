//! What a `#[traced]` call allocated on the app's thread is freed on an app thread, not on the
//! queue's worker: the worker builds the trace from references and hands the records back
//! (an allocator with a lock per arena would otherwise make the app wait for the worker).

use std::sync::Mutex;
use std::thread::ThreadId;

use ops_core::traced;
use serde::Serialize;

/// Records the thread each copy is dropped on. Large enough to be copied and serialized on
/// the worker, not turned into JSON in the call.
#[derive(Serialize)]
struct Spy(u32, String);

static DROPPED_ON: Mutex<Vec<(u32, ThreadId, Option<String>)>> = Mutex::new(Vec::new());

impl Clone for Spy {
    fn clone(&self) -> Self {
        Spy(self.0, self.1.clone())
    }
}

impl Drop for Spy {
    fn drop(&mut self) {
        let me = std::thread::current();
        DROPPED_ON
            .lock()
            .unwrap()
            .push((self.0, me.id(), me.name().map(str::to_owned)));
    }
}

#[traced]
fn handle(spy: Spy) -> u32 {
    spy.0
}

#[test]
fn the_worker_frees_nothing_a_traced_call_captured() {
    let capture = ops_testkit::capture();
    let app = std::thread::current().id();
    // The argument is captured as a clone (serialized on the worker): the clone is what the
    // worker would free.
    for i in 0..50 {
        assert_eq!(
            capture.run(|| handle(Spy(1000 + i, "x".repeat(500)))),
            1000 + i
        );
    }
    capture.flush();
    assert_eq!(capture.traces().len(), 50, "{}", capture.render());
    // Each enqueue frees what earlier traces left; a few more calls free the rest.
    for i in 0..50 {
        capture.run(|| handle(Spy(i, "x".repeat(500))));
    }
    capture.flush();
    let drops = DROPPED_ON.lock().unwrap().clone();
    let clones_of_first: Vec<_> = drops
        .iter()
        .filter(|(n, _, _)| (1000..1050).contains(n))
        .collect();
    // Each first-round value was dropped twice: the argument, in the call, and its clone.
    assert_eq!(clones_of_first.len(), 100, "{drops:?}");
    let elsewhere: Vec<_> = clones_of_first
        .iter()
        .filter(|(_, thread, _)| *thread != app)
        .collect();
    assert!(
        elsewhere.is_empty(),
        "captured clones freed off the app's thread: {elsewhere:?}"
    );
    // Nothing waits to be freed is left uncounted: the queue's bytes come back to zero once
    // everything is delivered and freed.
    capture.queue().shutdown(std::time::Duration::from_secs(5));
    assert_eq!(capture.queue().stats().held_bytes, 0);
}
