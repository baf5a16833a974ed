//! Records on the API: the audit trail for clerks and the operator, statistics
//! and usage as CSV downloads, and the operator's patient deletion requests.

use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use mailbox::records::Actor;
use mailbox::{Error, FacilityCode};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, ApiSession};

fn day(field: &'static str, s: &str) -> Result<NaiveDate, Error> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        Error::invalid(
            field,
            format!("{field} must look like 2026-11-25"),
            "日付は 2026-11-25 の形式で指定してください。",
        )
    })
}

/// A CSV download: UTF-8 with a byte order mark, named `file`.
fn csv(body: String, file: &str) -> Response {
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// First day, `YYYY-MM-DD` (JST)
    #[param(format = Date, example = "2026-11-01")]
    from: String,
    /// Last day, `YYYY-MM-DD` (JST)
    #[param(format = Date, example = "2026-11-30")]
    to: String,
    /// `csv` for a download; JSON otherwise.
    format: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct AuditLine {
    seq: i64,
    at: i64,
    actor: Option<String>,
    role: Option<String>,
    facility: Option<String>,
    action: String,
    item: Option<String>,
    detail: Option<String>,
    remote_addr: Option<String>,
    hash: String,
}

/// `GET /api/v1/audit?from=2026-11-01&to=2026-11-30[&format=csv]` — the
/// operator sees every entry, a clerk the entries of their facility.
#[utoipa::path(get, path = "/audit", tag = "records", params(PeriodQuery),
    responses((status = 200, description = "The entries (JSON, or CSV with `format=csv`); the export is itself audited",
        content(
            (Vec<AuditLine> = "application/json"),
            (String = "text/csv"),
        ))))]
pub async fn audit(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Response, ApiError> {
    let rows = state
        .audit
        .export(
            Actor::Session(&session),
            day("from", &q.from)?,
            day("to", &q.to)?,
        )
        .await?;
    if q.format.as_deref() == Some("csv") {
        return Ok(csv(mailbox::records::audit::to_csv(&rows), "audit.csv"));
    }
    let lines: Vec<AuditLine> = rows
        .into_iter()
        .map(|r| AuditLine {
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            role: r.role,
            facility: r.facility,
            action: r.action,
            item: r.item,
            detail: r.detail,
            remote_addr: r.remote_addr,
            hash: r.hash,
        })
        .collect();
    Ok(axum::Json(lines).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// `YYYY-MM` (JST)
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$", example = "2026-11")]
    month: String,
}

/// `GET /api/v1/stats/readings.csv?month=2026-11`
#[utoipa::path(get, path = "/stats/readings.csv", tag = "stats", params(MonthQuery),
    responses((status = 200, description = "Reading statistics as CSV (UTF-8 with BOM)", content_type = "text/csv", body = String)))]
pub async fn readings_csv(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> Result<Response, ApiError> {
    let rows = state
        .threads
        .export_reading_stats(&session, &q.month)
        .await?;
    let mut out = String::from(mailbox::records::csv::BOM);
    out.push_str(&mailbox::records::csv::line(&[
        "集計月 / month",
        "読影医 / reader",
        "施設 / facility",
        "読影件数 / reports",
    ]));
    let mut total = 0;
    for r in &rows {
        total += r.reports;
        out.push_str(&mailbox::records::csv::line(&[
            q.month.trim(),
            &r.reader_id,
            &r.facility_code,
            &r.reports.to_string(),
        ]));
    }
    out.push_str(&mailbox::records::csv::line(&[
        q.month.trim(),
        "合計 / total",
        "",
        &total.to_string(),
    ]));
    Ok(csv(out, "readings.csv"))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// The facility code: required of the operator; a clerk gets their own
    /// (naming another facility is 403)
    facility: Option<String>,
}

impl UsageQuery {
    pub(crate) fn facility(&self) -> Result<Option<FacilityCode>, Error> {
        Ok(self
            .facility
            .as_deref()
            .map(FacilityCode::parse)
            .transpose()?)
    }
}

/// `GET /api/v1/stats/usage.csv[?facility=CODE]` — a clerk's own facility, or
/// the one the operator names.
#[utoipa::path(get, path = "/stats/usage.csv", tag = "stats", params(UsageQuery),
    responses((status = 200, description = "Per-account usage as CSV (UTF-8 with BOM)", content_type = "text/csv", body = String)))]
pub async fn usage_csv(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Response, ApiError> {
    let facility = q.facility()?;
    let rows = state
        .threads
        .export_usage_of(&session, facility.as_ref())
        .await?;
    let mut out = String::from(mailbox::records::csv::BOM);
    out.push_str(&mailbox::records::csv::line(&[
        "利用者ID / account",
        "最終ログイン / last sign-in",
        "送信 / sent",
        "受信 / received",
        "未開封 / unopened",
        "期限超過 / overdue",
    ]));
    for r in &rows {
        let last = r
            .last_sign_in_at
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        out.push_str(&mailbox::records::csv::line(&[
            r.account_id.clone(),
            last,
            r.sent.to_string(),
            r.received.to_string(),
            r.unopened.to_string(),
            r.overdue.to_string(),
        ]));
    }
    Ok(csv(out, "usage.csv"))
}

#[derive(Deserialize, ToSchema)]
pub struct PatientForm {
    facility: String,
    patient_id: String,
    /// For applying: the number of matches the operator saw.
    confirm: Option<usize>,
    /// The receipt as `pdf` (default) or `csv`.
    format: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct MatchLine {
    item: String,
    kind: String,
    sender_facility: Option<String>,
    created_at: i64,
    body_size: i64,
    thread: Option<String>,
}

/// `POST /api/v1/admin/deletion-requests/search` — the operator's look at what
/// a deletion request would remove: metadata only.
#[utoipa::path(post, path = "/admin/deletion-requests/search", tag = "admin", request_body = PatientForm,
    responses((status = 200, description = "What the request would delete: metadata only", body = Vec<MatchLine>)))]
pub async fn deletion_search(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiJson(form): ApiJson<PatientForm>,
) -> Result<axum::Json<Vec<MatchLine>>, ApiError> {
    let facility = FacilityCode::parse(&form.facility).map_err(Error::from)?;
    let found = state
        .records
        .patient_matches(
            mailbox::records::Actor::Session(&session),
            &facility,
            &form.patient_id,
        )
        .await?;
    Ok(axum::Json(
        found
            .into_iter()
            .map(|c| MatchLine {
                item: c.envelope_id,
                kind: c.kind,
                sender_facility: c.sender_facility,
                created_at: c.created_at,
                body_size: c.body_size,
                thread: c.thread_id,
            })
            .collect(),
    ))
}

/// `POST /api/v1/admin/deletion-requests` with `confirm` = the number of
/// matches seen: deletes them all and answers with the receipt (CSV).
#[utoipa::path(post, path = "/admin/deletion-requests", tag = "admin", request_body = PatientForm,
    responses((status = 200, description = "Deleted; the receipt (PDF, or CSV with `format: csv`)",
        content(
            (crate::api::v1::openapi::Binary = "application/pdf"),
            (String = "text/csv"),
        ))))]
pub async fn deletion_apply(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiJson(form): ApiJson<PatientForm>,
) -> Result<Response, ApiError> {
    state.directory.require_proved_recently(&session)?;
    let facility = FacilityCode::parse(&form.facility).map_err(Error::from)?;
    let Some(confirm) = form.confirm else {
        return Err(Error::invalid(
            "confirm",
            "confirm with the number of matching items",
            "削除する件数を確認のため指定してください。",
        )
        .into());
    };
    let report = state
        .records
        .delete_patient(
            mailbox::records::Actor::Session(&session),
            &facility,
            &form.patient_id,
            confirm,
        )
        .await?;
    if form.format.as_deref() == Some("csv") {
        return Ok(csv(
            report.to_csv(),
            &format!("deletion-receipt-{}.csv", report.run_id),
        ));
    }
    let pdf = mailbox::pdf::deletion_receipt(&report)?;
    Ok((
        [
            (CONTENT_TYPE, "application/pdf".to_string()),
            (
                CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"deletion-receipt-{}.pdf\"",
                    report.run_id
                ),
            ),
        ],
        pdf,
    )
        .into_response())
}

/// `GET /api/v1/envelopes/{id}/pdf` — the item as PDF (text leaves only as PDF).
#[utoipa::path(get, path = "/envelopes/{id}/pdf", tag = "envelopes",
    params(("id" = String, Path, description = "Item ID")),
    responses((status = 200, description = "The item as PDF", content_type = "application/pdf", body = crate::api::v1::openapi::Binary)))]
pub async fn item_pdf(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (pdf, _) = state.postroom.export_pdf(&session, &id).await?;
    Ok((
        [
            (CONTENT_TYPE, "application/pdf".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"renkei-{id}.pdf\""),
            ),
        ],
        pdf,
    )
        .into_response())
}

/// `GET /api/v1/envelopes/{id}/pdf.asc` — the detached OpenPGP signature of
/// that PDF, by the exporting person's key.
#[utoipa::path(get, path = "/envelopes/{id}/pdf.asc", tag = "envelopes",
    params(("id" = String, Path, description = "Item ID")),
    responses((status = 200, description = "Detached OpenPGP signature of that PDF by the exporter's key",
        content_type = "application/pgp-signature", body = String)))]
pub async fn item_pdf_signature(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (_, signature) = state.postroom.export_pdf(&session, &id).await?;
    Ok((
        [
            (CONTENT_TYPE, "application/pgp-signature".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"renkei-{id}.pdf.asc\""),
            ),
        ],
        signature,
    )
        .into_response())
}
