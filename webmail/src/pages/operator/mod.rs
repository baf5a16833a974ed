//! The operator's console, `/operator`: facilities (register with the code
//! checked rule by rule, the approval reference outside the home prefecture,
//! public details, deactivation), accounts (register with the issued password
//! shown once, lock, unlock, password and second-factor resets, pending
//! facility-key grants) and notices that could not be sent.
//!
//! Everything goes through `Directory` and `Notices`, as `renkei admin` does;
//! the directory's console methods write every change to the audit trail in
//! the same words as the command line ("facility add: ok"). No page here shows any content: the
//! operator holds no key and sees metadata only.

use std::collections::HashMap;

use askama::Template;
use axum::extract::FromRequestParts;
use axum::extract::{Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::NaiveDate;
use mailbox::clock::{format_jst_minutes, today_jst};
use mailbox::facility::parse_departments;
use mailbox::notify::{NotifyReason, kind_labels};
use mailbox::records::Actor;
use mailbox::timesync::ClockState;
use mailbox::{
    Account, AccountId, CurrentSession, Error, Facility, FacilityCode, Localized, NewAccount, Role,
};
use serde::Deserialize;

use super::{Chrome, PageCtx, message, render};
use crate::AppState;
use crate::http::error::status_of;
use crate::i18n::{Lang, Texts};

mod accounts;
mod facilities;
mod notices;
mod texts;

use accounts::*;
use facilities::*;
use notices::*;
use texts::*;

const CSS: &str = include_str!("../../../static/admin.css");

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
        .route("/operator/facilities/{code}/networks", post(set_networks))
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
        Ok(_) => {
            if let Ok(cert) = state.directory.keys().recovery_certificate().await {
                RECOVERY_MISSING.store(cert.is_none(), std::sync::atomic::Ordering::Relaxed);
            }
            Ok(ctx)
        }
        Err(e) => Err(refusal(ctx.lang, &ctx.session, &e)),
    }
}

/// Whether the network had no recovery key at the last console request
/// (looked up by [`operator_ctx`] before each page is built, shown by the
/// console's banner while it is so).
static RECOVERY_MISSING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// For the console template: the recovery-key banner is shown.
pub(crate) fn recovery_missing() -> bool {
    RECOVERY_MISSING.load(std::sync::atomic::Ordering::Relaxed)
}

/// A console page: the operator's session, or the refusal any other role gets.
pub struct OperatorPage(pub PageCtx);

impl FromRequestParts<AppState> for OperatorPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        operator_ctx(state, &parts.headers, parts.uri.query())
            .await
            .map(Self)
    }
}

/// The console's warning while the clock cannot be trusted (none before the
/// first check): the same words on every console page.
fn clock_banner(state: &AppState, lang: Lang) -> Option<String> {
    let x = texts(lang);
    Some(match state.time.checked()? {
        ClockState::Synchronised => return None,
        ClockState::Unsynchronised => x.clock_unsynchronised.to_string(),
        ClockState::NodesDisagree { skew_ms } => x.clock_disagree.replace(
            "{skew}",
            &format!("{}.{}", skew_ms / 1000, (skew_ms % 1000) / 100),
        ),
        ClockState::Unknown => x.clock_unknown.to_string(),
    })
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
