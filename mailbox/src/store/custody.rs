//! Keys that survive people (`crate::keys::custody`): each person's decryption
//! halves sealed to their facility's custodian key, the restorations waiting
//! for a liaison, the earlier keys given back; and the oversight slots a
//! facility's history gains (`crate::keys::history`). Opaque bytes only.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::StoreResult;
use super::backend::{Dialect, SqlStore};
use super::vault::SlotRow;

/// One key a person has had, its decryption half sealed to the custodian key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CustodyRow {
    pub account_id: String,
    /// The key slot ID of that key (its encryption subkey's fingerprint).
    pub key_id: String,
    pub facility_code: String,
    /// The custodian certificate it is sealed to.
    pub custodian_fingerprint: String,
    pub sealed: Vec<u8>,
    pub created_at: i64,
}

/// A reset that replaced a person's key, waiting for (or given) approval.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RestorationRow {
    pub account_id: String,
    pub facility_code: String,
    pub requested_at: i64,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
}

/// An earlier decryption half given back, sealed to the person's key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PreviousKeyRow {
    pub account_id: String,
    pub key_id: String,
    /// Fingerprint of the person's certificate it is sealed to.
    pub sealed_to: String,
    pub sealed: Vec<u8>,
    pub created_at: i64,
}

#[async_trait]
pub trait CustodyStore: Send + Sync {
    async fn custody_keys_of(&self, account: &str) -> StoreResult<Vec<CustodyRow>>;
    /// Inserts or replaces the row of (account, key).
    async fn put_custody_key(&self, row: &CustodyRow) -> StoreResult<()>;
    /// Records a restoration request; a newer one replaces an earlier (even approved) one.
    async fn request_restoration(&self, row: &RestorationRow) -> StoreResult<()>;
    async fn restoration(&self, account: &str) -> StoreResult<Option<RestorationRow>>;
    /// Requests not approved yet, of one facility.
    async fn pending_restorations(&self, facility: &str) -> StoreResult<Vec<RestorationRow>>;
    /// Marks the request approved and stores the keys given back, in one
    /// transaction; false if it was not pending (approved meanwhile, or gone).
    async fn approve_restoration(
        &self,
        account: &str,
        by: &str,
        at: i64,
        keys: &[PreviousKeyRow],
    ) -> StoreResult<bool>;
    async fn previous_keys_of(&self, account: &str) -> StoreResult<Vec<PreviousKeyRow>>;
    /// Envelopes with a slot for `have` and none for `missing`, oldest first.
    async fn envelopes_missing_slot(
        &self,
        have: &str,
        missing: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>>;
    /// Writes a body with one more key slot, unless the body changed since it
    /// was read (its length differs: every added slot makes it longer).
    async fn add_slot_if_unchanged(
        &self,
        old_len: i64,
        body: &[u8],
        slot: &SlotRow,
    ) -> StoreResult<bool>;
}

const CUSTODY_OF: &str = "SELECT account_id, key_id, facility_code, custodian_fingerprint, sealed, \
    created_at FROM custody_keys WHERE account_id = $1 ORDER BY created_at, key_id";
const PUT_CUSTODY: &str = "INSERT INTO custody_keys (account_id, key_id, facility_code, \
    custodian_fingerprint, sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (account_id, key_id) DO UPDATE SET facility_code = $3, \
    custodian_fingerprint = $4, sealed = $5, created_at = $6";
const REQUEST: &str = "INSERT INTO key_restorations (account_id, facility_code, requested_at, \
    approved_by, approved_at) VALUES ($1, $2, $3, NULL, NULL) ON CONFLICT (account_id) DO UPDATE \
    SET facility_code = $2, requested_at = $3, approved_by = NULL, approved_at = NULL";
const RESTORATION_COLUMNS: &str =
    "account_id, facility_code, requested_at, approved_by, approved_at";
const APPROVE: &str = "UPDATE key_restorations SET approved_by = $2, approved_at = $3 \
    WHERE account_id = $1 AND approved_at IS NULL";
const PUT_PREVIOUS: &str = "INSERT INTO previous_keys (account_id, key_id, sealed_to, sealed, \
    created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, key_id) DO UPDATE \
    SET sealed_to = $3, sealed = $4, created_at = $5";
const PREVIOUS_OF: &str = "SELECT account_id, key_id, sealed_to, sealed, created_at \
    FROM previous_keys WHERE account_id = $1 ORDER BY created_at, key_id";
const MISSING_SLOT: &str = "SELECT e.id FROM envelopes e \
    JOIN envelope_slots s ON s.envelope_id = e.id AND s.principal = $1 \
    WHERE NOT EXISTS (SELECT 1 FROM envelope_slots o WHERE o.envelope_id = e.id AND o.principal = $2) \
    ORDER BY e.created_at, e.id LIMIT $3";
const SET_BODY_IF: &str =
    "UPDATE envelopes SET body = $3, body_size = $4 WHERE id = $1 AND length(body) = $2";
const INSERT_SLOT: &str = "INSERT INTO envelope_slots (envelope_id, principal, added_by, added_at) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (envelope_id, principal) DO NOTHING";

#[async_trait]
impl<DB: Dialect> CustodyStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'r> String: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> i64: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn custody_keys_of(&self, account: &str) -> StoreResult<Vec<CustodyRow>> {
        Ok(sqlx::query_as::<_, CustodyRow>(CUSTODY_OF)
            .bind(account)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn put_custody_key(&self, r: &CustodyRow) -> StoreResult<()> {
        sqlx::query(PUT_CUSTODY)
            .bind(r.account_id.as_str())
            .bind(r.key_id.as_str())
            .bind(r.facility_code.as_str())
            .bind(r.custodian_fingerprint.as_str())
            .bind(r.sealed.as_slice())
            .bind(r.created_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn request_restoration(&self, r: &RestorationRow) -> StoreResult<()> {
        sqlx::query(REQUEST)
            .bind(r.account_id.as_str())
            .bind(r.facility_code.as_str())
            .bind(r.requested_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn restoration(&self, account: &str) -> StoreResult<Option<RestorationRow>> {
        let sql =
            format!("SELECT {RESTORATION_COLUMNS} FROM key_restorations WHERE account_id = $1");
        Ok(sqlx::query_as::<_, RestorationRow>(&sql)
            .bind(account)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn pending_restorations(&self, facility: &str) -> StoreResult<Vec<RestorationRow>> {
        let sql = format!(
            "SELECT {RESTORATION_COLUMNS} FROM key_restorations \
             WHERE facility_code = $1 AND approved_at IS NULL ORDER BY requested_at, account_id"
        );
        Ok(sqlx::query_as::<_, RestorationRow>(&sql)
            .bind(facility)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn approve_restoration(
        &self,
        account: &str,
        by: &str,
        at: i64,
        keys: &[PreviousKeyRow],
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(APPROVE)
            .bind(account)
            .bind(by)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) != 1 {
            return Ok(false);
        }
        for k in keys {
            sqlx::query(PUT_PREVIOUS)
                .bind(k.account_id.as_str())
                .bind(k.key_id.as_str())
                .bind(k.sealed_to.as_str())
                .bind(k.sealed.as_slice())
                .bind(k.created_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn previous_keys_of(&self, account: &str) -> StoreResult<Vec<PreviousKeyRow>> {
        Ok(sqlx::query_as::<_, PreviousKeyRow>(PREVIOUS_OF)
            .bind(account)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn envelopes_missing_slot(
        &self,
        have: &str,
        missing: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar::<_, String>(MISSING_SLOT)
            .bind(have)
            .bind(missing)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn add_slot_if_unchanged(
        &self,
        old_len: i64,
        body: &[u8],
        slot: &SlotRow,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(SET_BODY_IF)
            .bind(slot.envelope_id.as_str())
            .bind(old_len)
            .bind(body)
            .bind(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) != 1 {
            return Ok(false);
        }
        sqlx::query(INSERT_SLOT)
            .bind(slot.envelope_id.as_str())
            .bind(slot.principal.as_str())
            .bind(slot.added_by.clone())
            .bind(slot.added_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
