//! Errors as JSON: `{"error": "..."}` with the status that fits.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A failed request: its status and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong and how to fix it.
    pub message: String,
}

impl ViewerError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ViewerError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn no_trace(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("no trace {id:?} in the store; it may have been dropped by retention"),
        )
    }
}

impl From<ops_store::StoreError> for ViewerError {
    fn from(e: ops_store::StoreError) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ViewerError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}
