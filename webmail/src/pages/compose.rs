//! Pages: compose (`/compose?kind=…`) for every kind of thread — reading
//! request, referral, information share, booking and care pathway — with the
//! patient, the consent record and any number of attachments (files, a
//! folder; `static/compose.js` also unpacks a ZIP in the browser and shows a
//! progress bar per file). When the files picked add up to more than
//! `[attachments] warn_above_mib`, compose.js warns before sending; the item
//! is still sent (a soft warning, never a limit), and the server logs it.
//!
//! `POST /compose` is multipart and streams: with JavaScript the form's text
//! comes first, then a `manifest` part naming the files, so sealing starts at
//! once and each file part flows straight into its sealed blob (the API's
//! path, `attachment_channels` + `feed_and_finish`). A plain form (no
//! JavaScript) names each file only in its own part, after the previous
//! file's bytes, while sealing needs every name first: those parts go through
//! [`staged`], encrypted temp files under a key held only by the request.
//! Either way no upload is ever held whole in memory.

use std::sync::atomic::Ordering;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use mailbox::postroom::{Consent, ConsentMethod, Recipient};
use mailbox::threads::workflow::ThreadKind;
use mailbox::threads::{Created, NewThread, Urgency};
use mailbox::{AccountId, Error, FacilityCode, Role};
use serde::Deserialize;

use super::thread::kind_label;
use super::{Chrome, PageCtx, message, render};
use crate::AppState;
use crate::csrf::CheckedMultipart;
use crate::envelopes::{
    AttachmentSpec, attachment_channels, counted, feed_and_finish, large_item_warning,
};
use crate::error::status_of;
use crate::i18n::{Lang, Texts};

const COMPOSE_JS: &str = include_str!("../../static/compose.js");
const SIZE_WARNING_JS: &str = include_str!("../../static/size_warning.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/compose",
            get(form).post(submit).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/static/compose.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    COMPOSE_JS,
                )
            }),
        )
        .route(
            "/static/size_warning.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SIZE_WARNING_JS,
                )
            }),
        )
}

pub struct ComposeTexts {
    pub title: &'static str,
    pub to: &'static str,
    pub choose: &'static str,
    pub liaison_office: &'static str,
    pub subject: &'static str,
    pub patient: &'static str,
    pub patient_id: &'static str,
    pub patient_name: &'static str,
    pub consent: &'static str,
    pub consent_on: &'static str,
    pub consent_method: &'static str,
    pub written: &'static str,
    pub verbal: &'static str,
    pub consent_by: &'static str,
    pub consent_hint: &'static str,
    pub body: &'static str,
    pub urgency: &'static str,
    pub routine: &'static str,
    pub urgent: &'static str,
    pub wanted_by: &'static str,
    pub modality: &'static str,
    pub body_part: &'static str,
    pub clinical_question: &'static str,
    pub purpose: &'static str,
    pub diagnosis: &'static str,
    pub facility: &'static str,
    pub show_resources: &'static str,
    pub resource: &'static str,
    pub no_resources: &'static str,
    pub preferred_times: &'static str,
    pub template: &'static str,
    pub show_template: &'static str,
    pub next_facility: &'static str,
    pub attachments: &'static str,
    pub files: &'static str,
    pub folder: &'static str,
    pub attachment_hint: &'static str,
    /// Shown by compose.js when the files picked add up to more than the
    /// configured size: `{limit}` and `{total}` become sizes.
    pub size_warning: &'static str,
    pub send: &'static str,
}

static JA: ComposeTexts = ComposeTexts {
    title: "新規作成",
    to: "宛先",
    choose: "選択してください",
    liaison_office: "地域連携室",
    subject: "件名",
    patient: "患者",
    patient_id: "患者ID",
    patient_name: "患者氏名",
    consent: "患者同意",
    consent_on: "同意取得日",
    consent_method: "取得方法",
    written: "書面",
    verbal: "口頭",
    consent_by: "取得した職員",
    consent_hint: "患者情報を送るには同意の記録が必要です。",
    body: "本文",
    urgency: "緊急度",
    routine: "通常",
    urgent: "至急",
    wanted_by: "希望期日",
    modality: "検査種別",
    body_part: "検査部位",
    clinical_question: "依頼内容・臨床上の疑問",
    purpose: "紹介目的",
    diagnosis: "傷病名",
    facility: "施設",
    show_resources: "予約枠を表示",
    resource: "検査機器・予約枠",
    no_resources: "この施設には予約できる機器がありません。",
    preferred_times: "希望日時",
    template: "連携パス",
    show_template: "項目を表示",
    next_facility: "引き渡し先の施設（地域連携室）",
    attachments: "添付ファイル",
    files: "ファイル（複数可、ZIPも可）",
    folder: "フォルダごと",
    attachment_hint: "DICOM・JPEG・PNG・PDF を送れます。実行ファイルやマクロ付き文書は送れません。",
    size_warning: "添付ファイルの合計が {limit} を超えています（合計 {total}）。送信はできますが、時間がかかり、受信側のダウンロードにも時間がかかります。",
    send: "送信する",
};

static EN: ComposeTexts = ComposeTexts {
    title: "Compose",
    to: "To",
    choose: "Choose",
    liaison_office: "Liaison office",
    subject: "Subject",
    patient: "Patient",
    patient_id: "Patient ID",
    patient_name: "Patient name",
    consent: "Patient consent",
    consent_on: "Consent date",
    consent_method: "How given",
    written: "written",
    verbal: "verbal",
    consent_by: "Obtained by (staff member)",
    consent_hint: "Patient data can only be sent with the consent on record.",
    body: "Text",
    urgency: "Urgency",
    routine: "routine",
    urgent: "urgent",
    wanted_by: "Wanted by",
    modality: "Modality",
    body_part: "Body part",
    clinical_question: "Clinical question",
    purpose: "Purpose of referral",
    diagnosis: "Diagnosis",
    facility: "Facility",
    show_resources: "Show resources",
    resource: "Equipment or slot",
    no_resources: "This facility takes no bookings.",
    preferred_times: "Preferred times",
    template: "Care pathway",
    show_template: "Show fields",
    next_facility: "Hand over to (liaison office)",
    attachments: "Attachments",
    files: "Files (several, or a ZIP)",
    folder: "A whole folder",
    attachment_hint: "DICOM, JPEG, PNG and PDF can be sent; programs and documents with macros cannot.",
    size_warning: "The attachments add up to more than {limit} (total {total}). You can still send them, but sending takes a while, and so does the download at the receiving end.",
    send: "Send",
};

/// The large-item warning (`{limit}`, `{total}`), also shown by the thread
/// page's forms that carry files.
pub(super) fn size_warning_text(lang: Lang) -> &'static str {
    texts(lang).size_warning
}

fn texts(lang: Lang) -> &'static ComposeTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

/// A recipient choice: `account:ID` or `liaison:CODE`.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Recipients of one facility.
pub struct FacilityGroup {
    pub name: String,
    pub choices: Vec<Choice>,
}

pub struct KindTab {
    pub kind: &'static str,
    pub label: &'static str,
    pub current: bool,
}

pub struct StageField {
    pub name: String,
    pub label: String,
    pub required: bool,
    pub value: String,
}

#[derive(Template)]
#[template(path = "compose.html")]
struct ComposePage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    c: &'static ComposeTexts,
    kind: &'static str,
    kind_title: &'static str,
    kinds: Vec<KindTab>,
    recipients: Vec<FacilityGroup>,
    /// Booking: facilities to choose, then their resources.
    facilities: Vec<Choice>,
    resources: Vec<Choice>,
    /// Pathway: templates, the chosen one's first-stage fields.
    templates: Vec<Choice>,
    stage_fields: Vec<StageField>,
    v: Values,
    error: Option<String>,
    /// Above this total of the files picked, compose.js shows `size_warning`.
    warn_above_bytes: u64,
}

/// What the person typed, kept when the form comes back with an error.
#[derive(Default, Deserialize)]
pub struct Values {
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub patient_id: String,
    #[serde(default)]
    pub patient_name: String,
    #[serde(default)]
    pub consent_on: String,
    #[serde(default)]
    pub consent_method: String,
    #[serde(default)]
    pub consent_by: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub urgency: String,
    #[serde(default)]
    pub wanted_by: String,
    #[serde(default)]
    pub modality: String,
    #[serde(default)]
    pub body_part: String,
    #[serde(default)]
    pub clinical_question: String,
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub diagnosis: String,
    #[serde(default)]
    pub preferred_times: String,
    #[serde(default)]
    pub facility: String,
    #[serde(default)]
    pub resource_id: String,
    #[serde(default)]
    pub template: String,
    /// Every other field (a pathway stage's).
    #[serde(skip)]
    pub extra: Vec<(String, String)>,
}

impl Values {
    fn extra_value(&self, name: &str) -> String {
        self.extra
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// The GET parameters that choose the form (no patient data).
#[derive(Deserialize, Default)]
struct FormQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    facility: String,
    #[serde(default)]
    template: String,
}

/// Form fields that are not structured fields of the thread.
const OWN_FIELDS: &[&str] = &[
    "csrf",
    "kind",
    "to",
    "subject",
    "patient_id",
    "patient_name",
    "consent_on",
    "consent_method",
    "consent_by",
    "body",
    "urgency",
    "wanted_by",
    "facility",
    "resource_id",
    "template",
    "manifest",
    "attachments",
    "folder",
];

fn may_compose(role: Role) -> Result<(), Error> {
    match role {
        Role::Doctor | Role::Liaison => Ok(()),
        Role::Clerk | Role::Operator => Err(Error::Forbidden),
    }
}

/// `GET /compose?kind=reading_request` (and `&facility=` for a booking,
/// `&template=` for a pathway).
async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let ctx = match PageCtx::ready(&state, &headers, query.as_deref()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let q: FormQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let kind = ThreadKind::parse(&q.kind).unwrap_or(ThreadKind::ReadingRequest);
    let values = Values {
        facility: q.facility,
        template: q.template,
        ..Values::default()
    };
    let error = may_compose(ctx.session.account.role)
        .err()
        .map(|e| (status_of(e.kind()), message(ctx.lang, &e)));
    page(&state, ctx, kind, values, error, query.as_deref()).await
}

async fn page(
    state: &AppState,
    ctx: PageCtx,
    kind: ThreadKind,
    v: Values,
    error: Option<(StatusCode, String)>,
    query: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let c = texts(lang);
    let me = &ctx.session.account;
    let facilities = state.directory.facilities().await.unwrap_or_default();
    let accounts = state.directory.accounts(None).await.unwrap_or_default();
    let mut recipients = Vec::new();
    for f in facilities.iter().filter(|f| f.active_until.is_none()) {
        let code = f.code.to_string();
        let mut choices = vec![Choice {
            value: format!("liaison:{code}"),
            label: format!("{}（{}）", c.liaison_office, f.name),
            selected: v.to == format!("liaison:{code}"),
        }];
        // A pathway is handed to a liaison office only.
        if kind != ThreadKind::Pathway {
            for a in accounts.iter().filter(|a| {
                a.role == Role::Doctor
                    && !a.removed
                    && a.id != me.id
                    && a.facility.as_ref() == Some(&f.code)
            }) {
                let value = format!("account:{}", a.id.as_str());
                choices.push(Choice {
                    selected: v.to == value,
                    label: format!("{}（{}）", a.name, a.id.display_grouped()),
                    value,
                });
            }
        }
        recipients.push(FacilityGroup {
            name: format!("{}（{code}）", f.name),
            choices,
        });
    }
    let facility_choices = facilities
        .iter()
        .filter(|f| f.active_until.is_none())
        .map(|f| Choice {
            value: f.code.to_string(),
            label: format!("{}（{}）", f.name, f.code),
            selected: v.facility == f.code.as_str(),
        })
        .collect();
    let resources = match (kind, FacilityCode::parse(&v.facility)) {
        (ThreadKind::Booking, Ok(code)) => state
            .threads
            .resources(&ctx.session, &code)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| Choice {
                selected: v.resource_id == r.id,
                label: format!("{}（{}）", r.name, r.opening_hours),
                value: r.id,
            })
            .collect(),
        _ => Vec::new(),
    };
    let all_templates = state.threads.templates();
    let templates = all_templates
        .iter()
        .map(|t| Choice {
            value: t.id.clone(),
            label: match lang {
                Lang::Ja => t.name_ja.clone(),
                Lang::En => t.name_en.clone(),
            },
            selected: v.template == t.id,
        })
        .collect();
    let stage_fields = all_templates
        .iter()
        .find(|t| t.id == v.template)
        .and_then(|t| t.stages.first())
        .map(|s| {
            s.fields
                .iter()
                .map(|f| StageField {
                    value: v.extra_value(&f.name),
                    name: f.name.clone(),
                    label: match lang {
                        Lang::Ja => f.label_ja.clone(),
                        Lang::En => f.label_en.clone(),
                    },
                    required: f.required,
                })
                .collect()
        })
        .unwrap_or_default();
    let (status, error) = match error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    let view = ComposePage {
        lang,
        t: lang.texts(),
        c,
        kind: kind.as_str(),
        kind_title: kind_label(lang, kind.as_str()),
        kinds: ThreadKind::ALL
            .iter()
            .map(|k| KindTab {
                kind: k.as_str(),
                label: kind_label(lang, k.as_str()),
                current: *k == kind,
            })
            .collect(),
        recipients,
        facilities: facility_choices,
        resources,
        templates,
        stage_fields,
        v,
        error,
        warn_above_bytes: state.upload.warn_above_bytes,
        chrome: ctx.chrome,
    };
    render(status, lang, query, &view)
}

fn parse_recipient(to: &str) -> Result<Option<Recipient>, Error> {
    let to = to.trim();
    if to.is_empty() {
        return Ok(None);
    }
    if let Some(id) = to.strip_prefix("account:") {
        return Ok(Some(Recipient::Person(AccountId::parse(id)?)));
    }
    if let Some(code) = to.strip_prefix("liaison:") {
        return Ok(Some(Recipient::LiaisonInbox(FacilityCode::parse(code)?)));
    }
    Err(Error::invalid(
        "to",
        "choose a recipient from the list",
        "宛先を一覧から選んでください。",
    ))
}

fn parse_date(field: &'static str, s: &str) -> Result<Option<chrono::NaiveDate>, Error> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            Error::invalid(
                field,
                format!("{field} must look like 2026-11-30"),
                "日付は 2026-11-30 の形式で入力してください。",
            )
        })
}

/// The consent record, when any of its fields is filled (the domain refuses
/// patient data without one).
fn consent(v: &Values) -> Result<Option<Consent>, Error> {
    let any = [&v.consent_on, &v.consent_by]
        .iter()
        .any(|s| !s.trim().is_empty());
    if !any {
        return Ok(None);
    }
    let Some(obtained_on) = parse_date("consent_on", &v.consent_on)? else {
        return Err(Error::invalid(
            "consent_on",
            "give the date the consent was obtained",
            "同意取得日を入力してください。",
        ));
    };
    Ok(Some(Consent {
        obtained_on,
        method: ConsentMethod::parse(&v.consent_method)?,
        obtained_by: v.consent_by.trim().to_string(),
    }))
}

fn new_thread(kind: ThreadKind, v: &Values) -> Result<NewThread, Error> {
    let mut fields: Vec<(String, String)> = [
        ("modality", &v.modality),
        ("body_part", &v.body_part),
        ("clinical_question", &v.clinical_question),
        ("purpose", &v.purpose),
        ("diagnosis", &v.diagnosis),
        ("preferred_times", &v.preferred_times),
    ]
    .into_iter()
    .filter(|(_, val)| !val.trim().is_empty())
    .map(|(k, val)| (k.to_string(), val.clone()))
    .collect();
    fields.extend(
        v.extra
            .iter()
            .filter(|(_, val)| !val.trim().is_empty())
            .cloned(),
    );
    Ok(NewThread {
        kind,
        to: parse_recipient(&v.to)?,
        subject: v.subject.clone(),
        patient_id: v.patient_id.trim().to_string(),
        patient_name: v.patient_name.trim().to_string(),
        body: v.body.clone(),
        consent: consent(v)?,
        fields,
        urgency: Urgency::parse(&v.urgency)?,
        wanted_by: parse_date("wanted_by", &v.wanted_by)?,
        resource_id: Some(v.resource_id.clone()).filter(|s| !s.trim().is_empty()),
        template: Some(v.template.clone()).filter(|s| !s.trim().is_empty()),
    })
}

/// The longest text field taken from a form.
const TEXT_LIMIT: usize = 256 * 1024;

pub(super) fn bad_form(reason: impl Into<String>) -> Error {
    Error::invalid(
        "upload",
        reason,
        "送信内容を最後まで受け取れませんでした。もう一度送信してください。",
    )
}

fn set_value(v: &mut Values, kind: &mut String, name: &str, value: String) {
    match name {
        "kind" => *kind = value,
        "to" => v.to = value,
        "subject" => v.subject = value,
        "patient_id" => v.patient_id = value,
        "patient_name" => v.patient_name = value,
        "consent_on" => v.consent_on = value,
        "consent_method" => v.consent_method = value,
        "consent_by" => v.consent_by = value,
        "body" => v.body = value,
        "urgency" => v.urgency = value,
        "wanted_by" => v.wanted_by = value,
        "modality" => v.modality = value,
        "body_part" => v.body_part = value,
        "clinical_question" => v.clinical_question = value,
        "purpose" => v.purpose = value,
        "diagnosis" => v.diagnosis = value,
        "preferred_times" => v.preferred_times = value,
        "facility" => v.facility = value,
        "resource_id" => v.resource_id = value,
        "template" => v.template = value,
        other if !OWN_FIELDS.contains(&other) => v.extra.push((other.to_string(), value)),
        _ => {}
    }
}

/// A file the browser names in the `manifest` part (compose.js).
#[derive(Deserialize)]
struct ManifestEntry {
    name: String,
    #[serde(default)]
    media_type: String,
}

fn media_type_of(declared: &str, name: &str) -> String {
    let declared = declared.trim();
    if !declared.is_empty() && declared != "application/octet-stream" {
        return declared.to_string();
    }
    let lower = name.to_ascii_lowercase();
    let by_name = [
        (".dcm", "application/dicom"),
        (".jpg", "image/jpeg"),
        (".jpeg", "image/jpeg"),
        (".png", "image/png"),
        (".pdf", "application/pdf"),
    ]
    .into_iter()
    .find(|(ext, _)| lower.ends_with(ext))
    .map(|(_, t)| t);
    by_name.unwrap_or("application/octet-stream").to_string()
}

/// `POST /compose` (multipart; see the module comment for the two shapes).
async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    CheckedMultipart(multipart): CheckedMultipart,
) -> Response {
    let ctx = match PageCtx::ready(&state, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut values = Values::default();
    let mut kind_name = String::new();
    let outcome = receive(&state, &ctx, multipart, &mut values, &mut kind_name).await;
    match outcome {
        Ok(created) => Redirect::to(&format!("/threads/{}", created.thread_id)).into_response(),
        Err(e) => {
            let kind = ThreadKind::parse(&kind_name).unwrap_or(ThreadKind::ReadingRequest);
            let status = status_of(e.kind());
            let text = message(ctx.lang, &e);
            page(&state, ctx, kind, values, Some((status, text)), None).await
        }
    }
}

/// Reads the form's text, then hands the files to sealing (streamed with a
/// manifest, else staged).
async fn receive(
    state: &AppState,
    ctx: &PageCtx,
    mut multipart: Multipart,
    values: &mut Values,
    kind_name: &mut String,
) -> Result<Created, Error> {
    may_compose(ctx.session.account.role)?;
    let mut staged: Vec<staged::Staged> = Vec::new();
    let mut manifest: Option<Vec<ManifestEntry>> = None;
    loop {
        let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|e| bad_form(format!("multipart: {e}")))?
        else {
            break;
        };
        let name = field.name().unwrap_or_default().to_string();
        if field.file_name().is_some() {
            staged.extend(stage_file(&mut field).await?);
            continue;
        }
        let value = read_text(&mut field).await?;
        if name == "manifest" {
            let entries: Vec<ManifestEntry> =
                serde_json::from_str(&value).map_err(|e| bad_form(format!("manifest: {e}")))?;
            manifest = Some(entries);
            // Everything after the manifest is its files, in order.
            break;
        }
        set_value(values, kind_name, &name, value);
    }
    let kind = ThreadKind::parse(kind_name)?;
    let new = new_thread(kind, values)?;
    let threads = state.threads.clone();
    let session = ctx.session.clone();
    let (created, total) = match manifest {
        Some(entries) => {
            let specs = entries
                .into_iter()
                .map(|e| AttachmentSpec {
                    media_type: media_type_of(&e.media_type, &e.name),
                    name: e.name,
                })
                .collect();
            let (senders, attachments) = attachment_channels(specs);
            let (attachments, total) = counted(attachments);
            let task = tokio::spawn(async move { threads.open(&session, new, attachments).await });
            let created = feed_and_finish(multipart, senders, task)
                .await
                .map_err(|e| e.0)?;
            (created, total)
        }
        None => {
            let (attachments, total) = counted(
                staged
                    .into_iter()
                    .map(staged::Staged::into_attachment)
                    .collect(),
            );
            (threads.open(&session, new, attachments).await?, total)
        }
    };
    // The sender was warned on the page before sending; this only logs it.
    let _ = large_item_warning(
        &state.upload,
        &created.envelope_id,
        total.load(Ordering::Relaxed),
    );
    Ok(created)
}

/// A plain form's file part, staged (see [`staged`]); `None` for the one
/// nameless, empty part an empty file input sends.
pub(super) async fn stage_file(
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<Option<staged::Staged>, Error> {
    let file_name = field.file_name().unwrap_or_default().to_string();
    let media_type = field.content_type().unwrap_or_default().to_string();
    let mut writer = staged::Writer::new().map_err(|e| bad_form(e.to_string()))?;
    let mut size = 0u64;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| bad_form(format!("upload interrupted: {e}")))?
    {
        size += chunk.len() as u64;
        tokio::task::block_in_place(|| writer.write(&chunk))
            .map_err(|e| bad_form(e.to_string()))?;
    }
    if file_name.is_empty() && size == 0 {
        return Ok(None);
    }
    let reader =
        tokio::task::block_in_place(|| writer.finish()).map_err(|e| bad_form(e.to_string()))?;
    Ok(Some(staged::Staged {
        media_type: media_type_of(&media_type, &file_name),
        name: file_name,
        reader,
    }))
}

pub(super) async fn read_text(
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<String, Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| bad_form(format!("multipart: {e}")))?
    {
        if bytes.len() + chunk.len() > TEXT_LIMIT {
            return Err(Error::invalid(
                "form",
                "a text field is longer than 256 KiB",
                "入力欄の文字数が多すぎます（256KiBまで）。",
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| bad_form("a text field is not UTF-8"))
}

pub(super) mod staged {
    //! Files of a form sent without JavaScript, held until every name is
    //! known. Each file streams to an anonymous temp file (unlinked from the start,
    //! so nothing is left after a crash), encrypted with AES-256-GCM under a
    //! random key that lives only in this request's memory: 64 KiB chunks,
    //! the chunk's number and a last-chunk flag in the nonce, so a reordered,
    //! truncated or altered file fails to read back.

    use std::fs::File;
    use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

    use aes_gcm::aead::{Aead, KeyInit, OsRng};
    use aes_gcm::{Aes256Gcm, Nonce};

    const CHUNK: usize = 64 * 1024;
    const TAG: usize = 16;

    pub struct Staged {
        pub name: String,
        pub media_type: String,
        pub reader: Reader,
    }

    impl Staged {
        pub fn into_attachment(self) -> mailbox::postroom::OutgoingAttachment {
            mailbox::postroom::OutgoingAttachment {
                name: self.name,
                media_type: self.media_type,
                source: Box::new(self.reader),
            }
        }
    }

    fn nonce(counter: u64, last: bool) -> Nonce<aes_gcm::aead::consts::U12> {
        let mut n = [0u8; 12];
        n[0] = u8::from(last);
        n[4..].copy_from_slice(&counter.to_be_bytes());
        *Nonce::from_slice(&n)
    }

    fn broken() -> io::Error {
        io::Error::other("a staged upload could not be read back")
    }

    pub struct Writer {
        cipher: Aes256Gcm,
        out: BufWriter<File>,
        pending: Vec<u8>,
        counter: u64,
    }

    impl Writer {
        pub fn new() -> io::Result<Self> {
            Ok(Self {
                cipher: Aes256Gcm::new(&Aes256Gcm::generate_key(OsRng)),
                out: BufWriter::with_capacity(CHUNK + TAG + 1, tempfile::tempfile()?),
                pending: Vec::with_capacity(CHUNK),
                counter: 0,
            })
        }

        pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
            while !data.is_empty() {
                // A full chunk is written only once more data follows, so the
                // last one can carry its flag.
                if self.pending.len() == CHUNK {
                    self.flush_chunk(false)?;
                }
                let take = (CHUNK - self.pending.len()).min(data.len());
                self.pending.extend_from_slice(&data[..take]);
                data = &data[take..];
            }
            Ok(())
        }

        fn flush_chunk(&mut self, last: bool) -> io::Result<()> {
            let sealed = self
                .cipher
                .encrypt(&nonce(self.counter, last), self.pending.as_slice())
                .map_err(|_| io::Error::other("staging encryption failed"))?;
            self.out.write_all(&[u8::from(last)])?;
            self.out.write_all(&(sealed.len() as u32).to_be_bytes())?;
            self.out.write_all(&sealed)?;
            self.pending.clear();
            self.counter += 1;
            Ok(())
        }

        pub fn finish(mut self) -> io::Result<Reader> {
            self.flush_chunk(true)?;
            let mut file = self.out.into_inner().map_err(|e| e.into_error())?;
            file.rewind()?;
            Ok(Reader {
                cipher: self.cipher,
                input: BufReader::with_capacity(CHUNK + TAG + 5, file),
                plain: Vec::new(),
                at: 0,
                counter: 0,
                done: false,
            })
        }
    }

    pub struct Reader {
        cipher: Aes256Gcm,
        input: BufReader<File>,
        plain: Vec<u8>,
        at: usize,
        counter: u64,
        done: bool,
    }

    impl Reader {
        fn next_chunk(&mut self) -> io::Result<()> {
            let mut head = [0u8; 5];
            self.input.read_exact(&mut head).map_err(|_| broken())?;
            let last = match head[0] {
                0 => false,
                1 => true,
                _ => return Err(broken()),
            };
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            if len > CHUNK + TAG {
                return Err(broken());
            }
            let mut sealed = vec![0u8; len];
            self.input.read_exact(&mut sealed).map_err(|_| broken())?;
            self.plain = self
                .cipher
                .decrypt(&nonce(self.counter, last), sealed.as_slice())
                .map_err(|_| broken())?;
            self.at = 0;
            self.counter += 1;
            self.done = last;
            Ok(())
        }
    }

    impl Read for Reader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            while self.at == self.plain.len() {
                if self.done {
                    return Ok(0);
                }
                self.next_chunk()?;
            }
            let n = buf.len().min(self.plain.len() - self.at);
            buf[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn round_trip(len: usize) -> Vec<u8> {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut w = Writer::new().unwrap();
            for piece in data.chunks(10_000) {
                w.write(piece).unwrap();
            }
            let mut back = Vec::new();
            w.finish().unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "length {len}");
            back
        }

        #[test]
        fn staged_files_read_back_exactly_at_chunk_boundaries() {
            for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
                round_trip(len);
            }
        }

        #[test]
        fn a_staged_file_holds_no_plaintext_and_a_changed_byte_fails() {
            let mut w = Writer::new().unwrap();
            let secret = b"PATIENT-NAME-KAGAWA-TARO ".repeat(5000);
            w.write(&secret).unwrap();
            let mut r = w.finish().unwrap();
            let mut raw = Vec::new();
            r.input.get_mut().read_to_end(&mut raw).unwrap();
            assert!(!raw.windows(24).any(|x| x == &secret[..24]));
            // Flip a byte of the first chunk's ciphertext and read again.
            raw[10] ^= 1;
            let file = r.input.get_mut();
            file.rewind().unwrap();
            file.write_all(&raw).unwrap();
            file.rewind().unwrap();
            r.counter = 0;
            let mut out = Vec::new();
            assert!(r.read_to_end(&mut out).is_err());
        }
    }
}
