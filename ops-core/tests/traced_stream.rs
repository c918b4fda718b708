//! `#[traced]` on functions returning streams: open until the end or a drop, items reduced to
//! the output, context inside the stream.

use std::pin::Pin;

use futures_core::Stream;
use futures_util::StreamExt;
use ops_core::context::reduce;
use ops_core::{Level, ObservationKind, traced};
use ops_testkit::expect;
use serde::Serialize;
use serde_json::json;

#[traced(kind = "generation", model = "gpt-4o-mini")]
fn stream_text(prompt: &str) -> impl Stream<Item = String> + Send + 'static {
    let words: Vec<String> = prompt.split(' ').map(|w| format!("{w} ")).collect();
    futures_util::stream::iter(words)
}

#[tokio::test]
async fn string_chunks_are_joined_into_the_output() {
    let capture = ops_testkit::capture();
    let collected: Vec<String> = capture
        .scope(async { stream_text("hello brave new world").collect().await })
        .await;
    assert_eq!(collected.concat(), "hello brave new world ");
    capture.assert(
        expect::trace().kind(ObservationKind::Generation).root(
            expect::observation("stream_text")
                .level(Level::Default)
                .input(json!({"prompt": "hello brave new world"}))
                .output(json!("hello brave new world "))
                .metadata("chunks", 4),
        ),
    );
    let o = capture.find("stream_text").unwrap();
    let first = o.completion_start_time.expect("the first chunk's time");
    assert!(first >= o.start_time && first <= o.end_time.unwrap());
}

#[derive(Debug, Clone, Serialize)]
struct Delta {
    index: u32,
    text: String,
}

#[traced]
fn deltas(n: u32) -> Pin<Box<dyn Stream<Item = Delta> + Send>> {
    Box::pin(futures_util::stream::iter((0..n).map(|index| Delta {
        index,
        text: format!("t{index}"),
    })))
}

#[traced(reduce = reduce::fold(|text: &mut String, d: &Delta| text.push_str(&d.text)))]
fn folded(n: u32) -> impl Stream<Item = Delta> {
    futures_util::stream::iter((0..n).map(|index| Delta {
        index,
        text: format!("t{index}"),
    }))
}

#[traced(capture_output = false)]
fn uncaptured(n: u32) -> impl Stream<Item = u32> {
    futures_util::stream::iter(0..n)
}

#[tokio::test]
async fn structured_items_are_collected_or_folded() {
    let capture = ops_testkit::capture();
    capture
        .scope(async {
            assert_eq!(deltas(2).count().await, 2);
            assert_eq!(folded(3).count().await, 3);
            assert_eq!(uncaptured(2).count().await, 2);
        })
        .await;
    assert_eq!(
        capture.find("deltas").unwrap().output,
        Some(json!([{"index": 0, "text": "t0"}, {"index": 1, "text": "t1"}]))
    );
    assert_eq!(
        capture.find("folded").unwrap().output,
        Some(json!("t0t1t2"))
    );
    let quiet = capture.find("uncaptured").unwrap();
    assert_eq!(quiet.output, None);
    assert_eq!(quiet.metadata.get("chunks"), Some(&json!(2)));
}

#[tokio::test]
async fn a_stream_dropped_before_its_end_is_recorded() {
    let capture = ops_testkit::capture();
    capture
        .scope(async {
            let mut s = stream_text("one two three");
            assert_eq!(s.next().await.as_deref(), Some("one "));
            drop(s);
        })
        .await;
    capture.assert(
        expect::trace().root(
            expect::observation("stream_text")
                .level(Level::Warning)
                .status_message("cancelled: the stream was dropped before it ended")
                .metadata("cancelled", true)
                .metadata("chunks", 1)
                .output(json!("one ")),
        ),
    );
}

#[traced(kind = "tool")]
async fn tool(chunk: u32) -> u32 {
    chunk * 2
}

#[traced]
fn through_tools(n: u32) -> impl Stream<Item = u32> {
    // Calls made while the stream is polled are its children.
    futures_util::stream::iter(0..n).then(tool)
}

#[traced(kind = "agent")]
async fn agent() -> u32 {
    through_tools(3).fold(0, |a, b| async move { a + b }).await
}

#[tokio::test]
async fn calls_made_while_the_stream_is_polled_are_its_children() {
    let capture = ops_testkit::capture();
    assert_eq!(capture.scope(agent()).await, 6);
    capture.assert(
        expect::trace().kind(ObservationKind::Agent).root(
            expect::observation("agent")
                .child(
                    expect::observation("through_tools")
                        .output(json!([0, 2, 4]))
                        .child(expect::observation("tool").input(json!({"chunk": 0})))
                        .child(expect::observation("tool").input(json!({"chunk": 1})))
                        .child(expect::observation("tool").input(json!({"chunk": 2})))
                        .only(),
                )
                .only(),
        ),
    );
}

#[tokio::test]
async fn with_tracing_off_the_stream_passes_through() {
    let items: Vec<u32> = uncaptured(3).collect().await;
    assert_eq!(items, vec![0, 1, 2]);
}
