//! STORE and EXPUNGE: flags set on the items, and "expunge" as archiving
//! (nothing is ever destroyed from a client).

use imap_next::imap_types::core::Tag;
use imap_next::imap_types::fetch::MessageDataItemName;
use imap_next::imap_types::flag::{Flag, StoreType};
use imap_next::imap_types::response::Code;
use imap_next::imap_types::sequence::SequenceSet;
use mailbox::CurrentSession;

use super::condstore::numbers;
use super::{Session, State, error_text};
use crate::imap::codec::{Reply, bad, in_set, no, ok, uid_of};

/// What a STORE sets, and whether it answers with the new flags.
pub(super) struct StoreFlags {
    pub kind: StoreType,
    pub flags: Vec<Flag<'static>>,
    pub silent: bool,
    /// UNCHANGEDSINCE (RFC 7162 3.1.3): messages changed after it are left alone.
    pub unchanged_since: Option<u64>,
}

impl Session {
    pub(super) async fn store(
        &mut self,
        tag: Tag<'static>,
        sequence_set: &SequenceSet,
        store: &StoreFlags,
        uid: bool,
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        if self.read_only() {
            out.push(no(
                Some(tag),
                Some(Code::ReadOnly),
                "this folder is read-only",
            ));
            return;
        }
        if !uid && self.out_of_range(sequence_set) {
            out.push(bad(Some(tag), "no such message number"));
            return;
        }
        let mut stored = Vec::new();
        let mut modified = Vec::new();
        for i in self.resolve(sequence_set, uid) {
            let row_modseq = match &self.state {
                State::Selected(sel) => sel.messages.get(i).map(|m| (m.modseq, m.uid)),
                _ => None,
            };
            if let (Some(limit), Some((m, u))) = (store.unchanged_since, row_modseq)
                && u64::try_from(m).unwrap_or(u64::MAX) > limit
            {
                modified.push((i, u));
                continue;
            }
            if let Err(text) = self.store_one(session, i, &store.kind, &store.flags).await {
                out.push(no(Some(tag), None, &text));
                return;
            }
            stored.push(i);
        }
        if store.unchanged_since.is_some() {
            self.condstore = true;
        }
        if self.condstore && !stored.is_empty() {
            self.refresh_modseqs(session, &stored).await;
        }
        // With CONDSTORE on, even a silent STORE tells the new MODSEQ.
        let names = match (store.silent, self.condstore) {
            (true, false) => Vec::new(),
            (true, true) => vec![MessageDataItemName::Uid, MessageDataItemName::ModSeq],
            (false, _) => {
                let mut n = vec![MessageDataItemName::Flags];
                if uid {
                    n.insert(0, MessageDataItemName::Uid);
                }
                if self.condstore {
                    n.push(MessageDataItemName::ModSeq);
                }
                n
            }
        };
        if !names.is_empty() {
            for i in stored {
                if let Ok(Some(reply)) = self.fetch_one(session, i, &names).await {
                    out.push(reply);
                }
            }
        }
        if let Some(set) = numbers(&modified, uid) {
            out.push(ok(
                Some(tag),
                Some(Code::Modified(set)),
                "STORE done (some changed since)",
            ));
            return;
        }
        out.push(ok(Some(tag), None, "STORE done"));
    }

    /// Archives the messages marked `\Deleted` (those in `only` too, for UID
    /// EXPUNGE), highest sequence number first.
    pub(super) async fn expunge(
        &mut self,
        session: &CurrentSession,
        silent: bool,
        only: Option<&SequenceSet>,
    ) -> Result<Vec<Reply>, String> {
        let mut out = Vec::new();
        let count = match &self.state {
            State::Selected(sel) if !sel.read_only => sel.messages.len(),
            _ => return Ok(out),
        };
        let largest = match &self.state {
            State::Selected(sel) => sel.messages.last().and_then(uid_of).map_or(0, |u| u.get()),
            _ => 0,
        };
        for i in (0..count).rev() {
            let State::Selected(sel) = &mut self.state else {
                break;
            };
            let (id, uid) = (sel.messages[i].envelope_id.clone(), sel.messages[i].uid);
            let named =
                only.is_none_or(|set| u32::try_from(uid).is_ok_and(|u| in_set(set, u, largest)));
            if sel.deleted.contains(&id) && named {
                self.services
                    .folders
                    .expunge(session, sel.folder, &id)
                    .await
                    .map_err(|e| error_text(&e))?;
                sel.messages.remove(i);
                sel.deleted.remove(&id);
                if !silent {
                    out.extend(self.expunged(i + 1, uid));
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn store_one(
        &mut self,
        session: &CurrentSession,
        i: usize,
        kind: &StoreType,
        flags: &[Flag<'static>],
    ) -> Result<(), String> {
        let State::Selected(sel) = &mut self.state else {
            return Ok(());
        };
        let row = sel.messages[i].clone();
        let has = |f: Flag<'static>| flags.contains(&f);
        let target = |current: bool, f: Flag<'static>| -> Option<bool> {
            match kind {
                StoreType::Add => has(f).then_some(true),
                StoreType::Remove => has(f).then_some(false),
                StoreType::Replace => Some(has(f)),
            }
            .filter(|v| *v != current)
        };
        let seen = target(row.seen, Flag::Seen);
        let flagged = target(row.flagged, Flag::Flagged);
        let deleted_now = sel.deleted.contains(&row.envelope_id);
        if let Some(d) = target(deleted_now, Flag::Deleted) {
            if d {
                sel.deleted.insert(row.envelope_id.clone());
            } else {
                sel.deleted.remove(&row.envelope_id);
            }
        }
        if seen.is_some() || flagged.is_some() {
            self.services
                .folders
                .set_flags(session, sel.folder, &row.envelope_id, seen, flagged)
                .await
                .map_err(|e| error_text(&e))?;
            let m = &mut sel.messages[i];
            if let Some(s) = seen {
                m.seen = s;
            }
            if let Some(f) = flagged {
                m.flagged = f;
            }
        }
        Ok(())
    }
}
