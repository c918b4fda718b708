//! OpenAI's token counts, as ops [`Usage`] with its cost.

use async_openai::types::chat::CompletionUsage;
use async_openai::types::embeddings::EmbeddingUsage;
use async_openai::types::responses::ResponseUsage;
use ops_core::Usage;

use crate::price::PriceTable;

/// The counts every OpenAI API reports, under one set of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tokens {
    pub(crate) input: u64,
    /// `None` for embeddings, which have no completion.
    pub(crate) output: Option<u64>,
    pub(crate) total: u64,
    /// Prompt tokens read from the cache (part of `input`).
    pub(crate) cached: Option<u64>,
    /// Completion tokens spent reasoning (part of `output`).
    pub(crate) reasoning: Option<u64>,
}

impl From<&CompletionUsage> for Tokens {
    fn from(u: &CompletionUsage) -> Self {
        Self {
            input: u.prompt_tokens.into(),
            output: Some(u.completion_tokens.into()),
            total: u.total_tokens.into(),
            cached: u
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .map(u64::from),
            reasoning: u
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .map(u64::from),
        }
    }
}

impl From<&EmbeddingUsage> for Tokens {
    fn from(u: &EmbeddingUsage) -> Self {
        Self {
            input: u.prompt_tokens.into(),
            output: None,
            total: u.total_tokens.into(),
            cached: None,
            reasoning: None,
        }
    }
}

impl From<&ResponseUsage> for Tokens {
    fn from(u: &ResponseUsage) -> Self {
        Self {
            input: u.input_tokens.into(),
            output: Some(u.output_tokens.into()),
            total: u.total_tokens.into(),
            cached: Some(u.input_tokens_details.cached_tokens.into()),
            reasoning: Some(u.output_tokens_details.reasoning_tokens.into()),
        }
    }
}

impl Tokens {
    /// The counts as ops [`Usage`] (cached and reasoning tokens in its details, under the
    /// names the providers read), priced from `prices` as the first of `models` it lists.
    pub(crate) fn to_usage(self, models: &[&str], prices: Option<&PriceTable>) -> Usage {
        let mut usage = Usage {
            input: Some(self.input),
            output: self.output,
            total: Some(self.total),
            ..Usage::default()
        };
        if let Some(n) = self.cached {
            usage.details.insert("cached_tokens".into(), n.into());
        }
        if let Some(n) = self.reasoning {
            usage.details.insert("reasoning_tokens".into(), n.into());
        }
        if let Some(cost) = prices.and_then(|p| p.cost(models, &self)) {
            usage.input_cost = Some(cost.input);
            usage.output_cost = self.output.map(|_| cost.output);
            usage.total_cost = Some(cost.input + cost.output);
            usage.currency = Some(cost.currency);
        }
        usage
    }
}
