//! Account pages: sign-in (both steps), sign-out, home, password, e-mail
//! confirmation (second-factor enrolment is `security.rs`).

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mailbox::auth::{PendingToken, SecondFactor, SignInStep};
use mailbox::{CurrentSession, Error, Password};
use serde::Deserialize;

use super::{AnyPage, Chrome, PageSession, message, render};
use crate::http::error::status_of;
use crate::http::session;
use crate::i18n::{Lang, Texts};
use crate::{AppState, RemoteAddr};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login_submit))
        .route("/login/second-factor", post(second_factor_submit))
        .route("/logout", post(logout))
        .route("/password", get(password_form).post(password_submit))
        .route(
            "/email/confirm",
            get(email_confirm_form).post(email_confirm_submit),
        )
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    notice: Option<&'static str>,
    error: Option<String>,
    id: String,
    /// Whom to call: `[http] help_desk`, else the default text.
    help_desk: HelpDesk,
}

/// The sign-in page's help-desk lines.
pub struct HelpDesk {
    pub title: &'static str,
    pub text: String,
    pub facilities: &'static str,
}

fn help_desk(state: &AppState, lang: Lang) -> HelpDesk {
    let (title, default, facilities) = match lang {
        Lang::Ja => (
            "ログインできないとき",
            "パスワードを忘れた・ロックされた・認証アプリを使えなくなった場合は、所属施設の事務担当者を通じて運営者のヘルプデスクにご連絡ください。",
            "参加医療機関の一覧",
        ),
        Lang::En => (
            "Cannot sign in?",
            "If you forgot your password, your account is locked or you lost your authenticator, contact the operator's help desk through your facility's clerk.",
            "Facilities in the network",
        ),
    };
    let text = match (&state.site.help_desk, lang) {
        (Some(contact), Lang::Ja) => format!("お問い合わせ先：{contact}"),
        (Some(contact), Lang::En) => format!("Help desk: {contact}"),
        (None, _) => default.to_string(),
    };
    HelpDesk {
        title,
        text,
        facilities,
    }
}

pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let lang = Lang::from_request(&headers, query.as_deref());
    let t = lang.texts();
    let q = query.as_deref().unwrap_or("");
    let notice = if q.contains("expired=1") {
        Some(t.expired_notice)
    } else if q.contains("signed_out=1") {
        Some(t.signed_out_notice)
    } else {
        None
    };
    let page = LoginPage {
        lang,
        t,
        chrome: Chrome::anonymous(),
        notice,
        error: None,
        id: String::new(),
        help_desk: help_desk(&state, lang),
    };
    render(StatusCode::OK, lang, query.as_deref(), &page)
}

#[derive(Deserialize)]
pub struct LoginForm {
    id: String,
    password: String,
}

pub async fn login_submit(
    State(state): State<AppState>,
    remote: Option<axum::Extension<RemoteAddr>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::from_request(&headers, None);
    let password = Password::new(form.password);
    let remote = remote.map(|r| r.0.0.ip().to_string());
    let peer = mailbox::auth::Peer::from(remote).with_device(session::device(&headers));
    match state
        .directory
        .sign_in_password(&form.id, &password, peer)
        .await
    {
        Ok(SignInStep::Done(token, s)) => signed_in_page(&state, &token, &s, &headers).await,
        // The password was right: the code comes next, no session yet.
        Ok(SignInStep::SecondFactor { pending, methods }) => second_factor_page(
            lang,
            StatusCode::OK,
            &pending,
            methods.contains(&"webauthn"),
            None,
        ),
        Err(e) => {
            let page = LoginPage {
                lang,
                t: lang.texts(),
                chrome: Chrome::anonymous(),
                notice: None,
                error: Some(message(lang, &e)),
                id: form.id,
                help_desk: help_desk(&state, lang),
            };
            render(status_of(e.kind()), lang, None, &page)
        }
    }
}

/// The session cookie, the device cookie, and on to the landing page.
async fn signed_in_page(
    state: &AppState,
    token: &mailbox::SessionToken,
    s: &mailbox::CurrentSession,
    headers: &HeaderMap,
) -> Response {
    let mut response = (
        [(SET_COOKIE, session::set_cookie(token))],
        Redirect::to(landing(s)),
    )
        .into_response();
    if let Some(device) = session::device_cookie(&state.directory, &s.account.id, headers).await
        && let Ok(v) = device.parse()
    {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session::token(&headers)
        && let Err(e) = state.directory.sign_out(&token).await
    {
        tracing::error!(error = %e, "sign-out failed");
    }
    (
        [(SET_COOKIE, session::clear_cookie())],
        Redirect::to("/login?signed_out=1"),
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    name: String,
    account_id: String,
    role: &'static str,
    facility: Option<String>,
}

pub async fn home(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    RawQuery(query): RawQuery,
) -> Response {
    let s = &ctx.session;
    let lang = ctx.lang;
    let facility = match &s.account.facility {
        Some(code) => match state.directory.facility(code).await {
            Ok(f) => Some(format!("{} ({})", f.name, f.code)),
            Err(_) => Some(code.to_string()),
        },
        None => None,
    };
    let page = HomePage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        name: s.account.name.clone(),
        account_id: s.account.id.display_grouped(),
        role: match lang {
            Lang::Ja => s.account.role.label_ja(),
            Lang::En => s.account.role.as_str(),
        },
        facility,
    };
    render(StatusCode::OK, lang, query.as_deref(), &page)
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    forced: bool,
    error: Option<String>,
    done: Option<&'static str>,
}

pub async fn password_form(
    headers: HeaderMap,
    AnyPage(ctx): AnyPage,
    RawQuery(query): RawQuery,
) -> Response {
    let s = &ctx.session;
    let lang = Lang::from_request(&headers, query.as_deref());
    let page = PasswordPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        forced: s.account.must_change_password,
        error: None,
        done: None,
    };
    render(StatusCode::OK, lang, query.as_deref(), &page)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

pub async fn password_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    AnyPage(ctx): AnyPage,
    Form(form): Form<PasswordForm>,
) -> Response {
    let s = &ctx.session;
    let lang = Lang::from_request(&headers, None);
    let t = lang.texts();
    let mut page = PasswordPage {
        lang,
        t,
        chrome: ctx.chrome,
        forced: s.account.must_change_password,
        error: None,
        done: None,
    };
    if form.new_password != form.confirm_password {
        page.error = Some(t.mismatch.to_string());
        return render(StatusCode::BAD_REQUEST, lang, None, &page);
    }
    let current = Password::new(form.current_password);
    let new = Password::new(form.new_password);
    match state.directory.change_password(s, &current, &new).await {
        Ok(()) => {
            page.forced = false;
            page.done = Some(t.password_changed);
            render(StatusCode::OK, lang, None, &page)
        }
        Err(e) => {
            page.error = Some(message(lang, &e));
            render(status_of(e.kind()), lang, None, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "email_confirm.html")]
struct EmailConfirmPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    token: Option<String>,
    done: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct EmailConfirmForm {
    token: String,
}

/// `GET /email/confirm?token=…` — the link in the confirmation mail. Opening it
/// changes nothing (mail scanners fetch links); the button below does.
pub async fn email_confirm_form(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let lang = Lang::from_request(&headers, query.as_deref());
    let token = query.as_deref().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .filter(|t| !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string)
    });
    let error = token.is_none().then(|| {
        message(
            lang,
            &Error::invalid(
                "token",
                "the confirmation link is not valid or has expired",
                "確認リンクが無効か、有効期限が切れています。設定画面からもう一度登録してください。",
            ),
        )
    });
    let page = EmailConfirmPage {
        lang,
        t: lang.texts(),
        chrome: Chrome::anonymous(),
        token,
        done: false,
        error,
    };
    render(StatusCode::OK, lang, query.as_deref(), &page)
}

/// `POST /email/confirm`
pub async fn email_confirm_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<EmailConfirmForm>,
) -> Response {
    let lang = Lang::from_request(&headers, None);
    let mut page = EmailConfirmPage {
        lang,
        t: lang.texts(),
        chrome: Chrome::anonymous(),
        token: None,
        done: false,
        error: None,
    };
    match state.notices.confirm_email(&form.token).await {
        Ok(_) => {
            page.done = true;
            render(StatusCode::OK, lang, None, &page)
        }
        Err(e) => {
            page.error = Some(message(lang, &e));
            render(status_of(e.kind()), lang, None, &page)
        }
    }
}

// --- two-factor sign-in ---------------------------------------------------------

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    error: Option<String>,
    pending: String,
    webauthn: bool,
}

fn second_factor_page(
    lang: Lang,
    status: StatusCode,
    pending: &PendingToken,
    webauthn: bool,
    error: Option<String>,
) -> Response {
    let page = SecondFactorPage {
        lang,
        t: lang.texts(),
        chrome: Chrome::anonymous(),
        error,
        pending: pending.expose().to_string(),
        webauthn,
    };
    render(status, lang, None, &page)
}

/// Where a fresh session goes first.
fn landing(s: &CurrentSession) -> &'static str {
    if s.account.must_change_password {
        "/password"
    } else if s.enrolment_required {
        "/security"
    } else {
        "/"
    }
}

#[derive(Deserialize)]
pub struct SecondFactorForm {
    pending: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
}

pub async fn second_factor_submit(
    State(state): State<AppState>,
    remote: Option<axum::Extension<RemoteAddr>>,
    headers: HeaderMap,
    Form(form): Form<SecondFactorForm>,
) -> Response {
    let lang = Lang::from_request(&headers, None);
    let remote = remote.map(|r| r.0.0.ip().to_string());
    let pending = PendingToken::from_client(&form.pending);
    let factor = if form.recovery_code.trim().is_empty() {
        SecondFactor::Totp(form.code)
    } else {
        SecondFactor::RecoveryCode(form.recovery_code)
    };
    match state
        .directory
        .complete_sign_in(&pending, &factor, remote)
        .await
    {
        Ok((token, s)) => signed_in_page(&state, &token, &s, &headers).await,
        // A wrong code may be tried again on the same page.
        Err(e @ Error::BadSecondFactor) => second_factor_page(
            lang,
            status_of(e.kind()),
            &pending,
            true,
            Some(message(lang, &e)),
        ),
        Err(e) => {
            let page = LoginPage {
                lang,
                t: lang.texts(),
                chrome: Chrome::anonymous(),
                notice: None,
                error: Some(message(lang, &e)),
                id: String::new(),
                help_desk: help_desk(&state, lang),
            };
            render(status_of(e.kind()), lang, None, &page)
        }
    }
}
