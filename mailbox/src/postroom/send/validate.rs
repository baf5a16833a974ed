//! The first step of sending: what the sender wrote, checked, and the draft
//! that gets sealed.

use renkei_crypto::{Certificate, Draft, Place, ProtectedHeaders, SenderInfo};

use super::{OutgoingAttachment, Sealing, ThreadLink};
use crate::account::Account;
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::keys::Principal;
use crate::postroom::intake::EnteredPatient;
use crate::postroom::{Consent, Postroom};
use crate::records::audit::{AuditEvent, action};
use crate::store::thread::ThreadChange;

/// A sealing that passed validation: what is stored in clear next to the
/// sealed envelope, and the audit entry written once it is committed.
pub(super) struct Checked {
    pub id: String,
    pub kind: String,
    pub slots: Vec<(Principal, Certificate)>,
    pub blind_index: Option<Vec<u8>>,
    pub consent: Option<Consent>,
    pub thread: Option<ThreadLink>,
    /// Seconds since the epoch; signed in the place and stored in clear.
    pub created_at: i64,
    pub audit: AuditEvent,
}

impl Postroom {
    /// Checks the consent record and the attachments' media types, and splits
    /// the sealing into what stays in clear, the draft to seal and the
    /// patient entered (for the intake record's wrong-patient check).
    pub(super) fn validate(
        &self,
        session: &CurrentSession,
        sender: &Account,
        sealing: Sealing,
        attachments: &[OutgoingAttachment],
    ) -> Result<(Checked, Draft, EnteredPatient)> {
        let audit = match &sealing.thread {
            None => AuditEvent::by(session, action::SEND),
            Some(link) => {
                let what = match link.change {
                    ThreadChange::Open(_) => action::THREAD_OPEN,
                    ThreadChange::Advance { .. } => action::THREAD_STEP,
                };
                let step = link.step.as_deref().unwrap_or("open");
                AuditEvent::by(session, what)
                    .detail(format!("thread={} step={step}", link.thread_id))
            }
        };
        self.check_consent(&sealing)?;
        let blind_index = if sealing.patient_id.trim().is_empty() {
            None
        } else {
            let code = sender
                .facility
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default();
            Some(renkei_crypto::blind_index(&self.blind_key, &code, &sealing.patient_id).to_vec())
        };
        let patient = EnteredPatient {
            id: sealing.patient_id.clone(),
            name: sealing.patient_name.clone(),
            confirmed: sealing.confirmed_patient_files.clone(),
            sender: sender.id.as_str().to_string(),
        };
        let created_at = self.clock.now_secs();
        let place = place_of(&sealing, sender, blind_index.as_deref(), created_at);
        let draft = Draft {
            headers: ProtectedHeaders {
                kind: sealing.kind.clone(),
                subject: sealing.subject,
                patient_id: sealing.patient_id,
                patient_name: sealing.patient_name,
            },
            sender: SenderInfo {
                account_id: sender.id.as_str().to_string(),
                name: sender.name.clone(),
                facility: sender
                    .facility
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            },
            body: sealing.body,
            fields: sealing.fields,
            place: Some(place),
        };
        if attachments
            .iter()
            .any(|a| a.media_type == crate::postroom::intake::RECORD_MEDIA_TYPE)
        {
            return Err(Error::invalid(
                "attachment",
                "that media type is reserved for the intake record",
                "この種類のファイルは添付できません。",
            ));
        }
        let checked = Checked {
            id: sealing.envelope_id,
            kind: sealing.kind,
            slots: sealing.slots,
            blind_index,
            consent: sealing.consent,
            thread: sealing.thread,
            created_at,
            audit,
        };
        Ok((checked, draft, patient))
    }

    /// Patient data goes out only with the patient's consent on record, taken
    /// by a named staff member on a day that has come.
    fn check_consent(&self, sealing: &Sealing) -> Result<()> {
        let carries_patient =
            !sealing.patient_id.trim().is_empty() || !sealing.patient_name.trim().is_empty();
        if let Some(c) = &sealing.consent {
            if c.obtained_by.trim().is_empty() {
                return Err(Error::invalid(
                    "consent.obtained_by",
                    "the consent record must name who obtained it",
                    "同意を取得した職員の氏名を入力してください。",
                ));
            }
            // Today in Japan, where consent is taken, whatever the server's zone.
            if c.obtained_on > self.clock.today_jst() {
                return Err(Error::invalid(
                    "consent.obtained_on",
                    "the consent date is in the future",
                    "同意取得日が未来の日付です。",
                ));
            }
        }
        if carries_patient && sealing.consent.is_none() {
            return Err(Error::invalid(
                "consent",
                "patient data can only be sent with the patient's consent on record",
                "患者さんの同意が記録されていないため送信できません。",
            ));
        }
        Ok(())
    }
}

/// The place the sender signs: what the clear row will say about the item.
fn place_of(
    sealing: &Sealing,
    sender: &Account,
    blind_index: Option<&[u8]>,
    created_at: i64,
) -> Place {
    let mut recipients: Vec<String> = sealing.slots.iter().map(|(p, _)| p.key()).collect();
    recipients.sort();
    recipients.dedup();
    Place {
        envelope_id: sealing.envelope_id.clone(),
        thread_id: sealing.thread.as_ref().map(|t| t.thread_id.clone()),
        step_seq: sealing.thread.as_ref().map(|t| t.seq),
        step_kind: sealing.thread.as_ref().and_then(|t| t.step.clone()),
        item_kind: sealing.kind.clone(),
        sender_account: sender.id.as_str().to_string(),
        sender_facility: sender
            .facility
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        recipients,
        created_at,
        patient_blind_index: blind_index.map(hex::encode),
    }
}
