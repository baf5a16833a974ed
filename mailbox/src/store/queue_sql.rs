//! Statements of [`QueueStore`] (the delivery queue's lease is in [`super::lease`])
//! and its implementation for [`SqlStore`].

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::backend::{Dialect, SqlStore, expect_one};
use super::lease::DELIVERIES;
use super::notify::NotificationRow;
use super::queue::{
    Completion, DeliveryStatus, ListingPage, ListingQuery, ListingRow, MailboxEntryRow,
    MailboxListing, QueueEntry, QueueStore,
};
use super::vault::{EnvelopeRow, SlotRow};
use super::{StoreError, StoreResult, list};
pub(super) const STATUS: &str =
    "SELECT state, attempts, last_error, delivered_at FROM delivery_queue WHERE envelope_id = $1";
pub(super) const MAILBOX: &str = "SELECT m.envelope_id, m.principal, m.folder, m.seen, m.flagged, m.archived, \
    m.delivered_at, e.kind, e.sender_id, e.sender_facility, e.thread_id, e.step, t.state AS thread_state, \
    q.state AS delivery_state, q.last_error AS delivery_error \
    FROM mailbox_entries m JOIN envelopes e ON e.id = m.envelope_id LEFT JOIN threads t ON t.id = e.thread_id \
    LEFT JOIN delivery_queue q ON q.envelope_id = m.envelope_id \
    WHERE m.principal = $1 AND m.folder = $2 AND m.archived = $3 ORDER BY m.delivered_at DESC, m.envelope_id";
/// The head of a folder page; [`listing`] adds the conditions asked for. The
/// facility on the other side: the sender's for received items, the thread's
/// other party for sent steps, the first addressee's (by its original key slot)
/// for a sent item outside any thread.
const LISTING: &str = "SELECT m.envelope_id, m.folder, m.seen, m.archived, m.delivered_at, e.kind, \
    e.step, e.sender_id, e.thread_id, t.state AS thread_state, t.urgency, t.wanted_by, t.closed_at, \
    c.code AS counterpart_facility, c.name AS counterpart_name, q.state AS delivery_state \
    FROM mailbox_entries m JOIN envelopes e ON e.id = m.envelope_id \
    LEFT JOIN threads t ON t.id = e.thread_id \
    LEFT JOIN delivery_queue q ON q.envelope_id = m.envelope_id \
    LEFT JOIN facilities c ON c.code = CASE WHEN m.folder = 'inbox' THEN e.sender_facility \
      WHEN t.id IS NULL THEN (SELECT CASE WHEN s.principal LIKE 'liaison:%' THEN substr(s.principal, 9) \
        ELSE (SELECT a.facility_code FROM accounts a WHERE a.id = substr(s.principal, 9)) END \
        FROM envelope_slots s WHERE s.envelope_id = e.id AND s.added_by IS NULL \
        AND s.principal <> 'account:' || e.sender_id AND s.principal NOT LIKE 'oversight:%' \
        ORDER BY s.principal LIMIT 1) \
      WHEN e.sender_id = t.requester_id THEN t.target_facility ELSE t.requester_facility END \
    WHERE m.principal = $1";

/// The statement for `q`: only the conditions it sets (so each combination is
/// its own prepared statement and the index serves the folder and flag), then
/// the order and the page. Parameters follow in the order `mailbox_listing` binds.
/// How many parameters [`listing`] takes.
fn listing_params(q: &ListingQuery<'_>) -> usize {
    3 + [
        q.folder.is_some(),
        q.archived.is_some(),
        q.kind.is_some(),
        q.thread_state.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
}

pub(super) fn listing(q: &ListingQuery<'_>) -> String {
    let mut sql = String::from(LISTING);
    let mut n = 1;
    let mut cond = |column: &str| {
        n += 1;
        sql.push_str(&format!(" AND {column} = ${n}"));
    };
    if q.folder.is_some() {
        cond("m.folder");
    }
    if q.archived.is_some() {
        cond("m.archived");
    }
    if q.kind.is_some() {
        cond("e.kind");
    }
    if q.thread_state.is_some() {
        cond("t.state");
    }
    sql.push_str(&format!(
        " ORDER BY m.delivered_at DESC, m.envelope_id DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    ));
    sql
}

/// The columns of [`LISTING`], in the order [`page_rows`] reads them.
const LISTING_COLUMNS: &str = "envelope_id, folder, seen, archived, delivered_at, kind, step, \
    sender_id, thread_id, thread_state, urgency, wanted_by, closed_at, counterpart_facility, \
    counterpart_name, delivery_state";

/// [`listing`] folded into one row holding the page as a JSON array of
/// arrays, with the dialect's aggregate (`json_group_array(json_array(…))` or
/// `json_agg(json_build_array(…))`). A page of fifty rows fetched row by row
/// cost SQLite's worker thread and the request a wake-up per row: fifty
/// context switches a page, more than the query itself.
/// The Inbox's unread count rides along (its cap is the last parameter, so
/// parameters first appear in number order, as SQLite numbers them).
pub(super) fn listing_page(q: &ListingQuery<'_>, aggregate: (&str, &str)) -> String {
    let (agg, array) = aggregate;
    let listing = listing(q);
    let cap = listing_params(q) + 1;
    format!(
        "SELECT p.rows, u.unread FROM \
         (SELECT CAST({agg}({array}({LISTING_COLUMNS})) AS TEXT) AS rows FROM ({listing}) AS page) AS p, \
         (SELECT COUNT(*) AS unread FROM (SELECT 1 FROM mailbox_entries WHERE principal = $1 \
          AND folder = 'inbox' AND archived = FALSE AND seen = FALSE LIMIT ${cap}) AS c) AS u"
    )
}

/// The rows of a [`listing_page`], in the listing's order.
pub(super) fn page_rows(json: Option<&str>) -> StoreResult<Vec<ListingRow>> {
    use serde_json::Value;
    let Some(json) = json else {
        return Ok(Vec::new()); // PostgreSQL's json_agg of no rows
    };
    let bad = |what: &str| StoreError::Corrupt(format!("listing page: {what}"));
    let rows: Vec<Vec<Value>> =
        serde_json::from_str(json).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let flag = |v: &Value| match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    };
    let mut out = rows
        .iter()
        .map(|r| {
            let [
                envelope_id,
                folder,
                seen,
                archived,
                delivered_at,
                kind,
                step,
                sender_id,
                thread_id,
                thread_state,
                urgency,
                wanted_by,
                closed_at,
                counterpart_facility,
                counterpart_name,
                delivery_state,
            ] = r.as_slice()
            else {
                return Err(bad("a row of the wrong width"));
            };
            Ok(ListingRow {
                envelope_id: text(envelope_id).ok_or_else(|| bad("envelope_id"))?,
                folder: text(folder).ok_or_else(|| bad("folder"))?,
                seen: flag(seen).ok_or_else(|| bad("seen"))?,
                archived: flag(archived).ok_or_else(|| bad("archived"))?,
                delivered_at: delivered_at.as_i64().ok_or_else(|| bad("delivered_at"))?,
                kind: text(kind).ok_or_else(|| bad("kind"))?,
                step: text(step),
                sender_id: text(sender_id).ok_or_else(|| bad("sender_id"))?,
                thread_id: text(thread_id),
                thread_state: text(thread_state),
                urgency: text(urgency),
                wanted_by: text(wanted_by),
                closed_at: closed_at.as_i64(),
                counterpart_facility: text(counterpart_facility),
                counterpart_name: text(counterpart_name),
                delivery_state: text(delivery_state),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // An aggregate over an ordered subquery keeps its order in both engines,
    // but neither promises it: the listing's order is restored here.
    out.sort_by(|a, b| {
        b.delivered_at
            .cmp(&a.delivered_at)
            .then_with(|| b.envelope_id.cmp(&a.envelope_id))
    });
    Ok(out)
}

/// Counts at most `$2` (a badge says "999+"; counting further would read the
/// whole index range on every page view).
pub(super) const UNREAD: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM mailbox_entries \
    WHERE principal = $1 AND folder = 'inbox' AND archived = FALSE AND seen = FALSE LIMIT $2) AS u";
pub(super) const SET_FLAGS: &str = "UPDATE mailbox_entries SET seen = COALESCE($3, seen), \
    flagged = COALESCE($4, flagged), archived = COALESCE($5, archived) WHERE envelope_id = $1 AND principal = $2";
/// The clear metadata of every entry claimed with this lease, in one query.
pub(super) const CLAIMED_HEADS: &str = "SELECT e.id, e.kind, e.sender_id, e.sender_facility, \
    e.created_at, substr(e.body, 1, 0) AS body, e.body_size, e.blind_index, e.consent_obtained_on, \
    e.consent_method, e.consent_obtained_by, e.thread_id, e.step, e.thread_seq, \
    e.consent_given_by, e.consent_relation \
    FROM envelopes e JOIN delivery_queue q ON q.envelope_id = e.id \
    WHERE q.lease_until = $1 AND q.state = 'pending'";
pub(super) const CLAIMED_SLOTS: &str = "SELECT s.envelope_id, s.principal, s.added_by, s.added_at \
    FROM envelope_slots s JOIN delivery_queue q ON q.envelope_id = s.envelope_id \
    WHERE q.lease_until = $1 AND q.state = 'pending' ORDER BY s.envelope_id, s.added_at, s.principal";
pub(super) const COUNT: &str = "SELECT COUNT(*) FROM delivery_queue WHERE state = $1";

#[async_trait::async_trait]
impl<DB: Dialect> QueueStore for SqlStore<DB>
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
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<QueueEntry>> {
        Ok(sqlx::query_as::<_, QueueEntry>(&DELIVERIES.claim::<DB>())
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.writer)
            .await?)
    }

    async fn claimed(&self, lease_until: i64) -> StoreResult<(Vec<EnvelopeRow>, Vec<SlotRow>)> {
        let heads = sqlx::query_as::<_, EnvelopeRow>(CLAIMED_HEADS)
            .bind(lease_until)
            .fetch_all(&self.pool)
            .await?;
        let slots = sqlx::query_as::<_, SlotRow>(CLAIMED_SLOTS)
            .bind(lease_until)
            .fetch_all(&self.pool)
            .await?;
        Ok((heads, slots))
    }

    async fn complete_delivery(
        &self,
        envelope_id: &str,
        entries: &[MailboxEntryRow],
        notices: &[NotificationRow],
        now: i64,
    ) -> StoreResult<()> {
        self.complete_deliveries(
            &[Completion {
                envelope_id: envelope_id.to_string(),
                entries: entries.to_vec(),
                notices: notices.to_vec(),
            }],
            now,
        )
        .await
    }

    async fn complete_deliveries(&self, batch: &[Completion], now: i64) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = batch.iter().map(|c| c.envelope_id.as_str()).collect();
        let mut tx = self.writer.begin().await?;
        Self::insert_entries(&mut tx, batch.iter().flat_map(|c| c.entries.iter())).await?;
        Self::insert_notifications(&mut tx, batch.iter().flat_map(|c| c.notices.iter())).await?;
        for chunk in ids.chunks(500) {
            let n = chunk.len();
            let done = format!(
                "UPDATE delivery_queue SET state = 'done', lease_until = NULL, delivered_at = ${} \
                 WHERE envelope_id IN ({})",
                n + 1,
                list(n)
            );
            let mut q = sqlx::query(&done);
            for id in chunk {
                q = q.bind(*id);
            }
            q.bind(now).execute(&mut *tx).await?;
            // The first delivery moves a thread from `sent` to `delivered`.
            let threads = format!(
                "UPDATE threads SET delivered_at = COALESCE(delivered_at, ${}), \
                 state = CASE WHEN state = 'sent' THEN 'delivered' ELSE state END \
                 WHERE id IN (SELECT thread_id FROM envelopes WHERE id IN ({}) \
                 AND thread_id IS NOT NULL)",
                n + 1,
                list(n)
            );
            let mut q = sqlx::query(&threads);
            for id in chunk {
                q = q.bind(*id);
            }
            q.bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn reject_delivery(
        &self,
        envelope_id: &str,
        sender_entries: &[MailboxEntryRow],
        notices: &[NotificationRow],
        attempts: i64,
        reason: &str,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        Self::insert_entries(&mut tx, sender_entries).await?;
        Self::insert_notifications(&mut tx, notices).await?;
        sqlx::query(&DELIVERIES.fail())
            .bind(envelope_id)
            .bind(attempts)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn defer_delivery(
        &self,
        envelope_id: &str,
        attempts: i64,
        next_attempt_at: Option<i64>,
        error: &str,
    ) -> StoreResult<()> {
        self.defer_leased(&DELIVERIES, envelope_id, attempts, next_attempt_at, error)
            .await
    }

    async fn delivery_status(&self, envelope_id: &str) -> StoreResult<Option<DeliveryStatus>> {
        Ok(sqlx::query_as::<_, DeliveryStatus>(STATUS)
            .bind(envelope_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn insert_mailbox_entry(&self, e: &MailboxEntryRow) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
        Self::insert_entries(&mut conn, [e]).await
    }

    async fn mailbox(
        &self,
        principal: &str,
        folder: &str,
        archived: bool,
    ) -> StoreResult<Vec<MailboxListing>> {
        Ok(sqlx::query_as::<_, MailboxListing>(MAILBOX)
            .bind(principal)
            .bind(folder)
            .bind(archived)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn mailbox_listing(&self, q: &ListingQuery<'_>) -> StoreResult<ListingPage> {
        let sql = listing_page(q, DB::PAGE_AGGREGATE);
        // The parameters of `listing`, in its order.
        let mut query = sqlx::query_as::<_, (Option<String>, i64)>(&sql).bind(q.principal);
        if let Some(f) = q.folder {
            query = query.bind(f);
        }
        if let Some(a) = q.archived {
            query = query.bind(a);
        }
        if let Some(k) = q.kind {
            query = query.bind(k);
        }
        if let Some(s) = q.thread_state {
            query = query.bind(s);
        }
        let (rows, unread) = query
            .bind(q.limit)
            .bind(q.offset)
            .bind(q.unread_cap)
            .fetch_one(&self.pool)
            .await?;
        Ok(ListingPage {
            rows: page_rows(rows.as_deref())?,
            unread,
        })
    }

    async fn unread_count(&self, principal: &str, cap: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(UNREAD)
            .bind(principal)
            .bind(cap)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn set_flags(
        &self,
        envelope_id: &str,
        principal: &str,
        seen: Option<bool>,
        flagged: Option<bool>,
        archived: Option<bool>,
    ) -> StoreResult<()> {
        let done = sqlx::query(SET_FLAGS)
            .bind(envelope_id)
            .bind(principal)
            .bind(seen)
            .bind(flagged)
            .bind(archived)
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }

    async fn count_deliveries(&self, state: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(COUNT)
            .bind(state)
            .fetch_one(&self.pool)
            .await?)
    }
}
