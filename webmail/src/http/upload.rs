//! Streamed uploads: files go from the multipart body straight into their
//! sealed blobs, chunk by chunk, never held whole. Shared by the API and the
//! pages that send items (compose, the thread's step forms).

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Multipart;
use bytes::Bytes;
use mailbox::Error;
use mailbox::postroom::OutgoingAttachment;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailbox::postroom::{Idempotency, Submitted};

use crate::http::error::ApiError;
use crate::http::idempotency::{Keyed, answer_after_conflict, idempotency};

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

/// Reads the first multipart part, which must be the JSON spec named `name`;
/// with the part's bytes (what an Idempotency-Key's request hash covers).
pub(crate) async fn read_spec_raw<T: serde::de::DeserializeOwned>(
    multipart: &mut Multipart,
    name: &str,
) -> Result<(Bytes, T), ApiError> {
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
    let spec = serde_json::from_slice(&bytes)
        .map_err(|e| bad_upload(format!("the {name} part is not valid JSON: {e}")))?;
    Ok((bytes, spec))
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

/// Who sends through [`seal_upload`], with what key.
pub(crate) struct Sending<'a> {
    pub upload: crate::UploadPolicy,
    pub postroom: &'a mailbox::postroom::Postroom,
    pub session: &'a mailbox::auth::CurrentSession,
    /// The Idempotency-Key, held (see `http::idempotency`).
    pub keyed: Option<Keyed>,
}

/// An item sent with its files streamed from the upload: the declared
/// attachments are fed from `multipart` into `seal` (the service call, run on
/// its own task so sealing reads while the body arrives), and the answer —
/// 201 with `answer` of the IDs `made` names and the size warning the item
/// earns — is built once; with a key it is stored with the envelope, built
/// the same way, to answer a retry with.
pub(crate) async fn seal_upload<T, Fut, B>(
    multipart: Multipart,
    specs: Vec<AttachmentSpec>,
    sending: Sending<'_>,
    seal: impl FnOnce(Vec<OutgoingAttachment>, Option<Idempotency>) -> Fut,
    made: impl FnOnce(&T) -> Submitted,
    answer: fn(&Submitted, Vec<SendWarning>) -> B,
) -> Result<Response, ApiError>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, Error>> + Send + 'static,
    B: Serialize + 'static,
{
    let Sending {
        upload,
        postroom,
        session,
        mut keyed,
    } = sending;
    let (senders, attachments) = attachment_channels(specs);
    let (mut attachments, total_bytes) = counted(attachments);
    let idempotency = keyed.as_mut().map(|k| {
        attachments = k.hash.hashing(std::mem::take(&mut attachments));
        let total = total_bytes.clone();
        idempotency(k, move |m| {
            let total = total.load(Ordering::Relaxed);
            let warnings = upload
                .is_large(total)
                .then(|| SendWarning::large_item(total, upload.warn_above_bytes));
            json_bytes(&answer(m, warnings.into_iter().collect()))
        })
    });
    let task = tokio::spawn(seal(attachments, idempotency));
    let result = feed_and_finish(multipart, senders, task).await;
    let made = match (result, &keyed) {
        (Ok(t), _) => made(&t),
        (Err(e), Some(k)) if e.0.kind() == mailbox::ErrorKind::Conflict => {
            // Another node committed this key meanwhile: its answer.
            return match answer_after_conflict(postroom, session, k).await {
                Some(response) => Ok(response),
                None => Err(e),
            };
        }
        (Err(e), _) => return Err(e),
    };
    let warnings = large_item_warning(
        &upload,
        &made.envelope_id,
        total_bytes.load(Ordering::Relaxed),
    )
    .into_iter()
    .collect();
    Ok((
        StatusCode::CREATED,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json_bytes(&answer(&made, warnings)),
    )
        .into_response())
}

/// An answer body; the same bytes whether sent now or remembered.
fn json_bytes(body: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec())
}
