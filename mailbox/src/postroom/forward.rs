//! Handing an item on: a new key slot made with the holder's own key, nothing
//! re-encrypted.
//!
//! The key that forwards is the one that opens the item for the forwarder: a
//! liaison's shared-inbox key, or a doctor's or liaison's own key for their own
//! items (the role table of the design) — never the oversight key.
//! `forwarding_principal` decides and writes nothing.

use renkei_crypto::{Certificate, SealedEnvelope};

use super::{Postroom, crypto};
use crate::account::{AccountId, Role};
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::keys::{Keyring, Principal};
use crate::records::audit::{AuditEvent, action};
use crate::store::queue::MailboxEntryRow;
use crate::store::vault::SlotRow;

impl Postroom {
    /// Gives `to` a key slot on an envelope this session can open (a pathway handed
    /// to the next facility). Nothing is re-encrypted; an existing slot is kept.
    pub(crate) async fn extend_access(
        &self,
        keyring: &Keyring,
        id: &str,
        to: &Principal,
        cert: &Certificate,
        added_by: &AccountId,
    ) -> Result<()> {
        let slots = self.store.envelope_slots(id).await?;
        if slots.iter().any(|s| s.principal == to.key()) {
            return Ok(());
        }
        let principal = self.reader_principal(keyring, id).await?;
        let row = self
            .store
            .envelope(id)
            .await?
            .ok_or(Error::NotFound("item"))?;
        let envelope = SealedEnvelope::from_bytes(row.body);
        let key = keyring
            .opener_for(&principal, &envelope)
            .ok_or(Error::NotFound("item"))?;
        let new = renkei_crypto::add_key_slot(&envelope, key, cert).map_err(crypto)?;
        self.store
            .add_slot(
                id,
                new.as_bytes(),
                &SlotRow {
                    envelope_id: id.into(),
                    principal: to.key(),
                    added_by: Some(added_by.as_str().into()),
                    added_at: self.clock.now_secs(),
                },
            )
            .await?;
        Ok(())
    }

    /// Whether this session may hand item `id` on to `to`, and the principal whose
    /// key opens it for that. Forwarding stays inside the forwarder's facility and
    /// goes to a doctor: a liaison office forwards what its shared inbox holds, a
    /// doctor or liaison what was sent by or to them (or forwarded to them) —
    /// never through the oversight key, since colleagues' items are read-only.
    /// Writes nothing: [`Postroom::forward`] and the thread's forward check every
    /// envelope first.
    pub(crate) async fn forwarding_principal(
        &self,
        session: &CurrentSession,
        id: &str,
        to: &AccountId,
    ) -> Result<Principal> {
        crate::roles::require(session.require_ready()?, crate::roles::Action::Forward)?;
        let keyring = self.keyring(session)?;
        let account = session.require_ready()?;
        let (Role::Doctor | Role::Liaison, Some(code)) = (account.role, account.facility.as_ref())
        else {
            return Err(Error::Forbidden);
        };
        let slots = self.store.envelope_slots(id).await?;
        let holds = |p: &Principal| slots.iter().any(|s| s.principal == p.key());
        let Some(principal) = keyring
            .principals()
            .into_iter()
            .filter(|p| !matches!(p, Principal::Oversight(_)))
            .find(&holds)
        else {
            // Readable only through the oversight key: seen, but not theirs to hand on.
            return Err(if keyring.principals().iter().any(holds) {
                Error::Forbidden
            } else {
                Error::NotFound("item")
            });
        };
        let target = self
            .directory
            .account(to)
            .await
            .map_err(|_| Error::NotFound("recipient"))?;
        if target.facility.as_ref() != Some(code) || target.removed || target.role != Role::Doctor {
            return Err(Error::invalid(
                "to",
                "items can be handed only to a doctor of the same facility",
                "転送先は自施設の医師のみです。",
            ));
        }
        if target.id == account.id {
            return Err(Error::invalid(
                "to",
                "forward to a colleague, not to yourself",
                "転送先にご自身は指定できません。",
            ));
        }
        Ok(principal)
    }

    /// Hands an item on inside the facility (see [`Postroom::forwarding_principal`]
    /// for who may): the doctor gets a key slot, made with the forwarder's own key
    /// (or the shared inbox's), and the item in their Inbox; nothing is re-encrypted.
    pub async fn forward(&self, session: &CurrentSession, id: &str, to: &AccountId) -> Result<()> {
        self.directory.require_proved_recently(session)?;
        let principal = self.forwarding_principal(session, id, to).await?;
        let keyring = self.keyring(session)?;
        let account = session.require_ready()?;
        let cert = self.account_cert(to).await?;
        let row = self
            .store
            .envelope(id)
            .await?
            .ok_or(Error::NotFound("item"))?;
        let envelope = SealedEnvelope::from_bytes(row.body);
        let key = keyring
            .opener_for(&principal, &envelope)
            .ok_or(Error::NotFound("item"))?;
        let new = renkei_crypto::add_key_slot(&envelope, key, &cert).map_err(crypto)?;
        let slot = SlotRow {
            envelope_id: id.into(),
            principal: Principal::Account(to.clone()).key(),
            added_by: Some(account.id.as_str().into()),
            added_at: self.clock.now_secs(),
        };
        // The doctor finds it in their Inbox right away (an existing entry is kept).
        let entry = MailboxEntryRow {
            envelope_id: id.into(),
            principal: Principal::Account(to.clone()).key(),
            folder: "inbox".into(),
            seen: false,
            flagged: false,
            archived: false,
            delivered_at: self.clock.now_millis(),
        };
        let audit = AuditEvent::by(session, action::FORWARD)
            .item(id)
            .detail(format!("to={}", to.as_str()))
            .row(crate::clock::now_millis());
        self.store
            .forward_envelope(id, new.as_bytes(), &slot, &entry, &audit)
            .await?;
        tracing::info!(
            envelope = id,
            by = account.id.as_str(),
            to = to.as_str(),
            "key slot added"
        );
        Ok(())
    }
}
