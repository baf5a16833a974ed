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
use crate::records::audit::{AuditEvent, Channel, action};
use crate::store::SessionRecord;

/// Where a sign-in comes from: the address the edge saw and the channel
/// (pages, API, mail client) the session will belong to. A bare address is a
/// sign-in on the pages.
#[derive(Clone, Default)]
pub struct Peer {
    pub addr: Option<String>,
    pub channel: Channel,
    /// The browser's device cookie, if it brought one.
    pub device: Option<String>,
}

impl Peer {
    pub fn api(addr: Option<String>) -> Self {
        Self {
            addr,
            channel: Channel::Api,
            device: None,
        }
    }

    pub fn imap(addr: Option<String>) -> Self {
        Self {
            addr,
            channel: Channel::Imap,
            device: None,
        }
    }

    /// With the browser's device cookie.
    pub fn with_device(mut self, device: Option<String>) -> Self {
        self.device = device;
        self
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("addr", &self.addr)
            .field("channel", &self.channel)
            .field("device", &self.device.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl From<Option<String>> for Peer {
    fn from(addr: Option<String>) -> Self {
        Self {
            addr,
            channel: Channel::Web,
            device: None,
        }
    }
}

/// Why a session ended other than by signing out, as the audit trail says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    IdleTimeout,
    AbsoluteTimeout,
    /// The server restarted: the keys held in memory are gone.
    KeysLost,
    AccountLocked,
    AccountRemoved,
    PasswordChanged,
    PasswordReset,
    SecondFactorReset,
    AppPasswordRevoked,
}

impl EndCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdleTimeout => "idle_timeout",
            Self::AbsoluteTimeout => "absolute_timeout",
            Self::KeysLost => "keys_lost",
            Self::AccountLocked => "account_locked",
            Self::AccountRemoved => "account_removed",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::SecondFactorReset => "second_factor_reset",
            Self::AppPasswordRevoked => "app_password_revoked",
        }
    }
}

/// `cause=… length_s=…` of an ended session (`cause` may be `sign_out`).
fn end_detail(record: &SessionRecord, cause: &str, now_ms: i64) -> String {
    let length_s = (now_ms - record.created_at).max(0) / 1000;
    format!("cause={cause} length_s={length_s}")
}

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
        crate::roles::require(account, crate::roles::Action::RunNetwork)?;
        Ok(account)
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
        peer: Peer,
    ) -> Result<(SessionToken, CurrentSession)> {
        self.refuse_outside_networks(&account, peer.addr.as_deref())
            .await?;
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
            remote_addr: peer.addr,
            channel: Some(peer.channel.as_str().to_string()),
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
        let ended = if t - record.created_at >= millis(self.policy.absolute_timeout) {
            Some((EndCause::AbsoluteTimeout, Error::SessionExpired))
        } else if t - record.last_seen >= millis(self.policy.idle_timeout) {
            Some((EndCause::IdleTimeout, Error::SessionExpired))
        } else if account.locked {
            Some((EndCause::AccountLocked, Error::AccountLocked))
        } else if account.role != Role::Operator && self.keys.keyrings().get(&digest).is_none() {
            // Keys live only in this process: after a restart the session
            // cannot read anything, so it ends like an expired one.
            Some((EndCause::KeysLost, Error::SessionExpired))
        } else {
            None
        };
        if let Some((cause, error)) = ended {
            self.store.delete_session(&digest).await?;
            self.keys.keyrings().remove(&digest);
            self.audit_end(&record, &account, cause.as_str()).await;
            return Err(error);
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

    /// Ends every session of the account and wipes their keys; each end is
    /// audited with its cause, except the session `keep` (a password change
    /// re-opens the session that made it).
    pub(crate) async fn end_sessions_of(
        &self,
        id: &AccountId,
        cause: EndCause,
        keep: Option<&[u8]>,
    ) -> Result<()> {
        let ended = self.store.delete_sessions_of(id).await?;
        self.keys.keyrings().remove_account(id);
        let ended: Vec<_> = ended
            .into_iter()
            .filter(|r| Some(r.token_hash.as_slice()) != keep)
            .collect();
        if let (false, Some(account)) = (ended.is_empty(), self.store.account(id).await?) {
            for record in &ended {
                self.audit_end(record, &account, cause.as_str()).await;
            }
        }
        Ok(())
    }

    /// A change to the person's own credentials (factors, app passwords), on
    /// the trail: `what` is fixed words and IDs, never a secret or a name.
    pub(crate) async fn audit_credentials(
        &self,
        session: &CurrentSession,
        action: &'static str,
        what: String,
    ) -> Result<()> {
        self.audit
            .record(AuditEvent::by(session, action).detail(what))
            .await
    }

    /// The audit entry of an ended session: who, from where, through which
    /// channel, why and after how long. Written after the fact, so a failure
    /// is logged rather than undoing the end.
    async fn audit_end(&self, record: &SessionRecord, account: &Account, cause: &str) {
        let action = if cause == "sign_out" {
            action::SIGN_OUT
        } else {
            action::SESSION_END
        };
        let session = CurrentSession {
            account: account.clone(),
            record: record.clone(),
            idle_deadline: 0,
            enrolment_required: false,
        };
        let detail = end_detail(record, cause, self.clock.now_millis());
        self.audit
            .note(AuditEvent::by(&session, action).detail(detail))
            .await;
    }

    /// Ends one session by its stored hash (an app password's revocation).
    pub(crate) async fn end_session_by_hash(&self, digest: &[u8], cause: EndCause) -> Result<()> {
        self.keys.keyrings().remove(digest);
        self.factors.forget_session(digest);
        let record = self.store.session(digest).await?;
        self.store.delete_session(digest).await?;
        if let Some(record) = record
            && let Some(account) = self.store.account(&record.account_id).await?
        {
            self.audit_end(&record, &account, cause.as_str()).await;
        }
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
            let session = CurrentSession {
                account,
                idle_deadline: 0,
                enrolment_required: false,
                record,
            };
            let detail = end_detail(&session.record, "sign_out", self.clock.now_millis());
            self.audit
                .record(AuditEvent::by(&session, action::SIGN_OUT).detail(detail))
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
                let keep = Some(session.record.token_hash.as_slice());
                self.end_sessions_of(&account.id, EndCause::PasswordChanged, keep)
                    .await?;
                self.store.insert_session(&session.record).await?;
                self.keys
                    .keyrings()
                    .insert_shared(session.record.token_hash.clone(), keyring);
            }
            None => {
                self.store.set_password(&account.id, &digest, false).await?;
                let keep = Some(session.record.token_hash.as_slice());
                self.end_sessions_of(&account.id, EndCause::PasswordChanged, keep)
                    .await?;
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
        let absolute_before = t - millis(self.policy.absolute_timeout);
        let ended = self
            .store
            .purge_sessions(t - millis(self.policy.idle_timeout), absolute_before)
            .await?;
        for record in &ended {
            let cause = if record.created_at < absolute_before {
                EndCause::AbsoluteTimeout
            } else {
                EndCause::IdleTimeout
            };
            if let Some(account) = self.store.account(&record.account_id).await? {
                self.audit_end(record, &account, cause.as_str()).await;
            }
        }
        let purged = ended.len() as u64;
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
        self.purge_throttle().await?;
        Ok(purged)
    }
}
