//! A reader's own flags on an item, and an item's delivery progress for its sender.

use super::Postroom;
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::keys::Principal;
use crate::records::audit::{AuditEvent, action};
use crate::store::queue::DeliveryStatus;

impl Postroom {
    /// Sets the reader's own flags on an item (its personal entry, else the shared
    /// inbox entry of a liaison).
    pub async fn set_flags(
        &self,
        session: &CurrentSession,
        id: &str,
        seen: Option<bool>,
        flagged: Option<bool>,
        archived: Option<bool>,
    ) -> Result<()> {
        let keyring = self.keyring(session)?;
        for p in keyring.principals() {
            if matches!(p, Principal::Oversight(_)) {
                continue;
            }
            match self
                .store
                .set_flags(id, &p.key(), seen, flagged, archived)
                .await
            {
                Ok(()) => {
                    let flag = |name: &str, v: Option<bool>| v.map(|v| format!("{name}={v} "));
                    let detail: String = [
                        flag("seen", seen),
                        flag("flagged", flagged),
                        flag("archived", archived),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    self.audit
                        .note(
                            AuditEvent::by(session, action::FLAGS)
                                .item(id)
                                .detail(detail.trim_end()),
                        )
                        .await;
                    return Ok(());
                }
                Err(crate::store::StoreError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::NotFound("item"))
    }

    /// Delivery progress of an item, for its sender.
    pub async fn delivery_status(
        &self,
        session: &CurrentSession,
        id: &str,
    ) -> Result<Option<DeliveryStatus>> {
        let account = session.require_ready()?;
        match self.store.envelope(id).await? {
            Some(e) if e.sender_id == account.id.as_str() => {
                Ok(self.store.delivery_status(id).await?)
            }
            _ => Ok(None),
        }
    }
}
