//! Renkei's sealed envelopes: pure OpenPGP crypto (Sequoia), no database, no HTTP.
//!
//! * Every principal — user, facility liaison inbox, facility oversight, network
//!   recovery — has one [`SecretKey`] type (Ed25519 + X25519, OpenPGP v6) with a
//!   public [`Certificate`].
//! * User keys are stored as [`LockedKey`]s (Argon2id S2K + AES-256-OCB); facility
//!   keys as [`SealedKey`] grants to members; every user key also sealed to the
//!   recovery certificate.
//! * Messages are [`seal`]ed: sign-then-encrypt of an inner MIME message, body
//!   encrypted once (SEIPDv2, AES-256-OCB), one key slot per principal; attachments
//!   are separate streamed messages whose session key and SHA-256 are in the signed
//!   manifest. [`add_key_slot`] forwards without re-encrypting.
//! * [`AuditKey`] signs checkpoints of the audit chain's head (Ed25519).
//! * [`blind_index`] gives a keyed hash of facility + patient ID for deletion requests.
//!
//! Why v6/SEIPDv2 and the OpenSSL backend: see the README of `bench/seal`.

mod audit_key;
mod blind;
mod envelope;
mod error;
mod fast;
mod keys;
mod pgp;
mod recovery_file;
pub mod staging;
mod stream;

pub use audit_key::{AuditKey, AuditPublicKey};
pub use blind::{BlindIndexKey, blind_index, normalise_patient_id};
pub use envelope::{
    AttachmentInput, AttachmentOpened, Draft, Field, InnerMessage, ManifestEntry, OpenedEnvelope,
    Place, ProtectedHeaders, Sealed, SealedAttachment, SealedEnvelope, SenderInfo, Verification,
    add_key_slot, key_slots, open, open_attachment, seal, sign_detached, verify_detached,
};
pub use error::{CryptoError, Result};
pub use keys::{
    Certificate, FacilityKey, FacilityRole, KeySlotId, LockParams, LockedKey, RecoveryKey,
    SealedKey, SecretKey, UserKey, open_bytes, seal_bytes, seal_secret_key,
};
pub use recovery_file::{
    RecoveryFile, RecoveryFileKind, SHARES_MADE, SHARES_NEEDED, open_recovery, recovery_shares,
    recovery_with_passphrase,
};
/// Fingerprint type handed to signer look-ups.
pub use sequoia_openpgp::Fingerprint;
