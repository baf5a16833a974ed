//! Storage of outgoing notification mails, notification preferences and address
//! confirmation. Rows hold no patient data: reason, kind, facility code and IDs.

use async_trait::async_trait;

use super::StoreResult;
pub(crate) use super::internal::{NotificationRow, NotifySettings};

/// Someone who gets notification mails: a verified address and a mode other than off.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NotifyTarget {
    pub account_id: String,
    pub email: String,
    pub notify_mode: String,
}

/// A thread nobody at the receiving facility has opened in time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UnopenedThread {
    pub thread_id: String,
    pub kind: String,
    pub opener_id: String,
    pub target_facility: String,
    pub requester_facility: Option<String>,
    pub delivered_at: i64,
}

#[async_trait]
pub trait NotifyStore: Send + Sync {
    /// The account, if it has a verified address, is not removed and wants mail.
    async fn notify_target(&self, account_id: &str) -> StoreResult<Option<NotifyTarget>>;
    /// Members of a facility with one role who have a verified address and want mail.
    async fn facility_notify_targets(
        &self,
        facility: &str,
        role: &str,
    ) -> StoreResult<Vec<NotifyTarget>>;
    /// Stores the rows; a row whose `dedup_key` exists is skipped.
    async fn queue_notifications(&self, rows: &[NotificationRow]) -> StoreResult<()>;
    /// Leases due pending rows (immediate ones, or digest lines).
    async fn claim_notifications(
        &self,
        now: i64,
        lease_until: i64,
        digest: bool,
        limit: i64,
    ) -> StoreResult<Vec<NotificationRow>>;
    async fn notification_sent(&self, id: &str, now: i64) -> StoreResult<()>;
    /// Schedules another attempt, or marks the row failed when `next_attempt_at` is `None`.
    async fn defer_notification(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: Option<i64>,
        error: &str,
    ) -> StoreResult<()>;
    /// Gives up on a row that can no longer be sent (the address is gone).
    async fn drop_notification(&self, id: &str, reason: &str) -> StoreResult<()>;
    /// Failed rows, newest first: of one account, or of everyone (the operator).
    async fn failed_notifications(
        &self,
        account_id: Option<&str>,
    ) -> StoreResult<Vec<NotificationRow>>;
    async fn count_notifications(&self, state: &str) -> StoreResult<i64>;

    async fn notify_settings(&self, account_id: &str) -> StoreResult<Option<NotifySettings>>;
    async fn set_notify_mode(&self, account_id: &str, mode: &str) -> StoreResult<()>;
    /// Records a new address waiting for its link, and queues the link's mail.
    async fn set_pending_email(
        &self,
        account_id: &str,
        address: &str,
        token_hash: &[u8],
        expires_at: i64,
        confirmation: &NotificationRow,
    ) -> StoreResult<()>;
    /// Makes the pending address the verified one; the account, if the token matched.
    async fn confirm_email(&self, token_hash: &[u8], now: i64) -> StoreResult<Option<String>>;
    async fn record_sign_in(&self, account_id: &str, now: i64) -> StoreResult<()>;

    /// Threads delivered to a facility and not opened within its escalation hours.
    async fn unopened_threads(&self, now: i64) -> StoreResult<Vec<UnopenedThread>>;
    /// Marks the thread escalated and queues the rows, once: false if another
    /// worker (or an opening) got there first.
    async fn escalate_thread(
        &self,
        thread_id: &str,
        now: i64,
        rows: &[NotificationRow],
    ) -> StoreResult<bool>;
    async fn set_escalation_hours(&self, facility: &str, hours: i64) -> StoreResult<()>;
}
