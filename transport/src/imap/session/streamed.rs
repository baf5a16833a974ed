//! FETCH of a large message's body: answered with a streamed literal
//! (`imap::stream`) instead of a render held whole in memory.

use std::sync::Arc;

use imap_next::imap_types::core::Vec1;
use imap_next::imap_types::fetch::{MessageDataItem, MessageDataItemName, Section};
use imap_next::imap_types::response::Data;
use mailbox::CurrentSession;

use super::fetch::{Sources, needs_body};
use super::{Session, State, error_text};
use crate::imap::codec::{Reply, flags_of, literal, nz};
use crate::imap::render::Summary;
use crate::imap::stream::{BodyStream, Streamed};

/// Messages larger than this are streamed; smaller ones are rendered whole
/// (and kept a while, for clients that fetch in pieces).
pub const STREAM_OVER: u64 = 8 << 20;

/// The byte range of the whole message one body item names, and where a
/// `<partial>` starts; `None` if the item is not one streaming serves.
fn range_of(
    name: &MessageDataItemName<'static>,
    sum: &Summary,
) -> Option<(std::ops::Range<u64>, Option<u32>)> {
    let size = u64::from(sum.size);
    let text = sum.header.len() as u64..size;
    let span = |path: &[std::num::NonZeroU32], mime: bool| {
        let want: Vec<u32> = path.iter().map(|n| n.get()).collect();
        sum.parts
            .iter()
            .find(|p| p.path == want)
            .map(|p| if mime { p.mime.clone() } else { p.body.clone() })
    };
    let (whole, partial) = match name {
        MessageDataItemName::Rfc822 => (0..size, None),
        MessageDataItemName::Rfc822Text => (text, None),
        MessageDataItemName::BodyExt {
            section, partial, ..
        } => (
            match section {
                None => 0..size,
                Some(Section::Text(None)) => text,
                Some(Section::Part(p)) => span(p.0.as_ref(), false)?,
                Some(Section::Mime(p)) => span(p.0.as_ref(), true)?,
                _ => return None,
            },
            *partial,
        ),
        _ => return None,
    };
    Some(match partial {
        Some((start, len)) => {
            let from = (whole.start + u64::from(start)).min(whole.end);
            let to = from.saturating_add(u64::from(len.get())).min(whole.end);
            let origin = u32::try_from(from - whole.start).unwrap_or(u32::MAX);
            (from..to, Some(origin))
        }
        None => (whole, None),
    })
}

/// The item as answered, its literal left empty for the stream.
fn empty_item(
    name: &MessageDataItemName<'static>,
    origin: Option<u32>,
) -> Option<MessageDataItem<'static>> {
    Some(match name {
        MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(literal(&[])),
        MessageDataItemName::Rfc822Text => MessageDataItem::Rfc822Text(literal(&[])),
        MessageDataItemName::BodyExt { section, .. } => MessageDataItem::BodyExt {
            section: section.clone(),
            origin,
            data: literal(&[]),
        },
        _ => return None,
    })
}

impl Session {
    /// A FETCH of message `i` with its one body item streamed, when the
    /// message is large; `None` to render it whole instead.
    pub(super) async fn streamed(
        &mut self,
        session: &CurrentSession,
        i: usize,
        marks: bool,
        names: &[MessageDataItemName<'static>],
    ) -> Result<Option<Reply>, String> {
        let (mut row, deleted) = match &self.state {
            State::Selected(sel) => match sel.messages.get(i) {
                Some(m) => (m.clone(), sel.deleted.contains(&m.envelope_id)),
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        let bodies: Vec<&MessageDataItemName<'static>> =
            names.iter().filter(|n| needs_body(n)).collect();
        let [body] = bodies.as_slice() else {
            return Ok(None);
        };
        let sum = self.summary(session, &row.envelope_id).await?;
        if u64::from(sum.size) <= STREAM_OVER {
            return Ok(None);
        }
        let Some((range, origin)) = range_of(body, &sum) else {
            return Ok(None);
        };
        if marks {
            // Opening it is what reading it means (\Seen, the receipt).
            self.services
                .folders
                .open(session, &row.envelope_id, true)
                .await
                .map_err(|e| error_text(&e))?;
            row.seen = true;
            if let State::Selected(sel) = &mut self.state
                && let Some(m) = sel.messages.get_mut(i)
            {
                m.seen = true;
            }
        }
        let sources = Sources {
            row,
            deleted,
            rendered: None,
            summary: Some(sum.clone()),
        };
        let mut items = Vec::new();
        for name in names.iter().filter(|n| !needs_body(n)) {
            items.extend(sources.item(name)?);
        }
        if marks && !names.contains(&MessageDataItemName::Flags) {
            items.push(MessageDataItem::Flags(flags_of(&sources.row, deleted)));
        }
        items.extend(empty_item(body, origin));
        let (Some(seq), Ok(items)) = (nz(i + 1), Vec1::try_from(items)) else {
            return Ok(None);
        };
        let body = BodyStream {
            len: range.end - range.start,
            pieces: sum.skeleton.pieces(range),
            attachments: sum.attachments.clone(),
            summary: Arc::clone(&sum),
            envelope_id: sources.row.envelope_id.clone(),
            postroom: self.services.postroom.clone(),
            session: session.clone(),
        };
        Ok(Some(Reply::Stream(Box::new(Streamed {
            data: Data::Fetch { seq, items },
            body,
        }))))
    }
}
