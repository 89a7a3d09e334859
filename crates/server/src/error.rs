//! Every error the API returns, in one JSON shape with a stable code. The status of each
//! domain error is chosen in one exhaustive `match`: a new error cannot ship without someone
//! choosing its status. Bad input is always a 4xx; messages never carry PI values.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use steward_core::Error;
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
    /// Stable code, such as `consent_required` or `invalid_json`.
    pub code: String,
    /// Plain explanation for a person.
    pub message: String,
    /// The policy rule that refused, for refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    rule: Option<String>,
}

impl ApiError {
    /// A request-level error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            rule: None,
        }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::Unknown { .. } | Error::NotLookup(_) | Error::Invalid(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::CategoryNotDeclared { .. }
            | Error::RequiredMissing { .. }
            | Error::ConsentNotApplicable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::ConsentRequired { .. }
            | Error::SeparateConsentRequired { .. }
            | Error::Refused { .. }
            | Error::NotPermitted { .. }
            | Error::SubjectClosed
            | Error::DisclosureOutOfScope { .. } => StatusCode::FORBIDDEN,
            Error::LegalHold { .. } | Error::RequestState { .. } => StatusCode::CONFLICT,
            Error::Unauthenticated | Error::CodeInvalid => StatusCode::UNAUTHORIZED,
            Error::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Error::MailUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Error::SubjectNotFound => StatusCode::NOT_FOUND,
            Error::SubjectErased | Error::KeyDestroyed => StatusCode::GONE,
            Error::Store(steward_core::StoreError::Unavailable(_))
            | Error::RegionNotAllowed { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Store(_) | Error::Integrity | Error::Crypto(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let rule = match &e {
            Error::Refused { rule, .. } => Some(rule.clone()),
            _ => None,
        };
        if status.is_server_error() {
            tracing::error!(code = e.code(), error = %e, "request failed");
        }
        ApiError {
            status,
            code: e.code(),
            message: e.to_string(),
            rule,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                rule: self.rule,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
