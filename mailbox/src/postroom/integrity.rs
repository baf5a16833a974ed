//! What is known of each attachment's sealed blob: `unknown` until a read
//! checks it whole against the signed manifest, `verified` after one did,
//! `damaged` once any read (a download, a rendered slice, a ZIP, the intake
//! record, IMAP) found a changed, cut or re-pointed blob. Damaged is sticky:
//! from then on every read of that attachment is refused with
//! `Tampered("attachment")` before a byte of the blob is read, and the pages
//! and the API show it damaged. Marking it writes one audit entry
//! (`attachment_damaged`, detail `attachment=N`: the index only) by the reader
//! whose read found it; the state is written only when it changes.
//!
//! Reads done by the postroom itself record damage before they answer (a
//! verified state follows on a task of its own). The streamed reads the edges
//! drive on a blocking thread ([`super::PreparedAttachment::stream`],
//! [`super::SealedArchive::stream`]) record either on a task of their own, a
//! moment after the transfer ended.

use std::sync::Arc;

use super::Postroom;
use crate::auth::CurrentSession;
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::records::audit::{Audit, AuditEvent, action};
use crate::store::Store;
pub use crate::store::vault::AttachmentIntegrity;

impl Postroom {
    /// The integrity state of each attachment of an item, by index (the
    /// intake record's among them), for a reader who holds a key slot of it;
    /// `NotFound` otherwise. Reads no blob and writes no audit entry: the
    /// item's opening is the view.
    pub async fn attachment_integrity(
        &self,
        session: &CurrentSession,
        id: &str,
    ) -> Result<Vec<(usize, AttachmentIntegrity)>> {
        let keyring = self.keyring(session)?;
        self.reader_principal(&keyring, id).await?;
        Ok(self
            .store
            .attachment_integrity(id)
            .await?
            .into_iter()
            .filter_map(|r| Some((usize::try_from(r.idx).ok()?, r.state())))
            .collect())
    }

    /// Where reads of item `id`'s attachments by this session record what
    /// they found.
    pub(super) fn integrity_report(&self, session: &CurrentSession, id: &str) -> IntegrityReport {
        IntegrityReport {
            store: self.store.clone(),
            audit: self.audit.clone(),
            clock: self.clock.clone(),
            event: AuditEvent::by(session, action::ATTACHMENT_DAMAGED).item(id),
            id: id.to_string(),
            handle: tokio::runtime::Handle::try_current().ok(),
        }
    }
}

/// Records what reading one item's attachments found.
#[derive(Clone)]
pub(crate) struct IntegrityReport {
    store: Arc<dyn Store>,
    audit: Audit,
    clock: SharedClock,
    /// The damage entry, by the reader, naming the item.
    event: AuditEvent,
    id: String,
    handle: Option<tokio::runtime::Handle>,
}

impl IntegrityReport {
    /// The state attachment `index` is known to be in (`Unknown` when the
    /// item has no such row).
    pub(super) async fn known(&self, index: usize) -> Result<AttachmentIntegrity> {
        Ok(self
            .store
            .attachment_integrity_of(&self.id, index as i64)
            .await?
            .map_or(AttachmentIntegrity::Unknown, |r| r.state()))
    }

    /// Refuses a read of an attachment already found damaged.
    pub(super) fn refuse_damaged(known: AttachmentIntegrity) -> Result<()> {
        if known == AttachmentIntegrity::Damaged {
            return Err(Error::Tampered("attachment"));
        }
        Ok(())
    }

    /// Records what a whole read of attachment `index` (known to be in
    /// state `known` before it) found: damaged on `Tampered("attachment")`,
    /// before the read is answered; verified on success when nothing was
    /// known, on a task of its own (a slice of a study is not held up by a
    /// write); other failures (the client left, the reader stopped early)
    /// say nothing of the blob.
    pub(super) async fn settle<T>(
        &self,
        index: usize,
        known: AttachmentIntegrity,
        outcome: &Result<T>,
    ) {
        match outcome {
            Err(Error::Tampered("attachment")) => self.damaged(index).await,
            Ok(_) => self.settle_later(index, known, outcome),
            Err(_) => {}
        }
    }

    /// As [`IntegrityReport::settle`], from a blocking thread or other
    /// synchronous code: written on a task of its own.
    pub(super) fn settle_later<T>(
        &self,
        index: usize,
        known: AttachmentIntegrity,
        outcome: &Result<T>,
    ) {
        let damaged = match outcome {
            Err(Error::Tampered("attachment")) => true,
            Ok(_) if known == AttachmentIntegrity::Unknown => false,
            _ => return,
        };
        let Some(handle) = &self.handle else {
            tracing::error!(
                item = %self.id,
                attachment = index,
                "no runtime to record an attachment's integrity on"
            );
            return;
        };
        let me = self.clone();
        handle.spawn(async move {
            if damaged {
                me.damaged(index).await;
            } else {
                me.verified(index).await;
            }
        });
    }

    /// Marks attachment `index` damaged, with its audit entry, unless it
    /// already is. Failures are logged: the read is refused either way.
    pub(super) async fn damaged(&self, index: usize) {
        let at = self.clock.now_millis();
        match self
            .store
            .set_attachment_integrity(&self.id, index as i64, AttachmentIntegrity::Damaged, at)
            .await
        {
            Ok(true) => {
                tracing::warn!(
                    item = %self.id,
                    attachment = index,
                    "attachment damaged: its blob does not match the signed manifest"
                );
                self.audit
                    .note(self.event.clone().detail(format!("attachment={index}")))
                    .await;
            }
            Ok(false) => {}
            Err(e) => tracing::error!(
                item = %self.id,
                attachment = index,
                error = %e,
                "marking an attachment damaged failed"
            ),
        }
    }

    async fn verified(&self, index: usize) {
        let at = self.clock.now_millis();
        if let Err(e) = self
            .store
            .set_attachment_integrity(&self.id, index as i64, AttachmentIntegrity::Verified, at)
            .await
        {
            tracing::error!(
                item = %self.id,
                attachment = index,
                error = %e,
                "marking an attachment verified failed"
            );
        }
    }
}

/// Whether a blob that would not open was tampered with: gone (deleted,
/// or its key re-pointed at nothing) or its key no blob key at all. Other
/// errors (permissions, a full disk) are the server's, not the blob's.
pub(super) fn blob_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidInput
    )
}
