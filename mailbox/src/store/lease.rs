//! The leased queues: the delivery queue and the notification rows are worked
//! the same way (claim due rows with a lease, then done, deferred with back-off
//! or failed), so their statements are written once from a description of each
//! table. The back-off itself is `crate::queue::BackOff`.

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::StoreResult;
use super::backend::{Dialect, SqlStore};

pub(super) const NOTIFICATION_COLUMNS: &str = "id, dedup_key, account_id, reason, kind, thread_id, \
    envelope_id, facility_code, to_address, secret, digest, state, attempts, next_attempt_at, \
    last_error, created_at, sent_at";

/// One table worked as a leased queue.
pub(super) struct Leased {
    table: &'static str,
    key: &'static str,
    /// Further condition on due rows; its parameters are numbered from `$3`.
    filter: &'static str,
    order: &'static str,
    /// The parameter number of the claim's `LIMIT`.
    limit_param: usize,
    /// What a claim returns of each row.
    returning: &'static str,
    /// Columns cleared when a row fails for good (with a trailing comma).
    clear_on_fail: &'static str,
}

/// The delivery queue: one row per submitted envelope.
pub(super) const DELIVERIES: Leased = Leased {
    table: "delivery_queue",
    key: "envelope_id",
    filter: "",
    order: "next_attempt_at",
    limit_param: 3,
    returning: "envelope_id, attempts",
    clear_on_fail: "",
};

/// Notification mails; `$3` picks immediate rows or digest lines. A failed
/// row's confirmation secret goes with it.
pub(super) const NOTIFICATIONS: Leased = Leased {
    table: "notifications",
    key: "id",
    filter: " AND digest = $3",
    order: "next_attempt_at, id",
    limit_param: 4,
    returning: NOTIFICATION_COLUMNS,
    clear_on_fail: " secret = NULL,",
};

/// A new delivery-queue row, due at once (`$2` is now).
pub(super) const INSERT_DELIVERY: &str = "INSERT INTO delivery_queue \
    (envelope_id, state, attempts, next_attempt_at, created_at) VALUES ($1, 'pending', 0, $2, $2)";

impl Leased {
    /// Leases due pending rows until `$1` (`$2` is now), oldest due first; the
    /// dialect decides how concurrent claimers stay apart.
    pub(super) fn claim<DB: Dialect>(&self) -> String {
        let Self {
            table,
            key,
            filter,
            order,
            limit_param,
            returning,
            ..
        } = self;
        format!(
            "UPDATE {table} SET lease_until = $1 WHERE {key} IN \
             (SELECT {key} FROM {table} WHERE state = 'pending' AND next_attempt_at <= $2 \
             AND (lease_until IS NULL OR lease_until < $2){filter} ORDER BY {order} \
             LIMIT ${limit_param}{}) RETURNING {returning}",
            DB::SKIP_LOCKED
        )
    }

    /// Another attempt at `$3`, after `$2` attempts; `$4` is the last error.
    fn defer(&self) -> String {
        format!(
            "UPDATE {} SET attempts = $2, next_attempt_at = $3, lease_until = NULL, \
             last_error = $4 WHERE {} = $1",
            self.table, self.key
        )
    }

    /// Failed for good after `$2` attempts, with the reason `$3`.
    pub(super) fn fail(&self) -> String {
        format!(
            "UPDATE {} SET state = 'failed', attempts = $2, lease_until = NULL,{} \
             last_error = $3 WHERE {} = $1",
            self.table, self.clear_on_fail, self.key
        )
    }
}

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
    /// Schedules another attempt of a leased row, or marks it failed when
    /// `next_attempt_at` is `None`; either way the lease ends.
    pub(super) async fn defer_leased(
        &self,
        queue: &Leased,
        key: &str,
        attempts: i64,
        next_attempt_at: Option<i64>,
        error: &str,
    ) -> StoreResult<()> {
        match next_attempt_at {
            Some(at) => {
                sqlx::query(&queue.defer())
                    .bind(key)
                    .bind(attempts)
                    .bind(at)
                    .bind(error)
                    .execute(&self.writer)
                    .await?
            }
            None => {
                sqlx::query(&queue.fail())
                    .bind(key)
                    .bind(attempts)
                    .bind(error)
                    .execute(&self.writer)
                    .await?
            }
        };
        Ok(())
    }
}
