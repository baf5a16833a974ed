//! `/reauth`: the page that asks a signed-in person to prove themselves again
//! (password, or the code of their authenticator app) before a whole-item or
//! whole-study ZIP, a PDF export or a forward, and then returns to what was
//! asked (`next`, a path of this site only). A page navigation the services
//! refused with `reauthentication_required` is sent here by
//! [`redirect_to_reauth`]; the API's callers get the JSON code instead.

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use mailbox::auth::{Proof, SecondFactor};
use serde::Deserialize;

use super::ctx::PageSession;
use crate::AppState;
use crate::http::error::ReauthNeeded;
use crate::i18n::Lang;

pub fn routes() -> Router<AppState> {
    Router::new().route("/reauth", get(form).post(submit))
}

#[derive(Deserialize)]
pub struct NextPath {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct Submitted {
    #[serde(default)]
    next: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// Only a path of this site (`/…`, never `//host` or a scheme) is returned to.
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(char::is_control);
    if local { next } else { "/" }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(s: &PageSession, next: &str, error: Option<&str>) -> Response {
    let ctx = &s.0;
    let csrf = ctx.chrome.csrf.clone();
    let (title, lead, password, code, go) = match ctx.lang {
        Lang::Ja => (
            "本人確認",
            "この操作（一括ダウンロード、PDF出力、転送、削除依頼）の前に、もう一度本人確認をしてください。パスワード、または認証アプリの確認コードを入力してください。",
            "パスワード",
            "確認コード（6桁）",
            "確認して続ける",
        ),
        Lang::En => (
            "Confirm it is you",
            "Before this action (a whole download, a PDF export, a forward, a deletion request), confirm it is you: your password, or the code of your authenticator app.",
            "Password",
            "Code (6 digits)",
            "Confirm and go on",
        ),
    };
    let code_field = if ctx.session.account.has_second_factor {
        format!(
            "<p><label>{code}<br><input name=\"code\" id=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\"></label></p>"
        )
    } else {
        String::new()
    };
    let error = error
        .map(|e| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{title}</title><link rel=\"stylesheet\" href=\"/static/renkei.css\"></head><body><main><h1>{title}</h1>{error}<p>{lead}</p><form method=\"post\" action=\"/reauth\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"next\" value=\"{next}\"><p><label>{password}<br><input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\"></label></p>{code_field}<p><button type=\"submit\" id=\"confirm\">{go}</button></p></form></main></body></html>",
        lang = ctx.lang.code(),
        next = escape(next),
    );
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    (status, Html(body)).into_response()
}

async fn form(s: PageSession, Query(q): Query<NextPath>) -> Response {
    let next = safe_next(&q.next).to_string();
    page(&s, &next, None)
}

async fn submit(
    State(state): State<AppState>,
    s: PageSession,
    Form(f): Form<Submitted>,
) -> Response {
    let next = safe_next(&f.next).to_string();
    let proof = if !f.password.is_empty() {
        Proof::Password(mailbox::Password::new(f.password))
    } else {
        Proof::Factor(SecondFactor::Totp(f.code))
    };
    match state.directory.prove(&s.0.session, &proof).await {
        Ok(()) => Redirect::to(&next).into_response(),
        Err(e) => {
            let text = match s.0.lang {
                Lang::Ja => mailbox::Localized::message_ja(&e),
                Lang::En => mailbox::Localized::message_en(&e),
            };
            page(&s, &next, Some(&text))
        }
    }
}

/// Middleware: a page navigation (a ZIP or PDF link, a form) that a service
/// refused for want of a recent proof goes to `/reauth`, which returns to the
/// link (or, after a form, to the page the form was on).
pub async fn redirect_to_reauth(request: Request, next: Next) -> Response {
    let navigation = request
        .headers()
        .get("sec-fetch-mode")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "navigate")
        || request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
    let back = if request.method() == Method::GET {
        request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
    } else {
        request
            .headers()
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.split_once("://").map(|(_, rest)| rest.to_string()))
            .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()))
    };
    let response = next.run(request).await;
    if !navigation || response.extensions().get::<ReauthNeeded>().is_none() {
        return response;
    }
    to_reauth(&back.unwrap_or_else(|| "/".into()))
}

/// A 303 to `/reauth`, which returns to `back` (a local path) once proved.
pub(crate) fn to_reauth(back: &str) -> Response {
    let target = format!(
        "/reauth?next={}",
        percent_encoding::utf8_percent_encode(safe_next(back), percent_encoding::NON_ALPHANUMERIC)
    );
    let mut redirect = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&target) {
        redirect.headers_mut().insert(header::LOCATION, v);
    }
    redirect
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(
            safe_next("/api/v1/envelopes/ab/zip"),
            "/api/v1/envelopes/ab/zip"
        );
        assert_eq!(safe_next("//evil.example/x"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next(""), "/");
    }
}
