//! The traced client: async-openai's [`Client`] with each model call recorded.

use std::sync::Arc;

use async_openai::Client;
use async_openai::config::{Config, OpenAIConfig};

use crate::price::PriceTable;
use crate::{Chat, Completions, Embeddings, Responses};

/// An async-openai [`Client`] whose chat, completion, embedding and responses calls are each
/// recorded as a generation, nested under the current ops observation.
///
/// Its API mirrors the client's: `client.chat().create(request)` becomes
/// `traced.chat().create(request)`, with the same types and errors. Other APIs are reached
/// through [`inner`](Self::inner), untraced. With no ops queue installed, a call costs what
/// the client's own call costs plus one atomic load.
pub struct TracedClient<C: Config = OpenAIConfig> {
    pub(crate) client: Arc<Client<C>>,
    pub(crate) prices: Option<Arc<PriceTable>>,
}

impl<C: Config> TracedClient<C> {
    /// Wraps `client`.
    pub fn new(client: Client<C>) -> Self {
        Self {
            client: Arc::new(client),
            prices: None,
        }
    }

    /// Prices each generation from `prices`: its usage gets input, output and total cost.
    /// Without a table, or for a model it does not list, only token counts are recorded.
    #[must_use]
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.prices = Some(Arc::new(prices));
        self
    }

    /// The wrapped client, for the APIs this crate does not trace.
    pub fn inner(&self) -> &Client<C> {
        &self.client
    }

    /// The chat completions API (`/chat/completions`), traced.
    pub fn chat(&self) -> Chat<'_, C> {
        Chat { client: self }
    }

    /// The legacy completions API (`/completions`), traced.
    pub fn completions(&self) -> Completions<'_, C> {
        Completions { client: self }
    }

    /// The embeddings API (`/embeddings`), traced.
    pub fn embeddings(&self) -> Embeddings<'_, C> {
        Embeddings { client: self }
    }

    /// The responses API (`/responses`), traced.
    pub fn responses(&self) -> Responses<'_, C> {
        Responses { client: self }
    }

    pub(crate) fn prices(&self) -> Option<&PriceTable> {
        self.prices.as_deref()
    }
}

impl<C: Config> From<Client<C>> for TracedClient<C> {
    fn from(client: Client<C>) -> Self {
        Self::new(client)
    }
}

impl<C: Config> Clone for TracedClient<C> {
    fn clone(&self) -> Self {
        Self {
            client: Arc::clone(&self.client),
            prices: self.prices.clone(),
        }
    }
}

/// Shows the API base and whether prices are set; never the API key or the headers.
impl<C: Config> std::fmt::Debug for TracedClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedClient")
            .field("api_base", &self.client.config().api_base())
            .field("prices", &self.prices.as_ref().map(|p| p.currency()))
            .finish_non_exhaustive()
    }
}
