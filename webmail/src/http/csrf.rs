//! CSRF tokens for the pages. SameSite=Strict cookies and the Origin check in
//! `same_origin_writes` already stop cross-site posts from browsers; a token in
//! every form is the third, independent guard the guideline expects.
//!
//! The token is derived from the session secret (HMAC-SHA-256 keyed by it), so
//! it needs no storage, changes with every sign-in, and cannot be computed by
//! anyone who cannot read the HttpOnly cookie.
//!
//! A token travels as the `csrf` field of a url-encoded form (checked by
//! middleware), as the first part of a multipart form (`CheckedMultipart`), or
//! as the `x-csrf-token` header from scripts. The sign-in steps and the e-mail
//! link have no session and rely on SameSite and the Origin check; so does the
//! JSON API, which systems call with bearer tokens.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use hmac::{Hmac, Mac};
use mailbox::SessionToken;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::http::session;
use crate::i18n::Lang;

/// The hidden form field every page form carries.
pub const FIELD: &str = "csrf";
/// Scripts on the pages send the token in this header instead.
pub const HEADER: &str = "x-csrf-token";

/// Page posts that have no session yet (the sign-in steps, the e-mail link).
const EXEMPT: &[&str] = &["/login", "/login/second-factor", "/email/confirm"];

/// Small forms are read whole to find the token; anything larger must be
/// multipart (whose handlers check the first part) or send the header.
const FORM_LIMIT: usize = 1024 * 1024;

pub fn token_for(session: &SessionToken) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(session.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(b"renkei-csrf-v1");
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `provided` is the token of the session this request carries.
pub fn valid(headers: &HeaderMap, provided: &str) -> bool {
    let Some(token) = session::token(headers) else {
        return false;
    };
    let expected = token_for(&token);
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(provided.trim().as_bytes()))
}

/// The refusal, as a page: the person most likely left a form open across a
/// sign-out, so the text says what to do.
pub fn refused(headers: &HeaderMap) -> Response {
    let lang = Lang::from_request(headers, None);
    tracing::warn!("refused a page post without a valid CSRF token");
    let text = match lang {
        Lang::Ja => {
            "送信を受け付けませんでした。フォームの有効期限が切れたか、このサイト以外から送信されました。ページを開き直してから、もう一度操作してください。"
        }
        Lang::En => {
            "The form was refused: it has expired or was sent from outside this site. Reload the page and try again."
        }
    };
    let body = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>403</title><link rel=\"stylesheet\" href=\"/static/renkei.css\"></head><body><main><p class=\"error\" role=\"alert\" id=\"error\">{text}</p><p><a href=\"/\">Renkei</a></p></main></body></html>",
        lang.code()
    );
    (StatusCode::FORBIDDEN, Html(body)).into_response()
}

/// Middleware on the page routes: every state-changing request carries the
/// token in the header or, for url-encoded forms, in the `csrf` field.
/// Multipart posts pass through to handlers that take [`CheckedMultipart`].
pub async fn require_token(request: Request, next: Next) -> Response {
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let path = request.uri().path();
    if !writes || path.starts_with("/api/") || EXEMPT.contains(&path) {
        return next.run(request).await;
    }
    if let Some(h) = request.headers().get(HEADER).and_then(|v| v.to_str().ok())
        && valid(request.headers(), h)
    {
        return next.run(request).await;
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        return next.run(request).await;
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return refused(request.headers());
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "form too large; attachments must be sent as multipart/form-data",
        )
            .into_response();
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let ok = fields
        .iter()
        .find(|(k, _)| k == FIELD)
        .is_some_and(|(_, v)| valid(&parts.headers, v));
    if !ok {
        return refused(&parts.headers);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// A page's multipart form whose first part is the `csrf` field (browsers send
/// fields in document order, so the hidden input goes first in the form). The
/// rest streams on to the handler untouched.
pub struct CheckedMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for CheckedMultipart {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let header_ok = headers
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|h| valid(&headers, h));
        let mut multipart = Multipart::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if header_ok {
            return Ok(Self(multipart));
        }
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some(FIELD) => match field.text().await {
                Ok(v) if valid(&headers, &v) => Ok(Self(multipart)),
                _ => Err(refused(&headers)),
            },
            _ => Err(refused(&headers)),
        }
    }
}
