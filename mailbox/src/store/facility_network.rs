//! The networks a facility's accounts may sign in from (`crate::auth::networks`):
//! CIDR ranges as text, checked before they are stored.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::StoreResult;
use super::backend::{Dialect, SqlStore};

#[async_trait]
pub trait FacilityNetworkStore: Send + Sync {
    /// The facility's ranges, in order; empty when it has none (no limit).
    async fn facility_networks(&self, facility: &str) -> StoreResult<Vec<String>>;
    /// Replaces the facility's ranges (empty: no limit) in one transaction.
    async fn set_facility_networks(&self, facility: &str, cidrs: &[String]) -> StoreResult<()>;
}

const LIST: &str = "SELECT cidr FROM facility_networks WHERE facility = $1 ORDER BY cidr";
const CLEAR: &str = "DELETE FROM facility_networks WHERE facility = $1";
const ADD: &str = "INSERT INTO facility_networks (facility, cidr) VALUES ($1, $2) \
    ON CONFLICT (facility, cidr) DO NOTHING";

#[async_trait]
impl<DB: Dialect> FacilityNetworkStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn facility_networks(&self, facility: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar::<_, String>(LIST)
            .bind(facility)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn set_facility_networks(&self, facility: &str, cidrs: &[String]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(CLEAR).bind(facility).execute(&mut *tx).await?;
        for cidr in cidrs {
            sqlx::query(ADD)
                .bind(facility)
                .bind(cidr.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
