//! IMAP for mail clients: TLS listeners (implicit, or STARTTLS in
//! `starttls.rs`) with per-address connection limits, handing each connection
//! to the loop of `connection.rs`, which drives imap-next's server flows
//! (literal limits, AUTHENTICATE, IDLE) over any byte stream (`wire.rs`) into
//! the session state machine of `session/`; messages are rendered on demand by
//! `render.rs`.
//!
//! Both listeners are off unless configured (`[imap] listen`,
//! `starttls_listen`). A sign-in deadline counted from the connection (NOOP or
//! CAPABILITY do not extend it) and a few connections per address before
//! sign-in, then a cap per (address, account), so a hospital behind one NAT
//! address is not limited as one client; an idle timeout; every command and an
//! idling connection (every `session_recheck`) check that the session still
//! holds, and end with BYE once it was locked, removed, expired or its password
//! changed; a literal limit enforced by
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
pub mod esearch;
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
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

pub use connection::{Tally, serve_admitted, serve_connection, serve_session};
use session::Services;
use starttls::before_starttls;

#[derive(Debug, Clone)]
pub struct ImapSettings {
    /// Largest literal accepted; a bigger one is refused before it is read.
    pub max_literal: u32,
    /// Signed-in connections at once from one address for one account.
    pub max_per_address: usize,
    /// Connections at once from one address that have not signed in yet; a
    /// connection gives its place back as it signs in.
    pub max_unauthenticated_per_address: usize,
    /// How long a client may take to sign in, counted from the connection
    /// (TLS handshake and STARTTLS included), whatever it sends meanwhile.
    pub login_timeout: Duration,
    /// How long a signed-in connection may stay silent (RFC 3501: at least 30 min).
    pub idle_timeout: Duration,
    /// How often IDLE looks for news (a new item shows within this).
    pub idle_poll: Duration,
    /// How often an idling connection checks that its session still holds
    /// (expiry, lock, removal, password change); it ends with BYE when not.
    pub session_recheck: Duration,
}

impl Default for ImapSettings {
    fn default() -> Self {
        Self {
            max_literal: 64 * 1024,
            max_per_address: 20,
            max_unauthenticated_per_address: 10,
            login_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30 * 60),
            idle_poll: Duration::from_millis(500),
            session_recheck: Duration::from_secs(5),
        }
    }
}

/// Counts connections per key; the slot gives its place back on drop.
struct Counts<K>(Arc<Mutex<HashMap<K, usize>>>);

impl<K> Clone for Counts<K> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

struct Slot<K: Hash + Eq + Clone>(Counts<K>, K);

impl<K: Hash + Eq + Clone> Counts<K> {
    fn take(&self, key: K, max: usize) -> Option<Slot<K>> {
        let mut map = self.0.lock().ok()?;
        let n = map.entry(key.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot(self.clone(), key))
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
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

/// A listener's limits: connections not signed in per address, signed-in
/// connections per (address, account).
#[derive(Clone, Default)]
struct Limits {
    unauthenticated: Counts<IpAddr>,
    accounts: Counts<(IpAddr, String)>,
}

/// The place a connection holds under its listener's limits: one of its
/// address's few places before sign-in, then one of its (address, account).
pub struct Admission {
    limits: Limits,
    ip: IpAddr,
    max_per_account: usize,
    pre_auth: Option<Slot<IpAddr>>,
    account: Option<Slot<(IpAddr, String)>>,
}

impl Admission {
    /// Gives back the place before sign-in and takes one for `account` from
    /// this address; `false` when that account has all its places here.
    pub fn signed_in(&mut self, account: &str) -> bool {
        self.pre_auth = None;
        self.account = self
            .limits
            .accounts
            .take((self.ip, account.to_string()), self.max_per_account);
        self.account.is_some()
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
    let limits = Limits::default();
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
        // The sign-in deadline counts from here, whatever the client sends.
        let deadline = tokio::time::Instant::now() + settings.login_timeout;
        let Some(slot) = limits
            .unauthenticated
            .take(peer.ip(), settings.max_unauthenticated_per_address)
        else {
            tracing::warn!(peer = %peer.ip(), "imap: too many connections signing in from one address");
            drop(tcp);
            continue;
        };
        let admission = Admission {
            limits: limits.clone(),
            ip: peer.ip(),
            max_per_account: settings.max_per_address,
            pre_auth: Some(slot),
            account: None,
        };
        let acceptor = acceptor.clone();
        let services = services.clone();
        let settings = settings.clone();
        tokio::spawn(async move {
            let tcp = match mode {
                TlsMode::Implicit => Some(tcp),
                TlsMode::StartTls => before_starttls(tcp, deadline).await,
            };
            if let Some(tcp) = tcp {
                tls_connection(tcp, admission, deadline, acceptor, services, settings).await;
            }
        });
    }
}

/// The TLS handshake, then the connection loop over the TLS stream.
async fn tls_connection(
    tcp: TcpStream,
    admission: Admission,
    deadline: tokio::time::Instant,
    acceptor: TlsAcceptor,
    services: Services,
    settings: ImapSettings,
) {
    let mut tls = match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
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
    serve_admitted(tls, admission, deadline, services, &settings).await;
}
