//! `/chat/completions`, traced: one generation a call, streamed or not.

use std::sync::Arc;

use async_openai::Client;
use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionResponseStream, CreateChatCompletionRequest, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use ops_core::traced;

use crate::TracedClient;
use crate::price::PriceTable;
use crate::record::{self, Api};
use crate::stream::{self, ChatReducer, ChunkObserver};

/// The chat completions API of a [`TracedClient`]: each call is a generation named
/// `openai.chat`.
#[derive(Debug)]
pub struct Chat<'c, C: Config> {
    pub(crate) client: &'c TracedClient<C>,
}

impl<C: Config + 'static> Chat<'_, C> {
    /// Creates a chat completion, as [`async_openai::Chat::create`]. The generation records
    /// the model, the parameters, the messages (and tools) as input, the answer's message
    /// (tool calls included) as output, the usage with cached and reasoning tokens, its cost,
    /// or the API's error.
    #[traced(
        kind = "generation",
        name = "openai.chat",
        skip_all,
        capture_output = false
    )]
    pub async fn create(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, OpenAIError> {
        record::request(Api::Chat, &request);
        let request_model = request.model.clone();
        let response = record::checked(self.client.client.chat().create(request).await)?;
        record::response(
            &response.model,
            Some(&request_model),
            || {
                record::one_or_many(
                    response
                        .choices
                        .iter()
                        .map(|c| record::without_nulls(&c.message))
                        .collect(),
                )
            },
            response.usage.as_ref().map(Into::into),
            self.client.prices(),
        );
        Ok(response)
    }

    /// Creates a streamed chat completion, as [`async_openai::Chat::create_stream`]. The
    /// generation stays open until the stream ends or is dropped; the first chunk's arrival
    /// is its `completion_start_time`; the chunks are reduced to the final message (content
    /// and tool calls, per choice) as the output. Usage is recorded when the request asks
    /// for it (`stream_options: {"include_usage": true}`). A stream dropped before its end is
    /// recorded as cancelled, with what arrived so far.
    ///
    /// A request that fails before any chunk (a refused request, an unreachable server) is
    /// an `Err` here, as with async-openai, and a generation with level ERROR.
    pub async fn create_stream(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<ChatCompletionResponseStream, OpenAIError> {
        stream::start(traced_chat_stream(
            Arc::clone(&self.client.client),
            request,
            self.client.prices.clone(),
        ))
        .await
    }
}

/// The stream behind [`Chat::create_stream`]: the request is sent when it is first polled.
#[traced(kind = "generation", name = "openai.chat", skip_all, reduce = ChatReducer::default())]
fn traced_chat_stream<C: Config + 'static>(
    client: Arc<Client<C>>,
    request: CreateChatCompletionRequest,
    prices: Option<Arc<PriceTable>>,
) -> impl Stream<Item = Result<CreateChatCompletionStreamResponse, OpenAIError>> + Send + 'static {
    record::request(Api::Chat, &request);
    let mut observer = ChunkObserver::new(request.model.clone(), prices);
    futures_util::stream::once(async move { client.chat().create_stream(request).await })
        .try_flatten()
        .inspect(move |item| observer.observe(item))
}
