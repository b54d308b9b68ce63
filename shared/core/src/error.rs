//! API errors as RFC 9457 problem+json, with the anchor's `code`, `message`, `details` and
//! `requestId`. Internal causes are logged, never returned.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use linkcrm_storage::StoreError;
use serde::Serialize;
use serde_json::{json, Value};

pub const PROBLEM_BASE: &str = "https://linkcrm.dev/errors/";

/// One field-level problem of a 400.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// What library and worker code below the operations fails with: the store, or a stored item
/// that does not read as the record it should be. Operations turn it into a problem through
/// `From` (here, the one place); workers into a retry or a failure (`linkcrm_core::jobs`).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored {what} does not parse: {why}")]
    Corrupt { what: String, why: String },
    /// A job the queue refuses (too large, badly formed): a bug, not the client's.
    #[error(transparent)]
    Job(#[from] linkcrm_jobs::JobError),
}

pub type DataResult<T> = Result<T, DataError>;

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::Store(e) => e.into(),
            DataError::Corrupt { what, why } => {
                tracing::error!(error = %why, "stored {what} does not parse");
                ApiError::internal()
            }
            DataError::Job(e) => {
                tracing::error!(error = %e, "a job was refused by the queue");
                ApiError::internal()
            }
        }
    }
}

impl From<DataError> for linkcrm_jobs::HandlerError {
    /// A store that is unavailable or busy is a passing problem; a corrupt record is not.
    fn from(e: DataError) -> Self {
        match e {
            DataError::Store(StoreError::Unavailable(_) | StoreError::Conflict) => {
                linkcrm_jobs::HandlerError::Retry { after: std::time::Duration::from_secs(5) }
            }
            other => linkcrm_jobs::HandlerError::Fail(other.to_string()),
        }
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: None, errors: Vec::new(), retry_after: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400 naming the offending field. The document's code is the field's (`invalid_domain`,
    /// `invalid_cursor`, ...), except that a body that is not JSON at all is `invalid_request`.
    pub fn invalid_field(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        let top = if code == "malformed_json" { "invalid_request" } else { code };
        ApiError {
            errors: vec![FieldError { field: field.clone(), code: code.to_owned(), message: message.clone() }],
            ..ApiError::new(StatusCode::BAD_REQUEST, top, format!("{field}: {message}"))
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn insufficient_scope(scope: &str) -> Self {
        ApiError::forbidden("insufficient_scope", format!("This key lacks the scope '{scope}'."))
            .with_details(json!({ "requiredScope": scope }))
    }

    pub fn not_found(code: &'static str, what: &str, id: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, format!("No {what} with id '{id}'."))
            .with_details(json!({ "id": id }))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    pub fn precondition_failed(current: i64) -> Self {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            "If-Match does not match the current version.",
        )
        .with_details(json!({ "currentETag": format!("\"{current}\"") }))
    }

    pub fn internal() -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Something went wrong on our side.")
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    /// The problem document (without `requestId`, which the response adds).
    pub fn body(&self, request_id: &str) -> Value {
        let mut body = json!({
            "type": format!("{PROBLEM_BASE}{}", self.code),
            "title": self.title(),
            "status": self.status.as_u16(),
            "detail": self.message,
            "code": self.code,
            "message": self.message,
            "details": self.details.clone().unwrap_or_else(|| json!({})),
            "requestId": request_id,
        });
        if !self.errors.is_empty() {
            body["errors"] = serde_json::to_value(&self.errors).expect("field errors serialise");
        }
        body
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // Callers turn expected condition failures into their own errors; one that reaches
            // here means someone else changed the item first.
            StoreError::ConditionFailed { .. } | StoreError::Conflict => {
                ApiError::conflict("conflict", "The resource was changed concurrently; retry.")
            }
            StoreError::ItemTooLarge { size } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The record would be {size} bytes, above the storage limit."),
            ),
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "Storage is unavailable; retry shortly.",
                );
                e.retry_after = Some(1);
                e
            }
            StoreError::Invalid(cause) | StoreError::Internal(cause) => {
                tracing::error!(%cause, "store failure");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = crate::context::current_request_id();
        if self.status.is_server_error() {
            tracing::error!(code = self.code, status = self.status.as_u16(), "request failed");
        }
        let mut resp = (self.status, axum::Json(self.body(&request_id))).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        // RFC 6750: a 401 says which scheme to authenticate with.
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"linkcrm\""));
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
