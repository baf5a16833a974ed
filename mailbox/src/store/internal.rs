//! Rows only `mailbox` names. The store traits hand them to the services, so
//! they are `pub` here, but this module is private and the store modules
//! re-export them `pub(crate)`: outside the crate nothing can name them, and
//! the edges (webmail, transport, the CLI) get the services' domain views
//! (`postroom::listing::{ListedItem, MailboxItem}`,
//! `postroom::DeliveryProgress`, `notify::FailedNotice`,
//! `notify::PendingNotice`, `notify::Preferences`,
//! `threads::stats::{ReadingCount, Usage}`,
//! `threads::booking::Resource`, `threads::{Thread, StepRecord}`).

/// A bookable resource as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ResourceRow {
    pub id: String,
    pub facility_code: String,
    pub name: String,
    pub opening_hours: String,
    pub active: bool,
    pub created_at: i64,
}

/// Reports by one reading doctor for one facility.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReadingCountRow {
    pub reader_id: String,
    pub facility_code: String,
    pub reports: i64,
}

/// Usage figures of one account, for its facility's clerks.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    pub account_id: String,
    pub last_sign_in_at: Option<i64>,
    pub sent: i64,
    pub received: i64,
    pub unopened: i64,
    pub overdue: i64,
}

/// One queued notification mail (or one line of a digest).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: String,
    /// Same event, same person → same key; queuing twice stores one row.
    pub dedup_key: String,
    pub account_id: String,
    pub reason: String,
    pub kind: Option<String>,
    pub thread_id: Option<String>,
    pub envelope_id: Option<String>,
    /// The facility the text names (the sender's, or the facility concerned).
    pub facility_code: Option<String>,
    /// Set only for address confirmations (the address is not verified yet).
    pub to_address: Option<String>,
    /// The confirmation token; cleared once the mail has gone.
    pub secret: Option<String>,
    pub digest: bool,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// A person's notification settings as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NotifySettings {
    pub email: Option<String>,
    pub email_verified: bool,
    pub pending_email: Option<String>,
    pub notify_mode: String,
}

/// A mailbox entry joined with the envelope's clear metadata, for listings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailboxListing {
    pub envelope_id: String,
    pub principal: String,
    pub folder: String,
    pub seen: bool,
    pub flagged: bool,
    pub archived: bool,
    pub delivered_at: i64,
    pub kind: String,
    pub sender_id: String,
    pub sender_facility: Option<String>,
    pub thread_id: Option<String>,
    pub step: Option<String>,
    pub thread_state: Option<String>,
    /// `pending`, `done` or `failed`; with the reason when it failed.
    pub delivery_state: Option<String>,
    pub delivery_error: Option<String>,
}

/// A delivery queue row as its sender may see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryStatus {
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

/// A page of [`ListingRow`]s and the Inbox's unread count.
#[derive(Debug, Clone, Default)]
pub struct ListingPage {
    pub rows: Vec<ListingRow>,
    pub unread: i64,
}

/// One row of a folder page: the entry, its thread's progress and the facility
/// on the other side (the sender's for received items, the other party's of
/// the thread for sent ones).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ListingRow {
    pub envelope_id: String,
    pub folder: String,
    pub seen: bool,
    pub archived: bool,
    pub delivered_at: i64,
    pub kind: String,
    pub step: Option<String>,
    pub sender_id: String,
    pub thread_id: Option<String>,
    pub thread_state: Option<String>,
    pub urgency: Option<String>,
    pub wanted_by: Option<String>,
    pub closed_at: Option<i64>,
    pub counterpart_facility: Option<String>,
    pub counterpart_name: Option<String>,
    pub delivery_state: Option<String>,
}

/// A thread as stored. See the `threads` table for what each column means.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ThreadRow {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub version: i64,
    pub opener_id: String,
    pub requester_id: String,
    pub requester_facility: Option<String>,
    pub target: String,
    pub target_facility: String,
    pub claimed_by: Option<String>,
    pub assignee_id: Option<String>,
    pub reader_id: Option<String>,
    pub urgency: String,
    pub wanted_by: Option<String>,
    pub resource_id: Option<String>,
    pub booked_slot: Option<String>,
    pub template: Option<String>,
    pub stage: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
    pub opened_at: Option<i64>,
    pub opened_by: Option<String>,
    pub closed_at: Option<i64>,
    pub escalated_at: Option<i64>,
}

/// One step of a thread in order (clear metadata of its envelope).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StepRow {
    pub envelope_id: String,
    pub step: Option<String>,
    pub sender_id: String,
    pub sender_facility: Option<String>,
    pub created_at: i64,
    pub thread_seq: Option<i64>,
}
