//! `/api/v1/threads` and friends: request workflows (reading requests,
//! referrals, shares, bookings, care pathways), the liaison office's claim and
//! assignment, the clerk's overview, statistics and bookable resources.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mailbox::postroom::Submitted;
use mailbox::threads::Thread;
use mailbox::threads::booking::Resource;
use mailbox::threads::stats::{ReadingCount, Usage};
use mailbox::threads::{NewThread, StepInput, Urgency};
use mailbox::workflow::{Step, ThreadKind, ThreadState};
use mailbox::{AccountId, Error, FacilityCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::v1::envelopes::{ConsentSpec, ItemView, To};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiMultipart, ApiPath, ApiQuery, ApiSession};
use crate::http::idempotency::{self, Begun};
use crate::http::upload::{AttachmentSpec, SendWarning, Sending, read_spec_raw, seal_upload};

/// The first multipart part, `thread`, of `POST /api/v1/threads`.
#[derive(Deserialize, ToSchema)]
pub struct ThreadSpec {
    kind: String,
    /// Absent for a booking (the resource's facility receives it).
    #[serde(default)]
    to: Option<To>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    patient_id: String,
    #[serde(default)]
    patient_name: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    consent: Option<ConsentSpec>,
    /// Form fields by name (modality, body_part, clinical_question, purpose, …).
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    urgency: String,
    /// YYYY-MM-DD
    #[serde(default)]
    wanted_by: Option<String>,
    #[serde(default)]
    resource_id: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    attachments: Vec<AttachmentSpec>,
    /// Attachment names sent although their patient differs from the one entered.
    #[serde(default)]
    confirm_patient_mismatch: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct StepSpec {
    step: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    next_facility: Option<String>,
    #[serde(default)]
    attachments: Vec<AttachmentSpec>,
}

fn date(field: &'static str, s: &str) -> Result<chrono::NaiveDate, Error> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        Error::invalid(
            field,
            format!("{field} must look like 2026-11-30, got {s:?}"),
            "日付は 2026-11-30 の形式で入力してください。",
        )
    })
}

#[derive(Serialize, ToSchema)]
pub struct CreatedThread {
    thread_id: String,
    envelope_id: String,
    /// As on `POST /envelopes`: present only when the attachments total more
    /// than `[attachments] warn_above_mib` (the thread is opened either way).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<SendWarning>,
}

/// `POST /api/v1/threads` (multipart: `thread` JSON, then one part per attachment).
#[utoipa::path(post, path = "/threads", tag = "threads", operation_id = "open_thread",
    request_body(content = crate::api::v1::openapi::ThreadUpload, content_type = "multipart/form-data"),
    params(crate::http::idempotency::IdempotencyKeyHeader),
    responses((status = 201, description = "The thread and its first signed step", body = CreatedThread)))]
pub async fn open(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    headers: HeaderMap,
    ApiMultipart(mut multipart): ApiMultipart,
) -> Result<Response, ApiError> {
    session.require_ready()?;
    let (raw, spec): (_, ThreadSpec) = read_spec_raw(&mut multipart, "thread").await?;
    let op = "POST /api/v1/threads";
    let (multipart, keyed) =
        match idempotency::begin(&state.postroom, &session, &headers, op, &raw, multipart).await? {
            Begun::Answered(response) => return Ok(response),
            Begun::Send(multipart, keyed) => (multipart, keyed),
        };
    let new = NewThread {
        kind: ThreadKind::parse(&spec.kind)?,
        to: spec.to.as_ref().map(To::recipient).transpose()?,
        subject: spec.subject,
        patient_id: spec.patient_id,
        patient_name: spec.patient_name,
        body: spec.body,
        consent: spec.consent.as_ref().map(ConsentSpec::parse).transpose()?,
        fields: spec.fields.into_iter().collect(),
        urgency: Urgency::parse(&spec.urgency)?,
        wanted_by: spec
            .wanted_by
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| date("wanted_by", s))
            .transpose()?,
        resource_id: spec.resource_id,
        template: spec.template,
    };
    let threads = state.threads.clone();
    let confirmed = mailbox::postroom::PatientConfirmation {
        files: spec.confirm_patient_mismatch,
    };
    let sender = session.clone();
    let sending = Sending {
        upload: state.upload,
        postroom: &state.postroom,
        session: &sender,
        keyed,
    };
    let seal = async move |attachments, key| {
        threads
            .open_with_key(&session, new, attachments, confirmed, key)
            .await
    };
    let made = |c: &mailbox::threads::Created| Submitted {
        envelope_id: c.envelope_id.clone(),
        thread_id: Some(c.thread_id.clone()),
    };
    let answer = |m: &Submitted, warnings| CreatedThread {
        thread_id: m.thread_id.clone().unwrap_or_default(),
        envelope_id: m.envelope_id.clone(),
        warnings,
    };
    seal_upload(multipart, spec.attachments, sending, seal, made, answer).await
}

#[derive(Serialize, ToSchema)]
pub struct CreatedStep {
    envelope_id: String,
    /// As on `POST /envelopes`: present only for a step whose attachments
    /// total more than `[attachments] warn_above_mib`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<SendWarning>,
}

/// `POST /api/v1/threads/{id}/steps` (multipart: `step` JSON, then attachments).
#[utoipa::path(post, path = "/threads/{id}/steps", tag = "threads",
    request_body(content = crate::api::v1::openapi::StepUpload, content_type = "multipart/form-data"),
    params(("id" = String, Path, description = "Thread ID"), crate::http::idempotency::IdempotencyKeyHeader),
    responses((status = 201, description = "The step, sealed to the counterpart", body = CreatedStep)))]
pub async fn step(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiMultipart(mut multipart): ApiMultipart,
) -> Result<Response, ApiError> {
    session.require_ready()?;
    let (raw, spec): (_, StepSpec) = read_spec_raw(&mut multipart, "step").await?;
    let op = format!("POST /api/v1/threads/{id}/steps");
    let (multipart, keyed) = match idempotency::begin(
        &state.postroom,
        &session,
        &headers,
        &op,
        &raw,
        multipart,
    )
    .await?
    {
        Begun::Answered(response) => return Ok(response),
        Begun::Send(multipart, keyed) => (multipart, keyed),
    };
    let input = StepInput {
        step: Step::parse(&spec.step)?,
        body: spec.body,
        fields: spec.fields.into_iter().collect(),
        next_facility: spec
            .next_facility
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(FacilityCode::parse)
            .transpose()?,
    };
    let threads = state.threads.clone();
    let sender = session.clone();
    let sending = Sending {
        upload: state.upload,
        postroom: &state.postroom,
        session: &sender,
        keyed,
    };
    let seal = async move |attachments, key| {
        threads
            .act_with_key(&session, &id, input, attachments, key)
            .await
    };
    let made = |id: &String| Submitted {
        envelope_id: id.clone(),
        thread_id: None,
    };
    let answer = |m: &Submitted, warnings| CreatedStep {
        envelope_id: m.envelope_id.clone(),
        warnings,
    };
    seal_upload(multipart, spec.attachments, sending, seal, made, answer).await
}

/// A thread's clear metadata, as every side sees it.
#[derive(Serialize, ToSchema)]
pub struct ThreadSummary {
    id: String,
    kind: String,
    state: String,
    state_ja: &'static str,
    requester: String,
    requester_facility: Option<String>,
    target: String,
    target_facility: String,
    claimed_by: Option<String>,
    assignee: Option<String>,
    reader: Option<String>,
    urgency: String,
    wanted_by: Option<String>,
    overdue: bool,
    resource_id: Option<String>,
    booked_slot: Option<String>,
    template: Option<String>,
    stage: Option<i64>,
    created_at: i64,
    updated_at: i64,
    delivered_at: Option<i64>,
    opened_at: Option<i64>,
    opened_by: Option<String>,
    closed_at: Option<i64>,
}

impl From<Thread> for ThreadSummary {
    fn from(t: Thread) -> Self {
        let today = mailbox::clock::today_jst().to_string();
        let overdue =
            t.closed_at.is_none() && t.wanted_by.as_deref().is_some_and(|w| w < today.as_str());
        Self {
            state_ja: ThreadState::parse(&t.state).map_or("", ThreadState::label_ja),
            overdue,
            id: t.id,
            kind: t.kind,
            state: t.state,
            requester: t.requester_id,
            requester_facility: t.requester_facility,
            target: t.target,
            target_facility: t.target_facility,
            claimed_by: t.claimed_by,
            assignee: t.assignee_id,
            reader: t.reader_id,
            urgency: t.urgency,
            wanted_by: t.wanted_by,
            resource_id: t.resource_id,
            booked_slot: t.booked_slot,
            template: t.template,
            stage: t.stage,
            created_at: t.created_at,
            updated_at: t.updated_at,
            delivered_at: t.delivered_at,
            opened_at: t.opened_at,
            opened_by: t.opened_by,
            closed_at: t.closed_at,
        }
    }
}

/// `GET /api/v1/threads`
#[utoipa::path(get, path = "/threads", tag = "threads", operation_id = "list_threads",
    responses((status = 200, description = "The person's threads (metadata)", body = Vec<ThreadSummary>)))]
pub async fn list(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
) -> Result<Json<Vec<ThreadSummary>>, ApiError> {
    let rows = state.threads.list(&session).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct ThreadDetail {
    thread: ThreadSummary,
    steps: Vec<ItemView>,
    allowed_steps: Vec<&'static str>,
}

/// `GET /api/v1/threads/{id}` — the state and every step, opened and verified.
#[utoipa::path(get, path = "/threads/{id}", tag = "threads", operation_id = "view_thread",
    params(("id" = String, Path, description = "Thread ID")),
    responses((status = 200, description = "State, every step opened and verified, and the steps the reader may take", body = ThreadDetail),
        (status = 422, description = "A step is damaged or no longer sits where its sender signed it, or a step is missing: `error` is `step_missing`, `moved`, `step_reordered`, `relabelled`, `recipients_changed`, `time_changed`, `tampered_body` or `tampered_key_slot`", body = crate::http::error::ErrorBody)))]
pub async fn view(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ThreadDetail>, ApiError> {
    let v = state.threads.view(&session, &id).await?;
    let mut steps = Vec::with_capacity(v.steps.len());
    for item in v.steps {
        steps.push(ItemView::of(&state, &session, item).await?);
    }
    Ok(Json(ThreadDetail {
        thread: v.thread.into(),
        steps,
        allowed_steps: v.allowed_steps,
    }))
}

/// `POST /api/v1/threads/{id}/claim`
#[utoipa::path(post, path = "/threads/{id}/claim", tag = "threads",
    params(("id" = String, Path, description = "Thread ID")),
    responses((status = 204, description = "Claimed by this liaison")))]
pub async fn claim(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.threads.claim(&session, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/threads/{id}/release`
#[utoipa::path(post, path = "/threads/{id}/release", tag = "threads",
    params(("id" = String, Path, description = "Thread ID")),
    responses((status = 204, description = "Released")))]
pub async fn release(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.threads.release(&session, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct Assign {
    doctor: String,
}

/// `POST /api/v1/threads/{id}/assign` `{"doctor": "XXXX-XXXX"}`
#[utoipa::path(post, path = "/threads/{id}/assign", tag = "threads", request_body = Assign,
    params(("id" = String, Path, description = "Thread ID")),
    responses((status = 204, description = "Assigned; the doctor gets key slots for every step")))]
pub async fn assign(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Assign>,
) -> Result<StatusCode, ApiError> {
    let doctor = AccountId::parse(&body.doctor)?;
    state.threads.assign(&session, &id, &doctor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct ForwardThread {
    /// A doctor of the forwarder's own facility.
    to: String,
}

/// `POST /api/v1/threads/{id}/forward` `{"to": "XXXX-XXXX"}` — a doctor or
/// liaison hands a thread they hold to a doctor of their facility.
#[utoipa::path(post, path = "/threads/{id}/forward", tag = "threads", operation_id = "forward_thread", request_body = ForwardThread,
    params(("id" = String, Path, description = "Thread ID")),
    responses((status = 204, description = "Forwarded; the colleague gets key slots for every step and reads the thread")))]
pub async fn forward(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ForwardThread>,
) -> Result<StatusCode, ApiError> {
    let to = AccountId::parse(&body.to)?;
    state.threads.forward(&session, &id, &to).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/threads/{id}/unassign`
#[utoipa::path(post, path = "/threads/{id}/unassign", tag = "threads",
    params(("id" = String, Path, description = "Thread ID")),
    responses((status = 204, description = "Unassigned")))]
pub async fn unassign(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.threads.unassign(&session, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/facility/threads` — the clerk's (and liaison's) overview.
#[utoipa::path(get, path = "/facility/threads", tag = "threads",
    responses((status = 200, description = "Every thread of the facility (clerks, liaisons)", body = Vec<ThreadSummary>)))]
pub async fn facility_overview(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
) -> Result<Json<Vec<ThreadSummary>>, ApiError> {
    let rows = state.threads.facility_overview(&session).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// `YYYY-MM` (JST)
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$", example = "2026-11")]
    month: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReadingLine {
    reader: String,
    facility: String,
    reports: i64,
}

impl From<ReadingCount> for ReadingLine {
    fn from(c: ReadingCount) -> Self {
        Self {
            reader: c.reader_id,
            facility: c.facility_code,
            reports: c.reports,
        }
    }
}

/// `GET /api/v1/stats/readings?month=2026-11`
#[utoipa::path(get, path = "/stats/readings", tag = "stats", params(MonthQuery),
    responses((status = 200, description = "Reports per reader in the month (declines excluded)", body = Vec<ReadingLine>)))]
pub async fn reading_stats(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> Result<Json<Vec<ReadingLine>>, ApiError> {
    let rows = state.threads.reading_stats(&session, &q.month).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct UsageLine {
    account: String,
    last_sign_in_at: Option<i64>,
    sent: i64,
    received: i64,
    unopened: i64,
    overdue: i64,
}

impl From<Usage> for UsageLine {
    fn from(u: Usage) -> Self {
        Self {
            account: u.account_id,
            last_sign_in_at: u.last_sign_in_at,
            sent: u.sent,
            received: u.received,
            unopened: u.unopened,
            overdue: u.overdue,
        }
    }
}

/// `GET /api/v1/stats/usage[?facility=CODE]` — per-account usage of the
/// clerk's own facility, or of the one the operator names.
#[utoipa::path(get, path = "/stats/usage", tag = "stats", params(crate::api::v1::records::UsageQuery),
    responses((status = 200, description = "Per-account usage of the clerk's facility, or of the facility the operator names", body = Vec<UsageLine>)))]
pub async fn usage(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiQuery(q): ApiQuery<crate::api::v1::records::UsageQuery>,
) -> Result<Json<Vec<UsageLine>>, ApiError> {
    let facility = q.facility()?;
    let rows = state.threads.usage_of(&session, facility.as_ref()).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct ResourceView {
    id: String,
    facility: String,
    name: String,
    opening_hours: String,
}

impl From<Resource> for ResourceView {
    fn from(r: Resource) -> Self {
        Self {
            id: r.id,
            facility: r.facility_code,
            name: r.name,
            opening_hours: r.opening_hours,
        }
    }
}

/// `GET /api/v1/facilities/{code}/resources`
#[utoipa::path(get, path = "/facilities/{code}/resources", tag = "threads",
    params(("code" = String, Path, description = "Facility code")),
    responses((status = 200, description = "The facility's bookable resources", body = Vec<ResourceView>)))]
pub async fn resources(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Vec<ResourceView>>, ApiError> {
    let code = FacilityCode::parse(&code)?;
    let rows = state.threads.resources(&session, &code).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, ToSchema)]
pub struct NewResource {
    name: String,
    opening_hours: String,
}

/// `POST /api/v1/resources` — a liaison lists a resource of its own facility.
#[utoipa::path(post, path = "/resources", tag = "threads", request_body = NewResource,
    responses((status = 201, description = "Listed", body = ResourceView)))]
pub async fn add_resource(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiJson(body): ApiJson<NewResource>,
) -> Result<(StatusCode, Json<ResourceView>), ApiError> {
    let row = state
        .threads
        .add_resource(&session, &body.name, &body.opening_hours)
        .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// `GET /api/v1/pathways` — the care-pathway templates and their stage fields.
#[utoipa::path(get, path = "/pathways", tag = "threads",
    responses((status = 200, description = "Care-pathway templates: stages and their fields", body = Vec<Object>)))]
pub async fn pathways(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
) -> Result<Json<Vec<mailbox::threads::pathway::PathwayTemplate>>, ApiError> {
    session.require_ready()?;
    Ok(Json(state.threads.templates()))
}
