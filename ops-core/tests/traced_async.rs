//! `#[traced]` on async functions: context across `.await`, concurrent requests, spawned
//! tasks, cancellation, panics, futures returned by sync functions, traits.

use std::future::Future;
use std::time::Duration;

use ops_core::{Level, ObservationContext, ObservationKind, TraceFutureExt, async_trait, traced};
use ops_testkit::expect;
use serde_json::json;

#[traced(kind = "tool")]
async fn lookup(key: String) -> usize {
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    key.len()
}

#[traced(kind = "workflow")]
async fn request(id: u32) -> usize {
    let a = lookup(format!("a{id}")).await;
    tokio::task::yield_now().await;
    let b = lookup(format!("bb{id}")).await;
    a + b
}

#[tokio::test]
async fn the_context_survives_await() {
    let capture = ops_testkit::capture();
    assert_eq!(capture.scope(request(1)).await, 5);
    capture.assert(
        expect::trace().kind(ObservationKind::Workflow).root(
            expect::observation("request")
                .input(json!({"id": 1}))
                .output(json!(5))
                .child(expect::observation("lookup").input(json!({"key": "a1"})))
                .child(expect::observation("lookup").input(json!({"key": "bb1"})))
                .only(),
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_one_runtime_never_mix() {
    let capture = ops_testkit::capture();
    let mut handles = Vec::new();
    for id in 0..8u32 {
        let capture = capture.clone();
        handles.push(tokio::spawn(
            async move { capture.scope(request(id)).await },
        ));
    }
    // And two interleaved in one task.
    let (x, y) = capture
        .scope(async { tokio::join!(request(100), request(200)) })
        .await;
    assert_eq!((x, y), (9, 9));
    for h in handles {
        h.await.unwrap();
    }
    let traces = capture.traces();
    assert_eq!(traces.len(), 10, "{}", capture.render());
    for trace in &traces {
        assert_eq!(trace.observations.len(), 3, "{}", capture.render());
        let root = trace.roots().next().unwrap();
        let id = root.input.as_ref().unwrap()["id"].as_u64().unwrap();
        let keys: Vec<String> = trace
            .children_of(root.id)
            .map(|c| {
                c.input.as_ref().unwrap()["key"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(keys.len(), 2);
        assert!(
            keys.contains(&format!("a{id}")) && keys.contains(&format!("bb{id}")),
            "trace of request {id} holds {keys:?}"
        );
    }
}

#[traced]
async fn child(n: u32) -> u32 {
    tokio::task::yield_now().await;
    n * 10
}

#[traced]
async fn spawner() -> u32 {
    let carried = ops_core::spawn(child(1));
    let wrapped = tokio::spawn(child(2).in_current_trace());
    let blocking = ops_core::spawn_blocking(|| {
        // A sync traced call on a blocking thread, under the spawner.
        sync_child(3)
    });
    // Without the helpers a task starts from no context (and finds no queue here).
    let orphan = tokio::spawn(child(4));
    carried.await.unwrap()
        + wrapped.await.unwrap()
        + blocking.await.unwrap()
        + orphan.await.unwrap()
}

#[traced]
fn sync_child(n: u32) -> u32 {
    n * 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_tasks_keep_their_parent_through_the_helpers() {
    let capture = ops_testkit::capture();
    assert_eq!(capture.scope(spawner()).await, 100);
    capture.assert(
        expect::trace().root(
            expect::observation("spawner")
                .child(expect::observation("child").input(json!({"n": 1})))
                .child(expect::observation("child").input(json!({"n": 2})))
                .child(expect::observation("sync_child").input(json!({"n": 3})))
                .only(),
        ),
    );
    assert_eq!(capture.traces().len(), 1);
}

#[traced(skip(release))]
async fn outlived(n: u32, release: tokio::sync::oneshot::Receiver<()>) -> u32 {
    release.await.unwrap();
    n
}

#[traced(capture_output = false, skip(release))]
async fn fire_and_forget(
    release: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<u32> {
    ops_core::spawn(outlived(7, release))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_outlives_its_root_joins_the_trace_later() {
    let capture = ops_testkit::capture();
    let (release, wait) = tokio::sync::oneshot::channel();
    let handle = capture.scope(fire_and_forget(wait)).await;
    // The root has ended and was delivered; the child is still waiting.
    capture.flush();
    let first = capture.mock().traces();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].observations.len(), 1);
    release.send(()).unwrap();
    assert_eq!(handle.await.unwrap(), 7);
    capture.flush();
    let parts = capture.mock().traces();
    assert_eq!(
        parts.len(),
        2,
        "the late child came as a second part: {parts:#?} {:?}",
        capture.queue().stats()
    );
    assert_eq!(parts[0].id, parts[1].id);
    capture.assert(
        expect::trace().root(
            expect::observation("fire_and_forget")
                .child(expect::observation("outlived").output(json!(7)))
                .only(),
        ),
    );
}

#[traced(kind = "generation")]
async fn slow_call() -> u32 {
    tokio::time::sleep(Duration::from_secs(10)).await;
    1
}

#[traced]
async fn with_timeout() -> Option<u32> {
    tokio::time::timeout(Duration::from_millis(5), slow_call())
        .await
        .ok()
}

#[tokio::test]
async fn a_dropped_future_is_recorded_as_cancelled() {
    let capture = ops_testkit::capture();
    assert_eq!(capture.scope(with_timeout()).await, None);
    capture.assert(
        expect::trace().root(
            expect::observation("with_timeout")
                .level(Level::Default)
                .child(
                    expect::observation("slow_call")
                        .level(Level::Warning)
                        .status_message("cancelled: dropped before it completed")
                        .metadata("cancelled", true),
                ),
        ),
    );
}

#[traced]
async fn panics_after_await(n: u32) -> u32 {
    tokio::task::yield_now().await;
    if n > 0 {
        panic!("async boom {n}");
    }
    n
}

#[traced]
async fn catches() -> u32 {
    let handle = ops_core::spawn(panics_after_await(3));
    assert!(handle.await.is_err());
    panics_after_await(0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_panic_is_recorded_and_the_parent_is_kept() {
    let capture = ops_testkit::capture();
    assert_eq!(capture.scope(catches()).await, 0);
    capture.assert(
        expect::trace().root(
            expect::observation("catches")
                .level(Level::Default)
                .child(
                    expect::observation("panics_after_await")
                        .level(Level::Error)
                        .status_message("panicked: async boom 3"),
                )
                .child(expect::observation("panics_after_await").output(json!(0)))
                .only(),
        ),
    );
}

#[traced(kind = "dataset_retrieval")]
fn retrieve_later(query: &str) -> impl Future<Output = Vec<String>> + Send + 'static {
    let query = query.to_owned();
    async move {
        tokio::task::yield_now().await;
        vec![query]
    }
}

#[derive(Debug)]
struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream failed")
    }
}

#[traced]
async fn fallible(fail: bool) -> Result<String, Failure> {
    if fail {
        return Err(Failure);
    }
    let docs = retrieve_later("q").await;
    Ok(docs.join(","))
}

#[tokio::test]
async fn futures_returned_by_sync_functions_and_async_results() {
    let capture = ops_testkit::capture();
    capture
        .scope(async {
            assert_eq!(fallible(false).await.unwrap(), "q");
            assert!(fallible(true).await.is_err());
        })
        .await;
    let traces = capture.traces();
    assert_eq!(traces.len(), 2);
    expect::trace()
        .root(
            expect::observation("fallible").output(json!("q")).child(
                expect::observation("retrieve_later")
                    .kind(ObservationKind::DatasetRetrieval)
                    .input(json!({"query": "q"}))
                    .output(json!(["q"])),
            ),
        )
        .assert_matches(&traces[0]);
    expect::trace()
        .root(
            expect::observation("fallible")
                .level(Level::Error)
                .status_message("upstream failed")
                .metadata("error_type", "traced_async::Failure"),
        )
        .assert_matches(&traces[1]);
}

trait Agent {
    async fn step(&self, input: String) -> String;
}

struct Echo;

impl Agent for Echo {
    #[traced(kind = "agent")]
    async fn step(&self, input: String) -> String {
        format!("echo {input}")
    }
}

#[async_trait]
trait Tool: Send + Sync {
    async fn call(&self, input: &str) -> Result<String, Failure>;
}

struct Upper;

#[async_trait]
impl Tool for Upper {
    #[traced(kind = "tool")]
    async fn call(&self, input: &str) -> Result<String, Failure> {
        Ok(input.to_uppercase())
    }
}

#[traced(kind = "agent", name = "run", skip(tool))]
async fn run_agent(tool: &dyn Tool) -> String {
    let said = Echo.step("hi".into()).await;
    tool.call(&said).await.unwrap()
}

#[tokio::test]
async fn async_fns_in_traits_and_async_trait_methods() {
    let capture = ops_testkit::capture();
    let out = capture.scope(run_agent(&Upper)).await;
    assert_eq!(out, "ECHO HI");
    capture.assert(
        expect::trace().kind(ObservationKind::Agent).root(
            expect::observation("run")
                .child(
                    expect::observation("step")
                        .kind(ObservationKind::Agent)
                        .input(json!({"input": "hi"}))
                        .output(json!("echo hi")),
                )
                .child(
                    expect::observation("call")
                        .kind(ObservationKind::Tool)
                        .input(json!({"input": "echo hi"}))
                        .output(json!("ECHO HI")),
                )
                .only(),
        ),
    );
}

#[tokio::test]
async fn the_context_can_be_carried_by_hand() {
    let capture = ops_testkit::capture();
    capture
        .scope(async {
            #[traced(capture_output = false)]
            async fn outer() -> ObservationContext {
                ObservationContext::current()
            }
            let ctx = outer().await;
            // A future polled under a context made current by hand.
            ctx.clone().wrap(child(5)).await;
            ctx.in_scope(|| sync_child(6));
        })
        .await;
    capture.assert(
        expect::trace().root(
            expect::observation("outer")
                .child(expect::observation("child").input(json!({"n": 5})))
                .child(expect::observation("sync_child").input(json!({"n": 6})))
                .only(),
        ),
    );
}
