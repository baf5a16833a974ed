//! PostgreSQL, for larger networks and several server nodes sharing one database.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn open(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(StoreError::from)?;
        // Migrations take an advisory lock, so nodes starting together do not race.
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

impl_vault_store!(PgStore);
impl_portable_store!(PgStore, "postgres");
