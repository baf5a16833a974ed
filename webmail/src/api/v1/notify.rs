//! `/api/v1` for notification settings: the address (with its confirmation link),
//! the mode, and the notices that could not be sent.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mailbox::notify::{NotifyMode, NotifyReason, kind_labels};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiSession};

#[derive(Deserialize, ToSchema)]
pub struct ChangeEmail {
    address: String,
}

/// `PUT /api/v1/me/email` — the new address gets a confirmation link and is used
/// only once it has been opened.
#[utoipa::path(put, path = "/me/email", tag = "notifications", request_body = ChangeEmail,
    responses((status = 202, description = "A confirmation link is mailed; the address is used once it is opened")))]
pub async fn change_email(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiJson(body): ApiJson<ChangeEmail>,
) -> Result<StatusCode, ApiError> {
    state.directory.require_recent_reauth(&s)?;
    state
        .notices
        .request_email_change(&s, &body.address)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
pub struct ConfirmEmail {
    token: String,
}

#[derive(Serialize, ToSchema)]
pub struct Confirmed {
    account: String,
}

/// `POST /api/v1/email/confirm` — no sign-in needed: the token is the proof.
#[utoipa::path(post, path = "/email/confirm", tag = "notifications", request_body = ConfirmEmail, security(()),
    responses((status = 200, description = "The address is confirmed", body = Confirmed)))]
pub async fn confirm_email(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ConfirmEmail>,
) -> Result<Json<Confirmed>, ApiError> {
    let id = state.notices.confirm_email(&body.token).await?;
    Ok(Json(Confirmed {
        account: id.display_grouped(),
    }))
}

#[derive(Serialize, ToSchema)]
#[schema(as = NotificationSettings)]
pub struct Settings {
    email: Option<String>,
    email_verified: bool,
    /// Waiting for its confirmation link; not used until then.
    pending_email: Option<String>,
    mode: String,
}

/// `GET /api/v1/me/notifications`
#[utoipa::path(get, path = "/me/notifications", tag = "notifications",
    responses((status = 200, description = "Address, its confirmation and the mode", body = Settings)))]
pub async fn settings(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<Json<Settings>, ApiError> {
    let n = state.notices.settings(&s).await?;
    Ok(Json(Settings {
        email: n.email,
        email_verified: n.email_verified,
        pending_email: n.pending_email,
        mode: n.mode,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct SetMode {
    /// `immediate`, `digest` or `off`.
    #[schema(example = "digest", pattern = "^(immediate|digest|off)$")]
    mode: String,
}

/// `PUT /api/v1/me/notifications` — `immediate`, `digest` or `off`.
#[utoipa::path(put, path = "/me/notifications", tag = "notifications", request_body = SetMode,
    responses((status = 204, description = "Saved")))]
pub async fn set_mode(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiJson(body): ApiJson<SetMode>,
) -> Result<StatusCode, ApiError> {
    state
        .notices
        .set_mode(&s, NotifyMode::parse(&body.mode)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A notice that could not be sent: what it was about, never to whom it went.
#[derive(Serialize, ToSchema)]
pub struct FailedNotice {
    id: String,
    account: String,
    reason: String,
    kind_ja: &'static str,
    kind_en: &'static str,
    thread_id: Option<String>,
    envelope_id: Option<String>,
    attempts: i64,
    last_error: Option<String>,
    created_at: i64,
}

impl From<mailbox::notify::FailedNotice> for FailedNotice {
    fn from(r: mailbox::notify::FailedNotice) -> Self {
        let (kind_ja, kind_en) = kind_labels(r.kind.as_deref());
        Self {
            id: r.id,
            account: r.account_id,
            reason: NotifyReason::parse(&r.reason)
                .map_or("unknown", NotifyReason::as_str)
                .into(),
            kind_ja,
            kind_en,
            thread_id: r.thread_id,
            envelope_id: r.envelope_id,
            attempts: r.attempts,
            last_error: r.last_error,
            created_at: r.created_at,
        }
    }
}

/// `GET /api/v1/me/notifications/failed`
#[utoipa::path(get, path = "/me/notifications/failed", tag = "notifications",
    responses((status = 200, description = "The person's notices that could not be sent", body = Vec<FailedNotice>)))]
pub async fn failed_mine(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<Json<Vec<FailedNotice>>, ApiError> {
    let rows = state.notices.failed_for(&s).await?;
    Ok(Json(rows.into_iter().map(FailedNotice::from).collect()))
}

/// `GET /api/v1/admin/notifications/failed` — the operator's view of every
/// failed notice.
#[utoipa::path(get, path = "/admin/notifications/failed", tag = "admin",
    responses((status = 200, description = "Every failed notice (operator)", body = Vec<FailedNotice>)))]
pub async fn failed_all(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<Json<Vec<FailedNotice>>, ApiError> {
    let rows = state.notices.failed_all(&s).await?;
    Ok(Json(rows.into_iter().map(FailedNotice::from).collect()))
}
