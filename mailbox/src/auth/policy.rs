//! The sign-in rules an operator configures.

use std::time::Duration;

use renkei_crypto::LockParams;

/// Sign-in rules. Defaults follow ASVS L2 and the MHLW guideline.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// Failed sign-ins per (ID, address or known device) before each further
    /// attempt waits a growing delay (1 s doubling to `max_delay`). Nothing
    /// locks an account but the help desk.
    pub delay_after: u32,
    /// The longest such delay.
    pub max_delay: Duration,
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
            delay_after: 5,
            max_delay: Duration::from_secs(15 * 60),
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            key_lock: LockParams::default(),
            second_factor_required: true,
            address_limit: AddressLimit::default(),
        }
    }
}

/// Failed sign-ins allowed from one address within a window, on the web and
/// IMAP together, before that address is refused for the rest of the window —
/// except a right password from a device that signed in to that account before
/// (the device cookie). Sized for a hospital behind one NAT address: 300 per 15
/// minutes is a typo every three seconds.
#[derive(Debug, Clone, Copy)]
pub struct AddressLimit {
    pub failures: u32,
    pub window: Duration,
}

impl Default for AddressLimit {
    fn default() -> Self {
        Self {
            failures: 300,
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl AuthPolicy {
    /// How long the next attempt waits after `failures` in a row under one
    /// (ID, address or device): none up to `delay_after`, then 1 s doubling.
    pub fn delay_for(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.delay_after) else {
            return Duration::ZERO;
        };
        let secs = 1u64.checked_shl(over.min(32)).unwrap_or(u64::MAX);
        Duration::from_secs(secs).min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_grows_from_the_sixth_failure_and_stops_at_the_maximum() {
        let p = AuthPolicy::default();
        assert_eq!(p.delay_for(4), Duration::ZERO);
        assert_eq!(p.delay_for(5), Duration::from_secs(1));
        assert_eq!(p.delay_for(6), Duration::from_secs(2));
        assert_eq!(p.delay_for(9), Duration::from_secs(16));
        assert_eq!(p.delay_for(40), p.max_delay);
        assert_eq!(p.delay_for(u32::MAX), p.max_delay);
    }
}
