//! Outgoing requests through `reqwest-middleware`: every request a client sends carries the
//! trace current when it is sent.

use http::{Extensions, HeaderMap};
use ops_core::ObservationContext;
use ops_core::propagation::inject_context;
use reqwest_middleware::{Middleware, Next, Result};

/// A `reqwest-middleware` middleware that writes the current observation's `traceparent`,
/// `tracestate` and `baggage` into each request ([`ops_core::propagation::inject`]). Outside
/// any trace a request goes out unchanged.
///
/// ```no_run
/// use ops_http::middleware::TraceContextMiddleware;
/// use reqwest_middleware::ClientBuilder;
///
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(TraceContextMiddleware)
///     .build();
///
/// #[ops_core::traced(skip(client))]
/// async fn ask_worker(client: &reqwest_middleware::ClientWithMiddleware) -> String {
///     let response = client.get("http://127.0.0.1:3000/work").send().await;
///     match response {
///         Ok(r) => r.text().await.unwrap_or_default(),
///         Err(e) => e.to_string(),
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextMiddleware;

#[ops_core::async_trait]
impl Middleware for TraceContextMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response> {
        let mut headers = HeaderMap::new();
        if inject_context(&ObservationContext::current(), &mut headers) {
            for (name, value) in headers {
                if let Some(name) = name {
                    req.headers_mut().insert(name, value);
                }
            }
        }
        next.run(req, extensions).await
    }
}
