//! The last step of sending: the blobs made durable, then the envelope, its
//! key slots, queue entry, thread change and audit entry stored in one
//! transaction. Until that commits nothing is acknowledged; a failure removes
//! the blobs.

use super::seal::SealedParts;
use super::validate::Checked;
use crate::account::Account;
use crate::error::{Error, Result};
use crate::postroom::{Idempotency, Postroom, Submitted};
use crate::store::vault::{AttachmentRow, EnvelopeRow, SlotRow};

impl Postroom {
    /// Commits a sealed envelope and returns its ID.
    pub(super) async fn commit(
        &self,
        sender: &Account,
        checked: Checked,
        parts: SealedParts,
        idempotency: Option<Idempotency>,
    ) -> Result<String> {
        let SealedParts {
            sealed,
            pending,
            keys,
            confirmed_mismatches,
        } = parts;
        let id = checked.id;
        let mut audit = checked.audit;
        if confirmed_mismatches > 0 {
            // The sender's confirmation of a differing patient, on record.
            let note = format!("patient_mismatch_confirmed={confirmed_mismatches}");
            audit.detail = Some(match audit.detail.take() {
                Some(d) => format!("{d} {note}"),
                None => note,
            });
        }
        let committed = tokio::task::spawn_blocking(move || crate::blob::commit_all(pending))
            .await
            .map_err(|e| Error::Internal(format!("blob commit task: {e}")))?;
        if let Err(e) = committed {
            self.delete_blobs(&keys);
            return Err(Error::Internal(format!("blob commit: {e}")));
        }
        // The time the sender signed, not the commit's.
        let t = checked.created_at;
        let body = sealed.envelope.to_bytes();
        let row = EnvelopeRow {
            id: id.clone(),
            kind: checked.kind,
            sender_id: sender.id.as_str().into(),
            sender_facility: sender.facility.as_ref().map(|c| c.to_string()),
            created_at: t,
            body_size: i64::try_from(body.len()).unwrap_or(i64::MAX),
            body,
            blind_index: checked.blind_index,
            consent_obtained_on: checked
                .consent
                .as_ref()
                .map(|c| c.obtained_on.format("%Y-%m-%d").to_string()),
            consent_method: checked
                .consent
                .as_ref()
                .map(|c| c.method.as_str().to_string()),
            consent_obtained_by: checked
                .consent
                .as_ref()
                .map(|c| c.obtained_by.trim().to_string()),
            consent_given_by: checked
                .consent
                .as_ref()
                .map(|c| c.given_by.as_str().to_string()),
            consent_relation: checked
                .consent
                .as_ref()
                .and_then(|c| c.given_by.relation().map(str::to_string)),
            thread_id: checked.thread.as_ref().map(|t| t.thread_id.clone()),
            step: checked.thread.as_ref().and_then(|t| t.step.clone()),
            thread_seq: checked.thread.as_ref().map(|t| t.seq),
        };
        let slot_rows: Vec<SlotRow> = checked
            .slots
            .iter()
            .map(|(p, _)| SlotRow {
                envelope_id: id.clone(),
                principal: p.key(),
                added_by: None,
                added_at: t,
            })
            .collect();
        let attachment_rows: Vec<AttachmentRow> = keys
            .iter()
            .zip(&sealed.attachments)
            .enumerate()
            .map(|(i, (key, a))| AttachmentRow {
                envelope_id: id.clone(),
                idx: i as i64,
                blob_key: key.clone(),
                sealed_size: i64::try_from(a.sealed_size).unwrap_or(i64::MAX),
            })
            .collect();
        let key_row = idempotency.map(|key| {
            let made = Submitted {
                envelope_id: id.clone(),
                thread_id: checked.thread.as_ref().map(|t| t.thread_id.clone()),
            };
            self.idempotency_row(sender.id.as_str(), key, &made)
        });
        let audit = audit.item(id.clone()).row(crate::clock::now_millis());
        if let Err(e) = self
            .store
            .insert_envelope(
                &row,
                &slot_rows,
                &attachment_rows,
                checked.thread.as_ref().map(|t| &t.change),
                &audit,
                key_row.as_ref(),
            )
            .await
        {
            self.delete_blobs(&keys);
            return Err(e.into());
        }
        self.delivery_wake.notify_one();
        tracing::info!(
            envelope = id,
            sender = sender.id.as_str(),
            slots = slot_rows.len(),
            attachments = attachment_rows.len(),
            "item sealed and stored"
        );
        Ok(id)
    }

    fn delete_blobs(&self, keys: &[String]) {
        for key in keys {
            let _ = self.blobs.delete(key);
        }
    }
}
