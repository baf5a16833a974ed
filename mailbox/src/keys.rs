//! Key lifecycle on the directory: a key per person at account creation, facility
//! keys and their grants, unlocking at sign-in, re-locking on password change, and
//! the offline recovery key.

use std::sync::Arc;

use renkei_crypto::{Certificate, FacilityRole, LockedKey, SealedKey, SecretKey, seal_secret_key};

use crate::account::{Account, AccountId, Role};
use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::keyring::{Keyring, parse_role, role_key};
use crate::password::Password;
use crate::store::StoreError;
use crate::store::vault::{AccountKeyRow, FacilityKeyRow, GrantRow};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn crypto(e: renkei_crypto::CryptoError) -> Error {
    Error::Internal(format!("crypto: {e}"))
}

/// Runs CPU-heavy crypto (key generation, Argon2) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("crypto task: {e}")))?
}

/// Which facility keys a role holds.
pub fn facility_roles(role: Role) -> &'static [FacilityRole] {
    match role {
        Role::Clerk => &[FacilityRole::Oversight],
        Role::Liaison => &[FacilityRole::Oversight, FacilityRole::LiaisonInbox],
        Role::Doctor | Role::Operator => &[],
    }
}

/// What a password reset did to the person's key.
#[derive(Debug)]
pub struct ResetOutcome {
    pub password: Password,
    /// False with the recovery key (same key, every old item still opens).
    pub key_replaced: bool,
    /// Items addressed to the old key that this person can no longer open.
    pub unreadable_items: Vec<String>,
}

impl Directory {
    pub(crate) async fn recovery_certificate(&self) -> Result<Option<Certificate>> {
        match self.store().recovery_cert().await? {
            Some(bytes) => Ok(Some(Certificate::from_bytes(&bytes).map_err(crypto)?)),
            None => Ok(None),
        }
    }

    /// Makes the network's recovery key: its certificate is stored, the secret half
    /// is returned for the operator to keep offline. Refused if one exists.
    pub async fn init_recovery(&self) -> Result<SecretKey> {
        if self.store().recovery_cert().await?.is_some() {
            return Err(Error::Conflict(
                "the recovery key already exists; keep using its file".into(),
            ));
        }
        let key = blocking(|| SecretKey::generate_recovery().map_err(crypto)).await?;
        let cert = key.cert().to_bytes().map_err(crypto)?;
        match self.store().insert_recovery_cert(&cert).await {
            Err(StoreError::Conflict(_)) => {
                Err(Error::Conflict("the recovery key already exists".into()))
            }
            other => other.map(|()| key).map_err(Error::from),
        }
    }

    /// Generates a person's key, locked under `password` and sealed to the recovery
    /// certificate if there is one; returns it with the row to store.
    async fn new_person_key(
        &self,
        id: &AccountId,
        password: &Password,
    ) -> Result<(SecretKey, AccountKeyRow)> {
        let recovery = self.recovery_certificate().await?;
        let user_id = format!("{} <account:{}>", id.as_str(), id.as_str());
        let account_id = id.as_str().to_string();
        let params = self.auth_policy().key_lock;
        let pw = password.clone();
        blocking(move || {
            let key = SecretKey::generate(&user_id).map_err(crypto)?;
            let locked = key
                .lock_with(pw.expose().as_bytes(), params)
                .map_err(crypto)?;
            let recovery_sealed = match &recovery {
                Some(r) => Some(seal_secret_key(&key, &[r]).map_err(crypto)?.to_bytes()),
                None => None,
            };
            let cert = key.cert();
            let row = AccountKeyRow {
                account_id,
                fingerprint: cert.fingerprint(),
                cert: cert.to_bytes().map_err(crypto)?,
                locked_key: locked.to_bytes(),
                recovery_sealed,
                created_at: now(),
            };
            Ok((key, row))
        })
        .await
    }

    /// Creates the person's key locked under `password`, sealed to the recovery
    /// certificate, and the person's facility grants.
    pub(crate) async fn create_account_key(
        &self,
        account: &Account,
        password: &Password,
    ) -> Result<()> {
        if account.role == Role::Operator {
            return Ok(()); // The operator never holds a key, so never a key slot.
        }
        let (key, row) = self.new_person_key(&account.id, password).await?;
        self.store().insert_account_key(&row).await?;
        self.create_grants(account, &key.cert()).await
    }

    /// Grants the facility keys of the person's role: completed at once when this
    /// creates the facility key, pending otherwise.
    async fn create_grants(&self, account: &Account, member: &Certificate) -> Result<()> {
        let Some(code) = account.facility.clone() else {
            return Ok(());
        };
        for role in facility_roles(account.role) {
            let role_name = role_key(*role);
            let pending = GrantRow {
                facility_code: code.to_string(),
                role: role_name.into(),
                account_id: account.id.as_str().into(),
                sealed_key: None,
                created_at: now(),
                granted_at: None,
            };
            if self.store().facility_key(&code, role_name).await?.is_some() {
                self.store().insert_grant(&pending).await?;
                continue;
            }
            // The first member of this role: make the facility key, seal it to them
            // (and the recovery certificate), and forget the secret half.
            let recovery = self.recovery_certificate().await?;
            let (c, r, m) = (code.to_string(), *role, member.clone());
            let (row, sealed) = blocking(move || {
                let key = SecretKey::generate_facility(&c, r).map_err(crypto)?;
                let cert = key.cert();
                let sealed = seal_secret_key(&key, &[&m]).map_err(crypto)?;
                let recovery_sealed = match &recovery {
                    Some(rc) => Some(seal_secret_key(&key, &[rc]).map_err(crypto)?.to_bytes()),
                    None => None,
                };
                Ok((
                    FacilityKeyRow {
                        facility_code: c,
                        role: role_key(r).into(),
                        fingerprint: cert.fingerprint(),
                        cert: cert.to_bytes().map_err(crypto)?,
                        recovery_sealed,
                        created_at: now(),
                    },
                    sealed,
                ))
            })
            .await?;
            match self.store().insert_facility_key(&row).await {
                Ok(()) => {
                    self.store()
                        .insert_grant(&GrantRow {
                            sealed_key: Some(sealed.to_bytes()),
                            granted_at: Some(now()),
                            ..pending
                        })
                        .await?
                }
                // Someone else made it meanwhile: wait for a grant like any later member.
                Err(StoreError::Conflict(_)) => self.store().insert_grant(&pending).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Unlocks the person's keys with the password just verified, completes the
    /// grants this person can complete, and returns the session's keyring.
    pub(crate) async fn unlock_keyring(
        &self,
        account: &Account,
        password: &Password,
    ) -> Result<Option<Keyring>> {
        if account.role == Role::Operator {
            return Ok(None);
        }
        let Some(row) = self.store().account_key(&account.id).await? else {
            return Err(Error::Internal(format!(
                "account {} has no key",
                account.id.as_str()
            )));
        };
        let pw = password.clone();
        let locked = LockedKey::from_bytes(row.locked_key.clone());
        let user = blocking(move || locked.unlock(pw.expose().as_bytes()).map_err(crypto)).await?;
        Ok(Some(self.keyring_from(account, user).await?))
    }

    /// The session's keyring around the person's unlocked key: their facility
    /// keys opened from their grants, pending grants completed on the way.
    pub(crate) async fn keyring_from(&self, account: &Account, user: SecretKey) -> Result<Keyring> {
        let Some(row) = self.store().account_key(&account.id).await? else {
            return Err(Error::Internal(format!(
                "account {} has no key",
                account.id.as_str()
            )));
        };
        let recovery = self.recovery_certificate().await?;
        if row.recovery_sealed.is_none()
            && let Some(rc) = &recovery
        {
            // Accounts made before the recovery key existed get sealed on first use.
            let sealed = seal_secret_key(&user, &[rc]).map_err(crypto)?;
            self.store()
                .set_account_recovery_sealed(&account.id, sealed.as_bytes())
                .await?;
        }
        let mut keyring = Keyring {
            account: account.id.clone(),
            facility: account.facility.clone(),
            user,
            liaison_inbox: None,
            oversight: None,
            recent: Default::default(),
        };
        for grant in self.store().grants_of(&account.id).await? {
            let (Some(sealed), Some(role)) = (grant.sealed_key.as_ref(), parse_role(&grant.role))
            else {
                continue;
            };
            let key = match SealedKey::from_bytes(sealed.clone()).open(&keyring.user) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(account = account.id.as_str(), role = grant.role, error = %e, "a grant does not open");
                    continue;
                }
            };
            if let Some(code) = &account.facility {
                self.complete_pending_for(code, role, &key).await?;
                if let Some(rc) = &recovery
                    && let Some(fk) = self.store().facility_key(code, role_key(role)).await?
                    && fk.recovery_sealed.is_none()
                {
                    let sealed = seal_secret_key(&key, &[rc]).map_err(crypto)?;
                    self.store()
                        .set_facility_recovery_sealed(code, role_key(role), sealed.as_bytes())
                        .await?;
                }
            }
            match role {
                FacilityRole::LiaisonInbox => keyring.liaison_inbox = Some(key),
                FacilityRole::Oversight => keyring.oversight = Some(key),
            }
        }
        Ok(keyring)
    }

    /// Seals a facility key held in memory to every member still waiting for it.
    async fn complete_pending_for(
        &self,
        code: &FacilityCode,
        role: FacilityRole,
        key: &SecretKey,
    ) -> Result<u64> {
        let mut done = 0;
        for grant in self.store().pending_grants(Some(code)).await? {
            if grant.role != role_key(role) {
                continue;
            }
            let Ok(member) = AccountId::parse(&grant.account_id) else {
                continue;
            };
            let Some(member_key) = self.store().account_key(&member).await? else {
                continue;
            };
            let cert = Certificate::from_bytes(&member_key.cert).map_err(crypto)?;
            let sealed = seal_secret_key(key, &[&cert]).map_err(crypto)?;
            self.store()
                .complete_grant(
                    &grant.facility_code,
                    &grant.role,
                    &grant.account_id,
                    sealed.as_bytes(),
                    now(),
                )
                .await?;
            tracing::info!(facility = %code, role = grant.role, member = grant.account_id, "grant completed");
            self.audit()
                .note(crate::records::audit::AuditEvent {
                    actor: Some("system".into()),
                    facility: Some(code.to_string()),
                    action: crate::records::audit::action::GRANT,
                    item: Some(grant.account_id.clone()),
                    detail: Some(format!("key={}", grant.role)),
                    ..Default::default()
                })
                .await;
            done += 1;
        }
        Ok(done)
    }

    /// The operator's way to complete pending grants: with the offline recovery key.
    pub async fn complete_grants_with_recovery(&self, recovery: &SecretKey) -> Result<u64> {
        let mut done = 0;
        let pending = self.store().pending_grants(None).await?;
        let mut seen = std::collections::HashSet::new();
        for grant in pending {
            if !seen.insert((grant.facility_code.clone(), grant.role.clone())) {
                continue;
            }
            let (Ok(code), Some(role)) = (
                FacilityCode::parse(&grant.facility_code),
                parse_role(&grant.role),
            ) else {
                continue;
            };
            let Some(fk) = self.store().facility_key(&code, &grant.role).await? else {
                continue;
            };
            let Some(sealed) = fk.recovery_sealed else {
                return Err(Error::Conflict(format!(
                    "the {} key of facility {code} was made before the recovery key; a member must sign in once",
                    grant.role
                )));
            };
            let key = SealedKey::from_bytes(sealed).open(recovery).map_err(|_| {
                Error::invalid(
                    "recovery_key",
                    "this recovery key file does not belong to this network",
                    "この復旧鍵ファイルはこのネットワークのものではありません。",
                )
            })?;
            done += self.complete_pending_for(&code, role, &key).await?;
        }
        Ok(done)
    }

    pub async fn pending_grants(&self) -> Result<Vec<GrantRow>> {
        Ok(self.store().pending_grants(None).await?)
    }

    /// Re-locks the same key under the new password (no message is touched).
    pub(crate) async fn relock(&self, keyring: &Arc<Keyring>, new: &Password) -> Result<Vec<u8>> {
        let params = self.auth_policy().key_lock;
        let k = keyring.clone();
        let pw = new.clone();
        blocking(move || {
            Ok(k.user
                .lock_with(pw.expose().as_bytes(), params)
                .map_err(crypto)?
                .to_bytes())
        })
        .await
    }

    /// Issues a new password. With the recovery key the person keeps the same key and
    /// every old item; without it they get a new key, and the outcome lists what
    /// they can no longer open.
    pub async fn reset_password_with(
        &self,
        id: &AccountId,
        recovery: Option<&SecretKey>,
    ) -> Result<ResetOutcome> {
        let account = self.account(id).await?;
        let issued = crate::password::issue();
        let digest = crate::directory::hash_blocking(issued.clone()).await?;
        if account.role == Role::Operator {
            self.store().set_password(id, &digest, true).await?;
            self.end_sessions_of(id).await?;
            return Ok(ResetOutcome {
                password: issued,
                key_replaced: false,
                unreadable_items: Vec::new(),
            });
        }
        let row = self
            .store()
            .account_key(id)
            .await?
            .ok_or_else(|| Error::Internal(format!("account {} has no key", id.as_str())))?;
        let params = self.auth_policy().key_lock;
        let outcome = if let Some(recovery) = recovery {
            let sealed = row.recovery_sealed.clone().ok_or_else(|| {
                Error::Conflict(
                    "this account's key is not sealed to the recovery key yet (the person has not signed in since it was made)"
                        .into(),
                )
            })?;
            let key = SealedKey::from_bytes(sealed).open(recovery).map_err(|_| {
                Error::invalid(
                    "recovery_key",
                    "this recovery key file does not belong to this network",
                    "この復旧鍵ファイルはこのネットワークのものではありません。",
                )
            })?;
            let locked = key
                .lock_with(issued.expose().as_bytes(), params)
                .map_err(crypto)?;
            self.store()
                .set_password_and_key(id, &digest, true, locked.as_bytes())
                .await?;
            ResetOutcome {
                password: issued,
                key_replaced: false,
                unreadable_items: Vec::new(),
            }
        } else {
            let lost: Vec<String> = self
                .store()
                .envelopes_for(&crate::keyring::Principal::Account(id.clone()).key())
                .await?
                .into_iter()
                .map(|e| e.id)
                .collect();
            let (key, new_row) = self.new_person_key(id, &issued).await?;
            self.store().replace_account_key(&new_row).await?;
            // App passwords locked the old key: they open nothing any more.
            self.store().delete_app_passwords_of(id.as_str()).await?;
            self.store().set_password(id, &digest, true).await?;
            // Old grants were sealed to the old key: wait for new ones.
            self.store().delete_grants_of(id).await?;
            self.create_grants(&account, &key.cert()).await?;
            ResetOutcome {
                password: issued,
                key_replaced: true,
                unreadable_items: lost,
            }
        };
        self.end_sessions_of(id).await?;
        Ok(outcome)
    }

    /// Removes a member: every grant goes, the account stays locked for good.
    pub async fn remove_account(&self, id: &AccountId) -> Result<Account> {
        self.account(id).await?;
        self.store().delete_grants_of(id).await?;
        self.store().set_removed(id).await?;
        self.end_sessions_of(id).await?;
        self.account(id).await
    }
}
