//! Pages: one thread (`/threads/{id}`) with every step in order, who signed it
//! and whether the signature verifies, its attachments, and the forms for the
//! steps the domain's role table lets this reader take; a single item outside
//! any thread (`/items/{id}`); attachment downloads with safe file names.
//! Opening is a view and each download is a download in the audit trail
//! (the postroom records both, as for the API).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mailbox::postroom::{OpenedItem, SignatureStatus};
use mailbox::store::thread::ThreadRow;
use mailbox::threads::workflow::{Step, ThreadState};
use mailbox::threads::{StepInput, ThreadSteps};
use mailbox::{AccountId, Error, FacilityCode, Role};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::compose::{bad_form, read_text, stage_file};
use super::{Chrome, PageCtx, message, render};
use crate::AppState;
use crate::csrf::CheckedMultipart;
use crate::envelopes::attachment_download;
use crate::error::status_of;
use crate::i18n::{Lang, Texts};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/threads/{id}", get(view))
        .route("/threads/{id}/steps", post(take_step))
        .route(
            "/threads/{id}/steps/files",
            post(take_step_with_files).layer(DefaultBodyLimit::disable()),
        )
        .route("/threads/{id}/forward", post(forward))
        .route("/items/{id}", get(item))
        .route("/items/{id}/attachments/{index}", get(download))
        .route("/static/thread.css", get(|| async { css(THREAD_CSS) }))
}

const THREAD_CSS: &str = include_str!("../../static/thread.css");

pub(super) fn css(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], body).into_response()
}

// --- labels shared with the folder and compose pages ---------------------------

pub(super) fn kind_label(lang: Lang, kind: &str) -> &'static str {
    let (ja, en) = mailbox::notify::kind_labels(Some(kind));
    pick(lang, ja, en)
}

pub(super) fn pick(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

pub(super) fn state_label(lang: Lang, state: &str) -> &'static str {
    let Some(s) = ThreadState::parse(state) else {
        return "";
    };
    match lang {
        Lang::Ja => s.label_ja(),
        Lang::En => match s {
            ThreadState::Sent => "sent",
            ThreadState::Delivered => "delivered",
            ThreadState::Opened => "opened",
            ThreadState::Accepted => "accepted",
            ThreadState::Reported => "reported",
            ThreadState::Replied => "replied",
            ThreadState::Declined => "declined",
            ThreadState::Withdrawn => "withdrawn",
            ThreadState::Acknowledged => "acknowledged",
            ThreadState::Requested => "requested",
            ThreadState::Confirmed => "confirmed",
            ThreadState::Proposed => "other time proposed",
            ThreadState::Cancelled => "cancelled",
            ThreadState::Active => "in progress",
            ThreadState::Completed => "completed",
        },
    }
}

/// What a step is called; the opening step is called by the thread's kind.
pub(super) fn step_label(lang: Lang, kind: &str, step: Option<&str>) -> &'static str {
    let Some(step) = step
        .filter(|s| *s != "open")
        .and_then(|s| Step::parse(s).ok())
    else {
        return kind_label(lang, kind);
    };
    let (ja, en) = match step {
        Step::Accept => ("受付", "Accepted"),
        Step::Report => ("読影レポート", "Reading report"),
        Step::Decline => ("お断り", "Declined"),
        Step::Reply => ("返書", "Reply letter"),
        Step::Withdraw => ("取り下げ", "Withdrawn"),
        Step::Acknowledge => ("確認", "Acknowledged"),
        Step::Confirm => ("予約確定", "Booking confirmed"),
        Step::Propose => ("別日時の提案", "Other time proposed"),
        Step::Cancel => ("予約取消", "Booking cancelled"),
        Step::Stage => ("連携パス段階記入", "Pathway stage"),
    };
    pick(lang, ja, en)
}

pub(super) fn urgency_label(lang: Lang, urgency: &str) -> &'static str {
    match urgency {
        "urgent" => pick(lang, "至急", "urgent"),
        "routine" => pick(lang, "通常", "routine"),
        _ => "",
    }
}

/// Japan time, to the minute, from Unix seconds or milliseconds.
pub(super) fn jst(t: i64, millis: bool) -> String {
    let secs = if millis { t.div_euclid(1000) } else { t };
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| {
            (d + chrono::Duration::hours(9))
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// Today in Japan, `YYYY-MM-DD` (due dates compare as text).
pub(super) fn today_jst() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(9))
        .format("%Y-%m-%d")
        .to_string()
}

/// The label of a structured form field (fixed ones, then care-pathway fields).
fn field_label(lang: Lang, name: &str) -> String {
    let fixed = match name {
        "modality" => Some(("検査種別", "Modality")),
        "body_part" => Some(("検査部位", "Body part")),
        "clinical_question" => Some(("依頼内容・臨床上の疑問", "Clinical question")),
        "findings" => Some(("所見", "Findings")),
        "impression" => Some(("診断・結論", "Impression")),
        "reason" => Some(("理由", "Reason")),
        "purpose" => Some(("紹介目的", "Purpose of referral")),
        "diagnosis" => Some(("傷病名", "Diagnosis")),
        "preferred_times" => Some(("希望日時", "Preferred times")),
        "slot" => Some(("日時", "Date and time")),
        _ => None,
    };
    if let Some((ja, en)) = fixed {
        return pick(lang, ja, en).to_string();
    }
    mailbox::threads::pathway::templates()
        .iter()
        .flat_map(|t| t.stages.iter())
        .flat_map(|s| s.fields.iter())
        .find(|f| f.name == name)
        .map(|f| match lang {
            Lang::Ja => f.label_ja.clone(),
            Lang::En => f.label_en.clone(),
        })
        .unwrap_or_else(|| name.to_string())
}

// --- texts ---------------------------------------------------------------------

pub struct ThreadTexts {
    pub state: &'static str,
    pub requester: &'static str,
    pub target: &'static str,
    pub urgency: &'static str,
    pub wanted_by: &'static str,
    pub overdue: &'static str,
    pub booked_slot: &'static str,
    pub history: &'static str,
    pub signed_by: &'static str,
    pub sig_valid: &'static str,
    pub sig_unknown_signer: &'static str,
    pub sig_bad: &'static str,
    pub sig_mismatch: &'static str,
    pub broken_body: &'static str,
    pub broken_key_slot: &'static str,
    pub broken_other: &'static str,
    pub fingerprint: &'static str,
    pub signed_sha256: &'static str,
    pub subject: &'static str,
    pub patient: &'static str,
    pub consent: &'static str,
    pub consent_written: &'static str,
    pub consent_verbal: &'static str,
    pub consent_by: &'static str,
    pub attachments: &'static str,
    pub pdf: &'static str,
    pub open_viewer: &'static str,
    pub actions: &'static str,
    pub read_only: &'static str,
    pub comment: &'static str,
    pub reply_letter: &'static str,
    pub next_facility: &'static str,
    pub done: &'static str,
    pub back_to_inbox: &'static str,
    pub bytes: &'static str,
    pub files: &'static str,
    pub forward: &'static str,
    pub forward_hint: &'static str,
    pub forward_to: &'static str,
    pub forward_button: &'static str,
    pub no_colleagues: &'static str,
}

static JA: ThreadTexts = ThreadTexts {
    state: "状態",
    requester: "依頼元",
    target: "依頼先",
    urgency: "緊急度",
    wanted_by: "希望期日",
    overdue: "期日超過",
    booked_slot: "予約日時",
    history: "経過",
    signed_by: "署名者",
    sig_valid: "署名は有効です",
    sig_unknown_signer: "署名者の鍵が登録されていません（検証できません）",
    sig_bad: "署名が一致しません：内容が署名後に変更されています",
    sig_mismatch: "署名は有効ですが、署名者が送信者と一致しません",
    broken_body: "本文が壊れているか改ざんされています（復号・検証できません）",
    broken_key_slot: "鍵スロットが壊れているか改ざんされています（開けません）",
    broken_other: "この項目を開けません",
    fingerprint: "鍵の指紋",
    signed_sha256: "署名対象のSHA-256",
    subject: "件名",
    patient: "患者",
    consent: "患者同意",
    consent_written: "書面",
    consent_verbal: "口頭",
    consent_by: "取得者",
    attachments: "添付ファイル",
    pdf: "PDF出力",
    open_viewer: "画像を表示（ビューア）",
    actions: "操作",
    read_only: "閲覧のみです。この画面から変更できる操作はありません。",
    comment: "コメント",
    reply_letter: "返書の本文",
    next_facility: "次の段階を記入する施設",
    done: "操作を記録しました。",
    back_to_inbox: "受信箱へ戻る",
    bytes: "バイト",
    files: "添付ファイル（複数可）",
    forward: "転送",
    forward_hint: "自施設の医師に転送します。転送先の医師はこのスレッドを閲覧できます（返書・レポートなどの操作は宛先の医師が行います）。",
    forward_to: "転送先の医師",
    forward_button: "転送する",
    no_colleagues: "転送できる自施設の医師がいません。",
};

static EN: ThreadTexts = ThreadTexts {
    state: "State",
    requester: "From",
    target: "To",
    urgency: "Urgency",
    wanted_by: "Wanted by",
    overdue: "overdue",
    booked_slot: "Booked time",
    history: "History",
    signed_by: "Signed by",
    sig_valid: "Signature verified",
    sig_unknown_signer: "The signer's key is not on record (cannot verify)",
    sig_bad: "Bad signature: the content was changed after signing",
    sig_mismatch: "A valid signature, but not by the sender",
    broken_body: "The body is damaged or was tampered with (cannot be decrypted and verified)",
    broken_key_slot: "The key slot is damaged or was tampered with (cannot be opened)",
    broken_other: "This item cannot be opened",
    fingerprint: "Key fingerprint",
    signed_sha256: "SHA-256 of the signed content",
    subject: "Subject",
    patient: "Patient",
    consent: "Patient consent",
    consent_written: "written",
    consent_verbal: "verbal",
    consent_by: "obtained by",
    attachments: "Attachments",
    pdf: "Export PDF",
    open_viewer: "View images",
    actions: "Actions",
    read_only: "Read only: nothing can be changed from this page.",
    comment: "Comment",
    reply_letter: "Reply letter",
    next_facility: "Facility that fills the next stage",
    done: "Recorded.",
    back_to_inbox: "Back to the inbox",
    bytes: "bytes",
    files: "Attachments (several allowed)",
    forward: "Forward",
    forward_hint: "Forward to a doctor of your facility. They can read this thread; the steps (reply, report, …) stay with the addressed doctor.",
    forward_to: "Doctor to forward to",
    forward_button: "Forward",
    no_colleagues: "There is no other doctor in your facility to forward to.",
};

fn texts(lang: Lang) -> &'static ThreadTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

// --- views ---------------------------------------------------------------------

pub struct AttachmentLink {
    pub href: String,
    pub name: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
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
    pub zip: Option<crate::study_zip::ZipLinks>,
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
    title: &'static str,
    state: &'static str,
    requester: String,
    target: String,
    urgency: &'static str,
    urgent: bool,
    wanted_by: String,
    overdue: bool,
    booked_slot: String,
    steps: Vec<StepView>,
    actions: Vec<ActionForm>,
    thread_id: String,
    error: Option<String>,
    done: bool,
    /// Offered to whoever may forward: the facility's other doctors (ID, name).
    forward: Option<Vec<(String, String)>>,
    /// Forms with files warn above this total (`[attachments] warn_above_mib`).
    warn_above_bytes: u64,
    size_warning: &'static str,
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
        at: jst(item.created_at, false),
        sig_ok: item.signature == SignatureStatus::Valid,
        sig_text: signature_text(tt, item.signature),
        fingerprint: item.signer_fingerprint.clone().unwrap_or_default(),
        signed_sha256: item.signed_sha256.clone(),
        subject: item.subject.clone(),
        patient,
        consent: item.consent.as_ref().map(|c| {
            format!(
                "{} {}（{} {}）",
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
        fields: item
            .fields
            .iter()
            .map(|(n, v)| FieldLine {
                label: field_label(lang, n),
                value: v.clone(),
            })
            .collect(),
        attachments,
        dicom_files,
        zip: None,
        pdf_href: format!("/api/v1/envelopes/{}/pdf", item.id),
        viewer_href: super::viewer::href_for(item),
        broken: None,
    }
}

fn broken_view(
    lang: Lang,
    kind: &str,
    row: &mailbox::store::thread::StepRow,
    e: &Error,
) -> StepView {
    let tt = texts(lang);
    let what = match e {
        Error::Tampered("key_slot") => tt.broken_key_slot,
        Error::Tampered(_) => tt.broken_body,
        _ => tt.broken_other,
    };
    StepView {
        id: row.envelope_id.clone(),
        label: step_label(lang, kind, row.step.as_deref()),
        signer: row.sender_id.clone(),
        signer_facility: row.sender_facility.clone().unwrap_or_default(),
        at: jst(row.created_at, false),
        sig_ok: false,
        sig_text: what,
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

/// The forms for the steps the domain allows this reader now.
async fn action_forms(
    state: &AppState,
    lang: Lang,
    thread: &ThreadRow,
    allowed: &[&'static str],
    own_facility: Option<&FacilityCode>,
) -> Vec<ActionForm> {
    let tt = texts(lang);
    let field = |name: &str, required: bool, long: bool, value: &str| ActionField {
        name: name.to_string(),
        label: field_label(lang, name),
        required,
        long,
        value: value.to_string(),
    };
    let comment = |required: bool| ActionField {
        name: "body".into(),
        label: tt.comment.into(),
        required,
        long: true,
        value: String::new(),
    };
    let mut forms = Vec::new();
    for step in allowed.iter().filter_map(|s| Step::parse(s).ok()) {
        let (button_ja, button_en, danger, fields) = match step {
            Step::Accept => ("受け付ける", "Accept", false, vec![comment(false)]),
            Step::Report => (
                "レポートを送る",
                "Send the report",
                false,
                vec![
                    field("findings", true, true, ""),
                    field("impression", true, true, ""),
                    comment(false),
                ],
            ),
            Step::Decline => (
                "お断りする",
                "Decline",
                true,
                vec![field("reason", true, true, "")],
            ),
            Step::Reply => (
                "返書を送る",
                "Send the reply letter",
                false,
                vec![ActionField {
                    name: "body".into(),
                    label: tt.reply_letter.into(),
                    required: true,
                    long: true,
                    value: String::new(),
                }],
            ),
            Step::Withdraw => ("取り下げる", "Withdraw", true, vec![comment(false)]),
            Step::Acknowledge => ("確認しました", "Acknowledge", false, vec![]),
            Step::Confirm => (
                "予約を確定する",
                "Confirm the booking",
                false,
                vec![field(
                    "slot",
                    thread.booked_slot.is_none(),
                    false,
                    thread.booked_slot.as_deref().unwrap_or(""),
                )],
            ),
            Step::Propose => (
                "別の日時を提案する",
                "Propose another time",
                false,
                vec![field("slot", true, false, ""), comment(false)],
            ),
            Step::Cancel => (
                "予約を取り消す",
                "Cancel the booking",
                true,
                vec![comment(false)],
            ),
            Step::Stage => {
                let stage_fields = thread
                    .template
                    .as_deref()
                    .and_then(|t| mailbox::threads::pathway::template(t).ok())
                    .and_then(|t| {
                        let i = usize::try_from(thread.stage.unwrap_or(0)).ok()?;
                        t.stages.get(i).cloned()
                    })
                    .map(|s| {
                        s.fields
                            .iter()
                            .map(|f| ActionField {
                                name: f.name.clone(),
                                label: match lang {
                                    Lang::Ja => f.label_ja.clone(),
                                    Lang::En => f.label_en.clone(),
                                },
                                required: f.required,
                                long: false,
                                value: String::new(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                ("この段階を記入する", "Fill this stage", false, stage_fields)
            }
        };
        let next_facilities = if step == Step::Stage {
            match state.directory.facilities().await {
                Ok(all) => all
                    .into_iter()
                    .filter(|f| f.active_until.is_none())
                    .filter(|f| own_facility != Some(&f.code))
                    .map(|f| (f.code.to_string(), f.name))
                    .collect(),
                Err(_) => Vec::new(),
            }
        } else {
            Vec::new()
        };
        forms.push(ActionForm {
            step: step.as_str(),
            label: step_label(lang, &thread.kind, Some(step.as_str())),
            button: pick(lang, button_ja, button_en),
            danger,
            fields,
            next_facilities,
            files: matches!(step, Step::Reply | Step::Report),
        });
    }
    forms
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
    for s in &view.steps {
        steps.push(match &s.opened {
            Ok(item) => StepView {
                zip: crate::study_zip::page_links(state, &ctx.session, lang, item).await,
                ..step_view(state, lang, &mut names, &thread.kind, item).await
            },
            Err(e) => broken_view(lang, &thread.kind, &s.row, e),
        });
    }
    let requester = {
        let (who, _) = names.person(state, &thread.requester_id).await;
        match &thread.requester_facility {
            Some(code) => format!("{} — {who}", names.facility(state, code).await),
            None => who,
        }
    };
    let target = {
        let facility = names.facility(state, &thread.target_facility).await;
        match thread.target.strip_prefix("account:") {
            Some(acc) => format!("{facility} — {}", names.person(state, acc).await.0),
            None => format!(
                "{facility} — {}",
                pick(lang, "地域連携室", "liaison office")
            ),
        }
    };
    let actions = action_forms(
        state,
        lang,
        thread,
        &view.allowed_steps,
        ctx.session.account.facility.as_ref(),
    )
    .await;
    let forward = if state.threads.may_forward(&ctx.session, thread).await {
        Some(colleagues(state, &ctx.session.account).await)
    } else {
        None
    };
    let overdue = thread.closed_at.is_none()
        && thread
            .wanted_by
            .as_deref()
            .is_some_and(|w| w < today_jst().as_str());
    let (status, error) = match error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    let page = ThreadPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        tt,
        title: kind_label(lang, &thread.kind),
        state: state_label(lang, &thread.state),
        requester,
        target,
        urgency: urgency_label(lang, &thread.urgency),
        urgent: thread.urgency == "urgent",
        wanted_by: thread.wanted_by.clone().unwrap_or_default(),
        overdue,
        booked_slot: thread.booked_slot.clone().unwrap_or_default(),
        steps,
        actions,
        thread_id: thread.id.clone(),
        error,
        done,
        forward,
        warn_above_bytes: state.upload.warn_above_bytes,
        size_warning: super::compose::size_warning_text(lang),
    };
    render(status, lang, query, &page)
}

/// The other doctors of the reader's facility, by name (those a thread can be
/// forwarded to; the domain checks again when it is).
async fn colleagues(state: &AppState, me: &mailbox::Account) -> Vec<(String, String)> {
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
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let ctx = match PageCtx::ready(&state, &headers, query.as_deref()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let done = query.as_deref().is_some_and(|q| q.contains("done=1"));
    thread_page(&state, ctx, &id, None, done, query.as_deref()).await
}

/// Names an action form may send besides the step's structured fields.
const NOT_FIELDS: &[&str] = &["csrf", "step", "body", "next_facility"];

/// The step a form names, with its text and structured fields.
fn step_input(form: &[(String, String)]) -> Result<StepInput, Error> {
    let value = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let step = Step::parse(&value("step"))?;
    Ok(StepInput {
        step,
        body: value("body"),
        fields: form
            .iter()
            .filter(|(k, v)| !NOT_FIELDS.contains(&k.as_str()) && !v.trim().is_empty())
            .cloned()
            .collect(),
        next_facility: Some(value("next_facility"))
            .filter(|s| !s.trim().is_empty())
            .map(|s| FacilityCode::parse(&s))
            .transpose()?,
    })
}

/// Back to the thread after a step or a forward: its page with the notice, or
/// with what was refused.
async fn after_change(
    state: &AppState,
    ctx: PageCtx,
    id: &str,
    result: Result<(), Error>,
) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/threads/{id}?done=1")).into_response(),
        Err(e) => {
            if matches!(e, Error::NotFound(_)) {
                return error_page(ctx, &e, None);
            }
            let status = status_of(e.kind());
            let text = message(ctx.lang, &e);
            thread_page(state, ctx, id, Some((status, text)), false, None).await
        }
    }
}

/// `POST /threads/{id}/steps` — the step, its text and fields, as a plain form.
/// The domain decides whether this reader may take it (a clerk never may).
async fn take_step(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = match PageCtx::ready(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    act(&state, ctx, &id, Ok(form), Vec::new()).await
}

/// Takes the step the form names, with its files, and shows the outcome. A
/// step whose files total more than `[attachments] warn_above_mib` is logged
/// as the compose page and the API log it (the form warned before sending).
async fn act(
    state: &AppState,
    ctx: PageCtx,
    id: &str,
    form: Result<Vec<(String, String)>, Error>,
    attachments: Vec<mailbox::postroom::OutgoingAttachment>,
) -> Response {
    let (attachments, total) = crate::envelopes::counted(attachments);
    let result = match form.and_then(|f| step_input(&f)) {
        Ok(input) => state
            .threads
            .act(&ctx.session, id, input, attachments)
            .await
            .map(|envelope_id| {
                let total = total.load(std::sync::atomic::Ordering::Relaxed);
                let _ = crate::envelopes::large_item_warning(&state.upload, &envelope_id, total);
            }),
        Err(e) => Err(e),
    };
    after_change(state, ctx, id, result).await
}

/// `POST /threads/{id}/steps/files` — a reply letter or report with files
/// (multipart, the `csrf` field first). Files are staged as on the plain
/// compose form, never held whole in memory.
async fn take_step_with_files(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    CheckedMultipart(mut multipart): CheckedMultipart,
) -> Response {
    let ctx = match PageCtx::ready(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut form = Vec::new();
    let mut files = Vec::new();
    let received: Result<(), Error> = async {
        while let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|e| bad_form(format!("multipart: {e}")))?
        {
            if field.file_name().is_some() {
                files.extend(stage_file(&mut field).await?);
            } else {
                let name = field.name().unwrap_or_default().to_string();
                form.push((name, read_text(&mut field).await?));
            }
        }
        Ok(())
    }
    .await;
    let attachments = files.into_iter().map(|f| f.into_attachment()).collect();
    act(&state, ctx, &id, received.map(|()| form), attachments).await
}

/// `POST /threads/{id}/forward` — to a doctor of the reader's facility; the
/// domain decides who may (a doctor's own items, a liaison's shared inbox).
async fn forward(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = match PageCtx::ready(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let to = form
        .iter()
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let chosen = if to.trim().is_empty() {
        Err(Error::invalid(
            "to",
            "choose the doctor to forward to",
            "転送先の医師を選んでください。",
        ))
    } else {
        AccountId::parse(to)
    };
    let result = match chosen {
        Ok(to) => state.threads.forward(&ctx.session, &id, &to).await,
        Err(e) => Err(e),
    };
    after_change(&state, ctx, &id, result).await
}

#[derive(Template)]
#[template(path = "thread_item.html")]
struct ItemPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    tt: &'static ThreadTexts,
    title: &'static str,
    step: StepView,
}

/// `GET /items/{id}` — an item outside any thread (a thread's step goes to
/// its thread).
async fn item(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let ctx = match PageCtx::ready(&state, &headers, query.as_deref()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let opened = match state.postroom.open(&ctx.session, &id).await {
        Ok(o) => o,
        Err(e) => return error_page(ctx, &e, query.as_deref()),
    };
    if let Some(thread) = &opened.thread_id {
        return Redirect::to(&format!("/threads/{thread}")).into_response();
    }
    let mut names = Names::default();
    let step = StepView {
        zip: crate::study_zip::page_links(&state, &ctx.session, lang, &opened).await,
        ..step_view(&state, lang, &mut names, &opened.kind, &opened).await
    };
    let page = ItemPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        tt: texts(lang),
        title: kind_label(lang, &opened.kind),
        step,
    };
    render(StatusCode::OK, lang, query.as_deref(), &page)
}

/// RFC 5987 `attr-char`s: everything else in `filename*` is percent-encoded.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Disposition` for a download: always an attachment, the name cut
/// to its last path segment and stripped of control characters, an ASCII
/// `filename` fallback and the exact name as RFC 6266 / 5987 `filename*`.
pub(crate) fn content_disposition(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim().trim_start_matches('.').trim();
    let clean = if clean.is_empty() {
        "attachment"
    } else {
        clean
    };
    let ascii: String = clean
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        utf8_percent_encode(clean, ATTR_CHAR)
    )
}

/// `GET /items/{id}/attachments/{index}` — as the API's download (resumable
/// with `Range`, aborted if the blob does not match its signed manifest),
/// under the file's own name, always as a download.
async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, index)): Path<(String, usize)>,
) -> Response {
    let ctx = match PageCtx::ready(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let prepared = match state.postroom.attachment(&ctx.session, &id, index).await {
        Ok(p) => p,
        Err(e) => return error_page(ctx, &e, None),
    };
    let disposition = HeaderValue::from_str(&content_disposition(&prepared.info.name))
        .unwrap_or(HeaderValue::from_static("attachment"));
    attachment_download(&headers, &id, prepared, disposition)
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn download_names_cannot_traverse_or_inject_headers() {
        assert_eq!(
            content_disposition("../../etc/passwd"),
            "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
        );
        assert_eq!(
            content_disposition("C:\\Windows\\evil.exe"),
            "attachment; filename=\"evil.exe\"; filename*=UTF-8''evil.exe"
        );
        let injected = content_disposition("a.dcm\r\nSet-Cookie: x=1");
        assert!(
            !injected.contains('\r') && !injected.contains('\n'),
            "{injected}"
        );
        assert!(injected.contains("filename*=UTF-8''a.dcmSet-Cookie%3A%20x%3D1"));
        let quoted = content_disposition("a\"b;c.png");
        assert!(
            quoted.starts_with("attachment; filename=\"a_b_c.png\";"),
            "{quoted}"
        );
        assert_eq!(
            content_disposition("胸部CT.dcm"),
            "attachment; filename=\"__CT.dcm\"; filename*=UTF-8''%E8%83%B8%E9%83%A8CT.dcm"
        );
        assert_eq!(
            content_disposition("..."),
            "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"
        );
    }
}
