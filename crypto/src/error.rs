//! One error type for the whole crate.
//!
//! Each failure a reader must be told about (wrong password, not addressed to
//! you, a damaged key slot, a damaged body, a changed attachment) is its own
//! variant, so callers can show it as such and never confuse it with success.
//! Messages never contain key material or message content.

/// Everything that can go wrong in `renkei-crypto`.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The password does not unlock this locked key.
    #[error("wrong password")]
    WrongPassword,
    /// The envelope has no key slot (PKESK) for the key that tried to open it.
    #[error("this envelope is not addressed to this key")]
    NotAddressedToYou,
    /// The key slot addressed to this key exists but does not decrypt: it was altered.
    #[error("the key slot for this key is damaged")]
    KeySlotDamaged,
    /// The key slot decrypted, but the encrypted body failed its integrity check.
    #[error("the encrypted body is damaged or was altered")]
    BodyDamaged,
    /// An attachment blob does not decrypt with, or does not match, its manifest entry
    /// (altered, truncated, or swapped with another blob).
    #[error("the attachment does not match its manifest entry")]
    AttachmentChanged,
    /// Input bytes are not a structure this crate produces.
    #[error("malformed input: {0}")]
    Malformed(String),
    /// A caller-supplied value is not acceptable (e.g. a control character in a header).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A key or certificate lacks a usable signing or encryption (sub)key.
    #[error("unusable key: {0}")]
    UnusableKey(String),
    /// Reading a source or writing a sink failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other failure inside the OpenPGP implementation.
    #[error("openpgp: {0}")]
    OpenPgp(String),
}

impl CryptoError {
    pub(crate) fn pgp(e: impl std::fmt::Display) -> Self {
        CryptoError::OpenPgp(e.to_string())
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = CryptoError> = std::result::Result<T, E>;
