//! The IMAP session state machine (RFC 3501 states): what each command does in
//! each state. Syntax is imap-codec's, flows (literals, AUTHENTICATE, IDLE) are
//! imap-next's, mailbox rules are `mailbox::postroom::folders`'; this file only connects them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use imap_next::imap_types::command::{Command, CommandBody};
use imap_next::imap_types::core::{AString, IString, NString, Tag, Text, Vec1};
use imap_next::imap_types::datetime::DateTime;
use imap_next::imap_types::extensions::namespace::Namespace;
use imap_next::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_next::imap_types::flag::{Flag, FlagFetch, FlagNameAttribute, FlagPerm, StoreType};
use imap_next::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_next::imap_types::response::{
    Capability, Code, Data, Status, StatusBody, StatusKind, Tagged,
};
use imap_next::imap_types::search::SearchKey;
use imap_next::imap_types::sequence::SequenceSet;
use imap_next::imap_types::status::{StatusDataItem, StatusDataItemName};
use mailbox::postroom::Postroom;
use mailbox::postroom::folders::{Folder, Folders, UID_VALIDITY};
use mailbox::store::imap::FolderRow;
use mailbox::{CurrentSession, Directory, Error, Password, SessionToken};

use super::render::{Parties, Rendered, SharedBuf, Summary, render, summarize};

/// What a session needs from the domain.
#[derive(Clone)]
pub struct Services {
    pub directory: Arc<Directory>,
    pub postroom: Arc<Postroom>,
    pub folders: Arc<Folders>,
}

/// One untagged or tagged response, in the order it must be sent.
pub enum Reply {
    Data(Data<'static>),
    Status(Status<'static>),
}

struct Selected {
    folder: Folder,
    read_only: bool,
    messages: Vec<FolderRow>,
    /// Marked `\Deleted` in this session; EXPUNGE archives them.
    deleted: HashSet<String>,
    /// The folder's fingerprint when last listed (see `changes`).
    version: Vec<i64>,
}

enum State {
    NotAuthenticated,
    Authenticated,
    Selected(Selected),
    Logout,
}

/// Rendered messages (plaintext, in this process's memory only, like the
/// keyring) kept for the session, most recent last, up to this many bytes: a
/// client that fetches a message in pieces, or a list of them twice, is
/// served without decrypting again.
const RENDERED_BYTES: usize = 32 << 20;
/// Summaries (size, header, ENVELOPE, BODYSTRUCTURE) kept for the session, up
/// to about this many bytes: what a client asks for of every message in a
/// folder each time it looks.
const SUMMARY_BYTES: usize = 64 << 20;
/// What a summary costs besides its header bytes (envelope, structure).
const SUMMARY_OVERHEAD: usize = 1024;

/// Per-session memory of what was decrypted, dropped with the session.
#[derive(Default)]
struct Decrypted {
    rendered: VecDeque<(String, Arc<Rendered>)>,
    rendered_bytes: usize,
    summaries: HashMap<String, Arc<Summary>>,
    summary_bytes: usize,
    /// Sender account ID → (name, facility name).
    senders: HashMap<String, (String, Option<String>)>,
}

impl Decrypted {
    fn rendered(&mut self, id: &str) -> Option<Arc<Rendered>> {
        let at = self.rendered.iter().position(|(k, _)| k == id)?;
        let entry = self.rendered.remove(at)?;
        let r = entry.1.clone();
        self.rendered.push_back(entry);
        Some(r)
    }

    fn keep_rendered(&mut self, id: &str, r: Arc<Rendered>) {
        if r.bytes.len() > RENDERED_BYTES {
            return;
        }
        self.rendered_bytes += r.bytes.len();
        self.rendered.push_back((id.to_string(), r));
        while self.rendered_bytes > RENDERED_BYTES {
            match self.rendered.pop_front() {
                Some((_, old)) => self.rendered_bytes -= old.bytes.len(),
                None => break,
            }
        }
    }

    fn keep_summary(&mut self, id: &str, sum: Arc<Summary>) {
        if self.summary_bytes > SUMMARY_BYTES {
            // Rare (a folder of tens of thousands): start over rather than
            // keep an eviction order for every entry.
            self.summaries.clear();
            self.summary_bytes = 0;
        }
        self.summary_bytes += sum.header.len() + SUMMARY_OVERHEAD;
        self.summaries.insert(id.to_string(), sum);
    }
}

pub struct Session {
    services: Services,
    state: State,
    remote: IpAddr,
    signed_in: Option<(SessionToken, CurrentSession)>,
    decrypted: Decrypted,
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
    ];
    if let Ok(plain) = imap_next::imap_types::auth::AuthMechanism::try_from("PLAIN") {
        caps.push(Capability::Auth(plain));
    }
    Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
}

fn mailbox_name(mailbox: &Mailbox<'_>) -> String {
    match mailbox {
        Mailbox::Inbox => "INBOX".into(),
        Mailbox::Other(other) => String::from_utf8_lossy(other.as_ref()).into_owned(),
    }
}

fn to_mailbox(folder: Folder) -> Option<Mailbox<'static>> {
    Mailbox::try_from(folder.imap_name().to_string()).ok()
}

/// `*` and `%` match anything here: the folder tree is flat.
fn matches_pattern(pattern: &str, name: &str) -> bool {
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

fn list_pattern(m: &ListMailbox<'_>) -> String {
    match m {
        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
    }
}

fn nz(n: usize) -> Option<NonZeroU32> {
    u32::try_from(n).ok().and_then(NonZeroU32::new)
}

/// Whether `value` is in `set`, `*` being `largest`. Tested, never expanded: a
/// client may name `1:4294967295`, and expanding that would take gigabytes.
fn in_set(set: &SequenceSet, value: u32, largest: u32) -> bool {
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

fn uid_of(row: &FolderRow) -> Option<NonZeroU32> {
    u32::try_from(row.uid).ok().and_then(NonZeroU32::new)
}

fn flags_of(row: &FolderRow, deleted: bool) -> Vec<FlagFetch<'static>> {
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

fn error_text(e: &Error) -> String {
    // English, and never content: the error types carry none.
    e.to_string()
}

impl Session {
    pub fn new(services: Services, remote: IpAddr) -> Self {
        Self {
            services,
            state: State::NotAuthenticated,
            remote,
            signed_in: None,
            decrypted: Decrypted::default(),
        }
    }

    pub fn authenticated(&self) -> bool {
        self.signed_in.is_some()
    }

    pub fn logged_out(&self) -> bool {
        matches!(self.state, State::Logout)
    }

    pub fn selected(&self) -> bool {
        matches!(self.state, State::Selected(_))
    }

    /// Signs in with an app password (which unlocks its copy of the key), or the
    /// account password while two-factor sign-in is off for the account; the
    /// web's lockout counter and per-address limit apply. Returns the NO text on
    /// refusal.
    pub async fn sign_in(&mut self, user: &str, password: String) -> Result<(), String> {
        let password = Password::new(password);
        match self
            .services
            .directory
            .sign_in_mail(user, &password, Some(self.remote.to_string()))
            .await
        {
            Ok((token, session)) => {
                if let Err(e) = session.require_ready() {
                    let _ = self.services.directory.sign_out(&token).await;
                    return Err(match e {
                        Error::PasswordChangeRequired => {
                            "[ALERT] change the issued password on the web pages first".into()
                        }
                        e => error_text(&e),
                    });
                }
                if self.services.folders.available(&session).is_err() {
                    let _ = self.services.directory.sign_out(&token).await;
                    return Err("this account has no mailbox".into());
                }
                tracing::info!(account = session.account.id.as_str(), "imap sign-in");
                self.signed_in = Some((token, session));
                self.state = State::Authenticated;
                Ok(())
            }
            Err(Error::AccountLocked) => Err("[ALERT] the account is locked".into()),
            Err(Error::AppPasswordRequired) => Err(
                "[AUTHENTICATIONFAILED] two-factor sign-in is on: use an app password made on the web pages"
                    .into(),
            ),
            Err(Error::TooManyAttempts) => {
                Err("[UNAVAILABLE] too many failed sign-ins from this address; try later".into())
            }
            Err(_) => Err("[AUTHENTICATIONFAILED] the ID or password is wrong".into()),
        }
    }

    /// Refreshes the web-side session (its idle clock and its unlocked keys).
    async fn current(&mut self) -> Result<CurrentSession, String> {
        let Some((token, _)) = &self.signed_in else {
            return Err("not signed in".into());
        };
        match self.services.directory.authenticate(token).await {
            Ok(s) => {
                if let Some((_, cached)) = self.signed_in.as_mut() {
                    *cached = s.clone();
                }
                Ok(s)
            }
            Err(e) => {
                self.signed_in = None;
                self.state = State::Logout;
                Err(error_text(&e))
            }
        }
    }

    pub async fn sign_out(&mut self) {
        if let Some((token, _)) = self.signed_in.take() {
            let _ = self.services.directory.sign_out(&token).await;
        }
    }

    pub async fn command(&mut self, command: Command<'static>) -> Vec<Reply> {
        let tag = command.tag;
        let mut out = Vec::new();
        match command.body {
            CommandBody::Capability => {
                out.push(Reply::Data(Data::Capability(capabilities())));
                out.push(ok(Some(tag), None, "CAPABILITY done"));
            }
            CommandBody::Noop | CommandBody::Check => {
                if self.authenticated() && self.current().await.is_err() {
                    out.push(bad(None, "the session has expired"));
                } else {
                    out.extend(self.changes().await);
                }
                out.push(ok(Some(tag), None, "done"));
            }
            CommandBody::Logout => {
                self.sign_out().await;
                self.state = State::Logout;
                if let Ok(bye) = Status::bye(None, "Renkei IMAP signing off") {
                    out.push(Reply::Status(bye));
                }
                out.push(ok(Some(tag), None, "LOGOUT done"));
            }
            CommandBody::Id { .. } => {
                let params = vec![(
                    IString::try_from("name").ok(),
                    NString::try_from("Renkei").ok(),
                )]
                .into_iter()
                .filter_map(|(k, v)| Some((k?, v?)))
                .collect();
                out.push(Reply::Data(Data::Id {
                    parameters: Some(params),
                }));
                out.push(ok(Some(tag), None, "ID done"));
            }
            CommandBody::Login { username, password } => {
                if self.authenticated() {
                    out.push(bad(Some(tag), "already signed in"));
                } else {
                    let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                    let pw = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                    match self.sign_in(&user, pw).await {
                        Ok(()) => out.push(ok(
                            Some(tag),
                            Some(Code::Capability(capabilities())),
                            "signed in",
                        )),
                        Err(text) => out.push(no(Some(tag), None, &text)),
                    }
                }
            }
            CommandBody::Authenticate { .. } => {
                out.push(bad(Some(tag), "not available here"));
            }
            _ if !self.authenticated() => {
                out.push(bad(
                    Some(tag),
                    "sign in first (LOGIN or AUTHENTICATE PLAIN)",
                ));
            }
            body => {
                let session = match self.current().await {
                    Ok(s) => s,
                    Err(text) => {
                        out.push(no(Some(tag), None, &text));
                        return out;
                    }
                };
                self.authenticated_command(tag, body, &session, &mut out)
                    .await;
            }
        }
        out
    }

    async fn authenticated_command(
        &mut self,
        tag: Tag<'static>,
        body: CommandBody<'static>,
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        let folders = self.services.folders.clone();
        match body {
            CommandBody::Namespace => {
                let personal = IString::try_from("")
                    .ok()
                    .map(|p| vec![Namespace::new(p, None)])
                    .unwrap_or_default();
                out.push(Reply::Data(Data::Namespace {
                    personal,
                    other: Vec::new(),
                    shared: Vec::new(),
                }));
                out.push(ok(Some(tag), None, "NAMESPACE done"));
            }
            CommandBody::List {
                mailbox_wildcard, ..
            }
            | CommandBody::Lsub {
                mailbox_wildcard, ..
            } => {
                let pattern = list_pattern(&mailbox_wildcard);
                let available = folders.available(session).unwrap_or_default();
                if pattern.is_empty() {
                    // The hierarchy delimiter query: a flat tree.
                    if let Ok(root) = Mailbox::try_from("") {
                        out.push(Reply::Data(Data::List {
                            items: vec![FlagNameAttribute::Noselect],
                            delimiter: None,
                            mailbox: root,
                        }));
                    }
                } else {
                    for f in available {
                        if matches_pattern(&pattern, f.imap_name())
                            && let Some(m) = to_mailbox(f)
                        {
                            out.push(Reply::Data(Data::List {
                                items: Vec::new(),
                                delimiter: None,
                                mailbox: m,
                            }));
                        }
                    }
                }
                out.push(ok(Some(tag), None, "LIST done"));
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => {
                let Some(folder) = Folder::parse_imap(&mailbox_name(&mailbox)) else {
                    out.push(no(Some(tag), Some(Code::TryCreate), "no such folder"));
                    return;
                };
                match folders.listing(session, folder).await {
                    Ok(listing) => {
                        let unseen = listing.messages.iter().filter(|m| !m.seen).count();
                        let items: Vec<StatusDataItem> = item_names
                            .iter()
                            .filter_map(|n| match n {
                                StatusDataItemName::Messages => Some(StatusDataItem::Messages(
                                    u32::try_from(listing.messages.len()).unwrap_or(u32::MAX),
                                )),
                                StatusDataItemName::Recent => Some(StatusDataItem::Recent(0)),
                                StatusDataItemName::UidNext => u32::try_from(listing.uid_next)
                                    .ok()
                                    .and_then(NonZeroU32::new)
                                    .map(StatusDataItem::UidNext),
                                StatusDataItemName::UidValidity => {
                                    NonZeroU32::new(UID_VALIDITY).map(StatusDataItem::UidValidity)
                                }
                                StatusDataItemName::Unseen => Some(StatusDataItem::Unseen(
                                    u32::try_from(unseen).unwrap_or(u32::MAX),
                                )),
                                _ => None,
                            })
                            .collect();
                        out.push(Reply::Data(Data::Status {
                            mailbox,
                            items: items.into(),
                        }));
                        out.push(ok(Some(tag), None, "STATUS done"));
                    }
                    Err(e) => out.push(no(Some(tag), None, &error_text(&e))),
                }
            }
            CommandBody::Select { mailbox, .. } => {
                self.select(tag, &mailbox, false, session, out).await;
            }
            CommandBody::Examine { mailbox, .. } => {
                self.select(tag, &mailbox, true, session, out).await;
            }
            CommandBody::Create { .. }
            | CommandBody::Delete { .. }
            | CommandBody::Rename { .. }
            | CommandBody::Subscribe { .. }
            | CommandBody::Unsubscribe { .. }
            | CommandBody::Append { .. }
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. } => {
                out.push(no(
                    Some(tag),
                    None,
                    "the folders are fixed; send and act on items on the web pages",
                ));
            }
            body => {
                if !self.selected() {
                    out.push(bad(Some(tag), "select a folder first"));
                    return;
                }
                self.selected_command(tag, body, session, out).await;
            }
        }
    }

    async fn select(
        &mut self,
        tag: Tag<'static>,
        mailbox: &Mailbox<'static>,
        examine: bool,
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        // A failed SELECT leaves no folder selected (RFC 3501 6.3.1).
        self.state = State::Authenticated;
        let Some(folder) = Folder::parse_imap(&mailbox_name(mailbox)) else {
            out.push(no(Some(tag), None, "no such folder"));
            return;
        };
        // Read before listing: a change in between shows at the next look.
        let version = self
            .services
            .folders
            .version(session, folder)
            .await
            .unwrap_or_default();
        let listing = match self.services.folders.listing(session, folder).await {
            Ok(l) => l,
            Err(e) => {
                out.push(no(Some(tag), None, &error_text(&e)));
                return;
            }
        };
        // EXAMINE opens any folder read-only; Facility is read-only however opened.
        let read_only = examine || folder.read_only();
        out.push(Reply::Data(Data::Flags(vec![
            Flag::Seen,
            Flag::Flagged,
            Flag::Deleted,
        ])));
        out.push(Reply::Data(Data::Exists(
            u32::try_from(listing.messages.len()).unwrap_or(u32::MAX),
        )));
        out.push(Reply::Data(Data::Recent(0)));
        if let Some(first_unseen) = listing.messages.iter().position(|m| !m.seen)
            && let Some(n) = nz(first_unseen + 1)
        {
            out.push(ok(None, Some(Code::Unseen(n)), "first unseen"));
        }
        if let Some(v) = NonZeroU32::new(UID_VALIDITY) {
            out.push(ok(None, Some(Code::UidValidity(v)), "UIDs valid"));
        }
        if let Some(next) = u32::try_from(listing.uid_next)
            .ok()
            .and_then(NonZeroU32::new)
        {
            out.push(ok(None, Some(Code::UidNext(next)), "predicted next UID"));
        }
        let perm = if read_only {
            Vec::new()
        } else {
            vec![
                FlagPerm::Flag(Flag::Seen),
                FlagPerm::Flag(Flag::Flagged),
                FlagPerm::Flag(Flag::Deleted),
            ]
        };
        out.push(ok(None, Some(Code::PermanentFlags(perm)), "flags"));
        self.state = State::Selected(Selected {
            folder,
            read_only,
            messages: listing.messages,
            deleted: HashSet::new(),
            version,
        });
        if read_only {
            out.push(ok(
                Some(tag),
                Some(Code::ReadOnly),
                "EXAMINE done (read-only)",
            ));
        } else {
            out.push(ok(Some(tag), Some(Code::ReadWrite), "SELECT done"));
        }
    }

    /// Untagged news for the selected folder: expunged and new messages.
    pub async fn changes(&mut self) -> Vec<Reply> {
        let mut out = Vec::new();
        let Some((_, session)) = self.signed_in.clone() else {
            return out;
        };
        let State::Selected(sel) = &mut self.state else {
            return out;
        };
        // An idling client looks often; one read tells whether anything changed.
        let Ok(version) = self.services.folders.version(&session, sel.folder).await else {
            return out;
        };
        if version == sel.version {
            return out;
        }
        let Ok(listing) = self.services.folders.listing(&session, sel.folder).await else {
            return out;
        };
        sel.version = version;
        let now: HashSet<i64> = listing.messages.iter().map(|m| m.uid).collect();
        // Expunges from the highest sequence number down keep numbers valid.
        for i in (0..sel.messages.len()).rev() {
            if !now.contains(&sel.messages[i].uid) {
                sel.messages.remove(i);
                if let Some(n) = nz(i + 1)
                    && let Ok(d) = Data::expunge(n.get())
                {
                    out.push(Reply::Data(d));
                }
            }
        }
        let known: HashSet<i64> = sel.messages.iter().map(|m| m.uid).collect();
        let before = sel.messages.len();
        let mut changed_flags = Vec::new();
        for m in listing.messages {
            if known.contains(&m.uid) {
                if let Some(pos) = sel.messages.iter().position(|o| o.uid == m.uid)
                    && (sel.messages[pos].seen != m.seen || sel.messages[pos].flagged != m.flagged)
                {
                    sel.messages[pos] = m;
                    changed_flags.push(pos);
                }
            } else {
                sel.messages.push(m);
            }
        }
        if sel.messages.len() != before {
            out.push(Reply::Data(Data::Exists(
                u32::try_from(sel.messages.len()).unwrap_or(u32::MAX),
            )));
        }
        for pos in changed_flags {
            let row = &sel.messages[pos];
            let deleted = sel.deleted.contains(&row.envelope_id);
            if let (Some(seq), Some(uid)) = (nz(pos + 1), uid_of(row))
                && let Ok(items) = Vec1::try_from(vec![
                    MessageDataItem::Flags(flags_of(row, deleted)),
                    MessageDataItem::Uid(uid),
                ])
            {
                out.push(Reply::Data(Data::Fetch { seq, items }));
            }
        }
        out
    }

    /// Indices into the selected folder named by a sequence or UID set.
    fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let State::Selected(sel) = &self.state else {
            return Vec::new();
        };
        if sel.messages.is_empty() {
            return Vec::new();
        }
        if uid {
            let Some(largest) = sel.messages.last().and_then(uid_of) else {
                return Vec::new();
            };
            sel.messages
                .iter()
                .enumerate()
                .filter(|(_, m)| u32::try_from(m.uid).is_ok_and(|u| in_set(set, u, largest.get())))
                .map(|(i, _)| i)
                .collect()
        } else {
            let Ok(largest) = u32::try_from(sel.messages.len()) else {
                return Vec::new();
            };
            (0..sel.messages.len())
                .filter(|i| u32::try_from(i + 1).is_ok_and(|n| in_set(set, n, largest)))
                .collect()
        }
    }

    /// A sequence set naming messages that do not exist is an error for
    /// sequence numbers (RFC 3501 6.4.8 makes UIDs lenient).
    fn out_of_range(&self, set: &SequenceSet) -> bool {
        let State::Selected(sel) = &self.state else {
            return true;
        };
        let len = u32::try_from(sel.messages.len()).unwrap_or(u32::MAX);
        set.0.as_ref().iter().any(|s| {
            use imap_next::imap_types::sequence::{SeqOrUid, Sequence};
            let over = |v: &SeqOrUid| matches!(v, SeqOrUid::Value(n) if n.get() > len);
            match s {
                Sequence::Single(v) => over(v),
                Sequence::Range(a, b) => over(a) && over(b),
            }
        })
    }

    /// Who sent an item and the reader, as a message names them.
    async fn parties(&mut self, session: &CurrentSession, sender_id: &str) -> Parties {
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
    async fn rendered(
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
            files.push((a.name.clone(), a.media_type.clone(), buf.take()));
        }
        let rendered = Arc::new(render(&item, &parties, files).map_err(|e| e.to_string())?);
        if !self.decrypted.summaries.contains_key(envelope_id) {
            self.decrypted
                .keep_summary(envelope_id, Arc::new(Summary::of(&rendered)));
        }
        self.decrypted.keep_rendered(envelope_id, rendered.clone());
        Ok(rendered)
    }

    /// Summaries of the messages at `indices` not summarized yet, opened in
    /// batches (two queries and both cores per batch instead of a round of
    /// queries and a thread hop per message). Failures are left for the
    /// message's own FETCH to report.
    async fn prefetch_summaries(&mut self, session: &CurrentSession, indices: &[usize]) {
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
            for (id, item) in opened {
                let Ok(item) = item else { continue };
                let parties = self.parties(session, &item.sender_id).await;
                if let Ok(sum) = summarize(&item, &parties) {
                    self.decrypted.keep_summary(&id, Arc::new(sum));
                }
            }
        }
    }

    /// Size, header, ENVELOPE and BODYSTRUCTURE: the item opened without its
    /// attachments, nothing marked.
    async fn summary(
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

    async fn selected_command(
        &mut self,
        tag: Tag<'static>,
        body: CommandBody<'static>,
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        match body {
            CommandBody::Close | CommandBody::Unselect => {
                let close = matches!(body, CommandBody::Close);
                if close {
                    // CLOSE expunges silently (read-write folders only).
                    let _ = self.expunge(session, true).await;
                }
                self.state = State::Authenticated;
                out.push(ok(Some(tag), None, "folder closed"));
            }
            CommandBody::Expunge => {
                if self.read_only() {
                    out.push(no(
                        Some(tag),
                        Some(Code::ReadOnly),
                        "this folder is read-only",
                    ));
                    return;
                }
                match self.expunge(session, false).await {
                    Ok(replies) => {
                        out.extend(replies);
                        out.push(ok(Some(tag), None, "EXPUNGE done (moved to Archive)"));
                    }
                    Err(text) => out.push(no(Some(tag), None, &text)),
                }
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                ..
            } => {
                if !uid && self.out_of_range(&sequence_set) {
                    out.push(bad(Some(tag), "no such message number"));
                    return;
                }
                let mut names = match macro_or_item_names {
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
                };
                if uid && !names.contains(&MessageDataItemName::Uid) {
                    names.insert(0, MessageDataItemName::Uid);
                }
                let indices = self.resolve(&sequence_set, uid);
                if summary_or_full(&names) == (false, true) {
                    self.prefetch_summaries(session, &indices).await;
                }
                for i in indices {
                    match self.fetch_one(session, i, &names).await {
                        Ok(Some(reply)) => out.push(reply),
                        Ok(None) => {}
                        Err(text) => {
                            out.push(no(Some(tag), None, &text));
                            return;
                        }
                    }
                }
                out.push(ok(Some(tag), None, "FETCH done"));
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                ..
            } => {
                if self.read_only() {
                    out.push(no(
                        Some(tag),
                        Some(Code::ReadOnly),
                        "this folder is read-only",
                    ));
                    return;
                }
                if !uid && self.out_of_range(&sequence_set) {
                    out.push(bad(Some(tag), "no such message number"));
                    return;
                }
                let silent = matches!(response, imap_next::imap_types::flag::StoreResponse::Silent);
                for i in self.resolve(&sequence_set, uid) {
                    if let Err(text) = self.store_one(session, i, &kind, &flags).await {
                        out.push(no(Some(tag), None, &text));
                        return;
                    }
                    if !silent {
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
            CommandBody::Search { criteria, uid, .. } => {
                match self.search(session, criteria.as_ref(), uid).await {
                    Ok(hits) => {
                        out.push(Reply::Data(Data::Search(hits)));
                        out.push(ok(Some(tag), None, "SEARCH done"));
                    }
                    Err(text) => out.push(no(Some(tag), None, &text)),
                }
            }
            _ => out.push(bad(Some(tag), "command not supported")),
        }
    }

    fn read_only(&self) -> bool {
        matches!(&self.state, State::Selected(s) if s.read_only)
    }

    async fn expunge(
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

    async fn store_one(
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

    async fn fetch_one(
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
        let header: Option<&[u8]> = match (&rendered, &summary) {
            (Some(r), _) => Some(&r.bytes[..r.header_len]),
            (None, Some(s)) => Some(&s.header),
            (None, None) => None,
        };
        let size = match (&rendered, &summary) {
            (Some(r), _) => Some(u32::try_from(r.bytes.len()).unwrap_or(u32::MAX)),
            (None, Some(s)) => Some(s.size),
            (None, None) => None,
        };
        let envelope = match (&rendered, &summary) {
            (Some(r), _) => Some(&r.envelope),
            (None, Some(s)) => Some(&s.envelope),
            (None, None) => None,
        };
        let body_structure = match (&rendered, &summary) {
            (Some(r), _) => r.structure.as_ref().map(|s| &s.body_structure),
            (None, Some(s)) => s.body_structure.as_ref(),
            (None, None) => None,
        };
        let mut row = row;
        if marks {
            row.seen = true;
            if let State::Selected(sel) = &mut self.state {
                sel.messages[i].seen = true;
            }
        }
        let mut items = Vec::new();
        let mut flags_sent = false;
        for name in names {
            match name {
                MessageDataItemName::Uid => {
                    if let Some(u) = uid_of(&row) {
                        items.push(MessageDataItem::Uid(u));
                    }
                }
                MessageDataItemName::Flags => {
                    flags_sent = true;
                    items.push(MessageDataItem::Flags(flags_of(&row, deleted)));
                }
                MessageDataItemName::InternalDate => {
                    if let Some(d) = chrono::DateTime::from_timestamp(row.created_at, 0)
                        .map(|d| d.fixed_offset())
                        .and_then(|d| DateTime::try_from(d).ok())
                    {
                        items.push(MessageDataItem::InternalDate(d));
                    }
                }
                MessageDataItemName::Rfc822Size => {
                    if let Some(n) = size {
                        items.push(MessageDataItem::Rfc822Size(n));
                    }
                }
                MessageDataItemName::Envelope => {
                    if let Some(e) = envelope {
                        items.push(MessageDataItem::Envelope(e.clone()));
                    }
                }
                MessageDataItemName::Rfc822 => {
                    if let Some(r) = &rendered {
                        items.push(MessageDataItem::Rfc822(literal(&r.bytes)));
                    }
                }
                MessageDataItemName::Rfc822Header => {
                    if let Some(h) = header {
                        items.push(MessageDataItem::Rfc822Header(literal(h)));
                    }
                }
                MessageDataItemName::Rfc822Text => {
                    if let Some(r) = &rendered {
                        items.push(MessageDataItem::Rfc822Text(literal(
                            &r.bytes[r.header_len..],
                        )));
                    }
                }
                MessageDataItemName::BodyStructure | MessageDataItemName::Body => {
                    let Some(b) = body_structure else {
                        return Err("the message structure could not be read".into());
                    };
                    items.push(if matches!(name, MessageDataItemName::Body) {
                        MessageDataItem::Body(b.clone())
                    } else {
                        MessageDataItem::BodyStructure(b.clone())
                    });
                }
                MessageDataItemName::BodyExt {
                    section, partial, ..
                } => {
                    let Some(header) = header else { continue };
                    // Sections past the header need the whole message.
                    let bytes: &[u8] = rendered.as_ref().map_or(&[], |r| r.bytes.as_slice());
                    let body_from = rendered.as_ref().map_or(0, |r| r.header_len);
                    let part = |p: &imap_next::imap_types::fetch::Part| {
                        rendered
                            .as_ref()
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
                    let whole: std::borrow::Cow<'_, [u8]> = match section {
                        None => bytes.into(),
                        Some(Section::Header(None)) => header.into(),
                        Some(Section::Text(None)) => {
                            bytes.get(body_from..).unwrap_or_default().into()
                        }
                        Some(Section::HeaderFields(None, list)) => {
                            super::structure::header_fields(header, &names(list), false).into()
                        }
                        Some(Section::HeaderFieldsNot(None, list)) => {
                            super::structure::header_fields(header, &names(list), true).into()
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
                            let start = usize::try_from(*start).unwrap_or(usize::MAX);
                            let len = usize::try_from(len.get()).unwrap_or(usize::MAX);
                            let from = start.min(whole.len());
                            let to = from.saturating_add(len).min(whole.len());
                            (&whole[from..to], u32::try_from(from).ok())
                        }
                        None => (whole, None),
                    };
                    items.push(MessageDataItem::BodyExt {
                        section: section.clone(),
                        origin,
                        data: literal(data),
                    });
                }
                _ => return Err("BINARY is not served; use BODY[]".into()),
            }
        }
        if marks && !flags_sent {
            items.push(MessageDataItem::Flags(flags_of(&row, deleted)));
        }
        let (Some(seq), Ok(items)) = (nz(i + 1), Vec1::try_from(items)) else {
            return Ok(None);
        };
        Ok(Some(Reply::Data(Data::Fetch { seq, items })))
    }

    async fn search(
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

/// Whether a FETCH needs whole messages (body content), and whether it needs
/// summaries (what a message list shows: size, header, ENVELOPE, structure).
fn summary_or_full(names: &[MessageDataItemName<'_>]) -> (bool, bool) {
    let full = names.iter().any(|n| match n {
        MessageDataItemName::Flags
        | MessageDataItemName::Uid
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
                | MessageDataItemName::InternalDate
        )
    });
    (full, summary)
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

fn literal(bytes: &[u8]) -> NString<'static> {
    match imap_next::imap_types::core::Literal::try_from(bytes.to_vec()) {
        Ok(l) => NString::from(l),
        Err(_) => NString::NIL,
    }
}
