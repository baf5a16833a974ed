//! FETCH: messages rendered on demand from the sealed items (whole, or only
//! their summaries for a message list), served in the items a client names.

use std::borrow::Cow;
use std::sync::Arc;

use imap_next::imap_types::body::BodyStructure;
use imap_next::imap_types::core::{AString, Tag, Vec1};
use imap_next::imap_types::datetime::DateTime;
use imap_next::imap_types::envelope::Envelope;
use imap_next::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Part, Section,
};
use imap_next::imap_types::response::Data;
use imap_next::imap_types::sequence::SequenceSet;
use mailbox::CurrentSession;
use mailbox::postroom::folders::FolderItem;

use super::{Session, State, error_text};
use crate::imap::codec::{Reply, bad, flags_of, literal, modseq, no, nz, ok, uid_of};
use crate::imap::render::{Parties, Rendered, SharedBuf, Summary, render, summarize};
use crate::imap::structure::header_fields;

/// What one message's FETCH items are made from.
pub(super) struct Sources {
    pub(super) row: FolderItem,
    pub(super) deleted: bool,
    pub(super) rendered: Option<Arc<Rendered>>,
    pub(super) summary: Option<Arc<Summary>>,
}

impl Sources {
    fn header(&self) -> Option<&[u8]> {
        match (&self.rendered, &self.summary) {
            (Some(r), _) => Some(&r.bytes[..r.header_len]),
            (None, Some(s)) => Some(&s.header),
            (None, None) => None,
        }
    }

    pub(super) fn size(&self) -> Option<u32> {
        match (&self.rendered, &self.summary) {
            (Some(r), _) => Some(u32::try_from(r.bytes.len()).unwrap_or(u32::MAX)),
            (None, Some(s)) => Some(s.size),
            (None, None) => None,
        }
    }

    fn envelope(&self) -> Option<&Envelope<'static>> {
        match (&self.rendered, &self.summary) {
            (Some(r), _) => Some(&r.envelope),
            (None, Some(s)) => Some(&s.envelope),
            (None, None) => None,
        }
    }

    fn body_structure(&self) -> Option<&BodyStructure<'static>> {
        match (&self.rendered, &self.summary) {
            (Some(r), _) => r.structure.as_ref().map(|s| &s.body_structure),
            (None, Some(s)) => s.body_structure.as_ref(),
            (None, None) => None,
        }
    }

    /// One FETCH item; `None` when this message has nothing for it.
    pub(super) fn item(
        &self,
        name: &MessageDataItemName<'static>,
    ) -> Result<Option<MessageDataItem<'static>>, String> {
        let row = &self.row;
        Ok(match name {
            MessageDataItemName::Uid => uid_of(row).map(MessageDataItem::Uid),
            MessageDataItemName::Flags => Some(MessageDataItem::Flags(flags_of(row, self.deleted))),
            MessageDataItemName::InternalDate => {
                chrono::DateTime::from_timestamp(row.created_at, 0)
                    .map(|d| d.fixed_offset())
                    .and_then(|d| DateTime::try_from(d).ok())
                    .map(MessageDataItem::InternalDate)
            }
            MessageDataItemName::Rfc822Size => self.size().map(MessageDataItem::Rfc822Size),
            MessageDataItemName::Envelope => self
                .envelope()
                .map(|e| MessageDataItem::Envelope(e.clone())),
            MessageDataItemName::Rfc822 => self
                .rendered
                .as_ref()
                .map(|r| MessageDataItem::Rfc822(literal(&r.bytes))),
            MessageDataItemName::Rfc822Header => self
                .header()
                .map(|h| MessageDataItem::Rfc822Header(literal(h))),
            MessageDataItemName::Rfc822Text => self
                .rendered
                .as_ref()
                .map(|r| MessageDataItem::Rfc822Text(literal(&r.bytes[r.header_len..]))),
            MessageDataItemName::BodyStructure | MessageDataItemName::Body => {
                let Some(b) = self.body_structure() else {
                    return Err("the message structure could not be read".into());
                };
                Some(if matches!(name, MessageDataItemName::Body) {
                    MessageDataItem::Body(b.clone())
                } else {
                    MessageDataItem::BodyStructure(b.clone())
                })
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => self.body_section(section.as_ref(), *partial),
            MessageDataItemName::ModSeq => modseq(row.modseq).map(MessageDataItem::ModSeq),
            _ => return Err("BINARY is not served; use BODY[]".into()),
        })
    }

    /// `BODY[section]<partial>`: sections past the header need the whole message.
    fn body_section(
        &self,
        section: Option<&Section<'static>>,
        partial: Option<(u32, std::num::NonZeroU32)>,
    ) -> Option<MessageDataItem<'static>> {
        let header = self.header()?;
        let rendered = self.rendered.as_ref();
        let bytes: &[u8] = rendered.map_or(&[], |r| r.bytes.as_slice());
        let body_from = rendered.map_or(0, |r| r.header_len);
        let part = |p: &Part| {
            rendered
                .and_then(|r| r.structure.as_ref())
                .and_then(|s| s.part(p.0.as_ref()))
                .cloned()
        };
        let names = |list: &Vec1<AString<'static>>| -> Vec<String> {
            list.as_ref()
                .iter()
                .map(|n| String::from_utf8_lossy(n.as_ref()).into_owned())
                .collect()
        };
        let whole: Cow<'_, [u8]> = match section {
            None => bytes.into(),
            Some(Section::Header(None)) => header.into(),
            Some(Section::Text(None)) => bytes.get(body_from..).unwrap_or_default().into(),
            Some(Section::HeaderFields(None, list)) => {
                header_fields(header, &names(list), false).into()
            }
            Some(Section::HeaderFieldsNot(None, list)) => {
                header_fields(header, &names(list), true).into()
            }
            Some(Section::Part(p)) => match part(p) {
                Some(range) => bytes.get(range.body).unwrap_or_default().into(),
                None => Vec::new().into(),
            },
            Some(Section::Mime(p)) => match part(p) {
                Some(range) => bytes.get(range.mime).unwrap_or_default().into(),
                None => Vec::new().into(),
            },
            // Sections inside a nested message/rfc822: there are none.
            Some(_) => Vec::new().into(),
        };
        let whole: &[u8] = &whole;
        let (data, origin) = match partial {
            Some((start, len)) => {
                let start = usize::try_from(start).unwrap_or(usize::MAX);
                let len = usize::try_from(len.get()).unwrap_or(usize::MAX);
                let from = start.min(whole.len());
                let to = from.saturating_add(len).min(whole.len());
                (&whole[from..to], u32::try_from(from).ok())
            }
            None => (whole, None),
        };
        Some(MessageDataItem::BodyExt {
            section: section.cloned(),
            origin,
            data: literal(data),
        })
    }
}

/// The item names a macro stands for.
fn item_names(m: MacroOrMessageDataItemNames<'static>) -> Vec<MessageDataItemName<'static>> {
    match m {
        MacroOrMessageDataItemNames::Macro(m) => match m {
            Macro::Fast => vec![
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
            ],
            Macro::All => vec![
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
                MessageDataItemName::Envelope,
            ],
            _ => vec![
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
                MessageDataItemName::Envelope,
                MessageDataItemName::Body,
            ],
        },
        MacroOrMessageDataItemNames::MessageDataItemNames(n) => n,
    }
}

/// What a FETCH names, and its CHANGEDSINCE (RFC 7162).
pub(super) struct FetchArgs {
    pub sequence_set: SequenceSet,
    pub names: MacroOrMessageDataItemNames<'static>,
    pub uid: bool,
    pub changed_since: Option<i64>,
}

impl Session {
    pub(super) async fn fetch(
        &mut self,
        tag: Tag<'static>,
        args: FetchArgs,
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        let (sequence_set, uid) = (&args.sequence_set, args.uid);
        if !uid && self.out_of_range(sequence_set) {
            out.push(bad(Some(tag), "no such message number"));
            return;
        }
        let mut names = item_names(args.names);
        if uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        // CONDSTORE on: FETCH answers carry MODSEQ (RFC 7162 3.1.4.1).
        // Asking for MODSEQ turns CONDSTORE on (RFC 7162 3.1).
        self.condstore |= names.contains(&MessageDataItemName::ModSeq);
        if self.condstore && !names.contains(&MessageDataItemName::ModSeq) {
            names.push(MessageDataItemName::ModSeq);
        }
        let mut indices = self.resolve(sequence_set, uid);
        if let (Some(since), State::Selected(sel)) = (args.changed_since, &self.state) {
            indices.retain(|i| sel.messages.get(*i).is_some_and(|m| m.modseq > since));
        }
        let (full, summary) = summary_or_full(&names);
        if (full, summary) == (false, true) {
            self.prefetch_summaries(session, &indices).await;
        }
        for batch in indices.chunks(super::prefetch::BATCH) {
            if full {
                self.prefetch_rendered(session, batch).await;
            }
            for &i in batch {
                match self.fetch_one(session, i, &names).await {
                    Ok(Some(reply)) => out.push(reply),
                    Ok(None) => {}
                    Err(text) => {
                        out.push(no(Some(tag), None, &text));
                        return;
                    }
                }
            }
        }
        out.push(ok(Some(tag), None, "FETCH done"));
    }

    /// Who sent an item and the reader, as a message names them.
    pub(super) async fn parties(&mut self, session: &CurrentSession, sender_id: &str) -> Parties {
        let (sender_name, sender_facility) = match self.decrypted.senders.get(sender_id) {
            Some(known) => known.clone(),
            None => {
                let directory = &self.services.directory;
                let sender = match mailbox::AccountId::parse(sender_id) {
                    Ok(id) => directory.account(&id).await.ok(),
                    Err(_) => None,
                };
                let facility = match sender.as_ref().and_then(|a| a.facility.clone()) {
                    Some(code) => directory.facility(&code).await.ok().map(|f| f.name),
                    None => None,
                };
                let known = (
                    sender.map_or_else(|| sender_id.to_string(), |a| a.name),
                    facility,
                );
                self.decrypted
                    .senders
                    .insert(sender_id.to_string(), known.clone());
                known
            }
        };
        Parties {
            sender_name,
            sender_facility,
            reader_id: session.account.id.as_str().to_string(),
            reader_name: session.account.name.clone(),
        }
    }

    /// The whole message; `mark` opens it (\Seen, the workflow's receipt).
    pub(super) async fn rendered(
        &mut self,
        session: &CurrentSession,
        envelope_id: &str,
        mark: bool,
    ) -> Result<Arc<Rendered>, String> {
        if !mark && let Some(r) = self.decrypted.rendered(envelope_id) {
            return Ok(r);
        }
        let item = self
            .services
            .folders
            .open(session, envelope_id, mark)
            .await
            .map_err(|e| error_text(&e))?;
        if let Some(r) = self.decrypted.rendered(envelope_id) {
            return Ok(r);
        }
        let parties = self.parties(session, &item.sender_id).await;
        let mut files = Vec::with_capacity(item.attachments.len());
        for a in &item.attachments {
            let buf = SharedBuf::default();
            self.services
                .postroom
                .open_attachment(session, envelope_id, a.index, buf.clone())
                .await
                .map_err(|e| error_text(&e))?;
            files.push(buf.take());
        }
        let rendered = Arc::new(render(&item, &parties, &files).map_err(|e| e.to_string())?);
        if !self.decrypted.summaries.contains_key(envelope_id)
            && let Ok(sum) = summarize(&item, &parties)
        {
            self.decrypted.keep_summary(envelope_id, Arc::new(sum));
        }
        self.decrypted.keep_rendered(envelope_id, rendered.clone());
        Ok(rendered)
    }

    /// Summaries of the messages at `indices` not summarized yet, opened in
    /// batches (two queries and both cores per batch instead of a round of
    /// queries and a thread hop per message). Failures are left for the
    /// message's own FETCH to report.
    pub(super) async fn prefetch_summaries(&mut self, session: &CurrentSession, indices: &[usize]) {
        const BATCH: usize = 256;
        let State::Selected(sel) = &self.state else {
            return;
        };
        let missing: Vec<String> = indices
            .iter()
            .filter_map(|i| sel.messages.get(*i))
            .map(|m| m.envelope_id.clone())
            .filter(|id| !self.decrypted.summaries.contains_key(id))
            .collect();
        for chunk in missing.chunks(BATCH) {
            let Ok(opened) = self.services.folders.peek_many(session, chunk).await else {
                return;
            };
            let mut work = Vec::with_capacity(opened.len());
            for (id, item) in opened {
                let Ok(item) = item else { continue };
                let parties = self.parties(session, &item.sender_id).await;
                work.push((id, item, parties));
            }
            // Built and read back on both cores.
            let made = tokio::task::spawn_blocking(move || {
                let one = |(id, item, parties): (String, _, _)| {
                    summarize(&item, &parties).ok().map(|s| (id, s))
                };
                let mut second = work;
                let first: Vec<_> = second.drain(..second.len() / 2).collect();
                std::thread::scope(|s| {
                    let other = s.spawn(|| first.into_iter().filter_map(one).collect::<Vec<_>>());
                    let mut done: Vec<_> = second.into_iter().filter_map(one).collect();
                    done.extend(other.join().unwrap_or_default());
                    done
                })
            })
            .await
            .unwrap_or_default();
            for (id, sum) in made {
                self.decrypted.keep_summary(&id, Arc::new(sum));
            }
        }
    }

    /// Size, header, ENVELOPE and BODYSTRUCTURE: the item opened without its
    /// attachments, nothing marked.
    pub(super) async fn summary(
        &mut self,
        session: &CurrentSession,
        envelope_id: &str,
    ) -> Result<Arc<Summary>, String> {
        if let Some(s) = self.decrypted.summaries.get(envelope_id) {
            return Ok(s.clone());
        }
        let item = self
            .services
            .folders
            .open(session, envelope_id, false)
            .await
            .map_err(|e| error_text(&e))?;
        let parties = self.parties(session, &item.sender_id).await;
        let sum = Arc::new(summarize(&item, &parties).map_err(|e| e.to_string())?);
        self.decrypted.keep_summary(envelope_id, sum.clone());
        Ok(sum)
    }

    pub(super) async fn fetch_one(
        &mut self,
        session: &CurrentSession,
        i: usize,
        names: &[MessageDataItemName<'static>],
    ) -> Result<Option<Reply>, String> {
        let (row, deleted, read_only) = match &self.state {
            State::Selected(sel) => (
                sel.messages[i].clone(),
                sel.deleted.contains(&sel.messages[i].envelope_id),
                sel.read_only,
            ),
            _ => return Ok(None),
        };
        // A non-peek body fetch sets \Seen (and records receipt), like reading on the web.
        let marks = !read_only
            && !row.seen
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        let (needs_full, needs_summary) = summary_or_full(names);
        if needs_full && let Some(reply) = self.streamed(session, i, marks, names).await? {
            return Ok(Some(reply));
        }
        let needs_full = needs_full || marks;
        let needs_summary = needs_summary && !needs_full;
        let rendered = if needs_full {
            Some(self.rendered(session, &row.envelope_id, marks).await?)
        } else {
            None
        };
        let summary = if needs_summary {
            Some(self.summary(session, &row.envelope_id).await?)
        } else {
            None
        };
        let mut sources = Sources {
            row,
            deleted,
            rendered,
            summary,
        };
        if marks {
            sources.row.seen = true;
            if let State::Selected(sel) = &mut self.state {
                sel.messages[i].seen = true;
            }
        }
        let mut items = Vec::new();
        for name in names {
            items.extend(sources.item(name)?);
        }
        let flags_sent = names.contains(&MessageDataItemName::Flags);
        if marks && !flags_sent {
            items.push(MessageDataItem::Flags(flags_of(&sources.row, deleted)));
        }
        let (Some(seq), Ok(items)) = (nz(i + 1), Vec1::try_from(items)) else {
            return Ok(None);
        };
        Ok(Some(Reply::Data(Data::Fetch { seq, items })))
    }
}

/// Whether one item needs the message's body.
pub(super) fn needs_body(name: &MessageDataItemName<'_>) -> bool {
    summary_or_full(std::slice::from_ref(name)).0
}

/// Whether a FETCH needs whole messages (body content), and whether it needs
/// summaries (what a message list shows: size, header, ENVELOPE, structure).
fn summary_or_full(names: &[MessageDataItemName<'_>]) -> (bool, bool) {
    let full = names.iter().any(|n| match n {
        MessageDataItemName::Flags
        | MessageDataItemName::Uid
        | MessageDataItemName::ModSeq
        | MessageDataItemName::InternalDate
        | MessageDataItemName::Rfc822Size
        | MessageDataItemName::Envelope
        | MessageDataItemName::BodyStructure
        | MessageDataItemName::Body
        | MessageDataItemName::Rfc822Header => false,
        MessageDataItemName::BodyExt { section, .. } => !matches!(
            section,
            Some(
                Section::Header(None)
                    | Section::HeaderFields(None, _)
                    | Section::HeaderFieldsNot(None, _)
            )
        ),
        _ => true,
    });
    let summary = names.iter().any(|n| {
        !matches!(
            n,
            MessageDataItemName::Flags
                | MessageDataItemName::Uid
                | MessageDataItemName::ModSeq
                | MessageDataItemName::InternalDate
        )
    });
    (full, summary)
}
