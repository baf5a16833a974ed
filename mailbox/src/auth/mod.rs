//! Authentication: passwords, sessions, the sign-in steps, second factors (TOTP
//! with recovery codes, security keys and passkeys), app passwords for mail
//! clients, re-authentication before sensitive actions, and the per-address
//! limit on failed sign-ins.
//!
//! Storage choices: the TOTP secret is sealed (AES-256-GCM, the account ID as
//! associated data) under the server's second-factor key, which lives outside
//! the database like the blind-index key. Recovery codes and app passwords are
//! 80- and 100-bit random strings, stored as SHA-256. Each app password also
//! locks a copy of the person's OpenPGP key (the same Argon2 S2K as the password
//! lock), so a mail client's session can open items without the account password.

mod acting;
mod app_passwords;
mod factors;
pub mod networks;
pub mod password;
mod policy;
mod reauth;
mod session;
mod sign_in;
mod state;
mod throttle;
mod totp;
mod webauthn;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::account::{Account, AccountId, PasswordDigest};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::records::audit::Audit;
use crate::store::Store;

pub use app_passwords::AppPasswordView;
pub use factors::FactorsView;
pub use password::Password;
pub use policy::{AddressLimit, AuthPolicy};
pub use reauth::Proof;
pub use session::{CurrentSession, EndCause, Peer, SessionKeys, SessionToken};
pub use sign_in::{PENDING_VALID_FOR, PendingToken, REAUTH_VALID_FOR, SecondFactor, SignInStep};
pub use state::FactorState;
pub use throttle::DEVICE_VALID_FOR;
pub use totp::{
    RECOVERY_CODES, SecondFactorKey, TOTP_DIGITS, TOTP_SKEW_STEPS, TOTP_STEP_SECS, TotpEnrolment,
    base32, totp_code, totp_match,
};
pub use webauthn::SecurityKeyView;

/// The authentication service.
pub struct Auth {
    store: Arc<dyn Store>,
    policy: AuthPolicy,
    audit: Audit,
    /// Session timeouts and TOTP steps are reckoned on it.
    clock: SharedClock,
    /// Unlocking at sign-in, re-locking on a password change, the keyrings of
    /// live sessions.
    keys: Arc<Keys>,
    /// Pending second steps, re-authentications, per-address failures.
    factors: FactorState,
    /// Seals TOTP secrets; without it TOTP cannot be enrolled or checked.
    second_factor_key: Option<SecondFactorKey>,
    /// The relying party for security keys and passkeys.
    webauthn: Option<webauthn_rs::Webauthn>,
    /// How long a sign-in or re-authentication covers exports and forwards.
    reauth_window: std::time::Duration,
}

impl Auth {
    pub fn new(
        store: Arc<dyn Store>,
        policy: AuthPolicy,
        audit: Audit,
        clock: SharedClock,
        keys: Arc<Keys>,
    ) -> Self {
        Self {
            store,
            policy,
            audit,
            clock,
            keys,
            factors: FactorState::default(),
            second_factor_key: None,
            webauthn: None,
            reauth_window: REAUTH_VALID_FOR,
        }
    }

    /// Security keys and passkeys for `rp_id` (the host name people use), from
    /// `origin` on any port.
    pub fn with_webauthn(mut self, rp_id: &str, origin: &str) -> Result<Self> {
        let url = webauthn_rs::prelude::Url::parse(origin)
            .map_err(|e| Error::Internal(format!("WebAuthn origin {origin}: {e}")))?;
        let w = webauthn_rs::WebauthnBuilder::new(rp_id, &url)
            .and_then(|b| b.rp_name("Renkei").allow_any_port(true).build())
            .map_err(|e| Error::Internal(format!("WebAuthn relying party: {e}")))?;
        self.webauthn = Some(w);
        Ok(self)
    }

    /// How long a sign-in or re-authentication covers the actions of
    /// `require_proved_recently` (`[auth] reauth_secs`; five minutes by default).
    pub fn with_reauth_window(mut self, window: std::time::Duration) -> Self {
        self.reauth_window = window;
        self
    }

    /// The key TOTP secrets are sealed under (kept outside the database).
    pub fn with_second_factor_key(mut self, key: SecondFactorKey) -> Self {
        self.second_factor_key = Some(key);
        self
    }

    pub fn auth_policy(&self) -> &AuthPolicy {
        &self.policy
    }

    /// Unix seconds by the service's clock.
    fn now(&self) -> i64 {
        self.clock.now_secs()
    }

    /// The account as stored now.
    async fn stored_account(&self, id: &AccountId) -> Result<Account> {
        self.store
            .account(id)
            .await?
            .ok_or(Error::NotFound("account"))
    }
}

fn sha256(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

/// Argon2 takes tens of milliseconds of CPU; keep it off the async workers.
pub(crate) async fn hash_blocking(password: Password) -> Result<PasswordDigest> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| Error::Internal(format!("hash task: {e}")))?
}

async fn verify_blocking(password: Password, digest: PasswordDigest) -> bool {
    tokio::task::spawn_blocking(move || password::verify(&password, &digest))
        .await
        .unwrap_or(false)
}
