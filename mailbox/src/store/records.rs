//! Storage of the records side: the hash-chained audit log and the deletion
//! log (retention and patient deletion requests). No patient data, no content.

use async_trait::async_trait;

use super::StoreResult;

/// One audit entry as stored. `hash` covers `prev_hash` and every other field
/// ([`AuditRow::chain_hash`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor: Option<String>,
    pub role: Option<String>,
    pub facility: Option<String>,
    pub action: String,
    pub item: Option<String>,
    pub detail: Option<String>,
    pub remote_addr: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    /// `web`, `api`, `imap`, `cli` or `system`; `None` on entries written
    /// before channels were recorded.
    pub channel: Option<String>,
}

impl AuditRow {
    /// SHA-256 over the previous hash and the canonical form of every field (a
    /// JSON array, so no two different entries serialize alike). The channel
    /// joins the array only when recorded, so entries written before it existed
    /// keep their hash.
    pub fn chain_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut fields = vec![
            serde_json::json!(self.seq),
            serde_json::json!(self.at),
            serde_json::json!(self.actor),
            serde_json::json!(self.role),
            serde_json::json!(self.facility),
            serde_json::json!(self.action),
            serde_json::json!(self.item),
            serde_json::json!(self.detail),
            serde_json::json!(self.remote_addr),
            serde_json::json!(self.prev_hash),
        ];
        if let Some(channel) = &self.channel {
            fields.push(serde_json::json!(channel));
        }
        let mut h = Sha256::new();
        h.update(serde_json::Value::Array(fields).to_string().as_bytes());
        hex::encode(h.finalize())
    }
}

/// An item that is about to be deleted, with what the deletion log keeps of it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeletionCandidate {
    pub envelope_id: String,
    pub kind: String,
    pub sender_facility: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub body_size: i64,
    pub thread_id: Option<String>,
}

/// A blob of an item that is about to be deleted.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BlobRef {
    pub envelope_id: String,
    pub blob_key: String,
    pub sealed_size: i64,
}

/// One row of the deletion log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeletionLogRow {
    pub run_id: String,
    /// `retention` or `patient_request`.
    pub reason: String,
    pub envelope_id: String,
    pub kind: String,
    pub sender_facility: Option<String>,
    pub created_at: i64,
    pub body_size: i64,
    pub attachments: i64,
    pub attachment_bytes: i64,
    /// Unix seconds.
    pub deleted_at: i64,
}

#[async_trait]
pub trait RecordsStore: Send + Sync {
    /// Appends entries, in order, at the head of the chain. The head row is updated
    /// first, in the same transaction, so concurrent appenders (other tasks,
    /// other processes, other nodes) queue behind each other instead of forking
    /// the chain. `hash` gets the entry with `seq` and `prev_hash` filled in and
    /// returns its hash.
    async fn append_audit(
        &self,
        entries: Vec<AuditRow>,
        hash: for<'r> fn(&'r AuditRow) -> String,
    ) -> StoreResult<Vec<AuditRow>>;
    /// Entries with `from_ms <= at < to_ms`, of one facility or all, by `seq`.
    async fn audit_entries(
        &self,
        from_ms: i64,
        to_ms: i64,
        facility: Option<&str>,
    ) -> StoreResult<Vec<AuditRow>>;
    /// Up to `limit` entries with `seq > after`, by `seq` (for verifying).
    async fn audit_after(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditRow>>;
    /// `(seq, hash)` of the chain's head.
    async fn audit_head(&self) -> StoreResult<(i64, String)>;
    /// Every entry naming one of `items` (envelope or thread IDs), by `seq`.
    async fn audit_of_items(&self, items: &[String]) -> StoreResult<Vec<AuditRow>>;

    /// Items sealed before `cutoff` (Unix seconds), except those in a thread
    /// that has a younger item: a thread goes as a whole.
    async fn expired_items(&self, cutoff: i64) -> StoreResult<Vec<DeletionCandidate>>;
    /// Items carrying `blind_index`, with every other item of their threads.
    async fn patient_items(&self, blind_index: &[u8]) -> StoreResult<Vec<DeletionCandidate>>;
    async fn blobs_of(&self, envelope_ids: &[String]) -> StoreResult<Vec<BlobRef>>;
    /// Deletes the items (key slots, attachments, mailbox entries, queue rows,
    /// threads, IMAP numbers and notifications go with them) and writes `log`,
    /// in one transaction.
    async fn delete_items(
        &self,
        envelope_ids: &[String],
        log: &[DeletionLogRow],
    ) -> StoreResult<u64>;
    async fn deletion_log(&self, run_id: &str) -> StoreResult<Vec<DeletionLogRow>>;

    /// Writes a consistent copy of the whole database to `path` while others
    /// keep writing (SQLite: `VACUUM INTO`). `Ok(false)` where the backend has
    /// no such statement (PostgreSQL: `pg_dump` does it).
    async fn snapshot_into(&self, path: &str) -> StoreResult<bool>;
    /// Every blob key the database refers to.
    async fn all_blob_keys(&self) -> StoreResult<Vec<String>>;
}
