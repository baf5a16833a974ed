//! Request workflows over sealed envelopes: opening a thread, taking steps on it,
//! the liaison office's claim/assign, the clerk's overview and the statistics.
//! The rules themselves are in [`crate::workflow`]; every step is an envelope
//! signed by the person who took it, so the history is tamper-evident.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use renkei_crypto::Field;

use crate::account::{Account, AccountId, Role};
use crate::audit::{AuditEvent, action};
use crate::auth::CurrentSession;
use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::keys::Principal;
use crate::pathway::{self, PathwayTemplate};
use crate::postroom::{
    Consent, OpenedItem, OutgoingAttachment, PatientConfirmation, Postroom, Recipient, Sealing,
    ThreadLink, new_id,
};
use crate::store::StoreError;
use crate::store::thread::{
    ReadingCount, ResourceRow, StepRow, ThreadChange, ThreadPatch, ThreadRow, UsageRow,
};
use crate::workflow::{Relation, Step, ThreadKind, ThreadState, next_state};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Routine,
    Urgent,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Routine => "routine",
            Self::Urgent => "urgent",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "" | "routine" | "通常" => Ok(Self::Routine),
            "urgent" | "至急" => Ok(Self::Urgent),
            _ => Err(Error::invalid(
                "urgency",
                "urgency must be routine or urgent",
                "緊急度は「通常」または「至急」です。",
            )),
        }
    }
}

/// A new request, referral, share, booking or pathway. Plaintext: never stored.
pub struct NewThread {
    pub kind: ThreadKind,
    /// Whom it goes to; for a booking, the resource decides (its facility's
    /// shared inbox), for a pathway, the facility of the next stage.
    pub to: Option<Recipient>,
    pub subject: String,
    pub patient_id: String,
    pub patient_name: String,
    pub body: String,
    pub consent: Option<Consent>,
    pub fields: Vec<(String, String)>,
    pub urgency: Urgency,
    pub wanted_by: Option<NaiveDate>,
    pub resource_id: Option<String>,
    pub template: Option<String>,
}

/// A step someone takes. Plaintext: never stored.
pub struct StepInput {
    pub step: Step,
    pub body: String,
    pub fields: Vec<(String, String)>,
    /// Pathway: the facility whose shared inbox fills the next stage.
    pub next_facility: Option<FacilityCode>,
}

#[derive(Debug, Clone)]
pub struct Created {
    pub thread_id: String,
    pub envelope_id: String,
}

/// A thread opened for one reader: its clear state and every step, decrypted
/// and signature-checked.
pub struct ThreadView {
    pub thread: ThreadRow,
    pub steps: Vec<OpenedItem>,
    /// What this reader may do next (step names).
    pub allowed_steps: Vec<&'static str>,
}

/// One step of a thread as a reader found it: its clear metadata, and the
/// opened item or why it could not be opened (`Error::Tampered`).
pub struct StepOutcome {
    pub row: StepRow,
    pub opened: Result<OpenedItem>,
}

/// A thread for one reader with each step's own outcome ([`Threads::view_each`]).
pub struct ThreadSteps {
    pub thread: ThreadRow,
    pub steps: Vec<StepOutcome>,
    pub allowed_steps: Vec<&'static str>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, v)| n == name && !v.trim().is_empty())
        .map(|(_, v)| v.as_str())
}

fn require_fields(fields: &[(String, String)], names: &[&str]) -> Result<()> {
    for name in names {
        if field(fields, name).is_none() {
            return Err(Error::invalid(
                "fields",
                format!("the field {name} is required"),
                format!("必須項目（{}）を入力してください。", label_ja(name)),
            ));
        }
    }
    Ok(())
}

/// Japanese labels of the fixed form fields, for error messages.
fn label_ja(name: &str) -> &str {
    match name {
        "modality" => "検査種別",
        "body_part" => "検査部位",
        "clinical_question" => "依頼内容・臨床上の疑問",
        "findings" => "所見",
        "impression" => "診断・結論",
        "reason" => "理由",
        "purpose" => "紹介目的",
        "diagnosis" => "傷病名",
        "preferred_times" => "希望日時",
        "slot" => "日時",
        other => other,
    }
}

fn sealed_fields(fields: &[(String, String)]) -> Vec<Field> {
    fields
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(n, v)| Field::new(n.clone(), v.clone()))
        .collect()
}

fn conflict(e: StoreError) -> Error {
    match e {
        StoreError::Conflict(_) => Error::Conflict(
            "someone else changed this item at the same time; reload and try again".into(),
        ),
        other => other.into(),
    }
}

pub struct Threads {
    directory: Arc<Directory>,
    postroom: Arc<Postroom>,
    notices: Option<Arc<crate::notify::Notices>>,
}

impl Threads {
    pub fn new(directory: Arc<Directory>, postroom: Arc<Postroom>) -> Self {
        Self {
            directory,
            postroom,
            notices: None,
        }
    }

    /// Tells doctors by mail when the liaison office assigns them an item.
    #[must_use]
    pub fn notifying(mut self, notices: Arc<crate::notify::Notices>) -> Self {
        self.notices = Some(notices);
        self
    }

    pub fn templates(&self) -> Vec<PathwayTemplate> {
        pathway::templates()
    }

    /// Opens a thread: validates the form for its kind, seals the opening
    /// envelope and stores it with the thread in one transaction.
    pub async fn open(
        &self,
        session: &CurrentSession,
        new: NewThread,
        attachments: Vec<OutgoingAttachment>,
    ) -> Result<Created> {
        self.open_confirming(session, new, attachments, PatientConfirmation::default())
            .await
    }

    /// `open`, with the files the sender confirmed despite a differing
    /// patient (see `Postroom::send_confirming`).
    pub async fn open_confirming(
        &self,
        session: &CurrentSession,
        new: NewThread,
        attachments: Vec<OutgoingAttachment>,
        confirmed: PatientConfirmation,
    ) -> Result<Created> {
        let sender = session.require_ready()?.clone();
        let Some(own_facility) = sender.facility.clone() else {
            return Err(Error::Forbidden);
        };
        if !matches!(sender.role, Role::Doctor | Role::Liaison) {
            return Err(Error::Forbidden);
        }
        let mut template = None;
        let mut stage = None;
        let mut booked_slot = None;
        let to = match new.kind {
            ThreadKind::ReadingRequest => {
                require_fields(&new.fields, &["modality", "body_part", "clinical_question"])?;
                new.to.clone()
            }
            ThreadKind::Referral => {
                require_fields(&new.fields, &["purpose", "diagnosis"])?;
                new.to.clone()
            }
            ThreadKind::Share => new.to.clone(),
            ThreadKind::Booking => {
                require_fields(&new.fields, &["preferred_times"])?;
                let resource = self.resource(new.resource_id.as_deref()).await?;
                // A time picked from the free times is held from now on.
                if let Some(slot) = field(&new.fields, "slot") {
                    booked_slot = Some(self.bookable_slot(Some(&resource.id), None, slot).await?);
                }
                Some(Recipient::LiaisonInbox(
                    FacilityCode::parse(&resource.facility_code)
                        .map_err(|e| Error::Internal(format!("stored resource: {e}")))?,
                ))
            }
            ThreadKind::Pathway => {
                let t = pathway::template(new.template.as_deref().unwrap_or_default())?;
                t.check_stage(0, &new.fields)?;
                if t.stages.len() < 2 {
                    return Err(Error::invalid(
                        "template",
                        "a pathway needs at least two stages",
                        "連携パスには2つ以上の段階が必要です。",
                    ));
                }
                template = Some(t.id.clone());
                stage = Some(1);
                match &new.to {
                    Some(Recipient::LiaisonInbox(code)) if *code != own_facility => new.to.clone(),
                    _ => {
                        return Err(Error::invalid(
                            "to",
                            "a pathway is handed to another facility's liaison office",
                            "連携パスは次の施設の地域連携室へ引き渡してください。",
                        ));
                    }
                }
            }
        };
        let Some(to) = to else {
            return Err(Error::invalid(
                "to",
                "no recipient",
                "宛先を指定してください。",
            ));
        };
        // A request for a reading or a referral letter goes to a doctor or to the
        // facility's liaison office, never to a clerk.
        let target_facility = match &to {
            Recipient::Person(id) => {
                let a = self
                    .directory
                    .account(id)
                    .await
                    .map_err(|_| Error::NotFound("recipient"))?;
                if a.role != Role::Doctor && new.kind != ThreadKind::Share {
                    return Err(Error::invalid(
                        "to",
                        "this request can only be addressed to a doctor or a liaison office",
                        "この依頼の宛先は医師または地域連携室です。",
                    ));
                }
                if a.role == Role::Clerk {
                    return Err(Error::invalid(
                        "to",
                        "clerks receive nothing directly",
                        "事務員IDは宛先にできません。",
                    ));
                }
                a.facility.clone().ok_or(Error::NotFound("recipient"))?
            }
            Recipient::LiaisonInbox(code) => code.clone(),
        };
        let target = to.principal();
        let slots = self
            .postroom
            .resolve_slots(&sender, std::slice::from_ref(&to), Vec::new())
            .await?;
        let envelope_id = new_id();
        let thread_id = new_id();
        let t = now_ms();
        let row = ThreadRow {
            id: thread_id.clone(),
            kind: new.kind.as_str().into(),
            state: new.kind.initial_state().as_str().into(),
            version: 1,
            opener_id: envelope_id.clone(),
            requester_id: sender.id.as_str().into(),
            requester_facility: Some(own_facility.to_string()),
            target: target.key(),
            target_facility: target_facility.to_string(),
            claimed_by: None,
            assignee_id: None,
            reader_id: None,
            urgency: new.urgency.as_str().into(),
            wanted_by: new.wanted_by.map(|d| d.format("%Y-%m-%d").to_string()),
            resource_id: new
                .resource_id
                .clone()
                .filter(|_| new.kind == ThreadKind::Booking),
            booked_slot,
            template,
            stage,
            created_at: t,
            updated_at: t,
            delivered_at: None,
            opened_at: None,
            opened_by: None,
            closed_at: None,
            escalated_at: None,
        };
        self.postroom
            .seal_and_store(
                session,
                Sealing {
                    envelope_id: envelope_id.clone(),
                    kind: new.kind.as_str().into(),
                    slots,
                    subject: new.subject,
                    patient_id: new.patient_id,
                    patient_name: new.patient_name,
                    body: new.body,
                    fields: sealed_fields(&new.fields),
                    consent: new.consent,
                    thread: Some(ThreadLink {
                        thread_id: thread_id.clone(),
                        step: Some("open".into()),
                        seq: 1,
                        change: ThreadChange::Open(Box::new(row)),
                    }),
                    confirmed_patient_files: confirmed.files,
                },
                attachments,
            )
            .await?;
        tracing::info!(
            thread = thread_id,
            kind = new.kind.as_str(),
            "thread opened"
        );
        Ok(Created {
            thread_id,
            envelope_id,
        })
    }

    async fn resource(&self, id: Option<&str>) -> Result<ResourceRow> {
        let missing = || {
            Error::invalid(
                "resource_id",
                "name an active bookable resource",
                "予約する検査機器・枠を選んでください。",
            )
        };
        let id = id.filter(|s| !s.trim().is_empty()).ok_or_else(missing)?;
        match self.directory.store().resource(id).await? {
            Some(r) if r.active => Ok(r),
            _ => Err(missing()),
        }
    }

    /// The thread, if this session can read its opening envelope; `NotFound`
    /// otherwise, whether or not it exists.
    async fn readable(&self, session: &CurrentSession, id: &str) -> Result<ThreadRow> {
        let keyring = self.postroom.keyring(session)?;
        let thread = self
            .directory
            .store()
            .thread(id)
            .await?
            .ok_or(Error::NotFound("item"))?;
        self.postroom
            .reader_principal(&keyring, &thread.opener_id)
            .await?;
        Ok(thread)
    }

    fn relation(thread: &ThreadRow, actor: &Account) -> Option<Relation> {
        let me = actor.id.as_str();
        let facility = actor.facility.as_ref().map(|c| c.to_string());
        if thread.requester_id == me {
            Some(Relation::Requester)
        } else if thread.target == Principal::Account(actor.id.clone()).key()
            || thread.assignee_id.as_deref() == Some(me)
        {
            Some(Relation::Addressee)
        } else if actor.role == Role::Liaison
            && facility.as_deref() == Some(thread.target_facility.as_str())
            && thread.target.starts_with("liaison:")
        {
            Some(Relation::SharedInbox)
        } else if facility.as_deref() == Some(thread.target_facility.as_str()) {
            Some(Relation::ReceivingFacility)
        } else if facility.is_some() && facility == thread.requester_facility {
            Some(Relation::RequesterFacility)
        } else {
            None
        }
    }

    pub(crate) fn store(&self) -> &Arc<dyn crate::store::Store> {
        self.directory.store()
    }

    /// The steps this person may take on a thread now (step names), from its
    /// clear state alone: for lists that offer actions without opening every
    /// item.
    pub fn steps_open_to(&self, session: &CurrentSession, thread: &ThreadRow) -> Vec<&'static str> {
        match session.require_ready() {
            Ok(actor) => Self::allowed_steps(thread, actor),
            Err(_) => Vec::new(),
        }
    }

    fn allowed_steps(thread: &ThreadRow, actor: &Account) -> Vec<&'static str> {
        let (Ok(kind), Some(state), Some(relation)) = (
            ThreadKind::parse(&thread.kind),
            ThreadState::parse(&thread.state),
            Self::relation(thread, actor),
        ) else {
            return Vec::new();
        };
        [
            Step::Accept,
            Step::Report,
            Step::Decline,
            Step::Reply,
            Step::Withdraw,
            Step::Acknowledge,
            Step::Confirm,
            Step::Propose,
            Step::Cancel,
            Step::Stage,
        ]
        .into_iter()
        .filter(|s| next_state(kind, state, *s, actor.role, relation).is_ok())
        .map(Step::as_str)
        .collect()
    }

    /// Takes a step: checks the role table and the state machine, seals the step
    /// as an envelope to everyone on the thread, and advances the thread in the
    /// same transaction (refused if someone else moved it meanwhile).
    pub async fn act(
        &self,
        session: &CurrentSession,
        thread_id: &str,
        input: StepInput,
        attachments: Vec<OutgoingAttachment>,
    ) -> Result<String> {
        let actor = session.require_ready()?.clone();
        let keyring = self.postroom.keyring(session)?;
        let thread = self.readable(session, thread_id).await?;
        let kind = ThreadKind::parse(&thread.kind)?;
        let state = ThreadState::parse(&thread.state)
            .ok_or_else(|| Error::Internal(format!("stored thread state {:?}", thread.state)))?;
        let relation = Self::relation(&thread, &actor).ok_or(Error::Forbidden)?;
        let mut next = next_state(kind, state, input.step, actor.role, relation)?;
        require_fields(&input.fields, input.step.required_fields(kind))?;

        let mut patch = ThreadPatch::default();
        let mut extra_principals: Vec<Principal> = Vec::new();
        match input.step {
            Step::Report => patch.reader_id = Some(actor.id.as_str().into()),
            Step::Confirm if state == ThreadState::Requested => {
                // The time named now, or the one the request holds.
                if field(&input.fields, "slot").is_none() && thread.booked_slot.is_none() {
                    require_fields(&input.fields, &["slot"])?;
                }
                if let Some(slot) = field(&input.fields, "slot") {
                    patch.booked_slot = Some(
                        self.bookable_slot(thread.resource_id.as_deref(), Some(thread_id), slot)
                            .await?,
                    );
                }
            }
            Step::Confirm | Step::Propose => {
                if let Some(slot) = field(&input.fields, "slot") {
                    patch.booked_slot = Some(
                        self.bookable_slot(thread.resource_id.as_deref(), Some(thread_id), slot)
                            .await?,
                    );
                }
            }
            Step::Stage => {
                let template = pathway::template(thread.template.as_deref().unwrap_or_default())?;
                let stage = usize::try_from(thread.stage.unwrap_or(0)).unwrap_or(usize::MAX);
                template.check_stage(stage, &input.fields)?;
                if stage + 1 >= template.stages.len() {
                    next = ThreadState::Completed;
                } else {
                    let Some(code) = input.next_facility.clone() else {
                        return Err(Error::invalid(
                            "next_facility",
                            "name the facility that fills the next stage",
                            "次の段階を記入する施設を指定してください。",
                        ));
                    };
                    if code.to_string() == thread.target_facility {
                        return Err(Error::invalid(
                            "next_facility",
                            "the next stage belongs to another facility",
                            "次の段階は別の施設へ引き渡してください。",
                        ));
                    }
                    let inbox = Principal::LiaisonInbox(code.clone());
                    let inbox_cert = self
                        .postroom
                        .recipient_principal(&Recipient::LiaisonInbox(code.clone()))
                        .await
                        .and(self.postroom.cert_for(&inbox).await)?
                        .ok_or(Error::NotFound("recipient"))?;
                    // The next facility reads the whole history: a key slot for its
                    // shared inbox (and its clerks) on every earlier envelope.
                    let mut grant = vec![(inbox.clone(), inbox_cert)];
                    if let Some(c) = self
                        .postroom
                        .cert_for(&Principal::Oversight(code.clone()))
                        .await?
                    {
                        grant.push((Principal::Oversight(code.clone()), c));
                    }
                    for step in self.directory.store().thread_steps(thread_id).await? {
                        for (p, cert) in &grant {
                            self.postroom
                                .extend_access(&keyring, &step.envelope_id, p, cert, &actor.id)
                                .await?;
                        }
                    }
                    patch.target = Some((inbox.key(), code.to_string()));
                    patch.stage = Some(thread.stage.unwrap_or(0) + 1);
                    extra_principals.push(inbox);
                }
            }
            _ => {}
        }
        patch.state = next.as_str().into();
        if next.is_closed() && !state.is_closed() {
            patch.closed_at = Some(now_ms());
        }

        // Everyone on the thread so far gets a slot on the step.
        let mut principals: Vec<Principal> = self
            .directory
            .store()
            .envelope_slots(&thread.opener_id)
            .await?
            .iter()
            .filter_map(|s| Principal::parse(&s.principal))
            .collect();
        principals.extend(extra_principals);
        let slots = self
            .postroom
            .slots_with_oversight(&actor, principals)
            .await?;
        let envelope_id = new_id();
        self.postroom
            .seal_and_store(
                session,
                Sealing {
                    envelope_id: envelope_id.clone(),
                    kind: kind.as_str().into(),
                    slots,
                    subject: String::new(),
                    patient_id: String::new(),
                    patient_name: String::new(),
                    body: input.body,
                    fields: sealed_fields(&input.fields),
                    consent: None,
                    thread: Some(ThreadLink {
                        thread_id: thread_id.into(),
                        step: Some(input.step.as_str().into()),
                        seq: thread.version + 1,
                        change: ThreadChange::Advance {
                            thread_id: thread_id.into(),
                            step: input.step.as_str().into(),
                            version: thread.version,
                            patch,
                        },
                    }),
                    confirmed_patient_files: Vec::new(),
                },
                attachments,
            )
            .await
            .map_err(|e| match e {
                Error::Store(s) => conflict(s),
                other => other,
            })?;
        tracing::info!(
            thread = thread_id,
            step = input.step.as_str(),
            by = actor.id.as_str(),
            state = next.as_str(),
            "thread advanced"
        );
        Ok(envelope_id)
    }

    /// The thread with every step opened for this reader.
    pub async fn view(&self, session: &CurrentSession, id: &str) -> Result<ThreadView> {
        let each = self.view_each(session, id).await?;
        let mut steps = Vec::with_capacity(each.steps.len());
        for s in each.steps {
            steps.push(s.opened?);
        }
        Ok(ThreadView {
            thread: each.thread,
            steps,
            allowed_steps: each.allowed_steps,
        })
    }

    /// Like [`Threads::view`], but a step that fails to open (a damaged key
    /// slot or body) is reported in its place instead of failing the whole
    /// thread, so a reader sees the history around it and what broke.
    pub async fn view_each(&self, session: &CurrentSession, id: &str) -> Result<ThreadSteps> {
        let actor = session.require_ready()?.clone();
        self.readable(session, id).await?;
        let mut steps = Vec::new();
        for step in self.directory.store().thread_steps(id).await? {
            let opened = match self.postroom.open(session, &step.envelope_id).await {
                Err(e @ Error::Tampered(_)) => Err(e),
                Err(e) => return Err(e),
                Ok(item) => Ok(item),
            };
            steps.push(StepOutcome { row: step, opened });
        }
        // Re-read: opening may have recorded the receipt.
        let thread = self
            .directory
            .store()
            .thread(id)
            .await?
            .ok_or(Error::NotFound("item"))?;
        let allowed_steps = Self::allowed_steps(&thread, &actor);
        Ok(ThreadSteps {
            thread,
            steps,
            allowed_steps,
        })
    }

    /// The threads this reader takes part in (through any of its keys).
    pub async fn list(&self, session: &CurrentSession) -> Result<Vec<ThreadRow>> {
        let keyring = self.postroom.keyring(session)?;
        let mut out: Vec<ThreadRow> = Vec::new();
        for p in keyring.principals() {
            for t in self.directory.store().threads_for(&p.key()).await? {
                if !out.iter().any(|o| o.id == t.id) {
                    out.push(t);
                }
            }
        }
        out.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The liaison office's view of one of its shared-inbox threads.
    async fn shared_inbox_thread(
        &self,
        session: &CurrentSession,
        id: &str,
    ) -> Result<(Account, ThreadRow)> {
        let actor = session.require_ready()?.clone();
        let thread = self.readable(session, id).await?;
        if Self::relation(&thread, &actor) != Some(Relation::SharedInbox) {
            return Err(Error::Forbidden);
        }
        Ok((actor, thread))
    }

    /// A liaison takes a shared-inbox item; refused while another liaison holds it.
    pub async fn claim(&self, session: &CurrentSession, id: &str) -> Result<()> {
        let (actor, _) = self.shared_inbox_thread(session, id).await?;
        match self
            .directory
            .store()
            .claim_thread(id, actor.id.as_str())
            .await
        {
            Ok(()) => {
                self.directory
                    .audit()
                    .note(AuditEvent::by(session, action::CLAIM).item(id))
                    .await;
                Ok(())
            }
            Err(StoreError::Conflict(holder)) => Err(Error::Conflict(format!(
                "already claimed by {holder}; they must release it first"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn release(&self, session: &CurrentSession, id: &str) -> Result<()> {
        self.shared_inbox_thread(session, id).await?;
        self.directory.store().release_thread(id).await?;
        self.directory
            .audit()
            .note(AuditEvent::by(session, action::RELEASE).item(id))
            .await;
        Ok(())
    }

    /// Hands a shared-inbox thread to a doctor of the facility: a key slot on every
    /// envelope of the thread, and the item in the doctor's Inbox.
    pub async fn assign(
        &self,
        session: &CurrentSession,
        id: &str,
        doctor: &AccountId,
    ) -> Result<()> {
        let (_, thread) = self.shared_inbox_thread(session, id).await?;
        if thread.assignee_id.as_deref() == Some(doctor.as_str()) {
            return Ok(());
        }
        let target = self
            .directory
            .account(doctor)
            .await
            .map_err(|_| Error::NotFound("recipient"))?;
        if target.role != Role::Doctor
            || target.removed
            || target.facility.as_ref().map(|c| c.to_string()).as_deref()
                != Some(thread.target_facility.as_str())
        {
            return Err(Error::invalid(
                "to",
                "items can be handed only to a doctor of the same facility",
                "担当は自施設の医師のみ指定できます。",
            ));
        }
        if let Some(previous) = &thread.assignee_id {
            self.directory
                .store()
                .remove_thread_access(id, &format!("account:{previous}"))
                .await?;
        }
        for step in self.directory.store().thread_steps(id).await? {
            self.postroom
                .forward(session, &step.envelope_id, doctor)
                .await?;
        }
        self.directory
            .store()
            .set_assignee(id, Some(doctor.as_str()), now_ms())
            .await?;
        tracing::info!(thread = id, to = doctor.as_str(), "thread assigned");
        self.directory
            .audit()
            .note(
                AuditEvent::by(session, action::ASSIGN)
                    .item(id)
                    .detail(format!("to={}", doctor.as_str())),
            )
            .await;
        if let Some(notices) = &self.notices {
            // The assignment stands even if the mail cannot be queued.
            if let Err(e) = notices
                .assigned(
                    doctor,
                    id,
                    &thread.kind,
                    thread.requester_facility.as_deref(),
                )
                .await
            {
                tracing::warn!(thread = id, error = %e, "queuing the assignment notice failed");
            }
        }
        Ok(())
    }

    /// Forwards a whole thread to a doctor of the forwarder's facility: a key
    /// slot on every step (later steps are sealed to everyone on the opening
    /// envelope, so the colleague keeps following) and the thread in their
    /// Inbox. The colleague reads; the steps stay with the addressee (the role
    /// table gives a forwarded doctor none). Every step is checked before any
    /// slot is added, so a refusal changes nothing.
    pub async fn forward(&self, session: &CurrentSession, id: &str, to: &AccountId) -> Result<()> {
        self.readable(session, id).await?;
        let steps = self.directory.store().thread_steps(id).await?;
        for step in &steps {
            self.postroom
                .forwarding_principal(session, &step.envelope_id, to)
                .await?;
        }
        for step in &steps {
            self.postroom
                .forward(session, &step.envelope_id, to)
                .await?;
        }
        tracing::info!(thread = id, to = to.as_str(), "thread forwarded");
        Ok(())
    }

    /// Whether this reader may forward the thread at all (a doctor or liaison
    /// who holds it through their own key or the shared inbox), for pages that
    /// offer the form; [`Threads::forward`] decides for a given colleague.
    pub async fn may_forward(&self, session: &CurrentSession, thread: &ThreadRow) -> bool {
        let (Ok(account), Ok(keyring)) = (session.require_ready(), self.postroom.keyring(session))
        else {
            return false;
        };
        if !matches!(account.role, Role::Doctor | Role::Liaison) {
            return false;
        }
        match self
            .postroom
            .reader_principal(&keyring, &thread.opener_id)
            .await
        {
            Ok(p) => !matches!(p, Principal::Oversight(_)),
            Err(_) => false,
        }
    }

    /// Takes a thread back from its doctor: the slot rows and Inbox entries go
    /// (what the doctor already read cannot be un-read).
    pub async fn unassign(&self, session: &CurrentSession, id: &str) -> Result<()> {
        let (_, thread) = self.shared_inbox_thread(session, id).await?;
        let Some(previous) = thread.assignee_id else {
            return Ok(());
        };
        self.directory
            .store()
            .remove_thread_access(id, &format!("account:{previous}"))
            .await?;
        self.directory
            .store()
            .set_assignee(id, None, now_ms())
            .await?;
        tracing::info!(thread = id, "thread unassigned");
        self.directory
            .audit()
            .note(
                AuditEvent::by(session, action::UNASSIGN)
                    .item(id)
                    .detail(format!("from={previous}")),
            )
            .await;
        Ok(())
    }

    /// Every thread the facility sent or received, with its progress (clerks and
    /// liaisons; clear metadata only).
    pub async fn facility_overview(&self, session: &CurrentSession) -> Result<Vec<ThreadRow>> {
        let actor = session.require_ready()?;
        let (Role::Clerk | Role::Liaison, Some(code)) = (actor.role, actor.facility.as_ref())
        else {
            return Err(Error::Forbidden);
        };
        Ok(self
            .directory
            .store()
            .threads_of_facility(&code.to_string())
            .await?)
    }

    /// Reading reports in a calendar month (JST), per reading doctor and facility.
    /// Declines never count. Doctors see their own line, clerks and liaisons their
    /// facility's, the operator the network's.
    pub async fn reading_stats(
        &self,
        session: &CurrentSession,
        month: &str,
    ) -> Result<Vec<ReadingCount>> {
        let actor = session.require_ready()?;
        let bad = || {
            Error::invalid(
                "month",
                format!("month must look like 2026-11, got {month:?}"),
                "集計月は 2026-11 の形式で指定してください。",
            )
        };
        let first = NaiveDate::parse_from_str(&format!("{}-01", month.trim()), "%Y-%m-%d")
            .map_err(|_| bad())?;
        let next = if first.month() == 12 {
            NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
        }
        .ok_or_else(bad)?;
        let jst = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_millis() - 9 * 3600 * 1000)
                .ok_or_else(bad)
        };
        let all = self
            .directory
            .store()
            .reading_counts(jst(first)?, jst(next)?)
            .await?;
        let own_facility = actor.facility.as_ref().map(|c| c.to_string());
        Ok(all
            .into_iter()
            .filter(|c| match actor.role {
                Role::Operator => true,
                Role::Doctor => c.reader_id == actor.id.as_str(),
                Role::Clerk | Role::Liaison => Some(&c.facility_code) == own_facility.as_ref(),
            })
            .collect())
    }

    /// Per-account usage of the clerk's facility.
    pub async fn usage(&self, session: &CurrentSession) -> Result<Vec<UsageRow>> {
        self.usage_of(session, None).await
    }

    /// Per-account usage of a facility: a clerk's own, or any one the operator
    /// names.
    pub async fn usage_of(
        &self,
        session: &CurrentSession,
        facility: Option<&FacilityCode>,
    ) -> Result<Vec<UsageRow>> {
        let actor = session.require_ready()?;
        let code = match (actor.role, actor.facility.as_ref(), facility) {
            (Role::Clerk, Some(own), None) => own,
            (Role::Clerk, Some(own), Some(asked)) if own == asked => own,
            (Role::Operator, _, Some(asked)) => asked,
            (Role::Operator, _, None) => {
                return Err(Error::invalid(
                    "facility",
                    "name the facility",
                    "施設コードを指定してください。",
                ));
            }
            _ => return Err(Error::Forbidden),
        };
        let today = (chrono::Utc::now() + chrono::Duration::hours(9))
            .format("%Y-%m-%d")
            .to_string();
        Ok(self
            .directory
            .store()
            .usage_of_facility(&code.to_string(), &today)
            .await?)
    }

    /// A liaison office lists something its facility takes bookings for.
    pub async fn add_resource(
        &self,
        session: &CurrentSession,
        name: &str,
        opening_hours: &str,
    ) -> Result<ResourceRow> {
        let actor = session.require_ready()?;
        let (Role::Liaison, Some(code)) = (actor.role, actor.facility.as_ref()) else {
            return Err(Error::Forbidden);
        };
        if name.trim().is_empty() || name.chars().count() > 100 {
            return Err(Error::invalid(
                "name",
                "a resource needs a name of at most 100 characters",
                "名称を100文字以内で入力してください。",
            ));
        }
        if opening_hours.trim().is_empty() || opening_hours.chars().count() > 500 {
            return Err(Error::invalid(
                "opening_hours",
                "give the opening hours (at most 500 characters)",
                "受付時間を500文字以内で入力してください。",
            ));
        }
        let row = ResourceRow {
            id: new_id(),
            facility_code: code.to_string(),
            name: name.trim().into(),
            opening_hours: opening_hours.trim().into(),
            active: true,
            created_at: now_ms(),
        };
        self.directory.store().insert_resource(&row).await?;
        Ok(row)
    }

    pub async fn resources(
        &self,
        session: &CurrentSession,
        code: &FacilityCode,
    ) -> Result<Vec<ResourceRow>> {
        session.require_ready()?;
        Ok(self
            .directory
            .store()
            .resources_of(&code.to_string())
            .await?
            .into_iter()
            .filter(|r| r.active)
            .collect())
    }
}
