//! LIST, STATUS, SELECT/EXAMINE and the news of the selected folder (NOOP,
//! IDLE): what a client sees of the folders.

use std::collections::HashSet;
use std::num::NonZeroU32;

use imap_next::imap_types::command::SelectParameter;
use imap_next::imap_types::core::{Tag, Vec1};
use imap_next::imap_types::fetch::MessageDataItem;
use imap_next::imap_types::flag::{Flag, FlagNameAttribute, FlagPerm};
use imap_next::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_next::imap_types::response::{Code, Data};
use imap_next::imap_types::status::{StatusDataItem, StatusDataItemName};
use mailbox::CurrentSession;
use mailbox::postroom::folders::UID_VALIDITY;

use super::{Selected, Session, State, error_text};
use crate::imap::codec::{Reply, bad, flags_of, modseq, no, nz, ok, uid_of};
use crate::imap::names::{
    attributes, folder_of, full_pattern, imap_name, list_pattern, matches_pattern, to_mailbox,
};

impl Session {
    pub(super) fn list(
        &self,
        tag: Tag<'static>,
        reference: &Mailbox<'_>,
        wildcard: &ListMailbox<'_>,
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        let pattern = list_pattern(wildcard);
        let available = self.services.folders.available(session).unwrap_or_default();
        if pattern.is_empty() {
            // The hierarchy delimiter query: a flat tree.
            if let Ok(root) = Mailbox::try_from("") {
                out.push(Reply::Data(Data::List {
                    items: vec![FlagNameAttribute::Noselect],
                    delimiter: None,
                    mailbox: root,
                }));
            }
        } else {
            let pattern = full_pattern(reference, &pattern);
            for f in available {
                if matches_pattern(&pattern, imap_name(f))
                    && let Some(m) = to_mailbox(f)
                {
                    out.push(Reply::Data(Data::List {
                        items: attributes(f),
                        delimiter: None,
                        mailbox: m,
                    }));
                }
            }
        }
        out.push(ok(Some(tag), None, "LIST done"));
    }

    pub(super) async fn status(
        &self,
        tag: Tag<'static>,
        mailbox: Mailbox<'static>,
        item_names: &[StatusDataItemName],
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        let Some(folder) = folder_of(&mailbox) else {
            out.push(no(Some(tag), Some(Code::TryCreate), "no such folder"));
            return;
        };
        let listing = match self.services.folders.listing(session, folder).await {
            Ok(listing) => listing,
            Err(e) => {
                out.push(no(Some(tag), None, &error_text(&e)));
                return;
            }
        };
        let unseen = listing.messages.iter().filter(|m| !m.seen).count();
        let items: Vec<StatusDataItem> = item_names
            .iter()
            .filter_map(|n| match n {
                StatusDataItemName::Messages => Some(StatusDataItem::Messages(
                    u32::try_from(listing.messages.len()).unwrap_or(u32::MAX),
                )),
                StatusDataItemName::Recent => Some(StatusDataItem::Recent(0)),
                StatusDataItemName::UidNext => u32::try_from(listing.uid_next)
                    .ok()
                    .and_then(NonZeroU32::new)
                    .map(StatusDataItem::UidNext),
                StatusDataItemName::UidValidity => {
                    NonZeroU32::new(UID_VALIDITY).map(StatusDataItem::UidValidity)
                }
                StatusDataItemName::Unseen => Some(StatusDataItem::Unseen(
                    u32::try_from(unseen).unwrap_or(u32::MAX),
                )),
                StatusDataItemName::HighestModSeq => Some(StatusDataItem::HighestModSeq(
                    u64::try_from(listing.highest_modseq).unwrap_or(1),
                )),
                _ => None,
            })
            .collect();
        out.push(Reply::Data(Data::Status {
            mailbox,
            items: items.into(),
        }));
        out.push(ok(Some(tag), None, "STATUS done"));
    }

    pub(super) async fn select(
        &mut self,
        tag: Tag<'static>,
        mailbox: &Mailbox<'static>,
        examine: bool,
        parameters: &[SelectParameter],
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        let known = match self.select_parameters(parameters) {
            Ok(known) => known,
            Err(text) => {
                out.push(bad(Some(tag), text));
                return;
            }
        };
        // A failed SELECT leaves no folder selected (RFC 3501 6.3.1); leaving
        // one is told with CLOSED (RFC 7162 3.2.11).
        if self.selected() {
            out.push(ok(None, Some(Code::Closed), "previous folder closed"));
        }
        self.state = State::Authenticated;
        let Some(folder) = folder_of(mailbox) else {
            out.push(no(Some(tag), None, "no such folder"));
            return;
        };
        // Read before listing: a change in between shows at the next look.
        let version = self
            .services
            .folders
            .version(session, folder)
            .await
            .unwrap_or_default();
        let listing = match self.services.folders.listing(session, folder).await {
            Ok(l) => l,
            Err(e) => {
                out.push(no(Some(tag), None, &error_text(&e)));
                return;
            }
        };
        // EXAMINE opens any folder read-only; Facility is read-only however opened.
        let read_only = examine || folder.read_only();
        out.push(Reply::Data(Data::Flags(vec![
            Flag::Seen,
            Flag::Flagged,
            Flag::Deleted,
        ])));
        out.push(Reply::Data(Data::Exists(
            u32::try_from(listing.messages.len()).unwrap_or(u32::MAX),
        )));
        out.push(Reply::Data(Data::Recent(0)));
        if let Some(first_unseen) = listing.messages.iter().position(|m| !m.seen)
            && let Some(n) = nz(first_unseen + 1)
        {
            out.push(ok(None, Some(Code::Unseen(n)), "first unseen"));
        }
        if let Some(v) = NonZeroU32::new(UID_VALIDITY) {
            out.push(ok(None, Some(Code::UidValidity(v)), "UIDs valid"));
        }
        if let Some(next) = u32::try_from(listing.uid_next)
            .ok()
            .and_then(NonZeroU32::new)
        {
            out.push(ok(None, Some(Code::UidNext(next)), "predicted next UID"));
        }
        let perm = if read_only {
            Vec::new()
        } else {
            vec![
                FlagPerm::Flag(Flag::Seen),
                FlagPerm::Flag(Flag::Flagged),
                FlagPerm::Flag(Flag::Deleted),
            ]
        };
        out.push(ok(None, Some(Code::PermanentFlags(perm)), "flags"));
        if let Some(m) = modseq(listing.highest_modseq) {
            out.push(ok(
                None,
                Some(Code::HighestModSeq(m)),
                "highest mod-sequence",
            ));
        }
        self.state = State::Selected(Selected {
            folder,
            read_only,
            messages: listing.messages,
            deleted: HashSet::new(),
            version,
        });
        if let Some(known) = known {
            self.resync(&known, session, out).await;
        }
        if read_only {
            out.push(ok(
                Some(tag),
                Some(Code::ReadOnly),
                "EXAMINE done (read-only)",
            ));
        } else {
            out.push(ok(Some(tag), Some(Code::ReadWrite), "SELECT done"));
        }
    }

    /// Untagged news for the selected folder: expunged and new messages.
    pub async fn changes(&mut self) -> Vec<Reply> {
        let mut out = Vec::new();
        let Some((_, session)) = self.signed_in.clone() else {
            return out;
        };
        let State::Selected(sel) = &mut self.state else {
            return out;
        };
        // An idling client looks often; one read tells whether anything changed.
        let Ok(version) = self.services.folders.version(&session, sel.folder).await else {
            return out;
        };
        if version == sel.version {
            return out;
        }
        let Ok(listing) = self.services.folders.listing(&session, sel.folder).await else {
            return out;
        };
        sel.version = version;
        let now: HashSet<i64> = listing.messages.iter().map(|m| m.uid).collect();
        // Expunges from the highest sequence number down keep numbers valid.
        let mut gone = Vec::new();
        for i in (0..sel.messages.len()).rev() {
            if !now.contains(&sel.messages[i].uid) {
                gone.push((i + 1, sel.messages.remove(i).uid));
            }
        }
        let condstore = self.condstore;
        let known: HashSet<i64> = sel.messages.iter().map(|m| m.uid).collect();
        let before = sel.messages.len();
        let mut changed_flags = Vec::new();
        for m in listing.messages {
            if known.contains(&m.uid) {
                if let Some(pos) = sel.messages.iter().position(|o| o.uid == m.uid)
                    && (sel.messages[pos].seen != m.seen
                        || sel.messages[pos].flagged != m.flagged
                        || (condstore && sel.messages[pos].modseq != m.modseq))
                {
                    sel.messages[pos] = m;
                    changed_flags.push(pos);
                }
            } else {
                sel.messages.push(m);
            }
        }
        if sel.messages.len() != before {
            out.push(Reply::Data(Data::Exists(
                u32::try_from(sel.messages.len()).unwrap_or(u32::MAX),
            )));
        }
        for pos in changed_flags {
            let row = &sel.messages[pos];
            let deleted = sel.deleted.contains(&row.envelope_id);
            if let (Some(seq), Some(uid)) = (nz(pos + 1), uid_of(row)) {
                let mut items = vec![
                    MessageDataItem::Flags(flags_of(row, deleted)),
                    MessageDataItem::Uid(uid),
                ];
                if condstore {
                    items.extend(modseq(row.modseq).map(MessageDataItem::ModSeq));
                }
                if let Ok(items) = Vec1::try_from(items) {
                    out.push(Reply::Data(Data::Fetch { seq, items }));
                }
            }
        }
        // Expunges first (in the order taken), then the rest, as numbered after them.
        let mut told: Vec<Reply> = gone
            .into_iter()
            .filter_map(|(seq, uid)| self.expunged(seq, uid))
            .collect();
        told.append(&mut out);
        told
    }
}
