//! The IMAP names of a reader's folders (the mailbox domain knows folders, not
//! what a client calls them), their special uses (RFC 6154) and LIST's
//! patterns over them.
//!
//! Trash: nothing is deleted from a mail client, so there is no Trash folder.
//! A client that insists on one (it moves deleted mail to "Trash", or tries to
//! create it) is served by Archive under that name: MOVE or COPY to a trash
//! name archives, CREATE of one answers `[ALREADYEXISTS]`, and LIST never
//! shows it (a syncing client would otherwise fetch Archive twice).

use imap_next::imap_types::core::Atom;
use imap_next::imap_types::flag::FlagNameAttribute;
use imap_next::imap_types::mailbox::{ListMailbox, Mailbox};
use mailbox::postroom::folders::Folder;

/// The names clients give their trash folder; each means Archive here.
const TRASH_NAMES: [&str; 4] = ["Trash", "Deleted Items", "Deleted Messages", "Deleted"];

/// The name a client sees.
pub fn imap_name(folder: Folder) -> &'static str {
    match folder {
        Folder::Inbox => "INBOX",
        Folder::Sent => "Sent",
        Folder::Archive => "Archive",
        Folder::Shared => "Shared",
        Folder::Facility => "Facility",
    }
}

/// INBOX in any case (as RFC 3501 says), the others case-insensitively too.
pub fn parse_imap(name: &str) -> Option<Folder> {
    Folder::ALL
        .into_iter()
        .find(|f| imap_name(*f).eq_ignore_ascii_case(name.trim()))
}

/// The folder a command names, if it is one.
pub fn folder_of(mailbox: &Mailbox<'_>) -> Option<Folder> {
    parse_imap(&mailbox_name(mailbox))
}

/// Where a MOVE or COPY to `mailbox` goes: a folder, or Archive for a trash name.
pub fn destination_of(mailbox: &Mailbox<'_>) -> Option<Folder> {
    folder_of(mailbox).or_else(|| is_trash(mailbox).then_some(Folder::Archive))
}

pub fn is_trash(mailbox: &Mailbox<'_>) -> bool {
    let name = mailbox_name(mailbox);
    TRASH_NAMES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(name.trim()))
}

/// LIST's attributes of a folder: its special use (RFC 6154), and no children.
pub fn attributes(folder: Folder) -> Vec<FlagNameAttribute<'static>> {
    let special = match folder {
        Folder::Sent => Some("Sent"),
        Folder::Archive => Some("Archive"),
        _ => None,
    };
    let mut out = vec![FlagNameAttribute::Noinferiors];
    out.extend(
        special
            .and_then(|s| Atom::try_from(s).ok())
            .map(FlagNameAttribute::from),
    );
    out
}

fn mailbox_name(mailbox: &Mailbox<'_>) -> String {
    match mailbox {
        Mailbox::Inbox => "INBOX".into(),
        Mailbox::Other(other) => String::from_utf8_lossy(other.as_ref()).into_owned(),
    }
}

pub fn to_mailbox(folder: Folder) -> Option<Mailbox<'static>> {
    Mailbox::try_from(imap_name(folder).to_string()).ok()
}

/// `*` and `%` match anything here: the folder tree is flat.
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*' | b'%', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((c, rest)) => n
                .split_first()
                .is_some_and(|(d, nrest)| c.eq_ignore_ascii_case(d) && go(rest, nrest)),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

pub fn list_pattern(m: &ListMailbox<'_>) -> String {
    match m {
        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
    }
}

/// LIST's reference and pattern as one pattern (RFC 3501 6.3.8): the tree has
/// no delimiter, so the reference is a prefix of the names it looks at.
pub fn full_pattern(reference: &Mailbox<'_>, pattern: &str) -> String {
    let reference = match reference {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(other) => String::from_utf8_lossy(other.as_ref()).into_owned(),
    };
    format!("{reference}{pattern}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_parse_case_insensitively_and_unknown_names_do_not() {
        // Moved from mailbox/tests/delivery_story.rs with the naming rules.
        assert_eq!(parse_imap("inbox"), Some(Folder::Inbox));
        assert_eq!(parse_imap("Trash"), None);
        for f in Folder::ALL {
            assert_eq!(parse_imap(imap_name(f)), Some(f));
        }
    }

    #[test]
    fn a_trash_name_is_a_destination_meaning_archive_and_nothing_else_is_invented() {
        let name = |n: &str| Mailbox::try_from(n.to_string()).unwrap_or(Mailbox::Inbox);
        assert_eq!(destination_of(&name("trash")), Some(Folder::Archive));
        assert_eq!(
            destination_of(&name("Deleted Items")),
            Some(Folder::Archive)
        );
        assert_eq!(destination_of(&name("Sent")), Some(Folder::Sent));
        assert_eq!(destination_of(&name("Junk")), None);
        assert_eq!(folder_of(&name("Trash")), None, "not selectable");
    }

    #[test]
    fn the_reference_prefixes_the_pattern() {
        let inbox = Mailbox::Inbox;
        let pattern = full_pattern(&inbox, "*");
        assert!(matches_pattern(&pattern, "INBOX"));
        assert!(!matches_pattern(&pattern, "Archive"));
        let empty = Mailbox::try_from(String::new()).unwrap_or(Mailbox::Inbox);
        assert!(matches_pattern(&full_pattern(&empty, "*"), "Archive"));
    }
}
