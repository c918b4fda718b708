//! Scoped capture: tests in this one binary run in parallel (and spawn threads and tasks of
//! their own), and each capture sees exactly the traces emitted under it.

mod common;

use common::{emit, expected_names, names, tree};
use ops_core::ObservationKind;
use ops_testkit::capture;

const PER_CAPTURE: usize = 40;

/// Emits `PER_CAPTURE` traces named `prefix-i` on this thread, under its current default.
fn emit_batch(prefix: &str) {
    for i in 0..PER_CAPTURE {
        emit(tree(
            &format!("{prefix}-{i}"),
            &[("llm", ObservationKind::Generation)],
        ));
    }
}

fn sync_test_body(prefix: &str) {
    let capture = capture();
    {
        let _guard = capture.enter();
        emit_batch(prefix);
    }
    assert_eq!(
        names(&capture.traces()),
        expected_names(prefix, PER_CAPTURE)
    );
    assert_eq!(capture.observations().len(), PER_CAPTURE * 2);
}

#[test]
fn sync_capture_a_sees_only_its_traces() {
    sync_test_body("sync-a");
}

#[test]
fn sync_capture_b_sees_only_its_traces() {
    sync_test_body("sync-b");
}

#[test]
fn sync_capture_c_sees_only_its_traces() {
    sync_test_body("sync-c");
}

#[test]
fn threads_inside_a_test_each_capture_their_own() {
    let outer = capture();
    let _outer_guard = outer.enter();
    let handles: Vec<_> = (0..6)
        .map(|t| {
            std::thread::spawn(move || {
                let prefix = format!("thread-{t}");
                let inner = capture();
                {
                    let _guard = inner.enter();
                    emit_batch(&prefix);
                }
                assert_eq!(names(&inner.traces()), expected_names(&prefix, PER_CAPTURE));
            })
        })
        .collect();
    emit_batch("outer");
    for handle in handles {
        handle.join().expect("a thread's assertions failed");
    }
    // The threads did not inherit this thread's default, and their captures kept their traces.
    assert_eq!(names(&outer.traces()), expected_names("outer", PER_CAPTURE));
}

#[test]
fn nested_enter_shadows_and_restores_the_outer_capture() {
    let outer = capture();
    let inner = capture();
    {
        let _outer_guard = outer.enter();
        emit(tree("to-outer-1", &[]));
        {
            let _inner_guard = inner.enter();
            emit(tree("to-inner", &[]));
        }
        emit(tree("to-outer-2", &[]));
    }
    assert_eq!(names(&outer.traces()), ["to-outer-1", "to-outer-2"]);
    assert_eq!(names(&inner.traces()), ["to-inner"]);
}

#[test]
fn run_installs_the_capture_for_the_closure_only() {
    let capture = capture();
    let queued = capture.run(|| {
        emit(tree("inside-run", &[]));
        ops_core::current_queue().is_some()
    });
    assert!(queued);
    assert_eq!(names(&capture.traces()), ["inside-run"]);
}

#[tokio::test(flavor = "current_thread")]
async fn current_thread_runtime_uses_enter() {
    let capture = capture();
    let _guard = capture.enter();
    for i in 0..PER_CAPTURE {
        tokio::task::yield_now().await;
        emit(tree(&format!("current-thread-{i}"), &[]));
    }
    assert_eq!(
        names(&capture.traces()),
        expected_names("current-thread", PER_CAPTURE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_tasks_scope_their_own_captures() {
    let tasks: Vec<_> = (0..6)
        .map(|t| {
            tokio::spawn(async move {
                let prefix = format!("task-{t}");
                let capture = capture();
                capture
                    .scope(async {
                        for i in 0..PER_CAPTURE {
                            // Yield so the task may resume on another worker thread.
                            tokio::task::yield_now().await;
                            emit(tree(&format!("{prefix}-{i}"), &[]));
                        }
                    })
                    .await;
                assert_eq!(
                    names(&capture.traces()),
                    expected_names(&prefix, PER_CAPTURE)
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a task's assertions failed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_scope_covers_the_whole_test() {
    let capture = capture();
    capture
        .scope(async {
            for i in 0..PER_CAPTURE {
                tokio::task::yield_now().await;
                emit(tree(&format!("whole-{i}"), &[]));
            }
        })
        .await;
    assert_eq!(
        names(&capture.traces()),
        expected_names("whole", PER_CAPTURE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_task_needs_its_own_scope() {
    let capture = capture();
    let inner = capture.clone();
    capture
        .scope(async move {
            emit(tree("scoped-parent", &[]));
            // Task-locals do not follow into spawned tasks: the child wraps itself in scope.
            let unscoped = tokio::spawn(async {
                // No thread default is ever set on this runtime's workers and no global queue
                // is installed in this binary, so an unscoped task has no queue.
                ops_core::current_queue().is_none()
            });
            let scoped = tokio::spawn(async move {
                inner.scope(async { emit(tree("scoped-child", &[])) }).await;
            });
            assert!(unscoped.await.unwrap(), "an unscoped task found a queue");
            scoped.await.unwrap();
        })
        .await;
    assert_eq!(names(&capture.traces()), ["scoped-child", "scoped-parent"]);
}
