//! IMAP syntax the session speaks (imap-codec's types): replies and their
//! builders, the capabilities, sequence sets, flags and literals.
//!
//! Sequence and UID sets are tested for membership (`in_set`), never expanded:
//! `1:4294967295` is legal input, and expanding it once took seconds on a
//! runtime thread or gigabytes of memory.

use std::num::{NonZeroU32, NonZeroU64};

use imap_next::imap_types::core::{Atom, NString, Tag, Text, Vec1};
use imap_next::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_next::imap_types::flag::{Flag, FlagFetch};
use imap_next::imap_types::response::{
    Capability, Code, Data, Status, StatusBody, StatusKind, Tagged,
};
use imap_next::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use mailbox::postroom::folders::FolderItem;

/// One untagged or tagged response, in the order it must be sent.
pub enum Reply {
    Data(Data<'static>),
    Status(Status<'static>),
    /// A FETCH response whose body literal is streamed (`imap::stream`).
    Stream(Box<super::stream::Streamed>),
    /// A whole untagged response line imap-codec cannot build (ESEARCH).
    Raw(Vec<u8>),
}

/// A status response that cannot fail to build: the text is made valid
/// (control characters become spaces), so a tagged answer is never lost.
fn status(
    kind: StatusKind,
    tag: Option<Tag<'static>>,
    code: Option<Code<'static>>,
    text: &str,
) -> Reply {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text =
        Text::try_from(clean.trim().to_string()).unwrap_or_else(|_| Text::unvalidated("done"));
    let body = StatusBody { kind, code, text };
    Reply::Status(match tag {
        Some(tag) => Status::Tagged(Tagged { tag, body }),
        None => Status::Untagged(body),
    })
}

pub fn ok(tag: Option<Tag<'static>>, code: Option<Code<'static>>, text: &str) -> Reply {
    status(StatusKind::Ok, tag, code, text)
}

pub fn no(tag: Option<Tag<'static>>, code: Option<Code<'static>>, text: &str) -> Reply {
    status(StatusKind::No, tag, code, text)
}

pub fn bad(tag: Option<Tag<'static>>, text: &str) -> Reply {
    status(StatusKind::Bad, tag, None, text)
}

/// The capabilities announced before and after sign-in.
pub fn capabilities() -> Vec1<Capability<'static>> {
    let mut caps = vec![
        Capability::Imap4Rev1,
        Capability::Idle,
        Capability::Id,
        Capability::Namespace,
        Capability::Unselect,
        Capability::LiteralPlus,
        Capability::Enable,
        Capability::Move,
        Capability::UidPlus,
        Capability::CondStore,
        Capability::QResync,
        Capability::Sort(None),
    ];
    // Atoms imap-types has no variant for; ESEARCH is answered by `esearch`.
    for atom in ["SPECIAL-USE", "ESEARCH"] {
        caps.extend(Atom::try_from(atom).ok().map(Capability::from));
    }
    if let Ok(plain) = imap_next::imap_types::auth::AuthMechanism::try_from("PLAIN") {
        caps.push(Capability::Auth(plain));
    }
    Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
}

pub fn nz(n: usize) -> Option<NonZeroU32> {
    u32::try_from(n).ok().and_then(NonZeroU32::new)
}

/// Whether `value` is in `set`, `*` being `largest`. Tested, never expanded: a
/// client may name `1:4294967295`, and expanding that would take gigabytes.
pub fn in_set(set: &SequenceSet, value: u32, largest: u32) -> bool {
    use imap_next::imap_types::sequence::{SeqOrUid, Sequence};
    let v = |s: &SeqOrUid| match s {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(a) => v(a) == value,
        Sequence::Range(a, b) => {
            let (lo, hi) = (v(a).min(v(b)), v(a).max(v(b)));
            lo <= value && value <= hi
        }
    })
}

pub fn modseq(n: i64) -> Option<NonZeroU64> {
    u64::try_from(n).ok().and_then(NonZeroU64::new)
}

/// Ascending values as ranges (`[1, 2, 3, 7]` → `1:3, 7`); zeros are dropped.
pub fn ranges(values: &[u32]) -> Vec<(NonZeroU32, NonZeroU32)> {
    let mut sorted: Vec<u32> = values.iter().copied().filter(|v| *v > 0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(NonZeroU32, NonZeroU32)> = Vec::new();
    for v in sorted.into_iter().filter_map(NonZeroU32::new) {
        match out.last_mut() {
            Some((_, hi)) if hi.get().checked_add(1) == Some(v.get()) => *hi = v,
            _ => out.push((v, v)),
        }
    }
    out
}

/// Values as a compact sequence set; `None` when there are none.
pub fn sequence_set(values: &[u32]) -> Option<SequenceSet> {
    let seqs: Vec<Sequence> = ranges(values)
        .into_iter()
        .map(|(lo, hi)| {
            if lo == hi {
                Sequence::Single(SeqOrUid::Value(lo))
            } else {
                Sequence::Range(SeqOrUid::Value(lo), SeqOrUid::Value(hi))
            }
        })
        .collect();
    SequenceSet::try_from(seqs).ok()
}

/// UIDs in the order given (COPYUID pairs source and destination by position).
pub fn uid_set(values: &[NonZeroU32]) -> Option<UidSet> {
    let elements: Vec<UidElement> = values.iter().map(|v| UidElement::Single(*v)).collect();
    Vec1::try_from(elements).ok().map(UidSet)
}

pub fn uid_of(row: &FolderItem) -> Option<NonZeroU32> {
    u32::try_from(row.uid).ok().and_then(NonZeroU32::new)
}

pub fn flags_of(row: &FolderItem, deleted: bool) -> Vec<FlagFetch<'static>> {
    let mut flags = Vec::new();
    if row.seen {
        flags.push(FlagFetch::Flag(Flag::Seen));
    }
    if row.flagged {
        flags.push(FlagFetch::Flag(Flag::Flagged));
    }
    if deleted {
        flags.push(FlagFetch::Flag(Flag::Deleted));
    }
    flags
}

pub fn literal(bytes: &[u8]) -> NString<'static> {
    match imap_next::imap_types::core::Literal::try_from(bytes.to_vec()) {
        Ok(l) => NString::from(l),
        Err(_) => NString::NIL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_compact_ranges() {
        let r: Vec<(u32, u32)> = ranges(&[7, 1, 3, 2, 0, 3, 9, 8])
            .into_iter()
            .map(|(a, b)| (a.get(), b.get()))
            .collect();
        assert_eq!(r, vec![(1, 3), (7, 9)]);
        let set = sequence_set(&[5, 1, 2]).unwrap();
        assert!(in_set(&set, 1, 5) && in_set(&set, 2, 5) && in_set(&set, 5, 5));
        assert!(!in_set(&set, 3, 5) && !in_set(&set, 4, 5));
        assert!(sequence_set(&[]).is_none());
    }
}
