//! Finding the session behind a request: the `__Host-` cookie for browsers, or a
//! bearer token for hospital systems calling the API.
//!
//! The cookie is `__Host-renkei-session`: Secure, HttpOnly, SameSite=Strict.
//! The peer address (`x-renkei-peer`) goes into the `CurrentSession` for the
//! audit trail.

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use mailbox::SessionToken;

pub const SESSION_COOKIE: &str = "__Host-renkei-session";
pub const LANG_COOKIE: &str = "renkei-lang";
/// Set by `serve_https` on every request to the connection's peer address
/// (overwriting whatever the client sent), so handlers that only see headers
/// can still say where a request came from.
pub const PEER_HEADER: &str = "x-renkei-peer";

/// The peer address `serve_https` put on the request.
pub fn peer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(PEER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The session as of this request: its audit entries name this request's
/// address, not the one it signed in from.
pub fn at_request(mut s: mailbox::CurrentSession, headers: &HeaderMap) -> mailbox::CurrentSession {
    if let Some(addr) = peer(headers) {
        s.record.remote_addr = Some(addr);
    }
    s
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn token(headers: &HeaderMap) -> Option<SessionToken> {
    if let Some(bearer) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(SessionToken::from_cookie(bearer.trim()));
    }
    cookie(headers, SESSION_COOKIE)
        .filter(|v| !v.is_empty())
        .map(SessionToken::from_cookie)
}

/// Secure, HttpOnly, SameSite=Strict, host-only: the cookie never leaves this origin
/// and scripts cannot read it.
pub fn set_cookie(token: &SessionToken) -> String {
    format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict",
        token.expose()
    )
}

pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}
