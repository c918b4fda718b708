//! Incoming requests with `tower` (axum, tonic, hyper-util): run each handler in the trace its
//! caller sent.

use std::task::{Context, Poll};

use ops_core::context::WithContext;
use ops_core::propagation::extract;
use tower_layer::Layer;
use tower_service::Service;

/// A tower [`Layer`] that extracts the W3C trace context of each request
/// ([`ops_core::propagation::extract`]) and makes it current while the inner service handles
/// the request (its `call` and every poll of its future), so a `#[traced]` root there joins
/// the caller's trace. Malformed headers are ignored and counted
/// ([`ops_core::propagation::stats`]); without headers the handler starts its own trace.
///
/// ```
/// use axum::{Router, routing::get};
/// use ops_http::server::TraceContextLayer;
///
/// #[ops_core::traced]
/// async fn work() -> &'static str {
///     "done"
/// }
///
/// let app: Router = Router::new().route("/work", get(work)).layer(TraceContextLayer);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer;

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService { inner }
    }
}

/// The service [`TraceContextLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct TraceContextService<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for TraceContextService<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = WithContext<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let context = extract(request.headers());
        let future = context.in_scope(|| self.inner.call(request));
        context.wrap(future)
    }
}
