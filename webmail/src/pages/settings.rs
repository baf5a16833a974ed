//! Personal settings, `/settings`: the e-mail address notices go to (changed
//! only once the confirmation link is opened), the notification mode, links to
//! the password and security pages, and app passwords for mail clients (shown
//! once, revocable). Changing the address and making an app password need a
//! recent re-authentication when the person has a second factor; the form
//! then asks for the code itself.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use mailbox::auth::{AppPasswordView, SecondFactor};
use mailbox::clock::format_jst_minutes;
use mailbox::notify::NotifyMode;
use mailbox::{CurrentSession, Error};
use serde::Deserialize;

use super::{Chrome, PageCtx, PageSession, message, render};
use crate::AppState;
use crate::http::error::status_of;
use crate::i18n::{Lang, Texts};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings", get(show))
        .route("/settings/email", post(change_email))
        .route("/settings/notifications", post(set_notifications))
        .route("/settings/app-passwords", post(create_app_password))
        .route(
            "/settings/app-passwords/{id}/revoke",
            post(revoke_app_password),
        )
}

/// The fixed words of the settings page.
pub struct SettingsTexts {
    pub title: &'static str,
    pub email_title: &'static str,
    pub email_current: &'static str,
    pub email_none: &'static str,
    pub verified: &'static str,
    pub unverified: &'static str,
    pub pending: &'static str,
    pub pending_hint: &'static str,
    pub no_relay: &'static str,
    pub new_email: &'static str,
    pub email_button: &'static str,
    pub email_requested: &'static str,
    pub password_title: &'static str,
    pub password_link: &'static str,
    pub notify_title: &'static str,
    pub notify_lead: &'static str,
    pub mode_immediate: &'static str,
    pub mode_digest: &'static str,
    pub mode_off: &'static str,
    pub notify_button: &'static str,
    pub notify_saved: &'static str,
    pub security_title: &'static str,
    pub security_link: &'static str,
    pub app_title: &'static str,
    pub app_lead: &'static str,
    pub app_name: &'static str,
    pub app_name_hint: &'static str,
    pub app_created_at: &'static str,
    pub app_last_used: &'static str,
    pub app_expires_at: &'static str,
    pub app_expired: &'static str,
    pub app_never: &'static str,
    pub app_none: &'static str,
    pub app_button: &'static str,
    pub app_new_title: &'static str,
    pub app_new_lead: &'static str,
    pub revoke_button: &'static str,
    pub app_revoked: &'static str,
    pub imap_title: &'static str,
    pub imap_server: &'static str,
    pub imap_port: &'static str,
    pub imap_user: &'static str,
    pub imap_password: &'static str,
    pub imap_off: &'static str,
    pub reauth_lead: &'static str,
    pub reauth_code: &'static str,
    pub reauth_recovery: &'static str,
    pub reauth_key: &'static str,
}

static JA: SettingsTexts = SettingsTexts {
    title: "個人設定",
    email_title: "通知先メールアドレス",
    email_current: "現在のアドレス",
    email_none: "未登録",
    verified: "確認済み",
    unverified: "未確認（通知は届きません）",
    pending: "確認待ちのアドレス",
    pending_hint: "このアドレスに届いた確認メールのリンクを開くと切り替わります。それまでは現在のアドレスが使われます。",
    no_relay: "このサーバーにはメール送信が設定されていないため、確認メールは送信されません。運営者にお問い合わせください。",
    new_email: "新しいメールアドレス",
    email_button: "確認メールを送る",
    email_requested: "確認メールを送信しました。メール内のリンクを開くとアドレスが切り替わります。",
    password_title: "パスワード",
    password_link: "パスワードを変更する",
    notify_title: "新着のお知らせ",
    notify_lead: "新しい依頼や報告が届いたときのメール通知です。メールには患者情報や件名は含まれません。",
    mode_immediate: "届くたびに通知する",
    mode_digest: "1日1回（午前8時）まとめて通知する",
    mode_off: "通知しない",
    notify_button: "保存",
    notify_saved: "通知の設定を保存しました。",
    security_title: "二要素認証・セキュリティキー",
    security_link: "認証アプリとセキュリティキーの設定",
    app_title: "メールソフト用アプリパスワード",
    app_lead: "メールソフト（IMAP）から接続するときは、ログイン用のパスワードではなくアプリパスワードを使います。作成時に一度だけ表示されます。",
    app_name: "名前",
    app_name_hint: "名前（例：診察室のPC）",
    app_created_at: "作成日時",
    app_last_used: "最終利用",
    app_expires_at: "有効期限（メールソフトのみ）",
    app_expired: "期限切れ",
    app_never: "未使用",
    app_none: "アプリパスワードはありません。",
    app_button: "アプリパスワードを作成",
    app_new_title: "新しいアプリパスワード",
    app_new_lead: "この画面でしか表示されません。メールソフトのパスワード欄に入力してください。",
    revoke_button: "無効にする",
    app_revoked: "アプリパスワードを無効にしました。このパスワードでの接続はできなくなります。",
    imap_title: "メールソフトの設定",
    imap_server: "受信サーバー（IMAP）",
    imap_port: "ポートと接続の保護",
    imap_user: "ユーザー名",
    imap_password: "パスワード：下で作成するアプリパスワード",
    imap_off: "このサーバーでは、メールソフトからの接続は有効になっていません。必要な場合は運営者（ヘルプデスク）にお問い合わせください。",
    reauth_lead: "この操作には本人確認が必要です。認証アプリの確認コード（またはリカバリーコード）を入力してください。",
    reauth_code: "確認コード（6桁）",
    reauth_recovery: "リカバリーコード",
    reauth_key: "セキュリティキーで確認して実行",
};

static EN: SettingsTexts = SettingsTexts {
    title: "Settings",
    email_title: "E-mail address for notices",
    email_current: "Current address",
    email_none: "none",
    verified: "confirmed",
    unverified: "not confirmed (no notices are sent)",
    pending: "Waiting for confirmation",
    pending_hint: "Open the link in the mail sent to this address to switch to it. Until then the current address stays in use.",
    no_relay: "This server has no mail relay configured, so no confirmation mail is sent. Ask the operator.",
    new_email: "New e-mail address",
    email_button: "Send confirmation mail",
    email_requested: "A confirmation mail is on its way. The address changes once you open its link.",
    password_title: "Password",
    password_link: "Change your password",
    notify_title: "Notices of new items",
    notify_lead: "Mail notices when a request or report arrives. They never carry patient data or subjects.",
    mode_immediate: "Notify me of each item",
    mode_digest: "Once a day (8:00), in one mail",
    mode_off: "No notices",
    notify_button: "Save",
    notify_saved: "Your notice settings are saved.",
    security_title: "Two-factor sign-in and security keys",
    security_link: "Authenticator app and security keys",
    app_title: "App passwords for mail clients",
    app_lead: "Mail clients (IMAP) sign in with an app password, not your account password. It is shown once, when made.",
    app_name: "Name",
    app_name_hint: "Name (e.g. office PC)",
    app_created_at: "Created",
    app_last_used: "Last used",
    app_expires_at: "Expires (mail clients only)",
    app_expired: "expired",
    app_never: "never",
    app_none: "No app passwords.",
    app_button: "Create app password",
    app_new_title: "Your new app password",
    app_new_lead: "It is shown only now. Enter it as the password in your mail client.",
    revoke_button: "Revoke",
    app_revoked: "The app password is revoked; it no longer signs in.",
    imap_title: "Mail software settings",
    imap_server: "Incoming server (IMAP)",
    imap_port: "Port and security",
    imap_user: "User name",
    imap_password: "Password: an app password made below",
    imap_off: "Mail software cannot connect to this server. Ask the operator (help desk) if you need it.",
    reauth_lead: "Confirm it is you first: enter the code from your authenticator app (or a recovery code).",
    reauth_code: "Code (6 digits)",
    reauth_recovery: "Recovery code",
    reauth_key: "Confirm with a security key and go on",
};

fn texts(lang: Lang) -> &'static SettingsTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

/// What a form must ask for before a change that needs a fresh
/// re-authentication: nothing, a code, or a security key.
pub struct Reauth {
    pub needed: bool,
    pub totp: bool,
    pub security_key: bool,
}

pub struct AppPasswordLine {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used: Option<String>,
    /// After this the app password no longer opens mail (90 days).
    pub expires_at: String,
    pub expired: bool,
}

impl From<AppPasswordView> for AppPasswordLine {
    fn from(v: AppPasswordView) -> Self {
        Self {
            id: v.id,
            name: v.name,
            created_at: format_jst_minutes(v.created_at),
            expires_at: format_jst_minutes(v.expires_at),
            expired: v.expires_at <= mailbox::clock::now_secs(),
            last_used: v.last_used_at.map(|at| match v.last_used_from {
                Some(from) => format!("{} ({from})", format_jst_minutes(at)),
                None => format_jst_minutes(at),
            }),
        }
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static SettingsTexts,
    email: Option<String>,
    email_verified: bool,
    pending_email: Option<String>,
    relay: bool,
    mode: String,
    reauth: Reauth,
    app_passwords: Vec<AppPasswordLine>,
    /// A just-made app password: (name, secret), shown on this answer only.
    new_app_password: Option<(String, String)>,
    done: Option<&'static str>,
    error: Option<String>,
    /// What the person typed into a refused address form.
    email_input: String,
    /// Where mail software connects: host, then `993（SSL/TLS）`-like ports.
    imap_host: String,
    imap_ports: Vec<String>,
    imap_user: String,
}

/// The IMAP ports as mail software asks for them: number and security.
fn imap_ports(site: &crate::SiteInfo) -> Vec<String> {
    [
        (site.imap_tls_port, "SSL/TLS"),
        (site.imap_starttls_port, "STARTTLS"),
    ]
    .into_iter()
    .filter_map(|(port, security)| port.map(|p| format!("{p}（{security}）")))
    .collect()
}

/// The page as it stands for this session.
async fn page(state: &AppState, ctx: PageCtx) -> Result<SettingsPage, Error> {
    let s = &ctx.session;
    let notify = state.notices.settings(s).await?;
    let factors = state.directory.factors(s).await?;
    let lang = ctx.lang;
    Ok(SettingsPage {
        lang,
        t: lang.texts(),
        x: texts(lang),
        email: notify.email,
        email_verified: notify.email_verified,
        pending_email: notify.pending_email,
        relay: state.notices.policy().enabled,
        mode: notify.mode,
        reauth: Reauth {
            needed: state.directory.require_recent_reauth(s).is_err(),
            totp: factors.totp,
            security_key: !factors.security_keys.is_empty(),
        },
        app_passwords: factors
            .app_passwords
            .into_iter()
            .map(AppPasswordLine::from)
            .collect(),
        chrome: ctx.chrome,
        new_app_password: None,
        done: None,
        error: None,
        email_input: String::new(),
        imap_host: state.site.imap_host.clone(),
        imap_ports: imap_ports(&state.site),
        imap_user: s.account.id.display_grouped(),
    })
}

/// Renders the page after an action: its outcome on top, everything else as
/// it now stands; `edit` adds what only this answer shows.
async fn answer(
    state: &AppState,
    ctx: PageCtx,
    outcome: Result<(), Error>,
    edit: impl FnOnce(&mut SettingsPage),
) -> Response {
    let lang = ctx.lang;
    let session = ctx.session.clone();
    let mut p = match page(state, ctx).await {
        Ok(p) => p,
        Err(e) => return super::operator::refusal(lang, &session, &e),
    };
    let status = match &outcome {
        Ok(()) => StatusCode::OK,
        Err(e) => {
            p.error = Some(message(lang, e));
            status_of(e.kind())
        }
    };
    edit(&mut p);
    render(status, lang, None, &p)
}

/// `GET /settings`
pub async fn show(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    RawQuery(query): RawQuery,
) -> Response {
    let lang = ctx.lang;
    let session = ctx.session.clone();
    match page(&state, ctx).await {
        Ok(p) => render(StatusCode::OK, lang, query.as_deref(), &p),
        Err(e) => super::operator::refusal(lang, &session, &e),
    }
}

/// The re-authentication fields a form carries when the page asked for them.
#[derive(Deserialize, Default)]
pub struct ReauthFields {
    #[serde(default)]
    reauth_code: String,
    #[serde(default)]
    reauth_recovery_code: String,
}

impl ReauthFields {
    /// Re-authenticates with what was typed, if anything; the action itself
    /// then decides whether a fresh re-authentication was needed.
    async fn apply(&self, state: &AppState, s: &CurrentSession) -> Result<(), Error> {
        let factor = match (self.reauth_code.trim(), self.reauth_recovery_code.trim()) {
            ("", "") => return Ok(()),
            (code, "") => SecondFactor::Totp(code.to_string()),
            ("", recovery) => SecondFactor::RecoveryCode(recovery.to_string()),
            _ => {
                return Err(Error::invalid(
                    "code",
                    "enter either the code or a recovery code",
                    "確認コードとリカバリーコードのどちらか一方を入力してください。",
                ));
            }
        };
        state.directory.reauthenticate(s, &factor).await
    }
}

#[derive(Deserialize)]
pub struct EmailForm {
    address: String,
    #[serde(flatten)]
    reauth: ReauthFields,
}

/// `POST /settings/email` — mails a confirmation link to the new address.
pub async fn change_email(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Form(form): Form<EmailForm>,
) -> Response {
    let s = ctx.session.clone();
    let outcome = async {
        form.reauth.apply(&state, &s).await?;
        state.directory.require_recent_reauth(&s)?;
        state.notices.request_email_change(&s, &form.address).await
    }
    .await;
    let ok = outcome.is_ok();
    answer(&state, ctx, outcome, move |p| {
        if ok {
            p.done = Some(p.x.email_requested);
        } else {
            p.email_input = form.address;
        }
    })
    .await
}

#[derive(Deserialize)]
pub struct NotifyForm {
    mode: String,
}

/// `POST /settings/notifications` — immediate, digest or off.
pub async fn set_notifications(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Form(form): Form<NotifyForm>,
) -> Response {
    let outcome = match NotifyMode::parse(&form.mode) {
        Ok(mode) => state.notices.set_mode(&ctx.session, mode).await,
        Err(e) => Err(e),
    };
    let ok = outcome.is_ok();
    answer(&state, ctx, outcome, |p| {
        if ok {
            p.done = Some(p.x.notify_saved);
        }
    })
    .await
}

#[derive(Deserialize)]
pub struct AppPasswordForm {
    name: String,
    #[serde(flatten)]
    reauth: ReauthFields,
}

/// `POST /settings/app-passwords` — the new password is on this answer only.
pub async fn create_app_password(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Form(form): Form<AppPasswordForm>,
) -> Response {
    let s = ctx.session.clone();
    let created = async {
        form.reauth.apply(&state, &s).await?;
        state.directory.create_app_password(&s, &form.name).await
    }
    .await;
    match created {
        Ok((view, secret)) => {
            let shown = (view.name, secret.expose().to_string());
            answer(&state, ctx, Ok(()), move |p| {
                p.new_app_password = Some(shown)
            })
            .await
        }
        Err(e) => answer(&state, ctx, Err(e), |_| {}).await,
    }
}

/// `POST /settings/app-passwords/{id}/revoke`
pub async fn revoke_app_password(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
) -> Response {
    let outcome = state.directory.revoke_app_password(&ctx.session, &id).await;
    let ok = outcome.is_ok();
    answer(&state, ctx, outcome, |p| {
        if ok {
            p.done = Some(p.x.app_revoked);
        }
    })
    .await
}
