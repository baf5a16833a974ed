//! Pages: compose (`/compose?kind=…`) for a plain message (`kind=message`,
//! no thread) and every kind of thread — reading request, referral,
//! information share, booking and care pathway — with the
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
use mailbox::postroom::{
    Consent, ConsentGiver, ConsentMethod, Outgoing, PatientConfirmation, Recipient, Submitted,
};
use mailbox::threads::{NewThread, Urgency};
use mailbox::workflow::ThreadKind;
use mailbox::{AccountId, Error, FacilityCode, Role};
use serde::Deserialize;

use super::form_upload::{bad_form, media_type_of, read_text, stage_file, staged};
use super::labels::kind_label;
use super::once;
use super::{Chrome, PageCtx, PageSession, message, render};
use crate::AppState;
use crate::http::csrf::CheckedMultipart;
use crate::http::error::status_of;
use crate::http::upload::{
    AttachmentSpec, attachment_channels, counted, feed_and_finish, large_item_warning,
};
use crate::i18n::{Lang, Texts};

mod texts;
mod values;

pub(super) use texts::size_warning_text;
use texts::*;
use values::*;

const COMPOSE_JS: &str = include_str!("../../../static/compose.js");
const SIZE_WARNING_JS: &str = include_str!("../../../static/size_warning.js");

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

/// The kind of a plain message (an item outside any thread).
const MESSAGE: &str = "message";

/// What the form writes: a plain message or a thread of some kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ComposeKind {
    Message,
    Thread(ThreadKind),
}

impl ComposeKind {
    /// An unknown or missing kind opens a reading request.
    fn parse(s: &str) -> Self {
        if s.trim() == MESSAGE {
            return Self::Message;
        }
        Self::Thread(ThreadKind::parse(s).unwrap_or(ThreadKind::ReadingRequest))
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Message => MESSAGE,
            Self::Thread(k) => k.as_str(),
        }
    }

    fn label(self, lang: Lang) -> &'static str {
        match self {
            Self::Message => texts(lang).message_kind,
            Self::Thread(k) => kind_label(lang, k.as_str()),
        }
    }

    /// Every tab of the page, in order.
    fn all() -> impl Iterator<Item = Self> {
        ThreadKind::ALL
            .into_iter()
            .map(Self::Thread)
            .chain([Self::Message])
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

/// One care-pathway template's first-stage fields; all are on the page, the
/// chosen one shown (compose.js shows another when the choice changes).
pub struct TemplateFields {
    pub id: String,
    pub selected: bool,
    pub fields: Vec<StageField>,
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
    /// Booking: the chosen facility takes no bookings, so nothing can be sent.
    blocked: bool,
    /// Pathway: templates, and each one's first-stage fields.
    templates: Vec<Choice>,
    template_fields: Vec<TemplateFields>,
    v: Values,
    error: Option<String>,
    /// Above this total of the files picked, compose.js shows `size_warning`.
    warn_above_bytes: u64,
    /// This rendering's token: a second POST of the same form sends nothing new.
    submit_token: String,
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
    pub consent_given_by: String,
    #[serde(default)]
    pub consent_relation: String,
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
    pub history: String,
    #[serde(default)]
    pub medication: String,
    #[serde(default)]
    pub course: String,
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
    "consent_given_by",
    "consent_relation",
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

/// The role table's answer, so the page says what the service would.
fn may_compose(role: Role) -> Result<(), Error> {
    if mailbox::roles::permits(role, mailbox::roles::Action::Send) {
        Ok(())
    } else {
        Err(Error::RoleForbids {
            role,
            action: mailbox::roles::Action::Send,
        })
    }
}

/// `GET /compose?kind=reading_request` (and `&facility=` for a booking,
/// `&template=` for a pathway).
async fn form(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    RawQuery(query): RawQuery,
) -> Response {
    let q: FormQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let kind = ComposeKind::parse(&q.kind);
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

/// Who can be written to, by facility: its liaison office, then its doctors
/// (not the writer; a pathway goes to a liaison office only).
fn recipient_groups(
    c: &ComposeTexts,
    kind: ComposeKind,
    v: &Values,
    me: &mailbox::Account,
    facilities: &[mailbox::Facility],
    accounts: &[mailbox::Account],
) -> Vec<FacilityGroup> {
    let mut recipients = Vec::new();
    for f in facilities.iter().filter(|f| f.active_until.is_none()) {
        let code = f.code.to_string();
        let mut choices = vec![Choice {
            value: format!("liaison:{code}"),
            label: format!("{}（{}）", c.liaison_office, f.name),
            selected: v.to == format!("liaison:{code}"),
        }];
        // A pathway is handed to a liaison office only.
        if kind != ComposeKind::Thread(ThreadKind::Pathway) {
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
    recipients
}

/// Each pathway template's first-stage fields, the chosen one (else the
/// first) with what was typed so far.
fn template_fields(
    lang: Lang,
    templates: &[mailbox::threads::pathway::PathwayTemplate],
    v: &Values,
) -> Vec<TemplateFields> {
    let chosen = templates
        .iter()
        .find(|t| t.id == v.template)
        .or(templates.first())
        .map(|t| t.id.clone())
        .unwrap_or_default();
    templates
        .iter()
        .map(|t| {
            let selected = t.id == chosen;
            let fields = t
                .stages
                .first()
                .map(|s| {
                    s.fields
                        .iter()
                        .map(|f| StageField {
                            value: if selected {
                                v.extra_value(&f.name)
                            } else {
                                String::new()
                            },
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
            TemplateFields {
                id: t.id.clone(),
                selected,
                fields,
            }
        })
        .collect()
}

/// The bookable things of the chosen facility; with none chosen, the first
/// facility that takes bookings is chosen.
async fn booking_resources(
    state: &AppState,
    ctx: &PageCtx,
    facilities: &[mailbox::Facility],
    v: &mut Values,
) -> Vec<Choice> {
    let threads = &state.threads;
    let mut found = Vec::new();
    if let Ok(code) = FacilityCode::parse(&v.facility) {
        found = threads
            .resources(&ctx.session, &code)
            .await
            .unwrap_or_default();
    } else {
        for f in facilities.iter().filter(|f| f.active_until.is_none()) {
            let here = threads
                .resources(&ctx.session, &f.code)
                .await
                .unwrap_or_default();
            if !here.is_empty() {
                v.facility = f.code.to_string();
                found = here;
                break;
            }
        }
    }
    found
        .into_iter()
        .map(|r| Choice {
            selected: v.resource_id == r.id,
            label: format!("{}（{}）", r.name, r.opening_hours),
            value: r.id,
        })
        .collect()
}

async fn page(
    state: &AppState,
    ctx: PageCtx,
    kind: ComposeKind,
    mut v: Values,
    error: Option<(StatusCode, String)>,
    query: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let c = texts(lang);
    let me = &ctx.session.account;
    let facilities = state.directory.facilities().await.unwrap_or_default();
    let accounts = state.directory.accounts(None).await.unwrap_or_default();
    let recipients = recipient_groups(c, kind, &v, me, &facilities, &accounts);
    let resources = if kind == ComposeKind::Thread(ThreadKind::Booking) {
        booking_resources(state, &ctx, &facilities, &mut v).await
    } else {
        Vec::new()
    };
    let facility_choices = facilities
        .iter()
        .filter(|f| f.active_until.is_none())
        .map(|f| Choice {
            value: f.code.to_string(),
            label: format!("{}（{}）", f.name, f.code),
            selected: v.facility == f.code.as_str(),
        })
        .collect();
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
    let template_fields = template_fields(lang, &all_templates, &v);
    let (status, error) = match error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    let view = ComposePage {
        lang,
        t: lang.texts(),
        c,
        kind: kind.as_str(),
        kind_title: kind.label(lang),
        kinds: ComposeKind::all()
            .map(|k| KindTab {
                kind: k.as_str(),
                label: k.label(lang),
                current: k == kind,
            })
            .collect(),
        blocked: kind == ComposeKind::Thread(ThreadKind::Booking) && resources.is_empty(),
        recipients,
        facilities: facility_choices,
        resources,
        templates,
        template_fields,
        v,
        error,
        warn_above_bytes: state.upload.warn_above_bytes,
        submit_token: once::new_token(),
        chrome: ctx.chrome,
    };
    render(status, lang, query, &view)
}

/// A file the browser names in the `manifest` part (compose.js).
#[derive(Deserialize)]
struct ManifestEntry {
    name: String,
    #[serde(default)]
    media_type: String,
}

/// `POST /compose` (multipart; see the module comment for the two shapes).
async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    CheckedMultipart(multipart): CheckedMultipart,
) -> Result<Response, Response> {
    // The session only after the CSRF check of the first part, so a stale
    // form is refused as such rather than sent to sign in.
    let ctx = PageCtx::ready(&state, &headers, None).await?;
    let mut values = Values::default();
    let mut kind_name = String::new();
    let outcome = receive(&state, &ctx, multipart, &mut values, &mut kind_name).await;
    Ok(match outcome {
        Ok(made) => Redirect::to(&match made.thread_id {
            Some(thread) => format!("/threads/{thread}"),
            None => format!("/items/{}", made.envelope_id),
        })
        .into_response(),
        Err(e) => {
            let kind = ComposeKind::parse(&kind_name);
            let status = status_of(e.kind());
            let text = message(ctx.lang, &e);
            page(&state, ctx, kind, values, Some((status, text)), None).await
        }
    })
}

/// Reads the form's text, then hands the files to sealing (streamed with a
/// manifest, else staged).
async fn receive(
    state: &AppState,
    ctx: &PageCtx,
    mut multipart: Multipart,
    values: &mut Values,
    kind_name: &mut String,
) -> Result<Submitted, Error> {
    may_compose(ctx.session.account.role)?;
    let mut staged: Vec<staged::Staged> = Vec::new();
    let mut manifest: Option<Vec<ManifestEntry>> = None;
    let mut texts: Vec<(String, String)> = Vec::new();
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
        if name != once::FIELD {
            set_value(values, kind_name, &name, value.clone());
        }
        texts.push((name, value));
    }
    let new = match ComposeKind::parse(kind_name) {
        ComposeKind::Message => New::Message(new_message(values)?),
        ComposeKind::Thread(_) => New::Thread(new_thread(ThreadKind::parse(kind_name)?, values)?),
    };
    let held = match once::begin(&state.postroom, &ctx.session, "POST /compose", &texts).await? {
        once::Begun::Sent(made) => return Ok(made),
        once::Begun::Send(held) => held,
    };
    let key = held.as_ref().map(once::Once::idempotency);
    let sender = Sender {
        state: state.clone(),
        session: ctx.session.clone(),
    };
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
            let task = tokio::spawn(async move { sender.send(new, attachments, key).await });
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
            let created = sender.send(new, attachments, key).await?;
            (created, total)
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

/// What the form makes.
enum New {
    Message(Outgoing),
    Thread(NewThread),
}

/// Sends what the form made, on the session's behalf.
struct Sender {
    state: AppState,
    session: mailbox::CurrentSession,
}

impl Sender {
    async fn send(
        &self,
        new: New,
        attachments: Vec<mailbox::postroom::OutgoingAttachment>,
        key: Option<mailbox::postroom::Idempotency>,
    ) -> Result<Submitted, Error> {
        let no = PatientConfirmation::default();
        match new {
            New::Message(outgoing) => {
                let envelope_id = self
                    .state
                    .postroom
                    .send_with_key(&self.session, outgoing, attachments, no, key)
                    .await?;
                Ok(Submitted {
                    envelope_id,
                    thread_id: None,
                })
            }
            New::Thread(thread) => {
                let created = self
                    .state
                    .threads
                    .open_with_key(&self.session, thread, attachments, no, key)
                    .await?;
                Ok(Submitted {
                    envelope_id: created.envelope_id,
                    thread_id: Some(created.thread_id),
                })
            }
        }
    }
}
