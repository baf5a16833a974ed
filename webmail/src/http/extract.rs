//! Typed extractors for the API: the session behind a request, found once
//! instead of in every handler. The pages' extractors (which also build the
//! page frame and redirect to sign-in) are in `crate::pages::ctx`.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use mailbox::{CurrentSession, Error};

use crate::AppState;
use crate::http::error::ApiError;
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
