//! Every error the API returns, in one JSON shape with a code from the one catalogue
//! ([`steward_core::Code`]): the code decides the status, so no handler picks a status of its
//! own. Bad input is always a 4xx; messages never carry PI values or what the caller sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use steward_core::{Code, Error};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code from the catalogue (`docs/errors.md`).
    pub code: Code,
    /// Plain explanation for a person.
    pub message: String,
    /// The policy rule that refused, for refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError {
    code: Code,
    message: String,
    rule: Option<String>,
    /// `Retry-After` seconds, for answers that say when to come back.
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error the HTTP layer itself reports.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            rule: None,
            retry_after: None,
        }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Its code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// Adds `Retry-After: seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let code = e.code();
        let rule = match &e {
            Error::Refused { rule, .. } => Some(rule.clone()),
            _ => None,
        };
        let retry_after = match code {
            Code::TooManyAttempts => Some(60),
            Code::StorageUnavailable | Code::MailUnavailable => Some(5),
            _ => None,
        };
        if code.status() >= 500 {
            tracing::error!(code = code.as_str(), error = %e, "request failed");
        }
        ApiError {
            code,
            message: e.to_string(),
            rule,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                rule: self.rule,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}
