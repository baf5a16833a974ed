//! Storage of threads (workflow state), bookable resources and the figures the
//! statistics pages show. Clear metadata only.

use async_trait::async_trait;

use super::StoreResult;
pub(crate) use super::internal::{ReadingCountRow, ResourceRow, StepRow, ThreadRow, UsageRow};
use super::records::AuditRow;

/// What a step changes on its thread; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadPatch {
    pub state: String,
    pub closed_at: Option<i64>,
    pub reader_id: Option<String>,
    pub booked_slot: Option<String>,
    pub stage: Option<i64>,
    /// A pathway handed to the next facility: its shared inbox becomes the target
    /// (and the clocks for delivery, opening and escalation start again).
    pub target: Option<(String, String)>,
}

/// The thread side of storing a step envelope, done in the envelope's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadChange {
    /// The envelope opens a new thread.
    Open(Box<ThreadRow>),
    /// The envelope is a step on a thread last seen at `version`; refused with
    /// `Conflict` if someone else moved the thread since.
    Advance {
        thread_id: String,
        step: String,
        version: i64,
        patch: ThreadPatch,
    },
}

#[async_trait]
pub trait ThreadStore: Send + Sync {
    async fn thread(&self, id: &str) -> StoreResult<Option<ThreadRow>>;
    /// Threads whose opening envelope has a key slot for `principal`, newest first.
    async fn threads_for(&self, principal: &str) -> StoreResult<Vec<ThreadRow>>;
    /// Threads a facility sent or received, newest first.
    async fn threads_of_facility(&self, code: &str) -> StoreResult<Vec<ThreadRow>>;
    async fn thread_steps(&self, thread_id: &str) -> StoreResult<Vec<StepRow>>;
    /// Records the first opening by the addressee (or the assigned doctor, or the
    /// shared inbox): `principal` is the reader's slot, `account` the person.
    async fn mark_thread_opened(
        &self,
        opener_id: &str,
        principal: &str,
        account: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Takes a shared-inbox item for `liaison`, unless another liaison holds it
    /// (`Conflict` naming the holder); the audit entry commits with the claim.
    async fn claim_thread(&self, id: &str, liaison: &str, audit: &AuditRow) -> StoreResult<()>;
    async fn release_thread(&self, id: &str, audit: &AuditRow) -> StoreResult<()>;
    /// Sets or clears the assigned doctor, with its audit entry.
    async fn set_assignee(
        &self,
        id: &str,
        doctor: Option<&str>,
        now: i64,
        audit: &AuditRow,
    ) -> StoreResult<()>;
    /// Takes a principal's slots and mailbox entries off every envelope of a thread.
    async fn remove_thread_access(&self, thread_id: &str, principal: &str) -> StoreResult<u64>;

    async fn insert_resource(&self, r: &ResourceRow) -> StoreResult<()>;
    async fn resources_of(&self, code: &str) -> StoreResult<Vec<ResourceRow>>;
    async fn resource(&self, id: &str) -> StoreResult<Option<ResourceRow>>;
    /// `(thread, time)` of every booking of a resource that holds its time
    /// (requested, proposed or confirmed).
    async fn held_slots(&self, resource_id: &str) -> StoreResult<Vec<(String, String)>>;

    /// Reports per reading doctor and facility whose report came in `[from, to)`;
    /// declines are not reports, so they never count.
    async fn reading_counts(&self, from: i64, to: i64) -> StoreResult<Vec<ReadingCountRow>>;
    /// One line per account of the facility, then one for its shared liaison
    /// inbox (`account_id` = `liaison:CODE`).
    async fn usage_of_facility(&self, code: &str, today: &str) -> StoreResult<Vec<UsageRow>>;
}
