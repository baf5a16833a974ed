//! Restoring a person's earlier keys after a password reset (`mailbox::keys`
//! custody): what this liaison, as their facility's custodian, may approve,
//! and the approval. The person is told by mail (no patient data).

use axum::Json;
use axum::extract::State;
use mailbox::AccountId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiSession};

/// A restoration waiting for this custodian.
#[derive(Serialize, ToSchema)]
pub struct RecoveryJson {
    /// The person's account ID.
    account: String,
    name: String,
    /// `doctor`, `clerk` or `liaison`.
    role: String,
    /// When the operator's reset asked for it (Unix seconds).
    requested_at: i64,
    /// The person has signed in with the issued password and chosen their own;
    /// only then may it be approved.
    ready: bool,
    /// Earlier keys held for the person.
    keys: usize,
}

/// `GET /api/v1/recoveries`
#[utoipa::path(get, path = "/recoveries", tag = "recoveries",
    responses((status = 200, description = "Restorations this liaison may approve (their facility's custodian key)", body = Vec<RecoveryJson>)))]
pub async fn list(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
) -> Result<Json<Vec<RecoveryJson>>, ApiError> {
    let list = state.directory.restorations(&s).await?;
    Ok(Json(
        list.into_iter()
            .map(|r| RecoveryJson {
                account: r.account.as_str().into(),
                name: r.name,
                role: r.role.as_str().into(),
                requested_at: r.requested_at,
                ready: r.ready,
                keys: r.keys,
            })
            .collect(),
    ))
}

/// Keys given back by an approval.
#[derive(Serialize, ToSchema)]
pub struct ApprovedJson {
    /// How many earlier keys the person gets back (they open from their next sign-in).
    keys: usize,
}

/// `POST /api/v1/recoveries/{account}/approve`
#[utoipa::path(post, path = "/recoveries/{account}/approve", tag = "recoveries",
    params(("account" = String, Path, description = "The person's account ID")),
    responses((status = 200, description = "Restored: every earlier item opens from the person's next sign-in", body = ApprovedJson)))]
pub async fn approve(
    State(state): State<AppState>,
    ApiSession(s): ApiSession,
    ApiPath(account): ApiPath<String>,
) -> Result<Json<ApprovedJson>, ApiError> {
    let id = AccountId::parse(&account).map_err(|_| mailbox::Error::NotFound("restoration"))?;
    let keys = approve_and_tell(&state, &s, &id).await?;
    Ok(Json(ApprovedJson { keys }))
}

/// The approval and the person's notice, shared with the page.
pub(crate) async fn approve_and_tell(
    state: &AppState,
    s: &mailbox::CurrentSession,
    id: &AccountId,
) -> Result<usize, mailbox::Error> {
    let keys = state.directory.approve_restoration(s, id).await?;
    state.notices.keys_restored(id).await?;
    Ok(keys)
}
