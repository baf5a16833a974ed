//! SEARCH: the keys a client may combine, over the selected folder's rows and,
//! for text keys, the rendered messages.

use std::num::NonZeroU32;

use imap_next::imap_types::core::AString;
use imap_next::imap_types::search::SearchKey;
use mailbox::CurrentSession;

use super::{Session, State};
use crate::imap::codec::{in_set, nz, uid_of};

impl Session {
    pub(super) async fn search(
        &mut self,
        session: &CurrentSession,
        criteria: &[SearchKey<'static>],
        uid: bool,
    ) -> Result<Vec<NonZeroU32>, String> {
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
                let hit = match &self.state {
                    State::Selected(sel) if uid => uid_of(&sel.messages[i]),
                    _ => nz(i + 1),
                };
                hits.extend(hit);
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
                SearchKey::Larger(n) => self.summary(session, &row.envelope_id).await?.size > *n,
                SearchKey::Smaller(n) => self.summary(session, &row.envelope_id).await?.size < *n,
                _ => return Err("this SEARCH key is not supported".into()),
            })
        })
    }
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
