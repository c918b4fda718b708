//! What tracing adds to an async-openai call, against a loopback fake OpenAI server (its own
//! runtime thread) replaying the recorded fixtures.
//!
//! - `chat_create`: `Client::chat().create` (the baseline), then the same through a
//!   `TracedClient` with no queue installed, then recording (a queue with a no-op provider;
//!   each call is a root, a whole trace queued per call).
//! - `chat_stream`: the same for `create_stream`, read to its end (6 chunks and the usage).
//!
//! Run: `cargo bench -p ops-openai --bench overhead -- --warm-up-time 1 --measurement-time 5`.

use std::time::Duration;

use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::StreamExt as _;
use ops_core::TraceQueueManager;
use ops_openai::TracedClient;
use ops_testkit::Discard;
use serde_json::json;

#[path = "../tests/fake/mod.rs"]
#[allow(dead_code)]
mod fake;

const CHAT: &str = include_str!("../tests/fixtures/chat.json");
const CHAT_STREAM: &str = include_str!("../tests/fixtures/chat_stream.sse");

fn request(stream: bool) -> CreateChatCompletionRequest {
    serde_json::from_value(json!({
        "model": "gpt-4o-mini", "temperature": 0.5, "max_tokens": 100,
        "messages": [
            {"role": "system", "content": "You are a travel assistant."},
            {"role": "user", "content": "What should I pack for Lisbon?"}
        ],
        "stream": stream, "stream_options": if stream { json!({"include_usage": true}) } else { json!(null) },
    }))
    .expect("request")
}

fn bench(c: &mut Criterion) {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let json = server.block_on(fake::start(vec![(
        "/v1/chat/completions",
        fake::Reply::Json(200, CHAT),
    )]));
    let sse = server.block_on(fake::start(vec![(
        "/v1/chat/completions",
        fake::Reply::sse(CHAT_STREAM),
    )]));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let queue = TraceQueueManager::builder()
        .interval(Duration::from_millis(10))
        .provider(Discard::default())
        .build()
        .expect("queue");

    let mut group = c.benchmark_group("chat_create");
    let raw = json.client.clone();
    let traced = TracedClient::new(json.client.clone());
    group.bench_function("async_openai", |b| {
        b.iter(|| {
            rt.block_on(async {
                let r: CreateChatCompletionResponse =
                    raw.chat().create(request(false)).await.expect("ok");
                r
            })
        })
    });
    group.bench_function("traced_no_queue", |b| {
        b.iter(|| {
            rt.block_on(traced.chat().create(request(false)))
                .expect("ok")
        })
    });
    group.bench_function("traced_recording", |b| {
        let _guard = ops_core::set_default(queue.clone());
        b.iter(|| {
            rt.block_on(traced.chat().create(request(false)))
                .expect("ok")
        })
    });
    group.finish();

    let mut group = c.benchmark_group("chat_stream");
    let raw = sse.client.clone();
    let traced = TracedClient::new(sse.client.clone());
    group.bench_function("async_openai", |b| {
        b.iter(|| {
            rt.block_on(async {
                let s = raw.chat().create_stream(request(true)).await.expect("ok");
                s.collect::<Vec<_>>().await.len()
            })
        })
    });
    group.bench_function("traced_no_queue", |b| {
        b.iter(|| {
            rt.block_on(async {
                let s = traced
                    .chat()
                    .create_stream(request(true))
                    .await
                    .expect("ok");
                s.collect::<Vec<_>>().await.len()
            })
        })
    });
    group.bench_function("traced_recording", |b| {
        let _guard = ops_core::set_default(queue.clone());
        b.iter(|| {
            rt.block_on(async {
                let s = traced
                    .chat()
                    .create_stream(request(true))
                    .await
                    .expect("ok");
                s.collect::<Vec<_>>().await.len()
            })
        })
    });
    group.finish();
    let report = queue.flush(Duration::from_secs(10));
    assert_eq!(report.dropped, 0, "every recorded trace was delivered");
}

criterion_group!(benches, bench);
criterion_main!(benches);
