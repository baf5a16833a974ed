//! The JSON API under `/api/v1`, over the same directory service as the pages.
//!
//! `POST /api/v1/session` answers 200 with a session, or 202 `{pending}` when a
//! second factor follows (`/session/second-factor`); `/session/reauth`
//! re-authenticates before sensitive actions.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mailbox::auth::{Peer, PendingToken, SecondFactor, SignInStep};
use mailbox::{Account, CurrentSession, Error, Password, SessionToken};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiSession};
use crate::http::session;
use crate::{AppState, RemoteAddr};

#[derive(Serialize, ToSchema)]
pub struct AccountView {
    id: String,
    name: String,
    role: &'static str,
    facility: Option<String>,
    email: Option<String>,
    email_verified: bool,
    must_change_password: bool,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.display_grouped(),
            name: a.name.clone(),
            role: a.role.as_str(),
            facility: a.facility.as_ref().map(|c| c.to_string()),
            email: a.email.clone(),
            email_verified: a.email_verified,
            must_change_password: a.must_change_password,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct SignIn {
    id: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    account: AccountView,
    must_change_password: bool,
    /// A second factor must be enrolled before anything else.
    second_factor_enrolment_required: bool,
    /// For clients that cannot keep cookies: send as `Authorization: Bearer …`.
    token: String,
    idle_timeout_secs: u64,
}

/// Answer to a right password when a second factor must follow (202).
#[derive(Serialize, ToSchema)]
pub struct SecondFactorNeeded {
    second_factor_required: bool,
    /// Send back with the code to `/api/v1/session/second-factor`.
    pending: String,
    methods: Vec<&'static str>,
}

async fn signed_in(
    state: &AppState,
    token: &SessionToken,
    s: &CurrentSession,
    headers: &HeaderMap,
) -> Response {
    let out = SignedIn {
        account: AccountView::from(&s.account),
        must_change_password: s.account.must_change_password,
        second_factor_enrolment_required: s.enrolment_required,
        token: token.expose().to_string(),
        idle_timeout_secs: state.directory.auth_policy().idle_timeout.as_secs(),
    };
    let mut response = ([(SET_COOKIE, session::set_cookie(token))], Json(out)).into_response();
    if let Some(device) = session::device_cookie(&state.directory, &s.account.id, headers).await
        && let Ok(v) = device.parse()
    {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

/// `POST /api/v1/session` — the password step. Without a second factor the
/// session starts (200); with one, a pending sign-in is returned (202) and no
/// session exists until `/api/v1/session/second-factor`.
#[utoipa::path(post, path = "/session", tag = "session", request_body = SignIn, security(()),
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SignedIn),
        (status = 202, description = "The password was right; a second factor must follow", body = SecondFactorNeeded),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    remote: Option<axum::Extension<RemoteAddr>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let password = Password::new(body.password);
    let remote = remote.map(|r| r.0.0.ip().to_string());
    let peer = Peer::api(remote).with_device(session::device(&headers));
    match state
        .directory
        .sign_in_password(&body.id, &password, peer)
        .await?
    {
        SignInStep::Done(token, s) => Ok(signed_in(&state, &token, &s, &headers).await),
        SignInStep::SecondFactor { pending, methods } => Ok((
            StatusCode::ACCEPTED,
            Json(SecondFactorNeeded {
                second_factor_required: true,
                pending: pending.expose().to_string(),
                methods,
            }),
        )
            .into_response()),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct FactorInput {
    code: Option<String>,
    recovery_code: Option<String>,
    /// The browser's answer to `/session/webauthn` (or `/session/reauth/webauthn`).
    #[schema(value_type = Option<Object>)]
    webauthn: Option<Box<mailbox::webauthn_rs::prelude::PublicKeyCredential>>,
}

impl FactorInput {
    fn factor(self) -> Result<SecondFactor, Error> {
        match (self.code, self.recovery_code, self.webauthn) {
            (Some(c), None, None) => Ok(SecondFactor::Totp(c)),
            (None, Some(r), None) => Ok(SecondFactor::RecoveryCode(r)),
            (None, None, Some(w)) => Ok(SecondFactor::WebAuthn(w)),
            _ => Err(Error::invalid(
                "code",
                "send one of `code`, `recovery_code` or `webauthn`",
                "確認コードまたはリカバリーコードのどちらか一方を入力してください。",
            )),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct SecondStep {
    pending: String,
    #[serde(flatten)]
    factor: FactorInput,
}

/// `POST /api/v1/session/second-factor`
#[utoipa::path(post, path = "/session/second-factor", tag = "session", request_body = SecondStep, security(()),
    responses((status = 200, description = "Signed in; the session cookie is set", body = SignedIn)))]
pub async fn second_factor(
    State(state): State<AppState>,
    remote: Option<axum::Extension<RemoteAddr>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SecondStep>,
) -> Result<Response, ApiError> {
    let remote = remote.map(|r| r.0.0.ip().to_string());
    let factor = body.factor.factor()?;
    let (token, s) = state
        .directory
        .complete_sign_in(
            &PendingToken::from_client(&body.pending),
            &factor,
            Peer::api(remote),
        )
        .await?;
    Ok(signed_in(&state, &token, &s, &headers).await)
}

/// What re-authentication takes: the password, or one second factor.
#[derive(Deserialize, ToSchema)]
pub struct ReauthInput {
    password: Option<String>,
    #[serde(flatten)]
    factor: FactorInput,
}

/// `POST /api/v1/session/reauth` — confirms the person before sensitive
/// actions: a whole-item or whole-study ZIP, a forward, a PDF export, a
/// deletion request (refused with `reauthentication_required` more than five
/// minutes after sign-in), and for accounts with a second factor, changing
/// the password, the address or the factors (which take the factor).
#[utoipa::path(post, path = "/session/reauth", tag = "session", request_body = ReauthInput,
    responses((status = 204, description = "Re-authenticated for the next five minutes")))]
pub async fn reauth(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiJson(body): ApiJson<ReauthInput>,
) -> Result<StatusCode, ApiError> {
    let proof = match body.password {
        Some(p) => mailbox::auth::Proof::Password(mailbox::Password::new(p)),
        None => mailbox::auth::Proof::Factor(body.factor.factor()?),
    };
    state.directory.prove(&s, &proof).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/session`
#[utoipa::path(delete, path = "/session", tag = "session",
    responses((status = 204, description = "Signed out; the session and its keys are gone")))]
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = session::token(&headers).ok_or(Error::NotSignedIn)?;
    state.directory.sign_out(&token).await?;
    Ok((
        [(SET_COOKIE, session::clear_cookie())],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/password`
#[utoipa::path(post, path = "/password", tag = "account", request_body = ChangePassword,
    responses((status = 204, description = "Changed; other sessions of the account end")))]
pub async fn change_password(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    state
        .directory
        .change_password(
            &s,
            &Password::new(body.current_password),
            &Password::new(body.new_password),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    #[serde(flatten)]
    account: AccountView,
    /// When the session ends unless used again (Unix seconds).
    idle_deadline: i64,
}

/// `GET /api/v1/me` — refused with `password_change_required` until the issued
/// password is changed, like everything else but the password and sign-out.
#[utoipa::path(get, path = "/me", tag = "account",
    responses((status = 200, description = "The signed-in account", body = Me)))]
pub async fn me(ApiSession(s): ApiSession) -> Result<Json<Me>, ApiError> {
    let account = s.require_ready()?;
    Ok(Json(Me {
        account: AccountView::from(account),
        idle_deadline: s.idle_deadline,
    }))
}
