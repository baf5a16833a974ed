//! The embedded default: one SQLite file in WAL mode inside the data folder.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::factor_sql::{self, impl_factor_store};
use super::imap_sql::{self, impl_imap_store};
use super::notify::{NotificationRow, NotifySettings, NotifyTarget, UnopenedThread};
use super::notify_sql::{self, impl_notify_store};
use super::queue::{DeliveryStatus, MailboxEntryRow, MailboxListing, QueueEntry};
use super::queue_sql::{self, impl_queue_store};
use super::records_sql::{self, impl_records_store};
use super::rows;
use super::sql::{self, expect_one, impl_portable_store};
use super::thread::{ReadingCount, ResourceRow, StepRow, ThreadRow, UsageRow};
use super::thread_sql::{self, impl_thread_store};
use super::vault::{
    AccountKeyRow, AttachmentRow, EnvelopeMeta, EnvelopeRow, FacilityKeyRow, GrantRow, SlotRow,
};
use super::vault_sql::{self, impl_vault_store};
use super::{FailedLogin, SessionRecord, StoreError, StoreResult};
use crate::account::PasswordDigest;
use crate::account::{Account, AccountId};
use crate::facility::{Facility, FacilityCode};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for every write: SQLite has one writer at a time, and
    /// writers queueing here wait asynchronously instead of sleeping in the
    /// busy handler.
    writer: SqlitePool,
    /// Submissions for the group writer.
    jobs: tokio::sync::mpsc::Sender<WriteJob>,
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
        let store = Self { pool, writer, jobs };
        tokio::spawn(checkpointer(checkpoints, store.jobs.downgrade()));
        // The writer task holds a clone without the sender side, so it ends
        // when the last store handle is dropped.
        let (unused, _) = tokio::sync::mpsc::channel(1);
        tokio::spawn(group_writer(
            Self {
                pool: store.pool.clone(),
                writer: store.writer.clone(),
                jobs: unused,
            },
            queue,
        ));
        Ok(store)
    }
}

/// SQLite has one writer at a time, so a plain conditional update is a safe lease.
const CLAIM: &str = "UPDATE delivery_queue SET lease_until = $1 WHERE envelope_id IN \
    (SELECT envelope_id FROM delivery_queue WHERE state = 'pending' AND next_attempt_at <= $2 \
     AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_attempt_at LIMIT $3) \
    RETURNING envelope_id, attempts";

/// Due notification rows, leased like queue entries.
const CLAIM_NOTIFICATIONS: &str = "UPDATE notifications SET lease_until = $1 WHERE id IN \
    (SELECT id FROM notifications WHERE state = 'pending' AND digest = $3 AND next_attempt_at <= $2 \
     AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_attempt_at, id LIMIT $4) \
    RETURNING id, dedup_key, account_id, reason, kind, thread_id, envelope_id, facility_code, \
    to_address, secret, digest, state, attempts, next_attempt_at, last_error, created_at, sent_at";

impl_queue_store!(SqliteStore, CLAIM, ("json_group_array", "json_array"));
impl_notify_store!(SqliteStore, CLAIM_NOTIFICATIONS);
impl_imap_store!(SqliteStore);
// A consistent copy of the database, taken from a reader connection while
// the writer goes on (the online backup `admin backup` uses).
impl_records_store!(SqliteStore, Some("VACUUM INTO $1"));
impl_factor_store!(SqliteStore);
impl_vault_store!(SqliteStore, sqlx::Sqlite);

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// How often the group writer itself checkpoints between two groups (see
/// `group_writer`).
const WRITER_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies committed WAL frames back into the database file from a reader
/// connection, so the single writer never does it inside a commit. PASSIVE
/// never blocks anyone. Ends with the last store handle (`alive` is the group
/// writer's sender).
async fn checkpointer(pool: SqlitePool, alive: tokio::sync::mpsc::WeakSender<WriteJob>) {
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

/// One submission waiting for the group writer.
struct WriteJob {
    envelope: EnvelopeRow,
    slots: Vec<SlotRow>,
    attachments: Vec<AttachmentRow>,
    thread: Option<super::thread::ThreadChange>,
    done: tokio::sync::oneshot::Sender<StoreResult<()>>,
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
async fn group_writer(store: SqliteStore, mut jobs: tokio::sync::mpsc::Receiver<WriteJob>) {
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
                        )
                        .await;
                    let _ = j.done.send(r);
                }
            }
        }
    }
}

async fn write_group(store: &SqliteStore, group: &[WriteJob]) -> StoreResult<()> {
    let mut tx = store.writer.begin().await?;
    for j in group {
        SqliteStore::insert_envelope_in(
            &mut tx,
            &j.envelope,
            &j.slots,
            &j.attachments,
            j.thread.as_ref(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

impl SqliteStore {
    async fn insert_envelope_now(
        &self,
        e: &EnvelopeRow,
        slots: &[SlotRow],
        attachments: &[AttachmentRow],
        thread: Option<&super::thread::ThreadChange>,
    ) -> StoreResult<()> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job = WriteJob {
            envelope: e.clone(),
            slots: slots.to_vec(),
            attachments: attachments.to_vec(),
            thread: thread.cloned(),
            done,
        };
        if self.jobs.send(job).await.is_err() {
            return self
                .insert_envelope_alone(e, slots, attachments, thread)
                .await;
        }
        answer
            .await
            .map_err(|_| StoreError::Backend(sqlx::Error::WorkerCrashed))?
    }
}
impl_thread_store!(SqliteStore);
impl_portable_store!(SqliteStore, "sqlite");
