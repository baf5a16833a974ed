//! The embedded default: one SQLite file in WAL mode inside the data folder.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::rows;
use super::sql::{self, expect_one, impl_portable_store};
use super::vault::{
    AccountKeyRow, AttachmentRow, EnvelopeMeta, EnvelopeRow, FacilityKeyRow, GrantRow, SlotRow,
};
use super::vault_sql::{self, impl_vault_store};
use super::{FailedLogin, SessionRecord, StoreError, StoreResult};
use crate::account::{Account, AccountId};
use crate::facility::{Facility, FacilityCode};
use crate::password::PasswordDigest;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file. Admin commands open the same
    /// file while `serve` runs; WAL and a generous busy timeout make that safe.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(StoreError::from)?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

impl_vault_store!(SqliteStore);
impl_portable_store!(SqliteStore, "sqlite");
