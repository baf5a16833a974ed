//! Statements of [`ThreadStore`] and its implementation for [`SqlStore`]; the
//! thread half of storing a step envelope is in [`super::writes`].

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::backend::{Dialect, SqlStore, expect_one};
use super::records::AuditRow;
use super::thread::{ReadingCountRow, ResourceRow, StepRow, ThreadRow, ThreadStore, UsageRow};
use super::{StoreError, StoreResult};

const THREAD_COLUMNS: &str = "t.id, t.kind, t.state, t.version, t.opener_id, t.requester_id, \
    t.requester_facility, t.target, t.target_facility, t.claimed_by, t.assignee_id, t.reader_id, \
    t.urgency, t.wanted_by, t.resource_id, t.booked_slot, t.template, t.stage, t.created_at, \
    t.updated_at, t.delivered_at, t.opened_at, t.opened_by, t.closed_at, t.escalated_at";

pub(super) const INSERT_THREAD: &str = "INSERT INTO threads (id, kind, state, version, opener_id, \
    requester_id, requester_facility, target, target_facility, claimed_by, assignee_id, reader_id, \
    urgency, wanted_by, resource_id, booked_slot, template, stage, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";

/// Optimistic: only the version the actor saw may be advanced. A hand-over to
/// another facility restarts the delivery, opening and escalation clocks.
pub(super) const ADVANCE_THREAD: &str = "UPDATE threads SET state = $3, version = version + 1, \
    updated_at = $4, closed_at = COALESCE($5, closed_at), reader_id = COALESCE($6, reader_id), \
    booked_slot = COALESCE($7, booked_slot), stage = COALESCE($8, stage), \
    target = COALESCE($9, target), target_facility = COALESCE($10, target_facility), \
    delivered_at = CASE WHEN $10 IS NULL THEN delivered_at ELSE NULL END, \
    opened_at = CASE WHEN $10 IS NULL THEN opened_at ELSE NULL END, \
    opened_by = CASE WHEN $10 IS NULL THEN opened_by ELSE NULL END, \
    escalated_at = CASE WHEN $10 IS NULL THEN escalated_at ELSE NULL END, \
    claimed_by = CASE WHEN $10 IS NULL THEN claimed_by ELSE NULL END, \
    assignee_id = CASE WHEN $10 IS NULL THEN assignee_id ELSE NULL END \
    WHERE id = $1 AND version = $2";

pub(super) fn select_thread() -> String {
    format!("SELECT {THREAD_COLUMNS} FROM threads t WHERE t.id = $1")
}
pub(super) fn threads_for() -> String {
    format!(
        "SELECT {THREAD_COLUMNS} FROM threads t JOIN envelope_slots s ON s.envelope_id = t.opener_id \
         WHERE s.principal = $1 ORDER BY t.updated_at DESC, t.id"
    )
}
pub(super) fn threads_of_facility() -> String {
    format!(
        "SELECT {THREAD_COLUMNS} FROM threads t WHERE t.requester_facility = $1 OR t.target_facility = $1 \
         ORDER BY t.updated_at DESC, t.id"
    )
}
pub(super) const STEPS: &str = "SELECT id AS envelope_id, step, sender_id, sender_facility, created_at, \
    thread_seq FROM envelopes WHERE thread_id = $1 ORDER BY thread_seq, created_at, id";
pub(super) const MARK_OPENED: &str = "UPDATE threads SET opened_at = COALESCE(opened_at, $3), \
    opened_by = COALESCE(opened_by, $4), \
    state = CASE WHEN state IN ('sent', 'delivered') THEN 'opened' ELSE state END \
    WHERE opener_id = $1 AND (target = $2 OR assignee_id = $4)";
pub(super) const CLAIM: &str = "UPDATE threads SET claimed_by = $2 \
    WHERE id = $1 AND (claimed_by IS NULL OR claimed_by = $2)";
pub(super) const CLAIMED_BY: &str = "SELECT claimed_by FROM threads WHERE id = $1";
pub(super) const RELEASE: &str = "UPDATE threads SET claimed_by = NULL WHERE id = $1";
pub(super) const SET_ASSIGNEE: &str =
    "UPDATE threads SET assignee_id = $2, updated_at = $3 WHERE id = $1";
pub(super) const REMOVE_SLOTS: &str = "DELETE FROM envelope_slots WHERE principal = $2 AND envelope_id IN \
    (SELECT id FROM envelopes WHERE thread_id = $1)";
pub(super) const REMOVE_ENTRIES: &str = "DELETE FROM mailbox_entries WHERE principal = $2 AND envelope_id IN \
    (SELECT id FROM envelopes WHERE thread_id = $1)";

pub(super) const INSERT_RESOURCE: &str = "INSERT INTO resources \
    (id, facility_code, name, opening_hours, active, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(super) const RESOURCES_OF: &str = "SELECT id, facility_code, name, opening_hours, active, created_at \
    FROM resources WHERE facility_code = $1 ORDER BY name, id";
pub(super) const RESOURCE: &str = "SELECT id, facility_code, name, opening_hours, active, created_at \
    FROM resources WHERE id = $1";

/// Kept in step with the unique index `threads_booked_slot_held`.
pub(super) const HELD_SLOTS: &str = "SELECT id, booked_slot FROM threads \
    WHERE kind = 'booking' AND resource_id = $1 AND booked_slot IS NOT NULL \
    AND state IN ('requested', 'proposed', 'confirmed')";

pub(super) const READING_COUNTS: &str = "SELECT reader_id, target_facility AS facility_code, \
    COUNT(*) AS reports FROM threads \
    WHERE kind = 'reading_request' AND reader_id IS NOT NULL AND state IN ('reported', 'acknowledged') \
    AND closed_at >= $1 AND closed_at < $2 \
    GROUP BY reader_id, target_facility ORDER BY target_facility, reader_id";
/// `unopened`: inbox entries not yet seen; `overdue`: open threads addressed or
/// assigned to the account whose wanted-by date has passed.
pub(super) const USAGE: &str = "SELECT a.id AS account_id, a.last_sign_in_at, \
    (SELECT COUNT(*) FROM envelopes e WHERE e.sender_id = a.id) AS sent, \
    (SELECT COUNT(*) FROM mailbox_entries m WHERE m.principal = 'account:' || a.id AND m.folder = 'inbox') AS received, \
    (SELECT COUNT(*) FROM mailbox_entries m WHERE m.principal = 'account:' || a.id AND m.folder = 'inbox' \
        AND NOT m.seen) AS unopened, \
    (SELECT COUNT(*) FROM threads t WHERE (t.target = 'account:' || a.id OR t.assignee_id = a.id) \
        AND t.closed_at IS NULL AND t.wanted_by IS NOT NULL AND t.wanted_by < $2) AS overdue \
    FROM accounts a WHERE a.facility_code = $1 AND NOT a.removed ORDER BY a.role, a.id";
/// The facility's shared liaison inbox as one more usage line (`liaison:CODE`):
/// what it received and has not opened, and its open overdue items nobody was
/// assigned yet. Nobody sends as the inbox, so `sent` is 0.
pub(super) const SHARED_USAGE: &str = "SELECT 'liaison:' || $1 AS account_id, \
    CAST(NULL AS BIGINT) AS last_sign_in_at, CAST(0 AS BIGINT) AS sent, \
    (SELECT COUNT(*) FROM mailbox_entries m WHERE m.principal = 'liaison:' || $1 AND m.folder = 'inbox') AS received, \
    (SELECT COUNT(*) FROM mailbox_entries m WHERE m.principal = 'liaison:' || $1 AND m.folder = 'inbox' \
        AND NOT m.seen) AS unopened, \
    (SELECT COUNT(*) FROM threads t WHERE t.target = 'liaison:' || $1 AND t.assignee_id IS NULL \
        AND t.closed_at IS NULL AND t.wanted_by IS NOT NULL AND t.wanted_by < $2) AS overdue";

#[async_trait::async_trait]
impl<DB: Dialect> ThreadStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'r> String: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> i64: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> bool: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<bool>: Encode<'q, DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn thread(&self, id: &str) -> StoreResult<Option<ThreadRow>> {
        Ok(sqlx::query_as::<_, ThreadRow>(&select_thread())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn threads_for(&self, principal: &str) -> StoreResult<Vec<ThreadRow>> {
        Ok(sqlx::query_as::<_, ThreadRow>(&threads_for())
            .bind(principal)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn threads_of_facility(&self, code: &str) -> StoreResult<Vec<ThreadRow>> {
        Ok(sqlx::query_as::<_, ThreadRow>(&threads_of_facility())
            .bind(code)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn thread_steps(&self, thread_id: &str) -> StoreResult<Vec<StepRow>> {
        Ok(sqlx::query_as::<_, StepRow>(STEPS)
            .bind(thread_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn mark_thread_opened(
        &self,
        opener_id: &str,
        principal: &str,
        account: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(MARK_OPENED)
            .bind(opener_id)
            .bind(principal)
            .bind(now)
            .bind(account)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn claim_thread(&self, id: &str, liaison: &str, audit: &AuditRow) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(CLAIM)
            .bind(id)
            .bind(liaison)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) == 1 {
            Self::append_audit_in(&mut tx, vec![audit.clone()], AuditRow::chain_hash).await?;
            tx.commit().await?;
            return Ok(());
        }
        drop(tx);
        let holder: Option<Option<String>> = sqlx::query_scalar(CLAIMED_BY)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match holder {
            Some(Some(h)) => Err(StoreError::Conflict(h)),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn release_thread(&self, id: &str, audit: &AuditRow) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(RELEASE).bind(id).execute(&mut *tx).await?;
        Self::append_audit_in(&mut tx, vec![audit.clone()], AuditRow::chain_hash).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_assignee(
        &self,
        id: &str,
        doctor: Option<&str>,
        now: i64,
        audit: &AuditRow,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(SET_ASSIGNEE)
            .bind(id)
            .bind(doctor)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        expect_one(DB::rows_affected(&done))?;
        Self::append_audit_in(&mut tx, vec![audit.clone()], AuditRow::chain_hash).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_thread_access(&self, thread_id: &str, principal: &str) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(REMOVE_SLOTS)
            .bind(thread_id)
            .bind(principal)
            .execute(&mut *tx)
            .await?;
        let slots = DB::rows_affected(&done);
        sqlx::query(REMOVE_ENTRIES)
            .bind(thread_id)
            .bind(principal)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(slots)
    }

    async fn insert_resource(&self, r: &ResourceRow) -> StoreResult<()> {
        sqlx::query(INSERT_RESOURCE)
            .bind(&r.id)
            .bind(&r.facility_code)
            .bind(&r.name)
            .bind(&r.opening_hours)
            .bind(r.active)
            .bind(r.created_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn resources_of(&self, code: &str) -> StoreResult<Vec<ResourceRow>> {
        Ok(sqlx::query_as::<_, ResourceRow>(RESOURCES_OF)
            .bind(code)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn resource(&self, id: &str) -> StoreResult<Option<ResourceRow>> {
        Ok(sqlx::query_as::<_, ResourceRow>(RESOURCE)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn held_slots(&self, resource_id: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as::<_, (String, String)>(HELD_SLOTS)
            .bind(resource_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn reading_counts(&self, from: i64, to: i64) -> StoreResult<Vec<ReadingCountRow>> {
        Ok(sqlx::query_as::<_, ReadingCountRow>(READING_COUNTS)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn usage_of_facility(&self, code: &str, today: &str) -> StoreResult<Vec<UsageRow>> {
        let mut rows = sqlx::query_as::<_, UsageRow>(USAGE)
            .bind(code)
            .bind(today)
            .fetch_all(&self.pool)
            .await?;
        rows.extend(
            sqlx::query_as::<_, UsageRow>(SHARED_USAGE)
                .bind(code)
                .bind(today)
                .fetch_optional(&self.pool)
                .await?,
        );
        Ok(rows)
    }
}
