//! PostgreSQL, for larger networks and several server nodes sharing one database.
//!
//! Queue claims add `FOR UPDATE SKIP LOCKED`, so several nodes' workers share
//! one queue without waiting on each other's rows.

use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{PgPoolOptions, PgQueryResult};

use super::backend::{Dialect, SqlStore};
use super::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The store on PostgreSQL: its writer is the same pool (PostgreSQL takes
/// concurrent writers and commits concurrent transactions together by itself).
pub type PgStore = SqlStore<Postgres>;

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";
    /// Nodes sharing the database skip rows another node is claiming right now.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const PAGE_AGGREGATE: (&'static str, &'static str) = ("json_agg", "json_build_array");
    /// `pg_dump` takes the consistent copy instead.
    const SNAPSHOT: Option<&'static str> = None;
    /// A transaction-local setting the trigger reads; it ends with the transaction.
    const AUDIT_DOOR: (&'static str, Option<&'static str>) = (
        "SELECT set_config('renkei.audit_retention', 'on', true)",
        None,
    );

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}

impl SqlStore<Postgres> {
    pub async fn open(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(StoreError::from)?;
        // Migrations take an advisory lock, so nodes starting together do not race.
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            writer: pool.clone(),
            pool,
            group: None,
        })
    }
}
