//! SEARCH: the keys a client may combine, over the selected folder's rows and,
//! for text keys, the rendered messages; SORT (RFC 5256) over what SEARCH found.

use std::num::{NonZeroU32, NonZeroU64};

use imap_next::imap_types::core::{AString, Tag};
use imap_next::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_next::imap_types::response::Data;
use imap_next::imap_types::search::SearchKey;
use mailbox::CurrentSession;

use super::{Session, State};
use crate::imap::codec::{Reply, in_set, modseq, no, nz, ok, uid_of};

impl Session {
    /// The hits, and with a MODSEQ key the highest mod-sequence among them
    /// (RFC 7162 3.1.5).
    pub(super) async fn search(
        &mut self,
        session: &CurrentSession,
        criteria: &[SearchKey<'static>],
        uid: bool,
    ) -> Result<(Vec<NonZeroU32>, Option<NonZeroU64>), String> {
        let indices = self.search_indices(session, criteria).await?;
        let State::Selected(sel) = &self.state else {
            return Ok((Vec::new(), None));
        };
        let hits = indices
            .iter()
            .filter_map(|i| {
                if uid {
                    uid_of(&sel.messages[*i])
                } else {
                    nz(i + 1)
                }
            })
            .collect();
        let highest = criteria
            .iter()
            .any(has_modseq)
            .then(|| indices.iter().map(|i| sel.messages[*i].modseq).max())
            .flatten()
            .and_then(modseq);
        if highest.is_some() {
            self.condstore = true;
        }
        Ok((hits, highest))
    }

    /// SORT: SEARCH's hits ordered by the criteria (arrival and date are the
    /// sealing time; size, subject and addresses come from the summaries).
    pub(super) async fn sort(
        &mut self,
        tag: Tag<'static>,
        criteria: &[SortCriterion],
        search: &[SearchKey<'static>],
        uid: bool,
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        let indices = match self.search_indices(session, search).await {
            Ok(i) => i,
            Err(text) => {
                out.push(no(Some(tag), None, &text));
                return;
            }
        };
        let mut keyed = Vec::with_capacity(indices.len());
        for i in indices {
            let mut keys = Vec::with_capacity(criteria.len());
            for c in criteria {
                match self.sort_key(session, i, &c.key).await {
                    Ok(k) => keys.push(k),
                    Err(text) => {
                        out.push(no(Some(tag), None, &text));
                        return;
                    }
                }
            }
            keyed.push((i, keys));
        }
        keyed.sort_by(|(ia, a), (ib, b)| {
            for ((x, y), c) in a.iter().zip(b).zip(criteria) {
                let o = x.cmp(y);
                let o = if c.reverse { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            ia.cmp(ib)
        });
        let State::Selected(sel) = &self.state else {
            return;
        };
        let hits = keyed
            .iter()
            .filter_map(|(i, _)| {
                if uid {
                    uid_of(&sel.messages[*i])
                } else {
                    nz(i + 1)
                }
            })
            .collect();
        out.push(Reply::Data(Data::Sort(hits, None)));
        out.push(ok(Some(tag), None, "SORT done"));
    }

    async fn sort_key(
        &mut self,
        session: &CurrentSession,
        i: usize,
        key: &SortKey,
    ) -> Result<SortValue, String> {
        let row = match &self.state {
            State::Selected(sel) => sel.messages[i].clone(),
            _ => return Ok(SortValue::Number(0)),
        };
        Ok(match key {
            SortKey::Arrival | SortKey::Date => SortValue::Number(row.created_at),
            SortKey::Size => SortValue::Number(i64::from(
                self.summary(session, &row.envelope_id).await?.size,
            )),
            _ => {
                let sum = self.summary(session, &row.envelope_id).await?;
                let text = mail_parser::MessageParser::default()
                    .parse_headers(&sum.header)
                    .and_then(|m| match key {
                        SortKey::Subject => m.subject().map(str::to_string),
                        SortKey::From | SortKey::DisplayFrom => first_address(m.from()),
                        SortKey::To | SortKey::DisplayTo => first_address(m.to()),
                        SortKey::Cc => first_address(m.cc()),
                        _ => None,
                    })
                    .unwrap_or_default();
                SortValue::Text(text.to_lowercase())
            }
        })
    }

    async fn search_indices(
        &mut self,
        session: &CurrentSession,
        criteria: &[SearchKey<'static>],
    ) -> Result<Vec<usize>, String> {
        let count = match &self.state {
            State::Selected(sel) => sel.messages.len(),
            _ => 0,
        };
        let mut hits = Vec::new();
        for i in 0..count {
            let mut all = true;
            for key in criteria {
                if !self.matches(session, i, key).await? {
                    all = false;
                    break;
                }
            }
            if all {
                hits.push(i);
            }
        }
        Ok(hits)
    }

    fn matches<'s>(
        &'s mut self,
        session: &'s CurrentSession,
        i: usize,
        key: &'s SearchKey<'static>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, String>> + Send + 's>>
    {
        Box::pin(async move {
            let (row, count) = match &self.state {
                State::Selected(sel) => (sel.messages[i].clone(), sel.messages.len()),
                _ => return Ok(false),
            };
            let text_has = |hay: &[u8], needle: &AString<'_>| -> bool {
                let needle = String::from_utf8_lossy(needle.as_ref()).to_lowercase();
                String::from_utf8_lossy(hay)
                    .to_lowercase()
                    .contains(&needle)
            };
            Ok(match key {
                SearchKey::All => true,
                SearchKey::Seen => row.seen,
                SearchKey::Unseen => !row.seen,
                SearchKey::Flagged => row.flagged,
                SearchKey::Unflagged => !row.flagged,
                SearchKey::New | SearchKey::Recent => !row.seen,
                SearchKey::Old => true,
                SearchKey::Deleted | SearchKey::Answered | SearchKey::Draft => false,
                SearchKey::Undeleted | SearchKey::Unanswered | SearchKey::Undraft => true,
                SearchKey::Uid(set) => {
                    let largest = match &self.state {
                        State::Selected(sel) => sel.messages.last().and_then(uid_of),
                        _ => None,
                    };
                    largest.is_some_and(|l| {
                        u32::try_from(row.uid).is_ok_and(|u| in_set(set, u, l.get()))
                    })
                }
                SearchKey::SequenceSet(set) => match (u32::try_from(count), u32::try_from(i + 1)) {
                    (Ok(l), Ok(n)) => in_set(set, n, l),
                    _ => false,
                },
                SearchKey::Not(inner) => !self.matches(session, i, inner).await?,
                SearchKey::Or(a, b) => {
                    self.matches(session, i, a).await? || self.matches(session, i, b).await?
                }
                SearchKey::And(keys) => {
                    let mut all = true;
                    for k in keys.as_ref() {
                        if !self.matches(session, i, k).await? {
                            all = false;
                            break;
                        }
                    }
                    all
                }
                SearchKey::Since(d) | SearchKey::SentSince(d) => {
                    date_of(row.created_at).is_some_and(|day| day >= *d.as_ref())
                }
                SearchKey::Before(d) | SearchKey::SentBefore(d) => {
                    date_of(row.created_at).is_some_and(|day| day < *d.as_ref())
                }
                SearchKey::On(d) | SearchKey::SentOn(d) => {
                    date_of(row.created_at).is_some_and(|day| day == *d.as_ref())
                }
                SearchKey::Subject(s)
                | SearchKey::From(s)
                | SearchKey::To(s)
                | SearchKey::Cc(s)
                | SearchKey::Bcc(s) => {
                    let sum = self.summary(session, &row.envelope_id).await?;
                    let header = &sum.header;
                    // Header values are RFC 2047-encoded; search the decoded form.
                    let decoded = mail_parser::MessageParser::default()
                        .parse_headers(header)
                        .map(|m| {
                            let field = match key {
                                SearchKey::Subject(_) => m.subject().map(str::to_string),
                                SearchKey::From(_) => address_text(m.from()),
                                SearchKey::To(_) => address_text(m.to()),
                                _ => None,
                            };
                            field.unwrap_or_default()
                        })
                        .unwrap_or_default();
                    text_has(decoded.as_bytes(), s)
                }
                SearchKey::Body(s) | SearchKey::Text(s) => {
                    let r = self.rendered(session, &row.envelope_id, false).await?;
                    let body = mail_parser::MessageParser::default()
                        .parse(&r.bytes)
                        .map(|m| {
                            let mut t = m.body_text(0).map(|b| b.into_owned()).unwrap_or_default();
                            if matches!(key, SearchKey::Text(_)) {
                                t.push_str(m.subject().unwrap_or_default());
                            }
                            t
                        })
                        .unwrap_or_default();
                    text_has(body.as_bytes(), s)
                }
                SearchKey::ModSequence { modseq, .. } => {
                    u64::try_from(row.modseq).is_ok_and(|m| m >= *modseq)
                }
                SearchKey::Larger(n) => self.summary(session, &row.envelope_id).await?.size > *n,
                SearchKey::Smaller(n) => self.summary(session, &row.envelope_id).await?.size < *n,
                _ => return Err("this SEARCH key is not supported".into()),
            })
        })
    }
}

/// A message's value for one sort key.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Number(i64),
    Text(String),
}

fn has_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::Not(k) => has_modseq(k),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::And(keys) => keys.as_ref().iter().any(has_modseq),
        _ => false,
    }
}

fn first_address(a: Option<&mail_parser::Address<'_>>) -> Option<String> {
    let first = a?.first()?;
    first.address().or(first.name()).map(str::to_string)
}

fn date_of(secs: i64) -> Option<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp(secs, 0).map(|d| d.date_naive())
}

fn address_text(a: Option<&mail_parser::Address<'_>>) -> Option<String> {
    let a = a?;
    Some(
        a.iter()
            .map(|x| {
                format!(
                    "{} <{}>",
                    x.name().unwrap_or_default(),
                    x.address().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}
