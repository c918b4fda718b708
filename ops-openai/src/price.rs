//! The price table the user supplies: what a model's tokens cost, so each generation carries
//! its cost.

use std::collections::HashMap;

use serde::Deserialize;

use crate::usage::Tokens;

/// What one model's tokens cost, in the table's currency per million tokens (the unit
/// OpenAI's pricing page uses).
///
/// Cached prompt tokens cost `cached_input` when it is set, else `input`. Reasoning tokens
/// are completion tokens and cost `output`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million prompt (input) tokens.
    pub input: f64,
    /// Per million completion (output) tokens, reasoning tokens included.
    pub output: f64,
    /// Per million cached prompt tokens; `None` prices them as `input`.
    #[serde(default)]
    pub cached_input: Option<f64>,
}

impl Price {
    /// A price per million prompt and completion tokens.
    pub fn per_million(input: f64, output: f64) -> Self {
        Self {
            input,
            output,
            cached_input: None,
        }
    }

    /// Sets the price per million cached prompt tokens.
    #[must_use]
    pub fn cached_input(mut self, per_million: f64) -> Self {
        self.cached_input = Some(per_million);
        self
    }

    fn check(&self, model: &str) -> Result<(), PriceError> {
        let fields = [
            ("input", Some(self.input)),
            ("output", Some(self.output)),
            ("cached_input", self.cached_input),
        ];
        for (field, value) in fields {
            if let Some(value) = value
                && !(value.is_finite() && value >= 0.0)
            {
                return Err(PriceError::InvalidPrice {
                    model: model.to_owned(),
                    field,
                    value,
                });
            }
        }
        Ok(())
    }
}

/// Why a price table was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PriceError {
    /// A price is negative, NaN or infinite.
    #[error(
        "the price `{field}` of model `{model}` is {value}: give a finite price per million tokens, 0 or more"
    )]
    InvalidPrice {
        /// The model.
        model: String,
        /// The field: `input`, `output` or `cached_input`.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A model name is empty.
    #[error(
        "a model name in the price table is empty: name each model as OpenAI does, e.g. `gpt-4o-mini`"
    )]
    EmptyModel,
    /// The currency is empty.
    #[error("the price table's currency is empty: give an ISO 4217 code such as `USD`")]
    EmptyCurrency,
    /// The JSON form could not be read.
    #[error(
        "the price table is not valid JSON of the form {{\"currency\": \"USD\", \"models\": {{\"gpt-4o-mini\": {{\"input\": 0.15, \"output\": 0.6, \"cached_input\": 0.075}}}}}}: {0}"
    )]
    Json(#[from] serde_json::Error),
}

/// Model name to [`Price`], in one currency. A generation whose model is in the table gets
/// its input, output and total cost; one whose model is not gets token counts only.
///
/// The response's model is looked up first (`gpt-4o-mini-2024-07-18`), then the same name
/// without its date suffix (`gpt-4o-mini`), then the model the request named.
///
/// ```
/// use ops_openai::{Price, PriceTable};
///
/// let prices = PriceTable::new("USD")
///     .with("gpt-4o-mini", Price::per_million(0.15, 0.60).cached_input(0.075))?;
/// // Or from a file the app ships:
/// let same = PriceTable::from_json(
///     r#"{"currency": "USD", "models": {"gpt-4o-mini": {"input": 0.15, "output": 0.6, "cached_input": 0.075}}}"#,
/// )?;
/// assert_eq!(prices.price("gpt-4o-mini-2024-07-18"), same.price("gpt-4o-mini"));
/// # Ok::<(), ops_openai::PriceError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    currency: String,
    models: HashMap<String, Price>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceTableJson {
    currency: String,
    models: HashMap<String, Price>,
}

impl PriceTable {
    /// An empty table whose prices are in `currency` (ISO 4217, e.g. `USD`).
    pub fn new(currency: impl Into<String>) -> Self {
        Self {
            currency: currency.into(),
            models: HashMap::new(),
        }
    }

    /// Reads a table from JSON: `{"currency": "USD", "models": {"<model>": {"input": ..,
    /// "output": .., "cached_input": ..}}}`, prices per million tokens.
    pub fn from_json(json: &str) -> Result<Self, PriceError> {
        let parsed: PriceTableJson = serde_json::from_str(json)?;
        if parsed.currency.trim().is_empty() {
            return Err(PriceError::EmptyCurrency);
        }
        let mut table = Self::new(parsed.currency);
        for (model, price) in parsed.models {
            table.set(model, price)?;
        }
        Ok(table)
    }

    /// Sets the price of `model`; a negative, NaN or infinite price, an empty model name or an
    /// empty currency is refused.
    pub fn set(&mut self, model: impl Into<String>, price: Price) -> Result<&mut Self, PriceError> {
        let model = model.into();
        if self.currency.trim().is_empty() {
            return Err(PriceError::EmptyCurrency);
        }
        if model.trim().is_empty() {
            return Err(PriceError::EmptyModel);
        }
        price.check(&model)?;
        self.models.insert(model, price);
        Ok(self)
    }

    /// [`set`](Self::set), by value, to chain.
    pub fn with(mut self, model: impl Into<String>, price: Price) -> Result<Self, PriceError> {
        self.set(model, price)?;
        Ok(self)
    }

    /// The currency of the prices.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// The price of `model`: its own, else that of the name without a `-YYYY-MM-DD` suffix.
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.models
            .get(model)
            .or_else(|| self.models.get(strip_date(model)?))
    }

    /// The input, output and total cost of `tokens`, priced as the first of `models` found.
    pub(crate) fn cost(&self, models: &[&str], tokens: &Tokens) -> Option<Cost> {
        let price = models.iter().find_map(|m| self.price(m))?;
        let cached = tokens.cached.unwrap_or(0).min(tokens.input);
        let uncached = tokens.input - cached;
        let per_token = |per_million: f64| per_million / 1_000_000.0;
        let input = uncached as f64 * per_token(price.input)
            + cached as f64 * per_token(price.cached_input.unwrap_or(price.input));
        let output = tokens.output.unwrap_or(0) as f64 * per_token(price.output);
        Some(Cost {
            input,
            output,
            currency: self.currency.clone(),
        })
    }
}

/// A generation's cost.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cost {
    pub(crate) input: f64,
    pub(crate) output: f64,
    pub(crate) currency: String,
}

/// `gpt-4o-mini` for `gpt-4o-mini-2024-07-18`; `None` when there is no date suffix.
fn strip_date(model: &str) -> Option<&str> {
    let (head, date) = model.split_at_checked(model.len().checked_sub(11)?)?;
    let bytes = date.as_bytes();
    let shape = bytes[0] == b'-'
        && bytes[5] == b'-'
        && bytes[8] == b'-'
        && [1, 2, 3, 4, 6, 7, 9, 10]
            .iter()
            .all(|&i| bytes[i].is_ascii_digit());
    shape.then_some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dated_snapshot_takes_its_family_price() {
        let table = PriceTable::new("USD")
            .with("gpt-4o-mini", Price::per_million(0.15, 0.6))
            .unwrap();
        assert!(table.price("gpt-4o-mini-2024-07-18").is_some());
        assert!(table.price("gpt-4o-mini-x").is_none());
        assert!(table.price("gpt-4o").is_none());
        assert_eq!(strip_date("2024-07-18"), None);
        assert_eq!(strip_date("é"), None);
    }

    #[test]
    fn cached_tokens_are_priced_apart() {
        let table = PriceTable::new("USD")
            .with("m", Price::per_million(2.0, 8.0).cached_input(0.5))
            .unwrap();
        let tokens = Tokens {
            input: 1_000_000,
            output: Some(500_000),
            total: 1_500_000,
            cached: Some(400_000),
            reasoning: None,
        };
        let cost = table.cost(&["m"], &tokens).unwrap();
        assert!((cost.input - (0.6 * 2.0 + 0.4 * 0.5)).abs() < 1e-12);
        assert!((cost.output - 4.0).abs() < 1e-12);
        assert_eq!(cost.currency, "USD");
    }

    #[test]
    fn bad_prices_are_refused_by_name() {
        let err = PriceTable::new("USD")
            .with("m", Price::per_million(f64::NAN, 1.0))
            .unwrap_err();
        assert!(
            err.to_string().contains("`input` of model `m` is NaN"),
            "{err}"
        );
        let err = PriceTable::new("USD")
            .with("m", Price::per_million(1.0, 1.0).cached_input(-1.0))
            .unwrap_err();
        assert!(err.to_string().contains("`cached_input`"), "{err}");
        assert!(matches!(
            PriceTable::new("USD").with(" ", Price::per_million(1.0, 1.0)),
            Err(PriceError::EmptyModel)
        ));
        assert!(matches!(
            PriceTable::new("").with("m", Price::per_million(1.0, 1.0)),
            Err(PriceError::EmptyCurrency)
        ));
        let err =
            PriceTable::from_json(r#"{"currency":"USD","models":{"m":{"inptu":1}}}"#).unwrap_err();
        assert!(err.to_string().contains("inptu"), "{err}");
    }
}
