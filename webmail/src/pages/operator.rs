//! The operator's console, `/operator`: facilities (register with the code
//! checked rule by rule, the approval reference outside the home prefecture,
//! public details, deactivation), accounts (register with the issued password
//! shown once, lock, unlock, password and second-factor resets, pending
//! facility-key grants) and notices that could not be sent.
//!
//! Everything goes through `Directory` and `Notices`, as `renkei admin` does,
//! and every change is written to the audit trail in the same words as the
//! command line ("facility add: ok"). No page here shows any content: the
//! operator holds no key and sees metadata only.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::NaiveDate;
use mailbox::facility::parse_departments;
use mailbox::notify::{NotifyReason, kind_labels};
use mailbox::records::audit::{AuditEvent, action};
use mailbox::{
    Account, AccountId, CurrentSession, Error, Facility, FacilityCode, Localized, NewAccount, Role,
};
use serde::Deserialize;

use super::public::today_jst;
use super::settings::jst;
use super::{Chrome, PageCtx, message, render};
use crate::AppState;
use crate::error::status_of;
use crate::i18n::{Lang, Texts};

const CSS: &str = include_str!("../../static/admin.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/operator", get(facilities))
        .route("/operator/facilities", post(add_facility))
        .route(
            "/operator/facilities/{code}",
            get(facility_form).post(update_facility),
        )
        .route(
            "/operator/facilities/{code}/deactivate",
            post(deactivate_facility),
        )
        .route("/operator/accounts", get(accounts).post(add_account))
        .route("/operator/accounts/{id}/lock", post(lock))
        .route("/operator/accounts/{id}/unlock", post(unlock))
        .route(
            "/operator/accounts/{id}/reset-password",
            post(reset_password),
        )
        .route(
            "/operator/accounts/{id}/reset-second-factor",
            post(reset_second_factor),
        )
        .route("/operator/notifications", get(failed_notices))
        .route(
            "/static/admin.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS) }),
        )
}

/// The fixed words of the console.
pub struct OperatorTexts {
    pub title: &'static str,
    pub tab_facilities: &'static str,
    pub tab_accounts: &'static str,
    pub tab_notices: &'static str,
    pub no_content: &'static str,
    // facilities
    pub facilities_title: &'static str,
    pub add_facility_title: &'static str,
    pub edit_facility_title: &'static str,
    pub code: &'static str,
    pub code_hint: &'static str,
    pub name: &'static str,
    pub city: &'static str,
    pub address: &'static str,
    pub phone: &'static str,
    pub departments: &'static str,
    pub departments_hint: &'static str,
    pub public_note: &'static str,
    pub publish: &'static str,
    pub published: &'static str,
    pub unpublished: &'static str,
    pub active_from: &'static str,
    pub approval_ref: &'static str,
    pub approval_hint: &'static str,
    pub period: &'static str,
    pub state: &'static str,
    pub active: &'static str,
    pub ended: &'static str,
    pub not_yet: &'static str,
    pub add_button: &'static str,
    pub save_button: &'static str,
    pub edit_link: &'static str,
    pub no_facilities: &'static str,
    pub deactivate_title: &'static str,
    pub last_day: &'static str,
    pub deactivate_confirm: &'static str,
    pub deactivate_button: &'static str,
    pub facility_added: &'static str,
    pub facility_saved: &'static str,
    pub facility_deactivated: &'static str,
    pub back_to_list: &'static str,
    // accounts
    pub accounts_title: &'static str,
    pub add_account_title: &'static str,
    pub account_id: &'static str,
    pub role: &'static str,
    pub facility: &'static str,
    pub all_facilities: &'static str,
    pub no_facility: &'static str,
    pub filter_button: &'static str,
    pub email_hint: &'static str,
    pub status: &'static str,
    pub locked: &'static str,
    pub removed: &'static str,
    pub usable: &'static str,
    pub issued_password_pending: &'static str,
    pub second_factor: &'static str,
    pub failed_attempts: &'static str,
    pub lock_button: &'static str,
    pub unlock_button: &'static str,
    pub reset_button: &'static str,
    pub reset_confirm: &'static str,
    pub reset_factor_button: &'static str,
    pub reset_factor_confirm: &'static str,
    pub no_accounts: &'static str,
    pub account_locked: &'static str,
    pub account_unlocked: &'static str,
    pub factor_reset: &'static str,
    pub grants_title: &'static str,
    pub grants_lead: &'static str,
    pub grant_key: &'static str,
    pub grant_since: &'static str,
    pub no_grants: &'static str,
    pub liaison_key: &'static str,
    pub oversight_key: &'static str,
    // issued password
    pub issued_title: &'static str,
    pub reset_title: &'static str,
    pub issued_password: &'static str,
    pub issued_once: &'static str,
    pub key_replaced: &'static str,
    pub key_replaced_items: &'static str,
    pub confirmation_mailed: &'static str,
    pub to_accounts: &'static str,
    // failed notices
    pub notices_title: &'static str,
    pub notices_lead: &'static str,
    pub created_at: &'static str,
    pub account: &'static str,
    pub reason: &'static str,
    pub kind: &'static str,
    pub attempts: &'static str,
    pub last_error: &'static str,
    pub no_notices: &'static str,
}

static JA: OperatorTexts = OperatorTexts {
    title: "運用管理",
    tab_facilities: "医療施設",
    tab_accounts: "利用者ID",
    tab_notices: "送信できなかった通知",
    no_content: "運営者の画面には、依頼や報告の内容・患者情報は表示されません。",
    facilities_title: "参加医療施設",
    add_facility_title: "医療施設の登録",
    edit_facility_title: "医療施設の情報",
    code: "医療機関番号",
    code_hint: "10桁（都道府県2桁＋点数表1桁＋医療機関コード7桁、最後の1桁は検証番号）",
    name: "施設名",
    city: "市区町村",
    address: "住所",
    phone: "電話番号",
    departments: "診療科",
    departments_hint: "診療科（「、」または「,」区切り。公開一覧に掲載されます）",
    public_note: "公開一覧のお知らせ（受付時間・紹介窓口など）",
    publish: "住所・電話番号・お知らせを参加施設一覧に公開する",
    published: "公開",
    unpublished: "非公開",
    active_from: "利用開始日",
    approval_ref: "運営委員会の承認番号",
    approval_hint: "運営委員会の承認番号（県外の医療施設のみ必須）",
    period: "利用期間",
    state: "状態",
    active: "利用中",
    ended: "利用終了",
    not_yet: "開始前",
    add_button: "登録する",
    save_button: "保存する",
    edit_link: "編集・利用終了",
    no_facilities: "登録されている医療施設はありません。",
    deactivate_title: "利用の終了",
    last_day: "最終利用日",
    deactivate_confirm: "この日をもって利用を終了します（その月までは課金対象です）",
    deactivate_button: "利用を終了する",
    facility_added: "医療施設を登録しました。",
    facility_saved: "医療施設の情報を保存しました。",
    facility_deactivated: "利用終了日を設定しました。",
    back_to_list: "医療施設の一覧に戻る",
    accounts_title: "利用者ID",
    add_account_title: "利用者IDの発行",
    account_id: "ユーザーID",
    role: "役割",
    facility: "所属施設",
    all_facilities: "すべての施設",
    no_facility: "なし（運営者）",
    filter_button: "表示",
    email_hint: "通知用メールアドレス（任意。確認メールが送られます）",
    status: "状態",
    locked: "ロック中",
    removed: "削除済み",
    usable: "利用可",
    issued_password_pending: "初期パスワード未変更",
    second_factor: "二要素認証",
    failed_attempts: "連続失敗",
    lock_button: "ロック",
    unlock_button: "ロック解除",
    reset_button: "パスワード再発行",
    reset_confirm: "再発行する（復旧鍵なしの再発行では、本人宛ての過去の受信内容は開けなくなります）",
    reset_factor_button: "二要素認証をリセット",
    reset_factor_confirm: "本人確認を済ませた",
    no_accounts: "利用者IDはありません。",
    account_locked: "ロックしました。この利用者はログインできません。",
    account_unlocked: "ロックを解除しました。",
    factor_reset: "二要素認証をリセットしました。次回ログイン時に再登録が必要です。",
    grants_title: "施設鍵の付与待ち",
    grants_lead: "施設の共有受信箱・監督用の鍵を、同じ施設の他の利用者がログインした時点で付与します。急ぐ場合はサーバーで renkei admin grants complete を実行してください。",
    grant_key: "鍵",
    grant_since: "待機開始",
    no_grants: "付与待ちはありません。",
    liaison_key: "地域連携室の受信箱",
    oversight_key: "施設の監督",
    issued_title: "利用者IDを発行しました",
    reset_title: "パスワードを再発行しました",
    issued_password: "初期パスワード",
    issued_once: "このパスワードはこの画面でしか表示されません。利用者ID通知書に転記して本人に渡してください。初回ログイン時に変更が必要です。",
    key_replaced: "復旧鍵なしで再発行したため、この利用者には新しい鍵が作られました。",
    key_replaced_items: "本人宛てに届いていた過去の項目で開けなくなった件数",
    confirmation_mailed: "登録したメールアドレスに確認メールを送ります。",
    to_accounts: "利用者IDの一覧に戻る",
    notices_title: "送信できなかった通知",
    notices_lead: "再送の期限を過ぎた通知メールです。通知の種類のみを表示し、宛先や内容は表示しません。",
    created_at: "発生日時",
    account: "利用者",
    reason: "通知の理由",
    kind: "種別",
    attempts: "試行回数",
    last_error: "最後のエラー",
    no_notices: "送信できなかった通知はありません。",
};

static EN: OperatorTexts = OperatorTexts {
    title: "Operations",
    tab_facilities: "Facilities",
    tab_accounts: "Accounts",
    tab_notices: "Failed notices",
    no_content: "The operator's pages never show the content of requests or reports, nor patient data.",
    facilities_title: "Participating facilities",
    add_facility_title: "Register a facility",
    edit_facility_title: "Facility details",
    code: "Facility code",
    code_hint: "10 digits: prefecture (2), score table (1), institution number (7, the last a check digit)",
    name: "Name",
    city: "City",
    address: "Address",
    phone: "Phone",
    departments: "Departments",
    departments_hint: "Departments (separated by commas; listed publicly)",
    public_note: "Note for the public list (hours, referral desk)",
    publish: "Publish address, phone and note on the public list",
    published: "published",
    unpublished: "not published",
    active_from: "First day",
    approval_ref: "Steering committee approval",
    approval_hint: "Steering committee approval reference (required outside the home prefecture)",
    period: "Participation",
    state: "State",
    active: "active",
    ended: "ended",
    not_yet: "not started",
    add_button: "Register",
    save_button: "Save",
    edit_link: "Edit / end",
    no_facilities: "No facility is registered.",
    deactivate_title: "End participation",
    last_day: "Last day",
    deactivate_confirm: "End participation on this day (billed through that month)",
    deactivate_button: "End participation",
    facility_added: "The facility is registered.",
    facility_saved: "The facility's details are saved.",
    facility_deactivated: "The last day is set.",
    back_to_list: "Back to the facilities",
    accounts_title: "Accounts",
    add_account_title: "Issue an account",
    account_id: "Account ID",
    role: "Role",
    facility: "Facility",
    all_facilities: "All facilities",
    no_facility: "none (operator)",
    filter_button: "Show",
    email_hint: "E-mail for notices (optional; a confirmation mail is sent)",
    status: "Status",
    locked: "locked",
    removed: "removed",
    usable: "active",
    issued_password_pending: "issued password not changed",
    second_factor: "Second factor",
    failed_attempts: "Failures",
    lock_button: "Lock",
    unlock_button: "Unlock",
    reset_button: "Reset password",
    reset_confirm: "Reset (without the recovery key the person can no longer open items addressed to them before)",
    reset_factor_button: "Reset second factor",
    reset_factor_confirm: "Identity checked",
    no_accounts: "No accounts.",
    account_locked: "The account is locked; it cannot sign in.",
    account_unlocked: "The account is unlocked.",
    factor_reset: "The second factor is reset; the person enrols again at the next sign-in.",
    grants_title: "Pending facility-key grants",
    grants_lead: "Granted when another member of the facility signs in. To hurry, run renkei admin grants complete on the server.",
    grant_key: "Key",
    grant_since: "Waiting since",
    no_grants: "No pending grants.",
    liaison_key: "liaison inbox",
    oversight_key: "facility oversight",
    issued_title: "Account issued",
    reset_title: "Password reset",
    issued_password: "Issued password",
    issued_once: "This password is shown only now. Copy it onto the credential letter for the person, who must change it at the first sign-in.",
    key_replaced: "Reset without the recovery key: the person has a new key.",
    key_replaced_items: "Earlier items addressed to them that they can no longer open",
    confirmation_mailed: "A confirmation mail goes to the address entered.",
    to_accounts: "Back to the accounts",
    notices_title: "Failed notices",
    notices_lead: "Notice mails that could not be sent before the retry limit. Only the kind of notice is shown, never the address or any content.",
    created_at: "Created",
    account: "Account",
    reason: "Reason",
    kind: "Kind",
    attempts: "Attempts",
    last_error: "Last error",
    no_notices: "No failed notices.",
};

fn texts(lang: Lang) -> &'static OperatorTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

fn role_label(lang: Lang, role: Role) -> &'static str {
    match lang {
        Lang::Ja => role.label_ja(),
        Lang::En => role.as_str(),
    }
}

// --- refusals --------------------------------------------------------------------

#[derive(Template)]
#[template(path = "operator_refused.html")]
struct RefusedPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    error: String,
}

/// A signed-in page that cannot be shown to this session (not the operator, or
/// the lookup failed): the reason, in the frame, with its status.
pub(crate) fn refusal(lang: Lang, s: &CurrentSession, e: &Error) -> Response {
    let page = RefusedPage {
        lang,
        t: lang.texts(),
        chrome: Chrome::anonymous(),
        error: message(lang, e),
    };
    tracing::warn!(
        account = s.account.id.as_str(),
        code = e.code(),
        "page refused"
    );
    render(status_of(e.kind()), lang, None, &page)
}

/// The operator's session behind a console page, or the answer to send instead.
async fn operator_ctx(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<PageCtx, Response> {
    let ctx = PageCtx::ready(state, headers, query).await?;
    match ctx.session.require_operator() {
        Ok(_) => Ok(ctx),
        Err(e) => Err(refusal(ctx.lang, &ctx.session, &e)),
    }
}

/// Appends an operator action to the audit trail in the words of `renkei
/// admin` ("user lock: ok"); the item is a facility code or account ID only.
async fn audit(state: &AppState, s: &CurrentSession, what: &str, item: Option<String>, ok: bool) {
    let mut event = AuditEvent::by(s, action::ADMIN)
        .detail(format!("{what}: {}", if ok { "ok" } else { "failed" }));
    if let Some(item) = item {
        event = event.item(item);
    }
    state.directory.audit().note(event).await;
}

fn parse_day(field: &'static str, s: &str) -> Result<Option<NaiveDate>, Error> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            Error::invalid(
                field,
                format!("{field} must be a date like 2026-04-01"),
                "日付は 2026-04-01 の形式で入力してください。",
            )
        })
}

// --- facilities ------------------------------------------------------------------

/// The facility form as typed (kept on a refusal so nothing has to be retyped).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct FacilityForm {
    code: String,
    name: String,
    city: String,
    address: String,
    phone: String,
    departments: String,
    public_note: String,
    /// A checkbox: present when ticked.
    publish: Option<String>,
    active_from: String,
    approval_ref: String,
}

impl FacilityForm {
    fn of(f: &Facility) -> Self {
        Self {
            code: f.code.to_string(),
            name: f.name.clone(),
            city: f.city.clone(),
            address: f.address.clone(),
            phone: f.phone.clone(),
            departments: f.departments.join("、"),
            public_note: f.public_note.clone(),
            publish: f.publish_details.then(|| "on".into()),
            active_from: f.active_from.to_string(),
            approval_ref: f.approval_ref.clone().unwrap_or_default(),
        }
    }

    fn blank() -> Self {
        Self {
            active_from: today_jst().to_string(),
            ..Self::default()
        }
    }

    /// Writes the typed details onto `f` (the code is not among them).
    fn apply(&self, f: &mut Facility) -> Result<(), Error> {
        f.name = self.name.trim().to_string();
        f.city = self.city.trim().to_string();
        f.address = self.address.trim().to_string();
        f.phone = self.phone.trim().to_string();
        f.departments = parse_departments(&self.departments);
        f.public_note = self.public_note.trim().to_string();
        f.publish_details = self.publish.is_some();
        if let Some(day) = parse_day("active_from", &self.active_from)? {
            f.active_from = day;
        }
        f.approval_ref = Some(self.approval_ref.trim().to_string()).filter(|r| !r.is_empty());
        Ok(())
    }

    fn facility(&self) -> Result<Facility, Error> {
        let mut f = Facility::new(FacilityCode::parse(&self.code)?, "", today_jst());
        self.apply(&mut f)?;
        Ok(f)
    }
}

pub struct FacilityLine {
    pub code: String,
    pub name: String,
    pub city: String,
    pub departments: String,
    pub published: bool,
    pub period: String,
    /// `active`, `ended` or `not_yet`.
    pub state: &'static str,
    pub approval_ref: Option<String>,
}

impl FacilityLine {
    fn of(f: &Facility, today: NaiveDate) -> Self {
        let state = if f.is_active_on(today) {
            "active"
        } else if f.active_from > today {
            "not_yet"
        } else {
            "ended"
        };
        Self {
            code: f.code.to_string(),
            name: f.name.clone(),
            city: f.city.clone(),
            departments: f.departments.join("、"),
            published: f.publish_details,
            period: format!(
                "{} 〜 {}",
                f.active_from,
                f.active_until.map(|d| d.to_string()).unwrap_or_default()
            ),
            state,
            approval_ref: f.approval_ref.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "operator_facilities.html")]
struct FacilitiesPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static OperatorTexts,
    tab: &'static str,
    facilities: Vec<FacilityLine>,
    form: FacilityForm,
    done: Option<String>,
    error: Option<String>,
}

async fn facilities_page(
    state: &AppState,
    ctx: PageCtx,
    status: StatusCode,
    form: FacilityForm,
    done: Option<String>,
    error: Option<String>,
    query: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let today = today_jst();
    let list = match state.directory.facilities().await {
        Ok(list) => list,
        Err(e) => return refusal(lang, &ctx.session, &e),
    };
    let page = FacilitiesPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        x: texts(lang),
        tab: "facilities",
        facilities: list.iter().map(|f| FacilityLine::of(f, today)).collect(),
        form,
        done,
        error,
    };
    render(status, lang, query, &page)
}

/// `GET /operator` — the facilities and the form to register one.
pub async fn facilities(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, query.as_deref()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    facilities_page(
        &state,
        ctx,
        StatusCode::OK,
        FacilityForm::blank(),
        None,
        None,
        query.as_deref(),
    )
    .await
}

/// `POST /operator/facilities` — a refused code says which rule it broke.
pub async fn add_facility(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<FacilityForm>,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let added = match form.facility() {
        Ok(f) => state.directory.add_facility(f).await,
        Err(e) => Err(e),
    };
    let code = FacilityCode::parse(&form.code).ok().map(|c| c.to_string());
    audit(&state, &ctx.session, "facility add", code, added.is_ok()).await;
    match added {
        Ok(f) => {
            let done = format!("{} {}（{}）", texts(lang).facility_added, f.name, f.code);
            facilities_page(
                &state,
                ctx,
                StatusCode::OK,
                FacilityForm::blank(),
                Some(done),
                None,
                None,
            )
            .await
        }
        Err(e) => {
            facilities_page(
                &state,
                ctx,
                status_of(e.kind()),
                form,
                None,
                Some(message(lang, &e)),
                None,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "operator_facility.html")]
struct FacilityPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static OperatorTexts,
    tab: &'static str,
    line: FacilityLine,
    form: FacilityForm,
    today: String,
    done: Option<&'static str>,
    error: Option<String>,
}

/// The edit page of one facility, with `form` as typed (or as stored).
async fn facility_page(
    state: &AppState,
    ctx: PageCtx,
    code: &str,
    edit: impl FnOnce(&mut FacilityPage),
    status: StatusCode,
    query: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let found = match FacilityCode::parse(code) {
        Ok(c) => state.directory.facility(&c).await,
        Err(_) => Err(Error::NotFound("facility")),
    };
    let f = match found {
        Ok(f) => f,
        Err(e) => return refusal(lang, &ctx.session, &e),
    };
    let today = today_jst();
    let mut page = FacilityPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        x: texts(lang),
        tab: "facilities",
        line: FacilityLine::of(&f, today),
        form: FacilityForm::of(&f),
        today: today.to_string(),
        done: None,
        error: None,
    };
    edit(&mut page);
    render(status, lang, query, &page)
}

/// `GET /operator/facilities/{code}`
pub async fn facility_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, query.as_deref()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    facility_page(&state, ctx, &code, |_| {}, StatusCode::OK, query.as_deref()).await
}

/// `POST /operator/facilities/{code}` — name, city, departments, public details.
pub async fn update_facility(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Form(form): Form<FacilityForm>,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let saved = async {
        let code = FacilityCode::parse(&code).map_err(|_| Error::NotFound("facility"))?;
        let mut f = state.directory.facility(&code).await?;
        form.apply(&mut f)?;
        state.directory.update_facility(f).await
    }
    .await;
    let item = FacilityCode::parse(&code).ok().map(|c| c.to_string());
    audit(&state, &ctx.session, "facility update", item, saved.is_ok()).await;
    match saved {
        Ok(_) => {
            facility_page(
                &state,
                ctx,
                &code,
                |p| p.done = Some(p.x.facility_saved),
                StatusCode::OK,
                None,
            )
            .await
        }
        Err(e) => {
            let status = status_of(e.kind());
            let error = message(lang, &e);
            facility_page(
                &state,
                ctx,
                &code,
                move |p| {
                    p.form = FacilityForm {
                        code: p.form.code.clone(),
                        ..form
                    };
                    p.error = Some(error);
                },
                status,
                None,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct DeactivateForm {
    #[serde(default)]
    last_day: String,
}

/// `POST /operator/facilities/{code}/deactivate` — ends participation on the
/// given day (today when left empty).
pub async fn deactivate_facility(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Form(form): Form<DeactivateForm>,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let ended = async {
        let code = FacilityCode::parse(&code).map_err(|_| Error::NotFound("facility"))?;
        let last = parse_day("last_day", &form.last_day)?.unwrap_or_else(today_jst);
        state.directory.deactivate_facility(&code, last).await
    }
    .await;
    let item = FacilityCode::parse(&code).ok().map(|c| c.to_string());
    audit(
        &state,
        &ctx.session,
        "facility deactivate",
        item,
        ended.is_ok(),
    )
    .await;
    let (status, done, error) = match ended {
        Ok(_) => (StatusCode::OK, Some(texts(lang).facility_deactivated), None),
        Err(e) => (status_of(e.kind()), None, Some(message(lang, &e))),
    };
    facility_page(
        &state,
        ctx,
        &code,
        move |p| {
            p.done = done;
            p.error = error;
        },
        status,
        None,
    )
    .await
}

// --- accounts --------------------------------------------------------------------

pub struct AccountLine {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub facility: String,
    pub locked: bool,
    pub removed: bool,
    pub must_change_password: bool,
    pub has_second_factor: bool,
    pub failed_attempts: u32,
}

pub struct GrantLine {
    pub facility: String,
    pub key: &'static str,
    pub account: String,
    pub since: String,
}

pub struct FacilityChoice {
    pub code: String,
    pub name: String,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct AccountForm {
    role: String,
    facility: String,
    name: String,
    email: String,
}

#[derive(Template)]
#[template(path = "operator_accounts.html")]
struct AccountsPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static OperatorTexts,
    tab: &'static str,
    filter: String,
    choices: Vec<FacilityChoice>,
    roles: Vec<(&'static str, &'static str)>,
    accounts: Vec<AccountLine>,
    grants: Vec<GrantLine>,
    form: AccountForm,
    done: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountsQuery {
    facility: String,
}

/// The accounts of one facility (or all), the registration form and the
/// pending grants, with the outcome of an action on top.
async fn accounts_page(
    state: &AppState,
    ctx: PageCtx,
    filter: &str,
    form: AccountForm,
    outcome: Result<Option<&'static str>, Error>,
    query: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let built = async {
        let facilities = state.directory.facilities().await?;
        let code = FacilityCode::parse(filter).ok();
        let accounts = state.directory.accounts(code.as_ref()).await?;
        let grants = state.directory.pending_grants().await?;
        Ok::<_, Error>((facilities, accounts, grants))
    }
    .await;
    let (facilities, accounts, grants) = match built {
        Ok(v) => v,
        Err(e) => return refusal(lang, &ctx.session, &e),
    };
    let names: HashMap<String, String> = facilities
        .iter()
        .map(|f| (f.code.to_string(), f.name.clone()))
        .collect();
    let today = today_jst();
    let x = texts(lang);
    let (status, done, error) = match outcome {
        Ok(done) => (StatusCode::OK, done, None),
        Err(e) => (status_of(e.kind()), None, Some(message(lang, &e))),
    };
    let page = AccountsPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        x,
        tab: "accounts",
        filter: filter.to_string(),
        choices: facilities
            .iter()
            .filter(|f| f.is_active_on(today))
            .map(|f| FacilityChoice {
                code: f.code.to_string(),
                name: f.name.clone(),
            })
            .collect(),
        roles: [Role::Doctor, Role::Liaison, Role::Clerk, Role::Operator]
            .into_iter()
            .map(|r| (r.as_str(), role_label(lang, r)))
            .collect(),
        accounts: accounts
            .iter()
            .map(|a: &Account| AccountLine {
                id: a.id.display_grouped(),
                name: a.name.clone(),
                role: role_label(lang, a.role),
                facility: a
                    .facility
                    .as_ref()
                    .map(|c| {
                        let code = c.to_string();
                        match names.get(&code) {
                            Some(n) => format!("{n}（{code}）"),
                            None => code,
                        }
                    })
                    .unwrap_or_default(),
                locked: a.locked,
                removed: a.removed,
                must_change_password: a.must_change_password,
                has_second_factor: a.has_second_factor,
                failed_attempts: a.failed_attempts,
            })
            .collect(),
        grants: grants
            .into_iter()
            .map(|g| GrantLine {
                key: if g.role == "liaison" {
                    x.liaison_key
                } else {
                    x.oversight_key
                },
                facility: match names.get(&g.facility_code) {
                    Some(n) => format!("{n}（{}）", g.facility_code),
                    None => g.facility_code,
                },
                account: AccountId::parse(&g.account_id)
                    .map(|a| a.display_grouped())
                    .unwrap_or(g.account_id),
                since: jst(g.created_at),
            })
            .collect(),
        form,
        done,
        error,
    };
    render(status, lang, query, &page)
}

/// `GET /operator/accounts[?facility=CODE]`
pub async fn accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, query.as_deref()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let filter = serde_urlencoded::from_str::<AccountsQuery>(query.as_deref().unwrap_or(""))
        .map(|q| q.facility)
        .unwrap_or_default();
    accounts_page(
        &state,
        ctx,
        &filter,
        AccountForm::default(),
        Ok(None),
        query.as_deref(),
    )
    .await
}

#[derive(Template)]
#[template(path = "operator_issued.html")]
struct IssuedPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static OperatorTexts,
    tab: &'static str,
    reset: bool,
    account_id: String,
    name: String,
    role: &'static str,
    facility: Option<String>,
    password: String,
    /// Without the recovery key: how many earlier items the person lost.
    lost_items: Option<usize>,
    confirmation_mailed: bool,
}

/// `POST /operator/accounts` — the issued password is on this answer only.
pub async fn add_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let added = async {
        let role: Role = form.role.parse()?;
        let facility = match form.facility.trim() {
            "" => None,
            code => Some(FacilityCode::parse(code)?),
        };
        let email = Some(form.email.trim().to_string()).filter(|e| !e.is_empty());
        let (account, password) = state
            .directory
            .add_account(NewAccount {
                role,
                facility,
                name: form.name.clone(),
                email: email.clone(),
            })
            .await?;
        // Notices go only to a confirmed address: mail the link now, as the
        // command line does.
        if let Some(address) = &email {
            state
                .notices
                .request_confirmation(&account.id, address)
                .await?;
        }
        Ok::<_, Error>((account, password))
    }
    .await;
    let item = added.as_ref().ok().map(|(a, _)| a.id.as_str().to_string());
    audit(&state, &ctx.session, "user add", item, added.is_ok()).await;
    match added {
        Ok((account, password)) => {
            let facility = facility_label(&state, &account).await;
            let page = IssuedPage {
                lang,
                t: lang.texts(),
                x: texts(lang),
                tab: "accounts",
                reset: false,
                account_id: account.id.display_grouped(),
                name: account.name.clone(),
                role: role_label(lang, account.role),
                facility,
                password: password.expose().to_string(),
                lost_items: None,
                confirmation_mailed: account.email.is_some(),
                chrome: ctx.chrome,
            };
            render(StatusCode::OK, lang, None, &page)
        }
        Err(e) => {
            let filter = form.facility.clone();
            accounts_page(&state, ctx, &filter, form, Err(e), None).await
        }
    }
}

async fn facility_label(state: &AppState, a: &Account) -> Option<String> {
    let code = a.facility.as_ref()?;
    Some(match state.directory.facility(code).await {
        Ok(f) => format!("{}（{code}）", f.name),
        Err(_) => code.to_string(),
    })
}

/// A lock, unlock or second-factor reset: done, audited, and the accounts
/// page with the outcome.
async fn account_action(
    state: &AppState,
    ctx: PageCtx,
    id: &str,
    what: &'static str,
    done: &'static str,
    act: impl AsyncFnOnce(&AccountId) -> Result<(), Error>,
) -> Response {
    let parsed = AccountId::parse(id).ok();
    let outcome = match &parsed {
        Some(id) => act(id).await,
        None => Err(Error::NotFound("account")),
    };
    let item = parsed.map(|a| a.as_str().to_string());
    audit(state, &ctx.session, what, item, outcome.is_ok()).await;
    accounts_page(
        state,
        ctx,
        "",
        AccountForm::default(),
        outcome.map(|()| Some(done)),
        None,
    )
    .await
}

/// `POST /operator/accounts/{id}/lock` — the person's sessions end at once.
pub async fn lock(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let done = texts(ctx.lang).account_locked;
    let directory = state.directory.clone();
    account_action(&state, ctx, &id, "user lock", done, async |id| {
        directory.set_locked(id, true).await.map(|_| ())
    })
    .await
}

/// `POST /operator/accounts/{id}/unlock` — also clears the failure count.
pub async fn unlock(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let done = texts(ctx.lang).account_unlocked;
    let directory = state.directory.clone();
    account_action(&state, ctx, &id, "user unlock", done, async |id| {
        directory.set_locked(id, false).await.map(|_| ())
    })
    .await
}

/// The tick box a destructive action needs.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Confirmed {
    confirm: Option<String>,
}

impl Confirmed {
    fn check(&self) -> Result<(), Error> {
        if self.confirm.is_some() {
            Ok(())
        } else {
            Err(Error::invalid(
                "confirm",
                "tick the box to confirm",
                "確認のチェックを入れてから実行してください。",
            ))
        }
    }
}

/// `POST /operator/accounts/{id}/reset-second-factor` — after an identity
/// check; the person is told by mail and enrols again.
pub async fn reset_second_factor(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Confirmed>,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let done = texts(ctx.lang).factor_reset;
    let (directory, notices) = (state.directory.clone(), state.notices.clone());
    account_action(
        &state,
        ctx,
        &id,
        "user reset-second-factor",
        done,
        async |id| {
            form.check()?;
            directory
                .reset_second_factor(id, Some(&notices))
                .await
                .map(|_| ())
        },
    )
    .await
}

/// `POST /operator/accounts/{id}/reset-password` — a new issued password,
/// shown once. The web console has no recovery key (it never leaves the
/// operator's offline storage), so the person gets a new key; the page says
/// how many earlier items that costs them.
pub async fn reset_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Confirmed>,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let parsed = AccountId::parse(&id).ok();
    let reset = async {
        form.check()?;
        let id = parsed.clone().ok_or(Error::NotFound("account"))?;
        let outcome = state.directory.reset_password_with(&id, None).await?;
        let account = state.directory.account(&id).await?;
        Ok::<_, Error>((account, outcome))
    }
    .await;
    let item = parsed.map(|a| a.as_str().to_string());
    audit(
        &state,
        &ctx.session,
        "user reset-password",
        item,
        reset.is_ok(),
    )
    .await;
    match reset {
        Ok((account, outcome)) => {
            let facility = facility_label(&state, &account).await;
            let page = IssuedPage {
                lang,
                t: lang.texts(),
                x: texts(lang),
                tab: "accounts",
                reset: true,
                account_id: account.id.display_grouped(),
                name: account.name.clone(),
                role: role_label(lang, account.role),
                facility,
                password: outcome.password.expose().to_string(),
                lost_items: outcome
                    .key_replaced
                    .then_some(outcome.unreadable_items.len()),
                confirmation_mailed: false,
                chrome: ctx.chrome,
            };
            render(StatusCode::OK, lang, None, &page)
        }
        Err(e) => accounts_page(&state, ctx, "", AccountForm::default(), Err(e), None).await,
    }
}

// --- failed notices --------------------------------------------------------------

pub struct NoticeLine {
    pub created_at: String,
    pub account: String,
    pub reason: &'static str,
    pub kind: &'static str,
    pub attempts: i64,
    pub last_error: String,
}

fn reason_label(lang: Lang, reason: &str) -> &'static str {
    let (ja, en) = match NotifyReason::parse(reason) {
        Some(NotifyReason::NewItem) => ("新着", "new item"),
        Some(NotifyReason::Report) => ("報告の到着", "report"),
        Some(NotifyReason::Reply) => ("返書の到着", "reply"),
        Some(NotifyReason::ActionNeeded) => ("対応待ち", "action needed"),
        Some(NotifyReason::Assigned) => ("担当の割り当て", "assigned"),
        Some(NotifyReason::Escalation) => ("未開封の催促", "escalation"),
        Some(NotifyReason::ConfirmAddress) => ("アドレス確認", "address confirmation"),
        Some(NotifyReason::DeliveryFailed) => ("配送失敗", "delivery failed"),
        Some(NotifyReason::SecurityChange) => ("認証設定の変更", "security change"),
        None => ("不明", "unknown"),
    };
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

#[derive(Template)]
#[template(path = "operator_notices.html")]
struct NoticesPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static OperatorTexts,
    tab: &'static str,
    notices: Vec<NoticeLine>,
}

/// `GET /operator/notifications` — notices past their retries: reason, kind,
/// account and the relay's last answer; never an address or any content.
pub async fn failed_notices(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let ctx = match operator_ctx(&state, &headers, query.as_deref()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let rows = match state.notices.failed_all(&ctx.session).await {
        Ok(rows) => rows,
        Err(e) => return refusal(lang, &ctx.session, &e),
    };
    let page = NoticesPage {
        lang,
        t: lang.texts(),
        x: texts(lang),
        tab: "notices",
        notices: rows
            .into_iter()
            .map(|r| {
                let (kind_ja, kind_en) = kind_labels(r.kind.as_deref());
                NoticeLine {
                    created_at: jst(r.created_at / 1000),
                    account: AccountId::parse(&r.account_id)
                        .map(|a| a.display_grouped())
                        .unwrap_or(r.account_id),
                    reason: reason_label(lang, &r.reason),
                    kind: match lang {
                        Lang::Ja => kind_ja,
                        Lang::En => kind_en,
                    },
                    attempts: r.attempts,
                    last_error: r.last_error.unwrap_or_default(),
                }
            })
            .collect(),
        chrome: ctx.chrome,
    };
    render(StatusCode::OK, lang, query.as_deref(), &page)
}
