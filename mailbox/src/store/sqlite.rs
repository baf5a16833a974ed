//! The embedded default: one SQLite file in WAL mode inside the data folder.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::imap_sql::{self, impl_imap_store};
use super::notify::{NotificationRow, NotifySettings, NotifyTarget, UnopenedThread};
use super::notify_sql::{self, impl_notify_store};
use super::queue::{DeliveryStatus, MailboxEntryRow, MailboxListing, QueueEntry};
use super::queue_sql::{self, impl_queue_store};
use super::rows;
use super::sql::{self, expect_one, impl_portable_store};
use super::thread::{ReadingCount, ResourceRow, StepRow, ThreadRow, UsageRow};
use super::thread_sql::{self, impl_thread_store};
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
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(StoreError::from)?;
        MIGRATOR.run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(StoreError::from)?;
        let (jobs, queue) = tokio::sync::mpsc::channel(1024);
        let store = Self { pool, writer, jobs };
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

impl_queue_store!(SqliteStore, CLAIM);
impl_notify_store!(SqliteStore, CLAIM_NOTIFICATIONS);
impl_imap_store!(SqliteStore);
impl_vault_store!(SqliteStore, sqlx::Sqlite);

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
async fn group_writer(store: SqliteStore, mut jobs: tokio::sync::mpsc::Receiver<WriteJob>) {
    while let Some(first) = jobs.recv().await {
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
