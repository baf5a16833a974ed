//! PostgreSQL, for larger networks and several server nodes sharing one database.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
    /// The same pool: PostgreSQL takes concurrent writers.
    writer: PgPool,
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
        Ok(Self {
            writer: pool.clone(),
            pool,
        })
    }
}

/// Nodes sharing the database skip rows another node is claiming right now.
const CLAIM: &str = "UPDATE delivery_queue SET lease_until = $1 WHERE envelope_id IN \
    (SELECT envelope_id FROM delivery_queue WHERE state = 'pending' AND next_attempt_at <= $2 \
     AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_attempt_at LIMIT $3 \
     FOR UPDATE SKIP LOCKED) \
    RETURNING envelope_id, attempts";

/// Due notification rows, leased like queue entries.
const CLAIM_NOTIFICATIONS: &str = "UPDATE notifications SET lease_until = $1 WHERE id IN \
    (SELECT id FROM notifications WHERE state = 'pending' AND digest = $3 AND next_attempt_at <= $2 \
     AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
    RETURNING id, dedup_key, account_id, reason, kind, thread_id, envelope_id, facility_code, \
    to_address, secret, digest, state, attempts, next_attempt_at, last_error, created_at, sent_at";

impl_queue_store!(PgStore, CLAIM, ("json_agg", "json_build_array"));
impl_notify_store!(PgStore, CLAIM_NOTIFICATIONS);
impl_imap_store!(PgStore);
impl_records_store!(PgStore, None);
impl_factor_store!(PgStore);
impl_vault_store!(PgStore, sqlx::Postgres);

impl PgStore {
    /// PostgreSQL commits concurrent transactions together by itself.
    async fn insert_envelope_now(
        &self,
        e: &EnvelopeRow,
        slots: &[SlotRow],
        attachments: &[AttachmentRow],
        thread: Option<&super::thread::ThreadChange>,
    ) -> StoreResult<()> {
        self.insert_envelope_alone(e, slots, attachments, thread)
            .await
    }
}
impl_thread_store!(PgStore);
impl_portable_store!(PgStore, "postgres");
