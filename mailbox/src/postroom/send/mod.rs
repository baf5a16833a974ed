//! Sending: validate → seal → commit. Validation checks what the sender
//! wrote (consent, reserved media types) and builds the draft; sealing
//! streams the attachments through the intake checks into blobs on a blocking
//! thread; committing makes the blobs durable and stores the envelope, its
//! key slots, queue entry and thread change in one transaction.

mod commit;
mod seal;
mod slots;
mod validate;

use std::io::Read;

use renkei_crypto::Certificate;

use super::{Consent, Outgoing, Postroom};
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::keys::Principal;

/// Everything `seal_and_store` needs for one envelope. Plaintext: never stored.
pub(crate) struct Sealing {
    pub envelope_id: String,
    pub kind: String,
    pub slots: Vec<(Principal, Certificate)>,
    pub subject: String,
    pub patient_id: String,
    pub patient_name: String,
    pub body: String,
    pub fields: Vec<renkei_crypto::Field>,
    pub consent: Option<Consent>,
    pub thread: Option<ThreadLink>,
    /// Attachment names the sender confirmed despite a differing patient.
    pub confirmed_patient_files: Vec<String>,
    /// The client's Idempotency-Key, stored in the envelope's transaction.
    pub idempotency: Option<super::Idempotency>,
}

/// How an envelope belongs to a thread.
pub(crate) struct ThreadLink {
    pub thread_id: String,
    pub step: Option<String>,
    /// The thread's version once this envelope is stored.
    pub seq: i64,
    pub change: crate::store::thread::ThreadChange,
}

/// Files the sender confirmed sending although the patient inside differs
/// from the one entered (by attachment name, as listed by
/// `Error::PatientMismatch`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientConfirmation {
    pub files: Vec<String>,
}

pub struct OutgoingAttachment {
    pub name: String,
    pub media_type: String,
    pub source: Box<dyn Read + Send>,
}

impl Postroom {
    /// Seals and stores an item; returns its ID once everything is committed.
    /// DICOM files whose patient differs from the one entered are refused
    /// with `Error::PatientMismatch` (see [`Postroom::send_confirming`]).
    pub async fn send(
        &self,
        session: &CurrentSession,
        outgoing: Outgoing,
        attachments: Vec<OutgoingAttachment>,
    ) -> Result<String> {
        self.send_confirming(
            session,
            outgoing,
            attachments,
            PatientConfirmation::default(),
        )
        .await
    }

    /// `send`, with the files the sender confirmed after being shown that
    /// their patient differs from the one entered; the confirmation is sealed
    /// into the item's intake record and noted in the audit trail.
    pub async fn send_confirming(
        &self,
        session: &CurrentSession,
        outgoing: Outgoing,
        attachments: Vec<OutgoingAttachment>,
        confirmed: PatientConfirmation,
    ) -> Result<String> {
        self.send_with_key(session, outgoing, attachments, confirmed, None)
            .await
    }

    /// `send_confirming` with the client's Idempotency-Key, remembered with
    /// the envelope in its transaction (a key still live refuses the send as
    /// a conflict; the caller answers with what is remembered).
    pub async fn send_with_key(
        &self,
        session: &CurrentSession,
        outgoing: Outgoing,
        attachments: Vec<OutgoingAttachment>,
        confirmed: PatientConfirmation,
        idempotency: Option<super::Idempotency>,
    ) -> Result<String> {
        let sender = session.require_ready()?.clone();
        crate::roles::require(&sender, crate::roles::Action::Send)?;
        if outgoing.to.is_empty() {
            return Err(Error::invalid(
                "to",
                "no recipient",
                "宛先を指定してください。",
            ));
        }
        if outgoing.kind.trim().is_empty() {
            return Err(Error::invalid(
                "kind",
                "the kind is empty",
                "種別を指定してください。",
            ));
        }
        let slots = self
            .resolve_slots(&sender, &outgoing.to, Vec::new())
            .await?;
        let id = crate::ids::new_id();
        self.seal_and_store(
            session,
            Sealing {
                envelope_id: id,
                kind: outgoing.kind,
                slots,
                subject: outgoing.subject,
                patient_id: outgoing.patient_id,
                patient_name: outgoing.patient_name,
                body: outgoing.body,
                fields: Vec::new(),
                consent: outgoing.consent,
                thread: None,
                confirmed_patient_files: confirmed.files,
                idempotency,
            },
            attachments,
        )
        .await
    }

    /// Seals one envelope to `sealing.slots` (the sender's own slot included by the
    /// caller), stores it with its queue entry and thread change, and returns its
    /// ID once committed.
    pub(crate) async fn seal_and_store(
        &self,
        session: &CurrentSession,
        mut sealing: Sealing,
        attachments: Vec<OutgoingAttachment>,
    ) -> Result<String> {
        let idempotency = sealing.idempotency.take();
        let keyring = self.keyring(session)?;
        let sender = session.require_ready()?.clone();
        let (checked, draft, patient) = self.validate(session, &sender, sealing, &attachments)?;
        let certs: Vec<Certificate> = checked.slots.iter().map(|(_, c)| c.clone()).collect();
        let sealed = self
            .seal(&checked.id, keyring, certs, draft, patient, attachments)
            .await?;
        self.commit(&sender, checked, sealed, idempotency).await
    }
}
