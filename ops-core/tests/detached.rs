//! `DetachedObservation`: an observation started, made current and ended explicitly.

use ops_core::context::DetachedObservation;
use ops_core::{Level, ObservationContext, ObservationKind, traced};
use ops_testkit::{capture, expect};
use serde_json::json;

#[traced]
fn step(n: u32) -> u32 {
    n + 1
}

#[test]
fn it_is_a_parent_while_its_context_is_entered_and_ends_when_told() {
    let capture = capture();
    capture.run(|| {
        let mut llm = DetachedObservation::start("llm", ObservationKind::Span).unwrap();
        assert!(llm.is_recorded());
        llm.set_kind(ObservationKind::Generation);
        llm.update(|o| {
            o.model("gpt-4o-mini");
        });
        let mut built = ops_core::ObservationUpdate::default();
        built.metadata("applied", true);
        llm.apply(built);
        // Entered twice, on two threads: both calls are its children.
        let context = llm.context();
        context.in_scope(|| step(1));
        std::thread::scope(|s| {
            s.spawn(|| context.in_scope(|| step(2)));
        });
        // Outside its context, a call starts its own trace.
        step(3);
        llm.end();
    });
    capture.assert(
        expect::trace().name("llm").root(
            expect::observation("llm")
                .kind(ObservationKind::Generation)
                .model("gpt-4o-mini")
                .metadata("applied", true)
                .child(expect::observation("step").input(json!({"n": 1})))
                .child(expect::observation("step").input(json!({"n": 2})))
                .only(),
        ),
    );
    assert_eq!(capture.traces().len(), 2);
}

#[test]
fn a_child_of_a_traced_call_or_of_a_given_parent() {
    #[traced(capture_output = false)]
    fn outer() -> ObservationContext {
        let inner = DetachedObservation::start("inner", ObservationKind::Tool).unwrap();
        let context = inner.context();
        inner.end();
        context
    }
    let capture = capture();
    capture.run(|| {
        let inner = outer();
        let late = DetachedObservation::start_in(&inner, "late", ObservationKind::Span).unwrap();
        late.end();
    });
    let outer = capture.find("outer").unwrap();
    let inner = capture.find("inner").unwrap();
    assert_eq!(inner.parent_id, Some(outer.id));
    assert_eq!(capture.find("late").unwrap().parent_id, Some(inner.id));
}

#[test]
fn dropped_without_end_it_is_recorded_as_cancelled() {
    let capture = capture();
    capture.run(|| {
        drop(DetachedObservation::start(
            "abandoned",
            ObservationKind::Span,
        ))
    });
    let abandoned = capture.find("abandoned").unwrap();
    assert_eq!(abandoned.level, Level::Warning);
    assert_eq!(abandoned.metadata["cancelled"], json!(true));
}

#[test]
fn in_an_unsampled_trace_it_and_its_children_record_nothing() {
    let capture = capture();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
            .parse()
            .unwrap(),
    );
    capture.run(|| {
        let remote = ops_core::propagation::extract(&headers);
        let unsampled = DetachedObservation::start_in(&remote, "x", ObservationKind::Span).unwrap();
        assert!(!unsampled.is_recorded());
        assert!(!unsampled.context().is_sampled());
        unsampled.context().in_scope(|| step(1));
        let child = unsampled
            .context()
            .in_scope(|| DetachedObservation::start("child", ObservationKind::Span))
            .unwrap();
        assert!(!child.is_recorded());
        child.end();
        unsampled.end();
    });
    assert!(capture.traces().is_empty());
}

#[test]
fn with_no_queue_here_it_is_not_started() {
    let _capture = capture(); // installed on no thread: tracing is on, but not here
    assert!(DetachedObservation::start("nowhere", ObservationKind::Span).is_none());
}
