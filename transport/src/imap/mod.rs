//! IMAP for mail clients: TLS listeners (implicit, or STARTTLS in
//! `starttls.rs`) with per-address connection limits, handing each connection
//! to the loop of `connection.rs`, which drives imap-next's server flows
//! (literal limits, AUTHENTICATE, IDLE) over any byte stream (`wire.rs`) into
//! the session state machine of `session/`; messages are rendered on demand by
//! `render.rs`.
//!
//! Both listeners are off unless configured (`[imap] listen`,
//! `starttls_listen`). Login and idle timeouts; a literal limit enforced by
//! imap-next before the literal is read; AUTHENTICATE PLAIN. IDLE looks every
//! 500 ms with one read of a folder fingerprint (count, newest arrival,
//! arrival-weighted flag sums) and lists the folder only when it changed.
//! Refused input gets a BAD with the tag recovered from the discarded line.
//! Sign-in goes through `Directory::sign_in_mail` (app passwords, or the
//! account password where no second factor is required or enrolled) with the
//! web's lockout and per-address limit. Not yet: a FETCH response is built
//! whole in memory before it is written, so a study of hundreds of MB is held
//! twice.

pub mod codec;
pub mod connection;
pub mod layout;
pub mod names;
pub mod render;
pub mod session;
mod starttls;
pub mod stream;
pub mod structure;
pub mod wire;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

pub use connection::{Tally, serve_connection, serve_session};
use session::Services;
use starttls::before_starttls;

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
                tls_connection(tcp, peer, acceptor, services, settings).await;
            }
        });
    }
}

/// The TLS handshake, then the connection loop over the TLS stream.
async fn tls_connection(
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
    // A whole response (a message with its attachments) goes to rustls at
    // once; rustls would otherwise refuse more than 64 KiB unsent.
    tls.get_mut().1.set_buffer_limit(None);
    serve_connection(tls, peer.ip(), services, &settings).await;
}
