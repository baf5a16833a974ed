//! The IMAP names of a reader's folders (the mailbox domain knows folders, not
//! what a client calls them) and LIST's patterns over them.

use imap_next::imap_types::mailbox::{ListMailbox, Mailbox};
use mailbox::postroom::folders::Folder;

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
}
