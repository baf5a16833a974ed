//! Pages: one thread (`/threads/{id}`) with every step in order, who signed it
//! and whether the signature verifies, its attachments, and the forms for the
//! steps the domain's role table lets this reader take; a single item outside
//! any thread (`/items/{id}`); attachment downloads with safe file names.
//! Opening is a view and each download is a download in the audit trail
//! (the postroom records both, as for the API).
//!
//! A step that did not open at all (a damaged body or key slot) is shown in red
//! in its place, from `Threads::view_each`. The domain refuses any step the
//! role table does not allow, so a forged post is a 403. Reply letters and
//! reports post multipart to `/threads/{id}/steps/files`, staged as on the
//! plain compose form. The forward form is offered to whoever
//! `Threads::may_forward` allows: slots on every step, the colleague reads and
//! takes no step. Above 24 DICOM files a step lists its study as one line
//! (count, size) with a link to the files page. A download's file name is the
//! last path segment, control characters removed, as RFC 6266 `filename*` plus
//! an ASCII fallback.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mailbox::clock::{format_jst_minutes, today_jst};
use mailbox::postroom::{ConsentGiver, OpenedItem, SignatureStatus};
use mailbox::threads::Thread;
use mailbox::threads::{StepInput, ThreadSteps};
use mailbox::workflow::{Step, StepField, ThreadKind};
use mailbox::{AccountId, Error, FacilityCode, Role};

use super::form_upload::{bad_form, read_text, stage_file};
use super::labels::{
    field_label, field_order, kind_label, pick, state_label, step_label, urgency_label,
};
use super::{Chrome, PageCtx, PageSession, message, render};
use crate::AppState;
use crate::http::csrf::CheckedMultipart;
use crate::http::download::{attachment_download, content_disposition};
use crate::http::error::status_of;
use crate::i18n::{Lang, Texts};

mod forms;
mod handling;
mod item;
mod steps;
mod texts;

use forms::*;
use steps::*;
use texts::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/threads/{id}", get(view))
        .route("/threads/{id}/steps", post(take_step))
        .route(
            "/threads/{id}/steps/files",
            post(take_step_with_files).layer(DefaultBodyLimit::disable()),
        )
        .route("/threads/{id}/forward", post(forward))
        .route("/items/{id}", get(item::item))
        .route("/items/{id}/reply", post(item::reply))
        .route("/items/{id}/forward", post(item::forward_item))
        .route("/items/{id}/attachments/{index}", get(download))
        .route("/static/thread.css", get(|| async { css(THREAD_CSS) }))
        .route(
            "/static/thread_page.css",
            get(|| async { css(THREAD_PAGE_CSS) }),
        )
}

const THREAD_CSS: &str = include_str!("../../../static/thread.css");
/// The thread and item pages' own rules (heading tags, assign and reply cards).
const THREAD_PAGE_CSS: &str = include_str!("../../../static/thread_page.css");

pub(super) fn css(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], body).into_response()
}

// --- views ---------------------------------------------------------------------

pub struct AttachmentLink {
    pub index: usize,
    pub href: String,
    pub name: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    /// What is known of the file's integrity, once a read checked it.
    pub integrity: Option<super::files::IntegrityMark>,
}

impl AttachmentLink {
    /// The size as people read it (`12.3 KB`).
    pub fn size_text(&self) -> String {
        human_size(self.size)
    }

    /// The first twelve hex digits of the digest; the page gives the whole
    /// one in a title.
    pub fn short_sha256(&self) -> &str {
        self.sha256.get(..12).unwrap_or(&self.sha256)
    }
}

/// Bytes as `512 B`, `12.3 KB`, `4.0 MB` or `1.2 GB` (powers of 1024).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KB", "MB", "GB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    #[allow(clippy::cast_precision_loss)] // a size shown to one decimal
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Where a reader goes back to: the menu entry their role has.
pub struct BackLink {
    pub href: &'static str,
    pub label: &'static str,
}

pub(crate) fn back_link(lang: Lang, role: Role) -> BackLink {
    let tt = texts(lang);
    match role {
        Role::Liaison => BackLink {
            href: "/liaison",
            label: tt.back_to_liaison,
        },
        Role::Clerk => BackLink {
            href: "/clerk",
            label: tt.back_to_progress,
        },
        Role::Doctor => BackLink {
            href: "/mail/inbox",
            label: tt.back_to_inbox,
        },
        Role::Operator => BackLink {
            href: "/",
            label: tt.back_home,
        },
    }
}

pub struct FieldLine {
    pub label: String,
    pub value: String,
}

/// One step as shown: who, when, the signature verdict and the content.
pub struct StepView {
    pub id: String,
    pub label: &'static str,
    pub signer: String,
    pub signer_facility: String,
    pub at: String,
    /// Verified signature: green; anything else red with what broke.
    pub sig_ok: bool,
    pub sig_text: &'static str,
    /// The verdict's stable code (`valid`, `moved`, `tampered_body`, …).
    pub status: &'static str,
    /// Sealed before places were signed.
    pub older_format: bool,
    pub fingerprint: String,
    pub signed_sha256: String,
    pub subject: String,
    pub patient: String,
    pub consent: Option<String>,
    pub body: String,
    pub fields: Vec<FieldLine>,
    pub attachments: Vec<AttachmentLink>,
    /// Stands for the DICOM files of a large study (listed on the files page).
    pub dicom_files: Option<super::files::DicomFiles>,
    /// The whole item, each study and each series as a ZIP.
    pub zip: Option<super::zip_links::ZipLinks>,
    pub pdf_href: String,
    /// The DICOM viewer, for an item with DICOM files.
    pub viewer_href: Option<String>,
    /// Set when the step could not be opened at all.
    pub broken: Option<&'static str>,
}

/// A field of an action form.
pub struct ActionField {
    pub name: String,
    pub label: String,
    pub required: bool,
    pub long: bool,
    pub value: String,
}

/// A step this reader may take, as a form.
pub struct ActionForm {
    pub step: &'static str,
    pub label: &'static str,
    pub button: &'static str,
    pub danger: bool,
    pub fields: Vec<ActionField>,
    /// Pathway: where the next stage goes (facility code, name).
    pub next_facilities: Vec<(String, String)>,
    /// Letters and reports may carry files (a multipart form).
    pub files: bool,
}

#[derive(Template)]
#[template(path = "thread.html")]
struct ThreadPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    tt: &'static ThreadTexts,
    /// The opening item's subject (the kind when it has none).
    title: String,
    kind: &'static str,
    state: &'static str,
    requester: String,
    target: String,
    /// 担当医: who handles the request.
    doctor: String,
    /// 受付担当: the liaison who took a shared-inbox item in.
    claimed: Option<String>,
    /// For the liaison office on its own shared-inbox item.
    assign: Option<handling::AssignControl>,
    back: BackLink,
    urgency: &'static str,
    urgent: bool,
    wanted_by: String,
    overdue: bool,
    booked_slot: String,
    steps: Vec<StepView>,
    /// Red, above the history, when a step is missing or the thread relabelled.
    integrity_alert: Option<&'static str>,
    actions: Vec<ActionForm>,
    thread_id: String,
    error: Option<String>,
    done: bool,
    /// Offered to whoever may forward: the facility's other doctors (ID, name).
    forward: Option<Vec<(String, String)>>,
    /// Forms with files warn above this total (`[attachments] warn_above_mib`).
    warn_above_bytes: u64,
    size_warning: &'static str,
    /// This rendering's token; each action form sends it with its step.
    submit_token: String,
}

/// Names of people and facilities, looked up once per page.
#[derive(Default)]
struct Names {
    people: HashMap<String, (String, Option<String>)>,
    facilities: HashMap<String, String>,
}

impl Names {
    async fn person(&mut self, state: &AppState, id: &str) -> (String, Option<String>) {
        if let Some(p) = self.people.get(id) {
            return p.clone();
        }
        let found = match AccountId::parse(id) {
            Ok(aid) => state.directory.account(&aid).await.ok(),
            Err(_) => None,
        };
        let p = match found {
            Some(a) => (
                format!("{}（{}）", a.name, a.id.display_grouped()),
                a.facility.map(|c| c.to_string()),
            ),
            None => (id.to_string(), None),
        };
        self.people.insert(id.to_string(), p.clone());
        p
    }

    async fn facility(&mut self, state: &AppState, code: &str) -> String {
        if let Some(n) = self.facilities.get(code) {
            return n.clone();
        }
        let name = match FacilityCode::parse(code) {
            Ok(c) => match state.directory.facility(&c).await {
                Ok(f) => format!("{}（{}）", f.name, f.code),
                Err(_) => code.to_string(),
            },
            Err(_) => code.to_string(),
        };
        self.facilities.insert(code.to_string(), name.clone());
        name
    }
}

fn signature_text(tt: &ThreadTexts, s: SignatureStatus) -> &'static str {
    match s {
        SignatureStatus::Valid => tt.sig_valid,
        SignatureStatus::UnknownSigner => tt.sig_unknown_signer,
        SignatureStatus::BadSignature => tt.sig_bad,
        SignatureStatus::SignerMismatch => tt.sig_mismatch,
        SignatureStatus::Moved => tt.sig_moved,
        SignatureStatus::StepReordered => tt.sig_reordered,
        SignatureStatus::Relabelled => tt.sig_relabelled,
        SignatureStatus::RecipientsChanged => tt.sig_recipients,
        SignatureStatus::TimeChanged => tt.sig_time,
    }
}

async fn step_view(
    state: &AppState,
    lang: Lang,
    names: &mut Names,
    kind: &str,
    item: &OpenedItem,
) -> StepView {
    let tt = texts(lang);
    let (attachments, dicom_files) = super::files::step_attachments(lang, item);
    let (signer, signer_facility) = names.person(state, &item.sender_id).await;
    let signer_facility = match signer_facility {
        Some(code) => names.facility(state, &code).await,
        None => String::new(),
    };
    let patient = [item.patient_id.as_str(), item.patient_name.as_str()]
        .iter()
        .filter(|s| !s.trim().is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    StepView {
        id: item.id.clone(),
        label: step_label(lang, kind, item.step.as_deref()),
        signer,
        signer_facility,
        at: format_jst_minutes(item.created_at),
        sig_ok: item.signature == SignatureStatus::Valid,
        sig_text: signature_text(tt, item.signature),
        status: item.signature.as_str(),
        older_format: !item.place_signed,
        fingerprint: item.signer_fingerprint.clone().unwrap_or_default(),
        signed_sha256: item.signed_sha256.clone(),
        subject: item.subject.clone(),
        patient,
        consent: item.consent.as_ref().map(|c| {
            let giver = match &c.given_by {
                ConsentGiver::Patient => tt.consent_patient.to_string(),
                ConsentGiver::Guardian { relation } => {
                    format!("{}（{relation}）", tt.consent_guardian)
                }
                ConsentGiver::Unrecorded => String::new(),
            };
            format!(
                "{} {}（{} {}{giver}）",
                c.obtained_on.format("%Y-%m-%d"),
                match c.method {
                    mailbox::postroom::ConsentMethod::Written => tt.consent_written,
                    mailbox::postroom::ConsentMethod::Verbal => tt.consent_verbal,
                },
                tt.consent_by,
                c.obtained_by
            )
        }),
        body: item.body.clone(),
        fields: {
            let mut fields: Vec<&(String, String)> = item.fields.iter().collect();
            fields.sort_by_key(|(n, _)| field_order(n));
            fields
                .into_iter()
                .map(|(n, v)| FieldLine {
                    label: field_label(lang, n),
                    value: v.clone(),
                })
                .collect()
        },
        attachments,
        dicom_files,
        zip: None,
        pdf_href: format!("/api/v1/envelopes/{}/pdf", item.id),
        viewer_href: super::viewer::href_for(item),
        // Moved, relabelled, re-addressed or re-dated: the content is withheld.
        broken: item
            .signature
            .is_place_difference()
            .then(|| signature_text(tt, item.signature)),
    }
}

fn broken_view(lang: Lang, kind: &str, row: &mailbox::threads::StepRecord, e: &Error) -> StepView {
    let tt = texts(lang);
    let what = match e {
        Error::Tampered("key_slot") => tt.broken_key_slot,
        Error::Tampered(_) => tt.broken_body,
        _ => tt.broken_other,
    };
    let status = match e {
        Error::Tampered(_) => mailbox::Localized::code(e),
        _ => "unreadable",
    };
    StepView {
        label: step_label(lang, kind, row.step.as_deref()),
        signer: row.sender_id.clone(),
        signer_facility: row.sender_facility.clone().unwrap_or_default(),
        at: format_jst_minutes(row.created_at),
        ..StepView::red(row.envelope_id.clone(), what, status)
    }
}

/// A step the thread's version counts but no row holds (deleted).
fn missing_view(lang: Lang, seq: i64) -> StepView {
    let tt = texts(lang);
    StepView {
        label: tt.step_missing,
        ..StepView::red(format!("missing-{seq}"), tt.step_missing, "step_missing")
    }
}

impl StepView {
    /// A step shown only by what broke, in red, with no content.
    fn red(id: String, what: &'static str, status: &'static str) -> Self {
        StepView {
            id,
            label: "",
            signer: String::new(),
            signer_facility: String::new(),
            at: String::new(),
            sig_ok: false,
            sig_text: what,
            status,
            older_format: false,
            fingerprint: String::new(),
            signed_sha256: String::new(),
            subject: String::new(),
            patient: String::new(),
            consent: None,
            body: String::new(),
            fields: Vec::new(),
            attachments: Vec::new(),
            dicom_files: None,
            zip: None,
            pdf_href: String::new(),
            viewer_href: None,
            broken: Some(what),
        }
    }
}

async fn thread_page(
    state: &AppState,
    ctx: PageCtx,
    id: &str,
    error: Option<(StatusCode, String)>,
    done: bool,
    query: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let tt = texts(lang);
    let view: ThreadSteps = match state.threads.view_each(&ctx.session, id).await {
        Ok(v) => v,
        Err(e) => return error_page(ctx, &e, query),
    };
    let thread = &view.thread;
    let mut names = Names::default();
    let mut steps = Vec::with_capacity(view.steps.len());
    let mut missing = view.check.missing_steps.iter().copied().peekable();
    for s in &view.steps {
        // A step deleted from the records is shown in its place, in red.
        while let Some(n) = missing.next_if(|n| s.record.thread_seq.is_some_and(|at| *n < at)) {
            steps.push(missing_view(lang, n));
        }
        steps.push(match &s.opened {
            Ok(item) => StepView {
                zip: super::zip_links::page_links(state, &ctx.session, lang, item).await,
                ..step_view(state, lang, &mut names, &thread.kind, item).await
            },
            Err(e) => broken_view(lang, &thread.kind, &s.record, e),
        });
    }
    steps.extend(missing.map(|n| missing_view(lang, n)));
    super::files::show_integrity(state, &ctx.session, lang, &mut steps).await;
    let integrity_alert = if view.check.relabelled {
        Some(tt.thread_relabelled)
    } else if !view.check.missing_steps.is_empty() {
        Some(tt.step_missing)
    } else {
        None
    };
    // The opening item's subject, unless its content is withheld.
    let title = steps
        .first()
        .filter(|s| s.broken.is_none())
        .map(|s| s.subject.trim())
        .filter(|s| !s.is_empty())
        .map_or_else(
            || kind_label(lang, &thread.kind).to_string(),
            str::to_string,
        );
    let handling = handling::handling(state, lang, &mut names, thread, &ctx.session.account).await;
    let actions = action_forms(
        state,
        lang,
        thread,
        &view.allowed_steps,
        ctx.session.account.facility.as_ref(),
    )
    .await;
    // The liaison office hands its own items to a doctor by assigning them.
    let forward =
        if handling.assign.is_none() && state.threads.may_forward(&ctx.session, thread).await {
            Some(colleagues(state, &ctx.session.account).await)
        } else {
            None
        };
    let overdue = thread.closed_at.is_none()
        && thread
            .wanted_by
            .as_deref()
            .is_some_and(|w| w < today_jst().to_string().as_str());
    let (status, error) = match error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    let page = ThreadPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        tt,
        title,
        kind: kind_label(lang, &thread.kind),
        state: state_label(lang, &thread.state),
        requester: handling.requester,
        target: handling.target,
        doctor: handling.doctor,
        claimed: handling.claimed,
        assign: handling.assign,
        back: back_link(lang, ctx.session.account.role),
        urgency: urgency_label(lang, &thread.urgency),
        urgent: thread.urgency == "urgent",
        wanted_by: thread.wanted_by.clone().unwrap_or_default(),
        overdue,
        booked_slot: thread.booked_slot.clone().unwrap_or_default(),
        steps,
        integrity_alert,
        actions,
        thread_id: thread.id.clone(),
        error,
        done,
        forward,
        warn_above_bytes: state.upload.warn_above_bytes,
        size_warning: super::compose::size_warning_text(lang),
        submit_token: crate::pages::once::new_token(),
    };
    render(status, lang, query, &page)
}

/// The other doctors of the reader's facility, by name (those a thread can be
/// forwarded to; the domain checks again when it is).
pub(super) async fn colleagues(state: &AppState, me: &mailbox::Account) -> Vec<(String, String)> {
    let Some(code) = me.facility.as_ref() else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = match state.directory.accounts(Some(code)).await {
        Ok(list) => list
            .into_iter()
            .filter(|a| a.role == Role::Doctor && !a.removed && !a.locked && a.id != me.id)
            .map(|a| (a.id.display_grouped(), a.name))
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "listing the facility's doctors failed");
            Vec::new()
        }
    };
    out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    out
}

#[derive(Template)]
#[template(path = "thread_error.html")]
struct ErrorPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    tt: &'static ThreadTexts,
    error: String,
}

fn error_page(ctx: PageCtx, e: &Error, query: Option<&str>) -> Response {
    let lang = ctx.lang;
    let page = ErrorPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        tt: texts(lang),
        error: message(lang, e),
    };
    render(status_of(e.kind()), lang, query, &page)
}

/// `GET /threads/{id}`
async fn view(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let done = query.as_deref().is_some_and(|q| q.contains("done=1"));
    thread_page(&state, ctx, &id, None, done, query.as_deref()).await
}

/// `GET /items/{id}/attachments/{index}` — as the API's download (resumable
/// with `Range`, aborted if the blob does not match its signed manifest),
/// under the file's own name, always as a download.
async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageSession(ctx): PageSession,
    Path((id, index)): Path<(String, usize)>,
) -> Response {
    let prepared = match state.postroom.attachment(&ctx.session, &id, index).await {
        Ok(p) => p,
        Err(e) => return error_page(ctx, &e, None),
    };
    let disposition = HeaderValue::from_str(&content_disposition(&prepared.info.name))
        .unwrap_or(HeaderValue::from_static("attachment"));
    match attachment_download(&headers, &id, prepared, disposition).await {
        Ok(response) => response,
        Err(e) => error_page(ctx, &e, None),
    }
}
