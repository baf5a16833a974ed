//! The HTTPS accept loop and the same-origin guard on writes.
//!
//! tokio-rustls and hyper-util on an already bound listener, with a shutdown
//! future. Accepted connections get `TCP_NODELAY`: without it the last segment
//! of a response waited for the client's delayed ACK (40 ms on Linux), and a
//! rendered slice took 50 ms to arrive instead of 10. Every request gets
//! `x-renkei-peer`, the remote address, replacing any value a client sent; the
//! session takes it into the audit trail. The same-origin check takes the host
//! from the HTTP/2 `:authority` when there is no `Host` header (Chromium speaks
//! h2 here). `Origin: null` (a sandboxed frame, a `data:` page, a redirect from
//! elsewhere) is refused like another site unless the request carries a bearer
//! token and no cookie, as a hospital system's call does; the pages' referrer
//! policy is `same-origin` so that a browser names this origin on its own forms.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::RemoteAddr;
use crate::http::session;

/// CSRF defence in depth beside SameSite=Strict: a state-changing request that a
/// browser marks as coming from another origin is refused.
pub async fn same_origin_writes(request: Request, next: Next) -> Response {
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
        let bearer_only =
            headers.contains_key(header::AUTHORIZATION) && !headers.contains_key(header::COOKIE);
        let origin_mismatch = match (
            headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
            host.as_deref(),
        ) {
            (Some("null"), _) => !bearer_only,
            (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host),
            _ => false,
        };
        if cross_site || origin_mismatch {
            tracing::warn!("refused a cross-origin {} request", request.method());
            if request.uri().path().starts_with("/api/") {
                return crate::http::error::RequestError::CrossOrigin.into_response();
            }
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
