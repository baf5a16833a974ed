//! `/api/v1/envelopes`: send sealed items with streamed attachments, open them,
//! download attachments, and hand liaison-inbox items to a doctor.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use mailbox::postroom::{
    AttachmentInfo, Consent, ConsentMethod, OpenedItem, Outgoing, OutgoingAttachment,
    PatientConfirmation, PreparedAttachment, Recipient,
};
use mailbox::{AccountId, Error, FacilityCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::api_session;
use crate::error::ApiError;
use crate::ranges::{self, Download, RangeAnswers, RangeHeaders, send_file_range, strong_etag};

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
pub struct AttachmentSpec {
    pub(crate) name: String,
    #[serde(default = "octet_stream")]
    pub(crate) media_type: String,
}

fn octet_stream() -> String {
    "application/octet-stream".into()
}

/// The first multipart part, `envelope`; the files follow in the declared order.
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
        })
    }
}

/// A blocking reader fed chunk by chunk from the upload, so a file streams into
/// its sealed blob without being held whole in memory.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

pub(crate) fn bad_upload(reason: impl Into<String>) -> ApiError {
    ApiError(Error::invalid(
        "upload",
        reason,
        "送信内容の形式が正しくありません。",
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Created {
    id: String,
    /// Present only when there is something to warn of; the item was sent
    /// either way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<SendWarning>,
}

/// Something the sender should know about an item that was sent all the same.
#[derive(Serialize, ToSchema, Debug)]
pub struct SendWarning {
    /// `large_item`: the attachments add up to more than the configured
    /// threshold (`[attachments] warn_above_mib`).
    code: &'static str,
    /// The item's attachments, in bytes.
    total_bytes: u64,
    /// The configured threshold, in bytes.
    warn_above_bytes: u64,
    /// The same in English, to show or log.
    message: String,
}

impl SendWarning {
    pub(crate) fn large_item(total_bytes: u64, warn_above_bytes: u64) -> Self {
        Self {
            code: "large_item",
            total_bytes,
            warn_above_bytes,
            message: format!(
                "The attachments total {} ({total_bytes} bytes), more than {} \
                 ({warn_above_bytes} bytes). The item was sent, but an item this \
                 large takes long to upload and to download.",
                mebibytes(total_bytes),
                mebibytes(warn_above_bytes),
            ),
        }
    }
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Counts the bytes of an item's attachments as sealing reads them, so the
/// total is known once the send is done without holding any file.
pub(crate) fn counted(
    attachments: Vec<OutgoingAttachment>,
) -> (Vec<OutgoingAttachment>, Arc<AtomicU64>) {
    let total = Arc::new(AtomicU64::new(0));
    let attachments = attachments
        .into_iter()
        .map(|a| OutgoingAttachment {
            source: Box::new(CountingReader {
                inner: a.source,
                total: total.clone(),
            }),
            ..a
        })
        .collect();
    (attachments, total)
}

struct CountingReader {
    inner: Box<dyn Read + Send>,
    total: Arc<AtomicU64>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The warning an item that was just sent earns by its size, if any; logged
/// with sizes only (never a name).
pub(crate) fn large_item_warning(
    upload: &crate::UploadPolicy,
    envelope_id: &str,
    total_bytes: u64,
) -> Option<SendWarning> {
    if !upload.is_large(total_bytes) {
        return None;
    }
    tracing::info!(
        envelope = %envelope_id,
        total_bytes,
        warn_above_bytes = upload.warn_above_bytes,
        "a large item was sent"
    );
    Some(SendWarning::large_item(
        total_bytes,
        upload.warn_above_bytes,
    ))
}

/// Reads the first multipart part, which must be the JSON spec named `name`.
pub(crate) async fn read_spec<T: serde::de::DeserializeOwned>(
    multipart: &mut Multipart,
    name: &str,
) -> Result<T, ApiError> {
    let first = multipart
        .next_field()
        .await
        .map_err(|e| bad_upload(format!("multipart: {e}")))?
        .ok_or_else(|| bad_upload(format!("the first part must be '{name}'")))?;
    if first.name() != Some(name) {
        return Err(bad_upload(format!("the first part must be '{name}'")));
    }
    let bytes = first
        .bytes()
        .await
        .map_err(|e| bad_upload(format!("multipart: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| bad_upload(format!("the {name} part is not valid JSON: {e}")))
}

/// The declared attachments as readers fed from the upload, and their feeders.
pub(crate) fn attachment_channels(
    specs: Vec<AttachmentSpec>,
) -> (
    Vec<mpsc::Sender<io::Result<Bytes>>>,
    Vec<OutgoingAttachment>,
) {
    let mut senders = Vec::new();
    let mut attachments = Vec::new();
    for a in specs {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
        senders.push(tx);
        attachments.push(OutgoingAttachment {
            name: a.name,
            media_type: a.media_type,
            source: Box::new(ChannelReader {
                rx,
                current: Bytes::new(),
            }),
        });
    }
    (senders, attachments)
}

/// Feeds the remaining parts, in order, to the sealing task, then waits for it.
/// A broken upload wins over a sealed result: nothing half-received is accepted.
pub(crate) async fn feed_and_finish<T: Send + 'static>(
    mut multipart: Multipart,
    senders: Vec<mpsc::Sender<io::Result<Bytes>>>,
    task: tokio::task::JoinHandle<Result<T, Error>>,
) -> Result<T, ApiError> {
    let mut senders = senders.into_iter();
    let mut upload_error: Option<String> = None;
    'parts: while let Some(mut field) = match multipart.next_field().await {
        Ok(f) => f,
        Err(e) => {
            upload_error = Some(format!("multipart: {e}"));
            None
        }
    } {
        let Some(tx) = senders.next() else {
            upload_error = Some("more files than declared attachments".into());
            break;
        };
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if tx.send(Ok(chunk)).await.is_err() {
                        break 'parts; // Sealing stopped; its error explains why.
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx
                        .send(Err(io::Error::other(format!("upload interrupted: {e}"))))
                        .await;
                    upload_error = Some(format!("upload interrupted: {e}"));
                    break 'parts;
                }
            }
        }
    }
    for tx in senders {
        let _ = tx
            .send(Err(io::Error::other(
                "a declared attachment was not uploaded",
            )))
            .await;
    }
    let result = task
        .await
        .map_err(|e| ApiError(Error::Internal(format!("send task: {e}"))))?;
    match (result, upload_error) {
        (Ok(v), None) => Ok(v),
        (Ok(_), Some(reason)) => Err(bad_upload(reason)),
        (Err(e), _) => Err(ApiError(e)),
    }
}

/// `POST /api/v1/envelopes` (multipart: `envelope` JSON, then one part per attachment).
#[utoipa::path(post, path = "/envelopes", tag = "envelopes", operation_id = "send_envelope",
    request_body(content = crate::openapi::EnvelopeUpload, content_type = "multipart/form-data"),
    responses((status = 201, description = "Sealed and queued for delivery. When the attachments add up to more than `[attachments] warn_above_mib`, `warnings` holds a `large_item` warning (the item is sent all the same); otherwise the key is absent", body = Created)))]
pub async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let session = api_session(&state, &headers).await?;
    session.require_ready()?;
    let spec: EnvelopeSpec = read_spec(&mut multipart, "envelope").await?;
    let mut to = Vec::new();
    for t in spec.to {
        to.push(t.recipient()?);
    }
    let (senders, attachments) = attachment_channels(spec.attachments);
    let (attachments, total_bytes) = counted(attachments);
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
    let task = tokio::spawn(async move {
        postroom
            .send_confirming(&session, outgoing, attachments, confirmed)
            .await
    });
    let id = feed_and_finish(multipart, senders, task).await?;
    let warnings = large_item_warning(&state.upload, &id, total_bytes.load(Ordering::Relaxed))
        .into_iter()
        .collect();
    Ok((StatusCode::CREATED, Json(Created { id, warnings })))
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
    headers: HeaderMap,
) -> Result<Json<Vec<ListItem>>, ApiError> {
    let session = api_session(&state, &headers).await?;
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
                fingerprint: o.signer_fingerprint.clone(),
                signed_sha256: o.signed_sha256.clone(),
            },
            opened_as: o.opened_as.key(),
            consent: o.consent.as_ref().map(|c| ConsentSpec {
                obtained_on: c.obtained_on.format("%Y-%m-%d").to_string(),
                method: c.method.as_str().into(),
                obtained_by: c.obtained_by.clone(),
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

/// `GET /api/v1/envelopes/{id}`
#[utoipa::path(get, path = "/envelopes/{id}", tag = "envelopes", operation_id = "open_envelope",
    params(("id" = String, Path, description = "Item ID")),
    responses((status = 200, description = "Opened and verified; the view is audited", body = ItemView)))]
pub async fn open(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ItemView>, ApiError> {
    let session = api_session(&state, &headers).await?;
    Ok(Json(state.postroom.open(&session, &id).await?.into()))
}

/// `GET /api/v1/envelopes/{id}/attachments/{index}` — streamed, resumable
/// with `Range`; if the blob turns out not to match its signed manifest the
/// transfer is aborted, so a client never receives a complete-looking altered file.
#[utoipa::path(get, path = "/envelopes/{id}/attachments/{index}", tag = "envelopes",
    params(("id" = String, Path, description = "Item ID"), ("index" = usize, Path, description = "Attachment index"),
        RangeHeaders),
    responses(
        (status = 200, description = "The attachment, byte for byte as sent, streamed; `x-renkei-sha256` carries its signed hash; `ETag`, `Accept-Ranges: bytes`, exact `Content-Length`. Audited as a download",
            content_type = "application/octet-stream", body = crate::openapi::Binary),
        RangeAnswers))]
pub async fn attachment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, index)): Path<(String, usize)>,
) -> Result<Response, ApiError> {
    let session = api_session(&state, &headers).await?;
    // One decryption of the envelope: the manifest gives the headers, the blob streams.
    let prepared = state.postroom.attachment(&session, &id, index).await?;
    Ok(attachment_download(
        &headers,
        &id,
        prepared,
        HeaderValue::from_static("attachment"),
    ))
}

/// The download of one opened attachment, whole or the range asked for
/// (see [`crate::ranges`]), always as a download, never rendered (ASVS 12.5.2).
pub(crate) fn attachment_download(
    headers: &HeaderMap,
    id: &str,
    prepared: PreparedAttachment,
    content_disposition: HeaderValue,
) -> Response {
    let info = prepared.info.clone();
    let download = Download {
        etag: attachment_etag(id, &info),
        len: info.size,
        content_type: HeaderValue::from_str(&info.media_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        content_disposition,
        log_as: format!("attachment {} of {id}", info.index),
    };
    let mut response = ranges::respond(headers, download, move |range, tx| {
        send_file_range(info.size, &range, tx, |out| prepared.stream(out))
    });
    if let Ok(v) = HeaderValue::from_str(&info.sha256) {
        response.headers_mut().insert("x-renkei-sha256", v);
    }
    response
}

/// A strong validator of one attachment's bytes: the item, the position and
/// the plaintext's SHA-256 from the signed manifest (never anything read
/// from inside the file), so it survives restarts and a resume after one.
fn attachment_etag(id: &str, info: &AttachmentInfo) -> String {
    let mut h = Sha256::new();
    h.update(b"renkei-file-1\0");
    h.update(id.as_bytes());
    h.update(format!("\0{}\0", info.index).as_bytes());
    h.update(info.sha256.as_bytes());
    strong_etag(h)
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
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Forward>,
) -> Result<StatusCode, ApiError> {
    let session = api_session(&state, &headers).await?;
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

/// `GET /api/v1/mailbox/{folder}` — inbox, sent, archive or shared.
#[utoipa::path(get, path = "/mailbox/{folder}", tag = "envelopes",
    params(("folder" = String, Path, description = "`inbox`, `sent`, `archive` or `shared`")),
    responses((status = 200, description = "The folder's entries (metadata)", body = Vec<MailboxItem>)))]
pub async fn mailbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(folder): Path<String>,
) -> Result<Json<Vec<MailboxItem>>, ApiError> {
    let session = api_session(&state, &headers).await?;
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
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Flags>,
) -> Result<StatusCode, ApiError> {
    let session = api_session(&state, &headers).await?;
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
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    let session = api_session(&state, &headers).await?;
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
