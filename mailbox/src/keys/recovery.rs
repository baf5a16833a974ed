//! The network's offline recovery key: made once, its certificate stored; every
//! person's and facility's key is sealed to it, so the operator can complete
//! grants and reset a password without losing what the person could read.

use renkei_crypto::{Certificate, SealedKey, SecretKey};

use super::{Keys, blocking, crypto, secret_copy};
use crate::account::AccountId;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::keys::keyring::parse_role;
use crate::store::StoreError;

fn not_this_network() -> Error {
    Error::invalid(
        "recovery_key",
        "this recovery key file does not belong to this network",
        "この復旧鍵ファイルはこのネットワークのものではありません。",
    )
}

impl Keys {
    /// The network recovery key's certificate, once `recovery init` made it
    /// (the operator console and `serve` warn while there is none; backups seal
    /// their keys to it).
    pub async fn recovery_certificate(&self) -> Result<Option<Certificate>> {
        match self.store.recovery_cert().await? {
            Some(bytes) => Ok(Some(Certificate::from_bytes(&bytes).map_err(crypto)?)),
            None => Ok(None),
        }
    }

    /// Makes the network's recovery key: its certificate is stored, the secret half
    /// is returned for the operator to keep offline. Refused if one exists.
    pub async fn init_recovery(&self) -> Result<SecretKey> {
        self.init_recovery_with(|_| Ok(())).await
    }

    /// Makes the network's recovery key and hands it to `keep` (which writes
    /// its offline files, never in clear) before the certificate is stored: if
    /// `keep` fails, the network has no recovery key rather than a lost one.
    pub async fn init_recovery_with(
        &self,
        keep: impl FnOnce(&SecretKey) -> Result<()>,
    ) -> Result<SecretKey> {
        if self.store.recovery_cert().await?.is_some() {
            return Err(Error::Conflict(
                "the recovery key already exists; keep using its file".into(),
            ));
        }
        let key = blocking(|| SecretKey::generate_recovery().map_err(crypto)).await?;
        keep(&key)?;
        let cert = key.cert().to_bytes().map_err(crypto)?;
        match self.store.insert_recovery_cert(&cert).await {
            Err(StoreError::Conflict(_)) => {
                Err(Error::Conflict("the recovery key already exists".into()))
            }
            other => other.map(|()| key).map_err(Error::from),
        }
    }

    /// The operator's way to complete pending grants: with the offline recovery key.
    pub async fn complete_grants_with_recovery(&self, recovery: &SecretKey) -> Result<u64> {
        let mut done = 0;
        let pending = self.store.pending_grants(None).await?;
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
            let Some(fk) = self.store.facility_key(&code, &grant.role).await? else {
                continue;
            };
            let Some(sealed) = fk.recovery_sealed else {
                return Err(Error::Conflict(format!(
                    "the {} key of facility {code} was made before the recovery key; a member must sign in once",
                    grant.role
                )));
            };
            let key = SealedKey::from_bytes(sealed)
                .open(recovery)
                .map_err(|_| not_this_network())?;
            done += self.complete_pending_for(&code, role, &key).await?;
        }
        Ok(done)
    }

    /// A password reset with the recovery key: the person's same key, opened
    /// with the recovery key and locked under the new `secret` (bytes to store).
    pub(crate) async fn relock_with_recovery(
        &self,
        id: &AccountId,
        recovery: &SecretKey,
        secret: &[u8],
    ) -> Result<Vec<u8>> {
        let row = self
            .store
            .account_key(id)
            .await?
            .ok_or_else(|| Error::Internal(format!("account {} has no key", id.as_str())))?;
        let sealed = row.recovery_sealed.ok_or_else(|| {
            Error::Conflict(
                "this account's key is not sealed to the recovery key yet (the person has not signed in since it was made)"
                    .into(),
            )
        })?;
        let key = SealedKey::from_bytes(sealed)
            .open(recovery)
            .map_err(|_| not_this_network())?;
        let secret = secret_copy(secret);
        let locked = key.lock_with(&secret, self.lock).map_err(crypto)?;
        Ok(locked.to_bytes())
    }
}
