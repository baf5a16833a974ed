//! Statements of [`NotifyStore`] (the notification rows' lease is in
//! [`super::lease`]) and its implementation for [`SqlStore`].

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::StoreResult;
use super::backend::{Dialect, SqlStore, expect_one};
use super::lease::{NOTIFICATION_COLUMNS, NOTIFICATIONS};
use super::notify::{NotificationRow, NotifySettings, NotifyStore, NotifyTarget, UnopenedThread};

pub(super) const NOTIFY_TARGET: &str = "SELECT id AS account_id, email, notify_mode FROM accounts \
    WHERE id = $1 AND email IS NOT NULL AND email_verified AND NOT removed AND notify_mode <> 'off'";
pub(super) const FACILITY_NOTIFY_TARGETS: &str = "SELECT id AS account_id, email, notify_mode \
    FROM accounts WHERE facility_code = $1 AND role = $2 AND email IS NOT NULL AND email_verified \
    AND NOT removed AND notify_mode <> 'off' ORDER BY id";
pub(super) const SENT: &str = "UPDATE notifications SET state = 'sent', sent_at = $2, secret = NULL, \
    lease_until = NULL, last_error = NULL WHERE id = $1";
pub(super) const DROP: &str = "UPDATE notifications SET state = 'dropped', lease_until = NULL, \
    secret = NULL, last_error = $2 WHERE id = $1";
pub(super) const COUNT: &str = "SELECT COUNT(*) FROM notifications WHERE state = $1";
pub(super) fn failed_of() -> String {
    format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE state = 'failed' AND account_id = $1 \
         ORDER BY created_at DESC, id"
    )
}
pub(super) fn failed_all() -> String {
    format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE state = 'failed' \
         ORDER BY created_at DESC, id"
    )
}

pub(super) const SETTINGS: &str =
    "SELECT email, email_verified, pending_email, notify_mode FROM accounts WHERE id = $1";
pub(super) const SET_MODE: &str = "UPDATE accounts SET notify_mode = $2 WHERE id = $1";
pub(super) const SET_PENDING_EMAIL: &str = "UPDATE accounts SET pending_email = $2, \
    email_token_hash = $3, email_token_expires = $4 WHERE id = $1";
/// A new account's first address is confirmed in place; a change swaps the
/// pending address in.
pub(super) const CONFIRM_EMAIL: &str = "UPDATE accounts SET email = pending_email, \
    email_verified = TRUE, pending_email = NULL, email_token_hash = NULL, email_token_expires = NULL \
    WHERE email_token_hash = $1 AND email_token_expires > $2 AND pending_email IS NOT NULL \
    RETURNING id";
pub(super) const RECORD_SIGN_IN: &str = "UPDATE accounts SET last_sign_in_at = $2 WHERE id = $1";

pub(super) const UNOPENED: &str = "SELECT t.id AS thread_id, t.kind, t.opener_id, \
    t.target_facility, t.requester_facility, t.delivered_at FROM threads t \
    JOIN facilities f ON f.code = t.target_facility \
    WHERE t.opened_at IS NULL AND t.escalated_at IS NULL AND t.closed_at IS NULL \
    AND t.delivered_at IS NOT NULL AND t.delivered_at + f.escalation_hours * 3600000 <= $1 \
    ORDER BY t.delivered_at, t.id LIMIT 500";
pub(super) const MARK_ESCALATED: &str = "UPDATE threads SET escalated_at = $2 \
    WHERE id = $1 AND escalated_at IS NULL AND opened_at IS NULL";
pub(super) const SET_ESCALATION_HOURS: &str =
    "UPDATE facilities SET escalation_hours = $2 WHERE code = $1";

#[async_trait::async_trait]
impl<DB: Dialect> NotifyStore for SqlStore<DB>
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
    async fn notify_target(&self, account_id: &str) -> StoreResult<Option<NotifyTarget>> {
        Ok(sqlx::query_as::<_, NotifyTarget>(NOTIFY_TARGET)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn facility_notify_targets(
        &self,
        facility: &str,
        role: &str,
    ) -> StoreResult<Vec<NotifyTarget>> {
        Ok(sqlx::query_as::<_, NotifyTarget>(FACILITY_NOTIFY_TARGETS)
            .bind(facility)
            .bind(role)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn queue_notifications(&self, rows: &[NotificationRow]) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
        Self::insert_notifications(&mut conn, rows).await
    }

    async fn claim_notifications(
        &self,
        now: i64,
        lease_until: i64,
        digest: bool,
        limit: i64,
    ) -> StoreResult<Vec<NotificationRow>> {
        Ok(
            sqlx::query_as::<_, NotificationRow>(&NOTIFICATIONS.claim::<DB>())
                .bind(lease_until)
                .bind(now)
                .bind(digest)
                .bind(limit)
                .fetch_all(&self.writer)
                .await?,
        )
    }

    async fn notification_sent(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(SENT)
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn defer_notification(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: Option<i64>,
        error: &str,
    ) -> StoreResult<()> {
        self.defer_leased(&NOTIFICATIONS, id, attempts, next_attempt_at, error)
            .await
    }

    async fn drop_notification(&self, id: &str, reason: &str) -> StoreResult<()> {
        sqlx::query(DROP)
            .bind(id)
            .bind(reason)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn failed_notifications(
        &self,
        account_id: Option<&str>,
    ) -> StoreResult<Vec<NotificationRow>> {
        Ok(match account_id {
            Some(id) => {
                sqlx::query_as::<_, NotificationRow>(&failed_of())
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_as::<_, NotificationRow>(&failed_all())
                    .fetch_all(&self.pool)
                    .await?
            }
        })
    }

    async fn count_notifications(&self, state: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(COUNT)
            .bind(state)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn notify_settings(&self, account_id: &str) -> StoreResult<Option<NotifySettings>> {
        Ok(sqlx::query_as::<_, NotifySettings>(SETTINGS)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_notify_mode(&self, account_id: &str, mode: &str) -> StoreResult<()> {
        let done = sqlx::query(SET_MODE)
            .bind(account_id)
            .bind(mode)
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }

    async fn set_pending_email(
        &self,
        account_id: &str,
        address: &str,
        token_hash: &[u8],
        expires_at: i64,
        confirmation: &NotificationRow,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(SET_PENDING_EMAIL)
            .bind(account_id)
            .bind(address)
            .bind(token_hash)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        expect_one(DB::rows_affected(&done))?;
        Self::insert_notifications(&mut tx, [confirmation]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn confirm_email(&self, token_hash: &[u8], now: i64) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar::<_, String>(CONFIRM_EMAIL)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.writer)
            .await?)
    }

    async fn record_sign_in(&self, account_id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(RECORD_SIGN_IN)
            .bind(account_id)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn unopened_threads(&self, now: i64) -> StoreResult<Vec<UnopenedThread>> {
        Ok(sqlx::query_as::<_, UnopenedThread>(UNOPENED)
            .bind(now)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn escalate_thread(
        &self,
        thread_id: &str,
        now: i64,
        rows: &[NotificationRow],
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(MARK_ESCALATED)
            .bind(thread_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::insert_notifications(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_escalation_hours(&self, facility: &str, hours: i64) -> StoreResult<()> {
        let done = sqlx::query(SET_ESCALATION_HOURS)
            .bind(facility)
            .bind(hours)
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }
}
