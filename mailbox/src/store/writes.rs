//! Writes that several traits share inside their transactions: storing a
//! submission (envelope, slots, attachments, queue entry, thread change, its
//! audit entry), mailbox entries, notification rows and audit entries, many
//! rows per statement.

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::backend::{Dialect, SqlStore, Submission};
use super::idempotency::{INSERT_IDEMPOTENCY, IdempotencyRow, KEEP_MILLIS};
use super::lease::NOTIFICATION_COLUMNS;
use super::notify::NotificationRow;
use super::queue::MailboxEntryRow;
use super::records::AuditRow;
use super::records_sql::{BUMP_HEAD, SET_HEAD, insert_audit};
use super::thread::ThreadChange;
use super::thread_sql::{ADVANCE_THREAD, INSERT_THREAD};
use super::vault::{AttachmentRow, EnvelopeRow, SlotRow};
use super::vault_sql::{INSERT_ATTACHMENT, INSERT_ENVELOPE, INSERT_SLOT, SET_BODY};
use super::{StoreError, StoreResult, lease, placeholders};
use crate::clock;

impl<DB: Dialect> SqlStore<DB>
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
    /// Stores a submission: through the group writer where the backend has one
    /// (SQLite), else in its own transaction (PostgreSQL commits concurrent
    /// transactions together by itself).
    pub(super) async fn submit(
        &self,
        e: &EnvelopeRow,
        slots: &[SlotRow],
        attachments: &[AttachmentRow],
        thread: Option<&ThreadChange>,
        audit: &AuditRow,
        idempotency: Option<&IdempotencyRow>,
    ) -> StoreResult<()> {
        let Some(group) = &self.group else {
            return self
                .insert_envelope_alone(e, slots, attachments, thread, audit, idempotency)
                .await;
        };
        let (done, answer) = tokio::sync::oneshot::channel();
        let job = Submission {
            envelope: e.clone(),
            slots: slots.to_vec(),
            attachments: attachments.to_vec(),
            thread: thread.cloned(),
            audit: audit.clone(),
            idempotency: idempotency.cloned(),
            done,
        };
        if group.send(job).await.is_err() {
            return self
                .insert_envelope_alone(e, slots, attachments, thread, audit, idempotency)
                .await;
        }
        answer
            .await
            .map_err(|_| StoreError::Backend(sqlx::Error::WorkerCrashed))?
    }

    /// One submission in its own transaction, its audit entry last.
    pub(super) async fn insert_envelope_alone(
        &self,
        e: &EnvelopeRow,
        slots: &[SlotRow],
        attachments: &[AttachmentRow],
        thread: Option<&ThreadChange>,
        audit: &AuditRow,
        idempotency: Option<&IdempotencyRow>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        Self::insert_envelope_in(&mut tx, e, slots, attachments, thread, idempotency).await?;
        Self::append_audit_in(&mut tx, vec![audit.clone()], AuditRow::chain_hash).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The statements of one submission, inside a transaction the caller
    /// commits (SQLite's group commit runs several in one).
    pub(super) async fn insert_envelope_in(
        tx: &mut DB::Connection,
        e: &EnvelopeRow,
        slots: &[SlotRow],
        attachments: &[AttachmentRow],
        thread: Option<&ThreadChange>,
        idempotency: Option<&IdempotencyRow>,
    ) -> StoreResult<()> {
        // The Idempotency-Key first: a key still live refuses the whole
        // submission, and a stored envelope never lacks its key.
        if let Some(key) = idempotency {
            Self::insert_idempotency(&mut *tx, key).await?;
        }
        sqlx::query(INSERT_ENVELOPE)
            .bind(&e.id)
            .bind(&e.kind)
            .bind(&e.sender_id)
            .bind(&e.sender_facility)
            .bind(e.created_at)
            .bind(&e.body)
            .bind(e.body_size)
            .bind(&e.blind_index)
            .bind(&e.consent_obtained_on)
            .bind(&e.consent_method)
            .bind(&e.consent_obtained_by)
            .bind(&e.thread_id)
            .bind(&e.step)
            .bind(e.thread_seq)
            .bind(&e.consent_given_by)
            .bind(&e.consent_relation)
            .execute(&mut *tx)
            .await?;
        if let Some(change) = thread {
            Self::apply_thread_change(&mut *tx, change, clock::now_millis()).await?;
        }
        if !slots.is_empty() {
            let sql = format!(
                "INSERT INTO envelope_slots (envelope_id, principal, added_by, added_at) \
                 VALUES {} ON CONFLICT (envelope_id, principal) DO NOTHING",
                placeholders(slots.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for s in slots {
                q = q
                    .bind(&s.envelope_id)
                    .bind(&s.principal)
                    .bind(&s.added_by)
                    .bind(s.added_at);
            }
            q.execute(&mut *tx).await?;
        }
        // The queue entry commits with the envelope: acknowledged means deliverable.
        sqlx::query(lease::INSERT_DELIVERY)
            .bind(&e.id)
            .bind(clock::now_millis())
            .execute(&mut *tx)
            .await?;
        for a in attachments {
            sqlx::query(INSERT_ATTACHMENT)
                .bind(&a.envelope_id)
                .bind(a.idx)
                .bind(&a.blob_key)
                .bind(a.sealed_size)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Inside a submission's transaction: remembers its Idempotency-Key answer;
    /// `Conflict` while the key is live (only an expired row is replaced).
    async fn insert_idempotency(tx: &mut DB::Connection, key: &IdempotencyRow) -> StoreResult<()> {
        let done = sqlx::query(INSERT_IDEMPOTENCY)
            .bind(&key.account_id)
            .bind(&key.key_hash)
            .bind(&key.request_hash)
            .bind(key.status)
            .bind(&key.response)
            .bind(key.created_at)
            .bind(key.created_at - KEEP_MILLIS)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) != 1 {
            return Err(StoreError::Conflict("the idempotency key is in use".into()));
        }
        Ok(())
    }

    /// Inside a transaction: stores the thread side of a step envelope.
    async fn apply_thread_change(
        tx: &mut DB::Connection,
        change: &ThreadChange,
        now: i64,
    ) -> StoreResult<()> {
        match change {
            ThreadChange::Open(t) => {
                sqlx::query(INSERT_THREAD)
                    .bind(&t.id)
                    .bind(&t.kind)
                    .bind(&t.state)
                    .bind(t.version)
                    .bind(&t.opener_id)
                    .bind(&t.requester_id)
                    .bind(&t.requester_facility)
                    .bind(&t.target)
                    .bind(&t.target_facility)
                    .bind(&t.claimed_by)
                    .bind(&t.assignee_id)
                    .bind(&t.reader_id)
                    .bind(&t.urgency)
                    .bind(&t.wanted_by)
                    .bind(&t.resource_id)
                    .bind(&t.booked_slot)
                    .bind(&t.template)
                    .bind(t.stage)
                    .bind(t.created_at)
                    .bind(t.updated_at)
                    .execute(&mut *tx)
                    .await?;
            }
            ThreadChange::Advance {
                thread_id,
                version,
                patch,
                ..
            } => {
                let (target, target_facility) = match &patch.target {
                    Some((t, f)) => (Some(t.as_str()), Some(f.as_str())),
                    None => (None, None),
                };
                let done = sqlx::query(ADVANCE_THREAD)
                    .bind(thread_id)
                    .bind(*version)
                    .bind(&patch.state)
                    .bind(now)
                    .bind(patch.closed_at)
                    .bind(&patch.reader_id)
                    .bind(&patch.booked_slot)
                    .bind(patch.stage)
                    .bind(target)
                    .bind(target_facility)
                    .execute(&mut *tx)
                    .await?;
                if DB::rows_affected(&done) != 1 {
                    return Err(StoreError::Conflict(
                        "the thread was changed by someone else".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Inserts mailbox entries, many rows per statement; existing entries are kept.
    pub(super) async fn insert_entries<'a>(
        conn: &mut DB::Connection,
        rows: impl IntoIterator<Item = &'a MailboxEntryRow>,
    ) -> StoreResult<()> {
        let rows: Vec<&MailboxEntryRow> = rows.into_iter().collect();
        // Well under SQLite's 32,766 parameters per statement.
        for chunk in rows.chunks(500) {
            let sql = format!(
                "INSERT INTO mailbox_entries (envelope_id, principal, folder, seen, flagged, \
                 archived, delivered_at) VALUES {} ON CONFLICT (envelope_id, principal) DO NOTHING",
                placeholders(chunk.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(&e.envelope_id)
                    .bind(&e.principal)
                    .bind(&e.folder)
                    .bind(e.seen)
                    .bind(e.flagged)
                    .bind(e.archived)
                    .bind(e.delivered_at);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Inserts notification rows, many per statement; a row whose `dedup_key`
    /// exists is skipped.
    pub(super) async fn insert_notifications<'a>(
        conn: &mut DB::Connection,
        rows: impl IntoIterator<Item = &'a NotificationRow>,
    ) -> StoreResult<()> {
        let rows: Vec<&NotificationRow> = rows.into_iter().collect();
        for chunk in rows.chunks(200) {
            let sql = format!(
                "INSERT INTO notifications ({NOTIFICATION_COLUMNS}) VALUES {} \
                 ON CONFLICT (dedup_key) DO NOTHING",
                placeholders(chunk.len(), 17)
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(&r.id)
                    .bind(&r.dedup_key)
                    .bind(&r.account_id)
                    .bind(&r.reason)
                    .bind(&r.kind)
                    .bind(&r.thread_id)
                    .bind(&r.envelope_id)
                    .bind(&r.facility_code)
                    .bind(&r.to_address)
                    .bind(&r.secret)
                    .bind(r.digest)
                    .bind(&r.state)
                    .bind(r.attempts)
                    .bind(r.next_attempt_at)
                    .bind(&r.last_error)
                    .bind(r.created_at)
                    .bind(r.sent_at);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Appends audit entries to the chain inside the caller's transaction, so
    /// an action and its entry commit together or not at all. Bumping the
    /// head first locks it (the row on PostgreSQL, the database on SQLite)
    /// until that commit; callers do this last, to hold it briefly.
    pub(super) async fn append_audit_in(
        conn: &mut DB::Connection,
        entries: Vec<AuditRow>,
        hash: for<'r> fn(&'r AuditRow) -> String,
    ) -> StoreResult<Vec<AuditRow>> {
        if entries.is_empty() {
            return Ok(entries);
        }
        let n = entries.len() as i64;
        let (last, mut prev): (i64, String) = sqlx::query_as(BUMP_HEAD)
            .bind(n)
            .fetch_one(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let mut entry = AuditRow {
                seq: last - n + 1 + i as i64,
                prev_hash: prev,
                hash: String::new(),
                ..entry
            };
            entry.hash = hash(&entry);
            prev = entry.hash.clone();
            out.push(entry);
        }
        for chunk in out.chunks(200) {
            let sql = insert_audit(chunk.len());
            let mut q = sqlx::query(&sql);
            for entry in chunk {
                q = q
                    .bind(entry.seq)
                    .bind(entry.at)
                    .bind(&entry.actor)
                    .bind(&entry.role)
                    .bind(&entry.facility)
                    .bind(&entry.action)
                    .bind(&entry.item)
                    .bind(&entry.detail)
                    .bind(&entry.remote_addr)
                    .bind(&entry.prev_hash)
                    .bind(&entry.hash)
                    .bind(&entry.channel);
            }
            q.execute(&mut *conn).await?;
        }
        sqlx::query(SET_HEAD)
            .bind(&prev)
            .execute(&mut *conn)
            .await?;
        Ok(out)
    }

    /// Inside a transaction: the body with an extra key slot, and its holder.
    pub(super) async fn add_slot_in(
        conn: &mut DB::Connection,
        id: &str,
        body: &[u8],
        slot: &SlotRow,
    ) -> StoreResult<()> {
        let done = sqlx::query(SET_BODY)
            .bind(id)
            .bind(body)
            .bind(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await?;
        super::backend::expect_one(DB::rows_affected(&done))?;
        sqlx::query(INSERT_SLOT)
            .bind(&slot.envelope_id)
            .bind(&slot.principal)
            .bind(&slot.added_by)
            .bind(slot.added_at)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
