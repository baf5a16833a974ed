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
        let reauth = matches!(self.0, Error::ReauthRequired);
        let mut response = (status_of(kind), Json(body)).into_response();
        if reauth {
            response.extensions_mut().insert(ReauthNeeded);
        }
        response
    }
}

/// Marks an answer refused for want of a recent re-authentication, so that a
/// page navigation is sent to `/reauth` (`pages::reauth::redirect_to_reauth`).
#[derive(Debug, Clone, Copy)]
pub struct ReauthNeeded;

/// A request the API could not take as it came: its path, query or body does
/// not fit the operation, or there is no such operation. Answered with the
/// same `{error, message, message_ja}` body as every other refusal.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("the path does not fit this operation: {0}")]
    Path(String),
    #[error("the query does not fit this operation: {0}")]
    Query(String),
    #[error("the body does not fit this operation: {0}")]
    Body(String),
    #[error("the body must be sent as {0}")]
    MediaType(&'static str),
    #[error("the body is too large")]
    TooLarge,
    #[error("there is no such API path")]
    NoRoute,
    #[error("this method is not allowed on this path")]
    Method,
    #[error("cross-origin request refused")]
    CrossOrigin,
    /// The router and a handler disagree; the details go to the log.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RequestError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Path(_) | Self::Query(_) | Self::Body(_) => StatusCode::BAD_REQUEST,
            Self::MediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::Method => StatusCode::METHOD_NOT_ALLOWED,
            Self::CrossOrigin => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code in the body's `error`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Path(_) => "invalid_path",
            Self::Query(_) => "invalid_query",
            Self::Body(_) => "invalid_body",
            Self::MediaType(_) => "unsupported_media_type",
            Self::TooLarge => "payload_too_large",
            Self::NoRoute => "unknown_path",
            Self::Method => "method_not_allowed",
            Self::CrossOrigin => "cross_origin",
            Self::Internal(_) => "internal",
        }
    }

    fn message_ja(&self) -> String {
        match self {
            Self::Path(_) => "URL のパスがこの操作に合いません。".into(),
            Self::Query(_) => "URL のクエリ（? 以降）がこの操作に合いません。".into(),
            Self::Body(_) => "送信された内容がこの操作に合いません。".into(),
            Self::MediaType(t) => format!("内容は {t} で送信してください。"),
            Self::TooLarge => "送信された内容が大きすぎます。".into(),
            Self::NoRoute => "この API のパスはありません。".into(),
            Self::Method => "このパスではこのメソッドは使えません。".into(),
            Self::CrossOrigin => "別のサイトからの操作は受け付けません。".into(),
            Self::Internal(_) => "内部エラーが発生しました。".into(),
        }
    }
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let message = if let Self::Internal(e) = &self {
            tracing::error!(error = %e, "internal error reading a request");
            "internal error".into()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            error: self.code(),
            message,
            message_ja: self.message_ja(),
        };
        (self.status(), Json(body)).into_response()
    }
}

/// A JSON 404 for a path under `/api/v1` that names no operation.
pub async fn no_such_path() -> RequestError {
    RequestError::NoRoute
}

/// A JSON 405 for a method the path does not have (axum adds `Allow`).
pub async fn no_such_method() -> RequestError {
    RequestError::Method
}

/// A refusal decided at the edge (no domain error behind it), in the same
/// JSON shape: the Idempotency-Key checks.
pub(crate) fn refusal(
    status: StatusCode,
    code: &'static str,
    message: String,
    message_ja: String,
) -> Response {
    let body = ErrorBody {
        error: code,
        message,
        message_ja,
    };
    (status, Json(body)).into_response()
}
