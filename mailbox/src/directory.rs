//! The directory service: registering facilities and accounts, signing in and out,
//! password changes. Pages, the JSON API and the CLI all go through it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use renkei_crypto::LockParams;

use crate::account::{Account, AccountId, Role};
use crate::error::{Error, Result};
use crate::facility::{DEFAULT_HOME_PREFECTURE, Facility, FacilityCode, PublicListing};
use crate::keyring::{Keyring, Keyrings};
use crate::password::{self, Password};
use crate::records::audit::{Audit, AuditEvent, action};
use crate::store::{SessionRecord, Store, StoreError};
use crate::twofactor::{AddressLimit, FactorState, SecondFactorKey, SignInStep};

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

#[derive(Debug, Clone)]
pub struct NetworkPolicy {
    /// Facilities elsewhere need the steering committee's approval reference.
    pub home_prefecture: u8,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        Self {
            home_prefecture: DEFAULT_HOME_PREFECTURE,
        }
    }
}

/// The secret a session cookie carries; only its SHA-256 is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
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

/// What the operator enters to create an account; the ID is always assigned.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub role: Role,
    pub facility: Option<FacilityCode>,
    pub name: String,
    pub email: Option<String>,
}

pub struct Directory {
    store: Arc<dyn Store>,
    auth: AuthPolicy,
    network: NetworkPolicy,
    /// Unlocked keys of live sessions; memory only, never stored.
    keyrings: Keyrings,
    audit: Audit,
    /// Pending second steps, re-authentications, per-address failures.
    factors: FactorState,
    /// Seals TOTP secrets; without it TOTP cannot be enrolled or checked.
    second_factor_key: Option<SecondFactorKey>,
    /// The relying party for security keys and passkeys.
    webauthn: Option<webauthn_rs::Webauthn>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Session times are kept in milliseconds: a seconds clock would end a session up
/// to a second early.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// How stale a session's stored activity may get before it is written again.
fn touch_interval(idle_ms: i64) -> i64 {
    (idle_ms / 10).clamp(0, 15_000)
}

impl Directory {
    pub fn new(store: Arc<dyn Store>, auth: AuthPolicy, network: NetworkPolicy) -> Self {
        Self {
            audit: Audit::new(store.clone()),
            store,
            auth,
            network,
            keyrings: Keyrings::default(),
            factors: FactorState::default(),
            second_factor_key: None,
            webauthn: None,
        }
    }

    /// The audit trail every service writes to.
    pub fn audit(&self) -> &Audit {
        &self.audit
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

    pub(crate) fn webauthn_config(&self) -> Option<&webauthn_rs::Webauthn> {
        self.webauthn.as_ref()
    }

    /// The key TOTP secrets are sealed under (kept outside the database).
    pub fn with_second_factor_key(mut self, key: SecondFactorKey) -> Self {
        self.second_factor_key = Some(key);
        self
    }

    pub(crate) fn second_factor_key(&self) -> Option<&SecondFactorKey> {
        self.second_factor_key.as_ref()
    }

    pub(crate) fn factor_state(&self) -> &FactorState {
        &self.factors
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn auth_policy(&self) -> &AuthPolicy {
        &self.auth
    }

    // --- facilities -------------------------------------------------------------

    fn validate_facility(&self, f: &Facility) -> Result<()> {
        if f.name.trim().is_empty() {
            return Err(Error::invalid(
                "name",
                "the facility name is empty",
                "施設名を入力してください。",
            ));
        }
        if f.code.prefecture() != self.network.home_prefecture
            && f.approval_ref
                .as_deref()
                .is_none_or(|r| r.trim().is_empty())
        {
            return Err(Error::invalid(
                "approval_ref",
                format!(
                    "a facility outside prefecture {:02} needs the steering committee's approval reference",
                    self.network.home_prefecture
                ),
                "県外の医療施設の登録には運営委員会の承認番号が必要です。",
            ));
        }
        if let Some(until) = f.active_until
            && until < f.active_from
        {
            return Err(Error::invalid(
                "active_until",
                "active-until is before active-from",
                "利用終了日が利用開始日より前です。",
            ));
        }
        Ok(())
    }

    pub async fn add_facility(&self, facility: Facility) -> Result<Facility> {
        self.validate_facility(&facility)?;
        match self.store.insert_facility(&facility).await {
            Err(StoreError::Conflict(_)) => Err(Error::Conflict(format!(
                "facility {} is already registered",
                facility.code
            ))),
            other => other.map(|()| facility).map_err(Error::from),
        }
    }

    pub async fn update_facility(&self, facility: Facility) -> Result<Facility> {
        self.validate_facility(&facility)?;
        match self.store.update_facility(&facility).await {
            Err(StoreError::NotFound) => Err(Error::NotFound("facility")),
            other => other.map(|()| facility).map_err(Error::from),
        }
    }

    /// Ends participation on `last_day`; the facility is billed through that month.
    pub async fn deactivate_facility(
        &self,
        code: &FacilityCode,
        last_day: NaiveDate,
    ) -> Result<Facility> {
        let mut facility = self.facility(code).await?;
        facility.active_until = Some(last_day.max(facility.active_from));
        self.update_facility(facility).await
    }

    pub async fn facility(&self, code: &FacilityCode) -> Result<Facility> {
        self.store
            .facility(code)
            .await?
            .ok_or(Error::NotFound("facility"))
    }

    pub async fn facilities(&self) -> Result<Vec<Facility>> {
        Ok(self.store.facilities().await?)
    }

    /// The public list of participating facilities (no sign-in): those active
    /// on `day`, by city and name, each showing only what it chose to publish.
    pub async fn public_listings(&self, day: NaiveDate) -> Result<Vec<PublicListing>> {
        let mut listed: Vec<PublicListing> = self
            .store
            .facilities()
            .await?
            .iter()
            .filter(|f| f.is_active_on(day))
            .map(Facility::public_listing)
            .collect();
        listed.sort_by(|a, b| (&a.city, &a.name).cmp(&(&b.city, &b.name)));
        Ok(listed)
    }

    // --- accounts ---------------------------------------------------------------

    /// Creates an account with an issued password that must be changed at first sign-in.
    pub async fn add_account(&self, new: NewAccount) -> Result<(Account, Password)> {
        let issued = password::issue();
        let account = self.add_account_with_password(new, &issued, true).await?;
        Ok((account, issued))
    }

    /// Creates an account with a given password (the demo network uses this).
    pub async fn add_account_with_password(
        &self,
        new: NewAccount,
        password: &Password,
        must_change: bool,
    ) -> Result<Account> {
        if new.name.trim().is_empty() {
            return Err(Error::invalid(
                "name",
                "the name is empty",
                "氏名を入力してください。",
            ));
        }
        match (new.role.needs_facility(), &new.facility) {
            (true, None) => {
                return Err(Error::invalid(
                    "facility",
                    "doctors, clerks and liaison accounts belong to one facility",
                    "医師・事務員・地域連携室のIDには所属施設が必要です。",
                ));
            }
            (false, Some(_)) => {
                return Err(Error::invalid(
                    "facility",
                    "an operator account belongs to no facility",
                    "運営者IDは施設に所属しません。",
                ));
            }
            (true, Some(code)) => {
                let facility = self.facility(code).await?;
                if !facility.is_active_on(chrono::Utc::now().date_naive()) {
                    return Err(Error::invalid(
                        "facility",
                        "the facility is not active",
                        "この施設は利用期間外です。",
                    ));
                }
            }
            (false, None) => {}
        }
        if let Some(email) = &new.email {
            validate_email(email)?;
        }
        let digest = hash_blocking(password.clone()).await?;
        // IDs are random; retry on the (unlikely) collision instead of failing.
        for _ in 0..8 {
            let account = Account {
                id: AccountId::generate(),
                role: new.role,
                facility: new.facility.clone(),
                name: new.name.trim().to_string(),
                email: new.email.clone(),
                email_verified: false,
                password: digest.clone(),
                must_change_password: must_change,
                locked: false,
                failed_attempts: 0,
                has_second_factor: false,
                removed: false,
                created_at: now(),
            };
            match self.store.insert_account(&account).await {
                Ok(()) => {
                    self.create_account_key(&account, password).await?;
                    return Ok(account);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Internal(
            "could not assign a unique account ID".into(),
        ))
    }

    pub async fn account(&self, id: &AccountId) -> Result<Account> {
        self.store
            .account(id)
            .await?
            .ok_or(Error::NotFound("account"))
    }

    pub async fn accounts(&self, facility: Option<&FacilityCode>) -> Result<Vec<Account>> {
        Ok(self.store.accounts(facility).await?)
    }

    /// Issues a new password (credential letter) without the recovery key; see
    /// [`Directory::reset_password_with`].
    pub async fn reset_password(&self, id: &AccountId) -> Result<Password> {
        Ok(self.reset_password_with(id, None).await?.password)
    }

    /// Ends every session of the account and wipes their keys.
    pub(crate) async fn end_sessions_of(&self, id: &AccountId) -> Result<()> {
        self.store.delete_sessions_of(id).await?;
        self.keyrings.remove_account(id);
        Ok(())
    }

    /// The unlocked keys of a live session; `None` for the operator, who has none.
    pub fn keyring(&self, session: &CurrentSession) -> Option<Arc<Keyring>> {
        self.keyrings.get(&session.record.token_hash)
    }

    pub async fn set_locked(&self, id: &AccountId, locked: bool) -> Result<Account> {
        if !locked && self.account(id).await?.removed {
            return Err(Error::Conflict(format!(
                "account {id} was removed and cannot be unlocked"
            )));
        }
        match self.store.set_locked(id, locked).await {
            Err(StoreError::NotFound) => return Err(Error::NotFound("account")),
            other => other?,
        }
        if locked {
            self.end_sessions_of(id).await?;
        }
        self.account(id).await
    }

    // --- sign-in ----------------------------------------------------------------

    /// Checks the password and opens a session when the account has no second
    /// factor; with one, [`Directory::sign_in_password`] and
    /// [`Directory::complete_sign_in`] are the two steps.
    pub async fn sign_in(
        &self,
        id_input: &str,
        password: &Password,
        remote_addr: Option<String>,
    ) -> Result<(SessionToken, CurrentSession)> {
        match self
            .sign_in_password(id_input, password, remote_addr)
            .await?
        {
            SignInStep::Done(token, session) => Ok((token, *session)),
            SignInStep::SecondFactor { .. } => Err(Error::SecondFactorRequired),
        }
    }

    /// The password step: a wrong ID and a wrong password look the same from
    /// outside and take the same time; a wrong password counts toward the lockout.
    pub(crate) async fn check_password(
        &self,
        id_input: &str,
        password: &Password,
        remote_addr: Option<String>,
    ) -> Result<Account> {
        let account = match AccountId::parse(id_input) {
            Ok(id) => self.store.account(&id).await?,
            Err(_) => None,
        };
        let Some(account) = account else {
            verify_blocking(password.clone(), password::dummy_digest()).await;
            // What was typed is not recorded: it could be anything, even a name.
            self.audit
                .record(AuditEvent {
                    action: action::SIGN_IN_FAILED,
                    detail: Some("unknown_account".into()),
                    remote_addr: remote_addr.clone(),
                    ..AuditEvent::default()
                })
                .await?;
            return Err(Error::BadCredentials);
        };
        let failed = |detail: &'static str| AuditEvent {
            actor: Some(account.id.as_str().to_string()),
            role: Some(account.role.as_str().to_string()),
            facility: account.facility.as_ref().map(|c| c.to_string()),
            action: action::SIGN_IN_FAILED,
            detail: Some(detail.into()),
            remote_addr: remote_addr.clone(),
            item: None,
        };
        if account.locked || account.removed {
            self.audit.record(failed("locked")).await?;
            return Err(Error::AccountLocked);
        }
        if !verify_blocking(password.clone(), account.password.clone()).await {
            let outcome = self
                .store
                .record_failed_login(&account.id, self.auth.lock_after)
                .await?;
            tracing::warn!(
                account = account.id.as_str(),
                attempts = outcome.failed_attempts,
                locked = outcome.locked,
                "sign-in failed: wrong password"
            );
            self.audit
                .record(failed(if outcome.locked {
                    "wrong_password_now_locked"
                } else {
                    "wrong_password"
                }))
                .await?;
            return Err(if outcome.locked {
                Error::AccountLocked
            } else {
                Error::BadCredentials
            });
        }
        Ok(account)
    }

    /// Opens the session once every step passed. `keyring` is the already
    /// unlocked one (second step, app password); `None` unlocks with `password`.
    pub(crate) async fn open_session(
        &self,
        account: Account,
        password: &Password,
        keyring: Option<Option<Keyring>>,
        remote_addr: Option<String>,
    ) -> Result<(SessionToken, CurrentSession)> {
        if account.failed_attempts > 0 {
            self.store.reset_failed_logins(&account.id).await?;
        }
        let keyring = match keyring {
            Some(k) => k,
            None => self.unlock_keyring(&account, password).await?,
        };
        let enrolment_required =
            self.enrolment_pending(&account, self.second_factor_required(&account).await?);
        let token = SessionToken::generate();
        let t = now_ms();
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
            self.keyrings.insert(record.token_hash.clone(), keyring);
        }
        tracing::info!(
            account = account.id.as_str(),
            role = account.role.as_str(),
            "signed in"
        );
        let idle_deadline = (t + millis(self.auth.idle_timeout)) / 1000;
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
        let t = now_ms();
        if t - record.last_seen >= millis(self.auth.idle_timeout)
            || t - record.created_at >= millis(self.auth.absolute_timeout)
        {
            self.store.delete_session(&digest).await?;
            self.keyrings.remove(&digest);
            return Err(Error::SessionExpired);
        }
        if account.locked {
            self.store.delete_session(&digest).await?;
            self.keyrings.remove(&digest);
            return Err(Error::AccountLocked);
        }
        // Keys live only in this process: after a restart the session cannot read
        // anything, so it ends like an expired one.
        if account.role != Role::Operator && self.keyrings.get(&digest).is_none() {
            self.store.delete_session(&digest).await?;
            return Err(Error::SessionExpired);
        }
        // Activity is written at most once per a tenth of the idle timeout
        // (15 s at most): every page and API call wrote a row before, and on
        // a busy inbox that write was the server's single slowest step. The
        // deadline is reckoned from what is stored, so it errs early, never late.
        let idle = millis(self.auth.idle_timeout);
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

    /// Ends one session by its stored hash (an app password's revocation).
    pub(crate) async fn end_session_by_hash(&self, digest: &[u8]) -> Result<()> {
        self.keyrings.remove(digest);
        self.factors.forget_session(digest);
        self.store.delete_session(digest).await?;
        Ok(())
    }

    pub async fn sign_out(&self, token: &SessionToken) -> Result<()> {
        let digest = token.digest();
        self.keyrings.remove(&digest);
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
        let account = self.account(&session.account.id).await?;
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
                let locked = self.relock(&keyring, new).await?;
                self.store
                    .set_password_and_key(&account.id, &digest, false, &locked)
                    .await?;
                self.end_sessions_of(&account.id).await?;
                self.store.insert_session(&session.record).await?;
                self.keyrings
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
        let t = now_ms();
        let purged = self
            .store
            .purge_sessions(
                t - millis(self.auth.idle_timeout),
                t - millis(self.auth.absolute_timeout),
            )
            .await?;
        // Wipe the keys of every session that no longer exists.
        let mut gone = Vec::new();
        for digest in self.keyrings.sessions() {
            if self.store.session(&digest).await?.is_none() {
                gone.push(digest);
            }
        }
        for digest in gone {
            self.keyrings.remove(&digest);
        }
        Ok(purged)
    }
}

pub fn validate_email(email: &str) -> Result<()> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "email",
            "the e-mail address is not valid",
            "メールアドレスの形式が正しくありません。",
        ))
    }
}

/// Argon2 takes tens of milliseconds of CPU; keep it off the async workers.
pub(crate) async fn hash_blocking(password: Password) -> Result<password::PasswordDigest> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| Error::Internal(format!("hash task: {e}")))?
}

async fn verify_blocking(password: Password, digest: password::PasswordDigest) -> bool {
    tokio::task::spawn_blocking(move || password::verify(&password, &digest))
        .await
        .unwrap_or(false)
}
