//! The embedded default: one SQLite file in WAL mode inside the data folder.
//!
//! Settings: WAL, `synchronous=FULL`, a 30 s busy timeout so admin commands can
//! run beside `serve`. Every write goes through one writer connection, so
//! writers queue asynchronously instead of sleeping in SQLite's busy handler,
//! and submissions are group-committed by a writer task: those that arrive
//! while a commit runs go into the next transaction together (one fsync for the
//! group), each answered only after its commit; if the group fails, each is
//! retried alone. Reads use a pool of one connection per core (2–8): eight
//! readers on two cores only queued threads on SQLite's mutexes and the
//! scheduler. SQLite is built without memory statistics (`LIBSQLITE3_FLAGS` in
//! `.cargo/config.toml`), which take one process-wide mutex around every
//! allocation.
//!
//! The writer never checkpoints inside a commit: a background task runs PASSIVE
//! checkpoints every 250 ms from its own connection that never waits, and the
//! writer checkpoints between two groups once a second so the WAL can start
//! over under steady load (without that it grew to a gigabyte in a minute of
//! benchmark). A backup reads a consistent copy with `VACUUM INTO` from a
//! reader connection.

use std::path::Path;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};

use super::backend::{Dialect, SqlStore, Submission};
use super::records::AuditRow;
use super::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The store on SQLite. Its `writer` is one connection for every write: SQLite
/// has one writer at a time, and writers queueing there wait asynchronously
/// instead of sleeping in the busy handler. Submissions go through the group
/// writer.
pub type SqliteStore = SqlStore<Sqlite>;

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";
    /// One writer at a time: a plain conditional update is a safe lease.
    const SKIP_LOCKED: &'static str = "";
    const PAGE_AGGREGATE: (&'static str, &'static str) = ("json_group_array", "json_array");
    /// A consistent copy of the database, taken from a reader connection while
    /// the writer goes on (the online backup `admin backup` uses).
    const SNAPSHOT: Option<&'static str> = Some("VACUUM INTO $1");
    /// The one-row door, opened and closed inside the job's transaction.
    const AUDIT_DOOR: (&'static str, Option<&'static str>) = (
        "UPDATE audit_retention_door SET open = 1 WHERE id = 1",
        Some("UPDATE audit_retention_door SET open = 0 WHERE id = 1"),
    );

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

impl SqlStore<Sqlite> {
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
            // A WAL that started over is cut back to this size.
            .pragma("journal_size_limit", "67108864")
            .foreign_keys(true);
        // The writer never checkpoints on commit (a commit that happens to cross
        // the threshold would pay for copying the WAL back, a latency spike for
        // whoever waits on it); `checkpointer` does it beside the writer instead.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await
            .map_err(StoreError::from)?;
        MIGRATOR.run(&writer).await?;
        // Its own connection that never waits: a checkpoint that would have to
        // wait for a reader or the writer gives up and is tried again later.
        let checkpoints = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().busy_timeout(Duration::ZERO))
            .await
            .map_err(StoreError::from)?;
        // One reader per core: more only queued their threads on SQLite's
        // mutexes and the scheduler (a busy Inbox spent a third of its time
        // switching between eight); requests wait for a reader asynchronously.
        let readers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8);
        let pool = SqlitePoolOptions::new()
            .max_connections(u32::try_from(readers).unwrap_or(2))
            .connect_with(options)
            .await
            .map_err(StoreError::from)?;
        let (jobs, queue) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(checkpointer(checkpoints, jobs.downgrade()));
        // The writer task holds a clone without the sender side, so it ends
        // when the last store handle is dropped.
        tokio::spawn(group_writer(
            Self {
                pool: pool.clone(),
                writer: writer.clone(),
                group: None,
            },
            queue,
        ));
        Ok(Self {
            pool,
            writer,
            group: Some(jobs),
        })
    }
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// How often the group writer itself checkpoints between two groups (see
/// `group_writer`).
const WRITER_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies committed WAL frames back into the database file from a reader
/// connection, so the single writer never does it inside a commit. PASSIVE
/// never blocks anyone. Ends with the last store handle (`alive` is the group
/// writer's sender).
async fn checkpointer(pool: SqlitePool, alive: tokio::sync::mpsc::WeakSender<Submission>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if alive.upgrade().is_none() || pool.is_closed() {
            return;
        }
        let result = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await;
        if let Err(e) = result {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
        }
    }
}

/// Largest group committed at once.
const GROUP: usize = 64;

/// Group commit: SQLite has one writer and one fsync per commit, so submissions
/// that arrive while a commit is running are written together in the next
/// transaction. Each is answered only after the commit that holds it.
///
/// The WAL only starts over when a write begins with every frame already
/// copied back; under steady load the background checkpoint never wins that
/// race, and the WAL would grow by every page written (a gigabyte in a minute
/// of benchmark, slowing every read). So about once a second the writer
/// checkpoints on its own connection between two groups: the background task
/// has copied nearly everything already, and the next group resets the WAL.
async fn group_writer(store: SqliteStore, mut jobs: tokio::sync::mpsc::Receiver<Submission>) {
    let mut last_checkpoint = std::time::Instant::now();
    while let Some(first) = jobs.recv().await {
        if last_checkpoint.elapsed() >= WRITER_CHECKPOINT_EVERY {
            last_checkpoint = std::time::Instant::now();
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&store.writer)
                .await
            {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
        let mut group = vec![first];
        while group.len() < GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        match write_group(&store, &group).await {
            Ok(()) => {
                for j in group {
                    let _ = j.done.send(Ok(()));
                }
            }
            Err(_) => {
                // One bad submission (e.g. a thread moved on meanwhile) must not
                // fail the others: each alone, with its own answer.
                for j in group {
                    let r = store
                        .insert_envelope_alone(
                            &j.envelope,
                            &j.slots,
                            &j.attachments,
                            j.thread.as_ref(),
                            &j.audit,
                            j.idempotency.as_ref(),
                        )
                        .await;
                    let _ = j.done.send(r);
                }
            }
        }
    }
}

async fn write_group(store: &SqliteStore, group: &[Submission]) -> StoreResult<()> {
    let mut tx = store.writer.begin().await?;
    for j in group {
        SqliteStore::insert_envelope_in(
            &mut *tx,
            &j.envelope,
            &j.slots,
            &j.attachments,
            j.thread.as_ref(),
            j.idempotency.as_ref(),
        )
        .await?;
    }
    // The group's audit entries in one append, after its envelopes.
    let entries = group.iter().map(|j| j.audit.clone()).collect();
    SqliteStore::append_audit_in(&mut tx, entries, AuditRow::chain_hash).await?;
    tx.commit().await?;
    Ok(())
}
