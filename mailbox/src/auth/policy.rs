//! The sign-in rules an operator configures.

use std::time::Duration;

use renkei_crypto::LockParams;

/// Sign-in rules. Defaults follow ASVS L2 and the MHLW guideline.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// Failed attempts in a row that lock an account until an operator unlocks it.
    pub lock_after: u32,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// Argon2id cost of the password lock on each person's secret key.
    pub key_lock: LockParams,
    /// Whether every account needs a second factor unless its facility says
    /// otherwise (the operator's per-facility setting).
    pub second_factor_required: bool,
    /// Failed sign-ins one address may make (web and IMAP together).
    pub address_limit: AddressLimit,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        Self {
            lock_after: 5,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            key_lock: LockParams::default(),
            second_factor_required: true,
            address_limit: AddressLimit::default(),
        }
    }
}

/// Failed sign-ins allowed from one address within a window, on the web and
/// IMAP together, before that address is refused for the rest of the window.
#[derive(Debug, Clone, Copy)]
pub struct AddressLimit {
    pub failures: u32,
    pub window: Duration,
}

impl Default for AddressLimit {
    fn default() -> Self {
        Self {
            failures: 30,
            window: Duration::from_secs(15 * 60),
        }
    }
}
