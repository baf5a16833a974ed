//! The postroom: sealing what a person sends, opening what a person may read,
//! and adding key slots when someone forwards inside their facility.
//! Access is enforced twice: by the slot table here, and by the crypto (no key
//! slot, no session key).

use std::io::{Read, Write};
use std::sync::Arc;

use renkei_crypto::{
    AttachmentInput, BlindIndexKey, Certificate, CryptoError, Draft, Fingerprint, ProtectedHeaders,
    SealedEnvelope, SenderInfo, Verification,
};

use crate::account::{AccountId, Role};
use crate::attachment_policy::{PolicedReader, Refusal, RefusedAttachment};
use crate::audit::{AuditEvent, action};
use crate::auth::CurrentSession;
use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::intake::{EnteredPatient, IntakeLog, IntakeReader, IntakeRecord, RecordReader};
use crate::keys::{Keyring, Principal};
use crate::store::queue::{DeliveryStatus, MailboxEntryRow, MailboxListing};
use crate::store::vault::{AttachmentRow, EnvelopeMeta, EnvelopeRow, SlotRow};

pub use crate::blob::BlobStore;
use crate::blob::EarlySync;

/// Whom a sender addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Person(AccountId),
    /// The regional-liaison office of a facility (for when the reading doctor is unknown).
    LiaisonInbox(FacilityCode),
}

impl Recipient {
    /// The key-slot principal this recipient stands for (unchecked).
    pub fn principal(&self) -> Principal {
        match self {
            Self::Person(id) => Principal::Account(id.clone()),
            Self::LiaisonInbox(code) => Principal::LiaisonInbox(code.clone()),
        }
    }
}

/// What a person writes. Plaintext: never stored, never logged.
pub struct Outgoing {
    pub kind: String,
    pub to: Vec<Recipient>,
    pub subject: String,
    pub patient_id: String,
    pub patient_name: String,
    pub body: String,
    /// The patient's consent (required whenever patient data is sent).
    pub consent: Option<Consent>,
}

/// How a patient's consent was given (患者同意).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentMethod {
    Written,
    Verbal,
}

impl ConsentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Written => "written",
            Self::Verbal => "verbal",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "written" | "書面" => Ok(Self::Written),
            "verbal" | "口頭" => Ok(Self::Verbal),
            _ => Err(Error::invalid(
                "consent.method",
                "consent method must be written or verbal",
                "同意の取得方法は「書面」または「口頭」です。",
            )),
        }
    }
}

/// The consent record kept with an item: when, how, and by which staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub obtained_on: chrono::NaiveDate,
    pub method: ConsentMethod,
    pub obtained_by: String,
}

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
}

/// An attachment's blob, created on its first write: a study of thousands of
/// files holds one open file and one buffer at a time, not one per file
/// (which ran out of file descriptors and held a 1 MiB buffer each).
struct LazyBlob {
    blobs: BlobStore,
    key: String,
    writer: Option<crate::blob::BlobWriter>,
    pending: Arc<std::sync::Mutex<Option<crate::blob::PendingBlob>>>,
    early_sync: Option<EarlySync>,
}

impl LazyBlob {
    fn new(
        blobs: &BlobStore,
        key: &str,
        early_sync: Option<&EarlySync>,
    ) -> (
        Self,
        Arc<std::sync::Mutex<Option<crate::blob::PendingBlob>>>,
    ) {
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

    fn writer(&mut self) -> std::io::Result<&mut crate::blob::BlobWriter> {
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

/// How far a reader may trust an opened item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureStatus {
    Valid,
    UnknownSigner,
    BadSignature,
    /// A good signature, but not by the account the envelope says sent it.
    SignerMismatch,
}

impl SignatureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::UnknownSigner => "unknown_signer",
            Self::BadSignature => "bad_signature",
            Self::SignerMismatch => "signer_mismatch",
        }
    }
}

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
    entry: renkei_crypto::ManifestEntry,
    file: std::fs::File,
}

impl PreparedAttachment {
    /// Blocking: decrypts into `out`, checking size and SHA-256 against the signed
    /// manifest. On `Tampered("attachment")` whatever reached `out` must be discarded.
    pub fn stream(self, out: impl Write + Send) -> Result<u64> {
        renkei_crypto::open_attachment(
            std::io::BufReader::with_capacity(1 << 20, self.file),
            &self.entry,
            out,
        )
        .map(|o| o.size)
        .map_err(crypto)
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
    pub signer_fingerprint: Option<String>,
    /// SHA-256 (hex) of the signed content.
    pub signed_sha256: String,
    pub attachments: Vec<AttachmentInfo>,
    /// The principal whose key slot opened it.
    pub opened_as: Principal,
    pub consent: Option<Consent>,
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

pub struct Postroom {
    directory: Arc<Directory>,
    blobs: BlobStore,
    blind_key: Arc<BlindIndexKey>,
    /// Parsed certificates keyed by the SHA-256 of their stored bytes: the rows are
    /// still read on every send (a new key takes effect at once), only the parse,
    /// a sixth of a small item's CPU, is saved.
    parsed: std::sync::Mutex<std::collections::HashMap<[u8; 32], Certificate>>,
    /// Signer fingerprint → (account, certificate). A fingerprint names one
    /// certificate forever (replaced keys are retired, never reused), so
    /// opening an item looks its signer up once per process, not per item.
    signers: Arc<std::sync::Mutex<std::collections::HashMap<String, (String, Certificate)>>>,
    /// Signalled after every committed submission, so an idle delivery worker
    /// starts at once instead of at its next poll.
    delivery_wake: Arc<tokio::sync::Notify>,
}

/// Beyond this many distinct certificates the cache starts over.
const PARSED_CERTS: usize = 4096;

fn crypto(e: CryptoError) -> Error {
    match e {
        CryptoError::NotAddressedToYou => Error::NotFound("item"),
        CryptoError::KeySlotDamaged => Error::Tampered("key_slot"),
        CryptoError::BodyDamaged | CryptoError::Malformed(_) => Error::Tampered("body"),
        CryptoError::AttachmentChanged => Error::Tampered("attachment"),
        other => Error::Internal(format!("crypto: {other}")),
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

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

impl Postroom {
    pub fn new(directory: Arc<Directory>, blobs: BlobStore, blind_key: Arc<BlindIndexKey>) -> Self {
        Self {
            parsed: std::sync::Mutex::default(),
            signers: Arc::default(),
            delivery_wake: Arc::default(),
            directory,
            blobs,
            blind_key,
        }
    }

    /// What a delivery worker in this process waits on between polls.
    pub fn delivery_wake(&self) -> Arc<tokio::sync::Notify> {
        self.delivery_wake.clone()
    }

    /// The blind index of a patient of `facility` (what the envelope row of an
    /// item sent by that facility about that patient carries).
    pub fn blind_index_of(&self, facility: &FacilityCode, patient_id: &str) -> Vec<u8> {
        renkei_crypto::blind_index(&self.blind_key, facility.as_str(), patient_id).to_vec()
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub(crate) fn keyring(&self, session: &CurrentSession) -> Result<Arc<Keyring>> {
        session.require_ready()?;
        // The operator holds no key and so can read or send nothing.
        self.directory.keyring(session).ok_or(Error::Forbidden)
    }

    async fn account_cert(&self, id: &AccountId) -> Result<Certificate> {
        let row = self
            .directory
            .store()
            .account_key(id)
            .await?
            .ok_or(Error::NotFound("recipient"))?;
        self.parse_cert(&row.cert)
    }

    async fn facility_cert(&self, code: &FacilityCode, role: &str) -> Result<Option<Certificate>> {
        match self.directory.store().facility_key(code, role).await? {
            Some(row) => Ok(Some(self.parse_cert(&row.cert)?)),
            None => Ok(None),
        }
    }

    fn parse_cert(&self, bytes: &[u8]) -> Result<Certificate> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(bytes).into();
        if let Some(c) = self.parsed.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let cert = Certificate::from_bytes(bytes).map_err(crypto)?;
        if let Ok(mut m) = self.parsed.lock() {
            if m.len() >= PARSED_CERTS {
                m.clear();
            }
            m.insert(key, cert.clone());
        }
        Ok(cert)
    }

    /// The certificate behind a key-slot principal; `None` for a facility key not
    /// made yet (no eligible member has signed in).
    pub(crate) async fn cert_for(&self, principal: &Principal) -> Result<Option<Certificate>> {
        match principal {
            Principal::Account(id) => self.account_cert(id).await.map(Some),
            Principal::LiaisonInbox(code) => self.facility_cert(code, "liaison").await,
            Principal::Oversight(code) => self.facility_cert(code, "oversight").await,
        }
    }

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
        let sender = session.require_ready()?.clone();
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
        let id = new_id();
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
            },
            attachments,
        )
        .await
    }

    /// The principal a recipient stands for, checked: a person must be an active
    /// member of a facility, a liaison inbox must have its key.
    pub(crate) async fn recipient_principal(&self, r: &Recipient) -> Result<Principal> {
        match r {
            Recipient::Person(id) => {
                let account = self
                    .directory
                    .account(id)
                    .await
                    .map_err(|_| Error::NotFound("recipient"))?;
                if account.removed || account.role == Role::Operator {
                    return Err(Error::NotFound("recipient"));
                }
                Ok(Principal::Account(id.clone()))
            }
            Recipient::LiaisonInbox(code) => {
                if self.facility_cert(code, "liaison").await?.is_none() {
                    return Err(Error::invalid(
                        "to",
                        format!("facility {code} has no liaison office account yet"),
                        "宛先の施設には地域連携室IDがまだありません。",
                    ));
                }
                Ok(Principal::LiaisonInbox(code.clone()))
            }
        }
    }

    /// Key slots for `principals`, the sender, and the oversight key of every
    /// facility involved (clerks follow their facility's items).
    pub(crate) async fn slots_with_oversight(
        &self,
        sender: &crate::account::Account,
        principals: Vec<Principal>,
    ) -> Result<Vec<(Principal, Certificate)>> {
        self.resolve_slots(sender, &[], principals).await
    }

    /// Checks `recipients` (as `recipient_principal` does) and returns the key
    /// slots for them, `principals`, the sender, and the oversight key of every
    /// facility involved — with two queries however many there are (a lookup
    /// per principal made each submission wait on half a dozen round trips).
    pub(crate) async fn resolve_slots(
        &self,
        sender: &crate::account::Account,
        recipients: &[Recipient],
        principals: Vec<Principal>,
    ) -> Result<Vec<(Principal, Certificate)>> {
        let store = self.directory.store();
        let mut all: Vec<Principal> = recipients.iter().map(Recipient::principal).collect();
        all.extend(principals);
        all.push(Principal::Account(sender.id.clone()));
        let mut unique: Vec<Principal> = Vec::with_capacity(all.len());
        for p in all {
            if !unique.contains(&p) {
                unique.push(p);
            }
        }
        // Accounts other than the sender (known from the session): their
        // facilities, and whether a person addressed may still receive.
        let others: Vec<&str> = unique
            .iter()
            .filter_map(|p| match p {
                Principal::Account(id) if *id != sender.id => Some(id.as_str()),
                _ => None,
            })
            .collect();
        let accounts = if others.is_empty() {
            Vec::new()
        } else {
            store.accounts_by_ids(&others).await?
        };
        for r in recipients {
            if let Recipient::Person(id) = r {
                let ok = *id == sender.id
                    || accounts
                        .iter()
                        .any(|a| a.id == *id && !a.removed && a.role != Role::Operator);
                if !ok {
                    return Err(Error::NotFound("recipient"));
                }
            }
        }
        let mut facilities: Vec<FacilityCode> = sender.facility.iter().cloned().collect();
        for p in &unique {
            match p {
                Principal::Account(id) => {
                    if let Some(a) = accounts.iter().find(|a| a.id == *id) {
                        facilities.extend(a.facility.clone());
                    }
                }
                Principal::LiaisonInbox(code) | Principal::Oversight(code) => {
                    facilities.push(code.clone())
                }
            }
        }
        facilities.dedup();
        let account_ids: Vec<&str> = unique
            .iter()
            .filter_map(|p| match p {
                Principal::Account(id) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        let mut codes: Vec<&str> = facilities.iter().map(|c| c.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        let certs = store.slot_certs(&account_ids, &codes).await?;
        let cert_of = |p: &Principal| -> Result<Option<Certificate>> {
            let key = p.key();
            match certs.iter().find(|(k, _)| *k == key) {
                Some((_, bytes)) => self.parse_cert(bytes).map(Some),
                None => Ok(None),
            }
        };
        let mut slots: Vec<(Principal, Certificate)> = Vec::with_capacity(unique.len() + 2);
        for p in unique {
            if let Some(cert) = cert_of(&p)? {
                slots.push((p, cert));
                continue;
            }
            let addressed_inbox = |code: &FacilityCode| {
                recipients
                    .iter()
                    .any(|r| matches!(r, Recipient::LiaisonInbox(c) if c == code))
            };
            return Err(match &p {
                Principal::LiaisonInbox(code) if addressed_inbox(code) => Error::invalid(
                    "to",
                    format!("facility {code} has no liaison office account yet"),
                    "宛先の施設には地域連携室IDがまだありません。",
                ),
                _ => Error::NotFound("recipient"),
            });
        }
        for code in facilities {
            let p = Principal::Oversight(code);
            if slots.iter().any(|(q, _)| *q == p) {
                continue;
            }
            if let Some(cert) = cert_of(&p)? {
                slots.push((p, cert));
            }
        }
        Ok(slots)
    }

    /// Seals one envelope to `sealing.slots` (the sender's own slot included by the
    /// caller), stores it with its queue entry and thread change, and returns its
    /// ID once committed.
    pub(crate) async fn seal_and_store(
        &self,
        session: &CurrentSession,
        sealing: Sealing,
        attachments: Vec<OutgoingAttachment>,
    ) -> Result<String> {
        let keyring = self.keyring(session)?;
        let sender = session.require_ready()?.clone();
        let audit = match &sealing.thread {
            None => AuditEvent::by(session, action::SEND),
            Some(link) => {
                let what = match link.change {
                    crate::store::thread::ThreadChange::Open(_) => action::THREAD_OPEN,
                    crate::store::thread::ThreadChange::Advance { .. } => action::THREAD_STEP,
                };
                let step = link.step.as_deref().unwrap_or("open");
                AuditEvent::by(session, what)
                    .detail(format!("thread={} step={step}", link.thread_id))
            }
        };
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
            if c.obtained_on > crate::booking::now_jst().date() {
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
        let slots = sealing.slots;
        let id = sealing.envelope_id;
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
        };
        if attachments
            .iter()
            .any(|a| a.media_type == crate::intake::RECORD_MEDIA_TYPE)
        {
            return Err(Error::invalid(
                "attachment",
                "that media type is reserved for the intake record",
                "この種類のファイルは添付できません。",
            ));
        }
        // Seal on a blocking thread: attachments stream from their sources to blobs.
        let blobs = self.blobs.clone();
        let env_id = id.clone();
        let certs: Vec<Certificate> = slots.iter().map(|(_, c)| c.clone()).collect();
        let kr = keyring.clone();
        let sealed = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut inputs = Vec::new();
            let mut pending = Vec::new();
            let mut keys = Vec::new();
            let log = IntakeLog::default();
            let count = attachments.len();
            let early_sync = (count > 0).then(EarlySync::start);
            for (i, a) in attachments.into_iter().enumerate() {
                let key = format!("{env_id}/{i}");
                let (file, p) = LazyBlob::new(&blobs, &key, early_sync.as_ref());
                // The allow-list (no executables, scripts, macros) on the first
                // bytes, then imaging intake (DICOM placed in a study, images
                // readable), both judged as the file streams.
                let policed = PolicedReader::new(a.source, a.name.clone());
                let checked = IntakeReader::new(policed, i, &a.name, &a.media_type, log.clone());
                inputs.push(AttachmentInput {
                    name: a.name,
                    media_type: a.media_type,
                    source: Box::new(checked),
                    sink: Box::new(file),
                });
                pending.push(p);
                keys.push(key);
            }
            if count > 0 {
                // Last, so every file before it has been read when it is made.
                let key = format!("{env_id}/{count}");
                let (file, p) = LazyBlob::new(&blobs, &key, early_sync.as_ref());
                inputs.push(AttachmentInput {
                    name: crate::intake::RECORD_NAME.into(),
                    media_type: crate::intake::RECORD_MEDIA_TYPE.into(),
                    source: Box::new(RecordReader::new(log.clone(), patient.clone())),
                    sink: Box::new(file),
                });
                pending.push(p);
                keys.push(key);
            }
            let refs: Vec<&Certificate> = certs.iter().collect();
            let sealed =
                renkei_crypto::seal(&kr.user, &refs, &draft, inputs).map_err(|e| match e {
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
            Ok((sealed, pending, keys, check.mismatches.len()))
        })
        .await
        .map_err(|e| Error::Internal(format!("seal task: {e}")))
        .and_then(|r| r);
        let (sealed, pending, keys, confirmed_mismatches) = match sealed {
            Ok(v) => v,
            Err(e) => {
                // The pending blobs are gone; so goes the item's empty folder.
                let _ = std::fs::remove_dir(self.blobs.root().join(&id));
                return Err(e);
            }
        };
        let mut audit = audit;
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
            for key in &keys {
                let _ = self.blobs.delete(key);
            }
            return Err(Error::Internal(format!("blob commit: {e}")));
        }
        let t = now();
        let body = sealed.envelope.to_bytes();
        let row = EnvelopeRow {
            id: id.clone(),
            kind: sealing.kind,
            sender_id: sender.id.as_str().into(),
            sender_facility: sender.facility.as_ref().map(|c| c.to_string()),
            created_at: t,
            body_size: i64::try_from(body.len()).unwrap_or(i64::MAX),
            body,
            blind_index,
            consent_obtained_on: sealing
                .consent
                .as_ref()
                .map(|c| c.obtained_on.format("%Y-%m-%d").to_string()),
            consent_method: sealing
                .consent
                .as_ref()
                .map(|c| c.method.as_str().to_string()),
            consent_obtained_by: sealing
                .consent
                .as_ref()
                .map(|c| c.obtained_by.trim().to_string()),
            thread_id: sealing.thread.as_ref().map(|t| t.thread_id.clone()),
            step: sealing.thread.as_ref().and_then(|t| t.step.clone()),
            thread_seq: sealing.thread.as_ref().map(|t| t.seq),
        };
        let slot_rows: Vec<SlotRow> = slots
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
        if let Err(e) = self
            .directory
            .store()
            .insert_envelope(
                &row,
                &slot_rows,
                &attachment_rows,
                sealing.thread.as_ref().map(|t| &t.change),
            )
            .await
        {
            for key in &keys {
                let _ = self.blobs.delete(key);
            }
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
        // Committed already: a failed entry is logged, not turned into a failed
        // send that the client would repeat.
        self.directory.audit().note(audit.item(id.clone())).await;
        Ok(id)
    }

    /// Which of this reader's principals holds a slot on the item; `NotFound` when
    /// none does, so an outsider cannot tell whether the item exists.
    pub(crate) async fn reader_principal(&self, keyring: &Keyring, id: &str) -> Result<Principal> {
        let slots = self.directory.store().envelope_slots(id).await?;
        keyring
            .principals()
            .into_iter()
            .find(|p| slots.iter().any(|s| s.principal == p.key()))
            .ok_or(Error::NotFound("item"))
    }

    async fn open_raw(
        &self,
        session: &CurrentSession,
        id: &str,
    ) -> Result<(
        Arc<Keyring>,
        Principal,
        EnvelopeRow,
        renkei_crypto::OpenedEnvelope,
    )> {
        let keyring = self.keyring(session)?;
        let principal = self.reader_principal(&keyring, id).await?;
        let row = self
            .directory
            .store()
            .envelope(id)
            .await?
            .ok_or(Error::NotFound("item"))?;
        let envelope = SealedEnvelope::from_bytes(row.body.clone());
        let lookup = self.signer_lookup();
        let kr = keyring.clone();
        let p = principal.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let key = kr.key_for(&p).ok_or(Error::NotFound("item"))?;
            renkei_crypto::open(&envelope, key, lookup).map_err(crypto)
        })
        .await
        .map_err(|e| Error::Internal(format!("open task: {e}")))??;
        Ok((keyring, principal, row, opened))
    }

    /// The envelope opened with the session's key, reusing the session's
    /// recent opening of it: the key slots are checked every time (access
    /// taken away is taken away at once), the cryptography only the first.
    async fn open_recent(
        &self,
        session: &CurrentSession,
        id: &str,
    ) -> Result<Arc<renkei_crypto::OpenedEnvelope>> {
        let keyring = self.keyring(session)?;
        if let Some(opened) = keyring.recent.get(id) {
            self.reader_principal(&keyring, id).await?;
            return Ok(opened);
        }
        let (keyring, _, _, opened) = self.open_raw(session, id).await?;
        let opened = Arc::new(opened);
        keyring.recent.put(id, opened.clone());
        Ok(opened)
    }

    /// A signer's certificate by fingerprint, for `renkei_crypto::open` on a
    /// blocking thread: from the process cache, else the store.
    fn signer_lookup(
        &self,
    ) -> impl Fn(&Fingerprint) -> Option<Certificate> + Send + Sync + 'static {
        let store = self.directory.store().clone();
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
                .directory
                .store()
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
        let keys: Vec<String> = principals.iter().map(Principal::key).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let store = self.directory.store();
        let slots = store.slots_held(&refs, &keys).await?;
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
        self.directory.audit().record_many(views).await?;
        let lookup = self.signer_lookup();
        let kr = keyring.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let open_one = |(p, row): (Principal, EnvelopeRow)| {
                let r = kr
                    .key_for(&p)
                    .ok_or(Error::NotFound("item"))
                    .and_then(|key| {
                        let envelope = SealedEnvelope::from_bytes(row.body.clone());
                        renkei_crypto::open(&envelope, key, &lookup).map_err(crypto)
                    });
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
                Ok(o) => match self.signature_status(&row, &o).await {
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

    async fn open_marking(
        &self,
        session: &CurrentSession,
        id: &str,
        mark: bool,
    ) -> Result<OpenedItem> {
        let (_, principal, row, opened) = self.open_raw(session, id).await?;
        let mut view = AuditEvent::by(session, action::VIEW).item(id);
        if !mark {
            view = view.detail("peek");
        }
        self.directory.audit().record(view).await?;
        let signature = self.signature_status(&row, &opened).await?;
        // Opening marks the reader's own entry seen (oversight readers have none).
        if mark {
            match self
                .directory
                .store()
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
            self.directory
                .store()
                .mark_thread_opened(
                    id,
                    &principal.key(),
                    reader.id.as_str(),
                    chrono::Utc::now().timestamp_millis(),
                )
                .await?;
        }
        assemble(row, principal, &opened, signature)
    }

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
        let keyring = self.keyring(session)?;
        let item = self.open_marking(session, id, false).await?;
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
        let jst = chrono::FixedOffset::east_opt(9 * 3600)
            .ok_or_else(|| Error::Internal("JST offset".into()))?;
        let sealed_at = chrono::DateTime::from_timestamp(item.created_at, 0)
            .map(|t| {
                t.with_timezone(&jst)
                    .format("%Y-%m-%d %H:%M JST")
                    .to_string()
            })
            .unwrap_or_default();
        let me = session.require_ready()?;
        // A step (a report, a reply) names the patient through its thread's
        // opening item.
        let (mut patient_id, mut patient_name) =
            (item.patient_id.clone(), item.patient_name.clone());
        if patient_id.is_empty()
            && patient_name.is_empty()
            && let Some(thread) = &item.thread_id
            && let Some(row) = self.directory.store().thread(thread).await?
            && row.opener_id != item.id
            && let Ok((_, _, _, opener)) = self.open_raw(session, &row.opener_id).await
        {
            patient_id = opener.inner.headers.patient_id.clone();
            patient_name = opener.inner.headers.patient_name.clone();
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
        self.directory
            .audit()
            .record(
                AuditEvent::by(session, action::RENDER)
                    .item(id)
                    .detail("pdf"),
            )
            .await?;
        Ok((pdf, signature))
    }

    /// Opens the item once and readies one attachment for streaming: what it is
    /// (from the signed manifest) and its sealed blob.
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
        self.directory
            .audit()
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
    async fn prepare_attachment(
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
        let row = self
            .directory
            .store()
            .attachment(id, index as i64)
            .await?
            .ok_or(Error::NotFound("attachment"))?;
        let file = self
            .blobs
            .open(&row.blob_key)
            .map_err(|_| Error::Tampered("attachment"))?;
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
        self.directory
            .audit()
            .record(
                AuditEvent::by(session, action::VIEW)
                    .item(id)
                    .detail("intake_record"),
            )
            .await?;
        read_record(prepared).await.map(Some)
    }

    /// Renders frame `frame` of the DICOM attachment `index` as PNG with the
    /// given window: decrypted with the reader's key into memory (one
    /// instance, checked against the signed manifest), decoded, windowed.
    /// Audited as a render. A slice that cannot be decoded is
    /// `Error::Render`; the file itself still downloads.
    pub async fn render_slice(
        &self,
        session: &CurrentSession,
        id: &str,
        index: usize,
        frame: u32,
        window: imaging::WindowChoice,
    ) -> Result<imaging::Rendered> {
        let (prepared, record) = self
            .prepare_attachment(session, id, |_| Some(index))
            .await?
            .ok_or(Error::NotFound("attachment"))?;
        if record == Some(index) {
            return Err(Error::NotFound("attachment"));
        }
        self.directory
            .audit()
            .record(
                AuditEvent::by(session, action::RENDER)
                    .item(id)
                    .detail(format!("dicom attachment={index} frame={frame}")),
            )
            .await?;
        if prepared.info.size > MAX_RENDER_BYTES {
            return Err(imaging::RenderError::TooLarge {
                pixels: prepared.info.size,
            }
            .into());
        }
        tokio::task::spawn_blocking(move || -> Result<imaging::Rendered> {
            let mut bytes = Vec::with_capacity(prepared.info.size as usize);
            prepared.stream(&mut bytes)?;
            Ok(imaging::render_png(&bytes, frame, window)?)
        })
        .await
        .map_err(|e| Error::Internal(format!("render task: {e}")))?
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
        tokio::task::spawn_blocking(move || prepared.stream(out))
            .await
            .map_err(|e| Error::Internal(format!("attachment task: {e}")))?
    }

    /// Gives `to` a key slot on an envelope this session can open (a pathway handed
    /// to the next facility). Nothing is re-encrypted; an existing slot is kept.
    pub(crate) async fn extend_access(
        &self,
        keyring: &Keyring,
        id: &str,
        to: &Principal,
        cert: &Certificate,
        added_by: &AccountId,
    ) -> Result<()> {
        let slots = self.directory.store().envelope_slots(id).await?;
        if slots.iter().any(|s| s.principal == to.key()) {
            return Ok(());
        }
        let principal = self.reader_principal(keyring, id).await?;
        let key = keyring.key_for(&principal).ok_or(Error::NotFound("item"))?;
        let row = self
            .directory
            .store()
            .envelope(id)
            .await?
            .ok_or(Error::NotFound("item"))?;
        let envelope = SealedEnvelope::from_bytes(row.body);
        let new = renkei_crypto::add_key_slot(&envelope, key, cert).map_err(crypto)?;
        self.directory
            .store()
            .add_slot(
                id,
                new.as_bytes(),
                &SlotRow {
                    envelope_id: id.into(),
                    principal: to.key(),
                    added_by: Some(added_by.as_str().into()),
                    added_at: now(),
                },
            )
            .await?;
        Ok(())
    }

    /// Whether this session may hand item `id` on to `to`, and the principal whose
    /// key opens it for that. Forwarding stays inside the forwarder's facility and
    /// goes to a doctor: a liaison office forwards what its shared inbox holds, a
    /// doctor or liaison what was sent by or to them (or forwarded to them) —
    /// never through the oversight key, since colleagues' items are read-only.
    /// Writes nothing: [`Postroom::forward`] and the thread's forward check every
    /// envelope first.
    pub(crate) async fn forwarding_principal(
        &self,
        session: &CurrentSession,
        id: &str,
        to: &AccountId,
    ) -> Result<Principal> {
        let keyring = self.keyring(session)?;
        let account = session.require_ready()?;
        let (Role::Doctor | Role::Liaison, Some(code)) = (account.role, account.facility.as_ref())
        else {
            return Err(Error::Forbidden);
        };
        let slots = self.directory.store().envelope_slots(id).await?;
        let holds = |p: &Principal| slots.iter().any(|s| s.principal == p.key());
        let Some(principal) = keyring
            .principals()
            .into_iter()
            .filter(|p| !matches!(p, Principal::Oversight(_)))
            .find(&holds)
        else {
            // Readable only through the oversight key: seen, but not theirs to hand on.
            return Err(if keyring.principals().iter().any(holds) {
                Error::Forbidden
            } else {
                Error::NotFound("item")
            });
        };
        let target = self
            .directory
            .account(to)
            .await
            .map_err(|_| Error::NotFound("recipient"))?;
        if target.facility.as_ref() != Some(code) || target.removed || target.role != Role::Doctor {
            return Err(Error::invalid(
                "to",
                "items can be handed only to a doctor of the same facility",
                "転送先は自施設の医師のみです。",
            ));
        }
        if target.id == account.id {
            return Err(Error::invalid(
                "to",
                "forward to a colleague, not to yourself",
                "転送先にご自身は指定できません。",
            ));
        }
        Ok(principal)
    }

    /// Hands an item on inside the facility (see [`Postroom::forwarding_principal`]
    /// for who may): the doctor gets a key slot, made with the forwarder's own key
    /// (or the shared inbox's), and the item in their Inbox; nothing is re-encrypted.
    pub async fn forward(&self, session: &CurrentSession, id: &str, to: &AccountId) -> Result<()> {
        let principal = self.forwarding_principal(session, id, to).await?;
        let keyring = self.keyring(session)?;
        let account = session.require_ready()?;
        let key = keyring.key_for(&principal).ok_or(Error::NotFound("item"))?;
        let cert = self.account_cert(to).await?;
        let row = self
            .directory
            .store()
            .envelope(id)
            .await?
            .ok_or(Error::NotFound("item"))?;
        let envelope = SealedEnvelope::from_bytes(row.body);
        let new = renkei_crypto::add_key_slot(&envelope, key, &cert).map_err(crypto)?;
        self.directory
            .store()
            .add_slot(
                id,
                new.as_bytes(),
                &SlotRow {
                    envelope_id: id.into(),
                    principal: Principal::Account(to.clone()).key(),
                    added_by: Some(account.id.as_str().into()),
                    added_at: now(),
                },
            )
            .await?;
        // The doctor finds it in their Inbox right away (an existing entry is kept).
        self.directory
            .store()
            .insert_mailbox_entry(&MailboxEntryRow {
                envelope_id: id.into(),
                principal: Principal::Account(to.clone()).key(),
                folder: "inbox".into(),
                seen: false,
                flagged: false,
                archived: false,
                delivered_at: chrono::Utc::now().timestamp_millis(),
            })
            .await?;
        tracing::info!(
            envelope = id,
            by = account.id.as_str(),
            to = to.as_str(),
            "key slot added"
        );
        self.directory
            .audit()
            .note(
                AuditEvent::by(session, action::FORWARD)
                    .item(id)
                    .detail(format!("to={}", to.as_str())),
            )
            .await;
        Ok(())
    }

    /// A folder of the reader: `inbox`, `sent`, `archive` (archived items of both),
    /// or `shared` (the facility's liaison inbox, for liaisons).
    pub async fn mailbox(
        &self,
        session: &CurrentSession,
        folder: &str,
    ) -> Result<Vec<MailboxListing>> {
        let keyring = self.keyring(session)?;
        let own = Principal::Account(keyring.account.clone()).key();
        let store = self.directory.store();
        Ok(match folder {
            "inbox" | "sent" => store.mailbox(&own, folder, false).await?,
            "archive" => {
                let mut all = store.mailbox(&own, "inbox", true).await?;
                all.extend(store.mailbox(&own, "sent", true).await?);
                all.sort_by_key(|e| std::cmp::Reverse(e.delivered_at));
                all
            }
            "shared" => {
                let Some(code) = keyring
                    .liaison_inbox
                    .as_ref()
                    .and(keyring.facility.as_ref())
                else {
                    return Err(Error::Forbidden);
                };
                store
                    .mailbox(&Principal::LiaisonInbox(code.clone()).key(), "inbox", false)
                    .await?
            }
            _ => {
                return Err(Error::invalid(
                    "folder",
                    "folder must be inbox, sent, archive or shared",
                    "フォルダは受信箱・送信済み・アーカイブ・共有受信箱のいずれかです。",
                ));
            }
        })
    }

    /// Sets the reader's own flags on an item (its personal entry, else the shared
    /// inbox entry of a liaison).
    pub async fn set_flags(
        &self,
        session: &CurrentSession,
        id: &str,
        seen: Option<bool>,
        flagged: Option<bool>,
        archived: Option<bool>,
    ) -> Result<()> {
        let keyring = self.keyring(session)?;
        for p in keyring.principals() {
            if matches!(p, Principal::Oversight(_)) {
                continue;
            }
            match self
                .directory
                .store()
                .set_flags(id, &p.key(), seen, flagged, archived)
                .await
            {
                Ok(()) => {
                    let flag = |name: &str, v: Option<bool>| v.map(|v| format!("{name}={v} "));
                    let detail: String = [
                        flag("seen", seen),
                        flag("flagged", flagged),
                        flag("archived", archived),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    self.directory
                        .audit()
                        .note(
                            AuditEvent::by(session, action::FLAGS)
                                .item(id)
                                .detail(detail.trim_end()),
                        )
                        .await;
                    return Ok(());
                }
                Err(crate::store::StoreError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::NotFound("item"))
    }

    /// Delivery progress of an item, for its sender.
    pub async fn delivery_status(
        &self,
        session: &CurrentSession,
        id: &str,
    ) -> Result<Option<DeliveryStatus>> {
        let account = session.require_ready()?;
        match self.directory.store().envelope(id).await? {
            Some(e) if e.sender_id == account.id.as_str() => {
                Ok(self.directory.store().delivery_status(id).await?)
            }
            _ => Ok(None),
        }
    }

    /// Removes blobs that belong to no stored item — left by a crash between sealing
    /// and the database commit (the submission was never acknowledged) — and
    /// unfinished `*.partial` files. Only entries older than `min_age` go, so a
    /// submission in flight on another node sharing the folder is never touched.
    pub async fn sweep_orphan_blobs(&self, min_age: std::time::Duration) -> Result<u64> {
        let root = self.blobs.root().to_path_buf();
        let Ok(dirs) = std::fs::read_dir(&root) else {
            return Ok(0);
        };
        let old_enough = |p: &std::path::Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age)
        };
        let mut removed = 0;
        for dir in dirs.flatten() {
            let path = dir.path();
            let Some(id) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if !path.is_dir() || !old_enough(&path) {
                continue;
            }
            if self.directory.store().envelope_exists(&id).await? {
                // A committed item: only leftovers of an interrupted write go.
                for f in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                    if f.path().extension().is_some_and(|e| e == "partial") && old_enough(&f.path())
                    {
                        let _ = std::fs::remove_file(f.path());
                        removed += 1;
                    }
                }
            } else if std::fs::remove_dir_all(&path).is_ok() {
                tracing::info!(
                    envelope = id,
                    "removed blobs of an unacknowledged submission"
                );
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Items this reader holds a slot for (clear metadata only).
    pub async fn list(&self, session: &CurrentSession) -> Result<Vec<EnvelopeMeta>> {
        let keyring = self.keyring(session)?;
        let mut out: Vec<EnvelopeMeta> = Vec::new();
        for p in keyring.principals() {
            for e in self.directory.store().envelopes_for(&p.key()).await? {
                if !out.iter().any(|o| o.id == e.id) {
                    out.push(e);
                }
            }
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Opens the item once and readies the files of `scope` for one streamed
    /// archive: their manifest entries, where intake placed each (study and
    /// series, from the sealed intake record) and their sealed blobs, opened
    /// only when streamed. Audited as one download; a study or series the
    /// record does not have is `NotFound`.
    pub async fn archive(
        &self,
        session: &CurrentSession,
        id: &str,
        scope: ArchiveScope,
    ) -> Result<SealedArchive> {
        let (_, _, row, opened) = self.open_raw(session, id).await?;
        let manifest = &opened.inner.manifest;
        let record_at = record_index(manifest);
        let blob_rows = self.directory.store().attachments(id).await?;
        let blob_key = |index: usize| {
            blob_rows
                .iter()
                .find(|r| r.idx == index as i64)
                .map(|r| r.blob_key.clone())
                .ok_or(Error::NotFound("attachment"))
        };
        let record = match record_at {
            Some(at) => {
                let prepared = PreparedAttachment {
                    info: attachment_info(at, &manifest[at]),
                    entry: manifest[at].clone(),
                    file: self
                        .blobs
                        .open(&blob_key(at)?)
                        .map_err(|_| Error::Tampered("attachment"))?,
                };
                Some(read_record(prepared).await?)
            }
            None => None,
        };
        let studies = record.as_ref().map(|r| r.studies.as_slice()).unwrap_or(&[]);
        let places: std::collections::HashMap<usize, (usize, usize)> = studies
            .iter()
            .enumerate()
            .flat_map(|(s, study)| {
                study
                    .series
                    .iter()
                    .enumerate()
                    .flat_map(move |(n, series)| {
                        series.instances.iter().map(move |i| (i.attachment, (s, n)))
                    })
            })
            .collect();
        let wanted: Vec<(usize, Option<(usize, usize)>)> = match scope {
            ArchiveScope::Item => (0..manifest.len())
                .filter(|i| Some(*i) != record_at)
                .map(|i| (i, places.get(&i).copied()))
                .collect(),
            ArchiveScope::Study(s) => {
                let study = studies.get(s).ok_or(Error::NotFound("study"))?;
                study
                    .series
                    .iter()
                    .enumerate()
                    .flat_map(|(n, series)| {
                        series
                            .instances
                            .iter()
                            .map(move |i| (i.attachment, Some((s, n))))
                    })
                    .collect()
            }
            ArchiveScope::Series { study, series } => studies
                .get(study)
                .and_then(|st| st.series.get(series))
                .ok_or(Error::NotFound("series"))?
                .instances
                .iter()
                .map(|i| (i.attachment, Some((study, series))))
                .collect(),
        };
        let mut files = Vec::with_capacity(wanted.len());
        let mut sealed = Vec::with_capacity(wanted.len());
        for (index, place) in wanted {
            // The record names attachments of this item only; one outside the
            // signed manifest would be a damaged record.
            let entry = manifest
                .get(index)
                .filter(|_| Some(index) != record_at)
                .ok_or(Error::Tampered("attachment"))?;
            files.push(ArchiveFile {
                info: attachment_info(index, entry),
                place,
            });
            sealed.push((entry.clone(), blob_key(index)?));
        }
        self.directory
            .audit()
            .record(
                AuditEvent::by(session, action::DOWNLOAD)
                    .item(id)
                    .detail(format!("zip {} files={}", scope.describe(), files.len())),
            )
            .await?;
        Ok(SealedArchive {
            created_at: row.created_at,
            files,
            record,
            sealed,
            blobs: self.blobs.clone(),
        })
    }
}

/// Which files of an item one archive holds. Studies and series are named by
/// their position in the sealed intake record, never by their UIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveScope {
    /// Every attachment (the intake record itself excepted).
    Item,
    Study(usize),
    Series {
        study: usize,
        series: usize,
    },
}

impl ArchiveScope {
    fn describe(self) -> String {
        match self {
            Self::Item => "item".into(),
            Self::Study(s) => format!("study={s}"),
            Self::Series { study, series } => format!("study={study} series={series}"),
        }
    }
}

/// One file of an archive: what the signed manifest says of it, and the
/// study and series intake placed it in (by position in the record).
#[derive(Debug, Clone)]
pub struct ArchiveFile {
    pub info: AttachmentInfo,
    pub place: Option<(usize, usize)>,
}

/// The files of an archive, ready to stream one by one.
pub struct SealedArchive {
    /// When the item was sent (Unix seconds).
    pub created_at: i64,
    pub files: Vec<ArchiveFile>,
    /// The intake record, for naming studies and series.
    pub record: Option<IntakeRecord>,
    /// Per file: its manifest entry and blob key.
    sealed: Vec<(renkei_crypto::ManifestEntry, String)>,
    blobs: BlobStore,
}

impl SealedArchive {
    /// Blocking: decrypts file `i` (a position in `files`) into `out`,
    /// checked against the signed manifest. On `Tampered("attachment")`
    /// whatever reached `out` must be discarded.
    pub fn stream(&self, i: usize, out: impl Write + Send) -> Result<u64> {
        let (entry, key) = self.sealed.get(i).ok_or(Error::NotFound("attachment"))?;
        let file = self
            .blobs
            .open(key)
            .map_err(|_| Error::Tampered("attachment"))?;
        renkei_crypto::open_attachment(std::io::BufReader::with_capacity(1 << 20, file), entry, out)
            .map(|o| o.size)
            .map_err(crypto)
    }
}

fn attachment_info(index: usize, m: &renkei_crypto::ManifestEntry) -> AttachmentInfo {
    AttachmentInfo {
        index,
        name: m.name.clone(),
        media_type: m.media_type.clone(),
        size: m.size,
        sha256: hex::encode(m.sha256),
    }
}

/// The intake record, decrypted into memory (a few hundred bytes per file).
async fn read_record(prepared: PreparedAttachment) -> Result<IntakeRecord> {
    let json = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
        let mut out = Vec::new();
        prepared.stream(&mut out)?;
        Ok(out)
    })
    .await
    .map_err(|e| Error::Internal(format!("record task: {e}")))??;
    serde_json::from_slice(&json).map_err(|e| Error::Internal(format!("intake record: {e}")))
}

/// Where the intake record sits: the last entry, named and typed as one.
fn record_index(manifest: &[renkei_crypto::ManifestEntry]) -> Option<usize> {
    let last = manifest.last()?;
    (last.name == crate::intake::RECORD_NAME && last.media_type == crate::intake::RECORD_MEDIA_TYPE)
        .then(|| manifest.len() - 1)
}

/// The largest attachment decrypted into memory to render a slice.
const MAX_RENDER_BYTES: u64 = 1 << 30;

/// An `OpenedItem` from its row, the principal that opened it and the crypto's result.
fn assemble(
    row: EnvelopeRow,
    principal: Principal,
    opened: &renkei_crypto::OpenedEnvelope,
    signature: SignatureStatus,
) -> Result<OpenedItem> {
    let inner = &opened.inner;
    Ok(OpenedItem {
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
            }),
            _ => None,
        },
    })
}
