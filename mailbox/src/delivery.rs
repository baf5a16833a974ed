//! Delivery rules: which principal gets which mailbox entry for an item, how long a
//! claim lasts, and how failed attempts back off. The loop that drives it lives in
//! `transport::delivery`.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::keyring::Principal;
use crate::notify::Notices;
use crate::store::Store;
use crate::store::queue::{MailboxEntryRow, QueueEntry};
use crate::store::vault::{EnvelopeRow, SlotRow};

#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// How long a claimed entry stays with its worker; after a crash the entry is
    /// claimed again once this has passed.
    pub lease: Duration,
    pub batch: i64,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts before the item is marked failed and shown as such to the sender.
    pub max_attempts: i64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            batch: 64,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(15 * 60),
            max_attempts: 20,
        }
    }
}

impl DeliveryPolicy {
    /// Exponential back-off: base × 2^(attempts-1), capped.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
        self.base_backoff
            .checked_mul(1u32 << exp.min(20))
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The mailbox entries an item produces: the sender's Sent copy, and an Inbox
/// entry for every addressed person and liaison inbox. Oversight slots make no
/// entry: clerks see their facility's items through the slot table.
pub fn plan(envelope: &EnvelopeRow, slots: &[SlotRow], now: i64) -> Vec<MailboxEntryRow> {
    let sender = format!("account:{}", envelope.sender_id);
    slots
        .iter()
        .filter_map(|slot| {
            let folder = if slot.principal == sender {
                "sent"
            } else {
                match Principal::parse(&slot.principal)? {
                    Principal::Account(_) | Principal::LiaisonInbox(_) => "inbox",
                    Principal::Oversight(_) => return None,
                }
            };
            Some(MailboxEntryRow {
                envelope_id: envelope.id.clone(),
                principal: slot.principal.clone(),
                folder: folder.into(),
                // The sender has seen what they wrote.
                seen: folder == "sent",
                flagged: false,
                archived: false,
                delivered_at: now,
            })
        })
        .collect()
}

pub struct Deliverer {
    store: Arc<dyn Store>,
    policy: DeliveryPolicy,
    notices: Option<Arc<Notices>>,
}

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, policy: DeliveryPolicy) -> Self {
        Self {
            store,
            policy,
            notices: None,
        }
    }

    /// Queues notification mails with each delivery, in its transaction.
    #[must_use]
    pub fn notifying(mut self, notices: Arc<Notices>) -> Self {
        self.notices = Some(notices);
        self
    }

    /// Claims and delivers one batch of due entries; returns how many were handled.
    pub async fn deliver_due(&self) -> Result<usize> {
        let now = chrono::Utc::now().timestamp_millis();
        let claimed = self
            .store
            .claim_deliveries(now, now + millis(self.policy.lease), self.policy.batch)
            .await?;
        let n = claimed.len();
        for entry in claimed {
            if let Err(e) = self.deliver(&entry).await {
                let attempts = entry.attempts + 1;
                let next = (attempts < self.policy.max_attempts).then(|| {
                    chrono::Utc::now().timestamp_millis() + millis(self.policy.backoff(attempts))
                });
                tracing::warn!(envelope = entry.envelope_id, attempts, error = %e, "delivery attempt failed");
                self.store
                    .defer_delivery(&entry.envelope_id, attempts, next, &e.to_string())
                    .await?;
            }
        }
        Ok(n)
    }

    /// Addressees that can no longer receive: removed accounts, and accounts or
    /// liaison inboxes of facilities that have left the network.
    async fn unreachable(&self, entries: &[MailboxEntryRow]) -> Result<Vec<String>> {
        let today = (chrono::Utc::now() + chrono::Duration::hours(9)).date_naive();
        let mut out = Vec::new();
        for e in entries.iter().filter(|e| e.folder == "inbox") {
            match Principal::parse(&e.principal) {
                Some(Principal::Account(id)) => match self.store.account(&id).await? {
                    None => out.push(format!("account {} does not exist", id.display_grouped())),
                    Some(a) if a.removed => {
                        out.push(format!("account {} has been removed", id.display_grouped()))
                    }
                    Some(a) => {
                        if let Some(code) = &a.facility
                            && !self.facility_active(code, today).await?
                        {
                            out.push(format!("facility {code} has left the network"));
                        }
                    }
                },
                Some(Principal::LiaisonInbox(code)) => {
                    if !self.facility_active(&code, today).await? {
                        out.push(format!("facility {code} has left the network"));
                    }
                }
                Some(Principal::Oversight(_)) | None => {}
            }
        }
        Ok(out)
    }

    async fn facility_active(
        &self,
        code: &crate::facility::FacilityCode,
        today: chrono::NaiveDate,
    ) -> Result<bool> {
        Ok(self
            .store
            .facility(code)
            .await?
            .is_some_and(|f| f.is_active_on(today)))
    }

    async fn deliver(&self, entry: &QueueEntry) -> Result<()> {
        let envelope = self
            .store
            .envelope(&entry.envelope_id)
            .await?
            .ok_or(Error::NotFound("item"))?;
        let slots = self.store.envelope_slots(&entry.envelope_id).await?;
        let now = chrono::Utc::now().timestamp_millis();
        let entries = plan(&envelope, &slots, now);
        let unreachable = self.unreachable(&entries).await?;
        if !unreachable.is_empty() {
            // Permanent: retrying cannot bring a removed account back. The sender
            // keeps the item in Sent, marked failed with the reason.
            let reason = format!("not delivered: {}", unreachable.join("; "));
            let sender_entries: Vec<MailboxEntryRow> =
                entries.into_iter().filter(|e| e.folder == "sent").collect();
            let notices = match &self.notices {
                Some(n) => n.for_failure(&envelope, now).await?,
                None => Vec::new(),
            };
            self.store
                .reject_delivery(
                    &entry.envelope_id,
                    &sender_entries,
                    &notices,
                    entry.attempts + 1,
                    &reason,
                )
                .await?;
            tracing::warn!(envelope = entry.envelope_id, reason, "undeliverable");
            return Ok(());
        }
        let notices = match &self.notices {
            Some(n) => n.for_delivery(&envelope, &entries, now).await?,
            None => Vec::new(),
        };
        self.store
            .complete_delivery(&entry.envelope_id, &entries, &notices, now)
            .await?;
        tracing::info!(
            envelope = entry.envelope_id,
            entries = entries.len(),
            notices = notices.len(),
            "delivered"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = DeliveryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_secs(1));
        assert_eq!(p.backoff(2), Duration::from_secs(2));
        assert_eq!(p.backoff(5), Duration::from_secs(16));
        assert_eq!(p.backoff(29), p.max_backoff);
    }

    #[test]
    fn the_plan_gives_sent_inbox_and_shared_inbox_entries_but_none_for_oversight() {
        let envelope = EnvelopeRow {
            id: "e1".into(),
            kind: "reading_request".into(),
            sender_id: "K7M4QX9R".into(),
            sender_facility: Some("3710300017".into()),
            created_at: 0,
            body: vec![],
            body_size: 0,
            blind_index: None,
            consent_obtained_on: None,
            consent_method: None,
            consent_obtained_by: None,
            thread_id: None,
            step: None,
            thread_seq: None,
        };
        let slot = |p: &str| SlotRow {
            envelope_id: "e1".into(),
            principal: p.into(),
            added_by: None,
            added_at: 0,
        };
        let slots = [
            slot("account:T3AN9GX9"),
            slot("liaison:3710123450"),
            slot("account:K7M4QX9R"),
            slot("oversight:3710123450"),
            slot("oversight:3710300017"),
        ];
        let plan = plan(&envelope, &slots, 7);
        let got: Vec<(&str, &str, bool)> = plan
            .iter()
            .map(|e| (e.principal.as_str(), e.folder.as_str(), e.seen))
            .collect();
        assert_eq!(
            got,
            vec![
                ("account:T3AN9GX9", "inbox", false),
                ("liaison:3710123450", "inbox", false),
                ("account:K7M4QX9R", "sent", true),
            ]
        );
    }
}
