//! Sessions: opened once every sign-in step passed, resolved from the cookie on
//! each request (ending it when idle or open too long), closed on sign-out.
//! Session times are kept in milliseconds: a seconds clock would end a session
//! up to a second early.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::password::{self, Password};
use super::{Auth, hash_blocking, verify_blocking};
use crate::account::{Account, AccountId, Role};
use crate::clock::millis;
use crate::error::{Error, Result};
use crate::ids::random_bytes;
use crate::keys::Keyring;
use crate::records::audit::{AuditEvent, action};
use crate::store::SessionRecord;

/// The secret a session cookie carries; only its SHA-256 is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    fn generate() -> Self {
        Self(hex::encode(random_bytes::<32>()))
    }
    pub fn from_cookie(value: &str) -> Self {
        Self(value.to_string())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    fn digest(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([REDACTED])")
    }
}

/// A live, authenticated session.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub account: Account,
    pub record: SessionRecord,
    /// When the idle timeout will end the session unless the person acts (Unix seconds).
    pub idle_deadline: i64,
    /// The account must have a second factor and has none: enrolling is all it
    /// may do.
    pub enrolment_required: bool,
}

impl CurrentSession {
    /// Everything except changing the password and signing out waits for the
    /// issued password to be replaced, and then for a required second factor.
    pub fn require_ready(&self) -> Result<&Account> {
        self.require_enrolment_allowed()?;
        if self.enrolment_required {
            Err(Error::SecondFactorEnrolmentRequired)
        } else {
            Ok(&self.account)
        }
    }

    /// The operator's console and commands: facilities, accounts, locks.
    pub fn require_operator(&self) -> Result<&Account> {
        let account = self.require_ready()?;
        if account.role == Role::Operator {
            Ok(account)
        } else {
            Err(Error::Forbidden)
        }
    }

    /// What enrolling a second factor needs: the issued password replaced.
    pub fn require_enrolment_allowed(&self) -> Result<&Account> {
        if self.account.must_change_password {
            Err(Error::PasswordChangeRequired)
        } else {
            Ok(&self.account)
        }
    }
}

/// The keys a new session gets.
pub enum SessionKeys {
    /// Unlock them now with the password the sign-in just checked.
    UnlockWithPassword,
    /// Already unlocked by an earlier step (the password step before a second
    /// factor, an app password's copy of the key).
    Unlocked(Box<Keyring>),
    /// None: the operator holds no key.
    Keyless,
}

impl From<Option<Keyring>> for SessionKeys {
    fn from(keyring: Option<Keyring>) -> Self {
        keyring.map_or(Self::Keyless, |k| Self::Unlocked(Box::new(k)))
    }
}

/// How stale a session's stored activity may get before it is written again.
fn touch_interval(idle_ms: i64) -> i64 {
    (idle_ms / 10).clamp(0, 15_000)
}

impl Auth {
    /// Opens the session once every step passed.
    pub(crate) async fn open_session(
        &self,
        account: Account,
        password: &Password,
        keys: SessionKeys,
        remote_addr: Option<String>,
    ) -> Result<(SessionToken, CurrentSession)> {
        if account.failed_attempts > 0 {
            self.store.reset_failed_logins(&account.id).await?;
        }
        let keyring = match keys {
            SessionKeys::UnlockWithPassword => {
                self.keys
                    .unlock_keyring(&account, password.expose().as_bytes())
                    .await?
            }
            SessionKeys::Unlocked(keyring) => Some(*keyring),
            SessionKeys::Keyless => None,
        };
        let enrolment_required =
            self.enrolment_pending(&account, self.second_factor_required(&account).await?);
        let token = SessionToken::generate();
        let t = self.clock.now_millis();
        let record = SessionRecord {
            token_hash: token.digest(),
            account_id: account.id.clone(),
            created_at: t,
            last_seen: t,
            remote_addr,
        };
        self.store.insert_session(&record).await?;
        self.store.record_sign_in(account.id.as_str(), t).await?;
        if let Some(keyring) = keyring {
            self.keys
                .keyrings()
                .insert(record.token_hash.clone(), keyring);
        }
        tracing::info!(
            account = account.id.as_str(),
            role = account.role.as_str(),
            "signed in"
        );
        let idle_deadline = (t + millis(self.policy.idle_timeout)) / 1000;
        let session = CurrentSession {
            account,
            record,
            idle_deadline,
            enrolment_required,
        };
        self.audit
            .record(AuditEvent::by(&session, action::SIGN_IN))
            .await?;
        Ok((token, session))
    }

    /// Resolves a cookie to its session, ending it if it has been idle or open too long.
    pub async fn authenticate(&self, token: &SessionToken) -> Result<CurrentSession> {
        let digest = token.digest();
        let Some((record, account)) = self.store.session_with_account(&digest).await? else {
            return Err(Error::NotSignedIn);
        };
        let t = self.clock.now_millis();
        if t - record.last_seen >= millis(self.policy.idle_timeout)
            || t - record.created_at >= millis(self.policy.absolute_timeout)
        {
            self.store.delete_session(&digest).await?;
            self.keys.keyrings().remove(&digest);
            return Err(Error::SessionExpired);
        }
        if account.locked {
            self.store.delete_session(&digest).await?;
            self.keys.keyrings().remove(&digest);
            return Err(Error::AccountLocked);
        }
        // Keys live only in this process: after a restart the session cannot read
        // anything, so it ends like an expired one.
        if account.role != Role::Operator && self.keys.keyrings().get(&digest).is_none() {
            self.store.delete_session(&digest).await?;
            return Err(Error::SessionExpired);
        }
        // Activity is written at most once per a tenth of the idle timeout
        // (15 s at most): every page and API call wrote a row before, and on
        // a busy inbox that write was the server's single slowest step. The
        // deadline is reckoned from what is stored, so it errs early, never late.
        let idle = millis(self.policy.idle_timeout);
        let last_seen = if t - record.last_seen >= touch_interval(idle) {
            self.store.touch_session(&digest, t).await?;
            t
        } else {
            record.last_seen
        };
        let enrolment_required = !account.has_second_factor
            && self.enrolment_pending(&account, self.second_factor_required(&account).await?);
        Ok(CurrentSession {
            enrolment_required,
            account,
            record: SessionRecord {
                last_seen,
                ..record
            },
            idle_deadline: (last_seen + idle) / 1000,
        })
    }

    /// The unlocked keys of a live session; `None` for the operator, who has none.
    pub fn keyring(&self, session: &CurrentSession) -> Option<Arc<Keyring>> {
        self.keys.keyrings().get(&session.record.token_hash)
    }

    /// Ends every session of the account and wipes their keys.
    pub(crate) async fn end_sessions_of(&self, id: &AccountId) -> Result<()> {
        self.store.delete_sessions_of(id).await?;
        self.keys.keyrings().remove_account(id);
        Ok(())
    }

    /// Ends one session by its stored hash (an app password's revocation).
    pub(crate) async fn end_session_by_hash(&self, digest: &[u8]) -> Result<()> {
        self.keys.keyrings().remove(digest);
        self.factors.forget_session(digest);
        self.store.delete_session(digest).await?;
        Ok(())
    }

    pub async fn sign_out(&self, token: &SessionToken) -> Result<()> {
        let digest = token.digest();
        self.keys.keyrings().remove(&digest);
        let record = self.store.session(&digest).await?;
        self.factors.forget_session(&digest);
        self.store.delete_session(&digest).await?;
        if let Some(record) = record
            && let Some(account) = self.store.account(&record.account_id).await?
        {
            self.audit
                .record(AuditEvent::by(
                    &CurrentSession {
                        account,
                        record,
                        idle_deadline: 0,
                        enrolment_required: false,
                    },
                    action::SIGN_OUT,
                ))
                .await?;
        }
        Ok(())
    }

    /// The person's own change: the current password is always required. Other
    /// sessions of the account end; this one stays.
    pub async fn change_password(
        &self,
        session: &CurrentSession,
        current: &Password,
        new: &Password,
    ) -> Result<()> {
        self.require_recent_reauth(session)?;
        let account = self.stored_account(&session.account.id).await?;
        if !verify_blocking(current.clone(), account.password.clone()).await {
            return Err(Error::WrongCurrentPassword);
        }
        password::check_policy(
            new,
            Some(current),
            account.id.as_str(),
            account.has_second_factor,
        )
        .map_err(Error::WeakPassword)?;
        let digest = hash_blocking(new.clone()).await?;
        match self.keyring(session) {
            Some(keyring) => {
                let locked = self.keys.relock(&keyring, new.expose().as_bytes()).await?;
                self.store
                    .set_password_and_key(&account.id, &digest, false, &locked)
                    .await?;
                self.end_sessions_of(&account.id).await?;
                self.store.insert_session(&session.record).await?;
                self.keys
                    .keyrings()
                    .insert_shared(session.record.token_hash.clone(), keyring);
            }
            None => {
                self.store.set_password(&account.id, &digest, false).await?;
                self.end_sessions_of(&account.id).await?;
                self.store.insert_session(&session.record).await?;
            }
        }
        tracing::info!(account = account.id.as_str(), "password changed");
        self.audit
            .record(AuditEvent::by(session, action::PASSWORD_CHANGE))
            .await?;
        Ok(())
    }

    /// Drops sessions past either timeout; run periodically by `serve`.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        let t = self.clock.now_millis();
        let purged = self
            .store
            .purge_sessions(
                t - millis(self.policy.idle_timeout),
                t - millis(self.policy.absolute_timeout),
            )
            .await?;
        // Wipe the keys of every session that no longer exists.
        let mut gone = Vec::new();
        for digest in self.keys.keyrings().sessions() {
            if self.store.session(&digest).await?.is_none() {
                gone.push(digest);
            }
        }
        for digest in gone {
            self.keys.keyrings().remove(&digest);
        }
        Ok(purged)
    }
}
