//! One attachment of an opened item: streamed downloads and the sealed intake
//! record; rendered DICOM slices read it through `super::render`.
//!
//! The envelope comes from the session's recent openings and the blob from one
//! attachment row (a 512×512 slice of a 2,048-file study renders in 3.7 ms,
//! median; see `bench/dicom`).

use std::io::{Seek, SeekFrom, Write};

use super::integrity::{AttachmentIntegrity, IntegrityReport, blob_missing};
use super::{Postroom, crypto};
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::postroom::intake::IntakeRecord;
use crate::records::audit::{AuditEvent, action};

#[derive(Debug, Clone)]
pub struct AttachmentInfo {
    pub index: usize,
    pub name: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
}

/// One attachment of an opened item, ready to stream.
pub struct PreparedAttachment {
    pub info: AttachmentInfo,
    pub(super) entry: renkei_crypto::ManifestEntry,
    pub(super) file: std::fs::File,
    /// What was known of the blob before this read.
    pub(super) known: AttachmentIntegrity,
    pub(super) report: IntegrityReport,
}

impl PreparedAttachment {
    /// Blocking: decrypts into `out`, checking size and SHA-256 against the signed
    /// manifest. On `Tampered("attachment")` whatever reached `out` must be
    /// discarded; the attachment is then marked damaged (a moment later, on a
    /// task of its own).
    pub fn stream(self, out: impl Write + Send) -> Result<u64> {
        let (index, known, report) = (self.info.index, self.known, self.report.clone());
        let outcome = self.read(out);
        report.settle_later(index, known, &outcome);
        outcome
    }

    /// Blocking: the decryption, recording nothing.
    fn read(self, out: impl Write + Send) -> Result<u64> {
        renkei_crypto::open_attachment(
            std::io::BufReader::with_capacity(1 << 20, self.file),
            &self.entry,
            out,
        )
        .map(|o| o.size)
        .map_err(crypto)
    }

    /// Decrypts into `out` on a blocking thread, then records what the read
    /// found before answering.
    pub(super) async fn read_into<W: Write + Send + 'static>(self, out: W) -> Result<(u64, W)> {
        let (index, known, report) = (self.info.index, self.known, self.report.clone());
        let (outcome, out) = tokio::task::spawn_blocking(move || {
            let mut out = out;
            let outcome = self.read(&mut out);
            (outcome, out)
        })
        .await
        .map_err(|e| Error::Internal(format!("attachment task: {e}")))?;
        report.settle(index, known, &outcome).await;
        outcome.map(|n| (n, out))
    }

    /// Decrypts the whole attachment once, checking it against the signed
    /// manifest and keeping nothing (no plaintext is parked in memory or on
    /// disk), and records what that found; `stream` then reads the blob again
    /// from its start. A damaged blob is refused here with
    /// `Tampered("attachment")` (and marked), before the first byte of an answer.
    pub async fn checked_whole(self) -> Result<Self> {
        let (index, known, report) = (self.info.index, self.known, self.report.clone());
        let (outcome, this) = tokio::task::spawn_blocking(move || {
            let outcome = renkei_crypto::open_attachment(
                std::io::BufReader::with_capacity(1 << 20, &self.file),
                &self.entry,
                std::io::sink(),
            )
            .map_err(crypto)
            .and_then(|_| {
                (&self.file)
                    .seek(SeekFrom::Start(0))
                    .map_err(|e| Error::Internal(format!("attachment rewind: {e}")))
            });
            (outcome, self)
        })
        .await
        .map_err(|e| Error::Internal(format!("attachment task: {e}")))?;
        report.settle(index, known, &outcome).await;
        outcome?;
        Ok(Self {
            known: AttachmentIntegrity::Verified,
            ..this
        })
    }
}

impl Postroom {
    /// Opens the item once and readies one attachment for streaming: what it is
    /// (from the signed manifest) and its sealed blob. One already found
    /// damaged is refused before anything is read. An edge about to answer
    /// with the whole file checks one of up to [`VERIFY_WHOLE_BYTES`] with
    /// [`PreparedAttachment::checked_whole`] first; otherwise it is checked as
    /// it streams.
    pub async fn attachment(
        &self,
        session: &CurrentSession,
        id: &str,
        index: usize,
    ) -> Result<PreparedAttachment> {
        let (prepared, _) = self
            .prepare_attachment(session, id, |_| Some(index))
            .await?
            .ok_or(Error::NotFound("attachment"))?;
        self.audit
            .record(
                AuditEvent::by(session, action::DOWNLOAD)
                    .item(id)
                    .detail(format!("attachment={index}")),
            )
            .await?;
        Ok(prepared)
    }

    /// The sealed blob and signed manifest entry of the attachment `pick`
    /// chooses from the manifest (`None` when it chooses none), unaudited —
    /// each caller records what it does with it — and the manifest's record
    /// index.
    pub(super) async fn prepare_attachment(
        &self,
        session: &CurrentSession,
        id: &str,
        pick: impl FnOnce(&[renkei_crypto::ManifestEntry]) -> Option<usize>,
    ) -> Result<Option<(PreparedAttachment, Option<usize>)>> {
        let opened = self.open_recent(session, id).await?;
        let Some(index) = pick(&opened.inner.manifest) else {
            return Ok(None);
        };
        let Some(entry) = opened.inner.manifest.get(index).cloned() else {
            return Err(Error::NotFound("attachment"));
        };
        let record = record_index(&opened.inner.manifest);
        let report = self.integrity_report(session, id);
        let known = report.known(index).await?;
        IntegrityReport::refuse_damaged(known)?;
        let row = self
            .store
            .attachment(id, index as i64)
            .await?
            .ok_or(Error::NotFound("attachment"))?;
        let file = match self.blobs.open(&row.blob_key) {
            Ok(file) => file,
            Err(e) if blob_missing(&e) => {
                report.damaged(index).await;
                return Err(Error::Tampered("attachment"));
            }
            Err(e) => return Err(Error::Internal(format!("attachment blob: {e}"))),
        };
        Ok(Some((
            PreparedAttachment {
                info: AttachmentInfo {
                    index,
                    name: entry.name.clone(),
                    media_type: entry.media_type.clone(),
                    size: entry.size,
                    sha256: hex::encode(entry.sha256),
                },
                entry,
                file,
                known,
                report,
            },
            record,
        )))
    }

    /// What intake recorded when the item was sent — each file's DICOM
    /// metadata or image size, its studies and series, the wrong-patient
    /// check — decrypted from the item's sealed record. `None` for an item
    /// without attachments (or sent before intake records existed).
    pub async fn intake_record(
        &self,
        session: &CurrentSession,
        id: &str,
    ) -> Result<Option<IntakeRecord>> {
        let Some((prepared, _)) = self.prepare_attachment(session, id, record_index).await? else {
            return Ok(None);
        };
        self.audit
            .record(
                AuditEvent::by(session, action::VIEW)
                    .item(id)
                    .detail("intake_record"),
            )
            .await?;
        read_record(prepared).await.map(Some)
    }

    /// Streams one attachment's plaintext to `out`, checked against the signed
    /// manifest. On `Tampered("attachment")` whatever reached `out` must be discarded.
    pub async fn open_attachment(
        &self,
        session: &CurrentSession,
        id: &str,
        index: usize,
        out: impl Write + Send + 'static,
    ) -> Result<u64> {
        let prepared = self.attachment(session, id, index).await?;
        prepared.read_into(out).await.map(|(n, _)| n)
    }
}

pub(super) fn attachment_info(index: usize, m: &renkei_crypto::ManifestEntry) -> AttachmentInfo {
    AttachmentInfo {
        index,
        name: m.name.clone(),
        media_type: m.media_type.clone(),
        size: m.size,
        sha256: hex::encode(m.sha256),
    }
}

/// The intake record, decrypted into memory (a few hundred bytes per file).
pub(super) async fn read_record(prepared: PreparedAttachment) -> Result<IntakeRecord> {
    let (_, json) = prepared.read_into(Vec::new()).await?;
    serde_json::from_slice(&json).map_err(|e| Error::Internal(format!("intake record: {e}")))
}

/// Where the intake record sits: the last entry, named and typed as one.
pub(super) fn record_index(manifest: &[renkei_crypto::ManifestEntry]) -> Option<usize> {
    let last = manifest.last()?;
    (last.name == crate::postroom::intake::RECORD_NAME
        && last.media_type == crate::postroom::intake::RECORD_MEDIA_TYPE)
        .then(|| manifest.len() - 1)
}

/// Attachments up to this size (64 MiB of plaintext) are checked whole
/// before a download's answer starts.
pub const VERIFY_WHOLE_BYTES: u64 = 64 << 20;
