//! Typed extractors for the API: the session behind a request, found once
//! instead of in every handler, and the path, query, JSON and multipart
//! extractors whose refusals are the API's JSON error body
//! ([`RequestError`]) instead of axum's plain text. The pages' extractors
//! (which also build the page frame and redirect to sign-in) are in
//! `crate::pages::ctx`.

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use mailbox::{CurrentSession, Error};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::http::error::{ApiError, RequestError};
use crate::http::session;

/// The signed-in session of an API request (bearer token or cookie), as of
/// this request's address. Refused as `not_signed_in` (401) without a token,
/// and with the directory's error when the token is no longer good.
pub struct ApiSession(pub CurrentSession);

impl FromRequestParts<AppState> for ApiSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        api_session(state, &parts.headers).await.map(Self)
    }
}

/// The session behind an API request's headers.
pub async fn api_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<CurrentSession, ApiError> {
    let token = session::token(headers).ok_or(Error::NotSignedIn)?;
    let s = state.directory.authenticate(&token).await?;
    Ok(session::at_request(s, headers))
}

/// What axum's rejections say, as the API's refusal: a 500 stays internal.
fn refusal(
    status: StatusCode,
    text: String,
    bad_request: fn(String) -> RequestError,
) -> RequestError {
    match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => RequestError::MediaType("application/json"),
        StatusCode::PAYLOAD_TOO_LARGE => RequestError::TooLarge,
        s if s.is_server_error() => RequestError::Internal(text),
        _ => bad_request(text),
    }
}

/// Path parameters; a segment that does not parse is 400 `invalid_path`.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = RequestError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, RequestError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(Self(p.0)),
            Err(e @ PathRejection::MissingPathParams(_)) => {
                Err(RequestError::Internal(e.body_text()))
            }
            Err(e) => Err(refusal(e.status(), e.body_text(), RequestError::Path)),
        }
    }
}

/// The query string; a missing or malformed parameter is 400 `invalid_query`.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = RequestError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, RequestError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e: QueryRejection| refusal(e.status(), e.body_text(), RequestError::Query))
    }
}

/// A JSON body: 400 `invalid_body` when it does not parse or fit, 415
/// without `Content-Type: application/json`, 413 when too large.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = RequestError;

    async fn from_request(req: Request, state: &S) -> Result<Self, RequestError> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|j| Self(j.0))
            .map_err(|e: JsonRejection| refusal(e.status(), e.body_text(), RequestError::Body))
    }
}

/// A multipart body, read part by part by the handler; a request that is not
/// `multipart/form-data` with a boundary is 415 `unsupported_media_type`.
pub struct ApiMultipart(pub axum::extract::Multipart);

impl<S> FromRequest<S> for ApiMultipart
where
    S: Send + Sync,
{
    type Rejection = RequestError;

    async fn from_request(req: Request, state: &S) -> Result<Self, RequestError> {
        axum::extract::Multipart::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e: MultipartRejection| match e {
                MultipartRejection::InvalidBoundary(_) => {
                    RequestError::MediaType("multipart/form-data")
                }
                e => refusal(e.status(), e.body_text(), RequestError::Body),
            })
    }
}
