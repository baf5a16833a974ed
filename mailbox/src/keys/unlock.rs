//! A person's key: made locked under their password, unlocked at sign-in into
//! the session's keyring, re-locked when the password changes or is reset.
//!
//! The lock is Argon2id S2K (cost in `AuthPolicy::key_lock`); every key is also
//! sealed to the recovery certificate, so a password reset with the recovery
//! key keeps what the person could read, and one without it makes a new key.

use std::sync::Arc;

use renkei_crypto::{Certificate, FacilityRole, LockedKey, SealedKey, SecretKey, seal_secret_key};

use super::{Keys, blocking, crypto, secret_copy};
use crate::account::{Account, AccountId, Role};
use crate::error::{Error, Result};
use crate::keys::keyring::{Keyring, Principal, parse_role, role_key};
use crate::store::vault::AccountKeyRow;

fn no_key(id: &AccountId) -> Error {
    Error::Internal(format!("account {} has no key", id.as_str()))
}

impl Keys {
    /// Generates a person's key, locked under `secret` and sealed to the recovery
    /// certificate if there is one; returns it with the row to store.
    pub(super) async fn new_person_key(
        &self,
        id: &AccountId,
        secret: &[u8],
    ) -> Result<(SecretKey, AccountKeyRow)> {
        let recovery = self.recovery_certificate().await?;
        let user_id = format!("{} <account:{}>", id.as_str(), id.as_str());
        let account_id = id.as_str().to_string();
        let params = self.lock;
        let secret = secret_copy(secret);
        let created_at = self.now();
        blocking(move || {
            let key = SecretKey::generate(&user_id).map_err(crypto)?;
            let locked = key.lock_with(&secret, params).map_err(crypto)?;
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
                created_at,
            };
            Ok((key, row))
        })
        .await
    }

    /// Unlocks the person's keys with the password just verified, completes the
    /// grants this person can complete, and returns the session's keyring
    /// (`None` for the operator, who holds no key).
    pub(crate) async fn unlock_keyring(
        &self,
        account: &Account,
        secret: &[u8],
    ) -> Result<Option<Keyring>> {
        if account.role == Role::Operator {
            return Ok(None);
        }
        let Some(row) = self.store.account_key(&account.id).await? else {
            return Err(no_key(&account.id));
        };
        let user = self.unlock_locked(row.locked_key, secret).await?;
        Ok(Some(self.keyring_from(account, user).await?))
    }

    /// Opens a locked copy of a person's key (their own, or an app password's).
    pub(crate) async fn unlock_locked(&self, locked: Vec<u8>, secret: &[u8]) -> Result<SecretKey> {
        let locked = LockedKey::from_bytes(locked);
        let secret = secret_copy(secret);
        blocking(move || locked.unlock(&secret).map_err(crypto)).await
    }

    /// The session's keyring around the person's unlocked key: their facility
    /// keys opened from their grants, pending grants completed on the way.
    pub(crate) async fn keyring_from(&self, account: &Account, user: SecretKey) -> Result<Keyring> {
        let Some(row) = self.store.account_key(&account.id).await? else {
            return Err(no_key(&account.id));
        };
        let recovery = self.recovery_certificate().await?;
        if row.recovery_sealed.is_none()
            && let Some(rc) = &recovery
        {
            // Accounts made before the recovery key existed get sealed on first use.
            let sealed = seal_secret_key(&user, &[rc]).map_err(crypto)?;
            self.store
                .set_account_recovery_sealed(&account.id, sealed.as_bytes())
                .await?;
        }
        let mut keyring = Keyring {
            account: account.id.clone(),
            facility: account.facility.clone(),
            user,
            liaison_inbox: None,
            oversight: None,
            custodian: None,
            previous: Vec::new(),
            recent: Default::default(),
        };
        for grant in self.store.grants_of(&account.id).await? {
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
            self.share_opened_key(account, role, &key, recovery.as_ref())
                .await?;
            match role {
                FacilityRole::LiaisonInbox => keyring.liaison_inbox = Some(key),
                FacilityRole::Oversight => keyring.oversight = Some(key),
                FacilityRole::Custodian => keyring.custodian = Some(key),
            }
        }
        self.after_unlock(account, &mut keyring).await;
        Ok(keyring)
    }

    /// With a facility key open in memory: completes the grants waiting for it,
    /// and seals it to the recovery key if it was made before that existed.
    async fn share_opened_key(
        &self,
        account: &Account,
        role: FacilityRole,
        key: &SecretKey,
        recovery: Option<&Certificate>,
    ) -> Result<()> {
        let Some(code) = &account.facility else {
            return Ok(());
        };
        self.complete_pending_for(code, role, key).await?;
        if let Some(rc) = recovery
            && let Some(fk) = self.store.facility_key(code, role_key(role)).await?
            && fk.recovery_sealed.is_none()
        {
            let sealed = seal_secret_key(key, &[rc]).map_err(crypto)?;
            self.store
                .set_facility_recovery_sealed(code, role_key(role), sealed.as_bytes())
                .await?;
        }
        Ok(())
    }

    /// Re-locks the same key under the new secret (no message is touched).
    pub(crate) async fn relock(&self, keyring: &Arc<Keyring>, secret: &[u8]) -> Result<Vec<u8>> {
        let params = self.lock;
        let k = keyring.clone();
        let secret = secret_copy(secret);
        blocking(move || {
            Ok(k.user
                .lock_with(&secret, params)
                .map_err(crypto)?
                .to_bytes())
        })
        .await
    }

    /// A password reset without the recovery key: the person gets a new key
    /// locked under `secret`. Returns the items addressed to the old key, which
    /// they can no longer open, and the new key's certificate for new grants.
    pub(crate) async fn replace_person_key(
        &self,
        id: &AccountId,
        secret: &[u8],
    ) -> Result<(Vec<String>, Certificate)> {
        if self.store.account_key(id).await?.is_none() {
            return Err(no_key(id));
        }
        let lost: Vec<String> = self
            .store
            .envelopes_for(&Principal::Account(id.clone()).key())
            .await?
            .into_iter()
            .map(|e| e.id)
            .collect();
        let (key, new_row) = self.new_person_key(id, secret).await?;
        self.store.replace_account_key(&new_row).await?;
        Ok((lost, key.cert()))
    }
}
