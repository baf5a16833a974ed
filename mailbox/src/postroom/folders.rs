//! A reader's folders as a mail client sees them: which folders a role has,
//! stable UIDs, flags, and "expunge" as archiving (nothing is ever destroyed
//! from a client). The IMAP protocol lives in `transport::imap`; these are the
//! mailbox rules it calls.
//!
//! Folders: INBOX, Sent and Archive for everyone, Shared for liaisons, and a
//! read-only Facility folder for clerks and liaisons. UIDs come from one
//! ascending counter (`imap_uids`): an item is numbered the first time its
//! folder is listed, loses its number when it leaves, and gets a higher one if
//! it comes back — so UIDVALIDITY never changes. Setting `\Seen` opens the item
//! (the workflow's receipt); `Postroom::peek` opens without marking.

use std::sync::Arc;

use crate::account::Role;
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::keys::Principal;
use crate::postroom::{OpenedItem, Postroom};
use crate::store::Store;
use crate::store::folder::FolderRow;

/// A folder of the IMAP view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Inbox,
    Sent,
    Archive,
    /// The facility's liaison shared inbox (liaisons).
    Shared,
    /// Every item of the facility, read-only (clerks and liaisons).
    Facility,
}

impl Folder {
    pub const ALL: [Self; 5] = [
        Self::Inbox,
        Self::Sent,
        Self::Archive,
        Self::Shared,
        Self::Facility,
    ];

    /// EXAMINE semantics only: no flags, no expunge, no append.
    pub fn read_only(self) -> bool {
        self == Self::Facility
    }

    fn key(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Sent => "sent",
            Self::Archive => "archive",
            Self::Shared => "shared",
            Self::Facility => "facility",
        }
    }
}

/// One message of a folder, as a mail client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderItem {
    /// Stable, never renumbered (see `UID_VALIDITY`).
    pub uid: i64,
    pub envelope_id: String,
    pub seen: bool,
    pub flagged: bool,
    /// Unix seconds the item was sealed.
    pub created_at: i64,
    /// The mod-sequence of its last change in this folder (RFC 7162).
    pub modseq: i64,
    /// Where the reader's entry lives when not archived: `Inbox` for what
    /// they received, `Sent` for what they sent (`None` in Facility).
    pub origin: Option<Folder>,
}

impl From<FolderRow> for FolderItem {
    fn from(r: FolderRow) -> Self {
        Self {
            uid: r.uid,
            envelope_id: r.envelope_id,
            seen: r.seen,
            flagged: r.flagged,
            created_at: r.created_at,
            modseq: r.modseq,
            origin: match r.entry_folder.as_deref() {
                Some("inbox") => Some(Folder::Inbox),
                Some("sent") => Some(Folder::Sent),
                _ => None,
            },
        }
    }
}

/// What moving an item between two folders means: folders are views of one
/// set of entries, so only archiving and its undoing move anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Archive,
    Unarchive,
}

/// Why a MOVE or COPY is refused (the text a mail client shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransferRefused {
    #[error("the item is already in this folder")]
    SameFolder,
    #[error("the Facility folder is read-only")]
    ReadOnly,
    #[error(
        "items of the shared inbox are archived with EXPUNGE there (or on the web pages), not moved"
    )]
    Shared,
    #[error(
        "received items live in INBOX and sent ones in Sent; they cannot move between the two (archive them instead)"
    )]
    Between,
    #[error("only Archive takes items: moving there archives, moving out of it undoes that")]
    NotArchive,
    #[error("this item was sent, not received: move it back to Sent")]
    WasSent,
    #[error("this item was received, not sent: move it back to INBOX")]
    WasReceived,
}

impl Transfer {
    /// The meaning of moving `item` from `from` to `to`, or why there is none.
    pub fn between(
        from: Folder,
        to: Folder,
        origin: Option<Folder>,
    ) -> std::result::Result<Self, TransferRefused> {
        use Folder::{Archive, Facility, Inbox, Sent, Shared};
        match (from, to) {
            _ if from == to => Err(TransferRefused::SameFolder),
            (Facility, _) | (_, Facility) => Err(TransferRefused::ReadOnly),
            (Shared, _) | (_, Shared) => Err(TransferRefused::Shared),
            (Inbox | Sent, Archive) => Ok(Self::Archive),
            (Archive, Inbox | Sent) => match origin {
                Some(o) if o == to => Ok(Self::Unarchive),
                Some(Sent) => Err(TransferRefused::WasSent),
                _ => Err(TransferRefused::WasReceived),
            },
            (Inbox, Sent) | (Sent, Inbox) => Err(TransferRefused::Between),
            _ => Err(TransferRefused::NotArchive),
        }
    }
}

/// A folder's messages in UID order.
#[derive(Debug, Clone)]
pub struct FolderListing {
    pub folder: Folder,
    pub messages: Vec<FolderItem>,
    /// Above every UID handed out so far; never goes down.
    pub uid_next: i64,
    /// The folder's highest mod-sequence (RFC 7162 HIGHESTMODSEQ).
    pub highest_modseq: i64,
}

/// UIDs are never renumbered, so the validity value never changes.
pub const UID_VALIDITY: u32 = 1;

pub struct Folders {
    postroom: Arc<Postroom>,
    store: Arc<dyn Store>,
}

impl Folders {
    pub fn new(postroom: Arc<Postroom>, store: Arc<dyn Store>) -> Self {
        Self { postroom, store }
    }

    /// The folders this person has, in display order.
    pub fn available(&self, session: &CurrentSession) -> Result<Vec<Folder>> {
        let account = session.require_ready()?;
        let mut out = vec![Folder::Inbox, Folder::Sent, Folder::Archive];
        match account.role {
            Role::Doctor => {}
            Role::Liaison => out.extend([Folder::Shared, Folder::Facility]),
            Role::Clerk => out.push(Folder::Facility),
            Role::Operator => return Err(Error::Forbidden),
        }
        Ok(out)
    }

    /// Whose entries the folder shows: the person, or a key of their facility.
    fn principal(&self, session: &CurrentSession, folder: Folder) -> Result<String> {
        if !self.available(session)?.contains(&folder) {
            return Err(Error::NotFound("folder"));
        }
        let account = &session.account;
        let facility = || account.facility.clone().ok_or(Error::Forbidden);
        Ok(match folder {
            Folder::Inbox | Folder::Sent | Folder::Archive => {
                Principal::Account(account.id.clone()).key()
            }
            Folder::Shared => Principal::LiaisonInbox(facility()?).key(),
            Folder::Facility => Principal::Oversight(facility()?).key(),
        })
    }

    /// Numbers anything new and lists the folder.
    pub async fn listing(&self, session: &CurrentSession, folder: Folder) -> Result<FolderListing> {
        let principal = self.principal(session, folder)?;
        let store = &self.store;
        let highest_modseq = store.sync_folder(&principal, folder.key()).await?;
        let messages = store
            .folder_rows(&principal, folder.key())
            .await?
            .into_iter()
            .map(FolderItem::from)
            .collect();
        let uid_next = store.max_uid().await?.saturating_add(1);
        Ok(FolderListing {
            folder,
            messages,
            uid_next,
            highest_modseq,
        })
    }

    /// UIDs that left the folder after mod-sequence `modseq` (QRESYNC's
    /// VANISHED), as of its last listing.
    pub async fn vanished_since(
        &self,
        session: &CurrentSession,
        folder: Folder,
        modseq: i64,
    ) -> Result<Vec<i64>> {
        let principal = self.principal(session, folder)?;
        Ok(self
            .store
            .vanished_since(&principal, folder.key(), modseq)
            .await?)
    }

    /// Moves `item` of `from` as `Transfer::between` says: archives it, or
    /// brings it back from Archive.
    pub async fn transfer(
        &self,
        session: &CurrentSession,
        from: Folder,
        to: Folder,
        item: &FolderItem,
    ) -> Result<()> {
        let archived = match Transfer::between(from, to, item.origin) {
            Ok(Transfer::Archive) => true,
            Ok(Transfer::Unarchive) => false,
            Err(why) => return Err(Error::Conflict(why.to_string())),
        };
        let principal = self.principal(session, from)?;
        self.store
            .set_flags(&item.envelope_id, &principal, None, None, Some(archived))
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound => Error::NotFound("item"),
                e => e.into(),
            })
    }

    /// A fingerprint of what `listing` would show; unchanged means no news.
    pub async fn version(&self, session: &CurrentSession, folder: Folder) -> Result<Vec<i64>> {
        let principal = self.principal(session, folder)?;
        Ok(self.store.folder_version(&principal, folder.key()).await?)
    }

    /// Sets or clears \Seen and \Flagged. Setting \Seen opens the item, which
    /// records its receipt in the workflow exactly as reading it on the web does.
    pub async fn set_flags(
        &self,
        session: &CurrentSession,
        folder: Folder,
        envelope_id: &str,
        seen: Option<bool>,
        flagged: Option<bool>,
    ) -> Result<()> {
        if folder.read_only() {
            return Err(Error::Forbidden);
        }
        let principal = self.principal(session, folder)?;
        if seen == Some(true) {
            self.postroom.open(session, envelope_id).await?;
        }
        self.store
            .set_flags(envelope_id, &principal, seen, flagged, None)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound => Error::NotFound("item"),
                e => e.into(),
            })
    }

    /// EXPUNGE moves to Archive (and out of Archive, back to where it came from);
    /// nothing is destroyed from a mail client.
    pub async fn expunge(
        &self,
        session: &CurrentSession,
        folder: Folder,
        envelope_id: &str,
    ) -> Result<()> {
        if folder.read_only() {
            return Err(Error::Forbidden);
        }
        let principal = self.principal(session, folder)?;
        self.store
            .set_flags(
                envelope_id,
                &principal,
                None,
                None,
                Some(folder != Folder::Archive),
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound => Error::NotFound("item"),
                e => e.into(),
            })
    }

    /// Opens an item for rendering; `mark` as a non-peek fetch does (seen, and
    /// the workflow's receipt).
    /// Opens many items of the reader's folders without marking anything.
    pub async fn peek_many(
        &self,
        session: &CurrentSession,
        envelope_ids: &[String],
    ) -> Result<Vec<(String, Result<OpenedItem>)>> {
        self.postroom.peek_many(session, envelope_ids).await
    }

    pub async fn open(
        &self,
        session: &CurrentSession,
        envelope_id: &str,
        mark: bool,
    ) -> Result<OpenedItem> {
        if mark {
            self.postroom.open(session, envelope_id).await
        } else {
            self.postroom.peek(session, envelope_id).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_archiving_and_its_undoing_move_anything() {
        use Folder::{Archive, Facility, Inbox, Sent, Shared};
        assert_eq!(
            Transfer::between(Inbox, Archive, Some(Inbox)),
            Ok(Transfer::Archive)
        );
        assert_eq!(
            Transfer::between(Sent, Archive, Some(Sent)),
            Ok(Transfer::Archive)
        );
        assert_eq!(
            Transfer::between(Archive, Inbox, Some(Inbox)),
            Ok(Transfer::Unarchive)
        );
        assert_eq!(
            Transfer::between(Archive, Inbox, Some(Sent)),
            Err(TransferRefused::WasSent)
        );
        assert_eq!(
            Transfer::between(Archive, Sent, Some(Inbox)),
            Err(TransferRefused::WasReceived)
        );
        assert_eq!(
            Transfer::between(Inbox, Sent, Some(Inbox)),
            Err(TransferRefused::Between)
        );
        assert_eq!(
            Transfer::between(Inbox, Inbox, Some(Inbox)),
            Err(TransferRefused::SameFolder)
        );
        assert_eq!(
            Transfer::between(Facility, Archive, None),
            Err(TransferRefused::ReadOnly)
        );
        assert_eq!(
            Transfer::between(Shared, Archive, Some(Inbox)),
            Err(TransferRefused::Shared)
        );
    }
}
