//! A person's folders as the webmail lists them: one page of a folder is one
//! indexed query over clear metadata (nothing is decrypted to list it), and
//! search over what the person can open, which decrypts in batches.
//!
//! `folder_page` is one indexed query (`mailbox_entries_listing`: principal,
//! folder, archived, delivered_at, envelope_id, so the order needs no sort)
//! joining the envelope head, the thread (state, urgency, due date) and the
//! facility on the other side, newest first, with optional kind and state
//! filters, paged by offset (one row more than shown says whether a next page
//! exists). The page comes back as one row — the rows as a JSON array
//! (`json_group_array` / `json_agg`) plus the Inbox's unread count — because
//! sqlx's SQLite worker hands rows over one at a time, a wake-up each, which
//! cost a busy Inbox more than the query itself. The unread count reads a range
//! of a covering index (`mailbox_entries_unread`). `search` opens the reader's
//! own items in batches of 256 (`peek_many`, each audited as `view
//! detail=peek`) and matches subject, text, fields, patient and attachment
//! names.

use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::keys::Principal;
use crate::postroom::{OpenedItem, Postroom};
use crate::store::queue::{ListingQuery, ListingRow, MailboxListing};
use crate::store::vault::EnvelopeMeta;
use crate::workflow::{ThreadKind, ThreadState};

/// The personal folders of the webmail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailFolder {
    Inbox,
    Sent,
    /// Archived items, received and sent.
    Archive,
}

impl MailFolder {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "inbox" => Ok(Self::Inbox),
            "sent" => Ok(Self::Sent),
            "archive" => Ok(Self::Archive),
            _ => Err(Error::invalid(
                "folder",
                "folder must be inbox, sent or archive",
                "フォルダは受信箱・送信済み・アーカイブのいずれかです。",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Sent => "sent",
            Self::Archive => "archive",
        }
    }
}

/// What a folder page is narrowed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderFilter {
    pub kind: Option<ThreadKind>,
    pub state: Option<ThreadState>,
}

/// One item of a folder page: the reader's entry, its thread's progress and
/// the facility on the other side (the sender's for received items, the other
/// party's of the thread for sent ones). Clear metadata only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedItem {
    pub envelope_id: String,
    /// In the reader's Inbox (received), not in Sent.
    pub received: bool,
    pub seen: bool,
    pub archived: bool,
    /// Unix milliseconds.
    pub delivered_at: i64,
    pub kind: String,
    pub step: Option<String>,
    pub thread_id: Option<String>,
    pub thread_state: Option<String>,
    pub urgency: Option<String>,
    /// `YYYY-MM-DD`.
    pub wanted_by: Option<String>,
    pub closed_at: Option<i64>,
    pub counterpart_facility: Option<String>,
    pub counterpart_name: Option<String>,
    /// `pending`, `done` or `failed` (sent items).
    pub delivery_state: Option<String>,
}

impl From<ListingRow> for ListedItem {
    fn from(r: ListingRow) -> Self {
        Self {
            envelope_id: r.envelope_id,
            received: r.folder == "inbox",
            seen: r.seen,
            archived: r.archived,
            delivered_at: r.delivered_at,
            kind: r.kind,
            step: r.step,
            thread_id: r.thread_id,
            thread_state: r.thread_state,
            urgency: r.urgency,
            wanted_by: r.wanted_by,
            closed_at: r.closed_at,
            counterpart_facility: r.counterpart_facility,
            counterpart_name: r.counterpart_name,
            delivery_state: r.delivery_state,
        }
    }
}

/// An item of one of the reader's folders with its flags and clear metadata
/// (`Postroom::mailbox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxItem {
    pub envelope_id: String,
    /// `inbox` or `sent`.
    pub folder: String,
    pub seen: bool,
    pub flagged: bool,
    pub archived: bool,
    /// Unix milliseconds.
    pub delivered_at: i64,
    pub kind: String,
    pub sender_id: String,
    pub sender_facility: Option<String>,
    pub thread_id: Option<String>,
    pub step: Option<String>,
    pub thread_state: Option<String>,
    /// `pending`, `done` or `failed`; with the reason when it failed.
    pub delivery_state: Option<String>,
    pub delivery_error: Option<String>,
}

impl From<MailboxListing> for MailboxItem {
    fn from(e: MailboxListing) -> Self {
        Self {
            envelope_id: e.envelope_id,
            folder: e.folder,
            seen: e.seen,
            flagged: e.flagged,
            archived: e.archived,
            delivered_at: e.delivered_at,
            kind: e.kind,
            sender_id: e.sender_id,
            sender_facility: e.sender_facility,
            thread_id: e.thread_id,
            step: e.step,
            thread_state: e.thread_state,
            delivery_state: e.delivery_state,
            delivery_error: e.delivery_error,
        }
    }
}

/// One page of a folder, newest first.
#[derive(Debug, Clone)]
pub struct FolderPage {
    pub rows: Vec<ListedItem>,
    /// 1-based.
    pub page: u32,
    pub has_more: bool,
    /// The Inbox's unread entries, up to [`UNREAD_CAP`], whatever the folder.
    pub unread: i64,
}

/// The unread count stops here: a badge says "999+", and counting on would
/// read the whole range on every page view.
pub const UNREAD_CAP: i64 = 1000;

/// Items searched per decryption batch (as a mail client's folder listing).
const SEARCH_BATCH: usize = 256;

/// The longest search text taken.
const SEARCH_MAX_CHARS: usize = 200;

impl Postroom {
    /// A page of the reader's own folder: one query, clear metadata only.
    pub async fn folder_page(
        &self,
        session: &CurrentSession,
        folder: MailFolder,
        filter: FolderFilter,
        page: u32,
        per_page: u32,
    ) -> Result<FolderPage> {
        let keyring = self.keyring(session)?;
        let own = Principal::Account(keyring.account.clone()).key();
        let page = page.max(1);
        let per_page = i64::from(per_page.clamp(1, 200));
        let (folder_name, archived) = match folder {
            MailFolder::Inbox => (Some("inbox"), false),
            MailFolder::Sent => (Some("sent"), false),
            MailFolder::Archive => (None, true),
        };
        let listed = self
            .store
            .mailbox_listing(&ListingQuery {
                principal: &own,
                folder: folder_name,
                archived: Some(archived),
                kind: filter.kind.map(ThreadKind::as_str),
                thread_state: filter.state.map(ThreadState::as_str),
                // One more than shown tells whether a next page exists.
                limit: per_page + 1,
                offset: i64::from(page - 1) * per_page,
                unread_cap: UNREAD_CAP,
            })
            .await?;
        let mut rows = listed.rows;
        let has_more = rows.len() as i64 > per_page;
        rows.truncate(usize::try_from(per_page).unwrap_or(usize::MAX));
        Ok(FolderPage {
            rows: rows.into_iter().map(ListedItem::from).collect(),
            page,
            has_more,
            unread: listed.unread,
        })
    }

    /// Unread, unarchived items in the reader's Inbox, counted up to
    /// [`UNREAD_CAP`] (shown as "999+").
    pub async fn unread_in_inbox(&self, session: &CurrentSession) -> Result<i64> {
        let keyring = self.keyring(session)?;
        let own = Principal::Account(keyring.account.clone()).key();
        Ok(self.store.unread_count(&own, UNREAD_CAP).await?)
    }

    /// The reader's items (every folder, archived or not) whose subject, text,
    /// fields, patient or attachment names contain `text` (case-insensitive),
    /// newest first, at most `limit`. Each item searched is opened without
    /// marking it read, and is a view in the audit trail as with `peek`.
    pub async fn search(
        &self,
        session: &CurrentSession,
        text: &str,
        limit: usize,
    ) -> Result<Vec<ListedItem>> {
        let needle = text.trim().to_lowercase();
        if needle.is_empty() || needle.chars().count() > SEARCH_MAX_CHARS {
            return Err(Error::invalid(
                "q",
                format!("search text must be 1 to {SEARCH_MAX_CHARS} characters"),
                format!("検索語は1〜{SEARCH_MAX_CHARS}文字で入力してください。"),
            ));
        }
        let keyring = self.keyring(session)?;
        let own = Principal::Account(keyring.account.clone()).key();
        let all = self
            .store
            .mailbox_listing(&ListingQuery {
                principal: &own,
                folder: None,
                archived: None,
                kind: None,
                thread_state: None,
                limit: i64::MAX,
                offset: 0,
                unread_cap: 0,
            })
            .await?
            .rows;
        let mut found = Vec::new();
        for batch in all.chunks(SEARCH_BATCH) {
            let ids: Vec<String> = batch.iter().map(|r| r.envelope_id.clone()).collect();
            let opened = self.peek_many(session, &ids).await?;
            let hits: std::collections::HashSet<String> = opened
                .into_iter()
                .filter_map(|(id, item)| match item {
                    Ok(item) if contains(&item, &needle) => Some(id),
                    _ => None,
                })
                .collect();
            found.extend(
                batch
                    .iter()
                    .filter(|r| hits.contains(&r.envelope_id))
                    .cloned()
                    .map(ListedItem::from),
            );
            if found.len() >= limit {
                found.truncate(limit);
                break;
            }
        }
        Ok(found)
    }
}

impl Postroom {
    /// A folder of the reader: `inbox`, `sent`, `archive` (archived items of both),
    /// or `shared` (the facility's liaison inbox, for liaisons).
    pub async fn mailbox(
        &self,
        session: &CurrentSession,
        folder: &str,
    ) -> Result<Vec<MailboxItem>> {
        let keyring = self.keyring(session)?;
        let own = Principal::Account(keyring.account.clone()).key();
        let store = &self.store;
        let entries = match folder {
            "inbox" | "sent" => store.mailbox(&own, folder, false).await?,
            "archive" => {
                let mut all = store.mailbox(&own, "inbox", true).await?;
                all.extend(store.mailbox(&own, "sent", true).await?);
                all.sort_by_key(|e| std::cmp::Reverse(e.delivered_at));
                all
            }
            "shared" => {
                let Some(code) = keyring
                    .liaison_inbox
                    .as_ref()
                    .and(keyring.facility.as_ref())
                else {
                    return Err(Error::Forbidden);
                };
                store
                    .mailbox(&Principal::LiaisonInbox(code.clone()).key(), "inbox", false)
                    .await?
            }
            _ => {
                return Err(Error::invalid(
                    "folder",
                    "folder must be inbox, sent, archive or shared",
                    "フォルダは受信箱・送信済み・アーカイブ・共有受信箱のいずれかです。",
                ));
            }
        };
        Ok(entries.into_iter().map(MailboxItem::from).collect())
    }

    /// Items this reader holds a slot for (clear metadata only).
    pub async fn list(&self, session: &CurrentSession) -> Result<Vec<EnvelopeMeta>> {
        let keyring = self.keyring(session)?;
        let mut out: Vec<EnvelopeMeta> = Vec::new();
        for p in keyring.principals() {
            for e in self.store.envelopes_for(&p.key()).await? {
                if !out.iter().any(|o| o.id == e.id) {
                    out.push(e);
                }
            }
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }
}

/// Whether an opened item mentions `needle` (already lower-case) anywhere a
/// reader would look.
fn contains(item: &OpenedItem, needle: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(needle);
    has(&item.subject)
        || has(&item.body)
        || has(&item.patient_id)
        || has(&item.patient_name)
        || item.fields.iter().any(|(_, v)| has(v))
        || item.attachments.iter().any(|a| has(&a.name))
}
