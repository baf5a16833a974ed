//! The facility-progress page (`/clerk`) for clerks and liaison offices: every
//! item the facility sent or received with its progress, overdue items marked,
//! per-account usage with the shared liaison inbox (clerks) and reading statistics by month, with links to
//! the CSV exports of the API. Read-only: nothing here posts anything.
//!
//! Also what the three office pages (liaison, clerk, booking) share: labels of
//! kinds, states and urgency, names of facilities and accounts, JST times.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use chrono::{Datelike, NaiveDate};
use mailbox::clock::{format_jst_minutes_millis, today_jst};
use mailbox::threads::Thread;
use mailbox::threads::stats::Usage;
use mailbox::workflow::{ThreadKind, ThreadState};
use mailbox::{FacilityCode, Role};
use serde::Deserialize;

use super::{Chrome, PageCtx, PageSession, message, render};
use crate::AppState;
use crate::http::error::status_of;
use crate::i18n::{Lang, Texts};

pub fn routes() -> Router<AppState> {
    Router::new().route("/clerk", get(page)).route(
        "/static/office.css",
        get(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
                OFFICE_CSS,
            )
        }),
    )
}

/// The office pages' own rules (wide tables, progress, slots), after renkei.css.
const OFFICE_CSS: &str = include_str!("../../static/office.css");

// --- shared by the office pages -------------------------------------------------

pub(super) fn kind_label(lang: Lang, kind: &str) -> &'static str {
    let Ok(k) = ThreadKind::parse(kind) else {
        return "—";
    };
    match (lang, k) {
        (Lang::Ja, ThreadKind::ReadingRequest) => "読影依頼",
        (Lang::Ja, ThreadKind::Referral) => "患者紹介",
        (Lang::Ja, ThreadKind::Share) => "情報連携",
        (Lang::Ja, ThreadKind::Booking) => "予約",
        (Lang::Ja, ThreadKind::Pathway) => "連携パス",
        (Lang::En, ThreadKind::ReadingRequest) => "Reading request",
        (Lang::En, ThreadKind::Referral) => "Referral",
        (Lang::En, ThreadKind::Share) => "Information share",
        (Lang::En, ThreadKind::Booking) => "Booking",
        (Lang::En, ThreadKind::Pathway) => "Care pathway",
    }
}

pub(super) fn state_label(lang: Lang, state: &str) -> &'static str {
    let Some(s) = ThreadState::parse(state) else {
        return "—";
    };
    match lang {
        Lang::Ja => s.label_ja(),
        Lang::En => match s {
            ThreadState::Sent => "Sent",
            ThreadState::Delivered => "Delivered",
            ThreadState::Opened => "Opened",
            ThreadState::Accepted => "Accepted",
            ThreadState::Reported => "Reported",
            ThreadState::Replied => "Replied",
            ThreadState::Declined => "Declined",
            ThreadState::Withdrawn => "Withdrawn",
            ThreadState::Acknowledged => "Acknowledged",
            ThreadState::Requested => "Requested",
            ThreadState::Confirmed => "Confirmed",
            ThreadState::Proposed => "Another time proposed",
            ThreadState::Cancelled => "Cancelled",
            ThreadState::Active => "In progress",
            ThreadState::Completed => "Completed",
        },
    }
}

pub(super) fn urgency_label(lang: Lang, urgency: &str) -> &'static str {
    match (lang, urgency == "urgent") {
        (Lang::Ja, true) => "至急",
        (Lang::Ja, false) => "通常",
        (Lang::En, true) => "Urgent",
        (Lang::En, false) => "Routine",
    }
}

pub(super) fn is_overdue(t: &Thread) -> bool {
    let today = today_jst().format("%Y-%m-%d").to_string();
    t.closed_at.is_none() && t.wanted_by.as_deref().is_some_and(|w| w < today.as_str())
}

/// Facility names by code (the whole network; a handful of rows).
pub(super) async fn facility_names(state: &AppState) -> HashMap<String, String> {
    match state.directory.facilities().await {
        Ok(list) => list
            .into_iter()
            .map(|f| (f.code.to_string(), f.name))
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "listing facilities failed");
            HashMap::new()
        }
    }
}

/// The accounts of one facility: ID (stored form) → (name, role).
pub(super) async fn people_of(
    state: &AppState,
    code: &FacilityCode,
) -> HashMap<String, (String, Role)> {
    match state.directory.accounts(Some(code)).await {
        Ok(list) => list
            .into_iter()
            .map(|a| (a.id.as_str().to_string(), (a.name, a.role)))
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "listing accounts failed");
            HashMap::new()
        }
    }
}

/// A person's name where the facility knows them, else their ID as shown on
/// screen (staff of other facilities).
pub(super) fn person(people: &HashMap<String, (String, Role)>, id: &str) -> String {
    people.get(id).map_or_else(
        || mailbox::AccountId::parse(id).map_or_else(|_| id.to_string(), |a| a.display_grouped()),
        |(name, _)| name.clone(),
    )
}

pub(super) fn facility(names: &HashMap<String, String>, code: &str) -> String {
    names.get(code).cloned().unwrap_or_else(|| code.to_string())
}

/// A refusal as a small page in the office frame.
#[derive(Template)]
#[template(path = "clerk_refused.html")]
pub(super) struct RefusedPage {
    pub lang: Lang,
    pub t: &'static Texts,
    pub chrome: Chrome,
    pub title: &'static str,
    pub error: String,
}

pub(super) fn refused(
    ctx: PageCtx,
    title: &'static str,
    status: StatusCode,
    error: String,
) -> Response {
    let page = RefusedPage {
        lang: ctx.lang,
        t: ctx.lang.texts(),
        chrome: ctx.chrome,
        title,
        error,
    };
    render(status, ctx.lang, None, &page)
}

// --- the page ------------------------------------------------------------------

pub struct ClerkTexts {
    pub title: &'static str,
    pub items: &'static str,
    pub direction: &'static str,
    pub sent: &'static str,
    pub received: &'static str,
    pub kind: &'static str,
    pub counterpart: &'static str,
    pub state: &'static str,
    pub progress: &'static str,
    pub due: &'static str,
    pub urgency: &'static str,
    pub holder: &'static str,
    pub claimed: &'static str,
    pub assigned: &'static str,
    pub overdue: &'static str,
    pub overdue_count: &'static str,
    pub no_items: &'static str,
    pub step_sent: &'static str,
    pub step_delivered: &'static str,
    pub step_opened: &'static str,
    pub step_claimed: &'static str,
    pub step_assigned: &'static str,
    pub step_accepted: &'static str,
    pub step_closed: &'static str,
    pub shared_inbox: &'static str,
    pub shared_inbox_role: &'static str,
    pub open_item: &'static str,
    pub usage: &'static str,
    pub account: &'static str,
    pub role: &'static str,
    pub last_sign_in: &'static str,
    pub sent_count: &'static str,
    pub received_count: &'static str,
    pub unopened: &'static str,
    pub overdue_items: &'static str,
    pub never: &'static str,
    pub readings: &'static str,
    pub month: &'static str,
    pub show: &'static str,
    pub reader: &'static str,
    pub facility: &'static str,
    pub reports: &'static str,
    pub total: &'static str,
    pub no_readings: &'static str,
    pub previous_month: &'static str,
    pub next_month: &'static str,
    pub csv: &'static str,
    pub read_only: &'static str,
    pub only_office: &'static str,
}

const JA: ClerkTexts = ClerkTexts {
    title: "施設の進捗",
    items: "施設のすべての依頼",
    direction: "送受信",
    sent: "送信",
    received: "受信",
    kind: "種別",
    counterpart: "相手施設",
    state: "状態",
    progress: "進捗",
    due: "期限",
    urgency: "緊急度",
    holder: "担当",
    claimed: "受付担当",
    assigned: "担当医",
    overdue: "期限超過",
    overdue_count: "期限超過の件数",
    no_items: "まだ依頼はありません。",
    step_sent: "送信",
    step_delivered: "受信",
    step_opened: "開封",
    step_claimed: "受付",
    step_assigned: "割当",
    step_accepted: "受付",
    step_closed: "完了",
    shared_inbox: "地域連携室（共有受信箱）",
    shared_inbox_role: "共有受信箱",
    open_item: "開く",
    usage: "アカウント別の利用状況",
    account: "アカウント",
    role: "役割",
    last_sign_in: "最終ログイン",
    sent_count: "送信数",
    received_count: "受信数",
    unopened: "未開封",
    overdue_items: "期限超過",
    never: "なし",
    readings: "月別の読影件数",
    month: "集計月",
    show: "表示",
    reader: "読影医",
    facility: "施設",
    reports: "レポート件数",
    total: "合計",
    no_readings: "この月の読影レポートはありません。",
    previous_month: "前の月",
    next_month: "次の月",
    csv: "CSV をダウンロード",
    read_only: "この画面は閲覧専用です。依頼の内容や状態は変更できません。",
    only_office: "この画面は事務員と地域連携室の担当者のみ利用できます。",
};

const EN: ClerkTexts = ClerkTexts {
    title: "Facility progress",
    items: "Every item of the facility",
    direction: "Direction",
    sent: "Sent",
    received: "Received",
    kind: "Kind",
    counterpart: "Counterpart facility",
    state: "State",
    progress: "Progress",
    due: "Due",
    urgency: "Urgency",
    holder: "Held by",
    claimed: "Claimed by",
    assigned: "Assigned to",
    overdue: "Overdue",
    overdue_count: "Overdue items",
    no_items: "No items yet.",
    step_sent: "Sent",
    step_delivered: "Delivered",
    step_opened: "Opened",
    step_claimed: "Taken in",
    step_assigned: "Assigned",
    step_accepted: "Accepted",
    step_closed: "Closed",
    shared_inbox: "Liaison office (shared inbox)",
    shared_inbox_role: "Shared inbox",
    open_item: "Open",
    usage: "Usage per account",
    account: "Account",
    role: "Role",
    last_sign_in: "Last sign-in",
    sent_count: "Sent",
    received_count: "Received",
    unopened: "Unopened",
    overdue_items: "Overdue",
    never: "never",
    readings: "Reading reports by month",
    month: "Month",
    show: "Show",
    reader: "Reading doctor",
    facility: "Facility",
    reports: "Reports",
    total: "Total",
    no_readings: "No reading reports in this month.",
    previous_month: "Previous month",
    next_month: "Next month",
    csv: "Download CSV",
    read_only: "This page is read-only: no item can be changed here.",
    only_office: "This page is for clerks and liaison offices.",
};

pub(super) fn texts(lang: Lang) -> &'static ClerkTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

/// One milestone of an item's progress: reached (with its time, when known).
pub struct Milestone {
    pub label: &'static str,
    pub done: bool,
    pub at: Option<String>,
}

impl Milestone {
    fn at(label: &'static str, at: Option<i64>) -> Self {
        Self {
            label,
            done: at.is_some(),
            at: at.map(format_jst_minutes_millis),
        }
    }

    fn reached(label: &'static str, done: bool) -> Self {
        Self {
            label,
            done,
            at: None,
        }
    }
}

/// Sent, delivered, opened; for a shared-inbox item taken in (受付) and
/// assigned (割当), for one addressed to a doctor accepted (受付); closed.
fn milestones(x: &ClerkTexts, t: &Thread) -> Vec<Milestone> {
    let state = ThreadState::parse(&t.state);
    let past_accept = !matches!(
        state,
        None | Some(ThreadState::Sent | ThreadState::Delivered | ThreadState::Opened)
    );
    let mut steps = vec![
        Milestone::at(x.step_sent, Some(t.created_at)),
        Milestone::at(x.step_delivered, t.delivered_at),
        Milestone::at(x.step_opened, t.opened_at),
    ];
    if t.target.starts_with("liaison:") {
        steps.push(Milestone::reached(
            x.step_claimed,
            t.claimed_by.is_some() || t.assignee_id.is_some() || past_accept,
        ));
        steps.push(Milestone::reached(x.step_assigned, t.assignee_id.is_some()));
    } else {
        steps.push(Milestone::reached(x.step_accepted, past_accept));
    }
    steps.push(Milestone::at(x.step_closed, t.closed_at));
    steps
}

pub struct ItemLine {
    pub id: String,
    pub sent: bool,
    pub kind: &'static str,
    pub counterpart: String,
    pub state: &'static str,
    pub progress: Vec<Milestone>,
    pub due: Option<String>,
    pub overdue: bool,
    pub urgent: bool,
    pub urgency: &'static str,
    pub claimed_by: Option<String>,
    pub assignee: Option<String>,
}

pub struct UsageLine {
    pub account: String,
    pub name: String,
    pub role: &'static str,
    pub last_sign_in: Option<String>,
    /// The facility's shared liaison inbox, not a person.
    pub shared: bool,
    pub sent: i64,
    pub received: i64,
    pub unopened: i64,
    pub overdue: i64,
}

pub struct ReadingLine {
    pub reader: String,
    pub facility: String,
    pub reports: i64,
}

#[derive(Template)]
#[template(path = "clerk.html")]
struct ClerkPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static ClerkTexts,
    items: Vec<ItemLine>,
    overdue_count: usize,
    /// `None` for liaisons: usage figures are the clerks'.
    usage: Option<Vec<UsageLine>>,
    month: String,
    previous_month: String,
    next_month: String,
    readings: Vec<ReadingLine>,
    readings_total: i64,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct ClerkQuery {
    #[serde(default)]
    month: Option<String>,
}

fn month_of(d: NaiveDate) -> String {
    d.format("%Y-%m").to_string()
}

/// The months before and after `month` (YYYY-MM), if it is one.
fn neighbours(month: &str) -> Option<(String, String)> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    let previous = first.pred_opt()?;
    let next = first.checked_add_months(chrono::Months::new(1))?;
    debug_assert_eq!(next.day(), 1);
    Some((month_of(previous), month_of(next)))
}

/// One thread of the facility with its milestones.
fn item_line(
    lang: Lang,
    own: &str,
    names: &HashMap<String, String>,
    people: &HashMap<String, (String, Role)>,
    t: &Thread,
) -> ItemLine {
    let x = texts(lang);
    let sent = t.requester_facility.as_deref() == Some(own) && t.target_facility != own;
    let counterpart = if sent {
        facility(names, &t.target_facility)
    } else {
        t.requester_facility
            .as_deref()
            .map(|c| facility(names, c))
            .unwrap_or_default()
    };
    ItemLine {
        id: t.id.clone(),
        sent,
        kind: kind_label(lang, &t.kind),
        counterpart,
        state: state_label(lang, &t.state),
        progress: milestones(x, t),
        due: t.wanted_by.clone(),
        overdue: is_overdue(t),
        urgent: t.urgency == "urgent",
        urgency: urgency_label(lang, &t.urgency),
        claimed_by: t.claimed_by.as_deref().map(|id| person(people, id)),
        assignee: t.assignee_id.as_deref().map(|id| person(people, id)),
    }
}

/// One account's use of the system, for the clerk.
fn usage_line(lang: Lang, people: &HashMap<String, (String, Role)>, u: Usage) -> UsageLine {
    if let Some(code) = u.account_id.strip_prefix("liaison:") {
        let x = texts(lang);
        return UsageLine {
            account: format!("liaison:{code}"),
            name: x.shared_inbox.to_string(),
            role: x.shared_inbox_role,
            last_sign_in: None,
            shared: true,
            sent: u.sent,
            received: u.received,
            unopened: u.unopened,
            overdue: u.overdue,
        };
    }
    let (name, role) = people
        .get(&u.account_id)
        .map_or((u.account_id.clone(), None), |(n, r)| (n.clone(), Some(*r)));
    UsageLine {
        account: mailbox::AccountId::parse(&u.account_id)
            .map_or_else(|_| u.account_id.clone(), |id| id.display_grouped()),
        name,
        role: match (lang, role) {
            (_, None) => "",
            (Lang::Ja, Some(r)) => r.label_ja(),
            (Lang::En, Some(r)) => r.as_str(),
        },
        last_sign_in: u.last_sign_in_at.map(format_jst_minutes_millis),
        shared: false,
        sent: u.sent,
        received: u.received,
        unopened: u.unopened,
        overdue: u.overdue,
    }
}

/// `GET /clerk[?month=2026-11]`
pub async fn page(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    RawQuery(raw): RawQuery,
    Query(q): Query<ClerkQuery>,
) -> Response {
    let lang = ctx.lang;
    let x = texts(lang);
    let account = ctx.session.account.clone();
    let (Role::Clerk | Role::Liaison, Some(code)) = (account.role, account.facility.clone()) else {
        return refused(ctx, x.title, StatusCode::FORBIDDEN, x.only_office.into());
    };
    let own = code.to_string();
    let month = q
        .month
        .filter(|m| !m.trim().is_empty())
        .map(|m| m.trim().to_string())
        .unwrap_or_else(|| month_of(today_jst()));
    let names = facility_names(&state).await;
    let people = people_of(&state, &code).await;
    let mut error = None;

    let rows = match state.threads.facility_overview(&ctx.session).await {
        Ok(r) => r,
        Err(e) => return refused(ctx, x.title, status_of(e.kind()), message(lang, &e)),
    };
    let items: Vec<ItemLine> = rows
        .iter()
        .map(|t| item_line(lang, &own, &names, &people, t))
        .collect();
    let overdue_count = items.iter().filter(|i| i.overdue).count();

    let usage = if account.role == Role::Clerk {
        match state.threads.usage(&ctx.session).await {
            Ok(rows) => Some(
                rows.into_iter()
                    .map(|u| usage_line(lang, &people, u))
                    .collect(),
            ),
            Err(e) => {
                error = Some(message(lang, &e));
                None
            }
        }
    } else {
        None
    };

    let (readings, status) = match state.threads.reading_stats(&ctx.session, &month).await {
        Ok(rows) => (
            rows.into_iter()
                .map(|r| ReadingLine {
                    reader: person(&people, &r.reader_id),
                    facility: facility(&names, &r.facility_code),
                    reports: r.reports,
                })
                .collect::<Vec<_>>(),
            StatusCode::OK,
        ),
        Err(e) => {
            error = Some(message(lang, &e));
            (Vec::new(), status_of(e.kind()))
        }
    };
    let (previous_month, next_month) = neighbours(&month).unwrap_or_default();
    let page = ClerkPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        x,
        readings_total: readings.iter().map(|r| r.reports).sum(),
        items,
        overdue_count,
        usage,
        month,
        previous_month,
        next_month,
        readings,
        error,
    };
    render(status, lang, raw.as_deref(), &page)
}
