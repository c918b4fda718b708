//! The layer end to end: spans recorded through `tracing` reach the in-memory provider as
//! observations, in one tree with `#[traced]` calls.

use ops_core::{Level, ObservationKind, traced};
use ops_testkit::{Capture, capture};
use serde_json::json;
use tracing::field::Empty;
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

fn dispatch(layer: ops_tracing::OpsLayer) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

/// Runs `f` with the layer as the subscriber and `capture` as the queue, on this thread.
fn traced_with<R>(capture: &Capture, layer: ops_tracing::OpsLayer, f: impl FnOnce() -> R) -> R {
    tracing::dispatcher::with_default(&dispatch(layer), || capture.run(f))
}

/// The spans rig-core emits for one agent turn with a tool call, field for field: the
/// `invoke_agent` span (rig-agent's runner), a `chat` completion span (target
/// `rig::completions`, the canonical completion fields, recorded after the response) and an
/// `execute_tool` span.
fn rig_agent_turn() {
    let agent = info_span!(
        "invoke_agent",
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = "weather-agent",
        gen_ai.system_instructions = "You answer about the weather.",
        gen_ai.prompt = Empty,
        gen_ai.completion = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.usage.cache_read.input_tokens = Empty,
        gen_ai.usage.cache_creation.input_tokens = Empty,
        gen_ai.usage.tool_use_prompt_tokens = Empty,
        gen_ai.usage.reasoning_tokens = Empty,
    );
    let _agent = agent.enter();
    agent.record("gen_ai.prompt", "Weather in Lisbon?");
    {
        let chat = info_span!(
            target: "rig::completions",
            "chat",
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = "openai",
            gen_ai.request.model = "gpt-4o",
            gen_ai.system_instructions = Empty,
            gen_ai.response.id = Empty,
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            gen_ai.usage.cache_read.input_tokens = Empty,
            gen_ai.usage.cache_creation.input_tokens = Empty,
            gen_ai.usage.tool_use_prompt_tokens = Empty,
            gen_ai.usage.reasoning_tokens = Empty,
            gen_ai.input.messages = Empty,
            gen_ai.output.messages = Empty,
        );
        let _chat = chat.enter();
        chat.record(
            "gen_ai.input.messages",
            r#"[{"role":"user","parts":[{"type":"text","content":"Weather in Lisbon?"}]}]"#,
        );
        chat.record("gen_ai.response.id", "chatcmpl-1");
        chat.record("gen_ai.response.model", "gpt-4o-2024-08-06");
        chat.record("gen_ai.usage.input_tokens", 120_u64);
        chat.record("gen_ai.usage.output_tokens", 30_u64);
        chat.record("gen_ai.usage.cache_read.input_tokens", 64_u64);
        chat.record("gen_ai.usage.cache_creation.input_tokens", 0_u64);
        chat.record("gen_ai.usage.reasoning_tokens", 12_u64);
        chat.record(
            "gen_ai.output.messages",
            r#"[{"role":"assistant","parts":[{"type":"tool_call","name":"weather"}],"finish_reason":"tool_call"}]"#,
        );
    }
    {
        let tool = info_span!(
            "execute_tool",
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.type = "function",
            gen_ai.tool.name = Empty,
            gen_ai.tool.call.id = Empty,
            gen_ai.tool.call.arguments = Empty,
            gen_ai.tool.call.result = Empty,
            gen_ai.tool.call.outcome = Empty,
            gen_ai.tool.error.type = Empty
        );
        let _tool = tool.enter();
        tool.record("gen_ai.tool.name", "weather");
        tool.record("gen_ai.tool.call.id", "call-1");
        tool.record("gen_ai.tool.call.arguments", r#"{"city":"Lisbon"}"#);
        tool.record("gen_ai.tool.call.result", "sunny");
        tool.record("gen_ai.tool.call.outcome", "success");
    }
    agent.record("gen_ai.completion", "Sunny in Lisbon.");
    agent.record("gen_ai.usage.input_tokens", 120_u64);
    agent.record("gen_ai.usage.output_tokens", 30_u64);
}

#[test]
fn rig_core_fields_become_the_models_fields() {
    let capture = capture();
    traced_with(&capture, ops_tracing::layer(), rig_agent_turn);

    let traces = capture.traces();
    assert_eq!(traces.len(), 1, "one trace: {}", capture.render());
    assert_eq!(traces[0].kind, ObservationKind::Agent);

    let agent = capture.find("invoke_agent").expect("the agent span");
    assert_eq!(agent.kind, ObservationKind::Agent);
    assert_eq!(agent.parent_id, None);
    assert_eq!(agent.input, Some(json!("Weather in Lisbon?")));
    assert_eq!(agent.output, Some(json!("Sunny in Lisbon.")));
    assert_eq!(agent.metadata["agent_name"], json!("weather-agent"));
    assert_eq!(
        agent.metadata["system_instructions"],
        json!("You answer about the weather.")
    );

    let chat = capture.find("chat").expect("the completion span");
    assert_eq!(chat.kind, ObservationKind::Generation);
    assert_eq!(chat.parent_id, Some(agent.id));
    // The response's model beats the request's.
    assert_eq!(chat.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(chat.model_provider.as_deref(), Some("openai"));
    let usage = chat.usage.as_ref().expect("usage");
    assert_eq!(
        (usage.input, usage.output, usage.total()),
        (Some(120), Some(30), Some(150))
    );
    assert_eq!(usage.details["cache_read_input_tokens"], json!(64));
    assert_eq!(usage.details["cache_creation_input_tokens"], json!(0));
    assert_eq!(usage.details["reasoning_tokens"], json!(12));
    // Messages recorded as JSON text arrive as JSON.
    assert_eq!(
        chat.input,
        Some(json!([{"role":"user","parts":[{"type":"text","content":"Weather in Lisbon?"}]}]))
    );
    assert_eq!(
        chat.output.as_ref().unwrap()[0]["finish_reason"],
        json!("tool_call")
    );
    assert_eq!(chat.metadata["response_id"], json!("chatcmpl-1"));

    // The tool is named after the tool, with its arguments as input and its result as output.
    let tool = capture
        .find("weather")
        .expect("the tool span, named after the tool");
    assert_eq!(tool.kind, ObservationKind::Tool);
    assert_eq!(tool.parent_id, Some(agent.id));
    assert_eq!(tool.input, Some(json!({"city": "Lisbon"})));
    assert_eq!(tool.output, Some(json!("sunny")));
    assert_eq!(tool.metadata["tool_call_id"], json!("call-1"));
    assert_eq!(tool.metadata["gen_ai.tool.call.outcome"], json!("success"));
    assert_eq!(tool.level, Level::Default);
}

#[traced]
fn traced_leaf(x: u32) -> u32 {
    x + 1
}

#[traced]
fn traced_middle() -> u32 {
    let span = info_span!(
        "embed",
        ops.kind = "generation",
        gen_ai.request.model = "e5"
    );
    let _g = span.enter();
    traced_leaf(1)
}

#[traced(kind = "workflow")]
fn traced_root() -> u32 {
    traced_middle()
}

#[test]
fn traced_calls_and_spans_share_one_tree_both_ways() {
    let capture = capture();
    traced_with(&capture, ops_tracing::layer(), || {
        // #[traced] → span → #[traced]
        traced_root();
        // span → #[traced] → span → #[traced]
        let outer = info_span!("outer", ops.kind = "agent");
        outer.in_scope(traced_middle);
    });
    capture.assert(
        ops_testkit::expect::trace().name("traced_root").root(
            ops_testkit::expect::observation("traced_root").child(
                ops_testkit::expect::observation("traced_middle").child(
                    ops_testkit::expect::observation("embed")
                        .kind(ObservationKind::Generation)
                        .model("e5")
                        .child(ops_testkit::expect::observation("traced_leaf")),
                ),
            ),
        ),
    );
    capture.assert(
        ops_testkit::expect::trace().name("outer").root(
            ops_testkit::expect::observation("outer")
                .kind(ObservationKind::Agent)
                .child(
                    ops_testkit::expect::observation("traced_middle").child(
                        ops_testkit::expect::observation("embed")
                            .child(ops_testkit::expect::observation("traced_leaf")),
                    ),
                ),
        ),
    );
    assert_eq!(capture.traces().len(), 2);
}

#[test]
fn only_selected_spans_become_observations() {
    let capture = capture();
    let layer = ops_tracing::layer()
        .with_target("my_app")
        .with_span_name("handle");
    traced_with(&capture, layer, || {
        let root = info_span!(target: "my_app::http", "request");
        let _root = root.enter();
        // Not selected: no GenAI or ops field, another target, another name.
        let sqlx = info_span!(target: "sqlx::query", "query", db.statement = "select 1");
        let _sqlx = sqlx.enter();
        // Under an unselected span, still a child of the nearest observation.
        let llm = info_span!(target: "other", "llm", gen_ai.operation.name = "chat");
        let _llm = llm.enter();
        // Selected by name.
        info_span!(target: "hyper", "handle").in_scope(|| {});
        // Near misses of the target: not selected.
        info_span!(target: "my_apple", "apple").in_scope(|| {});
    });
    let names: Vec<String> = capture.observations().into_iter().map(|o| o.name).collect();
    assert!(
        !names.iter().any(|n| n == "query" || n == "apple"),
        "{names:?}"
    );
    let request = capture.find("request").expect("selected by target");
    let llm = capture.find("llm").expect("selected by its GenAI field");
    assert_eq!(
        llm.parent_id,
        Some(request.id),
        "the unselected span is skipped"
    );
    assert_eq!(capture.find("handle").unwrap().parent_id, Some(llm.id));
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn a_per_layer_filter_selects_too() {
    let capture = capture();
    let subscriber =
        tracing_subscriber::registry().with(ops_tracing::layer().with_all_spans().with_filter(
            tracing_subscriber::filter::Targets::new().with_target("kept", tracing::Level::TRACE),
        ));
    tracing::subscriber::with_default(subscriber, || {
        capture.run(|| {
            info_span!(target: "kept", "a").in_scope(|| {
                info_span!(target: "dropped", "b").in_scope(|| {
                    info_span!(target: "kept", "c").in_scope(|| {});
                });
            });
        })
    });
    let a = capture.find("a").expect("kept");
    assert!(capture.find("b").is_none());
    assert_eq!(capture.find("c").unwrap().parent_id, Some(a.id));
}

#[test]
fn events_become_events_level_and_status() {
    let capture = capture();
    traced_with(&capture, ops_tracing::layer(), || {
        let ok = info_span!("ok", ops.kind = "span");
        ok.in_scope(|| {
            tracing::info!(attempt = 1, "calling the model");
            tracing::warn!("slow answer");
        });
        let failed = info_span!("failed", gen_ai.operation.name = "chat");
        failed.in_scope(|| {
            tracing::warn!("retrying");
            tracing::error!(error.type = "timeout", "the model timed out");
            tracing::info!("gave up");
        });
        let chatty = info_span!("chatty", ops.kind = "span");
        chatty.in_scope(|| {
            for i in 0..40 {
                tracing::debug!(i, "tick");
            }
        });
    });
    let ok = capture.find("ok").unwrap();
    assert_eq!(ok.level, Level::Warning);
    assert_eq!(ok.status_message.as_deref(), Some("slow answer"));
    assert_eq!(
        ok.metadata["events"],
        json!([
            {"level": "DEFAULT", "target": "layer", "message": "calling the model", "fields": {"attempt": 1}},
            {"level": "WARNING", "target": "layer", "message": "slow answer"},
        ])
    );
    let failed = capture.find("failed").unwrap();
    assert_eq!(failed.level, Level::Error);
    assert_eq!(
        failed.status_message.as_deref(),
        Some("the model timed out")
    );
    assert_eq!(failed.metadata["events"][1]["error.type"], json!("timeout"));
    let chatty = capture.find("chatty").unwrap();
    assert_eq!(
        chatty.metadata["events"].as_array().unwrap().len(),
        ops_tracing::MAX_EVENTS
    );
    assert_eq!(
        chatty.metadata["events_dropped"]["count"],
        json!(40 - ops_tracing::MAX_EVENTS)
    );
    assert_eq!(chatty.level, Level::Default);
}

#[tracing::instrument(err, fields(gen_ai.operation.name = "execute_tool", gen_ai.tool.name = "search"))]
fn failing_tool(query: &str) -> Result<String, std::io::Error> {
    Err(std::io::Error::other(format!("no results for {query}")))
}

#[test]
fn an_instrumented_error_marks_the_span_failed() {
    let capture = capture();
    traced_with(&capture, ops_tracing::layer(), || failing_tool("rust")).unwrap_err();
    let tool = capture
        .find("search")
        .expect("the tool, named after the tool");
    assert_eq!(tool.kind, ObservationKind::Tool);
    assert_eq!(tool.level, Level::Error);
    assert_eq!(tool.status_message.as_deref(), Some("no results for rust"));
}

#[test]
fn the_kind_comes_from_ops_kind_then_gen_ai_then_openinference() {
    let capture = capture();
    traced_with(&capture, ops_tracing::layer(), || {
        info_span!(
            "explicit",
            ops.kind = "tool",
            gen_ai.operation.name = "chat"
        )
        .in_scope(|| {});
        info_span!(
            "genai",
            gen_ai.operation.name = "embeddings",
            openinference.span.kind = "TOOL"
        )
        .in_scope(|| {});
        info_span!("openinference", openinference.span.kind = "RETRIEVER").in_scope(|| {});
        info_span!("unknown_operation", gen_ai.operation.name = "dance").in_scope(|| {});
        info_span!(
            "bad_kind",
            ops.kind = "gizmo",
            gen_ai.operation.name = "execute_tool"
        )
        .in_scope(|| {});
        // A kind recorded after the span started still applies.
        let late = info_span!("late", ops.kind = Empty);
        late.record("ops.kind", "agent");
        late.in_scope(|| {});
    });
    let kind = |name: &str| capture.find(name).unwrap().kind;
    assert_eq!(kind("explicit"), ObservationKind::Tool);
    assert_eq!(kind("genai"), ObservationKind::Generation);
    assert_eq!(kind("openinference"), ObservationKind::DatasetRetrieval);
    assert_eq!(kind("unknown_operation"), ObservationKind::Span);
    assert_eq!(kind("bad_kind"), ObservationKind::Tool);
    assert_eq!(kind("late"), ObservationKind::Agent);
    let error = &capture.find("bad_kind").unwrap().metadata["ops.kind_error"];
    assert!(
        error
            .as_str()
            .unwrap()
            .contains("unknown observation kind \"gizmo\""),
        "{error}"
    );
}

#[test]
fn error_fields_mark_the_observation_failed() {
    let capture = capture();
    traced_with(&capture, ops_tracing::layer(), || {
        let span = info_span!("chat", gen_ai.operation.name = "chat", error.type = Empty);
        span.record("error.type", "rate_limited");
        span.in_scope(|| {});
    });
    let chat = capture.find("chat").unwrap();
    assert_eq!(chat.level, Level::Error);
    assert_eq!(chat.status_message.as_deref(), Some("error: rate_limited"));
    assert_eq!(chat.metadata["error_type"], json!("rate_limited"));
}

#[test]
fn an_explicit_parent_and_updates_from_inside_are_honoured() {
    let capture = capture();
    traced_with(&capture, ops_tracing::layer(), || {
        let root = info_span!("root", ops.kind = "workflow", ops.user_id = "u-1");
        let other = info_span!("other", ops.kind = "span");
        // Created while `other` is entered, but given `root` as its parent.
        let child = other.in_scope(|| info_span!(parent: &root, "child", ops.kind = "tool"));
        child.in_scope(|| {
            ops_core::update_current_observation(|o| {
                o.metadata("from_inside", true);
            });
        });
        drop(child);
        drop(other);
        drop(root);
    });
    let root = capture.find("root").unwrap();
    let child = capture.find("child").unwrap();
    assert_eq!(child.parent_id, Some(root.id));
    assert_eq!(child.metadata["from_inside"], json!(true));
    assert_eq!(root.attributes.user_id.as_deref(), Some("u-1"));
    assert!(capture.find("other").unwrap().parent_id.is_none());
}

#[test]
fn an_explicit_parent_with_no_observation_above_falls_back_to_the_current_one() {
    #[traced]
    fn handler() {
        // As rig-core's `completion_parent_span!` does: `parent: Span::current()`, here a
        // span that is not an observation.
        let unselected = info_span!("plain");
        let _g = unselected.enter();
        info_span!(parent: tracing::Span::current(), "chat", gen_ai.operation.name = "chat")
            .in_scope(|| {});
        // `parent: None` asks for a new trace, and gets one.
        info_span!(parent: None, "detached", ops.kind = "span").in_scope(|| {});
    }
    let capture = capture();
    traced_with(&capture, ops_tracing::layer(), handler);
    let handler = capture.find("handler").unwrap();
    assert_eq!(capture.find("chat").unwrap().parent_id, Some(handler.id));
    assert!(capture.find("plain").is_none());
    let detached = capture.find("detached").unwrap();
    assert_eq!(detached.parent_id, None);
    assert_eq!(capture.traces().len(), 2);
}

#[test]
fn a_root_handle_dropped_before_its_child_still_delivers_one_whole_trace() {
    let capture = capture();
    traced_with(&capture, ops_tracing::layer(), || {
        let root = info_span!("request", ops.kind = "workflow");
        let child = root.in_scope(|| info_span!("stream", gen_ai.operation.name = "chat"));
        // The registry closes the root only once its child has closed.
        drop(root);
        drop(child);
    });
    let traces = capture.traces();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].observations.len(), 2);
    let request = capture.find("request").unwrap();
    assert_eq!(capture.find("stream").unwrap().parent_id, Some(request.id));
}

#[test]
fn without_a_queue_nothing_is_recorded_and_nothing_breaks() {
    // No capture entered on this thread: the spans are not observations of any capture.
    let capture = capture();
    tracing::dispatcher::with_default(&dispatch(ops_tracing::layer()), || {
        info_span!("alone", gen_ai.operation.name = "chat").in_scope(|| traced_leaf(1));
    });
    assert!(capture.traces().is_empty());
}

#[test]
fn concurrent_threads_keep_their_trees_apart() {
    let capture = capture();
    let dispatch = dispatch(ops_tracing::layer());
    std::thread::scope(|s| {
        for t in 0..8_u32 {
            let (capture, dispatch) = (&capture, &dispatch);
            s.spawn(move || {
                tracing::dispatcher::with_default(dispatch, || {
                    capture.run(|| {
                        for r in 0..20_u32 {
                            let root = info_span!(
                                "request",
                                ops.kind = "workflow",
                                ops.thread = t,
                                ops.round = r
                            );
                            let _root = root.enter();
                            let chat = info_span!("chat", gen_ai.operation.name = "chat");
                            chat.in_scope(|| traced_leaf(t));
                        }
                    })
                })
            });
        }
    });
    let traces = capture.traces();
    assert_eq!(traces.len(), 8 * 20);
    for trace in &traces {
        assert_eq!(trace.observations.len(), 3, "{trace:?}");
        let root = trace.roots().next().unwrap();
        let chat = trace
            .children_of(root.id)
            .next()
            .expect("chat under the root");
        assert_eq!(chat.name, "chat");
        let leaf = trace
            .children_of(chat.id)
            .next()
            .expect("the traced call under chat");
        // The traced call's input is its own thread's number: nothing crossed over.
        assert_eq!(leaf.input, Some(json!({"x": root.metadata["thread"]})));
    }
}

#[tracing::instrument(fields(gen_ai.operation.name = "chat"))]
async fn instrumented_chat(n: u32) -> u32 {
    tokio::task::yield_now().await;
    let out = traced_async_leaf(n).await;
    tokio::task::yield_now().await;
    out
}

#[traced]
async fn traced_async_leaf(n: u32) -> u32 {
    tokio::task::yield_now().await;
    n * 2
}

#[tracing::instrument(fields(ops.kind = "agent"))]
async fn instrumented_agent(n: u32) -> u32 {
    let (a, b) = tokio::join!(instrumented_chat(n), instrumented_chat(n + 1));
    a + b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_spans_and_traced_futures_interleave_correctly() {
    use tracing::instrument::WithSubscriber;
    let capture = capture();
    let tasks: Vec<_> = (0..4_u32)
        .map(|n| {
            let capture = capture.clone();
            tokio::spawn(
                async move { capture.scope(instrumented_agent(n * 10)).await }
                    .with_subscriber(dispatch(ops_tracing::layer())),
            )
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let traces = capture.traces();
    assert_eq!(traces.len(), 4);
    for trace in &traces {
        let agent = trace.roots().next().unwrap();
        assert_eq!(agent.kind, ObservationKind::Agent);
        let chats: Vec<_> = trace.children_of(agent.id).collect();
        assert_eq!(chats.len(), 2, "{trace:?}");
        for chat in chats {
            assert_eq!(chat.kind, ObservationKind::Generation);
            let leaves: Vec<_> = trace.children_of(chat.id).collect();
            assert_eq!(leaves.len(), 1, "{trace:?}");
            // The leaf doubles its chat's `n`.
            assert_eq!(
                leaves[0].output,
                Some(json!(chat.metadata["n"].as_u64().unwrap() * 2))
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_spawned_with_instrument_carries_the_trace() {
    use tracing::Instrument;
    use tracing::instrument::WithSubscriber;
    let capture = capture();
    let inner = capture.clone();
    async move {
        inner
            .scope(async {
                let agent = info_span!("agent", ops.kind = "agent");
                let task = tokio::spawn(
                    async { traced_async_leaf(21).await }
                        .instrument(info_span!(parent: &agent, "tool", ops.kind = "tool"))
                        .with_current_subscriber(),
                );
                assert_eq!(task.await.unwrap(), 42);
                drop(agent);
            })
            .await
    }
    .with_subscriber(dispatch(ops_tracing::layer()))
    .await;
    capture.assert(
        ops_testkit::expect::trace().name("agent").root(
            ops_testkit::expect::observation("agent").child(
                ops_testkit::expect::observation("tool")
                    .kind(ObservationKind::Tool)
                    .child(ops_testkit::expect::observation("traced_async_leaf").output(json!(42))),
            ),
        ),
    );
}
