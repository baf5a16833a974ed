//! `/api/v1/envelopes/{id}/zip`, `…/studies/{study}/zip` and
//! `…/studies/{study}/series/{series}/zip`: an item's files, one study or
//! one series as a stored ZIP streamed on the fly, resumable with `Range`
//! (the streaming itself is [`crate::http::archive_zip`]). The browser's links
//! on the thread page use the same routes (the session cookie authenticates
//! them, as for the PDF).
//!
//! Studies and series are named by their position in the sealed intake
//! record, not by their Study/Series Instance UIDs: DICOM's de-identification
//! profile treats UIDs as identifying (they often embed dates, device serials
//! or accession numbers), and URLs end up in logs and browser histories.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use mailbox::CurrentSession;
use mailbox::postroom::ArchiveScope;

use crate::AppState;
use crate::http::archive_zip;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiSession};
use crate::http::ranges::{RangeAnswers, RangeHeaders};

/// `GET /api/v1/envelopes/{id}/zip`
#[utoipa::path(get, path = "/envelopes/{id}/zip", tag = "envelopes", operation_id = "item_zip",
    params(("id" = String, Path, description = "Item ID"),
        RangeHeaders),
    responses(
        (status = 200, description = "Every attachment as a stored ZIP, DICOM files in study and series folders; `ETag`, `Accept-Ranges: bytes`, exact `Content-Length`. Audited as a download",
            content_type = "application/zip", body = crate::api::v1::openapi::Binary),
        RangeAnswers))]
pub async fn item(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    serve(&state, &headers, &session, id, ArchiveScope::Item).await
}

/// `GET /api/v1/envelopes/{id}/studies/{study}/zip`
#[utoipa::path(get, path = "/envelopes/{id}/studies/{study}/zip", tag = "envelopes", operation_id = "study_zip",
    params(("id" = String, Path, description = "Item ID"),
        ("study" = usize, Path, maximum = 2147483647, description = "The study's position in the item's `studies` (from 0)"),
        RangeHeaders),
    responses(
        (status = 200, description = "The study's files as a stored ZIP, one folder per series; `ETag`, `Accept-Ranges: bytes`, exact `Content-Length`. Audited as a download",
            content_type = "application/zip", body = crate::api::v1::openapi::Binary),
        RangeAnswers))]
pub async fn study(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiSession(session): ApiSession,
    ApiPath((id, study)): ApiPath<(String, usize)>,
) -> Result<Response, ApiError> {
    serve(&state, &headers, &session, id, ArchiveScope::Study(study)).await
}

/// `GET /api/v1/envelopes/{id}/studies/{study}/series/{series}/zip`
#[utoipa::path(get, path = "/envelopes/{id}/studies/{study}/series/{series}/zip", tag = "envelopes", operation_id = "series_zip",
    params(("id" = String, Path, description = "Item ID"),
        ("study" = usize, Path, maximum = 2147483647, description = "The study's position in the item's `studies` (from 0)"),
        ("series" = usize, Path, maximum = 2147483647, description = "The series' position in that study's `series` (from 0)"),
        RangeHeaders),
    responses(
        (status = 200, description = "The series' files as a stored ZIP; `ETag`, `Accept-Ranges: bytes`, exact `Content-Length`. Audited as a download",
            content_type = "application/zip", body = crate::api::v1::openapi::Binary),
        RangeAnswers))]
pub async fn series(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiSession(session): ApiSession,
    ApiPath((id, study, series)): ApiPath<(String, usize, usize)>,
) -> Result<Response, ApiError> {
    serve(
        &state,
        &headers,
        &session,
        id,
        ArchiveScope::Series { study, series },
    )
    .await
}

async fn serve(
    state: &AppState,
    headers: &HeaderMap,
    session: &CurrentSession,
    id: String,
    scope: ArchiveScope,
) -> Result<Response, ApiError> {
    let archive = state.postroom.archive(session, &id, scope).await?;
    Ok(archive_zip::respond_with(headers, &id, scope, archive))
}
