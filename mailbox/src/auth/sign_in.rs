//! The sign-in steps: the password (a session at once, or a pending sign-in
//! when a second factor is enrolled), the second factor, and re-authentication
//! before sensitive actions.
//!
//! `sign_in_password` answers `SignInStep::Done` (no factor) or `SecondFactor {
//! pending }`: the key is unlocked and held in memory with the pending token
//! for five minutes, and no session row exists until `complete_sign_in`. Wrong
//! codes count toward the same lockout counter as wrong passwords.
//! `reauthenticate` and `require_recent_reauth` (five minutes) guard changing
//! the address, the password and the factors, making app passwords, and a
//! whole-study export. Failed passwords and codes are counted by the throttle
//! (`throttle.rs`, in the database) per (ID, address or known device) and per
//! address, across the web and IMAP; over either, `TooManyAttempts` (HTTP 429).

use std::fmt;
use std::time::{Duration, Instant};

use webauthn_rs::prelude::{PasskeyAuthentication, PublicKeyCredential};

use super::password::{self, Password};
use super::session::{CurrentSession, Peer, SessionKeys, SessionToken};
use super::state::Pending;
use super::throttle::Attempt;
use super::totp::normalise_code;
use super::{Auth, sha256, verify_blocking};
use crate::account::{Account, AccountId};
use crate::error::{Error, Result};
use crate::ids::random_bytes;
use crate::records::audit::{AuditEvent, action};

/// How long the second step of a sign-in may take after the password.
pub const PENDING_VALID_FOR: Duration = Duration::from_secs(5 * 60);
/// How long a re-authentication covers sensitive actions.
pub const REAUTH_VALID_FOR: Duration = Duration::from_secs(5 * 60);

/// What a person enters as the second step.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    Totp(String),
    RecoveryCode(String),
    /// The browser's answer to the challenge of `webauthn_challenge`.
    WebAuthn(Box<PublicKeyCredential>),
}

/// A sign-in waiting for its second factor: the password was right and the key
/// is unlocked in memory, but no session exists yet.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingToken(String);

impl PendingToken {
    fn generate() -> Self {
        Self(hex::encode(random_bytes::<32>()))
    }
    pub fn from_client(value: &str) -> Self {
        Self(value.trim().to_string())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PendingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingToken([REDACTED])")
    }
}

/// The outcome of the password step.
#[derive(Debug)]
pub enum SignInStep {
    /// No factor is enrolled: the session exists (it may still have to enrol).
    Done(SessionToken, Box<CurrentSession>),
    /// A factor is enrolled: the second step must follow.
    SecondFactor {
        pending: PendingToken,
        methods: Vec<&'static str>,
    },
}

impl Auth {
    /// Checks the password and opens a session when the account has no second
    /// factor; with one, [`Auth::sign_in_password`] and
    /// [`Auth::complete_sign_in`] are the two steps.
    pub async fn sign_in(
        &self,
        id_input: &str,
        password: &Password,
        remote_addr: impl Into<Peer>,
    ) -> Result<(SessionToken, CurrentSession)> {
        match self
            .sign_in_password(id_input, password, remote_addr)
            .await?
        {
            SignInStep::Done(token, session) => Ok((token, *session)),
            SignInStep::SecondFactor { .. } => Err(Error::SecondFactorRequired),
        }
    }

    /// The password step. Unknown, removed, locked and wrong-password
    /// attempts get the same answer after the same Argon2 work (a dummy hash
    /// for IDs that do not exist); only a right password learns that the help
    /// desk locked the account. Each failure is counted by the throttle and
    /// on the account (for the operator's console), and never locks it.
    pub(super) async fn check_password(
        &self,
        id_input: &str,
        password: &Password,
        peer: &Peer,
        attempt: &Attempt,
    ) -> Result<Account> {
        let remote_addr = peer.addr.clone();
        let channel = Some(peer.channel);
        let account = match AccountId::parse(id_input) {
            Ok(id) => self.store.account(&id).await?.filter(|a| !a.removed),
            Err(_) => None,
        };
        let digest = account
            .as_ref()
            .map_or_else(password::dummy_digest, |a| a.password.clone());
        let right = verify_blocking(password.clone(), digest).await;
        let event = |account: Option<&Account>, detail: &'static str| AuditEvent {
            actor: account.map(|a| a.id.as_str().to_string()),
            role: account.map(|a| a.role.as_str().to_string()),
            facility: account.and_then(|a| a.facility.as_ref().map(|c| c.to_string())),
            action: action::SIGN_IN_FAILED,
            detail: Some(detail.into()),
            remote_addr: remote_addr.clone(),
            channel,
            item: None,
        };
        let Some(account) = account.clone().filter(|_| right) else {
            self.throttle_failed(attempt).await?;
            // The same statements whether or not the account exists.
            if let Ok(id) = AccountId::parse(id_input)
                && let Some(outcome) = self.store.record_failed_login(&id).await?
                && account.is_some()
            {
                tracing::warn!(
                    account = id.as_str(),
                    attempts = outcome.failed_attempts,
                    "sign-in failed: wrong password"
                );
            }
            // What was typed as an ID is not recorded: it could be anything.
            let detail = if account.is_some() {
                "wrong_password"
            } else {
                "unknown_account"
            };
            self.audit.record(event(account.as_ref(), detail)).await?;
            return Err(Error::BadCredentials);
        };
        if account.locked {
            self.audit.record(event(Some(&account), "locked")).await?;
            return Err(Error::AccountLocked);
        }
        Ok(account)
    }

    /// After the password: a session at once, or a pending sign-in for the
    /// second step. Refused while the address is over its failure limit.
    pub async fn sign_in_password(
        &self,
        id_input: &str,
        password: &Password,
        peer: impl Into<Peer>,
    ) -> Result<SignInStep> {
        let peer: Peer = peer.into();
        let attempt = self.attempt_of(id_input, &peer).await?;
        self.throttle_check(&attempt).await?;
        let account = self
            .check_password(id_input, password, &peer, &attempt)
            .await?;
        if !account.has_second_factor {
            // With a factor the count is cleared only once the code is right.
            self.throttle_succeeded(&attempt).await?;
            let (token, session) = self
                .open_session(account, password, SessionKeys::UnlockWithPassword, peer)
                .await?;
            return Ok(SignInStep::Done(token, Box::new(session)));
        }
        self.await_second_factor(account, password, peer, attempt)
            .await
    }

    /// The password was right and a factor is enrolled: unlock the keys, keep
    /// them with a pending sign-in, and say which factors may follow.
    async fn await_second_factor(
        &self,
        account: Account,
        password: &Password,
        peer: Peer,
        attempt: Attempt,
    ) -> Result<SignInStep> {
        let keyring = self
            .keys
            .unlock_keyring(&account, password.expose().as_bytes())
            .await?;
        let token = PendingToken::generate();
        self.factors.put_pending(
            &token,
            Pending {
                account: account.id.clone(),
                webauthn: None,
                keyring,
                remote: peer.addr,
                channel: peer.channel,
                attempt,
                created: Instant::now(),
            },
        );
        tracing::info!(
            account = account.id.as_str(),
            "password accepted; waiting for the second factor"
        );
        let mut methods = vec!["totp", "recovery_code"];
        if !self
            .store
            .webauthn_credentials(account.id.as_str())
            .await?
            .is_empty()
        {
            methods.push("webauthn");
        }
        Ok(SignInStep::SecondFactor {
            pending: token,
            methods,
        })
    }

    /// The second step: the session is created only now.
    pub async fn complete_sign_in(
        &self,
        pending: &PendingToken,
        factor: &SecondFactor,
        remote_addr: impl Into<Peer>,
    ) -> Result<(SessionToken, CurrentSession)> {
        let remote_addr = remote_addr.into().addr;
        let Some(p) = self.factors.take_pending(pending) else {
            return Err(Error::SessionExpired);
        };
        // Codes wait out the same delay as passwords.
        if let Err(e) = self.throttle_check(&p.attempt).await {
            self.factors.put_pending(pending, p);
            return Err(e);
        }
        let account = self.stored_account(&p.account).await?;
        if account.locked || account.removed {
            return Err(Error::AccountLocked);
        }
        match self
            .check_factor(&account, factor, Some(&p.attempt), p.webauthn.as_ref())
            .await
        {
            Ok(()) => {}
            Err(Error::BadSecondFactor) => {
                // A wrong code may be retried within the same pending sign-in.
                self.factors.put_pending(pending, p);
                return Err(Error::BadSecondFactor);
            }
            Err(e) => return Err(e),
        }
        let (token, session) = self
            .open_session(
                account,
                &Password::new(String::new()),
                SessionKeys::from(p.keyring),
                Peer {
                    addr: p.remote.or(remote_addr),
                    channel: p.channel,
                    device: None,
                },
            )
            .await?;
        Ok((token, session))
    }

    /// Checks a TOTP or recovery code; a failure is counted on the account and
    /// by the throttle, exactly like a wrong password.
    async fn check_factor(
        &self,
        account: &Account,
        factor: &SecondFactor,
        attempt: Option<&Attempt>,
        webauthn: Option<&PasskeyAuthentication>,
    ) -> Result<()> {
        let ok = match factor {
            SecondFactor::WebAuthn(credential) => match webauthn {
                Some(state) => self.check_webauthn(account, credential, state).await?,
                None => false,
            },
            SecondFactor::Totp(code) => self.check_totp(account, code).await?,
            SecondFactor::RecoveryCode(code) => {
                let used = self
                    .store
                    .use_recovery_code(
                        account.id.as_str(),
                        &sha256(&normalise_code(code)),
                        self.now(),
                    )
                    .await?;
                if used {
                    tracing::warn!(account = account.id.as_str(), "a recovery code was used");
                }
                used
            }
        };
        if ok {
            if let Some(attempt) = attempt {
                self.throttle_succeeded(attempt).await?;
            }
            return Ok(());
        }
        let outcome = self.store.record_failed_login(&account.id).await?;
        if let Some(attempt) = attempt {
            self.throttle_failed(attempt).await?;
        }
        tracing::warn!(
            account = account.id.as_str(),
            attempts = outcome.map_or(0, |o| o.failed_attempts),
            "second factor refused"
        );
        Err(Error::BadSecondFactor)
    }

    /// Re-authentication before sensitive actions.
    pub async fn reauthenticate(
        &self,
        session: &CurrentSession,
        factor: &SecondFactor,
    ) -> Result<()> {
        let account = self.stored_account(&session.account.id).await?;
        let challenge = self
            .factors
            .take_reauth_challenge(&session.record.token_hash);
        let peer = Peer {
            addr: session.record.remote_addr.clone(),
            ..Peer::default()
        };
        let attempt = self.attempt_of(account.id.as_str(), &peer).await?;
        self.throttle_check(&attempt).await?;
        self.check_factor(&account, factor, Some(&attempt), challenge.as_ref())
            .await?;
        self.factors.reauthenticated(&session.record.token_hash);
        tracing::info!(account = account.id.as_str(), "re-authenticated");
        Ok(())
    }

    /// The check before changing the address, the password or the factors, and
    /// before exporting a whole study: an account with a second factor must have
    /// re-authenticated with it within the last five minutes.
    pub fn require_recent_reauth(&self, session: &CurrentSession) -> Result<()> {
        if !session.account.has_second_factor {
            return Ok(());
        }
        if self
            .factors
            .recently_reauthenticated(&session.record.token_hash)
        {
            Ok(())
        } else {
            Err(Error::ReauthRequired)
        }
    }
}
