//! The one place domain errors become HTTP: a status plus
//! `{ "error": code, "message": … }` for the API, a Japanese message on pages.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mailbox::{Error, ErrorKind, Localized};
use serde::Serialize;

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PasswordChangeRequired | ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Locked => StatusCode::LOCKED,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Tampered => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error on the JSON API.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

/// Every refusal on the API: a stable code, English and Japanese text.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// A stable machine code, e.g. `reauthentication_required`.
    error: &'static str,
    message: String,
    message_ja: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.0.kind();
        if kind == ErrorKind::Internal {
            // Details go to the log only; the client gets the generic text.
            tracing::error!(error = %self.0, "internal error");
        }
        let body = ErrorBody {
            error: self.0.code(),
            message: if kind == ErrorKind::Internal {
                "internal error".into()
            } else {
                self.0.message_en()
            },
            message_ja: self.0.message_ja(),
        };
        (status_of(kind), Json(body)).into_response()
    }
}
