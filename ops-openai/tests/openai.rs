//! Each traced API against a loopback fake OpenAI server replaying recorded responses: the
//! generation each call records, streams included.

mod fake;

use std::time::Duration;

use async_openai::error::OpenAIError;
use fake::Reply;
use futures_util::StreamExt as _;
use ops_core::{Level, Observation, ObservationKind, traced};
use ops_openai::{Price, PriceTable, TracedClient};
use ops_testkit::expect;
use serde_json::{Value, json};

const CHAT: &str = include_str!("fixtures/chat.json");
const CHAT_TOOLS: &str = include_str!("fixtures/chat_tools.json");
const CHAT_STREAM: &str = include_str!("fixtures/chat_stream.sse");
const CHAT_STREAM_TOOLS: &str = include_str!("fixtures/chat_stream_tools.sse");
const COMPLETIONS: &str = include_str!("fixtures/completions.json");
const EMBEDDINGS: &str = include_str!("fixtures/embeddings.json");
const ERROR: &str = include_str!("fixtures/error.json");
const RESPONSES: &str = include_str!("fixtures/responses.json");
const RESPONSES_STREAM: &str = include_str!("fixtures/responses_stream.sse");
const COMPLETIONS_STREAM: &str = include_str!("fixtures/completions_stream.sse");
const CHAT_STREAM_ERROR: &str = include_str!("fixtures/chat_stream_error.sse");

const CHAT_PATH: &str = "/v1/chat/completions";

fn req<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a valid request")
}

fn messages() -> Value {
    json!([
        {"role": "system", "content": "You are a travel assistant."},
        {"role": "user", "content": "What should I pack for Lisbon?"}
    ])
}

fn chat_request() -> Value {
    json!({"model": "gpt-4o-mini", "messages": messages(), "temperature": 0.5,
           "max_tokens": 100, "user": "traveller-42"})
}

fn stream_request() -> Value {
    json!({"model": "gpt-4o-mini", "messages": messages(), "stream": true,
           "stream_options": {"include_usage": true}})
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_current_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                       "required": ["location"]}}}])
}

fn detail(o: &Observation, key: &str) -> Option<u64> {
    o.usage.as_ref()?.details.get(key)?.as_u64()
}

fn only(capture: &ops_testkit::Capture, name: &str) -> Observation {
    let found: Vec<_> = capture
        .observations()
        .into_iter()
        .filter(|o| o.name == name)
        .collect();
    assert_eq!(found.len(), 1, "one `{name}` expected: {found:#?}");
    found.into_iter().next().unwrap()
}

fn millis(
    o: &Observation,
    from: chrono::DateTime<chrono::Utc>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> i64 {
    let to = to.unwrap_or_else(|| panic!("no end time on {o:#?}"));
    (to - from).num_milliseconds()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_records_model_parameters_messages_answer_and_usage() {
    let fake = fake::start(vec![(CHAT_PATH, Reply::Json(200, CHAT))]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();

    let response = capture
        .scope(openai.chat().create(req(chat_request())))
        .await
        .unwrap();
    assert_eq!(
        response.choices[0].message.content.as_deref(),
        Some("Pack layers and a light rain jacket.")
    );

    let o = only(&capture, "openai.chat");
    assert_eq!(o.kind, ObservationKind::Generation);
    assert_eq!(o.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(o.model_provider.as_deref(), Some("openai"));
    assert_eq!(
        Value::Object(o.model_parameters.clone()),
        json!({"temperature": 0.5, "max_tokens": 100})
    );
    assert_eq!(o.input, Some(messages()));
    let output = o.output.clone().unwrap();
    assert_eq!(output["role"], "assistant");
    assert_eq!(output["content"], "Pack layers and a light rain jacket.");
    assert!(
        output.get("refusal").is_none(),
        "nulls are left out: {output}"
    );
    let usage = o.usage.clone().unwrap();
    assert_eq!(
        (usage.input, usage.output, usage.total),
        (Some(1200), Some(300), Some(1500))
    );
    assert_eq!(detail(&o, "cached_tokens"), Some(1024));
    assert_eq!(detail(&o, "reasoning_tokens"), Some(64));
    assert_eq!(usage.total_cost(), None, "no price table, no cost");
    assert_eq!(o.level, Level::Default);
    assert!(o.completion_start_time.is_none());
    // The request reached the server as the caller built it.
    assert_eq!(fake.requests()[0].1["user"], "traveller-42");
    capture.assert_no_orphans();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_with_tools_records_them_in_the_input_and_the_tool_calls_as_output() {
    let fake = fake::start(vec![(CHAT_PATH, Reply::Json(200, CHAT_TOOLS))]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();
    let mut request = chat_request();
    request["tools"] = tools();
    request["tool_choice"] = json!("auto");

    capture
        .scope(openai.chat().create(req(request)))
        .await
        .unwrap();

    let o = only(&capture, "openai.chat");
    assert_eq!(
        o.input,
        Some(json!({"messages": messages(), "tools": tools()}))
    );
    assert_eq!(o.model_parameters["tool_choice"], "auto");
    let output = o.output.clone().unwrap();
    assert!(output.get("content").is_none(), "{output}");
    assert_eq!(
        output["tool_calls"],
        json!([{"id": "call_abc123", "type": "function", "function": {
            "name": "get_current_weather", "arguments": "{\n\"location\": \"Boston, MA\"\n}"}}])
    );
    assert_eq!(o.usage.as_ref().unwrap().input, Some(82));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chat_stays_open_until_the_end_with_first_chunk_time_message_and_usage() {
    let paced = Reply::Sse {
        body: CHAT_STREAM,
        first: Duration::from_millis(150),
        gap: Duration::from_millis(100),
        hang: false,
    };
    let fake = fake::start(vec![(CHAT_PATH, paced)]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();

    let text = capture
        .scope(async {
            let mut stream = openai
                .chat()
                .create_stream(req(stream_request()))
                .await
                .unwrap();
            let mut text = String::new();
            let mut chunks = 0;
            while let Some(chunk) = stream.next().await {
                chunks += 1;
                for c in chunk.unwrap().choices {
                    text.push_str(c.delta.content.as_deref().unwrap_or_default());
                }
            }
            assert_eq!(chunks, 6, "the caller sees every chunk");
            text
        })
        .await;
    assert_eq!(text, "Pack layers and a light rain jacket.");

    let o = only(&capture, "openai.chat");
    // The chunks add up to the message a non-streamed call returns.
    let plain: Value = serde_json::from_str(CHAT).unwrap();
    assert_eq!(
        o.output,
        Some(json!({"role": "assistant", "content": plain["choices"][0]["message"]["content"]}))
    );
    assert_eq!(o.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(o.metadata["chunks"], 6);
    let usage = o.usage.clone().unwrap();
    assert_eq!(
        (usage.input, usage.output, usage.total),
        (Some(1200), Some(300), Some(1500))
    );
    assert_eq!(detail(&o, "cached_tokens"), Some(1024));
    assert_eq!(detail(&o, "reasoning_tokens"), Some(64));
    assert_eq!(
        o.model_parameters["stream_options"],
        json!({"include_usage": true})
    );
    // Time to first token: the first chunk came 150 ms after the request; five more came
    // 100 ms apart, and the generation stayed open for them.
    let first = o.completion_start_time.expect("completion_start_time");
    assert!(millis(&o, o.start_time, Some(first)) >= 140, "{o:#?}");
    assert!(millis(&o, first, o.end_time) >= 450, "{o:#?}");
    assert_eq!(o.level, Level::Default);
    assert_eq!(fake.requests()[0].1["stream"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_tool_call_deltas_are_reduced_to_whole_calls() {
    let fake = fake::start(vec![(CHAT_PATH, Reply::sse(CHAT_STREAM_TOOLS))]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();
    let mut request = stream_request();
    request["tools"] = tools();

    capture
        .scope(async {
            let stream = openai.chat().create_stream(req(request)).await.unwrap();
            let all: Vec<_> = stream.collect().await;
            assert!(all.iter().all(Result::is_ok));
        })
        .await;

    let o = only(&capture, "openai.chat");
    assert_eq!(
        o.output,
        Some(json!({"role": "assistant", "tool_calls": [
            {"id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function",
             "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Boston, MA\"}"}},
            {"id": "call_2", "type": "function",
             "function": {"name": "get_time", "arguments": "{}"}}
        ]}))
    );
    assert_eq!(o.usage.as_ref().unwrap().output, Some(17));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_is_recorded_as_cancelled_with_what_arrived() {
    // Only the first three events, then the server keeps the stream open forever.
    let three: &'static str = CHAT_STREAM
        .split("\n\n")
        .take(3)
        .collect::<Vec<_>>()
        .join("\n\n")
        .leak();
    let hanging = Reply::Sse {
        body: three,
        first: Duration::ZERO,
        gap: Duration::ZERO,
        hang: true,
    };
    let fake = fake::start(vec![(CHAT_PATH, hanging)]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();

    capture
        .scope(async {
            let mut stream = openai
                .chat()
                .create_stream(req(stream_request()))
                .await
                .unwrap();
            for _ in 0..3 {
                stream.next().await.unwrap().unwrap();
            }
            // The fourth chunk never comes: give up on it, as a caller with a timeout would.
            let next = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
            assert!(next.is_err(), "the fake hangs after three chunks");
            drop(stream);
        })
        .await;

    let o = only(&capture, "openai.chat");
    assert_eq!(o.level, Level::Warning);
    assert_eq!(o.metadata["cancelled"], true);
    assert!(o.end_time.is_some());
    assert_eq!(
        o.output,
        Some(json!({"role": "assistant", "content": "Pack layers and a light"}))
    );
    assert!(o.usage.is_none(), "no usage arrived: {o:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_error_is_recorded_with_its_message_streamed_or_not() {
    let fake = fake::start(vec![(CHAT_PATH, Reply::Json(400, ERROR))]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();

    let (plain, streamed) = capture
        .scope(async {
            let plain = openai.chat().create(req(chat_request())).await;
            let streamed = openai.chat().create_stream(req(stream_request())).await;
            (plain, streamed.map(|_| ()))
        })
        .await;
    for err in [plain.map(|_| ()).unwrap_err(), streamed.unwrap_err()] {
        assert!(
            matches!(&err, OpenAIError::ApiError(e) if e.api_error.code.as_deref() == Some("invalid_value")),
            "{err:?}"
        );
    }

    let generations = capture.find_kind(ObservationKind::Generation);
    assert_eq!(generations.len(), 2);
    for o in generations {
        assert_eq!(o.level, Level::Error, "{o:#?}");
        let status = o.status_message.clone().unwrap();
        assert!(
            status.contains("Invalid value for 'temperature': expected a number between 0 and 2."),
            "{status}"
        );
        assert_eq!(o.metadata["openai_error"]["type"], "invalid_request_error");
        assert_eq!(o.metadata["openai_error"]["param"], "temperature");
        assert_eq!(o.metadata["http_status"], 400);
        assert!(
            o.metadata.get("cancelled").is_none(),
            "a failed stream ended: {o:#?}"
        );
        assert_eq!(
            o.model.as_deref(),
            Some("gpt-4o-mini"),
            "the request's model"
        );
        assert!(o.end_time.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_record_the_input_and_prompt_tokens_not_the_vectors() {
    let fake = fake::start(vec![("/v1/embeddings", Reply::Json(200, EMBEDDINGS))]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();

    let response = capture
        .scope(openai.embeddings().create(req(json!({
            "model": "text-embedding-3-small", "input": ["sunny", "rainy"], "dimensions": 4
        }))))
        .await
        .unwrap();
    assert_eq!(response.data.len(), 2);

    let o = only(&capture, "openai.embeddings");
    assert_eq!(o.kind, ObservationKind::Generation);
    assert_eq!(o.model.as_deref(), Some("text-embedding-3-small"));
    assert_eq!(o.input, Some(json!(["sunny", "rainy"])));
    assert_eq!(o.output, Some(json!({"embeddings": 2, "dimensions": 4})));
    assert_eq!(o.model_parameters["dimensions"], 4);
    let usage = o.usage.clone().unwrap();
    assert_eq!(
        (usage.input, usage.output, usage.total),
        (Some(8), None, Some(8))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_record_instructions_input_output_items_and_usage() {
    let fake = fake::start(vec![("/v1/responses", Reply::Json(200, RESPONSES))]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();

    let response = capture
        .scope(openai.responses().create(req(json!({
            "model": "gpt-4o", "instructions": "Answer in one sentence.",
            "input": "Tell me a story about a unicorn.", "temperature": 1.0
        }))))
        .await
        .unwrap();
    assert_eq!(response.output.len(), 3);

    let o = only(&capture, "openai.responses");
    assert_eq!(o.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(
        o.input,
        Some(json!({"instructions": "Answer in one sentence.",
                    "input": "Tell me a story about a unicorn."}))
    );
    assert_eq!(o.model_parameters["temperature"], 1.0);
    let output = o.output.clone().unwrap();
    assert_eq!(output[1]["type"], "message");
    assert!(
        output[1]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("In a peaceful grove")
    );
    assert_eq!(output[2]["type"], "function_call");
    assert_eq!(output[2]["name"], "get_weather");
    let usage = o.usage.clone().unwrap();
    assert_eq!(
        (usage.input, usage.output, usage.total),
        (Some(36), Some(87), Some(123))
    );
    assert_eq!(detail(&o, "cached_tokens"), Some(12));
    assert_eq!(detail(&o, "reasoning_tokens"), Some(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_record_the_prompt_and_the_text() {
    let fake = fake::start(vec![("/v1/completions", Reply::Json(200, COMPLETIONS))]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();

    capture
        .scope(openai.completions().create(req(json!({
            "model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7
        }))))
        .await
        .unwrap();

    let o = only(&capture, "openai.completions");
    assert_eq!(o.input, Some(json!("Say this is a test")));
    assert_eq!(o.output, Some(json!("\n\nThis is indeed a test")));
    assert_eq!(
        Value::Object(o.model_parameters.clone()),
        json!({"max_tokens": 7})
    );
    let usage = o.usage.clone().unwrap();
    assert_eq!((usage.input, usage.output), (Some(5), Some(7)));
}

#[traced(kind = "agent", skip_all)]
async fn plan(openai: &TracedClient) -> Result<(), OpenAIError> {
    openai.chat().create(req(chat_request())).await?;
    openai
        .embeddings()
        .create(req(
            json!({"model": "text-embedding-3-small", "input": "sunny"}),
        ))
        .await?;
    Ok(())
}

#[traced(kind = "message", skip_all)]
async fn answer(openai: &TracedClient, streamed: &TracedClient) -> Result<String, OpenAIError> {
    plan(openai).await?;
    let mut stream = streamed.chat().create_stream(req(stream_request())).await?;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        for c in chunk?.choices {
            text.push_str(c.delta.content.as_deref().unwrap_or_default());
        }
    }
    Ok(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generations_nest_under_the_current_traced_call() {
    let fake = fake::start(vec![
        (CHAT_PATH, Reply::Json(200, CHAT)),
        ("/v1/embeddings", Reply::Json(200, EMBEDDINGS)),
    ])
    .await;
    // The stream comes from a second fake: one path, one reply.
    let streaming = fake::start(vec![(CHAT_PATH, Reply::sse(CHAT_STREAM))]).await;
    let openai = TracedClient::new(fake.client.clone());
    let streamed = TracedClient::new(streaming.client.clone());
    let capture = ops_testkit::capture();

    let text = capture.scope(answer(&openai, &streamed)).await.unwrap();
    assert_eq!(text, "Pack layers and a light rain jacket.");

    capture.assert(
        expect::trace().kind(ObservationKind::Message).root(
            expect::observation("answer")
                .child(
                    expect::observation("plan")
                        .kind(ObservationKind::Agent)
                        .child(
                            expect::observation("openai.chat")
                                .kind(ObservationKind::Generation)
                                .model("gpt-4o-mini-2024-07-18")
                                .usage(1200, 300),
                        )
                        .child(expect::observation("openai.embeddings"))
                        .only(),
                )
                .child(
                    expect::observation("openai.chat")
                        .output(json!({"role": "assistant", "content": text}))
                        .usage(1200, 300),
                )
                .only(),
        ),
    );
    assert_eq!(capture.traces().len(), 1, "one trace");
    capture.assert_no_orphans();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_comes_from_the_supplied_price_table() {
    let fake = fake::start(vec![
        (CHAT_PATH, Reply::Json(200, CHAT)),
        ("/v1/embeddings", Reply::Json(200, EMBEDDINGS)),
    ])
    .await;
    let streaming = fake::start(vec![(CHAT_PATH, Reply::sse(CHAT_STREAM))]).await;
    let prices = PriceTable::new("USD")
        .with(
            "gpt-4o-mini",
            Price::per_million(0.15, 0.60).cached_input(0.075),
        )
        .unwrap();
    let openai = TracedClient::new(fake.client.clone()).with_prices(prices.clone());
    let streamed = TracedClient::new(streaming.client.clone()).with_prices(prices);
    let capture = ops_testkit::capture();

    capture
        .scope(async {
            openai.chat().create(req(chat_request())).await.unwrap();
            let stream = streamed
                .chat()
                .create_stream(req(stream_request()))
                .await
                .unwrap();
            let _: Vec<_> = stream.collect().await;
            // A model the table does not list gets counts only.
            openai
                .embeddings()
                .create(req(
                    json!({"model": "text-embedding-3-small", "input": "sunny"}),
                ))
                .await
                .unwrap();
        })
        .await;

    // 1200 prompt tokens, 1024 of them cached, and 300 completion tokens, at 0.15 / 0.075 /
    // 0.60 USD per million.
    let input = (176.0 * 0.15 + 1024.0 * 0.075) / 1e6;
    let output = 300.0 * 0.60 / 1e6;
    let chats: Vec<_> = capture
        .observations()
        .into_iter()
        .filter(|o| o.name == "openai.chat")
        .collect();
    assert_eq!(chats.len(), 2, "plain and streamed");
    for o in chats {
        let usage = o.usage.unwrap();
        assert!(
            (usage.input_cost.unwrap() - input).abs() < 1e-12,
            "{usage:?}"
        );
        assert!(
            (usage.output_cost.unwrap() - output).abs() < 1e-12,
            "{usage:?}"
        );
        assert!((usage.total_cost().unwrap() - (input + output)).abs() < 1e-12);
        assert_eq!(usage.currency.as_deref(), Some("USD"));
    }
    let embedding = only(&capture, "openai.embeddings").usage.unwrap();
    assert_eq!(embedding.input, Some(8));
    assert_eq!(embedding.total_cost(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_queue_calls_pass_through_and_record_nothing() {
    let fake = fake::start(vec![(CHAT_PATH, Reply::Json(200, CHAT))]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();

    // Outside the capture's scope, no queue is installed.
    let response = openai.chat().create(req(chat_request())).await.unwrap();
    let expected: async_openai::types::chat::CreateChatCompletionResponse =
        serde_json::from_str(CHAT).unwrap();
    assert_eq!(response, expected);
    assert!(capture.traces().is_empty());
}

#[tokio::test]
async fn debug_output_never_shows_the_api_key() {
    let fake = fake::start(Vec::new()).await;
    let shown = format!("{:?}", TracedClient::new(fake.client.clone()));
    assert!(shown.contains("api_base"), "{shown}");
    assert!(!shown.contains("sk-test-not-a-secret"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_event_mid_stream_is_recorded_with_the_api_message() {
    let fake = fake::start(vec![(CHAT_PATH, Reply::sse(CHAT_STREAM_ERROR))]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();

    let items = capture
        .scope(async {
            let stream = openai
                .chat()
                .create_stream(req(stream_request()))
                .await
                .unwrap();
            stream.collect::<Vec<_>>().await
        })
        .await;
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_ok() && items[2].is_err());

    let o = only(&capture, "openai.chat");
    assert_eq!(o.level, Level::Error);
    assert_eq!(
        o.status_message.as_deref(),
        Some(
            "stream failed: server_error: The server had an error while processing your request. Sorry about that!"
        )
    );
    assert_eq!(o.metadata["openai_error"]["type"], "server_error");
    assert!(
        o.metadata.get("cancelled").is_none(),
        "the stream ended: {o:#?}"
    );
    assert_eq!(
        o.output,
        Some(json!({"role": "assistant", "content": "Pack layers"}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_completions_record_the_joined_text_and_usage() {
    let fake = fake::start(vec![("/v1/completions", Reply::sse(COMPLETIONS_STREAM))]).await;
    let openai = TracedClient::new(fake.client.clone());
    let capture = ops_testkit::capture();

    capture
        .scope(async {
            let stream = openai
                .completions()
                .create_stream(req(json!({"model": "gpt-3.5-turbo-instruct",
                    "prompt": "Say this is a test", "stream_options": {"include_usage": true}})))
                .await
                .unwrap();
            assert_eq!(stream.collect::<Vec<_>>().await.len(), 4);
        })
        .await;

    let o = only(&capture, "openai.completions");
    assert_eq!(o.output, Some(json!("This is a test")));
    assert_eq!(o.input, Some(json!("Say this is a test")));
    assert!(o.completion_start_time.is_some());
    let usage = o.usage.clone().unwrap();
    assert_eq!(
        (usage.input, usage.output, usage.total),
        (Some(5), Some(3), Some(8))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_responses_take_the_first_text_delta_as_first_token_and_the_final_event() {
    let paced = Reply::Sse {
        body: RESPONSES_STREAM,
        first: Duration::from_millis(100),
        gap: Duration::from_millis(60),
        hang: false,
    };
    let fake = fake::start(vec![("/v1/responses", paced)]).await;
    let prices = PriceTable::new("USD")
        .with(
            "gpt-4o-mini",
            Price::per_million(0.15, 0.60).cached_input(0.075),
        )
        .unwrap();
    let openai = TracedClient::new(fake.client.clone()).with_prices(prices);
    let capture = ops_testkit::capture();

    let text = capture
        .scope(async {
            let mut stream = openai
                .responses()
                .create_stream(req(json!({"model": "gpt-4o-mini",
                    "input": "Tell me a story about a unicorn.", "stream": true})))
                .await
                .unwrap();
            let mut text = String::new();
            while let Some(event) = stream.next().await {
                if let async_openai::types::responses::ResponseStreamEvent::ResponseOutputTextDelta(d) =
                    event.unwrap()
                {
                    text.push_str(&d.delta);
                }
            }
            text
        })
        .await;

    let o = only(&capture, "openai.responses");
    assert_eq!(o.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    let output = o.output.clone().unwrap();
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["content"][0]["text"], text.as_str());
    let usage = o.usage.clone().unwrap();
    assert_eq!((usage.input, usage.output), (Some(1200), Some(300)));
    assert_eq!(detail(&o, "cached_tokens"), Some(1024));
    assert_eq!(detail(&o, "reasoning_tokens"), Some(64));
    let expected = (176.0 * 0.15 + 1024.0 * 0.075 + 300.0 * 0.60) / 1e6;
    assert!((usage.total_cost().unwrap() - expected).abs() < 1e-12);
    // Four events (created, in progress, item and part added) came before the first text
    // delta, 100 ms then 60 ms apart: the first token is the delta, not the first event.
    let first = o.completion_start_time.expect("completion_start_time");
    assert!(millis(&o, o.start_time, Some(first)) >= 320, "{o:#?}");
    assert_eq!(o.level, Level::Default);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_or_failed_response_sets_the_level_and_says_why() {
    let mut incomplete: Value = serde_json::from_str(RESPONSES).unwrap();
    incomplete["status"] = json!("incomplete");
    incomplete["incomplete_details"] = json!({"reason": "max_output_tokens"});
    let incomplete: &'static str = incomplete.to_string().leak();
    let mut failed: Value = serde_json::from_str(RESPONSES).unwrap();
    failed["status"] = json!("failed");
    failed["output"] = json!([]);
    failed["error"] =
        json!({"code": "server_error", "message": "The model failed to generate a response."});
    let event = json!({"type": "response.failed", "sequence_number": 0, "response": failed});
    let failed_stream: &'static str = format!("event: response.failed\ndata: {event}\n\n").leak();

    let fake = fake::start(vec![("/v1/responses", Reply::Json(200, incomplete))]).await;
    let streaming = fake::start(vec![("/v1/responses", Reply::sse(failed_stream))]).await;
    let capture = ops_testkit::capture();
    capture
        .scope(async {
            let request = || req(json!({"model": "gpt-4o", "input": "Tell me a story."}));
            TracedClient::new(fake.client.clone())
                .responses()
                .create(request())
                .await
                .unwrap();
            let stream = TracedClient::new(streaming.client.clone())
                .responses()
                .create_stream(request())
                .await
                .unwrap();
            assert!(stream.collect::<Vec<_>>().await.iter().all(Result::is_ok));
        })
        .await;

    let mut generations = capture.find_kind(ObservationKind::Generation);
    generations.sort_by_key(|o| o.start_time);
    let [incomplete, failed] = &generations[..] else {
        panic!("two generations expected: {generations:#?}");
    };
    assert_eq!(incomplete.level, Level::Warning);
    assert_eq!(
        incomplete.status_message.as_deref(),
        Some("response incomplete: max_output_tokens")
    );
    assert!(incomplete.usage.is_some());
    assert_eq!(failed.level, Level::Error);
    assert_eq!(
        failed.status_message.as_deref(),
        Some("response failed: The model failed to generate a response.")
    );
    assert_eq!(failed.output, Some(json!([])));
}
