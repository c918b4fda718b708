//! Outgoing requests with `reqwest`: carry the current trace to the service called.

use http::HeaderMap;
use ops_core::ObservationContext;
use ops_core::propagation::inject_context;

/// Adds the current trace context to a `reqwest` request.
///
/// ```no_run
/// use ops_http::client::RequestBuilderExt as _;
///
/// #[ops_core::traced(skip(client))]
/// async fn ask_worker(client: &reqwest::Client) -> reqwest::Result<String> {
///     client
///         .get("http://127.0.0.1:3000/work")
///         .with_trace_context()
///         .send()
///         .await?
///         .text()
///         .await
/// }
/// ```
pub trait RequestBuilderExt: Sized {
    /// Sets `traceparent` (this observation as the parent), `tracestate` and `baggage` from
    /// the context current now ([`ops_core::propagation::inject`]); unchanged outside any
    /// trace.
    fn with_trace_context(self) -> Self {
        self.with_trace_context_of(&ObservationContext::current())
    }

    /// [`RequestBuilderExt::with_trace_context`] with a given context.
    fn with_trace_context_of(self, context: &ObservationContext) -> Self;
}

impl RequestBuilderExt for reqwest::RequestBuilder {
    fn with_trace_context_of(self, context: &ObservationContext) -> Self {
        let mut headers = HeaderMap::new();
        if inject_context(context, &mut headers) {
            self.headers(headers)
        } else {
            self
        }
    }
}
