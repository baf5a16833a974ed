//! Finding the session behind a request: the `__Host-` cookie for browsers, or a
//! bearer token for hospital systems calling the API.

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use mailbox::SessionToken;

pub const SESSION_COOKIE: &str = "__Host-renkei-session";
pub const LANG_COOKIE: &str = "renkei-lang";

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
