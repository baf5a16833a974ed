//! The one SQL store, generic over the sqlx database, and the [`Dialect`]: the
//! little that differs between SQLite and PostgreSQL.
//!
//! Every statement is written once with `$N` placeholders (both engines take
//! them) in the `*_sql.rs` file of its trait, next to the generic impl of that
//! trait for [`SqlStore`]. Rust does not carry a trait's where-clauses to its
//! users, so each impl block states the same bounds (the list below); they only
//! say that the database can run queries from a pool or transaction and that
//! the column types Renkei uses (text, blob, integer, boolean) encode and decode.
//!
//! ```text
//! for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
//! for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
//! for<'q> &'q str / &'q [u8]: Encode<'q, DB> + Type<DB>,
//! for<'r> String / Vec<u8> / i64 / bool: Encode + Decode<'r, DB> + Type<DB>,
//! for<'q> Option<each of them>: Encode<'q, DB>,
//! for<'n> &'n str: ColumnIndex<DB::Row>, usize: ColumnIndex<DB::Row>,
//! ```

use sqlx::{Database, Pool};

use super::StoreResult;
use super::idempotency::IdempotencyRow;
use super::thread::ThreadChange;
use super::vault::{AttachmentRow, EnvelopeRow, SlotRow};

/// What differs between the engines. Implemented by `sqlx::Sqlite` and
/// `sqlx::Postgres`; everything else is shared.
pub trait Dialect: Database {
    /// For logs and diagnostics.
    const BACKEND: &'static str;
    /// Ends the row selection of a lease. PostgreSQL: nodes sharing the database
    /// skip rows another node is claiming right now. SQLite has one writer at a
    /// time, so a plain conditional update is a safe lease.
    const SKIP_LOCKED: &'static str;
    /// The JSON aggregate and row constructor a listing page is folded with.
    const PAGE_AGGREGATE: (&'static str, &'static str);
    /// Writes a consistent copy of the database to `$1` while others keep
    /// writing, where the engine has such a statement.
    const SNAPSHOT: Option<&'static str>;
    /// Opens the audit log to the retention job's deletes for the rest of the
    /// transaction, and closes it again before commit where that takes a
    /// statement (see the migration `audit_append_only`).
    const AUDIT_DOOR: (&'static str, Option<&'static str>);

    /// Rows a statement changed (each driver has its own result type).
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

/// A statement with its arguments, on either engine.
pub(super) type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// The store: a pool for reads and a pool for writes (the same pool on
/// PostgreSQL; SQLite's single writer connection), and on SQLite the group
/// writer that commits submissions together.
pub struct SqlStore<DB: Dialect> {
    pub(super) pool: Pool<DB>,
    pub(super) writer: Pool<DB>,
    /// Submissions go here when the backend commits them in groups.
    pub(super) group: Option<tokio::sync::mpsc::Sender<Submission>>,
}

/// One submission: an envelope with its key-slot holders, attachments and
/// thread change, and where its answer goes once committed.
pub(super) struct Submission {
    pub envelope: EnvelopeRow,
    pub slots: Vec<SlotRow>,
    pub attachments: Vec<AttachmentRow>,
    pub thread: Option<ThreadChange>,
    pub audit: super::records::AuditRow,
    /// The Idempotency-Key answer stored with it, if the client sent a key.
    pub idempotency: Option<IdempotencyRow>,
    pub done: tokio::sync::oneshot::Sender<StoreResult<()>>,
}

/// `Err(NotFound)` unless the statement changed a row.
pub(super) fn expect_one(rows: u64) -> StoreResult<()> {
    if rows == 0 {
        Err(super::StoreError::NotFound)
    } else {
        Ok(())
    }
}
