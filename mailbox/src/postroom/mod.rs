//! The postroom: sealing what a person sends, opening what a person may read,
//! and adding key slots when someone forwards inside their facility.
//! Access is enforced twice: by the slot table here, and by the crypto (no key
//! slot, no session key).
//!
//! An item with patient data needs a [`Consent`] record (date, written or
//! verbal, the staff member who obtained it), kept as clear metadata on the
//! envelope row: it names no patient.

pub mod attachment_policy;
pub mod folders;
pub mod intake;
pub mod listing;

mod archive;
mod attachments;
mod export;
mod flags;
mod forward;
mod idempotency;
mod integrity;
mod open;
mod place;
mod render;
mod send;
mod sweep;

use std::sync::Arc;

use renkei_crypto::{BlindIndexKey, Certificate, CryptoError};

use crate::account::AccountId;
use crate::auth::CurrentSession;
pub use crate::blob::BlobStore;
use crate::clock::SharedClock;
use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::keys::{Keyring, Principal};
use crate::records::audit::Audit;
use crate::store::Store;

pub use archive::{ArchiveFile, ArchiveScope, SealedArchive};
pub use attachments::{AttachmentInfo, PreparedAttachment, VERIFY_WHOLE_BYTES};
pub use flags::DeliveryProgress;
pub use idempotency::{Idempotency, KeyHold, RememberedAnswer, Submitted};
pub use integrity::AttachmentIntegrity;
pub use open::{OpenedItem, SignatureStatus};
pub use place::PlaceCheck;
pub use render::RenderLimit;
pub use send::{OutgoingAttachment, PatientConfirmation};
pub(crate) use send::{Sealing, ThreadLink};

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

/// Who gave the consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentGiver {
    /// The patient themself (本人).
    Patient,
    /// A guardian (代諾者), for a minor or a patient who cannot consent, with
    /// their relation to the patient (母, 父, 成年後見人, …).
    Guardian { relation: String },
    /// Recorded before who consented was asked.
    Unrecorded,
}

impl ConsentGiver {
    /// The longest relation kept (a word or two, never a name).
    pub const MAX_RELATION: usize = 32;

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Guardian { .. } => "guardian",
            Self::Unrecorded => "unrecorded",
        }
    }

    pub fn relation(&self) -> Option<&str> {
        match self {
            Self::Guardian { relation } => Some(relation),
            _ => None,
        }
    }

    /// From what a form or the API says: `patient` (the default when
    /// nothing is said) or `guardian` with a relation.
    pub fn parse(given_by: Option<&str>, relation: Option<&str>) -> Result<Self> {
        let relation = relation.map(str::trim).filter(|r| !r.is_empty());
        match given_by.map(str::trim).filter(|g| !g.is_empty()) {
            None | Some("patient" | "本人") => match relation {
                None => Ok(Self::Patient),
                Some(_) => Err(Error::invalid(
                    "consent.relation",
                    "a relation is given only when a guardian consented",
                    "続柄は代諾者が同意した場合にのみ入力します。",
                )),
            },
            Some("guardian" | "代諾者") => match relation {
                None => Err(Error::invalid(
                    "consent.relation",
                    "a guardian's consent must say their relation to the patient",
                    "代諾者の患者との続柄（母、父、後見人など）を入力してください。",
                )),
                Some(r) if r.chars().count() > Self::MAX_RELATION => Err(Error::invalid(
                    "consent.relation",
                    format!(
                        "the relation is longer than {} characters",
                        Self::MAX_RELATION
                    ),
                    "続柄が長すぎます（32文字まで）。",
                )),
                Some(r) => Ok(Self::Guardian {
                    relation: r.to_string(),
                }),
            },
            Some(other) => Err(Error::invalid(
                "consent.given_by",
                format!("consent given_by must be patient or guardian, got {other:?}"),
                "同意者は「本人」または「代諾者」です。",
            )),
        }
    }

    /// From the stored columns (`None`: a row from before they existed).
    pub fn from_stored(given_by: Option<&str>, relation: Option<&str>) -> Self {
        match (given_by, relation) {
            (Some("patient"), _) => Self::Patient,
            (Some("guardian"), Some(r)) => Self::Guardian {
                relation: r.to_string(),
            },
            _ => Self::Unrecorded,
        }
    }
}

/// The consent record kept with an item: when, how, by which staff member,
/// and who gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub obtained_on: chrono::NaiveDate,
    pub method: ConsentMethod,
    pub obtained_by: String,
    pub given_by: ConsentGiver,
}

pub struct Postroom {
    directory: Arc<Directory>,
    store: Arc<dyn Store>,
    audit: Audit,
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
    /// Creation times, and today in Japan for consent dates.
    clock: SharedClock,
    /// Idempotency keys with a request running in this process.
    held_keys: Arc<idempotency::HeldKeys>,
    /// Slots for rendered slices (`[imaging] max_renders`).
    renders: render::RenderGate,
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

impl Postroom {
    /// The postroom over `store`, writing to `audit` (the trail the directory
    /// writes to too) and asking `directory` for keys and accounts.
    pub fn new(
        directory: Arc<Directory>,
        store: Arc<dyn Store>,
        audit: Audit,
        blobs: BlobStore,
        blind_key: Arc<BlindIndexKey>,
    ) -> Self {
        Self {
            parsed: std::sync::Mutex::default(),
            signers: Arc::default(),
            delivery_wake: Arc::default(),
            directory,
            store,
            audit,
            blobs,
            blind_key,
            clock: crate::clock::system(),
            held_keys: Arc::default(),
            renders: render::RenderGate::new(&RenderLimit::default()),
        }
    }

    /// The same postroom reading time from `clock` (tests move it).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
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

    /// What the records service deletes through, handed over explicitly.
    pub fn vault(&self) -> crate::records::Vault {
        crate::records::Vault {
            store: self.store.clone(),
            audit: self.audit.clone(),
            blobs: self.blobs.clone(),
            blind_key: self.blind_key.clone(),
        }
    }

    pub(crate) fn keyring(&self, session: &CurrentSession) -> Result<Arc<Keyring>> {
        session.require_ready()?;
        // The operator holds no key and so can read or send nothing.
        self.directory.keyring(session).ok_or(Error::Forbidden)
    }

    async fn account_cert(&self, id: &AccountId) -> Result<Certificate> {
        let row = self
            .store
            .account_key(id)
            .await?
            .ok_or(Error::NotFound("recipient"))?;
        self.parse_cert(&row.cert)
    }

    async fn facility_cert(&self, code: &FacilityCode, role: &str) -> Result<Option<Certificate>> {
        match self.store.facility_key(code, role).await? {
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
}

#[cfg(test)]
mod tests {
    use super::ConsentGiver;

    #[test]
    fn who_consented_is_the_patient_or_a_guardian_with_a_relation() {
        assert_eq!(
            ConsentGiver::parse(None, None).ok(),
            Some(ConsentGiver::Patient)
        );
        assert_eq!(
            ConsentGiver::parse(Some("patient"), Some(" ")).ok(),
            Some(ConsentGiver::Patient)
        );
        assert_eq!(
            ConsentGiver::parse(Some("guardian"), Some(" 母 ")).ok(),
            Some(ConsentGiver::Guardian {
                relation: "母".into()
            })
        );
        assert!(ConsentGiver::parse(Some("guardian"), None).is_err());
        assert!(ConsentGiver::parse(Some("patient"), Some("母")).is_err());
        assert!(ConsentGiver::parse(Some("friend"), None).is_err());
        assert!(ConsentGiver::parse(Some("guardian"), Some(&"長".repeat(33))).is_err());
        assert_eq!(
            ConsentGiver::from_stored(None, None),
            ConsentGiver::Unrecorded
        );
        assert_eq!(
            ConsentGiver::from_stored(Some("guardian"), Some("父")).relation(),
            Some("父")
        );
    }
}
