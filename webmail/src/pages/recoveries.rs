//! A liaison's page of restorations (`/recoveries`): after the operator has
//! reset a colleague's password and the person has chosen their own, the
//! liaison — their facility's custodian, who can check the person face to face —
//! approves giving back the person's earlier keys. Through the directory, like
//! `GET /api/v1/recoveries` and `POST /api/v1/recoveries/{account}/approve`;
//! the person is told by mail.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mailbox::{AccountId, Error, Role};
use serde::Deserialize;

use super::clerk::refused;
use super::{Chrome, PageCtx, PageSession, message, render};
use crate::AppState;
use crate::api::v1::recoveries::approve_and_tell;
use crate::http::error::status_of;
use crate::i18n::{Lang, Texts};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/recoveries", get(page))
        .route("/recoveries/{account}/approve", post(approve))
}

pub struct RecoveryTexts {
    title: &'static str,
    intro: &'static str,
    person: &'static str,
    requested: &'static str,
    status: &'static str,
    ready: &'static str,
    waiting: &'static str,
    approve: &'static str,
    empty: &'static str,
    done: &'static str,
    only_liaison: &'static str,
}

static JA: RecoveryTexts = RecoveryTexts {
    title: "鍵の復元",
    intro: "ヘルプデスクがパスワードを再発行した職員の、以前の項目を開く鍵を復元します。\
        ご本人であることを対面で確認してから承認してください。承認できるのは、ご本人が発行された\
        パスワードでサインインし、自分のパスワードに変更した後です。署名の鍵は復元されません。",
    person: "職員",
    requested: "再発行日時",
    status: "状態",
    ready: "承認できます",
    waiting: "ご本人のパスワード変更待ち",
    approve: "本人を確認して承認",
    empty: "承認を待つ復元はありません。",
    done: "承認しました。次回のサインインから以前の項目が開けます。ご本人にメールでお知らせしました。",
    only_liaison: "この画面は地域連携室の職員のみ利用できます。",
};

static EN: RecoveryTexts = RecoveryTexts {
    title: "Key restoration",
    intro: "Restore the keys that open earlier items for a colleague whose password the help desk \
        reset. Check in person that it is them before approving. Approval is possible once they \
        have signed in with the issued password and chosen their own. Signing keys are never restored.",
    person: "Person",
    requested: "Reset at",
    status: "Status",
    ready: "Ready to approve",
    waiting: "Waiting for the person to change the password",
    approve: "Checked in person: approve",
    empty: "No restoration is waiting.",
    done: "Approved. Earlier items open from their next sign-in; they were told by mail.",
    only_liaison: "This page is for liaison office staff only.",
};

fn texts(lang: Lang) -> &'static RecoveryTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

struct Line {
    id: String,
    shown_id: String,
    name: String,
    requested: String,
    ready: bool,
}

#[derive(Template)]
#[template(path = "recoveries.html")]
struct RecoveriesPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static RecoveryTexts,
    lines: Vec<Line>,
    done: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /recoveries`
pub async fn page(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    RawQuery(raw): RawQuery,
    Query(q): Query<DoneQuery>,
) -> Response {
    let done = q.done.is_some().then_some(texts(ctx.lang).done);
    listing(&state, ctx, raw.as_deref(), done, None).await
}

async fn listing(
    state: &AppState,
    ctx: PageCtx,
    raw: Option<&str>,
    done: Option<&'static str>,
    failed: Option<Error>,
) -> Response {
    let lang = ctx.lang;
    let x = texts(lang);
    if ctx.session.account.role != Role::Liaison {
        return refused(ctx, x.title, StatusCode::FORBIDDEN, x.only_liaison.into());
    }
    let list = match state.directory.restorations(&ctx.session).await {
        Ok(l) => l,
        Err(e) => return refused(ctx, x.title, status_of(e.kind()), message(lang, &e)),
    };
    let lines = list
        .into_iter()
        .map(|r| Line {
            id: r.account.as_str().into(),
            shown_id: r.account.display_grouped(),
            name: r.name,
            requested: mailbox::clock::format_jst_minutes(r.requested_at),
            ready: r.ready,
        })
        .collect();
    let status = failed
        .as_ref()
        .map_or(StatusCode::OK, |e| status_of(e.kind()));
    let page = RecoveriesPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        x,
        lines,
        done,
        error: failed.map(|e| message(lang, &e)),
    };
    render(status, lang, raw, &page)
}

/// `POST /recoveries/{account}/approve`
pub async fn approve(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(account): Path<String>,
) -> Response {
    let result = match AccountId::parse(&account) {
        Ok(id) => approve_and_tell(&state, &ctx.session, &id).await,
        Err(_) => Err(Error::NotFound("restoration")),
    };
    match result {
        Ok(_) => Redirect::to("/recoveries?done=approved").into_response(),
        Err(e) => listing(&state, ctx, None, None, Some(e)).await,
    }
}
