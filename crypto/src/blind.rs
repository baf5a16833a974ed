//! Blind index: a keyed hash of facility code + patient ID, so the server can find
//! the envelopes of one patient (for deletion requests) without storing the ID.
//! The key lives outside the database (config-folder file or environment variable).

use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{CryptoError, Result};

/// 32 secret bytes keying [`blind_index`]. Wiped on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BlindIndexKey([u8; 32]);

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey(<redacted>)")
    }
}

impl BlindIndexKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let mut k = [0u8; 32];
        sequoia_openpgp::crypto::random(&mut k).map_err(CryptoError::pgp)?;
        Ok(BlindIndexKey(k))
    }

    /// From 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut k).map_err(|_| {
            CryptoError::InvalidInput("blind index key must be 64 hex digits".into())
        })?;
        Ok(BlindIndexKey(k))
    }

    /// Hex form, for writing the key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }

    /// From a file holding the hex form.
    pub fn from_file(path: &Path) -> Result<Self> {
        let s = Zeroizing::new(std::fs::read_to_string(path)?);
        Self::from_hex(&s)
    }

    /// From an environment variable holding the hex form.
    pub fn from_env(var: &str) -> Result<Self> {
        let s = Zeroizing::new(
            std::env::var(var)
                .map_err(|_| CryptoError::InvalidInput(format!("{var} is not set")))?,
        );
        Self::from_hex(&s)
    }
}

/// Normal form of a facility code or patient ID, so trivially different spellings
/// of the same ID index alike: Unicode NFKC (full-width digits and letters become
/// ASCII), trim, upper-case, then remove all whitespace and hyphen/dash/minus
/// characters (`-`, U+2010–U+2015, U+2212, U+30FC is *not* removed).
pub fn normalise_patient_id(s: &str) -> String {
    s.nfkc()
        .collect::<String>()
        .trim()
        .to_uppercase()
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}'))
        .collect()
}

/// HMAC-SHA-256 under `key` of a domain tag, then the normalised facility code and
/// the normalised patient ID, each length-prefixed (so no two pairs collide).
pub fn blind_index(key: &BlindIndexKey, facility_code: &str, patient_id: &str) -> [u8; 32] {
    let facility = Zeroizing::new(normalise_patient_id(facility_code));
    let patient = Zeroizing::new(normalise_patient_id(patient_id));
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&key.0) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes any key length"),
    };
    mac.update(b"renkei blind index v1\0");
    for part in [facility.as_bytes(), patient.as_bytes()] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(normalise_patient_id(" ab-12 34 "), "AB1234");
        assert_eq!(normalise_patient_id("ＡＢ－１２　３４"), "AB1234");
        assert_eq!(normalise_patient_id("ab‐12−34"), "AB1234");
    }

    #[test]
    fn index_is_keyed_and_normalised() {
        let k1 = BlindIndexKey::from_hex(&"11".repeat(32)).unwrap();
        let k2 = BlindIndexKey::from_hex(&"22".repeat(32)).unwrap();
        let a = blind_index(&k1, "F001", "ab-1234");
        assert_eq!(a, blind_index(&k1, "f001", "ＡＢ１２３４"));
        assert_ne!(a, blind_index(&k2, "F001", "AB1234"));
        assert_ne!(a, blind_index(&k1, "F002", "AB1234"));
        // Length prefixes: moving a character across the boundary changes the hash.
        assert_ne!(
            blind_index(&k1, "F0011", "234"),
            blind_index(&k1, "F001", "1234")
        );
        assert!(BlindIndexKey::from_hex("zz").is_err());
        assert_eq!(format!("{k1:?}"), "BlindIndexKey(<redacted>)");
    }
}
