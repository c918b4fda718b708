//! `ops serve`: a local trace viewer that understands LLM traces, over the local trace store
//! (`ops-store`).
//!
//! Plain server-rendered HTML (escaped by construction with `maud`) and one small script
//! served from the binary: no CDN, no front-end build. Pages:
//!
//! - `/`: the trace list (filters: kind, user, session, tag, status, time, search; paging),
//!   with new traces added live (server-sent events from `/api/events`);
//! - `/traces/{id}`: the tree beside a waterfall, token and cost totals rolled up the tree,
//!   and per observation its input and output (chat messages as a conversation), model,
//!   parameters, usage, cost and error;
//! - `/sessions` and `/sessions/{id}`: conversations, their traces in order;
//! - `/compare?a=..&b=..`: two traces side by side, inputs and outputs diffed per matching
//!   observation.
//!
//! JSON: `/api/traces`, `/api/traces/{id}`, `/api/stats`. Every error is JSON
//! (`{"error": "..."}`). Requests time out after 10 s, bodies are capped at 64 KiB, and an
//! admin API can be mounted under `/api/admin` ([`router`]).
#![cfg_attr(docsrs, deny(rustdoc::broken_intra_doc_links))]
#![doc = include_str!("../README.md")]

mod compare;
mod detail;
mod error;
mod format;
mod live;
mod pages;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ops_store::TraceStore;

pub use error::ViewerError;

/// The address `ops serve` binds when not told otherwise: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7411";

/// How long a request may take (live updates excepted).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The longest request target (path and query) accepted.
const URI_LIMIT: usize = 8 * 1024;

/// Which `Host` headers the viewer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostPolicy {
    /// Only `localhost`, `127.0.0.1` and `[::1]` (any port): a web page elsewhere cannot
    /// read the viewer through DNS rebinding. The default, for a loopback address.
    #[default]
    Loopback,
    /// Any host: for a viewer served on a non-loopback address on purpose.
    Any,
}

/// The viewer's routes over `store`, answering the hosts `hosts` allows.
///
/// `admin`, when given, is mounted under `/api/admin` with the same limits: this is where
/// the admin HTTP API (per-app tracing config) plugs in.
pub fn router(store: TraceStore, admin: Option<Router>, hosts: HostPolicy) -> Router {
    let mut app = Router::new()
        .route("/", get(pages::list))
        .route("/traces/{id}", get(detail::page))
        .route("/sessions", get(pages::sessions))
        .route("/sessions/{id}", get(pages::session))
        .route("/compare", get(compare::page))
        .route("/api/traces", get(live::list))
        .route("/api/traces/{id}", get(live::trace))
        .route("/api/stats", get(live::stats))
        .route("/api/events", get(live::events))
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style))
        .fallback(not_found)
        .with_state(store);
    // --- Admin API mount point (issue 17, part 3): the integrator passes its Router here.
    if let Some(admin) = admin {
        app = app.nest("/api/admin", admin);
    }
    app.layer(middleware::from_fn(limits))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(hosts, host_check))
}

/// How long requests still running when the shutdown signal arrives may take to finish;
/// after that their connections are closed (open live-update streams never finish).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves `app` on `listener` until `shutdown` completes, then gives requests still running
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping.send(());
    });
    tokio::select! {
        result = server => result,
        () = async {
            if stopped.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => Ok(()),
    }
}

async fn host_check(
    axum::extract::State(hosts): axum::extract::State<HostPolicy>,
    request: Request,
    next: Next,
) -> Response {
    if hosts == HostPolicy::Loopback
        && let Some(host) = request.headers().get(header::HOST)
    {
        let host = host.to_str().unwrap_or("");
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().map(|h| format!("[{h}]")),
            None => host.split(':').next().map(str::to_owned),
        }
        .unwrap_or_default();
        if !matches!(
            name.to_ascii_lowercase().as_str(),
            "localhost" | "127.0.0.1" | "[::1]"
        ) {
            return ViewerError::new(
                axum::http::StatusCode::FORBIDDEN,
                format!(
                    "host {host:?} is not served: this viewer answers localhost, 127.0.0.1 \
                     and [::1] only; serve on a non-loopback --addr to open it to other names"
                ),
            )
            .into_response();
        }
    }
    next.run(request).await
}

async fn limits(request: Request, next: Next) -> Response {
    let target_len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target_len > URI_LIMIT {
        return ViewerError::new(
            axum::http::StatusCode::URI_TOO_LONG,
            format!("the request target is {target_len} bytes; the limit is {URI_LIMIT}"),
        )
        .into_response();
    }
    let live = request.uri().path() == "/api/events";
    let mut response = if live {
        next.run(request).await
    } else {
        match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ViewerError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the request took longer than {} s; narrow the filter or try again",
                    REQUEST_TIMEOUT.as_secs()
                ),
            )
            .into_response(),
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn not_found(uri: axum::http::Uri) -> ViewerError {
    ViewerError::new(
        axum::http::StatusCode::NOT_FOUND,
        format!(
            "no page at {}; see / for traces, /sessions, /compare?a=ID&b=ID",
            uri.path()
        ),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/app.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/app.css"),
    )
}
