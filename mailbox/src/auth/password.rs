//! Passwords: Argon2id hashes, the guideline's strength policy, issued passwords.
//!
//! The MHLW policy: at least 13 characters with letters, digits and symbols, or
//! at least 12 (never fewer, ASVS 2.1.1) with a second factor; never one on the
//! shipped list of common and breached passwords (`common-passwords.txt`), and
//! never one zxcvbn guesses within about 10^8 tries (score below 3, ASVS
//! 2.1.7). Hashes are PHC strings.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use rand::rngs::OsRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::account::PasswordDigest;
use crate::error::{Error, PolicyViolations, Result};

/// A password as typed; wiped from memory when dropped and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

fn argon2() -> Argon2<'static> {
    // OWASP's Argon2id baseline: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash(password: &Password) -> Result<PasswordDigest> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| PasswordDigest(h.to_string()))
        .map_err(|e| Error::Internal(format!("argon2 hash: {e}")))
}

/// Constant-time verification; a malformed stored hash counts as a mismatch.
pub fn verify(password: &Password, digest: &PasswordDigest) -> bool {
    match PasswordHash::new(&digest.0) {
        Ok(parsed) => argon2()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A digest to verify against when the account does not exist, so that a wrong ID
/// takes as long as a wrong password.
pub fn dummy_digest() -> PasswordDigest {
    PasswordDigest(
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1ZfV0Sh+8R4Vw8Q5O6cZ0nK9eZL1r4u7j7PpG0k7Qh8"
            .to_string(),
    )
}

/// Minimum length without and with a second factor.
pub const MIN_LEN: usize = 13;
pub const MIN_LEN_WITH_SECOND_FACTOR: usize = 12;

/// The shipped list of common and breached passwords (and their stems).
const COMMON: &str = include_str!("common-passwords.txt");

/// Whether `s`, in lower case with digits and symbols trimmed from both ends,
/// is on the shipped list (`Password2026!` is `password`).
fn is_common(s: &str) -> bool {
    let lower = s.to_lowercase();
    let stem = lower.trim_matches(|c: char| !c.is_alphabetic());
    COMMON
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|l| l == lower || l == stem)
}

/// zxcvbn's estimate is below 3 ("safely unguessable" needs 10^8 guesses).
fn is_guessable(s: &str, account_id: &str) -> bool {
    let inputs: Vec<&str> = [account_id, "renkei", "kagawa"]
        .into_iter()
        .filter(|i| !i.is_empty())
        .collect();
    u8::from(zxcvbn::zxcvbn(s, &inputs).score()) < 3
}

pub fn check_policy(
    new: &Password,
    current: Option<&Password>,
    account_id: &str,
    has_second_factor: bool,
) -> std::result::Result<(), PolicyViolations> {
    let s = new.expose();
    let min = if has_second_factor {
        MIN_LEN_WITH_SECOND_FACTOR
    } else {
        MIN_LEN
    };
    let v = PolicyViolations {
        too_short: (s.chars().count() < min).then_some(min),
        no_letter: !s.chars().any(|c| c.is_alphabetic()),
        no_digit: !s.chars().any(|c| c.is_numeric()),
        no_symbol: !s
            .chars()
            .any(|c| !c.is_alphanumeric() && !c.is_whitespace()),
        same_as_current: current.is_some_and(|c| c.expose() == s),
        contains_id: !account_id.is_empty() && s.to_uppercase().contains(account_id),
        common: is_common(s),
        guessable: false,
    };
    // Only worth estimating when nothing simpler is wrong.
    let v = PolicyViolations {
        guessable: v.is_empty() && is_guessable(s, account_id),
        ..v
    };
    if v.is_empty() { Ok(()) } else { Err(v) }
}

/// A random initial password for a credential letter: 16 characters from an alphabet
/// without look-alikes, always with letters, digits and a symbol.
pub fn issue() -> Password {
    const LETTERS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    const SYMBOLS: &[u8] = b"#%+=@!?";
    let mut rng = OsRng;
    let mut pick = |set: &[u8]| char::from(set[rng.gen_range(0..set.len())]);
    let mut out = String::with_capacity(19);
    for group in 0..4 {
        if group > 0 {
            out.push('-');
        }
        for i in 0..4 {
            let set = match (group, i) {
                (1, 2) => DIGITS,
                (2, 1) => SYMBOLS,
                (3, 3) => DIGITS,
                _ => LETTERS,
            };
            out.push(pick(set));
        }
    }
    Password(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Localized;

    #[test]
    fn policy_names_every_missing_part() {
        let v = check_policy(&Password::new("abc"), None, "", false).unwrap_err();
        assert_eq!(v.too_short, Some(13));
        assert!(v.no_digit && v.no_symbol && !v.no_letter);
        assert!(v.message_ja().contains("13文字以上"));
        assert!(v.to_string().contains("a digit"));
        assert!(check_policy(&Password::new("Sanuki-Udon-2026!"), None, "", false).is_ok());
        // With a second factor twelve mixed characters suffice, never fewer.
        let v = check_policy(&Password::new("Kaga-2026"), None, "", true).unwrap_err();
        assert_eq!(v.too_short, Some(12));
        assert!(check_policy(&Password::new("Zebra-Kite-8"), None, "", true).is_ok());
        assert!(check_policy(&Password::new("Zebra-Kite-8"), None, "", false).is_err());
    }

    #[test]
    fn common_and_guessable_passwords_are_refused_with_what_is_wrong() {
        // On the shipped list, also with digits and symbols around it.
        for common in [
            "Password2026!!",
            "!!Kagawa-Renkei-2026",
            "Takamatsu#2026-11",
        ] {
            let v = check_policy(&Password::new(common), None, "", false).unwrap_err();
            assert!(v.common, "{common}");
            assert!(
                v.message_ja().contains("よく使われる"),
                "{}",
                v.message_ja()
            );
        }
        // Long and mixed, but a keyboard walk and a year.
        let v = check_policy(&Password::new("Qwertyuiop-1234!"), None, "", false).unwrap_err();
        assert!(v.common || v.guessable, "{v:?}");
        let v = check_policy(&Password::new("aaaaaaaaaaaaaa1!"), None, "", false).unwrap_err();
        assert!(v.guessable, "{v:?}");
        assert!(
            v.message_ja().contains("推測されやすい"),
            "{}",
            v.message_ja()
        );
        // The passwords the tests and the demo use stay acceptable.
        for fine in [
            "Sanuki-Udon-2026!",
            "Takamatsu-Port-2026#",
            "Issued-Pass-2026!",
            "Brand-New-Pass-42!",
            "Operator-Console-2026!",
            "Changed-Pass-2026!",
            "Another-Pass-2026!",
        ] {
            assert_eq!(
                check_policy(&Password::new(fine), None, "", false),
                Ok(()),
                "{fine}"
            );
        }
    }

    #[test]
    fn issued_passwords_pass_the_policy_and_verify() {
        for _ in 0..20 {
            let p = issue();
            assert_eq!(check_policy(&p, None, "", false), Ok(()));
        }
        let p = issue();
        let d = hash(&p).unwrap();
        assert!(d.0.starts_with("$argon2id$"));
        assert!(verify(&p, &d));
        assert!(!verify(&Password::new("nope"), &d));
        assert!(!verify(&p, &dummy_digest()));
    }
}
