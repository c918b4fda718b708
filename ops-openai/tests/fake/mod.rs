//! A loopback fake of the OpenAI API: replays recorded JSON and SSE bodies
//! (`tests/fixtures`), remembers the requests, and can pace a stream or leave it hanging.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::Response;
use axum::serve::ListenerExt as _;
use futures_util::{StreamExt as _, stream};
use serde_json::Value;

/// How long a request to the fake may take, its streamed body included.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the fake answers on one path.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// A JSON body with this status.
    Json(u16, &'static str),
    /// An SSE body, one event at a time: `first` before the first event, `gap` before each
    /// next one; with `hang`, the stream never ends after its last event.
    Sse {
        body: &'static str,
        first: Duration,
        gap: Duration,
        hang: bool,
    },
}

impl Reply {
    /// An SSE body sent at once.
    pub(crate) fn sse(body: &'static str) -> Self {
        Reply::Sse {
            body,
            first: Duration::ZERO,
            gap: Duration::ZERO,
            hang: false,
        }
    }
}

#[derive(Clone)]
struct Routes {
    routes: Arc<Vec<(&'static str, Reply)>>,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

/// A running fake.
pub(crate) struct Fake {
    pub(crate) client: Client<OpenAIConfig>,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Fake {
    /// The requests received so far: path and JSON body.
    pub(crate) fn requests(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts a fake on 127.0.0.1 answering `routes` (paths such as `/v1/chat/completions`);
/// other paths get a 404 in OpenAI's error shape.
pub(crate) async fn start(routes: Vec<(&'static str, Reply)>) -> Fake {
    let state = Routes {
        routes: Arc::new(routes),
        seen: Arc::default(),
    };
    let seen = Arc::clone(&state.seen);
    let app = Router::new().fallback(answer).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Without TCP_NODELAY, an SSE event written after the headers waits for the client's
    // delayed ACK (40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = OpenAIConfig::new()
        .with_api_base(format!("http://{addr}/v1"))
        .with_api_key("sk-test-not-a-secret");
    // Every request, its streamed body included, is bounded in time.
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap();
    Fake {
        client: Client::build(http, config),
        seen,
    }
}

async fn answer(State(state): State<Routes>, uri: Uri, body: Bytes) -> Response {
    let body_json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state
        .seen
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), body_json));
    let Some((_, reply)) = state.routes.iter().find(|(p, _)| *p == uri.path()) else {
        return json(
            404,
            r#"{"error":{"message":"no such route","type":"invalid_request_error","param":null,"code":null}}"#,
        );
    };
    match reply.clone() {
        Reply::Json(status, body) => json(status, body),
        Reply::Sse {
            body,
            first,
            gap,
            hang,
        } => {
            let events: Vec<String> = body
                .split("\n\n")
                .filter(|e| !e.trim().is_empty())
                .map(|e| format!("{e}\n\n"))
                .collect();
            let paced =
                stream::iter(events.into_iter().enumerate()).then(move |(i, e)| async move {
                    let wait = if i == 0 { first } else { gap };
                    // tokio's timer ticks by the millisecond: a zero wait would still cost one.
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    Ok::<_, Infallible>(Bytes::from(e))
                });
            let body = if hang {
                Body::from_stream(paced.chain(stream::pending()))
            } else {
                Body::from_stream(paced)
            };
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(body)
                .unwrap()
        }
    }
}

fn json(status: u16, body: &'static str) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap()
}
