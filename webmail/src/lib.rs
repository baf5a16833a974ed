//! Renkei's web face: server-rendered pages and the JSON API, served over HTTPS.

mod api;
pub mod csrf;
mod envelopes;
pub mod error;
mod factors;
mod i18n;
mod imaging;
mod notify;
mod openapi;
mod pages;
mod ranges;
mod records;
pub mod session;
mod study_zip;
mod threads;
mod zipstream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mailbox::Directory;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub directory: Arc<Directory>,
    pub postroom: Arc<mailbox::postroom::Postroom>,
    pub threads: Arc<mailbox::threads::Threads>,
    pub notices: Arc<mailbox::notify::Notices>,
    pub records: Arc<mailbox::records::Records>,
    pub upload: UploadPolicy,
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

const CSS: &str = include_str!("../static/renkei.css");
const WEBAUTHN_JS: &str = include_str!("../static/webauthn.js");
const SESSION_JS: &str = include_str!("../static/session.js");

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/session", post(api::sign_in).delete(api::sign_out))
        .route("/session/second-factor", post(api::second_factor))
        .route("/session/reauth", post(api::reauth))
        .route("/session/webauthn", post(factors::sign_in_challenge))
        .route("/session/reauth/webauthn", post(factors::reauth_challenge))
        .route("/me/webauthn", get(factors::security_keys))
        .route("/me/webauthn/register", post(factors::begin_webauthn))
        .route(
            "/me/webauthn/register/finish",
            post(factors::finish_webauthn),
        )
        .route(
            "/me/webauthn/{id}",
            put(factors::rename_webauthn).delete(factors::remove_webauthn),
        )
        .route("/me/factors", get(factors::factors))
        .route(
            "/me/totp",
            post(factors::begin_totp).delete(factors::remove_totp),
        )
        .route("/me/totp/confirm", post(factors::confirm_totp))
        .route(
            "/me/recovery-codes",
            post(factors::regenerate_recovery_codes),
        )
        .route(
            "/me/app-passwords",
            get(factors::app_passwords).post(factors::create_app_password),
        )
        .route(
            "/me/app-passwords/{id}",
            axum::routing::delete(factors::revoke_app_password),
        )
        .route("/admin/factors", get(factors::admin_factors))
        .route(
            "/admin/accounts/{id}/second-factor/reset",
            post(factors::admin_reset),
        )
        .route("/password", post(api::change_password))
        .route("/me", get(api::me))
        .route(
            "/envelopes",
            post(envelopes::send)
                .get(envelopes::list)
                // Attachments stream into sealed blobs; no whole-body limit applies.
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/envelopes/{id}", get(envelopes::open))
        .route(
            "/envelopes/{id}/attachments/{index}",
            get(envelopes::attachment),
        )
        .route("/envelopes/{id}/studies", get(imaging::studies))
        .route("/envelopes/{id}/zip", get(study_zip::item))
        .route("/envelopes/{id}/studies/{study}/zip", get(study_zip::study))
        .route(
            "/envelopes/{id}/studies/{study}/series/{series}/zip",
            get(study_zip::series),
        )
        .route(
            "/envelopes/{id}/attachments/{index}/render",
            get(imaging::render),
        )
        .route("/envelopes/{id}/forward", post(envelopes::forward))
        .route("/envelopes/{id}/pdf", get(records::item_pdf))
        .route("/envelopes/{id}/pdf.asc", get(records::item_pdf_signature))
        .route("/envelopes/{id}/flags", post(envelopes::flags))
        .route("/envelopes/{id}/delivery", get(envelopes::delivery))
        .route("/mailbox/{folder}", get(envelopes::mailbox))
        .route(
            "/threads",
            post(threads::open)
                .get(threads::list)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/threads/{id}", get(threads::view))
        .route(
            "/threads/{id}/steps",
            post(threads::step).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/threads/{id}/claim", post(threads::claim))
        .route("/threads/{id}/release", post(threads::release))
        .route("/threads/{id}/assign", post(threads::assign))
        .route("/threads/{id}/unassign", post(threads::unassign))
        .route("/threads/{id}/forward", post(threads::forward))
        .route("/facility/threads", get(threads::facility_overview))
        .route("/stats/readings", get(threads::reading_stats))
        .route("/stats/usage", get(threads::usage))
        .route("/stats/readings.csv", get(records::readings_csv))
        .route("/stats/usage.csv", get(records::usage_csv))
        .route("/audit", get(records::audit))
        .route(
            "/admin/deletion-requests/search",
            post(records::deletion_search),
        )
        .route("/admin/deletion-requests", post(records::deletion_apply))
        .route("/facilities/{code}/resources", get(threads::resources))
        .route("/resources", post(threads::add_resource))
        .route("/pathways", get(threads::pathways))
        .route("/me/email", put(notify::change_email))
        .route("/email/confirm", post(notify::confirm_email))
        .route(
            "/me/notifications",
            get(notify::settings).put(notify::set_mode),
        )
        .route("/me/notifications/failed", get(notify::failed_mine))
        .route("/admin/notifications/failed", get(notify::failed_all))
        .route("/openapi.json", get(openapi::document));
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
        .nest("/api/v1", api)
        .layer(middleware::from_fn(csrf::require_token))
        .layer(middleware::from_fn(same_origin_writes))
        .layer(SetResponseHeaderLayer::overriding(
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
            HeaderValue::from_static("no-referrer"),
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

/// CSRF defence in depth beside SameSite=Strict: a state-changing request that a
/// browser marks as coming from another origin is refused.
async fn same_origin_writes(request: Request, next: Next) -> Response {
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if writes {
        let headers = request.headers();
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site" || v == "same-site");
        // HTTP/2 carries the host in the `:authority` pseudo-header (the URI),
        // not in `Host`; browsers speak HTTP/2 here.
        let authority = request.uri().authority().map(|a| a.as_str().to_string());
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or(authority);
        let origin_mismatch = match (
            headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
            host.as_deref(),
        ) {
            (Some(origin), Some(host)) => {
                origin != "null" && origin.split_once("://").map(|(_, h)| h) != Some(host)
            }
            (Some("null"), None) => true,
            _ => false,
        };
        if cross_site || origin_mismatch {
            tracing::warn!("refused a cross-origin {} request", request.method());
            return (StatusCode::FORBIDDEN, "cross-origin request refused").into_response();
        }
    }
    next.run(request).await
}

/// Serves the router over TLS on an already bound listener until `shutdown` fires.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let acceptor = TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        // Without this, the last part of a response waits for the client's
        // delayed ACK (40 ms on Linux) behind Nagle's algorithm: a rendered
        // slice took 50 ms to arrive instead of 10.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                acceptor.accept(tcp),
            )
            .await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service =
                hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(RemoteAddr(peer));
                    // The audit trail records where each request came from; a
                    // client-sent header of this name is replaced, never trusted.
                    if let Ok(v) = HeaderValue::from_str(&peer.ip().to_string()) {
                        request.headers_mut().insert(session::PEER_HEADER, v);
                    }
                    app.clone().oneshot(request.map(Body::new))
                });
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
