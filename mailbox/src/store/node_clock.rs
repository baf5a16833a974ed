//! The nodes' clock readings, for the trusted-time check (`crate::timesync`):
//! the database server's own clock, and each node's offset to it.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::StoreResult;
use super::backend::{Dialect, SqlStore};

#[async_trait]
pub trait NodeClockStore: Send + Sync {
    /// The database server's clock, in Unix milliseconds (on SQLite the
    /// process's own clock: one node cannot disagree with itself).
    async fn database_now_millis(&self) -> StoreResult<i64>;
    /// Stores `node`'s offset to the database clock (ms) as seen at `seen_at`
    /// (database ms), and returns the offsets other nodes stored since `since`.
    async fn report_node_clock(
        &self,
        node: &str,
        offset_ms: i64,
        seen_at: i64,
        since: i64,
    ) -> StoreResult<Vec<i64>>;
}

/// The database clock: PostgreSQL's `clock_timestamp()` (the time of the
/// statement, not of its transaction); SQLite's `julianday('now')`.
fn now_millis_sql<DB: Dialect>() -> &'static str {
    if DB::BACKEND == "postgres" {
        "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    } else {
        "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
    }
}

const UPSERT: &str = "INSERT INTO node_clocks (node, offset_ms, seen_at) VALUES ($1, $2, $3) \
    ON CONFLICT (node) DO UPDATE SET offset_ms = excluded.offset_ms, seen_at = excluded.seen_at";
const OTHERS: &str = "SELECT offset_ms FROM node_clocks WHERE node <> $1 AND seen_at >= $2";
/// Rows of nodes gone for a day.
const PRUNE: &str = "DELETE FROM node_clocks WHERE seen_at < $1";

#[async_trait]
impl<DB: Dialect> NodeClockStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> i64: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn database_now_millis(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(now_millis_sql::<DB>())
            .fetch_one(&self.pool)
            .await?)
    }

    async fn report_node_clock(
        &self,
        node: &str,
        offset_ms: i64,
        seen_at: i64,
        since: i64,
    ) -> StoreResult<Vec<i64>> {
        sqlx::query(UPSERT)
            .bind(node)
            .bind(offset_ms)
            .bind(seen_at)
            .execute(&self.writer)
            .await?;
        sqlx::query(PRUNE)
            .bind(seen_at - 86_400_000)
            .execute(&self.writer)
            .await?;
        Ok(sqlx::query_scalar::<_, i64>(OTHERS)
            .bind(node)
            .bind(since)
            .fetch_all(&self.pool)
            .await?)
    }
}
