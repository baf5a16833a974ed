//! Page: second factors (`/security`). It says which factors are set up (an
//! authenticator app, security keys, recovery codes left) and enrols an
//! authenticator app: the secret of an enrolment under way is kept (sealed,
//! in the store) and shown again on every visit until it is confirmed with a
//! first code or replaced with "new key", so a reload never invalidates what
//! the person has scanned. The secret is shown in groups of four.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mailbox::auth::{FactorsView, SecurityKeyView, TotpEnrolment};
use serde::Deserialize;

use super::{AnyPage, Chrome, message, render};
use crate::AppState;
use crate::http::error::status_of;
use crate::i18n::{Lang, Texts};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/security", get(security))
        .route("/security/totp", post(security_confirm))
        .route("/security/totp/new", post(new_secret))
}

/// The page's own words (the shared ones are in `i18n`).
pub struct SecurityTexts {
    pub set_up_title: &'static str,
    pub authenticator: &'static str,
    pub security_keys: &'static str,
    pub recovery_codes: &'static str,
    pub set_up: &'static str,
    pub not_set_up: &'static str,
    pub under_way: &'static str,
    /// `{n}` is the count.
    pub keys_count: &'static str,
    pub codes_left: &'static str,
    pub same_key_note: &'static str,
    pub new_key_button: &'static str,
}

static JA: SecurityTexts = SecurityTexts {
    set_up_title: "設定済みの認証方法",
    authenticator: "認証アプリ",
    security_keys: "セキュリティキー・パスキー",
    recovery_codes: "回復コード",
    set_up: "設定済み",
    not_set_up: "未設定",
    under_way: "登録手続き中（確認コードの入力待ち）",
    keys_count: "{n} 件",
    codes_left: "残り {n} 個",
    same_key_note: "このキーは確認コードを入力するまで変わりません。読み取りに失敗した場合などは、新しいキーを作り直せます。",
    new_key_button: "新しいキーを作り直す",
};

static EN: SecurityTexts = SecurityTexts {
    set_up_title: "What is set up",
    authenticator: "Authenticator app",
    security_keys: "Security keys and passkeys",
    recovery_codes: "Recovery codes",
    set_up: "set up",
    not_set_up: "not set up",
    under_way: "being set up (waiting for the first code)",
    keys_count: "{n}",
    codes_left: "{n} left",
    same_key_note: "This key stays the same until you enter a code. If scanning failed, you can make a new key.",
    new_key_button: "Make a new key",
};

fn texts(lang: Lang) -> &'static SecurityTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

/// One line of "what is set up".
pub struct FactorLine {
    pub id: &'static str,
    pub label: &'static str,
    pub state: String,
    pub on: bool,
}

fn factor_lines(st: &SecurityTexts, f: &FactorsView) -> Vec<FactorLine> {
    let count = |template: &str, n: i64| template.replace("{n}", &n.to_string());
    vec![
        FactorLine {
            id: "factor-totp",
            label: st.authenticator,
            state: match (f.totp, f.totp_pending) {
                (true, _) => st.set_up.to_string(),
                (false, true) => st.under_way.to_string(),
                (false, false) => st.not_set_up.to_string(),
            },
            on: f.totp,
        },
        FactorLine {
            id: "factor-keys",
            label: st.security_keys,
            state: if f.security_keys.is_empty() {
                st.not_set_up.to_string()
            } else {
                count(st.keys_count, f.security_keys.len() as i64)
            },
            on: !f.security_keys.is_empty(),
        },
        FactorLine {
            id: "factor-codes",
            label: st.recovery_codes,
            state: if f.recovery_codes_left > 0 {
                count(st.codes_left, f.recovery_codes_left)
            } else {
                st.not_set_up.to_string()
            },
            on: f.recovery_codes_left > 0,
        },
    ]
}

/// `ABCDEFGHIJKL` → `ABCD EFGH IJKL`, as people copy a key.
fn in_fours(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    lang: Lang,
    t: &'static Texts,
    st: &'static SecurityTexts,
    chrome: Chrome,
    required: bool,
    enrolled: bool,
    error: Option<String>,
    enrolment: Option<TotpEnrolment>,
    /// The enrolment's secret in groups of four.
    secret_grouped: String,
    recovery_codes: Option<Vec<String>>,
    keys: Vec<SecurityKeyView>,
    factors: Vec<FactorLine>,
}

impl SecurityPage {
    fn new(lang: Lang, chrome: Chrome, required: bool) -> Self {
        Self {
            lang,
            t: lang.texts(),
            st: texts(lang),
            chrome,
            required,
            enrolled: false,
            error: None,
            enrolment: None,
            secret_grouped: String::new(),
            recovery_codes: None,
            keys: Vec::new(),
            factors: Vec::new(),
        }
    }

    fn show(&mut self, enrolment: Result<TotpEnrolment, mailbox::Error>) {
        match enrolment {
            Ok(e) => {
                self.secret_grouped = in_fours(&e.secret_base32);
                self.enrolment = Some(e);
            }
            Err(e) => self.error = Some(message(self.lang, &e)),
        }
    }
}

/// `GET /security`: what is set up, and the authenticator enrolment (the page
/// a session that must have a second factor is sent to first).
pub async fn security(
    State(state): State<AppState>,
    headers: HeaderMap,
    AnyPage(ctx): AnyPage,
    RawQuery(query): RawQuery,
) -> Response {
    let s = &ctx.session;
    if s.account.must_change_password {
        return Redirect::to("/password").into_response();
    }
    let lang = Lang::from_request(&headers, query.as_deref());
    let mut page = SecurityPage::new(lang, ctx.chrome, s.enrolment_required);
    page.enrolled = s.account.has_second_factor;
    if !s.account.has_second_factor {
        page.show(state.directory.pending_totp(s).await);
    }
    // After starting the enrolment, so the list says it is under way.
    if let Ok(f) = state.directory.factors(s).await {
        page.enrolled = f.totp;
        page.factors = factor_lines(page.st, &f);
        page.keys = f.security_keys;
    }
    render(StatusCode::OK, lang, query.as_deref(), &page)
}

#[derive(Deserialize)]
pub struct ConfirmTotpForm {
    code: String,
}

/// `POST /security/totp`: confirms with the first code and shows the recovery
/// codes once; a wrong code shows the same key again.
pub async fn security_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    AnyPage(ctx): AnyPage,
    Form(form): Form<ConfirmTotpForm>,
) -> Response {
    let s = &ctx.session;
    let lang = Lang::from_request(&headers, None);
    let mut page = SecurityPage::new(lang, ctx.chrome, s.enrolment_required);
    match state.directory.confirm_totp(s, &form.code).await {
        Ok(codes) => {
            page.recovery_codes = Some(codes);
            render(StatusCode::OK, lang, None, &page)
        }
        Err(e) => {
            page.show(state.directory.pending_totp(s).await);
            page.error = Some(message(lang, &e));
            if let Ok(f) = state.directory.factors(s).await {
                page.factors = factor_lines(page.st, &f);
                page.keys = f.security_keys;
            }
            render(status_of(e.kind()), lang, None, &page)
        }
    }
}

/// `POST /security/totp/new`: replaces the enrolment under way with a new key.
pub async fn new_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    AnyPage(ctx): AnyPage,
) -> Response {
    let lang = Lang::from_request(&headers, None);
    match state.directory.begin_totp(&ctx.session).await {
        Ok(_) => Redirect::to("/security").into_response(),
        Err(e) => {
            let mut page = SecurityPage::new(lang, ctx.chrome, ctx.session.enrolment_required);
            page.error = Some(message(lang, &e));
            render(status_of(e.kind()), lang, None, &page)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::in_fours;

    #[test]
    fn a_secret_reads_in_groups_of_four() {
        assert_eq!(
            in_fours("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
            "ABCD EFGH IJKL MNOP QRST UVWX YZ23 4567"
        );
        assert_eq!(in_fours("ABCDEF"), "ABCD EF");
        assert_eq!(in_fours(""), "");
    }
}
