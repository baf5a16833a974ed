//! Stable numbers (UIDs) of the items in a reader's folders, and the clear
//! metadata a listing of them needs, for clients that address items by number.
//! Content stays sealed; rendering opens it.

use async_trait::async_trait;

use super::StoreResult;

/// One item of a folder with its stable number.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FolderRow {
    pub uid: i64,
    pub envelope_id: String,
    pub seen: bool,
    pub flagged: bool,
    /// Unix seconds the item was sealed.
    pub created_at: i64,
    pub kind: String,
    pub sender_id: String,
    pub sender_facility: Option<String>,
    pub thread_id: Option<String>,
    pub step: Option<String>,
    /// The mod-sequence of the row's last change (RFC 7162).
    pub modseq: i64,
    /// `inbox` or `sent`: where the reader's entry lives (none in Facility).
    pub entry_folder: Option<String>,
}

#[async_trait]
pub trait FolderStore: Send + Sync {
    /// Brings the folder's UID rows in line with its items: items that left lose
    /// their row, new ones get the next UIDs in arrival order. `folder` is one of
    /// `inbox`, `sent`, `archive` (of `principal`'s entries), `shared` (a liaison
    /// inbox's entries) or `facility` (the items an oversight key holds a slot of).
    /// Rows that came, left or changed flags since the last sync get the
    /// folder's next mod-sequence; returns the folder's highest mod-sequence.
    async fn sync_folder(&self, principal: &str, folder: &str) -> StoreResult<i64>;
    /// UIDs that left the folder at a mod-sequence above `modseq`, ascending.
    async fn vanished_since(
        &self,
        principal: &str,
        folder: &str,
        modseq: i64,
    ) -> StoreResult<Vec<i64>>;
    /// The folder's highest mod-sequence as of its last sync (1 before any).
    async fn highest_modseq(&self, principal: &str, folder: &str) -> StoreResult<i64>;
    /// The folder's messages in UID order.
    async fn folder_rows(&self, principal: &str, folder: &str) -> StoreResult<Vec<FolderRow>>;
    /// The highest UID handed out anywhere (UIDNEXT is above it).
    async fn max_uid(&self) -> StoreResult<i64>;
    /// A cheap fingerprint of everything a listing of the folder shows (which
    /// items, their flags): equal fingerprints mean nothing to report, so an
    /// idling client costs one read, not a listing and a write, per look.
    async fn folder_version(&self, principal: &str, folder: &str) -> StoreResult<Vec<i64>>;
}
