//! `/completions` (the legacy text completions), traced.

use std::sync::Arc;

use async_openai::Client;
use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::completions::{
    CompletionResponseStream, CreateCompletionRequest, CreateCompletionResponse,
};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use ops_core::traced;
use serde_json::Value;

use crate::TracedClient;
use crate::price::PriceTable;
use crate::record::{self, Api};
use crate::stream::{self, ChunkObserver, TextReducer};

/// The completions API of a [`TracedClient`]: each call is a generation named
/// `openai.completions`.
#[derive(Debug)]
pub struct Completions<'c, C: Config> {
    pub(crate) client: &'c TracedClient<C>,
}

impl<C: Config + 'static> Completions<'_, C> {
    /// Creates a completion, as [`async_openai::Completions::create`]. The generation records
    /// the model, the parameters, the prompt as input, the text (per choice) as output, the
    /// usage and its cost, or the API's error.
    #[traced(
        kind = "generation",
        name = "openai.completions",
        skip_all,
        capture_output = false
    )]
    pub async fn create(
        &self,
        request: CreateCompletionRequest,
    ) -> Result<CreateCompletionResponse, OpenAIError> {
        record::request(Api::Completions, &request);
        let request_model = request.model.clone();
        let response = record::checked(self.client.client.completions().create(request).await)?;
        record::response(
            &response.model,
            Some(&request_model),
            || {
                record::one_or_many(
                    response
                        .choices
                        .iter()
                        .map(|c| Value::String(c.text.clone()))
                        .collect(),
                )
            },
            response.usage.as_ref().map(Into::into),
            self.client.prices(),
        );
        Ok(response)
    }

    /// Creates a streamed completion, as [`async_openai::Completions::create_stream`]: the
    /// generation stays open until the stream ends or is dropped, the first chunk is its
    /// `completion_start_time`, the chunks' text (per choice) is its output, and the usage is
    /// recorded when the request sets `stream_options.include_usage`. A request that fails
    /// before any chunk is an `Err`, as with async-openai.
    pub async fn create_stream(
        &self,
        request: CreateCompletionRequest,
    ) -> Result<CompletionResponseStream, OpenAIError> {
        stream::start(traced_completion_stream(
            Arc::clone(&self.client.client),
            request,
            self.client.prices.clone(),
        ))
        .await
    }
}

/// The stream behind [`Completions::create_stream`]: the request is sent when it is first
/// polled.
#[traced(
    kind = "generation",
    name = "openai.completions",
    skip_all,
    reduce = TextReducer::default()
)]
fn traced_completion_stream<C: Config + 'static>(
    client: Arc<Client<C>>,
    request: CreateCompletionRequest,
    prices: Option<Arc<PriceTable>>,
) -> impl Stream<Item = Result<CreateCompletionResponse, OpenAIError>> + Send + 'static {
    record::request(Api::Completions, &request);
    let mut observer = ChunkObserver::new(request.model.clone(), prices);
    futures_util::stream::once(async move { client.completions().create_stream(request).await })
        .try_flatten()
        .inspect(move |item| observer.observe(item))
}
