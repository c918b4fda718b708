//! `/embeddings`, traced.

use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::embeddings::{CreateEmbeddingRequest, CreateEmbeddingResponse};
use ops_core::traced;
use serde_json::json;

use crate::TracedClient;
use crate::record::{self, Api};
use crate::usage::Tokens;

/// The embeddings API of a [`TracedClient`]: each call is a generation named
/// `openai.embeddings`.
#[derive(Debug)]
pub struct Embeddings<'c, C: Config> {
    pub(crate) client: &'c TracedClient<C>,
}

impl<C: Config> Embeddings<'_, C> {
    /// Creates embeddings, as [`async_openai::Embeddings::create`]. The generation records
    /// the model, the parameters, the input texts, the usage (prompt tokens) and its cost, or
    /// the API's error. The vectors are not recorded: the output says how many there are and
    /// their dimensions.
    #[traced(
        kind = "generation",
        name = "openai.embeddings",
        skip_all,
        capture_output = false
    )]
    pub async fn create(
        &self,
        request: CreateEmbeddingRequest,
    ) -> Result<CreateEmbeddingResponse, OpenAIError> {
        record::request(Api::Embeddings, &request);
        let request_model = request.model.clone();
        let response = record::checked(self.client.client.embeddings().create(request).await)?;
        record::response(
            &response.model,
            Some(&request_model),
            || {
                json!({
                    "embeddings": response.data.len(),
                    "dimensions": response.data.first().map(|e| e.embedding.len()),
                })
            },
            Some(Tokens::from(&response.usage)),
            self.client.prices(),
        );
        Ok(response)
    }
}
