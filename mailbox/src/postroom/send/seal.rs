//! The second step of sending: the envelope sealed on a blocking thread while
//! each attachment streams from its source, through the allow-list and
//! imaging intake, into its blob.

use std::io::Write;
use std::sync::Arc;

use renkei_crypto::{AttachmentInput, Certificate, CryptoError, Draft};

use super::OutgoingAttachment;
use crate::blob::{BlobStore, BlobWriter, EarlySync, PendingBlob};
use crate::error::{Error, Result};
use crate::keys::Keyring;
use crate::postroom::attachment_policy::{PolicedReader, Refusal, RefusedAttachment};
use crate::postroom::intake::{EnteredPatient, IntakeLog, IntakeReader, RecordReader};
use crate::postroom::{Postroom, crypto};

/// A sealed envelope whose blobs are written but not yet committed.
pub(super) struct SealedParts {
    pub sealed: renkei_crypto::Sealed,
    pub pending: Vec<PendingBlob>,
    /// The blob key of each attachment, in manifest order.
    pub keys: Vec<String>,
    /// How many files the sender confirmed despite a differing patient.
    pub confirmed_mismatches: usize,
}

type PendingSlot = Arc<std::sync::Mutex<Option<PendingBlob>>>;

/// An attachment's blob, created on its first write: a study of thousands of
/// files holds one open file and one buffer at a time, not one per file
/// (which ran out of file descriptors and held a 1 MiB buffer each).
struct LazyBlob {
    blobs: BlobStore,
    key: String,
    writer: Option<BlobWriter>,
    pending: PendingSlot,
    early_sync: Option<EarlySync>,
}

impl LazyBlob {
    fn new(blobs: &BlobStore, key: &str, early_sync: Option<&EarlySync>) -> (Self, PendingSlot) {
        let pending = Arc::default();
        (
            Self {
                blobs: blobs.clone(),
                key: key.to_string(),
                writer: None,
                pending: Arc::clone(&pending),
                early_sync: early_sync.cloned(),
            },
            pending,
        )
    }

    fn writer(&mut self) -> std::io::Result<&mut BlobWriter> {
        if self.writer.is_none() {
            let (file, pending) = self.blobs.create(&self.key, self.early_sync.as_ref())?;
            if let Ok(mut slot) = self.pending.lock() {
                *slot = Some(pending);
            }
            self.writer = Some(file);
        }
        self.writer
            .as_mut()
            .ok_or_else(|| std::io::Error::other("blob writer"))
    }
}

impl Write for LazyBlob {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer()?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.writer {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// A refused attachment names the file and why; any other read failure is an
/// interrupted upload.
fn refused_or_unreadable(io: &std::io::Error) -> Error {
    match io
        .get_ref()
        .and_then(|e| e.downcast_ref::<RefusedAttachment>())
    {
        Some(RefusedAttachment {
            name,
            refusal: Refusal::Intake(e),
        }) => Error::AttachmentRefused {
            name: name.clone(),
            code: e.code(),
            reason: e.message_en(),
            reason_ja: e.message_ja(),
        },
        Some(r) => Error::invalid(
            "attachment",
            format!(
                "the file {:?} cannot be sent: {}",
                r.name,
                r.refusal.reason_en()
            ),
            format!(
                "ファイル「{}」は送信できません：{}。",
                r.name,
                r.refusal.reason_ja()
            ),
        ),
        None => Error::invalid(
            "attachment",
            format!("an attachment could not be read: {io}"),
            "添付ファイルを最後まで受け取れませんでした。",
        ),
    }
}

impl Postroom {
    /// Seals the draft to `certs` with the sender's key; the wrong-patient
    /// guard keeps nothing unless every differing file was confirmed. On
    /// failure the item's blob folder is removed.
    pub(super) async fn seal(
        &self,
        id: &str,
        keyring: Arc<Keyring>,
        certs: Vec<Certificate>,
        draft: Draft,
        patient: EnteredPatient,
        attachments: Vec<OutgoingAttachment>,
    ) -> Result<SealedParts> {
        let blobs = self.blobs.clone();
        let env_id = id.to_string();
        let sealed = tokio::task::spawn_blocking(move || {
            seal_blocking(
                &blobs,
                &env_id,
                &keyring,
                &certs,
                &draft,
                patient,
                attachments,
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("seal task: {e}")))
        .and_then(|r| r);
        if sealed.is_err() {
            // The pending blobs are gone; so goes the item's empty folder.
            let _ = std::fs::remove_dir(self.blobs.root().join(id));
        }
        sealed
    }
}

/// Blocking: builds one attachment input per file (plus the intake record,
/// last) and seals.
fn seal_blocking(
    blobs: &BlobStore,
    env_id: &str,
    kr: &Keyring,
    certs: &[Certificate],
    draft: &Draft,
    patient: EnteredPatient,
    attachments: Vec<OutgoingAttachment>,
) -> Result<SealedParts> {
    let mut inputs = Vec::new();
    let mut pending = Vec::new();
    let mut keys = Vec::new();
    let log = IntakeLog::default();
    let count = attachments.len();
    let early_sync = (count > 0).then(EarlySync::start);
    for (i, a) in attachments.into_iter().enumerate() {
        let key = format!("{env_id}/{i}");
        let (file, p) = LazyBlob::new(blobs, &key, early_sync.as_ref());
        // The allow-list (no executables, scripts, macros) on the first
        // bytes, then imaging intake (DICOM placed in a study, images
        // readable), both judged as the file streams.
        let checked_type = std::sync::Arc::new(std::sync::OnceLock::new());
        let policed = PolicedReader::new(a.source, a.name.clone())
            .correcting(a.media_type.clone(), checked_type.clone());
        let checked = IntakeReader::new(policed, i, &a.name, &a.media_type, log.clone());
        inputs.push(AttachmentInput {
            name: a.name,
            media_type: a.media_type,
            checked_type: Some(checked_type),
            source: Box::new(checked),
            sink: Box::new(file),
        });
        pending.push(p);
        keys.push(key);
    }
    if count > 0 {
        // Last, so every file before it has been read when it is made.
        let key = format!("{env_id}/{count}");
        let (file, p) = LazyBlob::new(blobs, &key, early_sync.as_ref());
        inputs.push(AttachmentInput {
            name: crate::postroom::intake::RECORD_NAME.into(),
            media_type: crate::postroom::intake::RECORD_MEDIA_TYPE.into(),
            checked_type: None,
            source: Box::new(RecordReader::new(log.clone(), patient.clone())),
            sink: Box::new(file),
        });
        pending.push(p);
        keys.push(key);
    }
    let refs: Vec<&Certificate> = certs.iter().collect();
    let sealed = renkei_crypto::seal(&kr.user, &refs, draft, inputs).map_err(|e| match e {
        CryptoError::InvalidInput(m) => {
            Error::invalid("message", m, "入力内容に使用できない文字が含まれています。")
        }
        CryptoError::Io(io) => refused_or_unreadable(&io),
        other => crypto(other),
    })?;
    // The wrong-patient guard: nothing is kept unless every differing
    // file was confirmed by the sender.
    let check = patient.check(&log.files());
    if !check.mismatches.is_empty() && check.confirmed_by.is_none() {
        return Err(Error::PatientMismatch(check.mismatches));
    }
    let pending = pending
        .into_iter()
        .map(|p| {
            p.lock()
                .ok()
                .and_then(|mut p| p.take())
                .ok_or_else(|| Error::Internal("blob: nothing was written".into()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SealedParts {
        sealed,
        pending,
        keys,
        confirmed_mismatches: check.mismatches.len(),
    })
}
