//! Notices that could not be sent.

use super::*;

// --- failed notices --------------------------------------------------------------

pub struct NoticeLine {
    pub created_at: String,
    pub account: String,
    pub reason: &'static str,
    pub kind: &'static str,
    pub attempts: i64,
    pub last_error: String,
}

pub(super) fn reason_label(lang: Lang, reason: &str) -> &'static str {
    let (ja, en) = match NotifyReason::parse(reason) {
        Some(NotifyReason::NewItem) => ("新着", "new item"),
        Some(NotifyReason::Report) => ("報告の到着", "report"),
        Some(NotifyReason::Reply) => ("返書の到着", "reply"),
        Some(NotifyReason::ActionNeeded) => ("対応待ち", "action needed"),
        Some(NotifyReason::Declined) => ("辞退", "declined"),
        Some(NotifyReason::Withdrawn) => ("取り下げ", "withdrawn"),
        Some(NotifyReason::BookingConfirmed) => ("予約の確定", "booking confirmed"),
        Some(NotifyReason::BookingRescheduled) => ("予約日時の変更提案", "new time proposed"),
        Some(NotifyReason::BookingCancelled) => ("予約の取り消し", "booking cancelled"),
        Some(NotifyReason::Assigned) => ("担当の割り当て", "assigned"),
        Some(NotifyReason::Escalation) => ("未開封の催促", "escalation"),
        Some(NotifyReason::ConfirmAddress) => ("アドレス確認", "address confirmation"),
        Some(NotifyReason::DeliveryFailed) => ("配送失敗", "delivery failed"),
        Some(NotifyReason::SecurityChange) => ("認証設定の変更", "security change"),
        Some(NotifyReason::KeysRestored) => ("以前の鍵の復元", "keys restored"),
        None => ("不明", "unknown"),
    };
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

#[derive(Template)]
#[template(path = "operator_notices.html")]
pub(super) struct NoticesPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static OperatorTexts,
    tab: &'static str,
    /// The warning while the clock cannot be trusted.
    clock: Option<String>,
    notices: Vec<NoticeLine>,
}

/// `GET /operator/notifications` — notices past their retries: reason, kind,
/// account and the relay's last answer; never an address or any content.
pub async fn failed_notices(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    RawQuery(query): RawQuery,
) -> Response {
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
        clock: clock_banner(&state, lang),
        notices: rows
            .into_iter()
            .map(|r| {
                let (kind_ja, kind_en) = kind_labels(r.kind.as_deref());
                NoticeLine {
                    created_at: format_jst_minutes(r.created_at / 1000),
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
