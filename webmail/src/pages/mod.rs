//! Server-rendered pages; plain forms that work without JavaScript.
//!
//! One module per area, each with its own `routes()` and its own texts:
//! `account` (sign-in, password, second factor, home), `mail` (inbox, sent,
//! archive, search), `compose`, `thread`, `liaison`, `clerk`, `booking`,
//! `settings`, `operator`, `public` (the facility list, no sign-in),
//! `viewer` (the DICOM viewer of an item), `files`.
//! What every page shares: the frame around the content ([`Chrome`]) and
//! rendering here; who is asking ([`ctx`]: `PageSession`, `AnyPage`, and the
//! console's `OperatorPage`); labels ([`labels`]); a multipart form's text
//! and staged files ([`form_upload`]).
//!
//! `static/session.js` warns shortly before the idle timeout (two minutes, or a
//! fifth of a short timeout); "stay signed in" touches the session, and at the
//! deadline the page reloads so the server shows the expired page. The e-mail
//! confirmation page only asks: its button confirms, because mail scanners open
//! links.

pub mod account;
pub mod booking;
pub mod clerk;
pub mod compose;
pub mod ctx;
pub mod files;
pub mod form_upload;
pub mod labels;
pub mod liaison;
pub mod mail;
pub(crate) mod once;
pub mod operator;
pub mod public;
pub mod reauth;
pub mod recoveries;
pub mod security;
pub mod settings;
pub mod thread;
pub mod viewer;
pub mod zip_links;

use askama::Template;
use axum::Router;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use mailbox::{CurrentSession, Error, Localized, Role};

use crate::AppState;
use crate::http::csrf;
use crate::http::session::{self, LANG_COOKIE};
use crate::i18n::Lang;
pub use ctx::{AnyPage, PageCtx, PageSession};

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(account::routes())
        .merge(mail::routes())
        .merge(compose::routes())
        .merge(thread::routes())
        .merge(viewer::routes())
        .merge(files::routes())
        .merge(liaison::routes())
        .merge(recoveries::routes())
        .merge(clerk::routes())
        .merge(booking::routes())
        .merge(settings::routes())
        .merge(reauth::routes())
        .merge(security::routes())
        .merge(operator::routes())
        .merge(public::routes())
}

/// A link in the top navigation.
pub struct NavLink {
    pub href: &'static str,
    pub id: &'static str,
    pub label: &'static str,
}

/// The frame around every page: sign-out, language switch, navigation for the
/// person's role, the CSRF token for forms, the idle-timeout warning.
pub struct Chrome {
    pub signed_in: bool,
    /// Goes into every form as `<input type="hidden" name="csrf">` (first field
    /// of a multipart form) or into the `x-csrf-token` header of a script's request.
    pub csrf: String,
    pub nav: Vec<NavLink>,
    /// Seconds of inactivity before the server ends the session; the page warns
    /// shortly before.
    pub idle_secs: i64,
}

impl Chrome {
    pub fn anonymous() -> Self {
        Self {
            signed_in: false,
            csrf: String::new(),
            nav: Vec::new(),
            idle_secs: 0,
        }
    }

    pub fn for_session(lang: Lang, s: &CurrentSession, headers: &HeaderMap) -> Self {
        let csrf = session::token(headers)
            .map(|t| csrf::token_for(&t))
            .unwrap_or_default();
        let now = mailbox::clock::now_secs();
        Self {
            signed_in: true,
            csrf,
            nav: if s.account.must_change_password || s.enrolment_required {
                Vec::new()
            } else {
                nav_for(lang, s.account.role)
            },
            idle_secs: (s.idle_deadline - now).max(0),
        }
    }
}

fn link(
    lang: Lang,
    href: &'static str,
    id: &'static str,
    ja: &'static str,
    en: &'static str,
) -> NavLink {
    NavLink {
        href,
        id,
        label: match lang {
            Lang::Ja => ja,
            Lang::En => en,
        },
    }
}

fn nav_for(lang: Lang, role: Role) -> Vec<NavLink> {
    let l = |href, id, ja, en| link(lang, href, id, ja, en);
    let mut nav = Vec::new();
    match role {
        Role::Doctor => {
            nav.push(l("/mail/inbox", "nav-inbox", "受信箱", "Inbox"));
            nav.push(l("/mail/sent", "nav-sent", "送信済み", "Sent"));
            nav.push(l("/mail/archive", "nav-archive", "アーカイブ", "Archive"));
            nav.push(l("/compose", "nav-compose", "新規作成", "Compose"));
            nav.push(l("/booking", "nav-booking", "機器予約", "Bookings"));
        }
        Role::Liaison => {
            nav.push(l(
                "/liaison",
                "nav-liaison",
                "連携室受信箱",
                "Liaison inbox",
            ));
            nav.push(l("/mail/sent", "nav-sent", "送信済み", "Sent"));
            nav.push(l("/compose", "nav-compose", "新規作成", "Compose"));
            nav.push(l("/clerk", "nav-clerk", "施設の進捗", "Facility progress"));
            nav.push(l("/booking", "nav-booking", "機器予約", "Bookings"));
            nav.push(l(
                "/recoveries",
                "nav-recoveries",
                "鍵の復元",
                "Key restoration",
            ));
        }
        Role::Clerk => {
            nav.push(l("/clerk", "nav-clerk", "施設の進捗", "Facility progress"));
            nav.push(l("/booking", "nav-booking", "機器予約", "Bookings"));
        }
        Role::Operator => {
            nav.push(l("/operator", "nav-operator", "運用管理", "Operations"));
        }
    }
    nav.push(l("/settings", "nav-settings", "個人設定", "Settings"));
    nav
}

pub fn render(
    status: StatusCode,
    lang: Lang,
    query: Option<&str>,
    tpl: &impl Template,
) -> Response {
    match tpl.render() {
        Ok(body) => {
            let mut response = (status, Html(body)).into_response();
            // Remember an explicit language choice.
            if query.is_some_and(|q| q.contains("lang="))
                && let Ok(v) = format!(
                    "{LANG_COOKIE}={}; Path=/; Secure; SameSite=Lax; Max-Age=31536000",
                    lang.code()
                )
                .parse()
            {
                response.headers_mut().append(SET_COOKIE, v);
            }
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub fn message(lang: Lang, e: &Error) -> String {
    if e.kind() == mailbox::ErrorKind::Internal {
        tracing::error!(error = %e, "internal error on a page");
    }
    match lang {
        Lang::Ja => e.message_ja(),
        Lang::En => e.message_en(),
    }
}
