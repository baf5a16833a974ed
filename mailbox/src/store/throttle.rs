//! Failed sign-ins and known devices, in the database so every node shares
//! them: the statements and their implementation for [`SqlStore`].
//!
//! Keys are opaque (SHA-256 hex of what is counted); see
//! `auth::sign_in` for what they stand for.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::StoreResult;
use super::backend::{Dialect, SqlStore};

/// One counter: failures since `first_at`, the latest at `last_at` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ThrottleRow {
    pub key: String,
    pub failures: i64,
    pub first_at: i64,
    pub last_at: i64,
}

/// When a counter starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// When its window (from the first failure) has passed.
    WindowStartedBefore(i64),
    /// When it has been quiet (no failure) since.
    QuietSince(i64),
}

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// The counters among `keys` that exist.
    async fn throttle(&self, keys: &[&str]) -> StoreResult<Vec<ThrottleRow>>;
    /// Counts one failure under `key` in one statement, so concurrent attempts
    /// on several nodes cannot undercount.
    async fn throttle_failed(&self, key: &str, now: i64, reset: Reset) -> StoreResult<ThrottleRow>;
    async fn throttle_clear(&self, key: &str) -> StoreResult<()>;
    /// Forgets counters whose last failure is older than `before`.
    async fn purge_throttle(&self, before: i64) -> StoreResult<u64>;

    /// Remembers a device (its cookie's token hash) for an account.
    async fn remember_device(&self, token_hash: &[u8], account: &str, now: i64) -> StoreResult<()>;
    /// Whether the device signed in to the account before (and not before
    /// `since`); touches it when it did.
    async fn device_known(
        &self,
        token_hash: &[u8],
        account: &str,
        since: i64,
        now: i64,
    ) -> StoreResult<bool>;
    /// Forgets every device of an account (password reset, removal).
    async fn forget_devices(&self, account: &str) -> StoreResult<()>;
}

const COLUMNS: &str = "key, failures, first_at, last_at";

fn failed(reset_column: &str) -> String {
    format!(
        "INSERT INTO sign_in_throttle ({COLUMNS}) VALUES ($1, 1, $2, $2) \
         ON CONFLICT (key) DO UPDATE SET \
         failures = CASE WHEN sign_in_throttle.{reset_column} < $3 THEN 1 \
             ELSE sign_in_throttle.failures + 1 END, \
         first_at = CASE WHEN sign_in_throttle.{reset_column} < $3 THEN $2 \
             ELSE sign_in_throttle.first_at END, \
         last_at = $2 \
         RETURNING {COLUMNS}"
    )
}
const CLEAR: &str = "DELETE FROM sign_in_throttle WHERE key = $1";
const PURGE: &str = "DELETE FROM sign_in_throttle WHERE last_at < $1";
const REMEMBER_DEVICE: &str = "INSERT INTO sign_in_devices \
    (token_hash, account_id, created_at, last_used_at) VALUES ($1, $2, $3, $3) \
    ON CONFLICT (token_hash, account_id) DO UPDATE SET last_used_at = excluded.last_used_at";
const DEVICE_KNOWN: &str = "UPDATE sign_in_devices SET last_used_at = $4 \
    WHERE token_hash = $1 AND account_id = $2 AND last_used_at >= $3";
const FORGET_DEVICES: &str = "DELETE FROM sign_in_devices WHERE account_id = $1";

#[async_trait]
impl<DB: Dialect> ThrottleStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'r> String: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> i64: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn throttle(&self, keys: &[&str]) -> StoreResult<Vec<ThrottleRow>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM sign_in_throttle WHERE key IN ({})",
            super::list(keys.len())
        );
        let mut q = sqlx::query_as::<_, ThrottleRow>(&sql);
        for k in keys {
            q = q.bind(*k);
        }
        Ok(q.fetch_all(&self.pool).await?)
    }

    async fn throttle_failed(&self, key: &str, now: i64, reset: Reset) -> StoreResult<ThrottleRow> {
        let (column, before) = match reset {
            Reset::WindowStartedBefore(t) => ("first_at", t),
            Reset::QuietSince(t) => ("last_at", t),
        };
        Ok(sqlx::query_as::<_, ThrottleRow>(&failed(column))
            .bind(key)
            .bind(now)
            .bind(before)
            .fetch_one(&self.writer)
            .await?)
    }

    async fn throttle_clear(&self, key: &str) -> StoreResult<()> {
        sqlx::query(CLEAR).bind(key).execute(&self.writer).await?;
        Ok(())
    }

    async fn purge_throttle(&self, before: i64) -> StoreResult<u64> {
        let done = sqlx::query(PURGE)
            .bind(before)
            .execute(&self.writer)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    async fn remember_device(&self, token_hash: &[u8], account: &str, now: i64) -> StoreResult<()> {
        sqlx::query(REMEMBER_DEVICE)
            .bind(token_hash)
            .bind(account)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn device_known(
        &self,
        token_hash: &[u8],
        account: &str,
        since: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(DEVICE_KNOWN)
            .bind(token_hash)
            .bind(account)
            .bind(since)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn forget_devices(&self, account: &str) -> StoreResult<()> {
        sqlx::query(FORGET_DEVICES)
            .bind(account)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
