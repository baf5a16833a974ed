//! Keys that survive people: each person's decryption half (never the signing
//! half) is sealed to the custodian key of their facility, which its liaisons
//! hold through grants like the oversight key. When the operator's password
//! reset has given the person a new key, a liaison of the same facility — who
//! can check the person face to face — approves the restoration: every earlier
//! decryption half is sealed to the person's new key and opens, from their next
//! sign-in, whatever was sealed to it. The person signs with the new key only,
//! so no custodian can sign in their name; the operator holds no custodian key,
//! so cannot restore alone. Without a liaison, the offline recovery key (CLI)
//! remains the way.

use renkei_crypto::{Certificate, SealedKey, SecretKey, seal_secret_key};

use super::{Keys, crypto};
use crate::account::{Account, AccountId, Role};
use crate::error::{Error, Result};
use crate::keys::keyring::{Keyring, role_key};
use crate::records::audit::{Acting, AuditEvent, action};
use crate::store::custody::{CustodyRow, PreviousKeyRow, RestorationRow};

const CUSTODIAN: &str = "custodian";

/// A restoration a custodian may approve, as their page and the API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restoration {
    pub account: AccountId,
    pub name: String,
    pub role: Role,
    /// When the operator's reset asked for it (Unix seconds).
    pub requested_at: i64,
    /// The person has signed in with the issued password and chosen their own.
    pub ready: bool,
    /// Earlier keys held for the person.
    pub keys: usize,
}

fn not_yours() -> Error {
    Error::NotFound("restoration")
}

impl Keys {
    /// At sign-in: the person's current decryption half goes into custody
    /// (once per key and custodian key), and earlier halves given back by a
    /// restoration are opened into the keyring.
    pub(super) async fn custody_at_sign_in(
        &self,
        account: &Account,
        keyring: &mut Keyring,
    ) -> Result<()> {
        if let Some(code) = &account.facility
            && let Some(fk) = self.store.facility_key(code, CUSTODIAN).await?
        {
            let key_id = keyring.user.certificate().key_slot_id().0;
            let held = self.store.custody_keys_of(account.id.as_str()).await?;
            if !held
                .iter()
                .any(|r| r.key_id == key_id && r.custodian_fingerprint == fk.fingerprint)
            {
                let custodian = Certificate::from_bytes(&fk.cert).map_err(crypto)?;
                let sealed = seal_secret_key(
                    &keyring.user.decryption_half().map_err(crypto)?,
                    &[&custodian],
                )
                .map_err(crypto)?;
                self.store
                    .put_custody_key(&CustodyRow {
                        account_id: account.id.as_str().into(),
                        key_id,
                        facility_code: code.to_string(),
                        custodian_fingerprint: fk.fingerprint.clone(),
                        sealed: sealed.to_bytes(),
                        created_at: self.now(),
                    })
                    .await?;
            }
        }
        let me = keyring.user.fingerprint();
        for row in self.store.previous_keys_of(account.id.as_str()).await? {
            if row.sealed_to != me {
                continue; // Sealed to a key this person has since lost.
            }
            match SealedKey::from_bytes(row.sealed).open(&keyring.user) {
                Ok(k) if k.certificate().key_slot_id().0 == row.key_id => keyring.previous.push(k),
                _ => {
                    tracing::warn!(
                        account = account.id.as_str(),
                        "an earlier key does not open"
                    )
                }
            }
        }
        Ok(())
    }

    /// After a reset that replaced the person's key: asks the facility's
    /// custodians to restore the earlier ones, if they hold any. Returns
    /// whether a restoration now waits.
    pub(crate) async fn request_restoration(&self, account: &Account) -> Result<bool> {
        let Some(code) = &account.facility else {
            return Ok(false);
        };
        if self.store.facility_key(code, CUSTODIAN).await?.is_none()
            || self
                .store
                .custody_keys_of(account.id.as_str())
                .await?
                .is_empty()
        {
            return Ok(false);
        }
        self.store
            .request_restoration(&RestorationRow {
                account_id: account.id.as_str().into(),
                facility_code: code.to_string(),
                requested_at: self.now(),
                approved_by: None,
                approved_at: None,
            })
            .await?;
        self.audit
            .note(AuditEvent {
                actor: Some("system".into()),
                facility: Some(code.to_string()),
                action: action::KEY_RESTORE,
                item: Some(account.id.as_str().into()),
                detail: Some("requested".into()),
                ..Default::default()
            })
            .await;
        tracing::info!(account = account.id.as_str(), "key restoration requested");
        Ok(true)
    }

    /// The custodian's own facility and key, or a refusal: only a liaison
    /// who holds the custodian key may see or approve restorations.
    fn custodian_of<'k>(
        &self,
        approver: &Account,
        keyring: &'k Keyring,
    ) -> Result<(String, &'k SecretKey)> {
        match (approver.role, &approver.facility, &keyring.custodian) {
            (Role::Liaison, Some(code), Some(key)) => Ok((code.to_string(), key)),
            _ => Err(Error::Forbidden),
        }
    }

    /// The restorations this custodian may approve: pending ones of their
    /// facility, not their own.
    pub async fn restorations(
        &self,
        approver: &Account,
        keyring: &Keyring,
    ) -> Result<Vec<Restoration>> {
        let (code, _) = self.custodian_of(approver, keyring)?;
        let mut out = Vec::new();
        for row in self.store.pending_restorations(&code).await? {
            let Ok(id) = AccountId::parse(&row.account_id) else {
                continue;
            };
            if id == approver.id {
                continue;
            }
            let Some(person) = self.store.account(&id).await? else {
                continue;
            };
            if person.removed
                || person.facility.as_ref().map(ToString::to_string) != Some(code.clone())
            {
                continue;
            }
            let keys = self.store.custody_keys_of(id.as_str()).await?.len();
            out.push(Restoration {
                account: id,
                name: person.name,
                role: person.role,
                requested_at: row.requested_at,
                ready: !person.must_change_password,
                keys,
            });
        }
        Ok(out)
    }

    /// Approves the restoration of `target`'s earlier keys: each decryption
    /// half this custodian holds for them, other than their current key's, is
    /// sealed to their current certificate. Refused (409) until the person has
    /// chosen their own password after the reset. Returns how many keys.
    pub async fn approve_restoration(
        &self,
        session: &(impl Acting + Sync),
        keyring: &Keyring,
        target: &AccountId,
    ) -> Result<usize> {
        let approver = session.ready_account()?;
        let (code, custodian) = self.custodian_of(approver, keyring)?;
        if *target == approver.id {
            return Err(Error::Forbidden);
        }
        let person = self.store.account(target).await?.ok_or_else(not_yours)?;
        let pending = self
            .store
            .restoration(target.as_str())
            .await?
            .filter(|r| r.approved_at.is_none() && r.facility_code == code);
        if pending.is_none()
            || person.removed
            || person.facility.as_ref().map(ToString::to_string) != Some(code.clone())
        {
            return Err(not_yours());
        }
        if person.must_change_password {
            return Err(Error::Conflict(
                "the person has not yet signed in and chosen their own password".into(),
            ));
        }
        let current =
            self.store.account_key(target).await?.ok_or_else(|| {
                Error::Internal(format!("account {} has no key", target.as_str()))
            })?;
        let cert = Certificate::from_bytes(&current.cert).map_err(crypto)?;
        let rows = self.store.custody_keys_of(target.as_str()).await?;
        let custodian_fpr = custodian.fingerprint();
        let current_id = cert.key_slot_id().0;
        let now = self.now();
        // A handful of small keys: sealed here, not on a blocking thread.
        let mut given = Vec::new();
        for row in rows {
            if row.custodian_fingerprint != custodian_fpr || row.key_id == current_id {
                continue;
            }
            let half = SealedKey::from_bytes(row.sealed)
                .open(custodian)
                .map_err(crypto)?;
            if half.certificate().key_slot_id().0 != row.key_id {
                continue;
            }
            given.push(PreviousKeyRow {
                account_id: target.as_str().into(),
                key_id: row.key_id,
                sealed_to: cert.fingerprint(),
                sealed: seal_secret_key(&half, &[&cert]).map_err(crypto)?.to_bytes(),
                created_at: now,
            });
        }
        if given.is_empty() {
            return Err(Error::Conflict(
                "no earlier key of this person is held by this custodian key".into(),
            ));
        }
        if !self
            .store
            .approve_restoration(target.as_str(), approver.id.as_str(), now, &given)
            .await?
        {
            return Err(not_yours());
        }
        self.audit
            .record(
                AuditEvent::by(session, action::KEY_RESTORE)
                    .item(target.as_str())
                    .detail(format!("approved keys={}", given.len())),
            )
            .await?;
        tracing::info!(
            account = target.as_str(),
            by = approver.id.as_str(),
            keys = given.len(),
            "key restoration approved"
        );
        Ok(given.len())
    }

    /// Whether the facility has a custodian key (some liaison to approve).
    pub async fn has_custodian(&self, code: &crate::facility::FacilityCode) -> Result<bool> {
        Ok(self
            .store
            .facility_key(code, role_key(renkei_crypto::FacilityRole::Custodian))
            .await?
            .is_some())
    }
}
