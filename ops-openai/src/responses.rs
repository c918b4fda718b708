//! `/responses`, traced.

use std::sync::Arc;

use async_openai::Client;
use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::responses::{
    CreateResponse, Response, ResponseStream, ResponseStreamEvent,
};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use ops_core::traced;
use serde_json::Value;

use crate::TracedClient;
use crate::price::PriceTable;
use crate::record::{self, Api};
use crate::stream::{self, ResponseObserver, ResponseReducer};

/// The responses API of a [`TracedClient`]: each call is a generation named
/// `openai.responses`.
#[derive(Debug)]
pub struct Responses<'c, C: Config> {
    pub(crate) client: &'c TracedClient<C>,
}

impl<C: Config + 'static> Responses<'_, C> {
    /// Creates a response, as [`async_openai::Responses::create`]. The generation records
    /// the model, the parameters, the instructions, input and tools, the output items
    /// (messages, function calls, reasoning) as output, the usage with cached and reasoning
    /// tokens and its cost, or the API's error.
    #[traced(
        kind = "generation",
        name = "openai.responses",
        skip_all,
        capture_output = false
    )]
    pub async fn create(&self, request: CreateResponse) -> Result<Response, OpenAIError> {
        record::request(Api::Responses, &request);
        let request_model = request.model.clone();
        let response = record::checked(self.client.client.responses().create(request).await)?;
        record::response(
            &response.model,
            request_model.as_deref(),
            || response_output(&response),
            response.usage.as_ref().map(Into::into),
            self.client.prices(),
        );
        response_status(&response);
        Ok(response)
    }

    /// Creates a streamed response, as [`async_openai::Responses::create_stream`]: the
    /// generation stays open until the stream ends or is dropped; its
    /// `completion_start_time` is the first text (or refusal, or function arguments) delta;
    /// the final event (`response.completed`, `.incomplete`, `.failed`) gives the model, the
    /// output items and the usage. A failed response or an `error` event is level ERROR, an
    /// incomplete one WARNING with its reason. A stream dropped before its end is recorded as
    /// cancelled, with the text that arrived. A request that fails before any event is an
    /// `Err`, as with async-openai.
    pub async fn create_stream(
        &self,
        request: CreateResponse,
    ) -> Result<ResponseStream, OpenAIError> {
        stream::start(traced_response_stream(
            Arc::clone(&self.client.client),
            request,
            self.client.prices.clone(),
        ))
        .await
    }
}

/// The stream behind [`Responses::create_stream`]: the request is sent when it is first
/// polled.
#[traced(
    kind = "generation",
    name = "openai.responses",
    skip_all,
    reduce = ResponseReducer::default()
)]
fn traced_response_stream<C: Config + 'static>(
    client: Arc<Client<C>>,
    request: CreateResponse,
    prices: Option<Arc<PriceTable>>,
) -> impl Stream<Item = Result<ResponseStreamEvent, OpenAIError>> + Send + 'static {
    record::request(Api::Responses, &request);
    let mut observer = ResponseObserver::new(request.model.clone(), prices);
    futures_util::stream::once(async move { client.responses().create_stream(request).await })
        .try_flatten()
        .inspect(move |item| observer.observe(item))
}

/// A response's output items, as recorded.
pub(crate) fn response_output(response: &Response) -> Value {
    Value::Array(response.output.iter().map(record::without_nulls).collect())
}

/// A failed response (it carries an `error`) is level ERROR with its message; an incomplete
/// one is level WARNING with its reason.
pub(crate) fn response_status(response: &Response) {
    if let Some(error) = &response.error {
        record::failure(format!("response failed: {}", error.message));
    } else if let Some(details) = &response.incomplete_details {
        record::warning(format!("response incomplete: {}", details.reason));
    }
}
