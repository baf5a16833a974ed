//! Identifiers the system assigns: never chosen by a person, never derived from
//! anything that could identify a patient.

use rand::RngCore;
use rand::rngs::OsRng;

/// A new random identifier: 128 bits from the OS, as 32 lower-case hex digits.
/// Used for envelopes, threads, attachments, notifications and staging files.
pub fn new_id() -> String {
    hex::encode(random_bytes::<16>())
}

/// `N` bytes from the operating system's random source (tokens, secrets, salts).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
