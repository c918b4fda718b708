//! Langfuse scores, sent as `score-create` events to the ingestion API
//! (`POST {host}/api/public/ingestion`), which keeps accepting scores on Langfuse v4.

use chrono::{SecondsFormat, Utc};
use ops_core::TraceId;
use ops_core::provider::{ConfigError, ExportError, ProviderConfig};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{DEFAULT_HOST, Langfuse, NAME};
use crate::otlp::transport::{Transport, TransportOptions, quote};
use crate::otlp::{env, span_id_hex, trace_id_hex};

/// A score's value, which also fixes its Langfuse data type.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreValue {
    /// `NUMERIC`.
    Numeric(f64),
    /// `BOOLEAN` (sent as 1 or 0).
    Boolean(bool),
    /// `CATEGORICAL` (a category label).
    Categorical(String),
}

impl ScoreValue {
    fn data_type(&self) -> &'static str {
        match self {
            ScoreValue::Numeric(_) => "NUMERIC",
            ScoreValue::Boolean(_) => "BOOLEAN",
            ScoreValue::Categorical(_) => "CATEGORICAL",
        }
    }

    fn json(&self) -> Value {
        match self {
            ScoreValue::Numeric(v) => json!(v),
            ScoreValue::Boolean(b) => json!(if *b { 1 } else { 0 }),
            ScoreValue::Categorical(s) => json!(s),
        }
    }
}

/// What a score is about.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreTarget {
    /// A whole trace.
    Trace(TraceId),
    /// One observation of a trace.
    Observation {
        /// The trace.
        trace: TraceId,
        /// The observation's id.
        observation: Uuid,
    },
    /// A session (Dify's conversation).
    Session(String),
}

/// One score.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The score's id: sending a score with the same id again updates it.
    pub id: String,
    /// Its name, such as `helpfulness`.
    pub name: String,
    /// Its value.
    pub value: ScoreValue,
    /// What it scores.
    pub target: ScoreTarget,
    /// A comment.
    pub comment: Option<String>,
    /// Free-form metadata.
    pub metadata: Option<Value>,
    /// The environment, such as `production`.
    pub environment: Option<String>,
}

impl Score {
    /// A score with a fresh id.
    pub fn new(name: impl Into<String>, value: ScoreValue, target: ScoreTarget) -> Self {
        Self {
            id: Uuid::now_v7().to_string(),
            name: name.into(),
            value,
            target,
            comment: None,
            metadata: None,
            environment: None,
        }
    }

    /// A numeric score.
    pub fn numeric(name: impl Into<String>, value: f64, target: ScoreTarget) -> Self {
        Self::new(name, ScoreValue::Numeric(value), target)
    }

    /// A boolean score.
    pub fn boolean(name: impl Into<String>, value: bool, target: ScoreTarget) -> Self {
        Self::new(name, ScoreValue::Boolean(value), target)
    }

    /// A categorical score.
    pub fn categorical(
        name: impl Into<String>,
        value: impl Into<String>,
        target: ScoreTarget,
    ) -> Self {
        Self::new(name, ScoreValue::Categorical(value.into()), target)
    }

    /// Sets the comment.
    #[must_use]
    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Sets the id (to update a score sent before).
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The score-create body.
    fn body(&self) -> Result<Value, String> {
        if self.name.trim().is_empty() {
            return Err("a score needs a name".into());
        }
        if let ScoreValue::Numeric(v) = self.value
            && !v.is_finite()
        {
            return Err(format!("score {:?} has a non-finite value {v}", self.name));
        }
        let mut b = Map::new();
        b.insert("id".into(), json!(self.id));
        b.insert("name".into(), json!(self.name));
        b.insert("value".into(), self.value.json());
        b.insert("dataType".into(), json!(self.value.data_type()));
        match &self.target {
            ScoreTarget::Trace(t) => {
                b.insert("traceId".into(), json!(trace_id_hex(t)));
            }
            ScoreTarget::Observation { trace, observation } => {
                b.insert("traceId".into(), json!(trace_id_hex(trace)));
                b.insert("observationId".into(), json!(span_id_hex(*observation)));
            }
            ScoreTarget::Session(s) => {
                b.insert("sessionId".into(), json!(s));
            }
        }
        if let Some(c) = &self.comment {
            b.insert("comment".into(), json!(c));
        }
        if let Some(m) = &self.metadata {
            b.insert("metadata".into(), m.clone());
        }
        if let Some(e) = &self.environment {
            b.insert("environment".into(), json!(e));
        }
        Ok(Value::Object(b))
    }
}

/// Sends scores to Langfuse's ingestion API with the same credentials as the provider.
#[derive(Clone)]
pub struct ScoreClient {
    dialect: Langfuse,
    transport: Transport,
}

impl std::fmt::Debug for ScoreClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoreClient")
            .field("dialect", &self.dialect)
            .field("transport", &self.transport)
            .finish()
    }
}

impl ScoreClient {
    /// A client for `host` with a key pair.
    pub fn new(
        host: impl Into<String>,
        public_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let dialect = Langfuse::new(host, public_key, secret_key);
        let url = env::join(&dialect.host, "/api/public/ingestion");
        let transport = Transport::new(
            NAME,
            url,
            reqwest::header::HeaderMap::new(),
            TransportOptions::default(),
        )
        .map_err(|message| ConfigError::Build {
            provider: NAME.into(),
            message,
        })?;
        Ok(Self { dialect, transport })
    }

    /// A client from a `langfuse` tracing config (validated as the provider validates it).
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let mut config = config.clone();
        super::validate(&mut config)?;
        Self::new(
            config.get("host").unwrap_or(DEFAULT_HOST),
            config.require("public_key")?,
            config.require("secret_key")?,
        )
    }

    /// A client from `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY` and `LANGFUSE_BASE_URL` /
    /// `LANGFUSE_HOST`; `None` when the keys are not set.
    pub fn from_env() -> Option<Result<Self, ConfigError>> {
        match super::from_env() {
            Ok(config) => config.map(|c| Self::from_config(&c)),
            Err(e) => Some(Err(e)),
        }
    }

    /// The ingestion request body for `scores`.
    pub fn batch(&self, scores: &[Score]) -> Result<Value, ExportError> {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let batch = scores
            .iter()
            .map(|s| {
                s.body().map(|body| {
                    json!({
                        "id": Uuid::now_v7().to_string(),
                        "timestamp": now,
                        "type": "score-create",
                        "body": body,
                    })
                })
            })
            .collect::<Result<Vec<Value>, String>>()
            .map_err(|e| ExportError::new(NAME, e))?;
        Ok(json!({ "batch": batch }))
    }

    /// Sends `scores` in one request. Langfuse answers 207 with a status per event; any
    /// event error fails the call with the server's messages (with the keys removed).
    pub async fn send(&self, scores: &[Score]) -> Result<(), ExportError> {
        let redactor = crate::http::secrets_redactor(crate::otlp::Dialect::secrets(&self.dialect));
        self.send_raw(scores).await.map_err(|e| redactor.error(e))
    }

    async fn send_raw(&self, scores: &[Score]) -> Result<(), ExportError> {
        if scores.is_empty() {
            return Ok(());
        }
        let body = self.batch(scores)?;
        let reply = self
            .transport
            .send(
                self.transport
                    .client()
                    .post(self.transport.endpoint())
                    .header("authorization", self.dialect.authorization())
                    .header("content-type", "application/json")
                    .body(body.to_string()),
            )
            .await?;
        reply.check(NAME, "sending scores (POST /api/public/ingestion)")?;
        let errors: Vec<String> = reply
            .json()
            .and_then(|j| j.get("errors").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .map(|e| {
                let msg = e
                    .get("message")
                    .and_then(Value::as_str)
                    .or_else(|| e.get("error").and_then(Value::as_str))
                    .unwrap_or("rejected");
                format!(
                    "event {} (HTTP {}): {}",
                    e.get("id").and_then(Value::as_str).unwrap_or("?"),
                    e.get("status").map_or("?".into(), Value::to_string),
                    quote(msg)
                )
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ExportError::new(
                NAME,
                format!(
                    "Langfuse rejected {} of {} score(s): {}",
                    errors.len(),
                    scores.len(),
                    errors.join("; ")
                ),
            ))
        }
    }
}
