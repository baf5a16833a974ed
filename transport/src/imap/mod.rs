//! IMAP for mail clients: a TLS listener with per-address connection limits and
//! timeouts, driving imap-next's server flows (literal limits, AUTHENTICATE,
//! IDLE) into the session state machine of `session.rs`; messages are rendered
//! on demand by `render.rs`.

pub mod render;
pub mod session;
pub mod structure;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imap_next::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_next::imap_types::command::CommandBody;
use imap_next::imap_types::core::{Tag, Vec1};
use imap_next::imap_types::response::{
    Capability, Code, CommandContinuationRequest, Data, Greeting, Status,
};
use imap_next::server::{Error as ServerError, Event, Options, Server};
use imap_next::stream::{Error as StreamError, Stream};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use session::{Reply, Services, Session, bad, capabilities, no, ok};

#[derive(Debug, Clone)]
pub struct ImapSettings {
    /// Largest literal accepted; a bigger one is refused before it is read.
    pub max_literal: u32,
    /// Connections at once from one address.
    pub max_per_address: usize,
    /// How long a client may take to sign in after connecting.
    pub login_timeout: Duration,
    /// How long a signed-in connection may stay silent (RFC 3501: at least 30 min).
    pub idle_timeout: Duration,
    /// How often IDLE looks for news (a new item shows within this).
    pub idle_poll: Duration,
}

impl Default for ImapSettings {
    fn default() -> Self {
        Self {
            max_literal: 64 * 1024,
            max_per_address: 20,
            login_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30 * 60),
            idle_poll: Duration::from_millis(500),
        }
    }
}

/// Counts connections per address; the guard gives the slot back on drop.
#[derive(Clone, Default)]
struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct Slot(PerAddress, IpAddr);

impl PerAddress {
    fn take(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut map = self.0.lock().ok()?;
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot(self.clone(), ip))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut map) = (self.0).0.lock()
            && let Some(n) = map.get_mut(&self.1)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.1);
            }
        }
    }
}

/// How a listener's connections come to TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS, port 993 by convention).
    Implicit,
    /// Plain IMAP until the client sends STARTTLS (port 143 by convention);
    /// nothing but CAPABILITY, NOOP, LOGOUT and STARTTLS is served before it,
    /// so no password crosses the wire in clear.
    StartTls,
}

/// Serves IMAP over implicit TLS on an already bound listener until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    services: Services,
    settings: ImapSettings,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(
        listener,
        TlsMode::Implicit,
        tls,
        services,
        settings,
        shutdown,
    )
    .await;
}

/// Serves IMAP on an already bound listener, TLS as `mode` says, until `shutdown`.
pub async fn serve_with(
    listener: TcpListener,
    mode: TlsMode,
    tls: Arc<rustls::ServerConfig>,
    services: Services,
    settings: ImapSettings,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let limits = PerAddress::default();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "imap accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // A response goes out in several writes (untagged data, then the tagged
        // status); with Nagle on, the last small segment waits for the client's
        // delayed ACK (40 ms on Linux) before it leaves: every command that is not
        // a bulk transfer would take 40 ms.
        let _ = tcp.set_nodelay(true);
        let Some(slot) = limits.take(peer.ip(), settings.max_per_address) else {
            tracing::warn!(peer = %peer.ip(), "imap: too many connections from one address");
            drop(tcp);
            continue;
        };
        let acceptor = acceptor.clone();
        let services = services.clone();
        let settings = settings.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let tcp = match mode {
                TlsMode::Implicit => Some(tcp),
                TlsMode::StartTls => before_starttls(tcp, &settings).await,
            };
            if let Some(tcp) = tcp {
                connection(tcp, peer, acceptor, services, settings).await;
            }
        });
    }
}

/// What a STARTTLS listener offers before TLS.
fn plaintext_capabilities() -> Vec1<Capability<'static>> {
    Vec1::from(Capability::Imap4Rev1)
        .into_iter()
        .chain([Capability::StartTls, Capability::LoginDisabled])
        .collect::<Vec<_>>()
        .try_into()
        .unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
}

/// The plain-text part of a STARTTLS connection: answers CAPABILITY, NOOP and
/// LOGOUT, refuses everything else, and hands the TCP stream back once the
/// client asked for TLS and got its OK. Whatever the client sent after its
/// STARTTLS line (in clear, so possibly injected) is dropped with this phase's
/// buffers; the TLS phase starts from nothing.
async fn before_starttls(tcp: TcpStream, settings: &ImapSettings) -> Option<TcpStream> {
    let mut options = Options::default();
    // No literal is needed for any command allowed here.
    options.max_literal_size = 0;
    options.max_command_size = 1024;
    let greeting = Greeting::ok(
        Some(Code::Capability(plaintext_capabilities())),
        "Renkei IMAP ready; STARTTLS first",
    )
    .ok()?;
    let mut server = Server::new(options, greeting);
    let mut stream = Stream::insecure(tcp);
    let deadline = tokio::time::Instant::now() + settings.login_timeout;
    let mut bad_lines = 0u32;
    let mut upgrade = None;
    let mut closing = None;
    loop {
        let event = tokio::time::timeout_at(deadline, stream.next(&mut server))
            .await
            .ok()?;
        match event {
            Ok(Event::GreetingSent { .. }) => {}
            Ok(Event::ResponseSent { handle, .. }) => {
                if upgrade == Some(handle) {
                    return Some(TcpStream::from(stream));
                }
                if closing == Some(handle) {
                    return None;
                }
            }
            Ok(Event::CommandReceived { command }) => {
                let tag = command.tag;
                match command.body {
                    CommandBody::Capability => {
                        server.enqueue_data(Data::Capability(plaintext_capabilities()));
                        enqueue(&mut server, vec![ok(Some(tag), None, "CAPABILITY done")]);
                    }
                    CommandBody::Noop => {
                        enqueue(&mut server, vec![ok(Some(tag), None, "NOOP done")])
                    }
                    CommandBody::Logout => {
                        if let Ok(bye) = Status::bye(None, "logging out") {
                            server.enqueue_status(bye);
                        }
                        if let Some(s) = status(ok(Some(tag), None, "LOGOUT done")) {
                            closing = Some(server.enqueue_status(s));
                        }
                    }
                    CommandBody::StartTLS => {
                        if let Some(s) = status(ok(Some(tag), None, "begin TLS now")) {
                            upgrade = Some(server.enqueue_status(s));
                        }
                    }
                    CommandBody::Login { .. } => enqueue(
                        &mut server,
                        vec![no(Some(tag), None, "LOGINDISABLED: use STARTTLS first")],
                    ),
                    _ => enqueue(&mut server, vec![bad(Some(tag), "STARTTLS first")]),
                }
            }
            Ok(Event::CommandAuthenticateReceived {
                command_authenticate,
            }) => {
                if let Some(s) = status(no(
                    Some(command_authenticate.tag),
                    None,
                    "no authentication before STARTTLS",
                )) {
                    let _ = server.authenticate_finish(s);
                }
            }
            Ok(Event::IdleCommandReceived { tag }) => {
                if let Some(s) = status(bad(Some(tag), "STARTTLS first")) {
                    let _ = server.idle_reject(s);
                }
            }
            Ok(Event::AuthenticateDataReceived { .. } | Event::IdleDoneReceived) => {}
            Err(StreamError::State(e)) => {
                bad_lines += 1;
                let bytes = match &e {
                    ServerError::LiteralTooLong { .. } => continue,
                    ServerError::CommandTooLong { discarded_bytes }
                    | ServerError::MalformedMessage { discarded_bytes }
                    | ServerError::ExpectedCrlfGotLf { discarded_bytes } => {
                        discarded_bytes.declassify().to_vec()
                    }
                };
                enqueue(&mut server, vec![bad(tag_of(&bytes), "unparsable command")]);
                if bad_lines > 10
                    && let Ok(bye) = Status::bye(None, "too many bad commands")
                {
                    closing = Some(server.enqueue_status(bye));
                }
            }
            Err(_) => return None,
        }
    }
}

/// The tag at the start of a line the parser refused, if it looks like one.
fn tag_of(bytes: &[u8]) -> Option<Tag<'static>> {
    let end = bytes
        .iter()
        .position(|b| *b == b' ' || *b == b'\r' || *b == b'\n')?;
    let text = std::str::from_utf8(&bytes[..end]).ok()?;
    Tag::try_from(text.to_string()).ok()
}

fn enqueue(server: &mut Server, replies: Vec<Reply>) {
    for reply in replies {
        match reply {
            Reply::Data(d) => {
                server.enqueue_data(d);
            }
            Reply::Status(s) => {
                server.enqueue_status(s);
            }
        }
    }
}

fn status(reply: Reply) -> Option<Status<'static>> {
    match reply {
        Reply::Status(s) => Some(s),
        Reply::Data(_) => None,
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

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    services: Services,
    settings: ImapSettings,
) {
    let mut tls = match tokio::time::timeout(settings.login_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "imap TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    // imap-next hands a whole response (a message with its attachments) to
    // rustls at once; rustls would otherwise refuse more than 64 KiB unsent.
    tls.get_mut().1.set_buffer_limit(None);
    let mut stream = Stream::tls(tokio_rustls::TlsStream::Server(tls));
    let mut options = Options::default();
    options.max_literal_size = settings.max_literal;
    options.max_command_size = settings.max_literal.saturating_add(8 * 1024);
    // imap-next answers an oversized literal itself (tagged BAD) before any of
    // it is read; these are the texts it uses.
    let _ = options.set_literal_reject_text("literal too large: refused unread".into());
    let _ = options.set_literal_accept_text("ready for the literal".into());
    let Ok(greeting) = Greeting::ok(Some(Code::Capability(capabilities())), "Renkei IMAP ready")
    else {
        return;
    };
    let mut server = Server::new(options, greeting);
    let mut session = Session::new(services, peer.ip());
    let mut pending_auth: Option<Tag<'static>> = None;
    let mut idling: Option<Tag<'static>> = None;
    let mut bad_lines = 0u32;
    // The handle of the last response before closing (LOGOUT, BYE).
    let mut closing = None;

    loop {
        let limit = if session.authenticated() {
            settings.idle_timeout
        } else {
            settings.login_timeout
        };
        let next = async {
            if idling.is_some() {
                // While idling, wake up regularly to report news.
                tokio::time::timeout(settings.idle_poll, stream.next(&mut server))
                    .await
                    .ok()
            } else {
                Some(stream.next(&mut server).await)
            }
        };
        let event = match tokio::time::timeout(limit, next).await {
            Err(_) => {
                // Silent for too long: say goodbye and close.
                if let Ok(bye) = Status::bye(None, "idle for too long") {
                    server.enqueue_status(bye);
                }
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), stream.next(&mut server)).await;
                break;
            }
            Ok(None) => {
                // IDLE tick.
                let news = session.changes().await;
                enqueue(&mut server, news);
                continue;
            }
            Ok(Some(event)) => event,
        };
        match event {
            Ok(Event::GreetingSent { .. }) => {}
            Ok(Event::ResponseSent { handle, .. }) => {
                if closing == Some(handle) {
                    break;
                }
            }
            Ok(Event::CommandReceived { command }) => {
                let replies = session.command(command).await;
                let logout = session.logged_out();
                let mut last = None;
                for reply in replies {
                    last = Some(match reply {
                        Reply::Data(d) => server.enqueue_data(d),
                        Reply::Status(s) => server.enqueue_status(s),
                    });
                }
                if logout {
                    closing = last;
                    if closing.is_none() {
                        break;
                    }
                }
            }
            Ok(Event::CommandAuthenticateReceived {
                command_authenticate,
            }) => {
                let tag = command_authenticate.tag;
                if session.authenticated() {
                    if let Some(s) = status(bad(Some(tag), "already signed in")) {
                        let _ = server.authenticate_finish(s);
                    }
                    continue;
                }
                if command_authenticate.mechanism != AuthMechanism::Plain {
                    if let Some(s) = status(no(Some(tag), None, "only AUTHENTICATE PLAIN")) {
                        let _ = server.authenticate_finish(s);
                    }
                    continue;
                }
                match command_authenticate.initial_response {
                    Some(data) => {
                        let reply = authenticate(&mut session, tag, data.declassify()).await;
                        if let Some(s) = status(reply) {
                            let _ = server.authenticate_finish(s);
                        }
                    }
                    None => {
                        pending_auth = Some(tag);
                        let _ = server.authenticate_continue(CommandContinuationRequest::base64(
                            Vec::<u8>::new(),
                        ));
                    }
                }
            }
            Ok(Event::AuthenticateDataReceived { authenticate_data }) => {
                let Some(tag) = pending_auth.take() else {
                    continue;
                };
                let reply = match authenticate_data {
                    AuthenticateData::Continue(data) => {
                        authenticate(&mut session, tag, data.declassify()).await
                    }
                    AuthenticateData::Cancel => bad(Some(tag), "authentication cancelled"),
                };
                if let Some(s) = status(reply) {
                    let _ = server.authenticate_finish(s);
                }
            }
            Ok(Event::IdleCommandReceived { tag }) => {
                if session.selected() {
                    let accepted = CommandContinuationRequest::basic(None, "idling")
                        .map(|c| server.idle_accept(c).is_ok())
                        .unwrap_or(false);
                    if accepted {
                        idling = Some(tag);
                        let news = session.changes().await;
                        enqueue(&mut server, news);
                    }
                } else if let Some(s) = status(bad(Some(tag), "select a folder first")) {
                    let _ = server.idle_reject(s);
                }
            }
            Ok(Event::IdleDoneReceived) => {
                if let Some(tag) = idling.take() {
                    enqueue(&mut server, vec![ok(Some(tag), None, "IDLE done")]);
                }
            }
            Err(StreamError::State(e)) => {
                bad_lines += 1;
                let (bytes, text) = match &e {
                    // Already refused by imap-next with the reject text.
                    ServerError::LiteralTooLong { .. } => continue,
                    ServerError::CommandTooLong { discarded_bytes } => {
                        (discarded_bytes.declassify().to_vec(), "command too long")
                    }
                    ServerError::MalformedMessage { discarded_bytes }
                    | ServerError::ExpectedCrlfGotLf { discarded_bytes } => {
                        (discarded_bytes.declassify().to_vec(), "unparsable command")
                    }
                };
                tracing::debug!(peer = %peer.ip(), error = %e, "imap: refused input");
                enqueue(&mut server, vec![bad(tag_of(&bytes), text)]);
                // A client that only sends garbage before signing in is dropped.
                if !session.authenticated()
                    && bad_lines > 10
                    && let Ok(bye) = Status::bye(None, "too many bad commands")
                {
                    closing = Some(server.enqueue_status(bye));
                }
            }
            Err(StreamError::Closed) => break,
            Err(e) => {
                tracing::warn!(error = %e, "imap connection error");
                break;
            }
        }
    }
    session.sign_out().await;
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
