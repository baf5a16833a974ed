//! Storage behind one small trait, with a SQLite and a PostgreSQL implementation.
//!
//! Only this module imports sqlx. One generic [`SqlStore`] implements every
//! trait for both engines; each trait's statements sit in its `*_sql.rs` file,
//! the few differences in [`Dialect`] (`sqlite.rs`, `postgres.rs`). Each
//! backend has its own migrations.
//!
//! Both engines store the same shapes: timestamps are Unix seconds in `BIGINT`
//! (sessions, queues, threads and notifications: milliseconds), dates are
//! `YYYY-MM-DD` text, lists are JSON text, so one row type decodes in both.
//! Migrations live in `mailbox/migrations/{sqlite,postgres}/` and are
//! append-only: a migration that has shipped never changes.

mod backend;
pub mod custody;
pub mod facility_network;
pub mod factor;
mod factor_sql;
pub(crate) mod folder;
mod folder_sql;
pub mod idempotency;
mod internal;
mod lease;
pub mod node_clock;
pub mod notify;
mod notify_sql;
mod postgres;
pub mod queue;
mod queue_sql;
pub mod records;
mod records_sql;
mod rows;
mod sql;
mod sqlite;
pub mod thread;
mod thread_sql;
pub mod throttle;
pub mod vault;
mod vault_sql;
mod writes;

pub mod error;
pub use error::{StoreError, StoreResult};

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::account::PasswordDigest;
use crate::account::{Account, AccountId};
use crate::facility::{Facility, FacilityCode};

pub use backend::{Dialect, SqlStore};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// `($1, $2, …), (…)` for `rows` rows of `cols` placeholders: one statement
/// instead of one per row (each statement is a round trip, or on SQLite a hop to
/// the connection's thread).
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// `$1, $2, …` for an `IN (…)` list.
pub(crate) fn list(n: usize) -> String {
    list_from(1, n)
}

/// `$first, …` for an `IN (…)` list that follows other parameters.
pub(crate) fn list_from(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A server-side sign-in session; the cookie holds the token, the store its hash.
/// Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub token_hash: Vec<u8>,
    pub account_id: AccountId,
    pub created_at: i64,
    pub last_seen: i64,
    pub remote_addr: Option<String>,
    /// What the session was opened through (`web`, `api`, `imap`), for the audit trail.
    pub channel: Option<String>,
}

/// Outcome of counting a failed sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedLogin {
    pub failed_attempts: u32,
    pub locked: bool,
}

#[async_trait]
pub trait Store:
    vault::VaultStore
    + queue::QueueStore
    + thread::ThreadStore
    + notify::NotifyStore
    + folder::FolderStore
    + records::RecordsStore
    + factor::FactorStore
    + throttle::ThrottleStore
    + node_clock::NodeClockStore
    + facility_network::FacilityNetworkStore
    + custody::CustodyStore
    + Send
    + Sync
    + 'static
{
    /// Which backend this is, for logs and diagnostics.
    fn backend(&self) -> &'static str;

    async fn insert_facility(&self, facility: &Facility) -> StoreResult<()>;
    async fn update_facility(&self, facility: &Facility) -> StoreResult<()>;
    async fn facility(&self, code: &FacilityCode) -> StoreResult<Option<Facility>>;
    async fn facilities(&self) -> StoreResult<Vec<Facility>>;

    async fn insert_account(&self, account: &Account) -> StoreResult<()>;
    async fn account(&self, id: &AccountId) -> StoreResult<Option<Account>>;
    /// The accounts among `ids` that exist, in no particular order.
    async fn accounts_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<Account>>;
    /// All accounts, or those of one facility.
    async fn accounts(&self, facility: Option<&FacilityCode>) -> StoreResult<Vec<Account>>;
    async fn set_password(
        &self,
        id: &AccountId,
        digest: &PasswordDigest,
        must_change: bool,
    ) -> StoreResult<()>;
    async fn set_email(
        &self,
        id: &AccountId,
        email: Option<&str>,
        verified: bool,
    ) -> StoreResult<()>;
    /// Counts one failed sign-in atomically (shown on the operator's console;
    /// it never locks the account). `None` when no such account exists (the
    /// statement runs all the same, so an unknown ID costs what a real one does).
    async fn record_failed_login(&self, id: &AccountId) -> StoreResult<Option<FailedLogin>>;
    /// A successful sign-in resets the counter.
    async fn reset_failed_logins(&self, id: &AccountId) -> StoreResult<()>;
    /// Locking keeps the counter; unlocking resets it.
    async fn set_locked(&self, id: &AccountId, locked: bool) -> StoreResult<()>;

    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    async fn session(&self, token_hash: &[u8]) -> StoreResult<Option<SessionRecord>>;
    /// A session and its account in one statement: every request asks for
    /// both. `None` when either is gone.
    async fn session_with_account(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(SessionRecord, Account)>>;
    async fn touch_session(&self, token_hash: &[u8], now: i64) -> StoreResult<()>;
    async fn delete_session(&self, token_hash: &[u8]) -> StoreResult<()>;
    /// Signs the account out everywhere (password change, lock, reset).
    /// The sessions ended, so each end can be audited.
    async fn delete_sessions_of(&self, id: &AccountId) -> StoreResult<Vec<SessionRecord>>;
    /// Removes sessions idle since `idle_before` or created before `created_before`,
    /// and returns them.
    async fn purge_sessions(
        &self,
        idle_before: i64,
        created_before: i64,
    ) -> StoreResult<Vec<SessionRecord>>;
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// The embedded default: one SQLite file (WAL mode) in the data folder.
    Sqlite(PathBuf),
    /// `postgres://…`; the URL's password never appears in logs.
    Postgres(String),
}

impl StoreTarget {
    /// A redacted description for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite:{}", path.display()),
            Self::Postgres(url) => match url.split_once('@') {
                Some((_, host)) => format!("postgres://****@{host}"),
                None => url.clone(),
            },
        }
    }
}

/// Opens the store and brings its schema up to date.
pub async fn open(target: &StoreTarget) -> StoreResult<Arc<dyn Store>> {
    Ok(match target {
        StoreTarget::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
        StoreTarget::Postgres(url) => Arc::new(PgStore::open(url).await?),
    })
}
