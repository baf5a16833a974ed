//! Pages: a person's folders (`/mail/inbox`, `/mail/sent`, `/mail/archive`)
//! with the Inbox's unread count, filters by kind and state, paging, read /
//! unread and archive flags, and search (`/mail/search`).
//!
//! A folder page is rendered from clear metadata with one indexed query
//! (`Postroom::folder_page`): nothing is decrypted to list it, so subjects
//! (sealed) are shown in the thread view only. Search needs the content, so
//! it decrypts; its text is patient data and therefore only ever POSTed.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mailbox::clock::{format_jst_minutes_millis, today_jst};
use mailbox::postroom::listing::{FolderFilter, FolderPage, ListedItem, MailFolder};
use mailbox::workflow::{ThreadKind, ThreadState};
use mailbox::{Error, Role};
use serde::Deserialize;

use super::labels::{kind_label, state_label, step_label, urgency_label};
use super::{Chrome, PageCtx, PageSession, message, render};
use crate::AppState;
use crate::http::error::status_of;
use crate::i18n::{Lang, Texts};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mail/inbox", get(inbox))
        .route("/mail/sent", get(sent))
        .route("/mail/archive", get(archive))
        .route("/mail/search", get(search_form).post(search))
        .route("/mail/items/{id}/flags", post(flags))
}

/// Items per page.
const PER_PAGE: u32 = 50;
/// Search results shown at most.
const SEARCH_LIMIT: usize = 200;

pub struct MailTexts {
    pub inbox: &'static str,
    pub sent: &'static str,
    pub archive: &'static str,
    pub search: &'static str,
    pub unread: &'static str,
    pub kind: &'static str,
    pub state: &'static str,
    pub all: &'static str,
    pub filter_button: &'static str,
    pub counterpart: &'static str,
    pub due: &'static str,
    pub urgency: &'static str,
    pub received_at: &'static str,
    pub item: &'static str,
    pub overdue: &'static str,
    pub failed: &'static str,
    pub empty: &'static str,
    pub newer: &'static str,
    pub older: &'static str,
    pub page: &'static str,
    pub archive_button: &'static str,
    pub unarchive_button: &'static str,
    pub mark_read: &'static str,
    pub mark_unread: &'static str,
    pub search_label: &'static str,
    pub search_hint: &'static str,
    pub search_button: &'static str,
    pub found: &'static str,
    pub not_found: &'static str,
    pub sent_mark: &'static str,
}

static JA: MailTexts = MailTexts {
    inbox: "受信箱",
    sent: "送信済み",
    archive: "アーカイブ",
    search: "検索",
    unread: "未読",
    kind: "種別",
    state: "状態",
    all: "すべて",
    filter_button: "絞り込む",
    counterpart: "相手施設",
    due: "希望期日",
    urgency: "緊急度",
    received_at: "日時",
    item: "内容",
    overdue: "期日超過",
    failed: "配送できませんでした",
    empty: "該当する項目はありません。",
    newer: "← 新しい項目",
    older: "古い項目 →",
    page: "ページ",
    archive_button: "アーカイブ",
    unarchive_button: "受信箱へ戻す",
    mark_read: "既読にする",
    mark_unread: "未読にする",
    search_label: "検索語",
    search_hint: "件名・本文・記入項目・患者・添付ファイル名から探します（閲覧できる項目のみ）。",
    search_button: "検索",
    found: "件見つかりました",
    not_found: "見つかりませんでした。",
    sent_mark: "送信",
};

static EN: MailTexts = MailTexts {
    inbox: "Inbox",
    sent: "Sent",
    archive: "Archive",
    search: "Search",
    unread: "unread",
    kind: "Kind",
    state: "State",
    all: "All",
    filter_button: "Filter",
    counterpart: "Facility",
    due: "Wanted by",
    urgency: "Urgency",
    received_at: "Date",
    item: "Item",
    overdue: "overdue",
    failed: "could not be delivered",
    empty: "Nothing here.",
    newer: "← Newer",
    older: "Older →",
    page: "Page",
    archive_button: "Archive",
    unarchive_button: "Back to inbox",
    mark_read: "Mark read",
    mark_unread: "Mark unread",
    search_label: "Search for",
    search_hint: "Looks in subjects, text, form fields, patients and attachment names of the items you can read.",
    search_button: "Search",
    found: "found",
    not_found: "Nothing found.",
    sent_mark: "sent",
};

fn texts(lang: Lang) -> &'static MailTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

/// One line of a folder as shown.
pub struct ItemLine {
    pub id: String,
    pub href: String,
    pub label: &'static str,
    pub kind: &'static str,
    pub counterpart: String,
    pub state: &'static str,
    pub wanted_by: String,
    pub overdue: bool,
    pub urgency: &'static str,
    pub urgent: bool,
    pub at: String,
    pub unread: bool,
    pub archived: bool,
    pub received: bool,
    pub failed: bool,
}

fn line(lang: Lang, today: &str, r: ListedItem) -> ItemLine {
    let href = match &r.thread_id {
        Some(t) => format!("/threads/{t}"),
        None => format!("/items/{}", r.envelope_id),
    };
    let wanted_by = r.wanted_by.clone().unwrap_or_default();
    ItemLine {
        overdue: r.closed_at.is_none() && !wanted_by.is_empty() && wanted_by.as_str() < today,
        label: step_label(lang, &r.kind, r.step.as_deref()),
        kind: kind_label(lang, &r.kind),
        counterpart: match (&r.counterpart_name, &r.counterpart_facility) {
            (Some(name), _) => name.clone(),
            (None, Some(code)) => code.clone(),
            (None, None) => String::new(),
        },
        state: item_state(lang, &r),
        urgency: r.urgency.as_deref().map_or("", |u| urgency_label(lang, u)),
        urgent: r.urgency.as_deref() == Some("urgent"),
        at: format_jst_minutes_millis(r.delivered_at),
        unread: !r.seen,
        archived: r.archived,
        received: r.received,
        failed: r.delivery_state.as_deref() == Some("failed"),
        wanted_by,
        href,
        id: r.envelope_id,
    }
}

/// A thread's state; for an item outside any thread, what its entry says:
/// opened or not (received), delivered, pending or failed (sent).
fn item_state(lang: Lang, r: &ListedItem) -> &'static str {
    if let Some(s) = r.thread_state.as_deref() {
        return state_label(lang, s);
    }
    let state = match (r.received, r.delivery_state.as_deref()) {
        (true, _) if r.seen => "opened",
        (true, _) => "delivered",
        (false, Some("failed")) => return texts(lang).failed,
        (false, Some("done")) => "delivered",
        (false, _) => "sent",
    };
    state_label(lang, state)
}

/// The unread count as a badge says it.
pub(super) fn unread_label(n: i64) -> String {
    if n >= mailbox::postroom::listing::UNREAD_CAP {
        format!("{}+", mailbox::postroom::listing::UNREAD_CAP - 1)
    } else {
        n.to_string()
    }
}

/// A folder tab.
pub struct Tab {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
    pub id: &'static str,
}

fn tabs(lang: Lang, current: &str) -> Vec<Tab> {
    let m = texts(lang);
    [
        ("/mail/inbox", m.inbox, "inbox", "tab-inbox"),
        ("/mail/sent", m.sent, "sent", "tab-sent"),
        ("/mail/archive", m.archive, "archive", "tab-archive"),
        ("/mail/search", m.search, "search", "tab-search"),
    ]
    .into_iter()
    .map(|(href, label, key, id)| Tab {
        href,
        label,
        current: key == current,
        id,
    })
    .collect()
}

/// A choice in a filter.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "mail_folder.html")]
struct FolderView {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    m: &'static MailTexts,
    title: &'static str,
    folder: &'static str,
    tabs: Vec<Tab>,
    unread: i64,
    unread_label: String,
    kinds: Vec<Choice>,
    states: Vec<Choice>,
    items: Vec<ItemLine>,
    error: Option<String>,
    page: u32,
    newer_href: Option<String>,
    older_href: Option<String>,
}

/// The GET parameters of a folder page: none of them patient data.
#[derive(Deserialize, Default)]
struct FolderQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    page: String,
}

impl FolderQuery {
    fn from_query(query: Option<&str>) -> Self {
        serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default()
    }

    fn filter(&self) -> Result<FolderFilter, Error> {
        let kind = match self.kind.as_str() {
            "" => None,
            k => Some(ThreadKind::parse(k)?),
        };
        let state = match self.state.as_str() {
            "" => None,
            s => Some(ThreadState::parse(s).ok_or_else(|| {
                Error::invalid(
                    "state",
                    format!("unknown state {s:?}"),
                    "状態の指定が正しくありません。",
                )
            })?),
        };
        Ok(FolderFilter { kind, state })
    }

    fn page(&self) -> u32 {
        self.page.parse().unwrap_or(1).max(1)
    }

    /// The link to another page with the same filters.
    fn href(&self, folder: &str, page: u32) -> String {
        let mut pairs = Vec::new();
        if !self.kind.is_empty() {
            pairs.push(("kind", self.kind.clone()));
        }
        if !self.state.is_empty() {
            pairs.push(("state", self.state.clone()));
        }
        pairs.push(("page", page.to_string()));
        format!(
            "/mail/{folder}?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

const STATES: [ThreadState; 10] = [
    ThreadState::Delivered,
    ThreadState::Opened,
    ThreadState::Accepted,
    ThreadState::Reported,
    ThreadState::Replied,
    ThreadState::Declined,
    ThreadState::Withdrawn,
    ThreadState::Acknowledged,
    ThreadState::Confirmed,
    ThreadState::Proposed,
];

fn kind_choices(lang: Lang, selected: &str) -> Vec<Choice> {
    ThreadKind::ALL
        .iter()
        .map(|k| Choice {
            value: k.as_str(),
            label: kind_label(lang, k.as_str()),
            selected: k.as_str() == selected,
        })
        .collect()
}

fn state_choices(lang: Lang, selected: &str) -> Vec<Choice> {
    STATES
        .iter()
        .map(|s| Choice {
            value: s.as_str(),
            label: state_label(lang, s.as_str()),
            selected: s.as_str() == selected,
        })
        .collect()
}

async fn inbox(state: State<AppState>, page: PageSession, query: RawQuery) -> Response {
    folder(state, page, query, MailFolder::Inbox).await
}

async fn sent(state: State<AppState>, page: PageSession, query: RawQuery) -> Response {
    folder(state, page, query, MailFolder::Sent).await
}

async fn archive(state: State<AppState>, page: PageSession, query: RawQuery) -> Response {
    folder(state, page, query, MailFolder::Archive).await
}

/// The personal folders belong to people who receive items in their own name.
fn personal_mail(ctx: &PageCtx) -> Result<(), Error> {
    match ctx.session.account.role {
        Role::Doctor | Role::Liaison => Ok(()),
        Role::Clerk | Role::Operator => Err(Error::Forbidden),
    }
}

async fn folder(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    RawQuery(query): RawQuery,
    which: MailFolder,
) -> Response {
    let lang = ctx.lang;
    let m = texts(lang);
    let q = FolderQuery::from_query(query.as_deref());
    let page_no = q.page();
    let loaded = async {
        personal_mail(&ctx)?;
        let filter = q.filter()?;
        // One statement: the page and the Inbox's unread count.
        let page = state
            .postroom
            .folder_page(&ctx.session, which, filter, page_no, PER_PAGE)
            .await?;
        let unread = page.unread;
        Ok::<(FolderPage, i64), Error>((page, unread))
    }
    .await;
    let (status, error, page, unread) = match loaded {
        Ok((p, u)) => (StatusCode::OK, None, Some(p), u),
        Err(e) => (status_of(e.kind()), Some(message(lang, &e)), None, 0),
    };
    let today = today_jst().to_string();
    let name = which.as_str();
    let view = FolderView {
        lang,
        t: lang.texts(),
        m,
        title: match which {
            MailFolder::Inbox => m.inbox,
            MailFolder::Sent => m.sent,
            MailFolder::Archive => m.archive,
        },
        folder: name,
        tabs: tabs(lang, name),
        unread,
        unread_label: unread_label(unread),
        kinds: kind_choices(lang, &q.kind),
        states: state_choices(lang, &q.state),
        newer_href: (page_no > 1).then(|| q.href(name, page_no - 1)),
        older_href: page
            .as_ref()
            .is_some_and(|p| p.has_more)
            .then(|| q.href(name, page_no + 1)),
        items: page
            .map(|p| p.rows.into_iter().map(|r| line(lang, &today, r)).collect())
            .unwrap_or_default(),
        page: page_no,
        error,
        chrome: ctx.chrome,
    };
    render(status, lang, query.as_deref(), &view)
}

#[derive(Template)]
#[template(path = "mail_search.html")]
struct SearchView {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    m: &'static MailTexts,
    tabs: Vec<Tab>,
    unread: i64,
    unread_label: String,
    q: String,
    searched: bool,
    items: Vec<ItemLine>,
    error: Option<String>,
    folder: &'static str,
}

/// `GET /mail/search` — the form only; the text is posted, never in the URL.
async fn search_form(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    RawQuery(query): RawQuery,
) -> Response {
    search_page(&state, ctx, String::new(), None, query.as_deref()).await
}

#[derive(Deserialize)]
struct SearchForm {
    #[serde(default)]
    q: String,
}

/// `POST /mail/search`
async fn search(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Form(form): Form<SearchForm>,
) -> Response {
    let found = match personal_mail(&ctx) {
        Ok(()) => {
            state
                .postroom
                .search(&ctx.session, &form.q, SEARCH_LIMIT)
                .await
        }
        Err(e) => Err(e),
    };
    search_page(&state, ctx, form.q, Some(found), None).await
}

async fn search_page(
    state: &AppState,
    ctx: PageCtx,
    q: String,
    found: Option<Result<Vec<ListedItem>, Error>>,
    query: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let unread = state
        .postroom
        .unread_in_inbox(&ctx.session)
        .await
        .unwrap_or(0);
    let today = today_jst().to_string();
    let (status, error, items, searched) = match found {
        None => (StatusCode::OK, None, Vec::new(), false),
        Some(Ok(rows)) => (
            StatusCode::OK,
            None,
            rows.into_iter().map(|r| line(lang, &today, r)).collect(),
            true,
        ),
        Some(Err(e)) => (
            status_of(e.kind()),
            Some(message(lang, &e)),
            Vec::new(),
            false,
        ),
    };
    let view = SearchView {
        lang,
        t: lang.texts(),
        m: texts(lang),
        tabs: tabs(lang, "search"),
        unread,
        unread_label: unread_label(unread),
        q,
        searched,
        items,
        error,
        folder: "search",
        chrome: ctx.chrome,
    };
    render(status, lang, query, &view)
}

#[derive(Deserialize)]
struct FlagsForm {
    action: String,
    /// Where to return: a folder name and its filters (validated below).
    #[serde(default)]
    folder: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    page: String,
}

/// `POST /mail/items/{id}/flags` — archive / unarchive, read / unread; back to
/// the folder page the form was on.
async fn flags(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    Form(form): Form<FlagsForm>,
) -> Response {
    let (seen, archived) = match form.action.as_str() {
        "archive" => (None, Some(true)),
        "unarchive" => (None, Some(false)),
        "read" => (Some(true), None),
        "unread" => (Some(false), None),
        _ => (None, None),
    };
    let result = if seen.is_none() && archived.is_none() {
        Err(Error::invalid(
            "action",
            "action must be archive, unarchive, read or unread",
            "操作の指定が正しくありません。",
        ))
    } else {
        state
            .postroom
            .set_flags(&ctx.session, &id, seen, None, archived)
            .await
    };
    if let Err(e) = result {
        let lang = ctx.lang;
        let view = FolderView {
            lang,
            t: lang.texts(),
            m: texts(lang),
            title: texts(lang).inbox,
            folder: "inbox",
            tabs: tabs(lang, "inbox"),
            unread: 0,
            unread_label: String::new(),
            kinds: kind_choices(lang, ""),
            states: state_choices(lang, ""),
            items: Vec::new(),
            error: Some(message(lang, &e)),
            page: 1,
            newer_href: None,
            older_href: None,
            chrome: ctx.chrome,
        };
        return render(status_of(e.kind()), lang, None, &view);
    }
    let folder = MailFolder::parse(&form.folder).map_or("inbox", MailFolder::as_str);
    let back = FolderQuery {
        kind: form.kind,
        state: form.state,
        page: form.page,
    };
    let back = match back.filter() {
        Ok(_) => back.href(folder, back.page()),
        Err(_) => format!("/mail/{folder}"),
    };
    Redirect::to(&back).into_response()
}
