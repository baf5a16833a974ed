//! Statements of [`FactorStore`] and its implementation for [`SqlStore`].

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::StoreResult;
use super::backend::{Dialect, SqlStore, expect_one};
use super::factor::{AppPasswordRow, FactorStore, FactorSummaryRow, TotpRow, WebauthnRow};

pub(super) const TOTP: &str =
    "SELECT sealed_secret, pending_secret, last_step FROM totp_secrets WHERE account_id = $1";
pub(super) const SET_TOTP_PENDING: &str = "INSERT INTO totp_secrets \
    (account_id, sealed_secret, pending_secret, last_step, created_at) VALUES ($1, NULL, $2, 0, $3) \
    ON CONFLICT (account_id) DO UPDATE SET pending_secret = excluded.pending_secret";
pub(super) const CONFIRM_TOTP: &str = "UPDATE totp_secrets SET sealed_secret = pending_secret, \
    pending_secret = NULL, last_step = $2 WHERE account_id = $1 AND pending_secret IS NOT NULL";
pub(super) const USE_TOTP_STEP: &str = "UPDATE totp_secrets SET last_step = $2 \
    WHERE account_id = $1 AND last_step < $2 AND sealed_secret IS NOT NULL";
pub(super) const DELETE_TOTP: &str = "DELETE FROM totp_secrets WHERE account_id = $1";

pub(super) const DELETE_RECOVERY: &str = "DELETE FROM recovery_codes WHERE account_id = $1";
pub(super) const INSERT_RECOVERY: &str =
    "INSERT INTO recovery_codes (account_id, code_hash, used_at) VALUES ($1, $2, NULL)";
pub(super) const USE_RECOVERY: &str = "UPDATE recovery_codes SET used_at = $3 \
    WHERE account_id = $1 AND code_hash = $2 AND used_at IS NULL";
pub(super) const RECOVERY_LEFT: &str =
    "SELECT COUNT(*) FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL";

pub(super) const SET_HAS_SECOND_FACTOR: &str =
    "UPDATE accounts SET has_second_factor = $2 WHERE id = $1";

const APP_COLUMNS: &str = "id, account_id, name, secret_hash, locked_key, created_at, \
    last_used_at, last_used_from";
pub(super) fn insert_app_password() -> String {
    format!("INSERT INTO app_passwords ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
}
pub(super) fn app_passwords() -> String {
    format!("SELECT {APP_COLUMNS} FROM app_passwords WHERE account_id = $1 ORDER BY created_at, id")
}
pub(super) fn app_password_by_hash() -> String {
    format!("SELECT {APP_COLUMNS} FROM app_passwords WHERE account_id = $1 AND secret_hash = $2")
}
pub(super) const TOUCH_APP_PASSWORD: &str =
    "UPDATE app_passwords SET last_used_at = $2, last_used_from = $3 WHERE id = $1";
pub(super) const DELETE_APP_PASSWORD: &str =
    "DELETE FROM app_passwords WHERE account_id = $1 AND id = $2";
pub(super) const DELETE_APP_PASSWORDS_OF: &str = "DELETE FROM app_passwords WHERE account_id = $1";
pub(super) const SET_APP_PASSWORD_KEY: &str =
    "UPDATE app_passwords SET locked_key = $2 WHERE id = $1";

pub(super) const FACILITY_SECOND_FACTOR: &str =
    "SELECT required FROM facility_second_factor WHERE facility_code = $1";
pub(super) const SET_FACILITY_SECOND_FACTOR: &str = "INSERT INTO facility_second_factor \
    (facility_code, required) VALUES ($1, $2) \
    ON CONFLICT (facility_code) DO UPDATE SET required = excluded.required";
pub(super) const CLEAR_FACILITY_SECOND_FACTOR: &str =
    "DELETE FROM facility_second_factor WHERE facility_code = $1";

pub(super) const FACTOR_SUMMARIES: &str = "SELECT a.id AS account_id, \
    CASE WHEN t.sealed_secret IS NULL THEN FALSE ELSE TRUE END AS totp, \
    (SELECT COUNT(*) FROM recovery_codes r WHERE r.account_id = a.id AND r.used_at IS NULL) \
      AS recovery_codes_left, \
    (SELECT COUNT(*) FROM app_passwords p WHERE p.account_id = a.id) AS app_passwords, \
    (SELECT COUNT(*) FROM webauthn_credentials w WHERE w.account_id = a.id) AS security_keys \
    FROM accounts a LEFT JOIN totp_secrets t ON t.account_id = a.id ORDER BY a.id";

pub(super) const INSERT_WEBAUTHN: &str = "INSERT INTO webauthn_credentials \
    (id, account_id, name, passkey, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(super) const WEBAUTHN_OF: &str = "SELECT id, account_id, name, passkey, created_at, last_used_at \
    FROM webauthn_credentials WHERE account_id = $1 ORDER BY created_at, id";
pub(super) const UPDATE_WEBAUTHN: &str =
    "UPDATE webauthn_credentials SET passkey = $2, last_used_at = $3 WHERE id = $1";
pub(super) const RENAME_WEBAUTHN: &str =
    "UPDATE webauthn_credentials SET name = $3 WHERE account_id = $1 AND id = $2";
pub(super) const DELETE_WEBAUTHN: &str =
    "DELETE FROM webauthn_credentials WHERE account_id = $1 AND id = $2";
pub(super) const DELETE_WEBAUTHN_OF: &str =
    "DELETE FROM webauthn_credentials WHERE account_id = $1";

#[async_trait::async_trait]
impl<DB: Dialect> FactorStore for SqlStore<DB>
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
    async fn totp(&self, account: &str) -> StoreResult<Option<TotpRow>> {
        Ok(sqlx::query_as::<_, TotpRow>(TOTP)
            .bind(account)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_totp_pending(&self, account: &str, sealed: &[u8], now: i64) -> StoreResult<()> {
        sqlx::query(SET_TOTP_PENDING)
            .bind(account)
            .bind(sealed)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn confirm_totp(&self, account: &str, step: i64) -> StoreResult<()> {
        let done = sqlx::query(CONFIRM_TOTP)
            .bind(account)
            .bind(step)
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }

    async fn use_totp_step(&self, account: &str, step: i64) -> StoreResult<bool> {
        let done = sqlx::query(USE_TOTP_STEP)
            .bind(account)
            .bind(step)
            .execute(&self.writer)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn delete_totp(&self, account: &str) -> StoreResult<()> {
        sqlx::query(DELETE_TOTP)
            .bind(account)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn replace_recovery_codes(&self, account: &str, hashes: &[Vec<u8>]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(DELETE_RECOVERY)
            .bind(account)
            .execute(&mut *tx)
            .await?;
        for h in hashes {
            sqlx::query(INSERT_RECOVERY)
                .bind(account)
                .bind(h.as_slice())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn use_recovery_code(&self, account: &str, hash: &[u8], now: i64) -> StoreResult<bool> {
        let done = sqlx::query(USE_RECOVERY)
            .bind(account)
            .bind(hash)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn recovery_codes_left(&self, account: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(RECOVERY_LEFT)
            .bind(account)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn delete_recovery_codes(&self, account: &str) -> StoreResult<()> {
        sqlx::query(DELETE_RECOVERY)
            .bind(account)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn set_has_second_factor(&self, account: &str, has: bool) -> StoreResult<()> {
        let done = sqlx::query(SET_HAS_SECOND_FACTOR)
            .bind(account)
            .bind(has)
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }

    async fn insert_app_password(&self, r: &AppPasswordRow) -> StoreResult<()> {
        sqlx::query(&insert_app_password())
            .bind(&r.id)
            .bind(&r.account_id)
            .bind(&r.name)
            .bind(r.secret_hash.as_slice())
            .bind(r.locked_key.as_deref())
            .bind(r.created_at)
            .bind(r.last_used_at)
            .bind(r.last_used_from.as_deref())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn app_passwords(&self, account: &str) -> StoreResult<Vec<AppPasswordRow>> {
        Ok(sqlx::query_as::<_, AppPasswordRow>(&app_passwords())
            .bind(account)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn app_password_by_hash(
        &self,
        account: &str,
        hash: &[u8],
    ) -> StoreResult<Option<AppPasswordRow>> {
        // Read from the writer: a revocation must be seen by the very next
        // connection, without waiting for a reader to catch up.
        Ok(sqlx::query_as::<_, AppPasswordRow>(&app_password_by_hash())
            .bind(account)
            .bind(hash)
            .fetch_optional(&self.writer)
            .await?)
    }

    async fn touch_app_password(&self, id: &str, now: i64, from: Option<&str>) -> StoreResult<()> {
        sqlx::query(TOUCH_APP_PASSWORD)
            .bind(id)
            .bind(now)
            .bind(from)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn delete_app_password(&self, account: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query(DELETE_APP_PASSWORD)
            .bind(account)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn delete_app_passwords_of(&self, account: &str) -> StoreResult<u64> {
        let done = sqlx::query(DELETE_APP_PASSWORDS_OF)
            .bind(account)
            .execute(&self.writer)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    async fn set_app_password_key(&self, id: &str, locked_key: Option<&[u8]>) -> StoreResult<()> {
        sqlx::query(SET_APP_PASSWORD_KEY)
            .bind(id)
            .bind(locked_key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn facility_second_factor(&self, facility: &str) -> StoreResult<Option<bool>> {
        Ok(sqlx::query_scalar::<_, bool>(FACILITY_SECOND_FACTOR)
            .bind(facility)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_facility_second_factor(
        &self,
        facility: &str,
        required: Option<bool>,
    ) -> StoreResult<()> {
        match required {
            Some(r) => {
                sqlx::query(SET_FACILITY_SECOND_FACTOR)
                    .bind(facility)
                    .bind(r)
                    .execute(&self.writer)
                    .await?
            }
            None => {
                sqlx::query(CLEAR_FACILITY_SECOND_FACTOR)
                    .bind(facility)
                    .execute(&self.writer)
                    .await?
            }
        };
        Ok(())
    }

    async fn factor_summaries(&self) -> StoreResult<Vec<FactorSummaryRow>> {
        Ok(sqlx::query_as::<_, FactorSummaryRow>(FACTOR_SUMMARIES)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn insert_webauthn(&self, r: &WebauthnRow) -> StoreResult<()> {
        sqlx::query(INSERT_WEBAUTHN)
            .bind(&r.id)
            .bind(&r.account_id)
            .bind(&r.name)
            .bind(&r.passkey)
            .bind(r.created_at)
            .bind(r.last_used_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn webauthn_credentials(&self, account: &str) -> StoreResult<Vec<WebauthnRow>> {
        Ok(sqlx::query_as::<_, WebauthnRow>(WEBAUTHN_OF)
            .bind(account)
            .fetch_all(&self.writer)
            .await?)
    }

    async fn update_webauthn(&self, id: &str, passkey: &str, used_at: i64) -> StoreResult<()> {
        sqlx::query(UPDATE_WEBAUTHN)
            .bind(id)
            .bind(passkey)
            .bind(used_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn rename_webauthn(&self, account: &str, id: &str, name: &str) -> StoreResult<bool> {
        let done = sqlx::query(RENAME_WEBAUTHN)
            .bind(account)
            .bind(id)
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn delete_webauthn(&self, account: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query(DELETE_WEBAUTHN)
            .bind(account)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn delete_webauthn_of(&self, account: &str) -> StoreResult<u64> {
        let done = sqlx::query(DELETE_WEBAUTHN_OF)
            .bind(account)
            .execute(&self.writer)
            .await?;
        Ok(DB::rows_affected(&done))
    }
}
