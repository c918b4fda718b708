//! `/completions` (the legacy text completions), traced.

use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::completions::{CreateCompletionRequest, CreateCompletionResponse};
use ops_core::traced;
use serde_json::Value;

use crate::TracedClient;
use crate::record::{self, Api};

/// The completions API of a [`TracedClient`]: each call is a generation named
/// `openai.completions`.
#[derive(Debug)]
pub struct Completions<'c, C: Config> {
    pub(crate) client: &'c TracedClient<C>,
}

impl<C: Config> Completions<'_, C> {
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
        let response = match self.client.client.completions().create(request).await {
            Ok(response) => response,
            Err(e) => {
                record::error(&e);
                return Err(e);
            }
        };
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
}
