//! Oversight for a facility's history: items sealed for a doctor before their
//! facility had a clerk or liaison (so before its oversight key existed) gain
//! an oversight key slot the next time that doctor signs in, made with the
//! doctor's own key, so the clerks see every item of their facility.
//!
//! The slot carries `added_by` (the doctor), like a forward's: the item's
//! signed place names the slots its sender made, and this is not one of them,
//! so the signature check is unchanged. Nothing is re-encrypted.

use renkei_crypto::{Certificate, SealedEnvelope, add_key_slot};

use super::{Keys, crypto};
use crate::account::{Account, Role};
use crate::error::Result;
use crate::keys::keyring::{Keyring, Principal};
use crate::records::audit::{AuditEvent, action};
use crate::store::vault::SlotRow;

/// At most this many items per sign-in; the rest at the next one.
const BATCH: i64 = 5_000;

impl Keys {
    /// Adds the facility's oversight slot to the doctor's items that lack it;
    /// returns how many gained one.
    pub(super) async fn oversight_for_history(
        &self,
        account: &Account,
        keyring: &Keyring,
    ) -> Result<u64> {
        let (Role::Doctor, Some(code)) = (account.role, &account.facility) else {
            return Ok(0);
        };
        let Some(fk) = self.store.facility_key(code, "oversight").await? else {
            return Ok(0);
        };
        let oversight = Certificate::from_bytes(&fk.cert).map_err(crypto)?;
        let me = Principal::Account(account.id.clone());
        let slot_principal = Principal::Oversight(code.clone()).key();
        let ids = self
            .store
            .envelopes_missing_slot(&me.key(), &slot_principal, BATCH)
            .await?;
        let mut done = 0;
        for id in ids {
            let Some(row) = self.store.envelope(&id).await? else {
                continue;
            };
            let len = i64::try_from(row.body.len()).unwrap_or(i64::MAX);
            let envelope = SealedEnvelope::from_bytes(row.body);
            let Some(key) = keyring.opener_for(&me, &envelope) else {
                continue;
            };
            // An item sealed to a key this person lost is not theirs to share.
            let slots = renkei_crypto::key_slots(&envelope).unwrap_or_default();
            if !slots.contains(&key.certificate().key_slot_id()) {
                continue;
            }
            let added = match add_key_slot(&envelope, key, &oversight) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(envelope = id, error = %e, "history slot not added");
                    continue;
                }
            };
            let slot = SlotRow {
                envelope_id: id,
                principal: slot_principal.clone(),
                added_by: Some(account.id.as_str().into()),
                added_at: self.now(),
            };
            if self
                .store
                .add_slot_if_unchanged(len, added.as_bytes(), &slot)
                .await?
            {
                done += 1;
            }
        }
        if done > 0 {
            tracing::info!(
                account = account.id.as_str(),
                items = done,
                "oversight slots added to history"
            );
            self.audit
                .note(AuditEvent {
                    actor: Some(account.id.as_str().into()),
                    role: Some(account.role.as_str().into()),
                    facility: Some(code.to_string()),
                    action: action::OVERSIGHT_HISTORY,
                    item: Some(account.id.as_str().into()),
                    detail: Some(format!("items={done}")),
                    ..Default::default()
                })
                .await;
        }
        Ok(done)
    }

    /// The sign-in hook of custody and history; a failure here is logged and
    /// never keeps the person from signing in.
    pub(super) async fn after_unlock(&self, account: &Account, keyring: &mut Keyring) {
        if let Err(e) = self.custody_at_sign_in(account, keyring).await {
            tracing::error!(account = account.id.as_str(), error = %e, "key custody at sign-in failed");
        }
        if let Err(e) = self.oversight_for_history(account, keyring).await {
            tracing::error!(account = account.id.as_str(), error = %e, "oversight history at sign-in failed");
        }
    }
}
