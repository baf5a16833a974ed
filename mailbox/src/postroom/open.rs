//! Opening an item for one reader: the key slot that opens it, the signature
//! check, and the reads that mark it seen (or only peek).
//!
//! The verdict is a `SignatureStatus`: valid, unknown signer, bad signature,
//! signer mismatch, or a row that no longer sits where its sender signed it
//! (moved, reordered, relabelled, recipients or time changed; see
//! [`super::place`]) — such an item comes with its content withheld. A damaged key slot, body or attachment is
//! `Error::Tampered`, never a silent failure; an item the reader has no slot
//! for is `NotFound`, like a missing one.

use std::sync::Arc;

use renkei_crypto::{Certificate, Fingerprint, SealedEnvelope, Verification};

use super::attachments::record_index;
use super::place::{self, PlaceCheck};
use super::{AttachmentInfo, Consent, ConsentGiver, ConsentMethod, PARSED_CERTS, Postroom, crypto};
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::keys::{Keyring, Principal};
use crate::records::audit::{AuditEvent, action};
use crate::store::vault::{EnvelopeRow, SlotRow};

/// How far a reader may trust an opened item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureStatus {
    Valid,
    UnknownSigner,
    BadSignature,
    /// A good signature, but not by the account the envelope says sent it.
    SignerMismatch,
    /// Signed for another item, thread or patient than the row says.
    Moved,
    /// Signed as another step number of its thread.
    StepReordered,
    /// Signed as another kind of item or step.
    Relabelled,
    /// The row names a recipient the sender did not address.
    RecipientsChanged,
    /// The row's time is not the time the sender signed.
    TimeChanged,
}

impl SignatureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::UnknownSigner => "unknown_signer",
            Self::BadSignature => "bad_signature",
            Self::SignerMismatch => "signer_mismatch",
            Self::Moved => "moved",
            Self::StepReordered => "step_reordered",
            Self::Relabelled => "relabelled",
            Self::RecipientsChanged => "recipients_changed",
            Self::TimeChanged => "time_changed",
        }
    }

    /// Whether the row was changed after signing: its content is withheld.
    pub fn is_place_difference(self) -> bool {
        matches!(
            self,
            Self::Moved
                | Self::StepReordered
                | Self::Relabelled
                | Self::RecipientsChanged
                | Self::TimeChanged
        )
    }
}

/// An envelope decrypted for one reader, before any verdict.
pub(super) struct RawOpening {
    pub keyring: Arc<Keyring>,
    pub principal: Principal,
    pub row: EnvelopeRow,
    /// Every key slot of the item (for the signed recipients).
    pub slots: Vec<SlotRow>,
    pub opened: renkei_crypto::OpenedEnvelope,
}

impl RawOpening {
    /// `Tampered` naming the difference when the row no longer sits where its
    /// sender signed it: for paths that hand out content without a verdict
    /// (attachments, archives, the opening item's patient on a print).
    pub fn refuse_if_moved(&self) -> Result<()> {
        match place::check(&self.row, &self.slots, self.opened.inner.place.as_ref()) {
            PlaceCheck::Differs(status) => Err(Error::Tampered(status.as_str())),
            PlaceCheck::Matches | PlaceCheck::NotSigned => Ok(()),
        }
    }
}

/// An item opened for one reader.
pub struct OpenedItem {
    pub id: String,
    pub kind: String,
    pub sender_id: String,
    pub created_at: i64,
    pub subject: String,
    pub patient_id: String,
    pub patient_name: String,
    pub body: String,
    /// Structured form fields, as signed.
    pub fields: Vec<(String, String)>,
    pub thread_id: Option<String>,
    pub step: Option<String>,
    pub signature: SignatureStatus,
    /// False for items sealed before places were signed ("older format").
    pub place_signed: bool,
    pub signer_fingerprint: Option<String>,
    /// SHA-256 (hex) of the signed content.
    pub signed_sha256: String,
    pub attachments: Vec<AttachmentInfo>,
    /// The principal whose key slot opened it.
    pub opened_as: Principal,
    pub consent: Option<Consent>,
}

impl OpenedItem {
    /// The error an edge that must not show this item answers with (an API
    /// 422 naming the difference), when its row was changed after signing.
    pub fn place_error(&self) -> Option<Error> {
        self.signature
            .is_place_difference()
            .then(|| Error::Tampered(self.signature.as_str()))
    }
}

impl std::fmt::Debug for OpenedItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedItem")
            .field("id", &self.id)
            .field("signature", &self.signature)
            .field("content", &"<redacted>")
            .finish()
    }
}

impl Postroom {
    /// Which of this reader's principals holds a slot on the item; `NotFound` when
    /// none does, so an outsider cannot tell whether the item exists.
    pub(crate) async fn reader_principal(&self, keyring: &Keyring, id: &str) -> Result<Principal> {
        Ok(self.reader_slots(keyring, id).await?.0)
    }

    /// `reader_principal`, with every key slot of the item.
    async fn reader_slots(&self, keyring: &Keyring, id: &str) -> Result<(Principal, Vec<SlotRow>)> {
        let slots = self.store.envelope_slots(id).await?;
        let principal = keyring
            .principals()
            .into_iter()
            .find(|p| slots.iter().any(|s| s.principal == p.key()))
            .ok_or(Error::NotFound("item"))?;
        Ok((principal, slots))
    }

    pub(super) async fn open_raw(&self, session: &CurrentSession, id: &str) -> Result<RawOpening> {
        let keyring = self.keyring(session)?;
        let (principal, slots) = self.reader_slots(&keyring, id).await?;
        let row = self
            .store
            .envelope(id)
            .await?
            .ok_or(Error::NotFound("item"))?;
        let envelope = SealedEnvelope::from_bytes(row.body.clone());
        let lookup = self.signer_lookup();
        let kr = keyring.clone();
        let p = principal.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let key = kr
                .opener_for(&p, &envelope)
                .ok_or(Error::NotFound("item"))?;
            renkei_crypto::open(&envelope, key, lookup).map_err(crypto)
        })
        .await
        .map_err(|e| Error::Internal(format!("open task: {e}")))??;
        Ok(RawOpening {
            keyring,
            principal,
            row,
            slots,
            opened,
        })
    }

    /// The envelope opened with the session's key, reusing the session's
    /// recent opening of it: the key slots are checked every time (access
    /// taken away is taken away at once), the cryptography only the first.
    pub(super) async fn open_recent(
        &self,
        session: &CurrentSession,
        id: &str,
    ) -> Result<Arc<renkei_crypto::OpenedEnvelope>> {
        let keyring = self.keyring(session)?;
        if let Some(opened) = keyring.recent.get(id) {
            self.reader_principal(&keyring, id).await?;
            return Ok(opened);
        }
        let raw = self.open_raw(session, id).await?;
        raw.refuse_if_moved()?;
        let RawOpening {
            keyring, opened, ..
        } = raw;
        let opened = Arc::new(opened);
        keyring.recent.put(id, opened.clone());
        Ok(opened)
    }

    /// A signer's certificate by fingerprint, for `renkei_crypto::open` on a
    /// blocking thread: from the process cache, else the store.
    fn signer_lookup(
        &self,
    ) -> impl Fn(&Fingerprint) -> Option<Certificate> + Send + Sync + 'static {
        let store = self.store.clone();
        let handle = tokio::runtime::Handle::current();
        let signers = self.signers.clone();
        move |fp: &Fingerprint| {
            let hex = fp.to_hex();
            if let Some((_, cert)) = signers.lock().ok().and_then(|m| m.get(&hex).cloned()) {
                return Some(cert);
            }
            let (account, bytes) = handle
                .block_on(store.cert_by_fingerprint(&hex))
                .ok()
                .flatten()?;
            let cert = Certificate::from_bytes(&bytes).ok()?;
            if let Ok(mut m) = signers.lock() {
                if m.len() >= PARSED_CERTS {
                    m.clear();
                }
                m.insert(hex, (account, cert.clone()));
            }
            Some(cert)
        }
    }

    /// The signature status of an opened item: a valid signature must also be
    /// by the key of the account the envelope row and the inner message name.
    async fn signature_status(
        &self,
        row: &EnvelopeRow,
        slots: &[SlotRow],
        opened: &renkei_crypto::OpenedEnvelope,
    ) -> Result<SignatureStatus> {
        let signature = self.signer_status(row, opened).await?;
        if signature != SignatureStatus::Valid {
            return Ok(signature);
        }
        Ok(
            match place::check(row, slots, opened.inner.place.as_ref()) {
                PlaceCheck::Differs(status) => status,
                PlaceCheck::Matches | PlaceCheck::NotSigned => SignatureStatus::Valid,
            },
        )
    }

    /// Whether the signature is good and by the account the row and the inner
    /// message name.
    async fn signer_status(
        &self,
        row: &EnvelopeRow,
        opened: &renkei_crypto::OpenedEnvelope,
    ) -> Result<SignatureStatus> {
        let signature = match opened.verification {
            Verification::Valid => SignatureStatus::Valid,
            Verification::UnknownSigner => SignatureStatus::UnknownSigner,
            Verification::BadSignature | Verification::AttachmentChanged => {
                return Ok(SignatureStatus::BadSignature);
            }
        };
        if signature != SignatureStatus::Valid {
            return Ok(signature);
        }
        let cached = opened.signer.as_ref().and_then(|fp| {
            self.signers
                .lock()
                .ok()
                .and_then(|m| m.get(fp).map(|(account, _)| account.clone()))
        });
        let signer_account = match (&opened.signer, cached) {
            (_, Some(account)) => Some(account),
            (Some(fp), None) => self
                .store
                .cert_by_fingerprint(fp)
                .await?
                .map(|(account, _)| account),
            (None, None) => None,
        };
        if signer_account.as_deref() != Some(row.sender_id.as_str())
            || opened.inner.sender.account_id != row.sender_id
        {
            return Ok(SignatureStatus::SignerMismatch);
        }
        Ok(SignatureStatus::Valid)
    }

    /// Opens many items without marking anything (a mail client listing a
    /// folder): two queries for all of them, and the decryption spread over two
    /// threads. Each ID gets its own answer; one the reader holds no slot of is
    /// `NotFound`, as with `peek`.
    pub async fn peek_many(
        &self,
        session: &CurrentSession,
        ids: &[String],
    ) -> Result<Vec<(String, Result<OpenedItem>)>> {
        let keyring = self.keyring(session)?;
        let principals = keyring.principals();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let store = &self.store;
        let slots = store.slots_of(&refs).await?;
        let mut rows: std::collections::HashMap<String, EnvelopeRow> = store
            .envelopes_by_ids(&refs)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        let mut work = Vec::with_capacity(ids.len());
        for id in ids {
            // The keyring's order decides which slot opens it, as in `reader_principal`.
            let principal = principals
                .iter()
                .find(|p| {
                    let k = p.key();
                    slots
                        .iter()
                        .any(|s| s.envelope_id == *id && s.principal == k)
                })
                .cloned();
            match (principal, rows.remove(id)) {
                (Some(p), Some(row)) => work.push((p, row)),
                _ => out.push((id.clone(), Err(Error::NotFound("item")))),
            }
        }
        // Each item read is a view in the audit trail, as with `peek`.
        let views = work
            .iter()
            .map(|(_, row)| {
                AuditEvent::by(session, action::VIEW)
                    .item(row.id.clone())
                    .detail("peek")
            })
            .collect();
        self.audit.record_many(views).await?;
        let lookup = self.signer_lookup();
        let kr = keyring.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let open_one = |(p, row): (Principal, EnvelopeRow)| {
                let envelope = SealedEnvelope::from_bytes(row.body.clone());
                let r = kr
                    .opener_for(&p, &envelope)
                    .ok_or(Error::NotFound("item"))
                    .and_then(|key| renkei_crypto::open(&envelope, key, &lookup).map_err(crypto));
                (p, row, r)
            };
            let mut second = work;
            let first: Vec<_> = second.drain(..second.len() / 2).collect();
            std::thread::scope(|s| {
                let other = s.spawn(|| first.into_iter().map(open_one).collect::<Vec<_>>());
                let mut done: Vec<_> = second.into_iter().map(open_one).collect();
                match other.join() {
                    Ok(mut v) => {
                        v.append(&mut done);
                        Ok(v)
                    }
                    Err(_) => Err(Error::Internal("open thread panicked".into())),
                }
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("open task: {e}")))??;
        for (principal, row, r) in opened {
            let id = row.id.clone();
            let item = match r {
                Ok(o) => match self.signature_status(&row, &slots, &o).await {
                    Ok(sig) => assemble(row, principal, &o, sig),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            out.push((id, item));
        }
        Ok(out)
    }

    /// Opens an item for the reader, with its signature status.
    pub async fn open(&self, session: &CurrentSession, id: &str) -> Result<OpenedItem> {
        self.open_marking(session, id, true).await
    }

    /// Opens without marking anything seen or received (a mail client's
    /// `BODY.PEEK`, a search over content).
    pub async fn peek(&self, session: &CurrentSession, id: &str) -> Result<OpenedItem> {
        self.open_marking(session, id, false).await
    }

    pub(super) async fn open_marking(
        &self,
        session: &CurrentSession,
        id: &str,
        mark: bool,
    ) -> Result<OpenedItem> {
        let RawOpening {
            principal,
            row,
            slots,
            opened,
            ..
        } = self.open_raw(session, id).await?;
        let mut view = AuditEvent::by(session, action::VIEW).item(id);
        if !mark {
            view = view.detail("peek");
        }
        self.audit.record(view).await?;
        let signature = self.signature_status(&row, &slots, &opened).await?;
        // Opening marks the reader's own entry seen (oversight readers have none).
        if mark {
            match self
                .store
                .set_flags(id, &principal.key(), Some(true), None, None)
                .await
            {
                Ok(()) | Err(crate::store::StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Opening by the addressee (or the assigned doctor, or the shared inbox)
        // is the thread's receipt.
        if mark && row.thread_id.is_some() {
            let reader = session.require_ready()?;
            self.store
                .mark_thread_opened(
                    id,
                    &principal.key(),
                    reader.id.as_str(),
                    self.clock.now_millis(),
                )
                .await?;
        }
        assemble(row, principal, &opened, signature)
    }
}

/// An `OpenedItem` from its row, the principal that opened it and the crypto's
/// result. A row changed after signing keeps its clear metadata and status
/// but none of the content, so no edge can show it under the wrong place.
fn assemble(
    row: EnvelopeRow,
    principal: Principal,
    opened: &renkei_crypto::OpenedEnvelope,
    signature: SignatureStatus,
) -> Result<OpenedItem> {
    let inner = &opened.inner;
    let mut item = OpenedItem {
        id: row.id.clone(),
        kind: row.kind.clone(),
        sender_id: row.sender_id.clone(),
        created_at: row.created_at,
        subject: inner.headers.subject.clone(),
        patient_id: inner.headers.patient_id.clone(),
        patient_name: inner.headers.patient_name.clone(),
        body: inner.body.clone(),
        fields: inner
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect(),
        thread_id: row.thread_id.clone(),
        step: row.step.clone(),
        signature,
        place_signed: inner.place.is_some(),
        signer_fingerprint: opened.signer.clone(),
        signed_sha256: hex::encode(opened.signed_sha256),
        attachments: inner
            .manifest
            .iter()
            .enumerate()
            .filter(|(index, _)| Some(*index) != record_index(&inner.manifest))
            .map(|(index, m)| AttachmentInfo {
                index,
                name: m.name.clone(),
                media_type: m.media_type.clone(),
                size: m.size,
                sha256: hex::encode(m.sha256),
            })
            .collect(),
        opened_as: principal,
        consent: match (
            &row.consent_obtained_on,
            &row.consent_method,
            &row.consent_obtained_by,
        ) {
            (Some(on), Some(method), Some(by)) => Some(Consent {
                obtained_on: chrono::NaiveDate::parse_from_str(on, "%Y-%m-%d")
                    .map_err(|e| Error::Internal(format!("stored consent date: {e}")))?,
                method: ConsentMethod::parse(method)?,
                obtained_by: by.clone(),
                given_by: ConsentGiver::from_stored(
                    row.consent_given_by.as_deref(),
                    row.consent_relation.as_deref(),
                ),
            }),
            _ => None,
        },
    };
    if signature.is_place_difference() {
        item.subject.clear();
        item.patient_id.clear();
        item.patient_name.clear();
        item.body.clear();
        item.fields.clear();
        item.attachments.clear();
    }
    Ok(item)
}
