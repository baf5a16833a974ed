//! Memory-only state of sign-in: pending second steps, recent
//! re-authentications, security-key registrations under way (failed sign-ins
//! are counted in the database, see `throttle.rs`). Like the keyrings, it lives in this process only.
//!
//! Its windows are short and measured on the monotonic clock (`Instant`), so a
//! change of the wall clock neither extends nor cuts them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use webauthn_rs::prelude::{PasskeyAuthentication, PasskeyRegistration};

use super::sha256;
use super::sign_in::{PENDING_VALID_FOR, PendingToken, REAUTH_VALID_FOR};
use crate::account::AccountId;
use crate::keys::Keyring;

/// A sign-in whose password was right, waiting for its second factor.
pub(super) struct Pending {
    pub account: AccountId,
    /// The WebAuthn challenge issued for this sign-in, if one was asked for.
    pub webauthn: Option<PasskeyAuthentication>,
    pub keyring: Option<Keyring>,
    pub remote: Option<String>,
    /// The channel the password step came through; the session keeps it.
    pub channel: crate::records::audit::Channel,
    /// What the attempt is counted under, so wrong codes count like passwords.
    pub attempt: super::throttle::Attempt,
    pub created: Instant,
}

pub(super) struct PendingRegistration {
    pub state: PasskeyRegistration,
    pub name: String,
    pub created: Instant,
}

/// Pending sign-ins and recent re-authentications.
#[derive(Default)]
pub struct FactorState {
    pending: Mutex<HashMap<Vec<u8>, Pending>>,
    reauth: Mutex<HashMap<Vec<u8>, Instant>>,
    /// Session token hash → the app password it was opened with, so revoking
    /// one also ends the mail sessions it opened.
    mail_sessions: Mutex<HashMap<Vec<u8>, String>>,
    /// Session hash → a security-key registration under way (state, name).
    registrations: Mutex<HashMap<Vec<u8>, PendingRegistration>>,
    /// Session hash → the WebAuthn challenge of a re-authentication.
    reauth_challenges: Mutex<HashMap<Vec<u8>, PasskeyAuthentication>>,
}

impl FactorState {
    pub(super) fn take_pending(&self, token: &PendingToken) -> Option<Pending> {
        let mut map = self.pending.lock().ok()?;
        map.retain(|_, p| p.created.elapsed() < PENDING_VALID_FOR);
        map.remove(&sha256(token.expose()))
    }

    pub(super) fn put_pending(&self, token: &PendingToken, pending: Pending) {
        if let Ok(mut map) = self.pending.lock() {
            map.insert(sha256(token.expose()), pending);
        }
    }

    pub(super) fn forget_account(&self, account: &AccountId) {
        if let Ok(mut map) = self.pending.lock() {
            map.retain(|_, p| p.account != *account);
        }
    }

    pub(crate) fn forget_session(&self, token_hash: &[u8]) {
        if let Ok(mut map) = self.reauth.lock() {
            map.remove(token_hash);
        }
        if let Ok(mut map) = self.mail_sessions.lock() {
            map.remove(token_hash);
        }
    }

    /// The session just proved its factor: sensitive actions are allowed for a while.
    pub(super) fn reauthenticated(&self, token_hash: &[u8]) {
        if let Ok(mut map) = self.reauth.lock() {
            map.insert(token_hash.to_vec(), Instant::now());
        }
    }

    pub(super) fn recently_reauthenticated(&self, token_hash: &[u8]) -> bool {
        self.reauth
            .lock()
            .ok()
            .and_then(|m| m.get(token_hash).copied())
            .is_some_and(|t| t.elapsed() < REAUTH_VALID_FOR)
    }

    /// Whether the session re-authenticated within `window`.
    pub(super) fn proved_within(&self, token_hash: &[u8], window: Duration) -> bool {
        self.reauth
            .lock()
            .ok()
            .and_then(|m| m.get(token_hash).copied())
            .is_some_and(|t| t.elapsed() < window)
    }

    pub(super) fn put_reauth_challenge(&self, token_hash: &[u8], state: PasskeyAuthentication) {
        if let Ok(mut map) = self.reauth_challenges.lock() {
            map.insert(token_hash.to_vec(), state);
        }
    }

    pub(super) fn take_reauth_challenge(&self, token_hash: &[u8]) -> Option<PasskeyAuthentication> {
        self.reauth_challenges
            .lock()
            .ok()
            .and_then(|mut m| m.remove(token_hash))
    }

    pub(super) fn put_registration(&self, token_hash: &[u8], registration: PendingRegistration) {
        if let Ok(mut map) = self.registrations.lock() {
            map.retain(|_, r| r.created.elapsed() < PENDING_VALID_FOR);
            map.insert(token_hash.to_vec(), registration);
        }
    }

    pub(super) fn take_registration(&self, token_hash: &[u8]) -> Option<PendingRegistration> {
        self.registrations
            .lock()
            .ok()
            .and_then(|mut m| m.remove(token_hash))
    }

    pub(super) fn opened_by_app_password(&self, token_hash: &[u8], app: &str) {
        if let Ok(mut map) = self.mail_sessions.lock() {
            map.insert(token_hash.to_vec(), app.to_string());
        }
    }

    pub(super) fn sessions_of_app_password(&self, app: &str) -> Vec<Vec<u8>> {
        self.mail_sessions
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|(_, a)| a.as_str() == app)
                    .map(|(s, _)| s.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}
