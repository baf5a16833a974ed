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
/// Set at every successful sign-in: this browser signed in to the account
/// before, so a right password from it is not refused by the per-address cap.
pub const DEVICE_COOKIE: &str = "__Host-renkei-device";
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

/// The device cookie the browser brought, if any.
pub fn device(headers: &HeaderMap) -> Option<String> {
    cookie(headers, DEVICE_COOKIE)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The device cookie: opaque (its SHA-256 is stored per account), kept as long
/// as the store remembers it.
pub fn set_device_cookie(token: &str) -> String {
    let max_age = mailbox::auth::DEVICE_VALID_FOR.as_secs();
    format!("{DEVICE_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// After a successful sign-in: remembers this browser for the account and
/// answers the device cookie to set (none if the store could not, which only
/// costs the exemption next time).
pub async fn device_cookie(
    auth: &mailbox::auth::Auth,
    account: &mailbox::AccountId,
    headers: &HeaderMap,
) -> Option<String> {
    match auth
        .remember_device(account, device(headers).as_deref())
        .await
    {
        Ok(token) => Some(set_device_cookie(&token)),
        Err(e) => {
            tracing::warn!(error = %e, "could not remember the device");
            None
        }
    }
}
