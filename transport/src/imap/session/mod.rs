//! The IMAP session state machine (RFC 3501 states): what each command does in
//! each state. Syntax is imap-codec's (`codec.rs`), flows (literals,
//! AUTHENTICATE, IDLE) are imap-next's (`connection.rs`), mailbox rules are
//! `mailbox::folders`'; the operations that call them are this module's
//! children (`select`, `fetch`, `store`, `search`, `transfer` for COPY and
//! MOVE, `condstore` for ENABLE and RFC 7162's mod-sequences).

mod cache;
mod condstore;
mod fetch;
mod prefetch;
mod search;
mod select;
mod store;
mod streamed;
mod transfer;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use imap_next::imap_types::command::{Command, CommandBody, StoreModifier};
use imap_next::imap_types::core::{IString, NString, Tag};
use imap_next::imap_types::extensions::namespace::Namespace;
use imap_next::imap_types::flag::StoreResponse;
use imap_next::imap_types::response::{Code, CodeOther, Data, Status};
use imap_next::imap_types::sequence::SequenceSet;
use mailbox::postroom::Postroom;
use mailbox::postroom::folders::FolderItem;
use mailbox::postroom::folders::{Folder, Folders};
use mailbox::{CurrentSession, Directory, Error, Password, SessionToken};

pub use super::codec::{Reply, bad, capabilities, no, ok};
use super::codec::{in_set, uid_of};
use super::esearch::{SearchReturn, esearch_line};
use super::names;
use cache::Decrypted;
use store::StoreFlags;

/// What a session needs from the domain.
#[derive(Clone)]
pub struct Services {
    pub directory: Arc<Directory>,
    pub postroom: Arc<Postroom>,
    pub folders: Arc<Folders>,
}

struct Selected {
    folder: Folder,
    read_only: bool,
    messages: Vec<FolderItem>,
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

pub struct Session {
    services: Services,
    state: State,
    remote: IpAddr,
    signed_in: Option<(SessionToken, CurrentSession)>,
    decrypted: Decrypted,
    /// CONDSTORE enabled (RFC 7162): FETCH responses carry MODSEQ.
    condstore: bool,
    /// QRESYNC enabled: expunges are told as VANISHED.
    qresync: bool,
    /// The RETURN options of the SEARCH being answered (ESEARCH, RFC 4731).
    search_return: Option<SearchReturn>,
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
            condstore: false,
            qresync: false,
            search_return: None,
        }
    }

    /// The client's address.
    pub fn remote(&self) -> IpAddr {
        self.remote
    }

    pub fn authenticated(&self) -> bool {
        self.signed_in.is_some()
    }

    /// The signed-in account's ID (for the per-account connection limit).
    pub fn account_id(&self) -> Option<String> {
        self.signed_in
            .as_ref()
            .map(|(_, s)| s.account.id.as_str().to_string())
    }

    /// Whether the session still holds (see `current`); when not, the session
    /// is left signed out and the connection says BYE.
    pub async fn still_signed_in(&mut self) -> bool {
        self.current().await.is_ok()
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
            Err(Error::NetworkNotAllowed) => Err(format!("[AUTHORIZATIONFAILED] {}", Error::NetworkNotAllowed)),
            Err(Error::AppPasswordRequired) => Err(
                "[AUTHENTICATIONFAILED] two-factor sign-in is on: use an app password made on the web pages"
                    .into(),
            ),
            Err(Error::TooManyAttempts) => {
                Err("[UNAVAILABLE] too many failed sign-ins; try later".into())
            }
            Err(Error::AppPasswordExpired) => Err(
                "[AUTHENTICATIONFAILED] the app password has expired (90 days): make a new one on the web pages"
                    .into(),
            ),
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

    /// A SEARCH with RETURN options (the options taken out of the line by
    /// `esearch::split_return`): answered with `* ESEARCH`.
    pub async fn search_returning(
        &mut self,
        command: Command<'static>,
        ret: SearchReturn,
    ) -> Vec<Reply> {
        self.search_return = Some(ret);
        let out = self.command(command).await;
        self.search_return = None;
        out
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
                reference,
                mailbox_wildcard,
            }
            | CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self.list(tag, &reference, &mailbox_wildcard, session, out),
            CommandBody::Enable { capabilities } => self.enable(tag, capabilities.as_ref(), out),
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(tag, mailbox, &item_names, session, out).await,
            CommandBody::Select {
                mailbox,
                parameters,
            } => {
                self.select(tag, &mailbox, false, &parameters, session, out)
                    .await;
            }
            CommandBody::Examine {
                mailbox,
                parameters,
            } => {
                self.select(tag, &mailbox, true, &parameters, session, out)
                    .await;
            }
            CommandBody::Create { mailbox } if names::is_trash(&mailbox) => {
                out.push(no(
                    Some(tag),
                    Some(Code::Other(CodeOther::unvalidated(&b"ALREADYEXISTS"[..]))),
                    "nothing is deleted here: Trash is Archive (items moved there are archived)",
                ));
            }
            CommandBody::Append { .. } => {
                out.push(no(
                    Some(tag),
                    None,
                    "items are sent from the web pages (signed and sealed there); APPEND is refused",
                ));
            }
            CommandBody::Create { .. }
            | CommandBody::Delete { .. }
            | CommandBody::Rename { .. }
            | CommandBody::Subscribe { .. }
            | CommandBody::Unsubscribe { .. } => {
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
                    let _ = self.expunge(session, true, None).await;
                }
                self.state = State::Authenticated;
                out.push(ok(Some(tag), None, "folder closed"));
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => {
                let args = transfer::TransferArgs {
                    sequence_set,
                    mailbox,
                    uid,
                    is_move: false,
                };
                self.transfer(tag, &args, session, out).await;
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                let args = transfer::TransferArgs {
                    sequence_set,
                    mailbox,
                    uid,
                    is_move: true,
                };
                self.transfer(tag, &args, session, out).await;
            }
            CommandBody::ExpungeUid { sequence_set } => {
                self.expunge_command(tag, Some(&sequence_set), session, out)
                    .await;
            }
            CommandBody::Expunge => {
                self.expunge_command(tag, None, session, out).await;
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                let fetch = fetch::FetchArgs {
                    sequence_set,
                    names: macro_or_item_names,
                    uid,
                    changed_since: None,
                };
                self.fetch_command(tag, fetch, &modifiers, session, out)
                    .await;
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                let silent = matches!(response, StoreResponse::Silent);
                let flags = StoreFlags {
                    kind,
                    flags,
                    silent,
                    unchanged_since: modifiers
                        .iter()
                        .map(|StoreModifier::UnchangedSince(n)| *n)
                        .next(),
                };
                self.store(tag, &sequence_set, &flags, uid, session, out)
                    .await;
            }
            CommandBody::Search { criteria, uid, .. } => {
                let returning = self.search_return.take();
                match self.search(session, criteria.as_ref(), uid).await {
                    Ok((hits, modseq)) => {
                        out.push(match returning {
                            Some(ret) => Reply::Raw(esearch_line(
                                AsRef::<str>::as_ref(&tag),
                                uid,
                                ret,
                                &hits,
                                modseq,
                            )),
                            None => Reply::Data(Data::Search(hits, modseq)),
                        });
                        out.push(ok(Some(tag), None, "SEARCH done"));
                    }
                    Err(text) => out.push(no(Some(tag), None, &text)),
                }
            }
            CommandBody::Sort {
                sort_criteria,
                search_criteria,
                uid,
                ..
            } => {
                self.sort(
                    tag,
                    sort_criteria.as_ref(),
                    search_criteria.as_ref(),
                    uid,
                    session,
                    out,
                )
                .await;
            }
            _ => out.push(bad(Some(tag), "command not supported")),
        }
    }

    async fn expunge_command(
        &mut self,
        tag: Tag<'static>,
        only: Option<&SequenceSet>,
        session: &CurrentSession,
        out: &mut Vec<Reply>,
    ) {
        if self.read_only() {
            out.push(no(
                Some(tag),
                Some(Code::ReadOnly),
                "this folder is read-only",
            ));
            return;
        }
        match self.expunge(session, false, only).await {
            Ok(replies) => {
                out.extend(replies);
                out.push(ok(Some(tag), None, "EXPUNGE done (moved to Archive)"));
            }
            Err(text) => out.push(no(Some(tag), None, &text)),
        }
    }

    fn read_only(&self) -> bool {
        matches!(&self.state, State::Selected(s) if s.read_only)
    }
}
