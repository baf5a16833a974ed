//! The registry of accounts: creating them (with their key), looking them up,
//! locking, password resets by the operator, and removal.

use crate::account::{Account, AccountId, Role};
use crate::auth::password::{self, Password};
use crate::auth::{EndCause, hash_blocking};
use crate::error::{Error, Result};
use crate::store::StoreError;

use super::{Directory, NewAccount};

/// What a password reset did to the person's key.
#[derive(Debug)]
pub struct ResetOutcome {
    pub password: Password,
    /// False with the recovery key (same key, every old item still opens).
    pub key_replaced: bool,
    /// Items addressed to the old key that this person can no longer open
    /// (until a liaison approves the restoration, when one waits).
    pub unreadable_items: Vec<String>,
    /// A liaison of the facility holds the earlier keys and may restore them
    /// once the person has chosen their own password (`keys::custody`).
    pub restoration_requested: bool,
}

impl Directory {
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
        self.validate_new_account(&new).await?;
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
                created_at: self.clock.now_secs(),
            };
            match self.store.insert_account(&account).await {
                Ok(()) => {
                    self.keys
                        .create_account_key(&account, password.expose().as_bytes())
                        .await?;
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

    /// A name, a facility exactly when the role has one (and it is active
    /// today), a well-formed address if any.
    async fn validate_new_account(&self, new: &NewAccount) -> Result<()> {
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
                if !facility.is_active_on(self.clock.today_jst()) {
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
        Ok(())
    }

    pub async fn account(&self, id: &AccountId) -> Result<Account> {
        self.store
            .account(id)
            .await?
            .ok_or(Error::NotFound("account"))
    }

    pub async fn accounts(
        &self,
        facility: Option<&crate::facility::FacilityCode>,
    ) -> Result<Vec<Account>> {
        Ok(self.store.accounts(facility).await?)
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
            self.auth
                .end_sessions_of(id, EndCause::AccountLocked, None)
                .await?;
        }
        self.account(id).await
    }

    /// Issues a new password (credential letter) without the recovery key; see
    /// [`Directory::reset_password_with`].
    pub async fn reset_password(&self, id: &AccountId) -> Result<Password> {
        Ok(self.reset_password_with(id, None).await?.password)
    }

    /// Issues a new password. With the recovery key the person keeps the same key and
    /// every old item; without it they get a new key, and the outcome lists what
    /// they can no longer open.
    pub async fn reset_password_with(
        &self,
        id: &AccountId,
        recovery: Option<&renkei_crypto::SecretKey>,
    ) -> Result<ResetOutcome> {
        let account = self.account(id).await?;
        let issued = password::issue();
        let digest = hash_blocking(issued.clone()).await?;
        let secret = issued.expose().as_bytes();
        let key_replaced = if account.role == Role::Operator {
            self.store.set_password(id, &digest, true).await?;
            false
        } else if let Some(recovery) = recovery {
            let locked = self.keys.relock_with_recovery(id, recovery, secret).await?;
            self.store
                .set_password_and_key(id, &digest, true, &locked)
                .await?;
            false
        } else {
            let (lost, cert) = self.keys.replace_person_key(id, secret).await?;
            // App passwords locked the old key: they open nothing any more.
            self.store.delete_app_passwords_of(id.as_str()).await?;
            self.store.set_password(id, &digest, true).await?;
            self.keys.regrant(&account, &cert).await?;
            let restoration_requested = self.keys.request_restoration(&account).await?;
            self.auth
                .end_sessions_of(id, EndCause::PasswordReset, None)
                .await?;
            return Ok(ResetOutcome {
                password: issued,
                key_replaced: true,
                unreadable_items: lost,
                restoration_requested,
            });
        };
        self.auth
            .end_sessions_of(id, EndCause::PasswordReset, None)
            .await?;
        Ok(ResetOutcome {
            password: issued,
            key_replaced,
            unreadable_items: Vec::new(),
            restoration_requested: false,
        })
    }

    /// Removes a member: every grant goes, the account stays locked for good.
    pub async fn remove_account(&self, id: &AccountId) -> Result<Account> {
        self.account(id).await?;
        self.keys.revoke_grants(id).await?;
        self.store.set_removed(id).await?;
        self.auth
            .end_sessions_of(id, EndCause::AccountRemoved, None)
            .await?;
        self.account(id).await
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
