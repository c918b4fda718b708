//! The API's errors: `{"error": {"code", "message"}}` with the status that fits, the message
//! worded as the `ops` CLI words it (both come from `ops_config::Error`).

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ops_config::{Error, StoreError};
use serde_json::json;

/// An error answer. Its message never holds a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code, e.g. `wrong_tenant`.
    pub code: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            Error::WrongTenant { .. } => (S::FORBIDDEN, "wrong_tenant"),
            Error::UnknownProvider(_) => (S::NOT_FOUND, "unknown_provider"),
            Error::NotConfigured { .. } => (S::NOT_FOUND, "not_configured"),
            Error::NoConfig { .. } => (S::NOT_FOUND, "no_config"),
            Error::NoProvider { .. } => (S::CONFLICT, "no_enabled_provider"),
            Error::NotActive { .. } => (S::CONFLICT, "not_active"),
            Error::Config(_) => (S::UNPROCESSABLE_ENTITY, "invalid_config"),
            Error::MaskedWithoutStored(_) => (S::UNPROCESSABLE_ENTITY, "masked_without_stored"),
            Error::InvalidId { .. } => (S::UNPROCESSABLE_ENTITY, "invalid_id"),
            Error::CheckFailed { .. } => (S::UNPROCESSABLE_ENTITY, "check_failed"),
            Error::Store(s) => match s.root() {
                StoreError::Conflict { .. } => (S::CONFLICT, "conflict"),
                StoreError::WrongTenant { .. } => (S::FORBIDDEN, "wrong_tenant"),
                _ => (S::SERVICE_UNAVAILABLE, "store"),
            },
            Error::Key(_) | Error::Crypto(_) => (S::INTERNAL_SERVER_ERROR, "key"),
            _ => (S::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::warn!(target: "ops_admin", code, error = %e, "request failed");
        }
        Self::new(status, code, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let status = e.status();
        let (code, message) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => (
                "body_too_large",
                "the request body is over the limit; a config is a few small strings".to_owned(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`".to_owned(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY => ("invalid_body", e.body_text()),
            _ => ("malformed_body", e.body_text()),
        };
        Self::new(status, code, message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
