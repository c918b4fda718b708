//! Deterministic flush: once `flush()` returns, everything emitted before it is visible, with no
//! sleeps or polling.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{emit, expected_names, names, tree};
use ops_core::{ObservationKind, QueueConfig, TraceTask};
use ops_testkit::{Capture, MockProvider, capture};

#[test]
fn every_trace_emitted_before_flush_is_visible_when_it_returns() {
    let capture = capture();
    let _guard = capture.enter();
    let mut total = 0;
    for round in 1..=5 {
        let n = 200 * round;
        for i in 0..n {
            emit(tree(
                &format!("round-{round}-{i}"),
                &[("llm", ObservationKind::Generation)],
            ));
        }
        total += n;
        capture.flush();
        // Read the mock directly: no second flush in between.
        assert_eq!(capture.mock().traces().len(), total, "after round {round}");
        assert_eq!(capture.mock().observations().len(), total * 2);
    }
    let stats = capture.queue().stats();
    assert_eq!(stats.exported, total as u64);
    assert_eq!(stats.dropped_total(), 0);
}

#[test]
fn flush_does_not_wait_for_the_export_interval() {
    let mut config = QueueConfig::default();
    config.interval = Duration::from_secs(3600);
    config.batch_size = 1000;
    let capture = Capture::with_config(MockProvider::new(), config);
    let _guard = capture.enter();
    for round in 1..=3 {
        for i in 0..10 {
            emit(tree(&format!("slow-{round}-{i}"), &[]));
        }
        // Neither the interval (an hour) nor the batch size (1000) would export these.
        capture.flush();
        assert_eq!(capture.mock().traces().len(), 10 * round);
    }
}

#[test]
fn traces_emitted_from_many_threads_are_all_visible_after_one_flush() {
    let capture = capture();
    std::thread::scope(|s| {
        for t in 0..4 {
            let capture = &capture;
            s.spawn(move || {
                let _guard = capture.enter();
                for i in 0..250 {
                    emit(tree(&format!("t{t}-{i}"), &[]));
                }
            });
        }
    });
    capture.flush();
    assert_eq!(capture.mock().traces().len(), 1000);
}

#[test]
fn flush_delivers_what_came_before_while_another_thread_keeps_emitting() {
    let capture = capture();
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let capture = capture.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut sent = 0;
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // A full queue drops and reports it; count only what was accepted.
                let task = TraceTask::from_trace(tree("background", &[]));
                if capture.queue().add_trace_task(task).is_ok() {
                    sent += 1;
                }
            }
            sent
        })
    };
    {
        let _guard = capture.enter();
        for i in 0..100 {
            emit(tree(&format!("marked-{i}"), &[]));
        }
    }
    // The queue is never empty while the other thread emits; flush must neither panic nor
    // return before the marked traces are delivered.
    capture.flush();
    let marked: Vec<_> = capture
        .mock()
        .traces()
        .into_iter()
        .filter(|t| t.name.starts_with("marked-"))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let sent = background.join().unwrap();
    assert_eq!(names(&marked), expected_names("marked", 100));
    // And after the emitter stopped, one more flush shows everything it sent.
    let background_seen = capture
        .traces()
        .iter()
        .filter(|t| t.name == "background")
        .count();
    assert_eq!(background_seen, sent);
}
