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
}

/// `Retry-After` seconds for the codes whose answer says when to come back: every 429 and
/// every 503 (docs/errors.md), whichever path made the error.
fn retry_after(code: Code) -> Option<u64> {
    match code.status() {
        429 => Some(60),
        503 => Some(5),
        _ => None,
    }
}

impl ApiError {
    /// An error the HTTP layer itself reports.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            rule: None,
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
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let code = e.code();
        let rule = match &e {
            Error::Refused { rule, .. } => Some(rule.clone()),
            _ => None,
        };
        if code.status() >= 500 {
            tracing::error!(code = code.as_str(), error = %e, "request failed");
        }
        ApiError {
            code,
            message: e.to_string(),
            rule,
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
        if let Some(s) = retry_after(self.code) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 429 and 503 says when to come back, whether a handler or the domain made it.
    #[test]
    fn p25_too_many_attempts_and_unavailable_say_when_to_come_back() {
        for code in Code::ALL {
            let response = ApiError::new(*code, "x").into_response();
            let header = response.headers().get(header::RETRY_AFTER);
            assert_eq!(
                header.is_some(),
                matches!(code.status(), 429 | 503),
                "{}",
                code.as_str()
            );
        }
        let from_domain = ApiError::from(Error::TooManyAttempts).into_response();
        assert_eq!(from_domain.headers()[header::RETRY_AFTER], "60");
    }
}
