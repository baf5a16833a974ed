//! Who is asking for a page: the session with its language and frame, found
//! by typed extractors that send the browser to sign in (or to change an
//! issued password, or to enrol a second factor) instead.

use axum::extract::FromRequestParts;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mailbox::{CurrentSession, Error};

use super::{Chrome, message};
use crate::AppState;
use crate::http::session;
use crate::i18n::{Lang, Texts};

/// A signed-in page request: the session, the language and the frame.
pub struct PageCtx {
    pub session: CurrentSession,
    pub lang: Lang,
    pub chrome: Chrome,
}

impl PageCtx {
    /// The session behind a page, sending the browser to sign in, to change an
    /// issued password or to enrol a required second factor first.
    pub async fn ready(
        state: &AppState,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Self, Response> {
        let s = page_session(state, headers).await?;
        if s.account.must_change_password {
            return Err(Redirect::to("/password").into_response());
        }
        if s.enrolment_required {
            return Err(Redirect::to("/security").into_response());
        }
        Ok(Self::of(s, headers, query))
    }

    /// Like [`PageCtx::ready`] without the redirects (the password and
    /// enrolment pages themselves).
    pub async fn any(
        state: &AppState,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Self, Response> {
        let s = page_session(state, headers).await?;
        Ok(Self::of(s, headers, query))
    }

    fn of(session: CurrentSession, headers: &HeaderMap, query: Option<&str>) -> Self {
        let lang = Lang::from_request(headers, query);
        let chrome = Chrome::for_session(lang, &session, headers);
        Self {
            session,
            lang,
            chrome,
        }
    }

    #[allow(dead_code)] // used by the area modules as they land
    pub fn t(&self) -> &'static Texts {
        self.lang.texts()
    }

    #[allow(dead_code)]
    pub fn message(&self, e: &Error) -> String {
        message(self.lang, e)
    }
}

/// A page for a signed-in person who is ready to work ([`PageCtx::ready`]);
/// the language follows the request's `lang=` query, cookie or browser.
pub struct PageSession(pub PageCtx);

impl FromRequestParts<AppState> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        PageCtx::ready(state, &parts.headers, parts.uri.query())
            .await
            .map(Self)
    }
}

/// A page any signed-in person may see, even with an issued password or a
/// second factor still to enrol ([`PageCtx::any`]).
pub struct AnyPage(pub PageCtx);

impl FromRequestParts<AppState> for AnyPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        PageCtx::any(state, &parts.headers, parts.uri.query())
            .await
            .map(Self)
    }
}

/// The session behind a page request, or where to send the browser instead.
pub async fn page_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<CurrentSession, Response> {
    let Some(token) = session::token(headers) else {
        return Err(Redirect::to("/login").into_response());
    };
    match state.directory.authenticate(&token).await {
        Ok(s) => Ok(session::at_request(s, headers)),
        Err(Error::SessionExpired | Error::NotSignedIn | Error::AccountLocked) => Err((
            [(SET_COOKIE, session::clear_cookie())],
            Redirect::to("/login?expired=1"),
        )
            .into_response()),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}
