//! A reader's own flags on an item, and an item's delivery progress for its sender.

use super::Postroom;
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::keys::Principal;
use crate::records::audit::{AuditEvent, action};
use crate::store::queue::DeliveryStatus;

/// How far an item's delivery got, as its sender sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryProgress {
    /// `pending`, `done` or `failed`.
    pub state: String,
    pub attempts: i64,
    /// Why the last attempt failed (for a failed item: why it was not delivered).
    pub last_error: Option<String>,
    /// Unix milliseconds, once delivered.
    pub delivered_at: Option<i64>,
}

impl From<DeliveryStatus> for DeliveryProgress {
    fn from(d: DeliveryStatus) -> Self {
        Self {
            state: d.state,
            attempts: d.attempts,
            last_error: d.last_error,
            delivered_at: d.delivered_at,
        }
    }
}

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
    ) -> Result<Option<DeliveryProgress>> {
        let account = session.require_ready()?;
        match self.store.envelope(id).await? {
            Some(e) if e.sender_id == account.id.as_str() => {
                Ok(self.store.delivery_status(id).await?.map(Into::into))
            }
            _ => Ok(None),
        }
    }
}
