//! The connection loop: imap-next's server flow (literal limits, AUTHENTICATE,
//! IDLE) over any byte stream, its events into the session state machine and
//! the replies back. The TLS listeners and the fuzzer both run this loop.
//!
//! Before sign-in the connection has one deadline, counted from the connection
//! (what the client sends does not move it). Once signed in, the connection
//! takes its place under the per-(address, account) limit, and every command
//! and every `session_recheck` of an IDLE look at the session: when it has
//! ended (timeout, lock, removal, password change, a revoked app password) the
//! client gets `* BYE` and the connection closes.

use std::net::IpAddr;
use std::time::Duration;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_next::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_next::imap_types::command::CommandBody;
use imap_next::imap_types::core::Tag;
use imap_next::imap_types::response::{Code, CommandContinuationRequest, Data, Greeting, Status};
use imap_next::server::{Error as ServerError, Event, Options, ResponseHandle, Server};
use imap_next::types::CommandAuthenticate;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::esearch;
use super::session::{Reply, Services, Session, bad, capabilities, no, ok};
use super::stream::{EMPTY_LITERAL_TAIL, Streamed};
use super::wire::{Wire, WireError};
use super::{Admission, ImapSettings};

/// How long the last answers (BYE, LOGOUT) may take to leave before the
/// connection is dropped anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How imap-codec writes the empty SEARCH a raw line stands in for.
const RAW_PLACEHOLDER: &[u8] = b"* SEARCH\r\n";
/// Bad lines tolerated from a client that has not signed in.
const MAX_BAD_LINES: u32 = 10;

/// What a connection did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Commands handed to the session (IDLE and AUTHENTICATE included).
    pub commands: usize,
    /// Lines the parser refused.
    pub refused: usize,
}

/// Serves one connection on an established stream (plain, or after TLS) with a
/// new session, and signs it out at the end.
pub async fn serve_connection<S>(
    stream: S,
    peer: IpAddr,
    services: Services,
    settings: &ImapSettings,
) -> Tally
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = Session::new(services, peer);
    let deadline = Instant::now() + settings.login_timeout;
    let tally = serve_gated(stream, &mut session, settings, deadline, None).await;
    session.sign_out().await;
    tally
}

/// As [`serve_connection`] for a listener's connection: the sign-in
/// `deadline` counted from its accept, and its place under the limits.
pub async fn serve_admitted<S>(
    stream: S,
    admission: Admission,
    deadline: Instant,
    services: Services,
    settings: &ImapSettings,
) -> Tally
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = Session::new(services, admission.ip);
    let tally = serve_gated(stream, &mut session, settings, deadline, Some(admission)).await;
    session.sign_out().await;
    tally
}

/// Serves one connection with `session` in whatever state it is (the fuzzer
/// keeps a signed-in session across connections); the session is left as the
/// connection leaves it.
pub async fn serve_session<S>(stream: S, session: &mut Session, settings: &ImapSettings) -> Tally
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = Instant::now() + settings.login_timeout;
    serve_gated(stream, session, settings, deadline, None).await
}

async fn serve_gated<S>(
    stream: S,
    session: &mut Session,
    settings: &ImapSettings,
    deadline: Instant,
    admission: Option<Admission>,
) -> Tally
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Ok(greeting) = Greeting::ok(Some(Code::Capability(capabilities())), "Renkei IMAP ready")
    else {
        return Tally::default();
    };
    let mut conn = Connection {
        server: Server::new(options(settings), greeting),
        wire: Wire::new(stream),
        session,
        settings,
        pending_auth: None,
        idling: None,
        bad_lines: 0,
        closing: None,
        tally: Tally::default(),
        deadline,
        admission,
        admitted: false,
        rechecked: Instant::now(),
    };
    conn.run().await;
    let _ = tokio::time::timeout(CLOSE_GRACE, conn.wire.flush()).await;
    conn.tally
}

fn options(settings: &ImapSettings) -> Options {
    let mut options = Options::default();
    options.max_literal_size = settings.max_literal;
    options.max_command_size = settings.max_literal.saturating_add(8 * 1024);
    // imap-next answers an oversized literal itself (tagged BAD) before any of
    // it is read; these are the texts it uses.
    let _ = options.set_literal_reject_text("literal too large: refused unread".into());
    let _ = options.set_literal_accept_text("ready for the literal".into());
    options
}

/// Whether the loop goes on after an event.
enum Flow {
    Continue,
    Close,
}

struct Connection<'a, S> {
    server: Server,
    wire: Wire<S>,
    session: &'a mut Session,
    settings: &'a ImapSettings,
    pending_auth: Option<Tag<'static>>,
    idling: Option<Tag<'static>>,
    bad_lines: u32,
    /// The handle of the last response before closing (LOGOUT, BYE).
    closing: Option<ResponseHandle>,
    tally: Tally,
    /// When a connection that has not signed in is dropped.
    deadline: Instant,
    admission: Option<Admission>,
    /// Whether the signed-in connection has taken its place under the limits.
    admitted: bool,
    /// When an idling connection last checked its session.
    rechecked: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<'_, S> {
    async fn run(&mut self) {
        loop {
            let signed_in = self.session.authenticated();
            let limit = if signed_in {
                Instant::now() + self.settings.idle_timeout
            } else {
                self.deadline
            };
            let idle_poll = self.idling.is_some().then_some(self.settings.idle_poll);
            let next = async {
                match idle_poll {
                    // While idling, wake up regularly to report news.
                    Some(poll) => tokio::time::timeout(poll, self.wire.next(&mut self.server))
                        .await
                        .ok(),
                    None => Some(self.wire.next(&mut self.server).await),
                }
            };
            let event = match tokio::time::timeout_at(limit, next).await {
                Err(_) => {
                    // Silent for too long, or not signed in in time: say goodbye and close.
                    let why = if signed_in {
                        "idle for too long"
                    } else {
                        "sign-in took too long"
                    };
                    if let Ok(bye) = Status::bye(None, why) {
                        self.server.enqueue_status(bye);
                    }
                    let _ =
                        tokio::time::timeout(CLOSE_GRACE, self.wire.next(&mut self.server)).await;
                    break;
                }
                Ok(None) => {
                    // IDLE tick: now and then, whether the session still holds.
                    if self.rechecked.elapsed() >= self.settings.session_recheck {
                        self.rechecked = Instant::now();
                        if !self.session.still_signed_in().await {
                            self.end_session();
                            let _ =
                                tokio::time::timeout(CLOSE_GRACE, self.wire.next(&mut self.server))
                                    .await;
                            break;
                        }
                    }
                    let news = self.session.changes().await;
                    enqueue(&mut self.server, news);
                    continue;
                }
                Ok(Some(event)) => event,
            };
            let flow = match event {
                Ok(event) => self.on_event(event).await,
                Err(WireError::State(e)) => match self.on_refused_search(&e).await {
                    Some(flow) => flow,
                    None => self.on_refused(&e),
                },
                Err(WireError::Closed) => Flow::Close,
                Err(e) => {
                    tracing::warn!(error = %e, "imap connection error");
                    Flow::Close
                }
            };
            let flow = match flow {
                Flow::Continue => self.admit(),
                Flow::Close => Flow::Close,
            };
            if matches!(flow, Flow::Close) {
                break;
            }
        }
    }

    /// Once signed in, the connection trades its place before sign-in for one
    /// of its (address, account); when those are all taken it says BYE.
    fn admit(&mut self) -> Flow {
        if self.admitted || !self.session.authenticated() {
            return Flow::Continue;
        }
        self.admitted = true;
        if let (Some(admission), Some(account)) =
            (self.admission.as_mut(), self.session.account_id())
            && !admission.signed_in(&account)
        {
            tracing::warn!(peer = %self.session.remote(), "imap: too many connections for one account from one address");
            if let Ok(bye) = Status::bye(
                None,
                "too many connections for this account from this address",
            ) {
                self.closing = Some(self.server.enqueue_status(bye));
            }
        }
        Flow::Continue
    }

    /// The session ended under the connection (lock, removal, expiry, a
    /// password change): BYE, and the connection closes once it is sent.
    fn end_session(&mut self) {
        tracing::info!(peer = %self.session.remote(), "imap: session ended; closing the connection");
        if let Ok(bye) = Status::bye(None, "the session has ended; sign in again") {
            self.closing = Some(self.server.enqueue_status(bye));
        }
    }

    async fn on_event(&mut self, event: Event) -> Flow {
        match event {
            Event::GreetingSent { .. } => {}
            Event::ResponseSent { handle, .. } => {
                if self.closing == Some(handle) {
                    return Flow::Close;
                }
            }
            Event::CommandReceived { command } => {
                self.tally.commands += 1;
                let was_signed_in =
                    self.session.authenticated() && !matches!(command.body, CommandBody::Logout);
                // The commands that do not read the session look at it here.
                if was_signed_in
                    && matches!(
                        command.body,
                        CommandBody::Capability | CommandBody::Id { .. }
                    )
                    && !self.session.still_signed_in().await
                {
                    self.end_session();
                    return Flow::Continue;
                }
                let replies = self.session.command(command).await;
                let logout = self.session.logged_out();
                let Ok(last) = self.send(replies).await else {
                    return Flow::Close;
                };
                if was_signed_in && !self.session.authenticated() {
                    self.end_session();
                } else if logout {
                    self.closing = last;
                    if self.closing.is_none() {
                        return Flow::Close;
                    }
                }
            }
            Event::CommandAuthenticateReceived {
                command_authenticate,
            } => {
                self.tally.commands += 1;
                self.on_authenticate(command_authenticate).await;
            }
            Event::AuthenticateDataReceived { authenticate_data } => {
                let Some(tag) = self.pending_auth.take() else {
                    return Flow::Continue;
                };
                let reply = match authenticate_data {
                    AuthenticateData::Continue(data) => {
                        authenticate(self.session, tag, data.declassify()).await
                    }
                    AuthenticateData::Cancel => bad(Some(tag), "authentication cancelled"),
                };
                if let Some(s) = status(reply) {
                    let _ = self.server.authenticate_finish(s);
                }
            }
            Event::IdleCommandReceived { tag } => {
                self.tally.commands += 1;
                if self.session.authenticated() && !self.session.still_signed_in().await {
                    if let Some(s) = status(no(Some(tag), None, "the session has ended")) {
                        let _ = self.server.idle_reject(s);
                    }
                    self.end_session();
                    return Flow::Continue;
                }
                self.rechecked = Instant::now();
                self.on_idle(tag).await;
            }
            Event::IdleDoneReceived => {
                if let Some(tag) = self.idling.take() {
                    enqueue(&mut self.server, vec![ok(Some(tag), None, "IDLE done")]);
                }
            }
        }
        Flow::Continue
    }

    /// Writes a FETCH response with a streamed literal (see `stream`): what
    /// was queued before it first, then the response up to the literal, then
    /// the literal as it is decrypted.
    /// Queues the replies in order (streaming a FETCH body or writing a raw
    /// line when one comes); the handle of the last one queued.
    async fn send(&mut self, replies: Vec<Reply>) -> Result<Option<ResponseHandle>, ()> {
        let mut last = None;
        for reply in replies {
            last = Some(match reply {
                Reply::Data(d) => self.server.enqueue_data(d),
                Reply::Status(s) => self.server.enqueue_status(s),
                Reply::Stream(s) => {
                    self.stream(*s).await?;
                    continue;
                }
                Reply::Raw(line) => {
                    self.raw(&line).await?;
                    continue;
                }
            });
        }
        Ok(last)
    }

    /// A line imap-codec cannot build: a placeholder `* SEARCH` is queued so
    /// that everything before it is written first, then replaced by the line.
    async fn raw(&mut self, line: &[u8]) -> Result<(), ()> {
        let handle = self.server.enqueue_data(Data::Search(Vec::new(), None));
        match self
            .wire
            .send_through(&mut self.server, handle, RAW_PLACEHOLDER)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!("imap: a raw line's placeholder was not where expected");
                return Err(());
            }
            Err(e) => {
                tracing::debug!(error = %e, "imap: connection lost before a raw line");
                return Err(());
            }
        }
        self.wire.push_raw(line);
        Ok(())
    }

    /// A line the parser refused may be a SEARCH with RETURN options
    /// (ESEARCH): answered as one when the rest parses as a SEARCH.
    async fn on_refused_search(&mut self, e: &ServerError) -> Option<Flow> {
        let ServerError::MalformedMessage { discarded_bytes } = e else {
            return None;
        };
        if !self.session.authenticated() {
            return None;
        }
        let (line, ret) = esearch::split_return(discarded_bytes.declassify())?;
        let (_, command) = CommandCodec::default().decode_static(&line).ok()?;
        if !matches!(command.body, CommandBody::Search { .. }) {
            return None;
        }
        self.tally.commands += 1;
        let replies = self.session.search_returning(command, ret).await;
        Some(match self.send(replies).await {
            Ok(_) => Flow::Continue,
            Err(()) => Flow::Close,
        })
    }

    async fn stream(&mut self, s: Streamed) -> Result<(), ()> {
        let handle = self.server.enqueue_data(s.data);
        match self
            .wire
            .send_through(&mut self.server, handle, EMPTY_LITERAL_TAIL)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!("imap: a streamed FETCH did not end in its literal");
                return Err(());
            }
            Err(e) => {
                tracing::debug!(error = %e, "imap: connection lost before a streamed FETCH");
                return Err(());
            }
        }
        match s.body.write_to(self.wire.stream_mut()).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Part of the literal is out: the connection cannot go on.
                tracing::warn!(error = %e, "imap: streamed FETCH broken off");
                Err(())
            }
        }
    }

    async fn on_authenticate(&mut self, command: CommandAuthenticate) {
        let tag = command.tag;
        if self.session.authenticated() {
            if let Some(s) = status(bad(Some(tag), "already signed in")) {
                let _ = self.server.authenticate_finish(s);
            }
            return;
        }
        if command.mechanism != AuthMechanism::Plain {
            if let Some(s) = status(no(Some(tag), None, "only AUTHENTICATE PLAIN")) {
                let _ = self.server.authenticate_finish(s);
            }
            return;
        }
        match command.initial_response {
            Some(data) => {
                let reply = authenticate(self.session, tag, data.declassify()).await;
                if let Some(s) = status(reply) {
                    let _ = self.server.authenticate_finish(s);
                }
            }
            None => {
                self.pending_auth = Some(tag);
                let _ = self
                    .server
                    .authenticate_continue(CommandContinuationRequest::base64(Vec::<u8>::new()));
            }
        }
    }

    async fn on_idle(&mut self, tag: Tag<'static>) {
        if self.session.selected() {
            let accepted = CommandContinuationRequest::basic(None, "idling")
                .map(|c| self.server.idle_accept(c).is_ok())
                .unwrap_or(false);
            if accepted {
                self.idling = Some(tag);
                let news = self.session.changes().await;
                enqueue(&mut self.server, news);
            }
        } else if let Some(s) = status(bad(Some(tag), "select a folder first")) {
            let _ = self.server.idle_reject(s);
        }
    }

    fn on_refused(&mut self, e: &ServerError) -> Flow {
        self.tally.refused += 1;
        self.bad_lines += 1;
        let (bytes, text) = match e {
            // Already refused by imap-next with the reject text.
            ServerError::LiteralTooLong { .. } => return Flow::Continue,
            ServerError::CommandTooLong { discarded_bytes } => {
                (discarded_bytes.declassify().to_vec(), "command too long")
            }
            ServerError::MalformedMessage { discarded_bytes }
            | ServerError::ExpectedCrlfGotLf { discarded_bytes } => {
                (discarded_bytes.declassify().to_vec(), "unparsable command")
            }
        };
        tracing::debug!(peer = %self.session.remote(), error = %e, "imap: refused input");
        enqueue(&mut self.server, vec![bad(tag_of(&bytes), text)]);
        // A client that only sends garbage before signing in is dropped.
        if !self.session.authenticated()
            && self.bad_lines > MAX_BAD_LINES
            && let Ok(bye) = Status::bye(None, "too many bad commands")
        {
            self.closing = Some(self.server.enqueue_status(bye));
        }
        Flow::Continue
    }
}

/// The tag at the start of a line the parser refused, if it looks like one.
pub(super) fn tag_of(bytes: &[u8]) -> Option<Tag<'static>> {
    let end = bytes
        .iter()
        .position(|b| *b == b' ' || *b == b'\r' || *b == b'\n')?;
    let text = std::str::from_utf8(&bytes[..end]).ok()?;
    Tag::try_from(text.to_string()).ok()
}

pub(super) fn enqueue(server: &mut Server, replies: Vec<Reply>) {
    for reply in replies {
        match reply {
            Reply::Data(d) => {
                server.enqueue_data(d);
            }
            Reply::Status(s) => {
                server.enqueue_status(s);
            }
            // Only FETCH and SEARCH answers stream or go raw, never through here.
            Reply::Stream(_) | Reply::Raw(_) => {}
        }
    }
}

pub(super) fn status(reply: Reply) -> Option<Status<'static>> {
    match reply {
        Reply::Status(s) => Some(s),
        Reply::Data(_) | Reply::Stream(_) | Reply::Raw(_) => None,
    }
}

/// SASL PLAIN: `authzid NUL authcid NUL password`.
fn plain(data: &[u8]) -> Option<(String, String)> {
    let mut parts = data.split(|b| *b == 0);
    let _authz = parts.next()?;
    let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let password = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((user, password))
}

async fn authenticate(session: &mut Session, tag: Tag<'static>, data: &[u8]) -> Reply {
    match plain(data) {
        Some((user, password)) => match session.sign_in(&user, password).await {
            Ok(()) => ok(
                Some(tag),
                Some(Code::Capability(capabilities())),
                "signed in",
            ),
            Err(text) => no(Some(tag), None, &text),
        },
        None => bad(Some(tag), "malformed PLAIN credentials"),
    }
}
