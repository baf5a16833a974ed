//! STORE and EXPUNGE: flags set on the items, and "expunge" as archiving
//! (nothing is ever destroyed from a client).

use imap_next::imap_types::core::Tag;
use imap_next::imap_types::fetch::MessageDataItemName;
use imap_next::imap_types::flag::{Flag, StoreType};
use imap_next::imap_types::response::{Code, Data};
use imap_next::imap_types::sequence::SequenceSet;
use mailbox::CurrentSession;

use super::{Session, State, error_text};
use crate::imap::codec::{Reply, bad, no, nz, ok};

/// What a STORE sets, and whether it answers with the new flags.
pub(super) struct StoreFlags {
    pub kind: StoreType,
    pub flags: Vec<Flag<'static>>,
    pub silent: bool,
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
        for i in self.resolve(sequence_set, uid) {
            if let Err(text) = self.store_one(session, i, &store.kind, &store.flags).await {
                out.push(no(Some(tag), None, &text));
                return;
            }
            if !store.silent {
                let names = if uid {
                    vec![MessageDataItemName::Uid, MessageDataItemName::Flags]
                } else {
                    vec![MessageDataItemName::Flags]
                };
                if let Ok(Some(reply)) = self.fetch_one(session, i, &names).await {
                    out.push(reply);
                }
            }
        }
        out.push(ok(Some(tag), None, "STORE done"));
    }

    pub(super) async fn expunge(
        &mut self,
        session: &CurrentSession,
        silent: bool,
    ) -> Result<Vec<Reply>, String> {
        let State::Selected(sel) = &mut self.state else {
            return Ok(Vec::new());
        };
        if sel.read_only {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for i in (0..sel.messages.len()).rev() {
            let id = sel.messages[i].envelope_id.clone();
            if sel.deleted.contains(&id) {
                self.services
                    .folders
                    .expunge(session, sel.folder, &id)
                    .await
                    .map_err(|e| error_text(&e))?;
                sel.messages.remove(i);
                sel.deleted.remove(&id);
                if !silent
                    && let Some(n) = nz(i + 1)
                    && let Ok(d) = Data::expunge(n.get())
                {
                    out.push(Reply::Data(d));
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
