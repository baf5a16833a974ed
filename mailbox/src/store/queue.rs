//! Storage of the delivery queue and mailbox entries (clear metadata only).

use async_trait::async_trait;

use super::StoreResult;
pub(crate) use super::internal::{DeliveryStatus, ListingPage, ListingRow, MailboxListing};

/// A claimed queue entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueueEntry {
    pub envelope_id: String,
    pub attempts: i64,
}

/// One principal's copy of an item in a folder, with its flags.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailboxEntryRow {
    pub envelope_id: String,
    pub principal: String,
    /// `inbox` or `sent`.
    pub folder: String,
    pub seen: bool,
    pub flagged: bool,
    pub archived: bool,
    pub delivered_at: i64,
}

/// Everything one delivered item writes: its mailbox entries and its notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub envelope_id: String,
    pub entries: Vec<MailboxEntryRow>,
    pub notices: Vec<super::notify::NotificationRow>,
}

/// Which entries one page of a folder lists (clear metadata only).
#[derive(Debug, Clone, Copy)]
pub struct ListingQuery<'a> {
    pub principal: &'a str,
    /// `inbox` or `sent`; `None` for both.
    pub folder: Option<&'a str>,
    /// `None` for archived and not.
    pub archived: Option<bool>,
    /// The envelope's kind.
    pub kind: Option<&'a str>,
    /// The state of the item's thread.
    pub thread_state: Option<&'a str>,
    pub limit: i64,
    pub offset: i64,
    /// The principal's unread Inbox entries are counted up to this, in the
    /// same statement (every folder page shows the Inbox's count).
    pub unread_cap: i64,
}

#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Leases up to `limit` due entries until `lease_until`; on PostgreSQL with
    /// `FOR UPDATE SKIP LOCKED`, so several nodes can work one queue.
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<QueueEntry>>;
    /// The envelope heads (no body) and key slots of everything leased until
    /// `lease_until`, in two queries; the caller keeps only what it claimed.
    async fn claimed(
        &self,
        lease_until: i64,
    ) -> StoreResult<(Vec<super::vault::EnvelopeRow>, Vec<super::vault::SlotRow>)>;
    /// Completes a batch of deliveries in one transaction: entries and notices
    /// written (existing ones are kept), queue rows done, threads advanced.
    async fn complete_deliveries(&self, batch: &[Completion], now: i64) -> StoreResult<()>;
    /// Writes the entries and queues the notices (existing ones are kept) and marks
    /// the entry done, atomically.
    async fn complete_delivery(
        &self,
        envelope_id: &str,
        entries: &[MailboxEntryRow],
        notices: &[super::notify::NotificationRow],
        now: i64,
    ) -> StoreResult<()>;
    /// Schedules another attempt, or marks the entry failed when `next_attempt_at` is `None`.
    /// An item that cannot be delivered: the sender's own entries (so it shows in
    /// Sent) and the failed state with its reason, atomically; nobody else gets it.
    async fn reject_delivery(
        &self,
        envelope_id: &str,
        sender_entries: &[MailboxEntryRow],
        notices: &[super::notify::NotificationRow],
        attempts: i64,
        reason: &str,
    ) -> StoreResult<()>;
    async fn defer_delivery(
        &self,
        envelope_id: &str,
        attempts: i64,
        next_attempt_at: Option<i64>,
        error: &str,
    ) -> StoreResult<()>;
    async fn delivery_status(&self, envelope_id: &str) -> StoreResult<Option<DeliveryStatus>>;
    async fn insert_mailbox_entry(&self, entry: &MailboxEntryRow) -> StoreResult<()>;
    /// A principal's folder, newest first.
    async fn mailbox(
        &self,
        principal: &str,
        folder: &str,
        archived: bool,
    ) -> StoreResult<Vec<MailboxListing>>;
    /// One page of a principal's entries, newest first, in one indexed query.
    async fn mailbox_listing(&self, q: &ListingQuery<'_>) -> StoreResult<ListingPage>;
    /// Unread, unarchived entries in a principal's Inbox, counted up to `cap`.
    async fn unread_count(&self, principal: &str, cap: i64) -> StoreResult<i64>;
    async fn set_flags(
        &self,
        envelope_id: &str,
        principal: &str,
        seen: Option<bool>,
        flagged: Option<bool>,
        archived: Option<bool>,
    ) -> StoreResult<()>;
    /// How many entries a queue state holds (operations and tests).
    async fn count_deliveries(&self, state: &str) -> StoreResult<i64>;
}
