//! `/responses`, traced.

use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::responses::{CreateResponse, Response};
use ops_core::traced;
use serde_json::Value;

use crate::TracedClient;
use crate::record::{self, Api};

/// The responses API of a [`TracedClient`]: each call is a generation named
/// `openai.responses`.
#[derive(Debug)]
pub struct Responses<'c, C: Config> {
    pub(crate) client: &'c TracedClient<C>,
}

impl<C: Config> Responses<'_, C> {
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
        let response = match self.client.client.responses().create(request).await {
            Ok(response) => response,
            Err(e) => {
                record::error(&e);
                return Err(e);
            }
        };
        record::response(
            &response.model,
            request_model.as_deref(),
            || Value::Array(response.output.iter().map(record::without_nulls).collect()),
            response.usage.as_ref().map(Into::into),
            self.client.prices(),
        );
        Ok(response)
    }
}
