//! A config store in a temporary SQLite file, a fake Langfuse on loopback, three tokens, and
//! a way to send requests through the router.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use ops_admin::{AdminState, Limits, Role, Tokens};
use ops_config::{Keyring, MasterKey, OpsTraceManager};
use ops_testkit::fake_server::{FakeResponse, FakeServer};
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub const PK: &str = "pk-lf-0123456789abcdef";
pub const SK: &str = "sk-lf-fedcba9876543210";
pub const ACME: &str = "acme-token-0123456789abcdef";
pub const OTHER: &str = "other-token-0123456789abcdef";
pub const ADMIN: &str = "admin-token-0123456789abcdef";

/// Everything a test needs; the temporary directory lives as long as it does.
pub struct Env {
    pub state: AdminState,
    pub server: FakeServer,
    _dir: tempfile::TempDir,
}

/// One answer: status, JSON body (`Null` when empty) and the raw text.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub json: Value,
    pub text: String,
    pub headers: axum::http::HeaderMap,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

pub fn tokens() -> Tokens {
    Tokens::new()
        .with(ACME, Role::Tenant("acme".into()))
        .unwrap()
        .with(OTHER, Role::Tenant("other".into()))
        .unwrap()
        .with(ADMIN, Role::Admin)
        .unwrap()
}

impl Env {
    /// With a fake Langfuse whose projects endpoint answers `check_status`.
    pub async fn new(check_status: u16, limits: Limits) -> Self {
        ops_providers::link();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("config.db").display());
        let store = ops_config::store::connect(&url).await.unwrap();
        let keys = Keyring::new([MasterKey::from_bytes(1, [7; 32])]).unwrap();
        let manager = OpsTraceManager::new(store, keys)
            .with_cache_ttl(None)
            .with_check_timeout(Duration::from_secs(5));
        let server = FakeServer::start().await;
        let answer = if check_status == 200 {
            FakeResponse::ok().json(&json!({"data": [{"id": "proj-123", "name": "demo"}]}))
        } else {
            FakeResponse::echo(check_status)
        };
        server.route("GET", "/api/public/projects", answer);
        let state = AdminState::new(Arc::new(manager), tokens()).with_limits(limits);
        Self {
            state,
            server,
            _dir: dir,
        }
    }

    /// `method path` with `token` (none if empty) and a JSON `body` (none if `Null`).
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Value) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if !token.is_empty() {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = if body.is_null() {
            Body::empty()
        } else {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        };
        self.send(request.body(body).unwrap()).await
    }

    /// Sends `request` through a fresh router.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = ops_admin::router(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            json,
            text,
            headers,
        }
    }

    /// The langfuse config body pointing at the fake server, secrets included.
    pub fn langfuse_body(&self) -> Value {
        json!({"values": {"public_key": PK, "secret_key": SK, "host": self.server.uri()}})
    }

    /// `app` configured for langfuse and enabled, by `token`'s tenant.
    pub async fn configured(&self, app: &str, token: &str) {
        let put = self
            .call(
                "PUT",
                &format!("/apps/{app}/configs/langfuse"),
                token,
                self.langfuse_body(),
            )
            .await;
        assert_eq!(put.status, StatusCode::CREATED, "{put:#?}");
        let on = self
            .call(
                "POST",
                &format!("/apps/{app}/enable?provider=langfuse"),
                token,
                Value::Null,
            )
            .await;
        assert_eq!(on.status, StatusCode::OK, "{on:#?}");
    }
}
