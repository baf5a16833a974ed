//! Facility keys and their grants: the first member of a role makes the
//! facility key; later members wait for a grant, completed by a member who
//! holds the key (at their next sign-in) or by the operator with the recovery key.
//!
//! The operator completes grants with `renkei admin grants complete
//! --recovery-key`. Removing a member deletes their grants.

use renkei_crypto::{Certificate, FacilityRole, SecretKey, seal_secret_key};

use super::{Keys, blocking, crypto, facility_roles};
use crate::account::{Account, AccountId, Role};
use crate::error::Result;
use crate::facility::FacilityCode;
use crate::keys::keyring::role_key;
use crate::records::audit::{AuditEvent, action};
use crate::store::StoreError;
use crate::store::vault::{FacilityKeyRow, GrantRow};

impl Keys {
    /// Creates the person's key locked under `secret`, sealed to the recovery
    /// certificate, and the person's facility grants.
    pub(crate) async fn create_account_key(&self, account: &Account, secret: &[u8]) -> Result<()> {
        if account.role == Role::Operator {
            return Ok(()); // The operator never holds a key, so never a key slot.
        }
        let (key, row) = self.new_person_key(&account.id, secret).await?;
        self.store.insert_account_key(&row).await?;
        self.create_grants(account, &key.cert()).await
    }

    /// After a new key: the old grants were sealed to the old key, so they go
    /// and the person waits for new ones.
    pub(crate) async fn regrant(&self, account: &Account, member: &Certificate) -> Result<()> {
        self.store.delete_grants_of(&account.id).await?;
        self.create_grants(account, member).await
    }

    /// Every grant of a removed member goes.
    pub(crate) async fn revoke_grants(&self, id: &AccountId) -> Result<()> {
        self.store.delete_grants_of(id).await?;
        Ok(())
    }

    pub async fn pending_grants(&self) -> Result<Vec<GrantRow>> {
        Ok(self.store.pending_grants(None).await?)
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
                created_at: self.now(),
                granted_at: None,
            };
            if self.store.facility_key(&code, role_name).await?.is_some() {
                self.store.insert_grant(&pending).await?;
                continue;
            }
            // The first member of this role: make the facility key, seal it to them
            // (and the recovery certificate), and forget the secret half.
            let (row, sealed) = self.new_facility_key(&code, *role, member).await?;
            match self.store.insert_facility_key(&row).await {
                Ok(()) => {
                    self.store
                        .insert_grant(&GrantRow {
                            sealed_key: Some(sealed),
                            granted_at: Some(self.now()),
                            ..pending
                        })
                        .await?
                }
                // Someone else made it meanwhile: wait for a grant like any later member.
                Err(StoreError::Conflict(_)) => self.store.insert_grant(&pending).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A new facility key: the row to store and its secret half sealed to `member`.
    async fn new_facility_key(
        &self,
        code: &FacilityCode,
        role: FacilityRole,
        member: &Certificate,
    ) -> Result<(FacilityKeyRow, Vec<u8>)> {
        let recovery = self.recovery_certificate().await?;
        let (c, r, m) = (code.to_string(), role, member.clone());
        let created_at = self.now();
        blocking(move || {
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
                    created_at,
                },
                sealed.to_bytes(),
            ))
        })
        .await
    }

    /// Seals a facility key held in memory to every member still waiting for it.
    pub(super) async fn complete_pending_for(
        &self,
        code: &FacilityCode,
        role: FacilityRole,
        key: &SecretKey,
    ) -> Result<u64> {
        let mut done = 0;
        for grant in self.store.pending_grants(Some(code)).await? {
            if grant.role != role_key(role) {
                continue;
            }
            let Ok(member) = AccountId::parse(&grant.account_id) else {
                continue;
            };
            let Some(member_key) = self.store.account_key(&member).await? else {
                continue;
            };
            let cert = Certificate::from_bytes(&member_key.cert).map_err(crypto)?;
            let sealed = seal_secret_key(key, &[&cert]).map_err(crypto)?;
            self.store
                .complete_grant(
                    &grant.facility_code,
                    &grant.role,
                    &grant.account_id,
                    sealed.as_bytes(),
                    self.now(),
                )
                .await?;
            tracing::info!(facility = %code, role = grant.role, member = grant.account_id, "grant completed");
            self.audit
                .note(AuditEvent {
                    actor: Some("system".into()),
                    facility: Some(code.to_string()),
                    action: action::GRANT,
                    item: Some(grant.account_id.clone()),
                    detail: Some(format!("key={}", grant.role)),
                    ..Default::default()
                })
                .await;
            done += 1;
        }
        Ok(done)
    }
}
