//! `/api/v1/me/…` second factors and app passwords, and the operator's view.
//!
//! The browser half of WebAuthn is `static/webauthn.js`, served from this
//! origin so the CSP stays `'self'`: base64url ↔ ArrayBuffer around
//! `navigator.credentials.create/get`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mailbox::Error;
use mailbox::auth::PendingToken;
use mailbox::records::Actor;
use mailbox::webauthn_rs::prelude::{
    CreationChallengeResponse, RegisterPublicKeyCredential, RequestChallengeResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiSession};

#[derive(Serialize, ToSchema)]
pub struct AppPasswordJson {
    id: String,
    name: String,
    created_at: i64,
    last_used_at: Option<i64>,
    last_used_from: Option<String>,
    /// Unix seconds after which it no longer opens mail (90 days after it was made).
    expires_at: i64,
}

impl From<mailbox::auth::AppPasswordView> for AppPasswordJson {
    fn from(v: mailbox::auth::AppPasswordView) -> Self {
        Self {
            id: v.id,
            name: v.name,
            created_at: v.created_at,
            last_used_at: v.last_used_at,
            last_used_from: v.last_used_from,
            expires_at: v.expires_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct FactorsJson {
    security_keys: Vec<SecurityKeyJson>,
    required: bool,
    totp: bool,
    totp_pending: bool,
    recovery_codes_left: i64,
    app_passwords: Vec<AppPasswordJson>,
}

/// `GET /api/v1/me/factors`
#[utoipa::path(get, path = "/me/factors", tag = "factors",
    responses((status = 200, description = "The person's second factors and app passwords", body = FactorsJson)))]
pub async fn factors(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<Json<FactorsJson>, ApiError> {
    let v = state.directory.factors(&s).await?;
    Ok(Json(FactorsJson {
        security_keys: v.security_keys.into_iter().map(Into::into).collect(),
        required: v.required,
        totp: v.totp,
        totp_pending: v.totp_pending,
        recovery_codes_left: v.recovery_codes_left,
        app_passwords: v.app_passwords.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct TotpJson {
    secret: String,
    otpauth_uri: String,
    qr_svg: String,
}

/// `POST /api/v1/me/totp` — starts an enrolment.
#[utoipa::path(post, path = "/me/totp", tag = "factors",
    responses((status = 200, description = "A new secret, its otpauth URI and QR code", body = TotpJson)))]
pub async fn begin_totp(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<Json<TotpJson>, ApiError> {
    let e = state.directory.begin_totp(&s).await?;
    Ok(Json(TotpJson {
        secret: e.secret_base32,
        otpauth_uri: e.otpauth_uri,
        qr_svg: e.qr_svg,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct Code {
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Shown once; only their hashes are kept.
    recovery_codes: Vec<String>,
}

/// `POST /api/v1/me/totp/confirm`
#[utoipa::path(post, path = "/me/totp/confirm", tag = "factors", request_body = Code,
    responses((status = 200, description = "Enrolled; the recovery codes, shown once", body = RecoveryCodes)))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiJson(body): ApiJson<Code>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let codes = state.directory.confirm_totp(&s, &body.code).await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// `DELETE /api/v1/me/totp`
#[utoipa::path(delete, path = "/me/totp", tag = "factors",
    responses((status = 204, description = "Removed")))]
pub async fn remove_totp(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<StatusCode, ApiError> {
    state.directory.remove_totp(&s).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/me/recovery-codes` — new codes; the old ones stop working.
#[utoipa::path(post, path = "/me/recovery-codes", tag = "factors",
    responses((status = 200, description = "New codes, shown once", body = RecoveryCodes)))]
pub async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let codes = state.directory.regenerate_recovery_codes(&s).await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct NewAppPassword {
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedAppPassword {
    #[serde(flatten)]
    app_password: AppPasswordJson,
    /// Shown once.
    password: String,
}

/// `GET /api/v1/me/app-passwords`
#[utoipa::path(get, path = "/me/app-passwords", tag = "factors",
    responses((status = 200, description = "The person's app passwords (never the secrets)", body = Vec<AppPasswordJson>)))]
pub async fn app_passwords(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<Json<Vec<AppPasswordJson>>, ApiError> {
    s.require_ready()?;
    let v = state.directory.factors(&s).await?;
    Ok(Json(v.app_passwords.into_iter().map(Into::into).collect()))
}

/// `POST /api/v1/me/app-passwords`
#[utoipa::path(post, path = "/me/app-passwords", tag = "factors", request_body = NewAppPassword,
    responses((status = 201, description = "Made; the password is in this answer only", body = CreatedAppPassword)))]
pub async fn create_app_password(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiJson(body): ApiJson<NewAppPassword>,
) -> Result<(StatusCode, Json<CreatedAppPassword>), ApiError> {
    let (view, secret) = state.directory.create_app_password(&s, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAppPassword {
            app_password: view.into(),
            password: secret.expose().to_string(),
        }),
    ))
}

/// `DELETE /api/v1/me/app-passwords/{id}` — revoked at once.
#[utoipa::path(delete, path = "/me/app-passwords/{id}", tag = "factors",
    params(("id" = String, Path, description = "App password ID")),
    responses((status = 204, description = "Revoked at once")))]
pub async fn revoke_app_password(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.directory.revoke_app_password(&s, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct FactorSummaryJson {
    account: String,
    totp: bool,
    recovery_codes_left: i64,
    app_passwords: i64,
    security_keys: i64,
}

fn operator(s: &mailbox::CurrentSession) -> Result<(), Error> {
    s.require_operator().map(|_| ())
}

/// `GET /api/v1/admin/factors` — which accounts have which factors.
#[utoipa::path(get, path = "/admin/factors", tag = "admin",
    responses((status = 200, description = "Which account has which factors (operator)", body = Vec<FactorSummaryJson>)))]
pub async fn admin_factors(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<Json<Vec<FactorSummaryJson>>, ApiError> {
    operator(&s)?;
    let rows = state.directory.factor_summaries().await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| FactorSummaryJson {
                account: r.account_id,
                totp: r.totp,
                recovery_codes_left: r.recovery_codes_left,
                app_passwords: r.app_passwords,
                security_keys: r.security_keys,
            })
            .collect(),
    ))
}

/// `POST /api/v1/admin/accounts/{id}/second-factor/reset`
#[utoipa::path(post, path = "/admin/accounts/{id}/second-factor/reset", tag = "admin",
    params(("id" = String, Path, description = "Account ID")),
    responses((status = 204, description = "Factors removed; the person enrols again")))]
pub async fn admin_reset(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    operator(&s)?;
    let a = state
        .directory
        .reset_account_factor(Actor::Session(&s), &id, || Ok(()))
        .await?;
    state
        .notices
        .security_notice(&a.id, "second_factor_reset")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- security keys and passkeys (WebAuthn) ----------------------------------------

#[derive(Serialize, ToSchema)]
pub struct SecurityKeyJson {
    id: String,
    name: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl From<mailbox::auth::SecurityKeyView> for SecurityKeyJson {
    fn from(v: mailbox::auth::SecurityKeyView) -> Self {
        Self {
            id: v.id,
            name: v.name,
            created_at: v.created_at,
            last_used_at: v.last_used_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct KeyName {
    name: String,
}

/// `POST /api/v1/me/webauthn/register` — the browser's `navigator.credentials.create` options.
#[utoipa::path(post, path = "/me/webauthn/register", tag = "factors", request_body = KeyName,
    responses((status = 200, description = "`navigator.credentials.create` options", body = Object)))]
pub async fn begin_webauthn(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiJson(body): ApiJson<KeyName>,
) -> Result<Json<CreationChallengeResponse>, ApiError> {
    Ok(Json(state.directory.begin_webauthn(&s, &body.name).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct FinishRegistration {
    /// The browser's `navigator.credentials.create` answer.
    #[schema(value_type = Object)]
    credential: RegisterPublicKeyCredential,
}

#[derive(Serialize, ToSchema)]
pub struct RegisteredKey {
    #[serde(flatten)]
    key: SecurityKeyJson,
    /// Only when this was the account's first factor; shown once.
    recovery_codes: Option<Vec<String>>,
}

/// `POST /api/v1/me/webauthn/register/finish`
#[utoipa::path(post, path = "/me/webauthn/register/finish", tag = "factors", request_body = FinishRegistration,
    responses((status = 201, description = "Registered", body = RegisteredKey)))]
pub async fn finish_webauthn(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiJson(body): ApiJson<FinishRegistration>,
) -> Result<(StatusCode, Json<RegisteredKey>), ApiError> {
    let (key, codes) = state
        .directory
        .finish_webauthn(&s, &body.credential)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredKey {
            key: key.into(),
            recovery_codes: codes,
        }),
    ))
}

/// `GET /api/v1/me/webauthn`
#[utoipa::path(get, path = "/me/webauthn", tag = "factors",
    responses((status = 200, description = "The person's security keys and passkeys", body = Vec<SecurityKeyJson>)))]
pub async fn security_keys(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<Json<Vec<SecurityKeyJson>>, ApiError> {
    let v = state.directory.factors(&s).await?;
    Ok(Json(v.security_keys.into_iter().map(Into::into).collect()))
}

/// `PUT /api/v1/me/webauthn/{id}` — renames.
#[utoipa::path(put, path = "/me/webauthn/{id}", tag = "factors", request_body = KeyName,
    params(("id" = String, Path, description = "Security key ID")),
    responses((status = 204, description = "Renamed")))]
pub async fn rename_webauthn(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<KeyName>,
) -> Result<StatusCode, ApiError> {
    state.directory.rename_webauthn(&s, &id, &body.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/me/webauthn/{id}`
#[utoipa::path(delete, path = "/me/webauthn/{id}", tag = "factors",
    params(("id" = String, Path, description = "Security key ID")),
    responses((status = 204, description = "Removed")))]
pub async fn remove_webauthn(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.directory.remove_webauthn(&s, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct Pending {
    pending: String,
}

/// `POST /api/v1/session/webauthn` — the challenge for the second step.
#[utoipa::path(post, path = "/session/webauthn", tag = "session", request_body = Pending, security(()),
    responses((status = 200, description = "`navigator.credentials.get` options for the second step", body = Object)))]
pub async fn sign_in_challenge(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Pending>,
) -> Result<Json<RequestChallengeResponse>, ApiError> {
    Ok(Json(
        state
            .directory
            .webauthn_challenge(&PendingToken::from_client(&body.pending))
            .await?,
    ))
}

/// `POST /api/v1/session/reauth/webauthn` — the challenge for re-authenticating.
#[utoipa::path(post, path = "/session/reauth/webauthn", tag = "session",
    responses((status = 200, description = "`navigator.credentials.get` options for re-authenticating", body = Object)))]
pub async fn reauth_challenge(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<Json<RequestChallengeResponse>, ApiError> {
    Ok(Json(state.directory.reauth_webauthn_challenge(&s).await?))
}
