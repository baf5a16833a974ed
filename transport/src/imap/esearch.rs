//! ESEARCH syntax (RFC 4731): `SEARCH RETURN (…)` and the `* ESEARCH`
//! response. imap-codec knows neither, so a search with RETURN options
//! reaches us as a line its parser refused: [`split_return`] takes the
//! options out, the rest is parsed as a plain SEARCH, and [`esearch_line`]
//! writes the answer.

use std::num::{NonZeroU32, NonZeroU64};

/// The result options a client asked for. `RETURN ()` means ALL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub count: bool,
    pub all: bool,
}

/// For a line `tag [UID] SEARCH RETURN (opts) criteria…`, the same line
/// without the RETURN clause and the options; `None` when the line is not
/// such a search or names an option we do not know (the line is then refused
/// as unparsable, as before).
pub fn split_return(line: &[u8]) -> Option<(Vec<u8>, SearchReturn)> {
    let mut rest = line;
    let tag = word(&mut rest)?;
    let mut head = tag.to_vec();
    let mut cmd = word(&mut rest)?;
    if cmd.eq_ignore_ascii_case(b"UID") {
        head.extend_from_slice(b" UID");
        cmd = word(&mut rest)?;
    }
    if !cmd.eq_ignore_ascii_case(b"SEARCH") {
        return None;
    }
    head.extend_from_slice(b" SEARCH");
    if !word(&mut rest)?.eq_ignore_ascii_case(b"RETURN") {
        return None;
    }
    let rest = rest.strip_prefix(b"(")?;
    let close = rest.iter().position(|b| *b == b')')?;
    let options = parse_options(&rest[..close])?;
    let criteria = &rest[close + 1..];
    // Criteria must follow, after one space.
    let criteria = criteria.strip_prefix(b" ")?;
    if criteria.is_empty() || criteria.starts_with(b"\r") {
        return None;
    }
    head.push(b' ');
    head.extend_from_slice(criteria);
    Some((head, options))
}

/// The next space-separated word, and `rest` after it and its space.
fn word<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = rest.iter().position(|b| *b == b' ')?;
    let (w, after) = rest.split_at(end);
    *rest = &after[1..];
    (!w.is_empty()).then_some(w)
}

fn parse_options(list: &[u8]) -> Option<SearchReturn> {
    let mut ret = SearchReturn::default();
    for option in list.split(|b| *b == b' ').filter(|w| !w.is_empty()) {
        match option.to_ascii_uppercase().as_slice() {
            b"MIN" => ret.min = true,
            b"MAX" => ret.max = true,
            b"COUNT" => ret.count = true,
            b"ALL" => ret.all = true,
            _ => return None,
        }
    }
    if ret == SearchReturn::default() {
        ret.all = true;
    }
    Some(ret)
}

/// `* ESEARCH (TAG "tag") [UID] …` for the hits (ascending), with the
/// highest mod-sequence when the search used MODSEQ (RFC 7162 3.1.5).
/// With no hits only COUNT (if asked) is returned, as RFC 4731 says.
pub fn esearch_line(
    tag: &str,
    uid: bool,
    ret: SearchReturn,
    hits: &[NonZeroU32],
    modseq: Option<NonZeroU64>,
) -> Vec<u8> {
    let mut line = format!("* ESEARCH (TAG \"{}\")", quoted(tag));
    if uid {
        line.push_str(" UID");
    }
    let mut sorted: Vec<u32> = hits.iter().map(|n| n.get()).collect();
    sorted.sort_unstable();
    sorted.dedup();
    if let (Some(first), Some(last)) = (sorted.first(), sorted.last()) {
        if ret.min {
            line.push_str(&format!(" MIN {first}"));
        }
        if ret.max {
            line.push_str(&format!(" MAX {last}"));
        }
    }
    if ret.count {
        line.push_str(&format!(" COUNT {}", sorted.len()));
    }
    if ret.all && !sorted.is_empty() {
        line.push_str(" ALL ");
        line.push_str(&compact(&sorted));
    }
    if let Some(m) = modseq.filter(|_| !sorted.is_empty()) {
        line.push_str(&format!(" MODSEQ {m}"));
    }
    line.push_str("\r\n");
    line.into_bytes()
}

/// A tag is an astring without quotes or backslashes in practice; escape
/// them anyway so the line stays well formed.
fn quoted(tag: &str) -> String {
    tag.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Ascending numbers as the shortest sequence set: `1:3,7,9:10`.
fn compact(sorted: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end.saturating_add(1) {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(v: &[u32]) -> Vec<NonZeroU32> {
        v.iter().filter_map(|n| NonZeroU32::new(*n)).collect()
    }

    #[test]
    fn the_return_clause_is_taken_out_of_plain_and_uid_searches() {
        let (line, ret) = split_return(b"a1 UID SEARCH RETURN (MIN COUNT) SEEN\r\n").unwrap();
        assert_eq!(line, b"a1 UID SEARCH SEEN\r\n");
        assert_eq!(
            ret,
            SearchReturn {
                min: true,
                count: true,
                ..Default::default()
            }
        );
        let (line, ret) = split_return(b"t search return () all\r\n").unwrap();
        assert_eq!(line, b"t SEARCH all\r\n");
        assert!(ret.all && !ret.min && !ret.max && !ret.count);
    }

    #[test]
    fn other_lines_and_unknown_options_are_left_alone() {
        assert!(split_return(b"a1 SEARCH ALL\r\n").is_none());
        assert!(split_return(b"a1 FETCH RETURN (MIN) 1\r\n").is_none());
        assert!(split_return(b"a1 SEARCH RETURN (PARTIAL 1:5) ALL\r\n").is_none());
        assert!(split_return(b"a1 SEARCH RETURN (MIN)\r\n").is_none());
        assert!(split_return(b"a1 SEARCH RETURN (MIN").is_none());
    }

    #[test]
    fn the_answer_names_the_tag_and_compacts_the_set() {
        let all = SearchReturn {
            min: true,
            max: true,
            count: true,
            all: true,
        };
        let line = esearch_line("a1", true, all, &nz(&[9, 1, 2, 3, 7, 10]), None);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "* ESEARCH (TAG \"a1\") UID MIN 1 MAX 10 COUNT 6 ALL 1:3,7,9:10\r\n"
        );
        let line = esearch_line("a2", false, all, &[], None);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "* ESEARCH (TAG \"a2\") COUNT 0\r\n"
        );
        let line = esearch_line(
            "a3",
            false,
            SearchReturn {
                all: true,
                ..Default::default()
            },
            &nz(&[4]),
            NonZeroU64::new(17),
        );
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "* ESEARCH (TAG \"a3\") ALL 4 MODSEQ 17\r\n"
        );
    }
}
