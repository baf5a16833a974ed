//! `/api/v1/envelopes`: send sealed items with streamed attachments, open them,
//! download attachments, and hand liaison-inbox items to a doctor.
//!
//! File parts stream through a channel into the sealing thread, never held
//! whole. The total the sealer reads is counted; above
//! `UploadPolicy::warn_above_bytes` the 201 answer carries `warnings: [{code:
//! "large_item", total_bytes, warn_above_bytes, message}]` (absent otherwise)
//! and one info line is logged with the envelope ID and the sizes — never a
//! limit. The same holds for `POST /compose`, the thread page's step forms,
//! `POST /threads` and `/threads/{id}/steps`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use mailbox::postroom::{
    AttachmentIntegrity, Consent, ConsentGiver, ConsentMethod, OpenedItem, Outgoing,
    PatientConfirmation, Recipient, Submitted,
};
use mailbox::{AccountId, Error, FacilityCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::http::download::attachment_download;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiMultipart, ApiPath, ApiSession};
use crate::http::idempotency::{self, Begun};
use crate::http::ranges::{RangeAnswers, RangeHeaders};
use crate::http::upload::{AttachmentSpec, SendWarning, Sending, read_spec_raw, seal_upload};

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum To {
    Account(String),
    Liaison(String),
}

impl To {
    pub(crate) fn recipient(&self) -> Result<Recipient, Error> {
        Ok(match self {
            To::Account(id) => Recipient::Person(AccountId::parse(id)?),
            To::Liaison(code) => Recipient::LiaisonInbox(FacilityCode::parse(code)?),
        })
    }
}

#[derive(Deserialize, ToSchema)]
pub struct EnvelopeSpec {
    kind: String,
    to: Vec<To>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    patient_id: String,
    #[serde(default)]
    patient_name: String,
    #[serde(default)]
    body: String,
    /// Required when the item carries patient data.
    #[serde(default)]
    consent: Option<ConsentSpec>,
    #[serde(default)]
    attachments: Vec<AttachmentSpec>,
    /// Attachment names sent although their patient differs from the one entered.
    #[serde(default)]
    confirm_patient_mismatch: Vec<String>,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct ConsentSpec {
    /// YYYY-MM-DD
    obtained_on: String,
    /// `written` or `verbal`
    method: String,
    /// The staff member who obtained it.
    obtained_by: String,
    /// Who consented: `patient` (the default) or `guardian` (a minor's
    /// parent or another guardian, with `relation`). Read back as
    /// `unrecorded` for items sent before this was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    given_by: Option<String>,
    /// A guardian's relation to the patient (母, 父, 成年後見人, …); only with
    /// `given_by: guardian`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    relation: Option<String>,
}

impl ConsentSpec {
    pub(crate) fn parse(&self) -> Result<Consent, Error> {
        Ok(Consent {
            obtained_on: chrono::NaiveDate::parse_from_str(self.obtained_on.trim(), "%Y-%m-%d")
                .map_err(|_| {
                    Error::invalid(
                        "consent.obtained_on",
                        format!(
                            "consent date must look like 2026-11-20, got {:?}",
                            self.obtained_on
                        ),
                        "同意取得日は 2026-11-20 の形式で入力してください。",
                    )
                })?,
            method: ConsentMethod::parse(&self.method)?,
            obtained_by: self.obtained_by.clone(),
            given_by: ConsentGiver::parse(self.given_by.as_deref(), self.relation.as_deref())?,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct Created {
    id: String,
    /// Present only when there is something to warn of; the item was sent
    /// either way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<SendWarning>,
}

/// `POST /api/v1/envelopes` (multipart: `envelope` JSON, then one part per attachment).
#[utoipa::path(post, path = "/envelopes", tag = "envelopes", operation_id = "send_envelope",
    request_body(content = crate::api::v1::openapi::EnvelopeUpload, content_type = "multipart/form-data"),
    params(crate::http::idempotency::IdempotencyKeyHeader),
    responses((status = 201, description = "Sealed and queued for delivery. When the attachments add up to more than `[attachments] warn_above_mib`, `warnings` holds a `large_item` warning (the item is sent all the same); otherwise the key is absent", body = Created)))]
pub async fn send(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    headers: HeaderMap,
    ApiMultipart(mut multipart): ApiMultipart,
) -> Result<Response, ApiError> {
    session.require_ready()?;
    let (raw, spec): (_, EnvelopeSpec) = read_spec_raw(&mut multipart, "envelope").await?;
    let op = "POST /api/v1/envelopes";
    let (multipart, keyed) =
        match idempotency::begin(&state.postroom, &session, &headers, op, &raw, multipart).await? {
            Begun::Answered(response) => return Ok(response),
            Begun::Send(multipart, keyed) => (multipart, keyed),
        };
    let mut to = Vec::new();
    for t in spec.to {
        to.push(t.recipient()?);
    }
    let outgoing = Outgoing {
        kind: spec.kind,
        to,
        subject: spec.subject,
        patient_id: spec.patient_id,
        patient_name: spec.patient_name,
        body: spec.body,
        consent: spec.consent.as_ref().map(ConsentSpec::parse).transpose()?,
    };
    let postroom = state.postroom.clone();
    let confirmed = PatientConfirmation {
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
        postroom
            .send_with_key(&session, outgoing, attachments, confirmed, key)
            .await
    };
    let made = |id: &String| Submitted {
        envelope_id: id.clone(),
        thread_id: None,
    };
    let answer = |m: &Submitted, warnings| Created {
        id: m.envelope_id.clone(),
        warnings,
    };
    seal_upload(multipart, spec.attachments, sending, seal, made, answer).await
}

#[derive(Serialize, ToSchema)]
pub struct ListItem {
    id: String,
    kind: String,
    sender: String,
    created_at: i64,
    size: i64,
}

/// `GET /api/v1/envelopes`
#[utoipa::path(get, path = "/envelopes", tag = "envelopes", operation_id = "list_envelopes",
    responses((status = 200, description = "Items the person holds a key slot for (metadata)", body = Vec<ListItem>)))]
pub async fn list(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
) -> Result<Json<Vec<ListItem>>, ApiError> {
    let items = state.postroom.list(&session).await?;
    Ok(Json(
        items
            .into_iter()
            .map(|e| ListItem {
                id: e.id,
                kind: e.kind,
                sender: e.sender_id,
                created_at: e.created_at,
                size: e.body_size,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct SignatureView {
    status: &'static str,
    /// False for an item sealed before its place (ID, thread, step, kinds,
    /// recipients, time, patient) was signed: "older format: place not signed".
    place_signed: bool,
    fingerprint: Option<String>,
    /// SHA-256 (hex) of the signed content, as printed on the PDF.
    signed_sha256: String,
}

#[derive(Serialize, ToSchema)]
pub struct AttachmentView {
    index: usize,
    name: String,
    media_type: String,
    size: u64,
    sha256: String,
    integrity: IntegrityView,
}

/// What is known of an attachment's sealed file: `unknown` until a download
/// checked it whole, `verified` once one did, `damaged` once a read found it
/// not to match its signed manifest (changed, cut short or swapped). A damaged
/// attachment stays damaged: its downloads answer 422 `tampered_attachment`
/// before any byte.
#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum IntegrityView {
    Unknown,
    Verified,
    Damaged,
}

impl From<AttachmentIntegrity> for IntegrityView {
    fn from(i: AttachmentIntegrity) -> Self {
        match i {
            AttachmentIntegrity::Unknown => Self::Unknown,
            AttachmentIntegrity::Verified => Self::Verified,
            AttachmentIntegrity::Damaged => Self::Damaged,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct FieldView {
    name: String,
    value: String,
}

#[derive(Serialize, ToSchema)]
pub struct ItemView {
    id: String,
    kind: String,
    sender: String,
    created_at: i64,
    subject: String,
    patient_id: String,
    patient_name: String,
    body: String,
    /// Structured form fields (modality, findings, …), as signed.
    fields: Vec<FieldView>,
    thread_id: Option<String>,
    step: Option<String>,
    signature: SignatureView,
    attachments: Vec<AttachmentView>,
    opened_as: String,
    consent: Option<ConsentSpec>,
}

impl From<OpenedItem> for ItemView {
    fn from(o: OpenedItem) -> Self {
        Self {
            signature: SignatureView {
                status: o.signature.as_str(),
                place_signed: o.place_signed,
                fingerprint: o.signer_fingerprint.clone(),
                signed_sha256: o.signed_sha256.clone(),
            },
            opened_as: o.opened_as.key(),
            consent: o.consent.as_ref().map(|c| ConsentSpec {
                obtained_on: c.obtained_on.format("%Y-%m-%d").to_string(),
                method: c.method.as_str().into(),
                obtained_by: c.obtained_by.clone(),
                given_by: Some(c.given_by.as_str().into()),
                relation: c.given_by.relation().map(str::to_string),
            }),
            attachments: o
                .attachments
                .iter()
                .map(|a| AttachmentView {
                    index: a.index,
                    name: a.name.clone(),
                    media_type: a.media_type.clone(),
                    size: a.size,
                    sha256: a.sha256.clone(),
                    integrity: IntegrityView::Unknown,
                })
                .collect(),
            id: o.id.clone(),
            kind: o.kind.clone(),
            sender: o.sender_id.clone(),
            created_at: o.created_at,
            subject: o.subject.clone(),
            patient_id: o.patient_id.clone(),
            patient_name: o.patient_name.clone(),
            body: o.body.clone(),
            fields: o
                .fields
                .iter()
                .map(|(name, value)| FieldView {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            thread_id: o.thread_id.clone(),
            step: o.step.clone(),
        }
    }
}

impl ItemView {
    /// The view of an opened item with what is known of each attachment.
    pub(crate) async fn of(
        state: &AppState,
        session: &mailbox::CurrentSession,
        item: OpenedItem,
    ) -> Result<Self, Error> {
        let known = state
            .postroom
            .attachment_integrity(session, &item.id)
            .await?;
        let mut view = Self::from(item);
        for a in &mut view.attachments {
            if let Some((_, i)) = known.iter().find(|(index, _)| *index == a.index) {
                a.integrity = (*i).into();
            }
        }
        Ok(view)
    }
}

/// `GET /api/v1/envelopes/{id}`
#[utoipa::path(get, path = "/envelopes/{id}", tag = "envelopes", operation_id = "open_envelope",
    params(("id" = String, Path, description = "Item ID")),
    responses((status = 200, description = "Opened and verified; the view is audited. Each attachment says what is known of its integrity", body = ItemView),
        (status = 422, description = "Damaged, or its record no longer matches the place its sender signed: `error` is `moved`, `step_reordered`, `relabelled`, `recipients_changed`, `time_changed`, `tampered_body` or `tampered_key_slot`; no content", body = crate::http::error::ErrorBody)))]
pub async fn open(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ItemView>, ApiError> {
    let item = state.postroom.open(&session, &id).await?;
    if let Some(e) = item.place_error() {
        return Err(e.into());
    }
    Ok(Json(ItemView::of(&state, &session, item).await?))
}

/// `GET /api/v1/envelopes/{id}/attachments/{index}` — streamed, resumable
/// with `Range`. A whole download of up to 64 MiB is checked against its
/// signed manifest before the answer starts: a damaged one is 422
/// `tampered_attachment` (JSON, no byte of the file). A larger one, or a
/// range, is checked as it streams: if the blob turns out not to match, the
/// transfer is aborted (a client never receives a complete-looking altered file).
/// Either way the attachment is then marked damaged, and every later
/// request is 422 `tampered_attachment` at once.
#[utoipa::path(get, path = "/envelopes/{id}/attachments/{index}", tag = "envelopes",
    params(("id" = String, Path, description = "Item ID"), ("index" = usize, Path, maximum = 2147483647, description = "Attachment index"),
        RangeHeaders),
    responses(
        (status = 200, description = "The attachment, byte for byte as sent, streamed, always as a download (`Content-Disposition: attachment`): its `Content-Type` is the `media_type` the item declares for it when that is one of the allow-list's (`application/dicom`, `image/jpeg`, `image/png`, `application/pdf`), `application/octet-stream` otherwise; `Content-Security-Policy: sandbox`; `x-renkei-sha256` carries its signed hash; `ETag`, `Accept-Ranges: bytes`, exact `Content-Length`. Audited as a download",
            content_type = "*/*", body = crate::api::v1::openapi::Binary),
        RangeAnswers,
        (status = 422, description = "`tampered_attachment`: the attachment does not match its signed manifest (found now, or by an earlier read); no byte of it is sent", body = crate::http::error::ErrorBody)))]
pub async fn attachment(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiSession(session): ApiSession,
    ApiPath((id, index)): ApiPath<(String, usize)>,
) -> Result<Response, ApiError> {
    // One decryption of the envelope: the manifest gives the headers, the blob streams.
    let prepared = state.postroom.attachment(&session, &id, index).await?;
    Ok(attachment_download(
        &headers,
        &id,
        prepared,
        HeaderValue::from_static("attachment"),
    )
    .await?)
}

#[derive(Deserialize, ToSchema)]
pub struct Forward {
    to: String,
}

/// `POST /api/v1/envelopes/{id}/forward`
#[utoipa::path(post, path = "/envelopes/{id}/forward", tag = "envelopes", request_body = Forward,
    params(("id" = String, Path, description = "Item ID")),
    responses((status = 204, description = "A key slot for the doctor was added")))]
pub async fn forward(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Forward>,
) -> Result<StatusCode, ApiError> {
    let to = AccountId::parse(&body.to)?;
    state.postroom.forward(&session, &id, &to).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct MailboxItem {
    id: String,
    kind: String,
    sender: String,
    sender_facility: Option<String>,
    delivered_at: i64,
    seen: bool,
    flagged: bool,
    archived: bool,
    folder: String,
    thread_id: Option<String>,
    step: Option<String>,
    thread_state: Option<String>,
    /// `failed` (with the reason) for an item that could not be delivered.
    delivery_state: Option<String>,
    delivery_error: Option<String>,
}

/// The folders of `GET /mailbox/{folder}` (documentation only: the
/// postroom names and checks them).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum Folder {
    Inbox,
    Sent,
    Archive,
    Shared,
}

/// `GET /api/v1/mailbox/{folder}` — inbox, sent, archive or shared.
#[utoipa::path(get, path = "/mailbox/{folder}", tag = "envelopes",
    params(("folder" = inline(Folder), Path, description = "`inbox`, `sent`, `archive` or `shared`")),
    responses((status = 200, description = "The folder's entries (metadata)", body = Vec<MailboxItem>)))]
pub async fn mailbox(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(folder): ApiPath<String>,
) -> Result<Json<Vec<MailboxItem>>, ApiError> {
    let entries = state.postroom.mailbox(&session, &folder).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| MailboxItem {
                id: e.envelope_id,
                kind: e.kind,
                sender: e.sender_id,
                sender_facility: e.sender_facility,
                delivered_at: e.delivered_at,
                seen: e.seen,
                flagged: e.flagged,
                archived: e.archived,
                folder: e.folder,
                thread_id: e.thread_id,
                step: e.step,
                thread_state: e.thread_state,
                delivery_state: e.delivery_state,
                delivery_error: e.delivery_error,
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct Flags {
    seen: Option<bool>,
    flagged: Option<bool>,
    archived: Option<bool>,
}

/// `POST /api/v1/envelopes/{id}/flags`
#[utoipa::path(post, path = "/envelopes/{id}/flags", tag = "envelopes", request_body = Flags,
    params(("id" = String, Path, description = "Item ID")),
    responses((status = 204, description = "Flags set")))]
pub async fn flags(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Flags>,
) -> Result<StatusCode, ApiError> {
    state
        .postroom
        .set_flags(&session, &id, body.seen, body.flagged, body.archived)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    state: String,
    attempts: i64,
    last_error: Option<String>,
    delivered_at: Option<i64>,
}

/// `GET /api/v1/envelopes/{id}/delivery` — for the sender: pending, done or failed.
#[utoipa::path(get, path = "/envelopes/{id}/delivery", tag = "envelopes",
    params(("id" = String, Path, description = "Item ID")),
    responses((status = 200, description = "The sender's view of the delivery", body = DeliveryView)))]
pub async fn delivery(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    let status = state
        .postroom
        .delivery_status(&session, &id)
        .await?
        .ok_or(Error::NotFound("item"))?;
    Ok(Json(DeliveryView {
        state: status.state,
        attempts: status.attempts,
        last_error: status.last_error,
        delivered_at: status.delivered_at,
    }))
}
