//! Bookings (`/booking`): a facility's bookable resources and their free
//! times; request a time, confirm, propose another time, cancel. A booking is
//! a thread of its own kind: every action is a step through `Threads`, the
//! role table of `mailbox::workflow` decides who may take it (clerks may, on
//! either side), and `mailbox::threads::booking` computes the free times.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{Datelike, Duration, NaiveDate};
use mailbox::clock::{format_jst_minutes_millis, today_jst};
use mailbox::postroom::{Consent, ConsentGiver, ConsentMethod};
use mailbox::threads::Thread;
use mailbox::threads::booking::{FreeDay, slot_text};
use mailbox::threads::{NewThread, StepInput, Urgency};
use mailbox::workflow::{Step, ThreadKind};
use mailbox::{Error, FacilityCode, Role};
use serde::Deserialize;

use super::clerk::{facility, facility_names, refused, state_label};
use super::{Chrome, PageCtx, PageSession, message, render};
use crate::AppState;
use crate::http::error::status_of;
use crate::i18n::{Lang, Texts};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/booking", get(page))
        .route("/booking/request", post(request))
        .route("/booking/resources", post(add_resource))
        .route("/booking/{id}/step", post(step))
}

/// Days of free times shown per resource, and offered for another time.
const DAYS_SHOWN: u32 = 7;
const DAYS_OFFERED: u32 = 14;

pub struct BookingTexts {
    title: &'static str,
    facility: &'static str,
    show: &'static str,
    resources: &'static str,
    no_resources: &'static str,
    opening_hours: &'static str,
    free_times: &'static str,
    no_free: &'static str,
    hours_free_text: &'static str,
    previous_week: &'static str,
    next_week: &'static str,
    slot_minutes: &'static str,
    request: &'static str,
    request_button: &'static str,
    slot: &'static str,
    choose_slot: &'static str,
    preferred_times: &'static str,
    preferred_hint: &'static str,
    patient_id: &'static str,
    patient_name: &'static str,
    consent: &'static str,
    consent_on: &'static str,
    consent_method: &'static str,
    written: &'static str,
    verbal: &'static str,
    consent_by: &'static str,
    consent_given_by: &'static str,
    consent_patient: &'static str,
    consent_guardian: &'static str,
    consent_relation: &'static str,
    note: &'static str,
    add_resource: &'static str,
    resource_name: &'static str,
    hours_hint: &'static str,
    add_button: &'static str,
    bookings: &'static str,
    no_bookings: &'static str,
    resource: &'static str,
    requester: &'static str,
    receiver: &'static str,
    state: &'static str,
    time: &'static str,
    requested_at: &'static str,
    actions: &'static str,
    confirm: &'static str,
    accept_proposal: &'static str,
    propose: &'static str,
    cancel: &'static str,
    reason: &'static str,
    done_requested: &'static str,
    done_resource: &'static str,
    done_confirm: &'static str,
    done_propose: &'static str,
    done_cancel: &'static str,
    only_members: &'static str,
    weekdays: [&'static str; 7],
}

const JA: BookingTexts = BookingTexts {
    title: "機器予約",
    facility: "施設",
    show: "表示",
    resources: "予約できる検査機器・枠",
    no_resources: "この施設には予約できる機器・枠がありません。",
    opening_hours: "受付時間",
    free_times: "空き時間",
    no_free: "空きなし",
    hours_free_text: "受付時間が自由記述のため、空き時間は表示できません。希望日時を記入して依頼してください。",
    previous_week: "前の週",
    next_week: "次の週",
    slot_minutes: "1枠の長さ（分）",
    request: "予約を依頼する",
    request_button: "予約を依頼",
    slot: "日時",
    choose_slot: "空き時間から選ぶ",
    preferred_times: "希望日時（その他）",
    preferred_hint: "空き時間から選ばない場合は、希望日時を記入してください。",
    patient_id: "患者ID",
    patient_name: "患者氏名",
    consent: "患者同意",
    consent_on: "同意取得日",
    consent_method: "取得方法",
    written: "書面",
    verbal: "口頭",
    consent_by: "同意を取得した職員",
    consent_given_by: "同意者",
    consent_patient: "本人",
    consent_guardian: "代諾者（未成年者の親権者など）",
    consent_relation: "代諾者の続柄",
    note: "連絡事項",
    add_resource: "予約できる機器・枠を登録",
    resource_name: "名称",
    hours_hint: "例: 平日 9:00-12:00、13:00-16:00; 土 9:00-12:00 (30分)",
    add_button: "登録",
    bookings: "予約一覧",
    no_bookings: "予約はありません。",
    resource: "機器・枠",
    requester: "依頼元",
    receiver: "予約先",
    state: "状態",
    time: "日時",
    requested_at: "依頼日時",
    actions: "操作",
    confirm: "この日時で確定",
    accept_proposal: "提案された日時で確定",
    propose: "別の日時を提案",
    cancel: "予約を取り消す",
    reason: "理由",
    done_requested: "予約を依頼しました。",
    done_resource: "登録しました。",
    done_confirm: "予約を確定しました。",
    done_propose: "別の日時を提案しました。",
    done_cancel: "予約を取り消しました。",
    only_members: "この画面は参加施設の職員のみ利用できます。",
    weekdays: ["月", "火", "水", "木", "金", "土", "日"],
};

const EN: BookingTexts = BookingTexts {
    title: "Bookings",
    facility: "Facility",
    show: "Show",
    resources: "Bookable equipment and slots",
    no_resources: "This facility has nothing bookable.",
    opening_hours: "Opening hours",
    free_times: "Free times",
    no_free: "none free",
    hours_free_text: "The opening hours are free text, so no free times can be shown. Write the times you would like.",
    previous_week: "Previous week",
    next_week: "Next week",
    slot_minutes: "Minutes per booking",
    request: "Request a booking",
    request_button: "Request",
    slot: "Time",
    choose_slot: "Choose a free time",
    preferred_times: "Preferred times (other)",
    preferred_hint: "If no free time suits, write the times you would like.",
    patient_id: "Patient ID",
    patient_name: "Patient name",
    consent: "Patient consent",
    consent_on: "Consent date",
    consent_method: "How",
    written: "Written",
    verbal: "Verbal",
    consent_by: "Staff member who obtained it",
    consent_given_by: "Consent given by",
    consent_patient: "the patient",
    consent_guardian: "a guardian (e.g. a minor's parent)",
    consent_relation: "Guardian's relation",
    note: "Note",
    add_resource: "List something bookable",
    resource_name: "Name",
    hours_hint: "e.g. 平日 9:00-12:00、13:00-16:00; 土 9:00-12:00 (30分) or Mon-Fri 09:00-16:00",
    add_button: "Add",
    bookings: "Bookings",
    no_bookings: "No bookings.",
    resource: "Resource",
    requester: "Requested by",
    receiver: "Booked at",
    state: "State",
    time: "Time",
    requested_at: "Requested",
    actions: "Actions",
    confirm: "Confirm this time",
    accept_proposal: "Accept the proposed time",
    propose: "Propose another time",
    cancel: "Cancel the booking",
    reason: "Reason",
    done_requested: "Booking requested.",
    done_resource: "Added.",
    done_confirm: "Booking confirmed.",
    done_propose: "Another time proposed.",
    done_cancel: "Booking cancelled.",
    only_members: "This page is for staff of participating facilities.",
    weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
};

fn texts(lang: Lang) -> &'static BookingTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

pub struct FacilityOption {
    code: String,
    name: String,
}

#[derive(Clone)]
pub struct SlotView {
    /// The written form, `2026-12-05 10:00`.
    value: String,
    /// `10:00`
    time: String,
}

#[derive(Clone)]
pub struct DayView {
    label: String,
    slots: Vec<SlotView>,
}

pub struct ResourceView {
    id: String,
    name: String,
    opening_hours: String,
    slot_minutes: Option<u32>,
    days: Vec<DayView>,
}

pub struct BookingLine {
    id: String,
    resource: String,
    requester: String,
    receiver: String,
    state: &'static str,
    time: Option<String>,
    requested_at: String,
    closed: bool,
    /// The receiving side confirms the requested time (or names one).
    confirm_requested: bool,
    /// The requesting side accepts the time proposed to it.
    accept_proposal: bool,
    propose: bool,
    cancel: bool,
    /// Free times of the resource to propose; empty when its hours are free text.
    offer: Vec<DayView>,
}

/// What was typed into a request form that was refused, to fill it again.
#[derive(Deserialize, Default)]
pub struct RequestForm {
    #[serde(default)]
    resource_id: String,
    #[serde(default)]
    facility: String,
    #[serde(default)]
    slot: String,
    #[serde(default)]
    preferred_times: String,
    #[serde(default)]
    patient_id: String,
    #[serde(default)]
    patient_name: String,
    #[serde(default)]
    consent_on: String,
    #[serde(default)]
    consent_method: String,
    #[serde(default)]
    consent_by: String,
    #[serde(default)]
    consent_given_by: String,
    #[serde(default)]
    consent_relation: String,
    #[serde(default)]
    body: String,
}

#[derive(Template)]
#[template(path = "booking.html")]
struct BookingPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static BookingTexts,
    facilities: Vec<FacilityOption>,
    selected: String,
    previous_week: Option<String>,
    next_week: String,
    resources: Vec<ResourceView>,
    can_request: bool,
    can_add_resource: bool,
    bookings: Vec<BookingLine>,
    draft: RequestForm,
    today: String,
    done: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct BookingQuery {
    #[serde(default)]
    facility: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

fn day_views(lang: Lang, days: &[FreeDay]) -> Vec<DayView> {
    let x = texts(lang);
    days.iter()
        .map(|d| DayView {
            label: format!(
                "{} ({})",
                d.date.format("%Y-%m-%d"),
                x.weekdays[d.date.weekday().num_days_from_monday() as usize]
            ),
            slots: d
                .slots
                .iter()
                .map(|t| SlotView {
                    value: slot_text(*t),
                    time: t.format("%H:%M").to_string(),
                })
                .collect(),
        })
        .collect()
}

/// `GET /booking[?facility=CODE][&from=YYYY-MM-DD]`
pub async fn page(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    RawQuery(raw): RawQuery,
    Query(q): Query<BookingQuery>,
) -> Response {
    let x = texts(ctx.lang);
    let done = match q.done.as_deref() {
        Some("requested") => Some(x.done_requested),
        Some("resource") => Some(x.done_resource),
        Some("confirm") => Some(x.done_confirm),
        Some("propose") => Some(x.done_propose),
        Some("cancel") => Some(x.done_cancel),
        _ => None,
    };
    let mut error = None;
    let facility = match q.facility.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => match FacilityCode::parse(s) {
            Ok(c) => Some(c),
            Err(e) => {
                error = Some(Error::from(e));
                None
            }
        },
        None => None,
    };
    let from = match q.from.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                error = Some(Error::invalid(
                    "from",
                    format!("from must look like 2026-12-01, got {s:?}"),
                    "表示開始日は 2026-12-01 の形式で指定してください。",
                ));
                None
            }
        },
        None => None,
    };
    let view = View {
        facility,
        from,
        done,
        error,
        draft: RequestForm::default(),
    };
    booking_page(&state, ctx, raw.as_deref(), view).await
}

/// What the page shows besides the stored state.
struct View {
    facility: Option<FacilityCode>,
    from: Option<NaiveDate>,
    done: Option<&'static str>,
    error: Option<Error>,
    draft: RequestForm,
}

async fn booking_page(state: &AppState, ctx: PageCtx, raw: Option<&str>, view: View) -> Response {
    let lang = ctx.lang;
    let x = texts(lang);
    let me = ctx.session.account.clone();
    let Some(own) = me.facility.clone() else {
        return refused(ctx, x.title, StatusCode::FORBIDDEN, x.only_members.into());
    };
    let names = facility_names(state).await;
    let selected = view.facility.clone().unwrap_or_else(|| own.clone());
    let today = today_jst();
    let from = view.from.filter(|d| *d >= today).unwrap_or(today);
    let mut error = view.error;

    let mut facilities: Vec<FacilityOption> = match state.directory.facilities().await {
        Ok(list) => list
            .into_iter()
            .filter(|f| f.is_active_on(today))
            .map(|f| FacilityOption {
                code: f.code.to_string(),
                name: f.name,
            })
            .collect(),
        Err(e) => {
            error.get_or_insert(e);
            Vec::new()
        }
    };
    facilities.sort_by(|a, b| a.code.cmp(&b.code));

    let mut resources = Vec::new();
    match state.threads.resources(&ctx.session, &selected).await {
        Ok(list) => {
            for r in list {
                match state
                    .threads
                    .free_times(&ctx.session, &r.id, Some(from), DAYS_SHOWN)
                    .await
                {
                    Ok(f) => resources.push(ResourceView {
                        id: r.id,
                        name: r.name,
                        opening_hours: r.opening_hours,
                        slot_minutes: f
                            .hours
                            .as_ref()
                            .map(mailbox::threads::booking::OpeningHours::slot_minutes),
                        days: day_views(lang, &f.days),
                    }),
                    Err(e) => {
                        error.get_or_insert(e);
                    }
                }
            }
        }
        Err(e) => {
            error.get_or_insert(e);
        }
    }

    let bookings = match bookings_of(state, &ctx).await {
        Ok(rows) => lines(state, &ctx, &names, rows).await,
        Err(e) => {
            error.get_or_insert(e);
            Vec::new()
        }
    };

    let status = error
        .as_ref()
        .map_or(StatusCode::OK, |e| status_of(e.kind()));
    let page = BookingPage {
        lang,
        t: lang.texts(),
        x,
        facilities,
        selected: selected.to_string(),
        previous_week: (from > today).then(|| {
            (from - Duration::days(i64::from(DAYS_SHOWN)))
                .max(today)
                .format("%Y-%m-%d")
                .to_string()
        }),
        next_week: (from + Duration::days(i64::from(DAYS_SHOWN)))
            .format("%Y-%m-%d")
            .to_string(),
        resources,
        can_request: matches!(me.role, Role::Doctor | Role::Liaison),
        can_add_resource: me.role == Role::Liaison && selected == own,
        bookings,
        draft: view.draft,
        today: today.format("%Y-%m-%d").to_string(),
        done: view.done,
        error: error.map(|e| message(lang, &e)),
        chrome: ctx.chrome,
    };
    render(status, lang, raw, &page)
}

/// The bookings this person sees: their facility's for clerks and liaison
/// offices, the ones they take part in for doctors.
async fn bookings_of(state: &AppState, ctx: &PageCtx) -> Result<Vec<Thread>, Error> {
    let rows = match ctx.session.account.role {
        Role::Clerk | Role::Liaison => state.threads.facility_overview(&ctx.session).await?,
        _ => state.threads.list(&ctx.session).await?,
    };
    Ok(rows
        .into_iter()
        .filter(|t| t.kind == ThreadKind::Booking.as_str())
        .collect())
}

async fn lines(
    state: &AppState,
    ctx: &PageCtx,
    names: &HashMap<String, String>,
    rows: Vec<Thread>,
) -> Vec<BookingLine> {
    let lang = ctx.lang;
    // Resource names of every facility the bookings are at.
    let mut resource_names: HashMap<String, String> = HashMap::new();
    let mut seen_facilities: Vec<&str> = Vec::new();
    for t in &rows {
        if seen_facilities.contains(&t.target_facility.as_str()) {
            continue;
        }
        seen_facilities.push(&t.target_facility);
        if let Ok(code) = FacilityCode::parse(&t.target_facility)
            && let Ok(list) = state.threads.resources(&ctx.session, &code).await
        {
            resource_names.extend(list.into_iter().map(|r| (r.id, r.name)));
        }
    }
    let mut offers: HashMap<String, Vec<DayView>> = HashMap::new();
    let mut out = Vec::new();
    for t in &rows {
        let steps = state.threads.steps_open_to(&ctx.session, t);
        let allowed = |s: Step| steps.contains(&s.as_str());
        let propose = allowed(Step::Propose);
        let resource_id = t.resource_id.clone().unwrap_or_default();
        if propose && !offers.contains_key(&resource_id) {
            let days = match state
                .threads
                .free_times(&ctx.session, &resource_id, None, DAYS_OFFERED)
                .await
            {
                Ok(f) => day_views(lang, &f.days),
                Err(e) => {
                    tracing::warn!(error = %e, "free times of a booked resource");
                    Vec::new()
                }
            };
            offers.insert(resource_id.clone(), days);
        }
        let proposed = t.state == mailbox::workflow::ThreadState::Proposed.as_str();
        out.push(BookingLine {
            id: t.id.clone(),
            resource: resource_names
                .get(&resource_id)
                .cloned()
                .unwrap_or_else(|| "—".into()),
            requester: t
                .requester_facility
                .as_deref()
                .map(|c| facility(names, c))
                .unwrap_or_default(),
            receiver: facility(names, &t.target_facility),
            state: state_label(lang, &t.state),
            time: t.booked_slot.clone(),
            requested_at: format_jst_minutes_millis(t.created_at),
            closed: t.closed_at.is_some(),
            confirm_requested: allowed(Step::Confirm) && !proposed,
            accept_proposal: allowed(Step::Confirm) && proposed,
            propose,
            cancel: allowed(Step::Cancel),
            offer: if propose {
                offers.get(&resource_id).cloned().unwrap_or_default()
            } else {
                Vec::new()
            },
        });
    }
    out
}

fn back_to(facility: &str, done: &str) -> Response {
    let facility = FacilityCode::parse(facility)
        .map(|c| format!("facility={c}&"))
        .unwrap_or_default();
    Redirect::to(&format!("/booking?{facility}done={done}")).into_response()
}

fn consent_of(form: &RequestForm) -> Result<Option<Consent>, Error> {
    if [&form.consent_on, &form.consent_method, &form.consent_by]
        .iter()
        .all(|s| s.trim().is_empty())
    {
        return Ok(None);
    }
    let obtained_on =
        NaiveDate::parse_from_str(form.consent_on.trim(), "%Y-%m-%d").map_err(|_| {
            Error::invalid(
                "consent.obtained_on",
                format!(
                    "consent date must look like 2026-11-20, got {:?}",
                    form.consent_on
                ),
                "同意取得日は 2026-11-20 の形式で入力してください。",
            )
        })?;
    Ok(Some(Consent {
        obtained_on,
        method: ConsentMethod::parse(&form.consent_method)?,
        obtained_by: form.consent_by.trim().to_string(),
        given_by: ConsentGiver::parse(Some(&form.consent_given_by), Some(&form.consent_relation))?,
    }))
}

/// `POST /booking/request`: a doctor or liaison office asks for a time.
pub async fn request(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Form(form): Form<RequestForm>,
) -> Response {
    let slot = form.slot.trim().to_string();
    let preferred = if form.preferred_times.trim().is_empty() {
        slot.clone()
    } else {
        form.preferred_times.trim().to_string()
    };
    let mut fields = vec![("preferred_times".to_string(), preferred)];
    if !slot.is_empty() {
        fields.push(("slot".to_string(), slot));
    }
    let result = match consent_of(&form) {
        Ok(consent) => {
            let new = NewThread {
                kind: ThreadKind::Booking,
                to: None,
                subject: String::new(),
                patient_id: form.patient_id.trim().to_string(),
                patient_name: form.patient_name.trim().to_string(),
                body: form.body.clone(),
                consent,
                fields,
                urgency: Urgency::Routine,
                wanted_by: None,
                resource_id: Some(form.resource_id.clone()),
                template: None,
            };
            state.threads.open(&ctx.session, new, Vec::new()).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => back_to(&form.facility, "requested"),
        Err(e) => {
            let view = View {
                facility: FacilityCode::parse(&form.facility).ok(),
                from: None,
                done: None,
                error: Some(e),
                draft: form,
            };
            booking_page(&state, ctx, None, view).await
        }
    }
}

#[derive(Deserialize)]
pub struct ResourceForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    opening_hours: String,
}

/// `POST /booking/resources`: a liaison office lists something bookable.
pub async fn add_resource(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Form(form): Form<ResourceForm>,
) -> Response {
    match state
        .threads
        .add_resource(&ctx.session, &form.name, &form.opening_hours)
        .await
    {
        Ok(r) => back_to(&r.facility_code, "resource"),
        Err(e) => {
            let view = View {
                facility: None,
                from: None,
                done: None,
                error: Some(e),
                draft: RequestForm::default(),
            };
            booking_page(&state, ctx, None, view).await
        }
    }
}

#[derive(Deserialize)]
pub struct StepForm {
    #[serde(default)]
    step: String,
    #[serde(default)]
    slot: String,
    #[serde(default)]
    body: String,
}

/// `POST /booking/{id}/step`: confirm, propose another time, or cancel.
pub async fn step(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    Form(form): Form<StepForm>,
) -> Response {
    let step = match Step::parse(&form.step) {
        Ok(s @ (Step::Confirm | Step::Propose | Step::Cancel)) => Ok(s),
        Ok(_) => Err(Error::invalid(
            "step",
            "bookings are confirmed, moved or cancelled here",
            "この画面でできるのは予約の確定・別日時の提案・取消です。",
        )),
        Err(e) => Err(e),
    };
    let result = match step {
        Ok(s) => {
            let mut fields = Vec::new();
            if !form.slot.trim().is_empty() {
                fields.push(("slot".to_string(), form.slot.trim().to_string()));
            }
            let input = StepInput {
                step: s,
                body: form.body.clone(),
                fields,
                next_facility: None,
            };
            state
                .threads
                .act(&ctx.session, &id, input, Vec::new())
                .await
                .map(|_| s)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(s) => {
            let own = ctx
                .session
                .account
                .facility
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            back_to(&own, s.as_str())
        }
        Err(e) => {
            let view = View {
                facility: None,
                from: None,
                done: None,
                error: Some(e),
                draft: RequestForm::default(),
            };
            booking_page(&state, ctx, None, view).await
        }
    }
}
