//! Renkei's web face: server-rendered pages and the JSON API, served over HTTPS.
//!
//! The router sets the security headers on every answer (CSP `'self'` unless
//! the handler set a stricter one, as downloads do; HSTS, nosniff, a
//! same-origin referrer, no-store, a Permissions-Policy turning off every
//! powerful feature but security keys, and Cross-Origin-Opener-Policy
//! `same-origin`) and checks the origin of every state-changing request.

mod api;
pub mod http;
mod i18n;
mod pages;

pub use http::serve_https;
pub use http::{csrf, error, session};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::routing::get;
use mailbox::Directory;
use tower_http::set_header::SetResponseHeaderLayer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub directory: Arc<Directory>,
    pub postroom: Arc<mailbox::postroom::Postroom>,
    pub threads: Arc<mailbox::threads::Threads>,
    pub notices: Arc<mailbox::notify::Notices>,
    pub records: Arc<mailbox::records::Records>,
    /// The one audit trail the services write to; the audit pages read it.
    pub audit: mailbox::records::audit::Audit,
    /// The trusted-time check; the console shows its state.
    pub time: Arc<mailbox::timesync::TimeSync>,
    pub upload: UploadPolicy,
    /// Whom to call and where mail software connects, as the pages say it.
    pub site: SiteInfo,
}

/// What the pages tell people about this installation: the help desk on the
/// sign-in page (`[http] help_desk`), and the IMAP server on the settings
/// page (the public host name and the IMAP listeners).
#[derive(Debug, Clone, Default)]
pub struct SiteInfo {
    /// The help desk's contact as configured; `None` shows the default text.
    pub help_desk: Option<String>,
    /// The host name mail software connects to.
    pub imap_host: String,
    /// Port of IMAP over TLS (implicit), if served.
    pub imap_tls_port: Option<u16>,
    /// Port of IMAP with STARTTLS, if served.
    pub imap_starttls_port: Option<u16>,
}

/// How large an item may grow before its sender is warned: a soft warning on
/// the compose page and in the API's answer, never a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPolicy {
    pub warn_above_bytes: u64,
}

impl UploadPolicy {
    pub const DEFAULT_WARN_ABOVE_MIB: u64 = 2048;

    /// Whether an item whose attachments total `total_bytes` earns the warning.
    pub fn is_large(&self, total_bytes: u64) -> bool {
        total_bytes > self.warn_above_bytes
    }
}

impl Default for UploadPolicy {
    fn default() -> Self {
        Self {
            warn_above_bytes: Self::DEFAULT_WARN_ABOVE_MIB * 1024 * 1024,
        }
    }
}

/// The peer address of the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub SocketAddr);

/// Every powerful browser feature off, except security keys for this origin.
pub const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), display-capture=(), fullscreen=(self), publickey-credentials-get=(self), publickey-credentials-create=(self)";

const CSS: &str = include_str!("../static/renkei.css");
const WEBAUTHN_JS: &str = include_str!("../static/webauthn.js");
const SESSION_JS: &str = include_str!("../static/session.js");

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(pages::routes())
        .route("/healthz", get(healthz))
        .route(
            "/static/renkei.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS) }),
        )
        .route(
            "/static/session.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SESSION_JS,
                )
            }),
        )
        .route(
            "/static/webauthn.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    WEBAUTHN_JS,
                )
            }),
        )
        .nest("/api/v1", api::v1::routes())
        .layer(middleware::from_fn(pages::reauth::redirect_to_reauth))
        .layer(middleware::from_fn(http::csrf::require_token))
        .layer(middleware::from_fn(http::same_origin_writes))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(PERMISSIONS_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}
