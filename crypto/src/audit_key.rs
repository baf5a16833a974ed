//! The audit key: an Ed25519 key that signs checkpoints of the audit chain's
//! head (and the retention job's cut), kept outside the database so a database
//! writer cannot make a checkpoint fit a rewritten chain. Signing and checking
//! only; where the key and the checkpoints are stored is the caller's business.

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};

/// The secret half. `Debug` is redacted; the key is wiped on drop.
pub struct AuditKey(SigningKey);

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

impl AuditKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        sequoia_openpgp::crypto::random(&mut seed[..]).map_err(CryptoError::pgp)?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// From the 64 hex digits of the seed (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(s.trim(), &mut seed[..])
            .map_err(|_| CryptoError::InvalidInput("audit key must be 64 hex digits".into()))?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// Hex form of the seed, for writing the key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.to_bytes()))
    }

    pub fn public(&self) -> AuditPublicKey {
        AuditPublicKey(self.0.verifying_key())
    }

    /// The signature over `message`, in hex.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.0.sign(message).to_bytes())
    }
}

/// The public half, written beside the checkpoints so anyone can check them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuditPublicKey(VerifyingKey);

impl fmt::Debug for AuditPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditPublicKey({})", self.to_hex())
    }
}

impl AuditPublicKey {
    /// From 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut bytes).map_err(|_| {
            CryptoError::InvalidInput("audit public key must be 64 hex digits".into())
        })?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| CryptoError::InvalidInput("not an Ed25519 public key".into()))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// Whether `signature` (hex) is this key's signature over `message`.
    /// Anything malformed is simply not a valid signature.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        let mut bytes = [0u8; 64];
        if hex::decode_to_slice(signature.trim(), &mut bytes).is_err() {
            return false;
        }
        self.0
            .verify_strict(message, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_message_and_key_only() {
        let key = AuditKey::generate().unwrap();
        let other = AuditKey::generate().unwrap();
        let sig = key.sign(b"seq 7");
        assert!(key.public().verify(b"seq 7", &sig));
        assert!(!key.public().verify(b"seq 8", &sig));
        assert!(!other.public().verify(b"seq 7", &sig));
        assert!(!key.public().verify(b"seq 7", "zz"));
        let again = AuditKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(again.public(), key.public());
        let public = AuditPublicKey::from_hex(&key.public().to_hex()).unwrap();
        assert!(public.verify(b"seq 7", &sig));
    }
}
