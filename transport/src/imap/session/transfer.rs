//! COPY and MOVE (RFC 6851) with Renkei's meaning: folders are views of one
//! set of items, so moving to Archive archives, moving from Archive back to
//! INBOX (or Sent) undoes that, and anything else is refused with the reason
//! (`mailbox::folders::Transfer`). A COPY does the same (nothing can exist
//! twice); the item leaves the source folder at the client's next look, while
//! a MOVE tells its expunges at once. Both answer COPYUID (RFC 4315).

use std::num::NonZeroU32;

use imap_next::imap_types::core::Tag;
use imap_next::imap_types::mailbox::Mailbox;
use imap_next::imap_types::response::Code;
use imap_next::imap_types::sequence::SequenceSet;
use mailbox::CurrentSession;
use mailbox::postroom::folders::{FolderItem, Transfer, UID_VALIDITY};

use super::{Session, State, error_text};
use crate::imap::codec::{Reply, bad, no, ok, uid_of, uid_set};
use crate::imap::names::{destination_of, imap_name};

/// What a COPY or MOVE names.
pub(super) struct TransferArgs {
    pub sequence_set: SequenceSet,
    pub mailbox: Mailbox<'static>,
    pub uid: bool,
    pub is_move: bool,
}

impl Session {
    pub(super) async fn transfer(
        &mut self,
        tag: Tag<'static>,
        args: &TransferArgs,
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        let verb = if args.is_move { "MOVE" } else { "COPY" };
        let (from, read_only) = match &self.state {
            State::Selected(sel) => (sel.folder, sel.read_only),
            _ => return,
        };
        if read_only {
            let text = format!("this folder is read-only: {verb} would change it");
            out.push(no(Some(tag), Some(Code::ReadOnly), &text));
            return;
        }
        let Some(to) = destination_of(&args.mailbox) else {
            out.push(no(Some(tag), Some(Code::TryCreate), "no such folder"));
            return;
        };
        if !args.uid && self.out_of_range(&args.sequence_set) {
            out.push(bad(Some(tag), "no such message number"));
            return;
        }
        let indices = self.resolve(&args.sequence_set, args.uid);
        let items: Vec<FolderItem> = match &self.state {
            State::Selected(sel) => indices
                .iter()
                .filter_map(|i| sel.messages.get(*i).cloned())
                .collect(),
            _ => return,
        };
        if items.is_empty() {
            out.push(ok(Some(tag), None, &format!("{verb} done: nothing named")));
            return;
        }
        // All or nothing: every item's move must mean something.
        let mut meaning = None;
        for item in &items {
            match Transfer::between(from, to, item.origin) {
                Ok(t) => meaning = Some(t),
                Err(why) => {
                    out.push(no(Some(tag), None, &format!("{verb} refused: {why}")));
                    return;
                }
            }
        }
        for item in &items {
            if let Err(e) = self
                .services
                .folders
                .transfer(session, from, to, item)
                .await
            {
                out.push(no(Some(tag), None, &error_text(&e)));
                return;
            }
        }
        let code = self.copy_uid(session, to, &items).await;
        let done = match meaning {
            Some(Transfer::Unarchive) => format!("{verb} done: back in {}", imap_name(to)),
            _ => format!("{verb} done: archived"),
        };
        if args.is_move {
            // RFC 6851 4.3: COPYUID untagged, then the expunges.
            if let Some(code) = code {
                out.push(ok(None, Some(code), "moved"));
            }
            self.forget(&items, out);
            out.push(ok(Some(tag), None, &done));
        } else {
            out.push(ok(Some(tag), code, &done));
        }
    }

    /// COPYUID: the items' UIDs here and in `to` (numbered now), in the same
    /// order; none if any is missing there.
    async fn copy_uid(
        &self,
        session: &CurrentSession,
        to: mailbox::postroom::folders::Folder,
        items: &[FolderItem],
    ) -> Option<Code<'static>> {
        let listing = self.services.folders.listing(session, to).await.ok()?;
        let mut source = Vec::with_capacity(items.len());
        let mut destination = Vec::with_capacity(items.len());
        for item in items {
            let there = listing
                .messages
                .iter()
                .find(|m| m.envelope_id == item.envelope_id)?;
            source.push(uid_of(item)?);
            destination.push(uid_of(there)?);
        }
        Some(Code::CopyUid {
            uid_validity: NonZeroU32::new(UID_VALIDITY)?,
            source: uid_set(&source)?,
            destination: uid_set(&destination)?,
        })
    }

    /// Drops moved items from the selected folder, telling each expunge.
    fn forget(&mut self, items: &[FolderItem], out: &mut Vec<Reply>) {
        let State::Selected(sel) = &mut self.state else {
            return;
        };
        let mut gone = Vec::new();
        for i in (0..sel.messages.len()).rev() {
            if items.iter().any(|m| m.uid == sel.messages[i].uid) {
                let row = sel.messages.remove(i);
                sel.deleted.remove(&row.envelope_id);
                gone.push((i + 1, row.uid));
            }
        }
        for (seq, uid) in gone {
            out.extend(self.expunged(seq, uid));
        }
    }
}
