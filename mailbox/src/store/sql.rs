//! Facilities, accounts and sessions: the statements of [`Store`] and its
//! implementation for [`SqlStore`]. Statements mean the same in SQLite and
//! PostgreSQL (`$N` placeholders work in both); what differs is in [`Dialect`].

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::backend::{Dialect, Query, SqlStore, expect_one};
use super::{FailedLogin, SessionRecord, Store, StoreError, StoreResult, rows};
use crate::account::PasswordDigest;
use crate::account::{Account, AccountId};
use crate::clock;
use crate::facility::{Facility, FacilityCode};

pub(super) const INSERT_FACILITY: &str = "INSERT INTO facilities \
    (code, name, address, phone, departments, publish_details, active_from, active_until, approval_ref, \
     city, public_note, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
pub(super) const UPDATE_FACILITY: &str = "UPDATE facilities SET name = $2, address = $3, phone = $4, \
    departments = $5, publish_details = $6, active_from = $7, active_until = $8, approval_ref = $9, \
    city = $10, public_note = $11 \
    WHERE code = $1";
const FACILITY_COLUMNS: &str = "code, name, address, phone, departments, publish_details, active_from, \
    active_until, approval_ref, city, public_note";
pub(super) fn select_facility() -> String {
    format!("SELECT {FACILITY_COLUMNS} FROM facilities WHERE code = $1")
}
pub(super) fn select_facilities() -> String {
    format!("SELECT {FACILITY_COLUMNS} FROM facilities ORDER BY code")
}

pub(super) const INSERT_ACCOUNT: &str = "INSERT INTO accounts \
    (id, role, facility_code, name, email, email_verified, password_hash, must_change_password, \
     locked, failed_attempts, has_second_factor, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
const ACCOUNT_COLUMNS: &str = "id, role, facility_code, name, email, email_verified, password_hash, \
    must_change_password, locked, failed_attempts, has_second_factor, removed, created_at";
pub(super) fn select_account() -> String {
    format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1")
}
pub(super) fn select_session_with_account() -> String {
    let account: Vec<String> = ACCOUNT_COLUMNS
        .split(", ")
        .map(|c| format!("a.{}", c.trim()))
        .collect();
    format!(
        "SELECT {}, s.created_at AS session_created_at, s.last_seen, s.remote_addr, \
         s.channel AS session_channel \
         FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = $1",
        account.join(", ")
    )
}
pub(super) fn select_accounts_by_ids(n: usize) -> String {
    format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id IN ({})",
        super::list(n)
    )
}
pub(super) fn select_accounts() -> String {
    format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY facility_code, role, id")
}
pub(super) fn select_accounts_of() -> String {
    format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE facility_code = $1 ORDER BY role, id")
}
pub(super) const SET_PASSWORD: &str =
    "UPDATE accounts SET password_hash = $2, must_change_password = $3 WHERE id = $1";
pub(super) const SET_EMAIL: &str =
    "UPDATE accounts SET email = $2, email_verified = $3 WHERE id = $1";
/// One statement, so two concurrent wrong passwords cannot both read the old
/// count. It never locks: only the help desk does (see `auth::throttle`).
pub(super) const RECORD_FAILED_LOGIN: &str = "UPDATE accounts \
    SET failed_attempts = failed_attempts + 1 \
    WHERE id = $1 RETURNING failed_attempts, locked";
pub(super) const RESET_FAILED_LOGINS: &str =
    "UPDATE accounts SET failed_attempts = 0 WHERE id = $1";
pub(super) const LOCK: &str = "UPDATE accounts SET locked = TRUE WHERE id = $1";
pub(super) const UNLOCK: &str =
    "UPDATE accounts SET locked = FALSE, failed_attempts = 0 WHERE id = $1";

pub(super) const INSERT_SESSION: &str = "INSERT INTO sessions \
    (token_hash, account_id, created_at, last_seen, remote_addr, channel) \
    VALUES ($1, $2, $3, $4, $5, $6)";
const SESSION_COLUMNS: &str = "token_hash, account_id, created_at, last_seen, remote_addr, channel";
pub(super) fn select_session() -> String {
    format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1")
}
pub(super) const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen = $2 WHERE token_hash = $1";
pub(super) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE token_hash = $1";
/// Ended sessions come back, so each end is audited with its length.
pub(super) fn delete_sessions_of() -> String {
    format!("DELETE FROM sessions WHERE account_id = $1 RETURNING {SESSION_COLUMNS}")
}
pub(super) fn purge_sessions() -> String {
    format!(
        "DELETE FROM sessions WHERE last_seen < $1 OR created_at < $2 RETURNING {SESSION_COLUMNS}"
    )
}

/// The facility's columns in the order `INSERT_FACILITY` and
/// `UPDATE_FACILITY` both name them.
fn bind_facility<'q, DB: Dialect>(q: Query<'q, DB>, f: &'q Facility) -> Query<'q, DB>
where
    for<'r> &'r str: Encode<'r, DB> + Type<DB>,
    for<'r> String: Encode<'r, DB> + Type<DB>,
    for<'r> bool: Encode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Encode<'r, DB>,
{
    q.bind(f.code.as_str())
        .bind(&f.name)
        .bind(&f.address)
        .bind(&f.phone)
        .bind(rows::departments_json(f))
        .bind(f.publish_details)
        .bind(rows::date_text(f.active_from))
        .bind(f.active_until.map(rows::date_text))
        .bind(&f.approval_ref)
        .bind(&f.city)
        .bind(&f.public_note)
}

#[async_trait::async_trait]
impl<DB: Dialect> Store for SqlStore<DB>
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
    fn backend(&self) -> &'static str {
        DB::BACKEND
    }

    async fn insert_facility(&self, f: &Facility) -> StoreResult<()> {
        bind_facility(sqlx::query(INSERT_FACILITY), f)
            .bind(clock::now_secs())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn update_facility(&self, f: &Facility) -> StoreResult<()> {
        let done = bind_facility(sqlx::query(UPDATE_FACILITY), f)
            .execute(&self.writer)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn facility(&self, code: &FacilityCode) -> StoreResult<Option<Facility>> {
        sqlx::query_as::<_, rows::FacilityRow>(&select_facility())
            .bind(code.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(Facility::try_from)
            .transpose()
    }

    async fn facilities(&self) -> StoreResult<Vec<Facility>> {
        sqlx::query_as::<_, rows::FacilityRow>(&select_facilities())
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Facility::try_from)
            .collect()
    }

    async fn insert_account(&self, a: &Account) -> StoreResult<()> {
        sqlx::query(INSERT_ACCOUNT)
            .bind(a.id.as_str())
            .bind(a.role.as_str())
            .bind(a.facility.as_ref().map(|c| c.as_str()))
            .bind(&a.name)
            .bind(&a.email)
            .bind(a.email_verified)
            .bind(&a.password.0)
            .bind(a.must_change_password)
            .bind(a.locked)
            .bind(i64::from(a.failed_attempts))
            .bind(a.has_second_factor)
            .bind(a.created_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn account(&self, id: &AccountId) -> StoreResult<Option<Account>> {
        sqlx::query_as::<_, rows::AccountRow>(&select_account())
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(Account::try_from)
            .transpose()
    }

    async fn accounts_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<Account>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = select_accounts_by_ids(chunk.len());
            let mut q = sqlx::query_as::<_, rows::AccountRow>(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(Account::try_from(row)?);
            }
        }
        Ok(out)
    }

    async fn accounts(&self, facility: Option<&FacilityCode>) -> StoreResult<Vec<Account>> {
        let rows = match facility {
            Some(code) => {
                sqlx::query_as::<_, rows::AccountRow>(&select_accounts_of())
                    .bind(code.as_str())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_as::<_, rows::AccountRow>(&select_accounts())
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.into_iter().map(Account::try_from).collect()
    }

    async fn set_password(
        &self,
        id: &AccountId,
        digest: &PasswordDigest,
        must_change: bool,
    ) -> StoreResult<()> {
        let done = sqlx::query(SET_PASSWORD)
            .bind(id.as_str())
            .bind(&digest.0)
            .bind(must_change)
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }

    async fn set_email(
        &self,
        id: &AccountId,
        email: Option<&str>,
        verified: bool,
    ) -> StoreResult<()> {
        let done = sqlx::query(SET_EMAIL)
            .bind(id.as_str())
            .bind(email)
            .bind(verified)
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }

    async fn record_failed_login(&self, id: &AccountId) -> StoreResult<Option<FailedLogin>> {
        let row = sqlx::query_as::<_, rows::FailedLoginRow>(RECORD_FAILED_LOGIN)
            .bind(id.as_str())
            .fetch_optional(&self.writer)
            .await?;
        Ok(row.map(|row| FailedLogin {
            failed_attempts: u32::try_from(row.failed_attempts).unwrap_or(u32::MAX),
            locked: row.locked,
        }))
    }

    async fn reset_failed_logins(&self, id: &AccountId) -> StoreResult<()> {
        sqlx::query(RESET_FAILED_LOGINS)
            .bind(id.as_str())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn set_locked(&self, id: &AccountId, locked: bool) -> StoreResult<()> {
        let done = sqlx::query(if locked { LOCK } else { UNLOCK })
            .bind(id.as_str())
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }

    async fn insert_session(&self, s: &SessionRecord) -> StoreResult<()> {
        sqlx::query(INSERT_SESSION)
            .bind(&s.token_hash)
            .bind(s.account_id.as_str())
            .bind(s.created_at)
            .bind(s.last_seen)
            .bind(&s.remote_addr)
            .bind(&s.channel)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &[u8]) -> StoreResult<Option<SessionRecord>> {
        sqlx::query_as::<_, rows::SessionRow>(&select_session())
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?
            .map(SessionRecord::try_from)
            .transpose()
    }

    async fn session_with_account(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(SessionRecord, Account)>> {
        let Some(row) =
            sqlx::query_as::<_, rows::SessionAccountRow>(&select_session_with_account())
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let session = SessionRecord::try_from(rows::SessionRow {
            token_hash: token_hash.to_vec(),
            account_id: row.account.id.clone(),
            created_at: row.session_created_at,
            last_seen: row.last_seen,
            remote_addr: row.remote_addr,
            channel: row.session_channel,
        })?;
        Ok(Some((session, Account::try_from(row.account)?)))
    }

    async fn touch_session(&self, token_hash: &[u8], now: i64) -> StoreResult<()> {
        sqlx::query(TOUCH_SESSION)
            .bind(token_hash)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &[u8]) -> StoreResult<()> {
        sqlx::query(DELETE_SESSION)
            .bind(token_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn delete_sessions_of(&self, id: &AccountId) -> StoreResult<Vec<SessionRecord>> {
        sqlx::query_as::<_, rows::SessionRow>(&delete_sessions_of())
            .bind(id.as_str())
            .fetch_all(&self.writer)
            .await?
            .into_iter()
            .map(SessionRecord::try_from)
            .collect()
    }

    async fn purge_sessions(
        &self,
        idle_before: i64,
        created_before: i64,
    ) -> StoreResult<Vec<SessionRecord>> {
        sqlx::query_as::<_, rows::SessionRow>(&purge_sessions())
            .bind(idle_before)
            .bind(created_before)
            .fetch_all(&self.writer)
            .await?
            .into_iter()
            .map(SessionRecord::try_from)
            .collect()
    }
}
