//! The expectation builder through a capture: passing matches, and failure messages that name
//! the test and show the expected and actual trees.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{emit, tree};
use ops_core::{Level, ObservationKind};
use ops_testkit::{Capture, capture, expect};

fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion should fail");
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .unwrap_or_default(),
    }
}

fn capture_with_two_traces() -> Capture {
    let capture = capture();
    capture.run(|| {
        emit(tree(
            "answer",
            &[
                ("llm", ObservationKind::Generation),
                ("search", ObservationKind::Tool),
            ],
        ));
        let mut failed = tree("failing", &[("fetch", ObservationKind::Tool)]);
        failed.observations[1].level = Level::Error;
        failed.observations[1].status_message = Some("connection refused".into());
        emit(failed);
    });
    capture
}

#[test]
fn assert_passes_when_any_trace_matches() {
    let capture = capture_with_two_traces();
    capture.assert(
        expect::trace().name("answer").root(
            expect::observation("answer")
                .child(expect::observation("search").kind(ObservationKind::Tool))
                .child(expect::observation("llm").kind(ObservationKind::Generation))
                .only(),
        ),
    );
    capture.assert(
        expect::trace().contains(
            expect::observation("fetch")
                .level(Level::Error)
                .status_message("connection refused"),
        ),
    );
    // Unspecified fields are wildcards.
    capture.assert(expect::trace());
}

#[test]
fn assert_failure_names_the_test_and_shows_both_trees() {
    let capture = capture_with_two_traces();
    let message = panic_message(|| {
        capture.assert(
            expect::trace().name("answer").root(
                expect::observation("answer").child(
                    expect::observation("llm")
                        .kind(ObservationKind::Generation)
                        .model("gpt-4o"),
                ),
            ),
        );
    });
    assert!(
        message.starts_with("[assert_failure_names_the_test_and_shows_both_trees] "),
        "{message}"
    );
    assert!(message.contains("expected tree"), "{message}");
    assert!(
        message.contains(
            "trace answer [*] {}\n    answer [*] {}\n        llm [generation] {model=gpt-4o}"
        ),
        "{message}"
    );
    assert!(message.contains("actual trees (2):"), "{message}");
    assert!(
        message.contains("trace answer [workflow] {}\n    answer [workflow] {}\n        llm [generation] {}\n        search [tool] {}"),
        "{message}"
    );
    assert!(
        message.contains("differs: `answer > llm`: model: expected \"gpt-4o\", got none"),
        "{message}"
    );
    assert!(
        message.contains("differs: trace name: expected \"answer\", got \"failing\""),
        "{message}"
    );
}

#[test]
fn assert_failure_explains_an_empty_capture() {
    let capture = capture();
    // Emitted on a thread where the capture is not installed: it goes nowhere.
    std::thread::spawn(|| assert!(ops_core::current_queue().is_none()))
        .join()
        .unwrap();
    let message = panic_message(|| capture.assert(expect::trace().name("anything")));
    assert!(
        message.starts_with("[assert_failure_explains_an_empty_capture] "),
        "{message}"
    );
    assert!(message.contains("trace anything [*] {}"), "{message}");
    assert!(message.contains("no trace was captured"), "{message}");
}

#[test]
fn the_failure_names_the_test_that_made_the_capture_even_from_another_thread() {
    let capture = capture_with_two_traces();
    let message = std::thread::Builder::new()
        .name("helper-thread".into())
        .spawn(move || panic_message(|| capture.assert(expect::trace().tag("missing"))))
        .unwrap()
        .join()
        .unwrap();
    assert!(
        message.starts_with(
            "[the_failure_names_the_test_that_made_the_capture_even_from_another_thread] "
        ),
        "{message}"
    );
    assert!(
        message.contains("expected to contain \"missing\""),
        "{message}"
    );
}

#[test]
fn assert_matches_on_one_trace() {
    let capture = capture_with_two_traces();
    let traces = capture.traces();
    let answer = traces.iter().find(|t| t.name == "answer").unwrap();
    let expected =
        expect::trace().root(expect::observation("answer").child(expect::observation("llm")));
    expected.assert_matches(answer);
    let failing = traces.iter().find(|t| t.name == "failing").unwrap();
    assert!(!expected.matches(failing));
    let message = panic_message(|| expected.assert_matches(failing));
    assert!(
        message.starts_with("[assert_matches_on_one_trace] "),
        "{message}"
    );
    assert!(message.contains("actual trees (1):"), "{message}");
    assert!(
        message.contains(
            "differs: the trace's roots: no observation named \"answer\"; found [failing]"
        ),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assert_works_inside_a_multi_thread_runtime() {
    let capture = capture();
    capture
        .scope(async {
            tokio::task::yield_now().await;
            emit(tree("async-root", &[("step", ObservationKind::Span)]));
        })
        .await;
    capture.assert(
        expect::trace()
            .name("async-root")
            .root(expect::observation("async-root").child(expect::observation("step"))),
    );
    let message = panic_message(|| capture.assert(expect::trace().name("other")));
    assert!(
        message.starts_with("[assert_works_inside_a_multi_thread_runtime] "),
        "{message}"
    );
}

#[test]
fn assert_sequence_checks_order_and_count() {
    let capture = capture_with_two_traces();
    capture.assert_sequence([
        expect::trace().name("answer"),
        expect::trace()
            .name("failing")
            .contains(expect::observation("fetch").level(Level::Error)),
    ]);

    let swapped = panic_message(|| {
        capture.assert_sequence([
            expect::trace().name("failing"),
            expect::trace().name("answer"),
        ])
    });
    assert!(
        swapped.starts_with("[assert_sequence_checks_order_and_count] "),
        "{swapped}"
    );
    assert!(
        swapped.contains("trace #1: trace name: expected \"failing\", got \"answer\""),
        "{swapped}"
    );
    assert!(swapped.contains("expected trees, in order"), "{swapped}");
    assert!(
        swapped.contains("actual trees, in arrival order (2):\n#1 trace answer [workflow]"),
        "{swapped}"
    );

    let too_few = panic_message(|| capture.assert_sequence([expect::trace().name("answer")]));
    assert!(
        too_few.contains("expected 1 trace(s), captured 2"),
        "{too_few}"
    );
}
