//! The liaison office's shared inbox (`/liaison`): every item addressed to the
//! facility's liaison inbox with who holds it; claim, release, assign to a
//! doctor of the facility, unassign — through `Threads`, like the API.
//!
//! Anyone but a liaison gets a 403 page before the service is asked (which
//! would refuse too).

use askama::Template;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mailbox::workflow::ThreadState;
use mailbox::{AccountId, Error, Role};
use serde::Deserialize;

use super::clerk::{
    facility, facility_names, is_overdue, kind_label, people_of, person, refused, state_label,
    urgency_label,
};
use super::{Chrome, PageCtx, PageSession, message, render};
use crate::AppState;
use crate::http::error::status_of;
use crate::i18n::{Lang, Texts};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/liaison", get(page))
        .route("/liaison/{id}/claim", post(claim))
        .route("/liaison/{id}/release", post(release))
        .route("/liaison/{id}/assign", post(assign))
        .route("/liaison/{id}/unassign", post(unassign))
}

pub struct LiaisonTexts {
    title: &'static str,
    intro: &'static str,
    handing: &'static str,
    open_only: &'static str,
    all: &'static str,
    kind: &'static str,
    counterpart: &'static str,
    state: &'static str,
    due: &'static str,
    urgency: &'static str,
    holder: &'static str,
    actions: &'static str,
    claimed: &'static str,
    assigned: &'static str,
    state_claimed: &'static str,
    state_assigned: &'static str,
    nobody: &'static str,
    overdue: &'static str,
    claim: &'static str,
    release: &'static str,
    assign: &'static str,
    unassign: &'static str,
    doctor: &'static str,
    choose_doctor: &'static str,
    received: &'static str,
    empty: &'static str,
    no_doctors: &'static str,
    done_claim: &'static str,
    done_release: &'static str,
    done_assign: &'static str,
    done_unassign: &'static str,
    only_liaison: &'static str,
    pick_doctor: &'static str,
}

const JA: LiaisonTexts = LiaisonTexts {
    title: "連携室受信箱",
    intro: "施設の地域連携室宛てに届いた依頼です。受け付けて、担当医に割り当ててください。",
    handing: "依頼を医師に任せるには「割り当て」を使います。割り当てた医師が担当医となり、受付・返書などの操作を行います（「転送」は医師が同僚に閲覧してもらうためのもので、担当は変わりません）。",
    open_only: "対応中のみ",
    all: "すべて",
    kind: "種別",
    counterpart: "依頼元施設",
    state: "状態",
    due: "期限",
    urgency: "緊急度",
    holder: "担当",
    actions: "操作",
    claimed: "受付担当",
    assigned: "担当医",
    state_claimed: "受付済み",
    state_assigned: "割当済み",
    nobody: "未割り当て",
    overdue: "期限超過",
    claim: "受け付ける",
    release: "受付を解除",
    assign: "割り当て",
    unassign: "割り当て解除",
    doctor: "担当医",
    choose_doctor: "医師を選択",
    received: "受信日時",
    empty: "連携室宛ての依頼はありません。",
    no_doctors: "この施設には割り当てられる医師がいません。",
    done_claim: "受け付けました。",
    done_release: "受付を解除しました。",
    done_assign: "担当医に割り当てました。",
    done_unassign: "割り当てを解除しました。",
    only_liaison: "この画面は地域連携室の担当者のみ利用できます。",
    pick_doctor: "割り当てる医師を選んでください。",
};

const EN: LiaisonTexts = LiaisonTexts {
    title: "Liaison inbox",
    intro: "Items addressed to the facility's liaison office. Claim them and assign them to a doctor.",
    handing: "To hand a request to a doctor, assign it: that doctor is then in charge and takes its steps (accept, reply, …). Forwarding is how a doctor lets a colleague read an item; it hands nothing over.",
    open_only: "Open items",
    all: "All",
    kind: "Kind",
    counterpart: "From facility",
    state: "State",
    due: "Due",
    urgency: "Urgency",
    holder: "Held by",
    actions: "Actions",
    claimed: "Claimed by",
    assigned: "Assigned to",
    state_claimed: "Claimed",
    state_assigned: "Assigned",
    nobody: "Not assigned",
    overdue: "Overdue",
    claim: "Claim",
    release: "Release",
    assign: "Assign",
    unassign: "Unassign",
    doctor: "Doctor",
    choose_doctor: "Choose a doctor",
    received: "Received",
    empty: "No items addressed to the liaison office.",
    no_doctors: "This facility has no doctor to assign.",
    done_claim: "Claimed.",
    done_release: "Released.",
    done_assign: "Assigned to the doctor.",
    done_unassign: "Unassigned.",
    only_liaison: "This page is for the liaison office.",
    pick_doctor: "Choose the doctor to assign.",
};

/// What the office sees of an open item: assigned, claimed, or the thread's
/// own state until then (and once the doctor has taken it further).
fn office_state(x: &LiaisonTexts, t: &mailbox::threads::Thread, lang: Lang) -> &'static str {
    let early = matches!(
        ThreadState::parse(&t.state),
        Some(ThreadState::Sent | ThreadState::Delivered | ThreadState::Opened)
    );
    match (
        early && t.closed_at.is_none(),
        &t.assignee_id,
        &t.claimed_by,
    ) {
        (true, Some(_), _) => x.state_assigned,
        (true, None, Some(_)) => x.state_claimed,
        _ => state_label(lang, &t.state),
    }
}

fn texts(lang: Lang) -> &'static LiaisonTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

pub struct Doctor {
    id: String,
    name: String,
}

pub struct Line {
    id: String,
    kind: &'static str,
    counterpart: String,
    state: &'static str,
    received: String,
    due: Option<String>,
    overdue: bool,
    urgent: bool,
    urgency: &'static str,
    claimed_by: Option<String>,
    assignee_id: Option<String>,
    assignee: Option<String>,
    open: bool,
}

#[derive(Template)]
#[template(path = "liaison.html")]
struct LiaisonPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static LiaisonTexts,
    show_all: bool,
    lines: Vec<Line>,
    doctors: Vec<Doctor>,
    done: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct LiaisonQuery {
    #[serde(default)]
    show: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// `GET /liaison[?show=all]`
pub async fn page(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    RawQuery(raw): RawQuery,
    Query(q): Query<LiaisonQuery>,
) -> Response {
    let x = texts(ctx.lang);
    let done = match q.done.as_deref() {
        Some("claim") => Some(x.done_claim),
        Some("release") => Some(x.done_release),
        Some("assign") => Some(x.done_assign),
        Some("unassign") => Some(x.done_unassign),
        _ => None,
    };
    let show_all = q.show.as_deref() == Some("all");
    inbox(&state, ctx, raw.as_deref(), show_all, done, None).await
}

/// The inbox page, with a notice or an error of the action just taken.
async fn inbox(
    state: &AppState,
    ctx: PageCtx,
    raw: Option<&str>,
    show_all: bool,
    done: Option<&'static str>,
    failed: Option<Error>,
) -> Response {
    let lang = ctx.lang;
    let x = texts(lang);
    let me = ctx.session.account.clone();
    let (Role::Liaison, Some(code)) = (me.role, me.facility.clone()) else {
        return refused(ctx, x.title, StatusCode::FORBIDDEN, x.only_liaison.into());
    };
    let rows = match state.threads.facility_overview(&ctx.session).await {
        Ok(r) => r,
        Err(e) => return refused(ctx, x.title, status_of(e.kind()), message(lang, &e)),
    };
    let inbox_key = format!("liaison:{code}");
    let names = facility_names(state).await;
    let people = people_of(state, &code).await;
    let mut doctors: Vec<Doctor> = match state.directory.accounts(Some(&code)).await {
        Ok(list) => list
            .into_iter()
            .filter(|a| a.role == Role::Doctor && !a.removed && !a.locked)
            .map(|a| Doctor {
                id: a.id.display_grouped(),
                name: a.name,
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "listing the facility's doctors failed");
            Vec::new()
        }
    };
    doctors.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let lines = rows
        .into_iter()
        .filter(|t| t.target == inbox_key)
        .filter(|t| show_all || t.closed_at.is_none())
        .map(|t| Line {
            kind: kind_label(lang, &t.kind),
            counterpart: t
                .requester_facility
                .as_deref()
                .map(|c| facility(&names, c))
                .unwrap_or_default(),
            state: office_state(x, &t, lang),
            received: mailbox::clock::format_jst_minutes_millis(
                t.delivered_at.unwrap_or(t.created_at),
            ),
            due: t.wanted_by.clone(),
            overdue: is_overdue(&t),
            urgent: t.urgency == "urgent",
            urgency: urgency_label(lang, &t.urgency),
            claimed_by: t.claimed_by.as_deref().map(|id| person(&people, id)),
            assignee_id: t
                .assignee_id
                .as_deref()
                .and_then(|id| AccountId::parse(id).ok())
                .map(|id| id.display_grouped()),
            assignee: t.assignee_id.as_deref().map(|id| person(&people, id)),
            open: t.closed_at.is_none(),
            id: t.id,
        })
        .collect();
    let status = failed
        .as_ref()
        .map_or(StatusCode::OK, |e| status_of(e.kind()));
    let page = LiaisonPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        x,
        show_all,
        lines,
        doctors,
        done,
        error: failed.map(|e| message(lang, &e)),
    };
    render(status, lang, raw, &page)
}

/// What an action on the shared inbox does.
enum Action {
    Claim,
    Release,
    Assign(AccountId),
    Unassign,
}

/// Takes the action; back to the inbox with its notice, or to the thread's
/// page when the form was there (`back_to_thread`).
async fn act(
    state: AppState,
    ctx: PageCtx,
    id: String,
    action: Result<Action, Error>,
    back_to_thread: bool,
) -> Response {
    let x = texts(ctx.lang);
    // Only the liaison office acts here; the service refuses everyone else too.
    if ctx.session.account.role != Role::Liaison {
        tracing::warn!(
            by = ctx.session.account.id.as_str(),
            thread = id,
            "refused a shared-inbox action by a non-liaison account"
        );
        return refused(ctx, x.title, StatusCode::FORBIDDEN, x.only_liaison.into());
    }
    let threads = &state.threads;
    let result = match action {
        Ok(Action::Claim) => threads.claim(&ctx.session, &id).await.map(|()| "claim"),
        Ok(Action::Release) => threads.release(&ctx.session, &id).await.map(|()| "release"),
        Ok(Action::Assign(doctor)) => threads
            .assign(&ctx.session, &id, &doctor)
            .await
            .map(|()| "assign"),
        Ok(Action::Unassign) => threads
            .unassign(&ctx.session, &id)
            .await
            .map(|()| "unassign"),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) if back_to_thread => Redirect::to(&format!("/threads/{id}?done=1")).into_response(),
        Ok(done) => Redirect::to(&format!("/liaison?done={done}")).into_response(),
        Err(e) => inbox(&state, ctx, None, false, None, Some(e)).await,
    }
}

/// `POST /liaison/{id}/claim`
pub async fn claim(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
) -> Response {
    act(state, ctx, id, Ok(Action::Claim), false).await
}

/// `POST /liaison/{id}/release`
pub async fn release(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
) -> Response {
    act(state, ctx, id, Ok(Action::Release), false).await
}

#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    doctor: String,
    /// `thread` when the form is on the thread's page: back there.
    #[serde(default)]
    back: String,
}

#[derive(Deserialize)]
pub struct BackForm {
    #[serde(default)]
    back: String,
}

/// `POST /liaison/{id}/assign` (form field `doctor`: an account ID)
pub async fn assign(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    Form(form): Form<AssignForm>,
) -> Response {
    let lang = ctx.lang;
    let doctor = if form.doctor.trim().is_empty() {
        Err(Error::invalid(
            "doctor",
            "choose the doctor to assign",
            texts(lang).pick_doctor,
        ))
    } else {
        AccountId::parse(&form.doctor)
    };
    let back = form.back == "thread";
    act(state, ctx, id, doctor.map(Action::Assign), back).await
}

/// `POST /liaison/{id}/unassign`
pub async fn unassign(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    Form(form): Form<BackForm>,
) -> Response {
    act(state, ctx, id, Ok(Action::Unassign), form.back == "thread").await
}
