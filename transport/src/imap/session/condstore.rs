//! ENABLE and RFC 7162's mod-sequences: CONDSTORE (MODSEQ, CHANGEDSINCE,
//! UNCHANGEDSINCE) and QRESYNC (SELECT with what the client knows, VANISHED).
//! The mod-sequences themselves are kept by the store, given when a folder
//! is listed (`mailbox::folders`).

use std::num::NonZeroU32;

use imap_next::imap_types::command::{FetchModifier, SelectParameter};
use imap_next::imap_types::core::{Tag, Vec1};
use imap_next::imap_types::extensions::enable::CapabilityEnable;
use imap_next::imap_types::fetch::MessageDataItem;
use imap_next::imap_types::response::Data;
use imap_next::imap_types::sequence::SequenceSet;
use mailbox::CurrentSession;

use super::fetch::FetchArgs;
use super::{Session, State, error_text};
use crate::imap::codec::{Reply, bad, flags_of, in_set, modseq, no, nz, ok, sequence_set, uid_of};

/// What a client said it knows at SELECT (QRESYNC).
pub(super) struct Known {
    modseq: i64,
    /// UIDs it knows; `None` means all up to UIDNEXT.
    uids: Option<SequenceSet>,
}

impl Session {
    pub(super) fn enable(
        &mut self,
        tag: Tag<'static>,
        wanted: &[CapabilityEnable<'static>],
        out: &mut Vec<Reply>,
    ) {
        let mut enabled = Vec::new();
        for c in wanted {
            match c {
                CapabilityEnable::CondStore => {
                    self.condstore = true;
                    enabled.push(c.clone());
                }
                CapabilityEnable::Other(_) if c.to_string().eq_ignore_ascii_case("QRESYNC") => {
                    // QRESYNC implies CONDSTORE (RFC 7162 3.2.3).
                    self.condstore = true;
                    self.qresync = true;
                    enabled.push(c.clone());
                }
                _ => {}
            }
        }
        out.push(Reply::Data(Data::Enabled {
            capabilities: enabled,
        }));
        out.push(ok(Some(tag), None, "ENABLE done"));
    }

    /// SELECT's parameters: `(CONDSTORE)` enables it; `(QRESYNC …)` needs
    /// QRESYNC enabled first and says what the client knows. `Err` is the
    /// BAD text.
    pub(super) fn select_parameters(
        &mut self,
        parameters: &[SelectParameter],
    ) -> Result<Option<Known>, &'static str> {
        let mut known = None;
        for p in parameters {
            match p {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    ..
                } => {
                    if !self.qresync {
                        return Err("ENABLE QRESYNC first");
                    }
                    // Another UIDVALIDITY: the client must resync fully.
                    if uid_validity.get() == mailbox::postroom::folders::UID_VALIDITY {
                        known = Some(Known {
                            modseq: i64::try_from(mod_sequence_value.get()).unwrap_or(i64::MAX),
                            uids: known_uids.clone(),
                        });
                    }
                }
            }
        }
        Ok(known)
    }

    /// After SELECT (QRESYNC …): what left since the client's mod-sequence,
    /// then the messages changed since (RFC 7162 3.2.5).
    pub(super) async fn resync(
        &mut self,
        known: &Known,
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        let State::Selected(sel) = &self.state else {
            return;
        };
        let folder = sel.folder;
        if let Ok(gone) = self
            .services
            .folders
            .vanished_since(session, folder, known.modseq)
            .await
        {
            out.extend(vanished(&gone, known.uids.as_ref(), true));
        }
        let State::Selected(sel) = &self.state else {
            return;
        };
        for (i, row) in sel.messages.iter().enumerate() {
            if row.modseq > known.modseq
                && let (Some(seq), Some(uid), Some(m)) =
                    (nz(i + 1), uid_of(row), modseq(row.modseq))
            {
                let deleted = sel.deleted.contains(&row.envelope_id);
                let items = vec![
                    MessageDataItem::Uid(uid),
                    MessageDataItem::Flags(flags_of(row, deleted)),
                    MessageDataItem::ModSeq(m),
                ];
                if let Ok(items) = Vec1::try_from(items) {
                    out.push(Reply::Data(Data::Fetch { seq, items }));
                }
            }
        }
    }

    /// FETCH with its modifiers: `CHANGEDSINCE` keeps the messages changed
    /// since (and adds MODSEQ); `VANISHED` (UID FETCH, QRESYNC) first tells
    /// which of the set left since.
    pub(super) async fn fetch_command(
        &mut self,
        tag: Tag<'static>,
        mut fetch: FetchArgs,
        modifiers: &[FetchModifier],
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        let (sequence_set, uid) = (&fetch.sequence_set, fetch.uid);
        let mut changed_since = None;
        let mut want_vanished = false;
        for m in modifiers {
            match m {
                FetchModifier::ChangedSince(n) => {
                    changed_since = Some(i64::try_from(n.get()).unwrap_or(i64::MAX));
                }
                FetchModifier::Vanished => want_vanished = true,
            }
        }
        if want_vanished {
            if !(uid && self.qresync && changed_since.is_some()) {
                out.push(bad(
                    Some(tag),
                    "VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled",
                ));
                return;
            }
            let folder = match &self.state {
                State::Selected(sel) => sel.folder,
                _ => return,
            };
            let since = changed_since.unwrap_or_default();
            match self
                .services
                .folders
                .vanished_since(session, folder, since)
                .await
            {
                Ok(gone) => out.extend(vanished(&gone, Some(sequence_set), true)),
                Err(e) => {
                    out.push(no(Some(tag), None, &error_text(&e)));
                    return;
                }
            }
        }
        if changed_since.is_some() {
            self.condstore = true;
        }
        fetch.changed_since = changed_since;
        self.fetch(tag, fetch, session, out).await;
    }

    /// One removed message, as the client was told to expect it: VANISHED
    /// once QRESYNC is on, EXPUNGE otherwise.
    pub(super) fn expunged(&self, seq: usize, uid: i64) -> Option<Reply> {
        if self.qresync {
            let uid = u32::try_from(uid).ok()?;
            vanished(&[i64::from(uid)], None, false).pop()
        } else {
            Data::expunge(nz(seq)?.get()).ok().map(Reply::Data)
        }
    }

    /// Mod-sequences of the rows at `indices` brought up to date after this
    /// session changed them (one listing); other news waits for `changes`.
    pub(super) async fn refresh_modseqs(&mut self, session: &CurrentSession, indices: &[usize]) {
        let folder = match &self.state {
            State::Selected(sel) => sel.folder,
            _ => return,
        };
        let Ok(listing) = self.services.folders.listing(session, folder).await else {
            return;
        };
        let State::Selected(sel) = &mut self.state else {
            return;
        };
        for i in indices {
            if let Some(row) = sel.messages.get_mut(*i)
                && let Some(now) = listing.messages.iter().find(|m| m.uid == row.uid)
            {
                row.modseq = now.modseq;
            }
        }
    }
}

/// `* VANISHED [(EARLIER)] uids`, limited to `within` (a UID set) if given.
fn vanished(gone: &[i64], within: Option<&SequenceSet>, earlier: bool) -> Vec<Reply> {
    let uids: Vec<u32> = gone
        .iter()
        .filter_map(|u| u32::try_from(*u).ok())
        .filter(|u| within.is_none_or(|set| in_set(set, *u, u32::MAX)))
        .collect();
    let Some(known_uids) = sequence_set(&uids) else {
        return Vec::new();
    };
    vec![Reply::Data(Data::Vanished {
        earlier,
        known_uids,
    })]
}

/// Sequence numbers or UIDs of `indices`, for a MODIFIED response code.
pub(super) fn numbers(rows: &[(usize, i64)], uid: bool) -> Option<SequenceSet> {
    let values: Vec<u32> = rows
        .iter()
        .filter_map(|(i, u)| {
            if uid {
                u32::try_from(*u).ok()
            } else {
                nz(i + 1).map(NonZeroU32::get)
            }
        })
        .collect();
    sequence_set(&values)
}
