//! Delivery rules: which principal gets which mailbox entry for an item, how long a
//! claim lasts, and how failed attempts back off (the queue's [`BackOff`]). The
//! loop that drives it lives in `transport::delivery`.
//!
//! The plan: the sender's Sent entry, an Inbox entry per addressed person and
//! liaison inbox, none for oversight slots. The submission writes its
//! `delivery_queue` row in the envelope's own transaction; delivery writes
//! every `mailbox_entries` row (keyed envelope × principal, `ON CONFLICT DO
//! NOTHING`), the notification rows (keyed by their `dedup_key`) and the thread
//! states, and marks the row done, in one transaction — so a crash at any point
//! redelivers without duplicating. Claims are leases (`UPDATE … RETURNING`), so
//! several workers or nodes share the queue.
//!
//! A worker claims up to 64 entries, reads their heads (never the sealed body)
//! and key slots in two queries, looks recipients up once per batch, and writes
//! the whole batch in one transaction of a few multi-row statements; if that
//! fails it falls back to one item at a time. The postroom wakes the worker
//! after every committed submission; a 50 ms poll still finds work queued by
//! other nodes and retries.
//!
//! An addressee that can no longer receive (a removed account, a facility that
//! left the network) fails the item at once instead of retrying: the sender
//! keeps it in Sent with `delivery_state = failed` and the reason, and is told
//! by mail. The blob folder is per node: an item's attachments open on the node
//! that took it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{BackOff, GiveUp};
use crate::clock;
use crate::error::{Error, Result};
use crate::keys::Principal;
use crate::notify::Notices;
use crate::store::Store;
use crate::store::queue::{Completion, MailboxEntryRow, QueueEntry};
use crate::store::vault::{EnvelopeRow, SlotRow};

#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// How long a claimed entry stays with its worker; after a crash the entry is
    /// claimed again once this has passed.
    pub lease: Duration,
    pub batch: i64,
    /// How long a failed attempt waits before the next.
    pub retry: BackOff,
    /// Attempts before the item is marked failed and shown as such to the sender.
    pub max_attempts: i64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            batch: 64,
            retry: BackOff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(15 * 60),
            },
            max_attempts: 20,
        }
    }
}

impl DeliveryPolicy {
    /// The wait after `attempts` failed attempts.
    pub fn backoff(&self, attempts: i64) -> Duration {
        self.retry.delay(attempts)
    }
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
    /// The batch is written in one transaction (falling back to one item at a
    /// time if that fails, so one bad item cannot hold up the others).
    pub async fn deliver_due(&self) -> Result<usize> {
        let now = clock::now_millis();
        let lease_until = super::lease_until(now, self.policy.lease);
        let claimed = self
            .store
            .claim_deliveries(now, lease_until, self.policy.batch)
            .await?;
        let n = claimed.len();
        if n == 0 {
            return Ok(0);
        }
        // Heads and slots for the whole batch at once (a worker that makes a
        // round trip per item starves behind busy submitters).
        let mine: std::collections::HashSet<&str> =
            claimed.iter().map(|e| e.envelope_id.as_str()).collect();
        let (heads, all_slots) = self.store.claimed(lease_until).await?;
        let mut lookups = Lookups::default();
        for head in heads {
            if mine.contains(head.id.as_str()) {
                lookups.heads.insert(head.id.clone(), head);
            }
        }
        for slot in all_slots {
            if mine.contains(slot.envelope_id.as_str()) {
                lookups
                    .slots
                    .entry(slot.envelope_id.clone())
                    .or_default()
                    .push(slot);
            }
        }
        let mut ready: Vec<(QueueEntry, Completion)> = Vec::with_capacity(n);
        for entry in claimed {
            match self.prepare(&entry, now, &mut lookups).await {
                Ok(Some(c)) => ready.push((entry, c)),
                Ok(None) => {}
                Err(e) => self.failed_attempt(&entry, &e).await?,
            }
        }
        if ready.is_empty() {
            return Ok(n);
        }
        let batch: Vec<Completion> = ready.iter().map(|(_, c)| c.clone()).collect();
        match self.store.complete_deliveries(&batch, now).await {
            Ok(()) => {
                for c in &batch {
                    tracing::info!(
                        envelope = c.envelope_id,
                        entries = c.entries.len(),
                        notices = c.notices.len(),
                        "delivered"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(items = batch.len(), error = %e, "batch delivery failed; one by one");
                for (entry, c) in ready {
                    if let Err(e) = self
                        .store
                        .complete_delivery(&c.envelope_id, &c.entries, &c.notices, now)
                        .await
                    {
                        self.failed_attempt(&entry, &e.into()).await?;
                    }
                }
            }
        }
        Ok(n)
    }

    async fn failed_attempt(&self, entry: &QueueEntry, e: &Error) -> Result<()> {
        let attempts = entry.attempts + 1;
        let next = self.policy.retry.next_attempt(
            attempts,
            clock::now_millis(),
            GiveUp::AfterAttempts(self.policy.max_attempts),
        );
        tracing::warn!(envelope = entry.envelope_id, attempts, error = %e, "delivery attempt failed");
        self.store
            .defer_delivery(&entry.envelope_id, attempts, next, &e.to_string())
            .await?;
        Ok(())
    }

    /// Why an addressee can no longer receive, if so: a removed account, or an
    /// account or liaison inbox of a facility that has left the network.
    async fn unreachable_reason(
        &self,
        principal: &str,
        today: chrono::NaiveDate,
    ) -> Result<Option<String>> {
        Ok(match Principal::parse(principal) {
            Some(Principal::Account(id)) => match self.store.account(&id).await? {
                None => Some(format!("account {} does not exist", id.display_grouped())),
                Some(a) if a.removed => {
                    Some(format!("account {} has been removed", id.display_grouped()))
                }
                Some(a) => match &a.facility {
                    Some(code) if !self.facility_active(code, today).await? => {
                        Some(format!("facility {code} has left the network"))
                    }
                    _ => None,
                },
            },
            Some(Principal::LiaisonInbox(code)) => (!self.facility_active(&code, today).await?)
                .then(|| format!("facility {code} has left the network")),
            Some(Principal::Oversight(_)) | None => None,
        })
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

    /// Plans one item: its completion, or `None` when it was rejected as
    /// undeliverable (already recorded).
    async fn prepare(
        &self,
        entry: &QueueEntry,
        now: i64,
        lookups: &mut Lookups,
    ) -> Result<Option<Completion>> {
        let envelope = match lookups.heads.remove(&entry.envelope_id) {
            Some(h) => h,
            None => self
                .store
                .envelope_head(&entry.envelope_id)
                .await?
                .ok_or(Error::NotFound("item"))?,
        };
        let slots = match lookups.slots.remove(&entry.envelope_id) {
            Some(s) => s,
            None => self.store.envelope_slots(&entry.envelope_id).await?,
        };
        let entries = plan(&envelope, &slots, now);
        let today = clock::today_jst();
        let mut unreachable = Vec::new();
        for e in entries.iter().filter(|e| e.folder == "inbox") {
            if !lookups.reachability.contains_key(&e.principal) {
                let reason = self.unreachable_reason(&e.principal, today).await?;
                lookups.reachability.insert(e.principal.clone(), reason);
            }
            if let Some(Some(reason)) = lookups.reachability.get(&e.principal) {
                unreachable.push(reason.clone());
            }
        }
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
            return Ok(None);
        }
        let notices = match &self.notices {
            Some(n) => {
                n.for_delivery_with(&envelope, &entries, now, &mut lookups.targets)
                    .await?
            }
            None => Vec::new(),
        };
        Ok(Some(Completion {
            envelope_id: entry.envelope_id.clone(),
            entries,
            notices,
        }))
    }
}

/// Answers looked up once per batch (most items of a batch share recipients).
#[derive(Default)]
struct Lookups {
    heads: HashMap<String, EnvelopeRow>,
    slots: HashMap<String, Vec<SlotRow>>,
    reachability: HashMap<String, Option<String>>,
    targets: HashMap<String, Vec<crate::store::notify::NotifyTarget>>,
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
        assert_eq!(p.backoff(29), p.retry.max);
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
            consent_given_by: None,
            consent_relation: None,
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
