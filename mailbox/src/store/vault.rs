//! Storage of keys, grants and sealed envelopes: everything here is opaque bytes
//! (certificates are public; secret keys are locked or sealed; bodies are OpenPGP).

use async_trait::async_trait;

use super::StoreResult;
use crate::account::AccountId;
use crate::facility::FacilityCode;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountKeyRow {
    pub account_id: String,
    pub fingerprint: String,
    pub cert: Vec<u8>,
    pub locked_key: Vec<u8>,
    pub recovery_sealed: Option<Vec<u8>>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FacilityKeyRow {
    pub facility_code: String,
    /// `liaison` or `oversight`.
    pub role: String,
    pub fingerprint: String,
    pub cert: Vec<u8>,
    pub recovery_sealed: Option<Vec<u8>>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GrantRow {
    pub facility_code: String,
    pub role: String,
    pub account_id: String,
    /// `None` while pending.
    pub sealed_key: Option<Vec<u8>>,
    pub created_at: i64,
    pub granted_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EnvelopeRow {
    pub id: String,
    pub kind: String,
    pub sender_id: String,
    pub sender_facility: Option<String>,
    pub created_at: i64,
    pub body: Vec<u8>,
    pub body_size: i64,
    pub blind_index: Option<Vec<u8>>,
    pub consent_obtained_on: Option<String>,
    pub consent_method: Option<String>,
    pub consent_obtained_by: Option<String>,
    /// `patient` or `guardian`, and a guardian's relation to the patient.
    pub consent_given_by: Option<String>,
    pub consent_relation: Option<String>,
    /// The thread this envelope is a step of, which step, and the thread's version after it.
    pub thread_id: Option<String>,
    pub step: Option<String>,
    pub thread_seq: Option<i64>,
}

/// Clear metadata of an envelope, for listings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EnvelopeMeta {
    pub id: String,
    pub kind: String,
    pub sender_id: String,
    pub sender_facility: Option<String>,
    pub created_at: i64,
    pub body_size: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AttachmentRow {
    pub envelope_id: String,
    pub idx: i64,
    pub blob_key: String,
    pub sealed_size: i64,
}

/// What is known of one attachment's sealed blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachmentIntegrity {
    /// Not read whole since it was stored.
    Unknown,
    /// Read whole and matched its signed manifest.
    Verified,
    /// A read found it not to match its signed manifest. Sticky.
    Damaged,
}

impl AttachmentIntegrity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Verified => "verified",
            Self::Damaged => "damaged",
        }
    }

    /// The stored word; anything else reads as `Unknown`.
    pub fn parse(s: &str) -> Self {
        match s {
            "verified" => Self::Verified,
            "damaged" => Self::Damaged,
            _ => Self::Unknown,
        }
    }
}

/// One attachment's integrity state and when it was set (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IntegrityRow {
    pub idx: i64,
    pub integrity: String,
    pub integrity_at: Option<i64>,
}

impl IntegrityRow {
    pub fn state(&self) -> AttachmentIntegrity {
        AttachmentIntegrity::parse(&self.integrity)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SlotRow {
    pub envelope_id: String,
    pub principal: String,
    pub added_by: Option<String>,
    pub added_at: i64,
}

#[async_trait]
pub trait VaultStore: Send + Sync {
    async fn recovery_cert(&self) -> StoreResult<Option<Vec<u8>>>;
    /// Conflict if one exists: the recovery key is made once per network.
    async fn insert_recovery_cert(&self, cert: &[u8]) -> StoreResult<()>;

    async fn insert_account_key(&self, row: &AccountKeyRow) -> StoreResult<()>;
    async fn account_key(&self, id: &AccountId) -> StoreResult<Option<AccountKeyRow>>;
    /// Certificates of the key-slot principals `accounts` (account IDs) and of
    /// every facility key of `facilities`, in one round trip; each as
    /// (`Principal` text, certificate). Keys not made yet are simply absent.
    async fn slot_certs(
        &self,
        accounts: &[&str],
        facilities: &[&str],
    ) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Current or retired certificate with this fingerprint, and whose it is.
    async fn cert_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> StoreResult<Option<(String, Vec<u8>)>>;
    /// Replaces a person's key (reset without recovery); the old certificate is retired.
    async fn replace_account_key(&self, row: &AccountKeyRow) -> StoreResult<()>;
    async fn set_locked_key(&self, id: &AccountId, locked_key: &[u8]) -> StoreResult<()>;
    /// Password hash and re-locked key change together or not at all.
    async fn set_password_and_key(
        &self,
        id: &AccountId,
        digest: &crate::account::PasswordDigest,
        must_change: bool,
        locked_key: &[u8],
    ) -> StoreResult<()>;
    async fn set_account_recovery_sealed(&self, id: &AccountId, sealed: &[u8]) -> StoreResult<()>;

    async fn insert_facility_key(&self, row: &FacilityKeyRow) -> StoreResult<()>;
    async fn facility_key(
        &self,
        code: &FacilityCode,
        role: &str,
    ) -> StoreResult<Option<FacilityKeyRow>>;
    async fn set_facility_recovery_sealed(
        &self,
        code: &FacilityCode,
        role: &str,
        sealed: &[u8],
    ) -> StoreResult<()>;

    /// Inserts a grant unless one exists for the same key and member.
    async fn insert_grant(&self, row: &GrantRow) -> StoreResult<()>;
    async fn grants_of(&self, id: &AccountId) -> StoreResult<Vec<GrantRow>>;
    /// Pending grants, all or of one facility.
    async fn pending_grants(&self, facility: Option<&FacilityCode>) -> StoreResult<Vec<GrantRow>>;
    async fn complete_grant(
        &self,
        code: &str,
        role: &str,
        account: &str,
        sealed: &[u8],
        at: i64,
    ) -> StoreResult<()>;
    async fn delete_grants_of(&self, id: &AccountId) -> StoreResult<u64>;
    async fn set_removed(&self, id: &AccountId) -> StoreResult<()>;

    /// Envelope, key-slot holders, attachment rows, the delivery-queue entry,
    /// (for a workflow step) the thread change and the send's audit entry, in
    /// one transaction.
    async fn insert_envelope(
        &self,
        envelope: &EnvelopeRow,
        slots: &[SlotRow],
        attachments: &[AttachmentRow],
        thread: Option<&super::thread::ThreadChange>,
        audit: &super::records::AuditRow,
        idempotency: Option<&super::idempotency::IdempotencyRow>,
    ) -> StoreResult<()>;
    /// The live answer remembered for an idempotency key (created at or after `since`).
    async fn idempotency_answer(
        &self,
        account_id: &str,
        key_hash: &[u8],
        since: i64,
    ) -> StoreResult<Option<super::idempotency::IdempotencyRow>>;
    /// Forgets idempotency keys created before `before`; returns how many.
    async fn purge_idempotency_keys(&self, before: i64) -> StoreResult<u64>;
    async fn envelope(&self, id: &str) -> StoreResult<Option<EnvelopeRow>>;
    /// The envelope row with an empty `body`.
    async fn envelope_head(&self, id: &str) -> StoreResult<Option<EnvelopeRow>>;
    async fn envelope_slots(&self, id: &str) -> StoreResult<Vec<SlotRow>>;
    /// `envelope` for many at once (those that exist, in no order).
    async fn envelopes_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<EnvelopeRow>>;
    /// Every key slot of the given envelopes (what their signed places are checked against).
    async fn slots_of(&self, ids: &[&str]) -> StoreResult<Vec<SlotRow>>;
    async fn attachments(&self, id: &str) -> StoreResult<Vec<AttachmentRow>>;
    /// One attachment row (a study has thousands; a slice needs one).
    async fn attachment(&self, id: &str, idx: i64) -> StoreResult<Option<AttachmentRow>>;
    /// The integrity state of every attachment of an item, by index.
    async fn attachment_integrity(&self, id: &str) -> StoreResult<Vec<IntegrityRow>>;
    /// The integrity state of one attachment (`None`: no such attachment).
    async fn attachment_integrity_of(
        &self,
        id: &str,
        idx: i64,
    ) -> StoreResult<Option<IntegrityRow>>;
    /// Sets one attachment's state at `at` (ms): `Damaged` unless it already
    /// is, `Verified` only from `Unknown` (damaged never goes back), `Unknown`
    /// never. True when the row changed.
    async fn set_attachment_integrity(
        &self,
        id: &str,
        idx: i64,
        state: AttachmentIntegrity,
        at: i64,
    ) -> StoreResult<bool>;
    /// Replaces the body with one that has an extra key slot, and records its holder.
    async fn add_slot(&self, id: &str, body: &[u8], slot: &SlotRow) -> StoreResult<()>;
    /// A forward: `add_slot`, the new holder's Inbox entry (an existing one is
    /// kept) and the audit entry, in one transaction.
    async fn forward_envelope(
        &self,
        id: &str,
        body: &[u8],
        slot: &SlotRow,
        entry: &super::queue::MailboxEntryRow,
        audit: &super::records::AuditRow,
    ) -> StoreResult<()>;
    /// Envelopes any of these principals holds a slot for, newest first.
    async fn envelopes_for(&self, principal: &str) -> StoreResult<Vec<EnvelopeMeta>>;
    async fn envelope_exists(&self, id: &str) -> StoreResult<bool>;
    /// Test and maintenance hook: overwrite a stored body as-is.
    async fn overwrite_body(&self, id: &str, body: &[u8]) -> StoreResult<()>;
}
