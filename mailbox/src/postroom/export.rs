//! An item as a PDF with its exporter's detached signature.
//!
//! The signature is made with the exporting person's key, unlocked only in
//! their session: the server holds no signing secret of its own, and the
//! author's signature is represented by the printed hash and fingerprint. The
//! PDF is deterministic per item and exporter, so `/pdf` and `/pdf.asc` match.

use super::{Postroom, crypto};
use crate::account::AccountId;
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::records::audit::{AuditEvent, action};

impl Postroom {
    /// The item as a PDF (the only way text leaves Renkei), and a detached
    /// OpenPGP signature of exactly those bytes by the exporting person's own
    /// key. The person's key, not a server key: it is unlocked only in their
    /// session, so the server keeps no signing secret on disk, and the
    /// signature says who exported this copy; the author's signature is
    /// represented by the signed content's SHA-256 and fingerprint printed
    /// inside. The PDF is deterministic for an item and exporter, so the PDF
    /// and its signature can be fetched in two requests.
    pub async fn export_pdf(
        &self,
        session: &CurrentSession,
        id: &str,
    ) -> Result<(Vec<u8>, String)> {
        self.directory.require_proved_recently(session)?;
        let keyring = self.keyring(session)?;
        let item = self.open_marking(session, id, false).await?;
        // Nothing printed under a place its sender did not sign.
        if let Some(e) = item.place_error() {
            return Err(e);
        }
        let sender = AccountId::parse(&item.sender_id)
            .map_err(|_| Error::Internal("stored sender ID".into()))?;
        let sender = self.directory.account(&sender).await?;
        let (facility_name, facility_code) = match &sender.facility {
            Some(code) => (
                self.directory
                    .facility(code)
                    .await
                    .map(|f| f.name)
                    .unwrap_or_default(),
                code.to_string(),
            ),
            None => (String::new(), String::new()),
        };
        let sealed_at = crate::clock::jst_from_secs(item.created_at)
            .map(|t| t.format("%Y-%m-%d %H:%M JST").to_string())
            .unwrap_or_default();
        let me = session.require_ready()?;
        // A step (a report, a reply) names the patient through its thread's
        // opening item.
        let (mut patient_id, mut patient_name) =
            (item.patient_id.clone(), item.patient_name.clone());
        if patient_id.is_empty()
            && patient_name.is_empty()
            && let Some(thread) = &item.thread_id
            && let Some(row) = self.store.thread(thread).await?
            && row.opener_id != item.id
            && let Ok(opener) = self.open_raw(session, &row.opener_id).await
            && opener.refuse_if_moved().is_ok()
        {
            patient_id = opener.opened.inner.headers.patient_id.clone();
            patient_name = opener.opened.inner.headers.patient_name.clone();
        }
        let print = crate::pdf::ItemPrint {
            item_id: item.id.clone(),
            kind: item.kind.clone(),
            step: item.step.clone(),
            thread_id: item.thread_id.clone(),
            sender_facility_name: facility_name,
            sender_facility_code: facility_code,
            signer_name: sender.name.clone(),
            signer_id: sender.id.display_grouped(),
            signature_status: item.signature.as_str().to_string(),
            signer_fingerprint: item.signer_fingerprint.clone(),
            signed_sha256: item.signed_sha256.clone(),
            sealed_at,
            patient_id,
            patient_name,
            subject: item.subject.clone(),
            body: item.body.clone(),
            fields: item.fields.clone(),
            attachments: item
                .attachments
                .iter()
                .map(|a| (a.name.clone(), a.size, a.sha256.clone()))
                .collect(),
            exported_by: format!("{}（{}）", me.name, me.id.display_grouped()),
        };
        let (pdf, signature) = tokio::task::spawn_blocking(move || -> Result<_> {
            let pdf = crate::pdf::item(&print)?;
            let signature = renkei_crypto::sign_detached(&keyring.user, &pdf).map_err(crypto)?;
            Ok((pdf, signature))
        })
        .await
        .map_err(|e| Error::Internal(format!("pdf task: {e}")))??;
        self.audit
            .record(
                AuditEvent::by(session, action::RENDER)
                    .item(id)
                    .detail("pdf"),
            )
            .await?;
        Ok((pdf, signature))
    }
}
