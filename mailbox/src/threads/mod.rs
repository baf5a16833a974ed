//! Request workflows over sealed envelopes: opening a thread, taking steps on it,
//! the liaison office's claim/assign, the clerk's overview and the statistics.
//! The rules themselves are in [`crate::workflow`]; every step is an envelope
//! signed by the person who took it, so the history is tamper-evident.
//!
//! Each step is its own signed envelope to the counterpart; the thread row is
//! advanced in the envelope's own transaction with an optimistic version check,
//! so two people acting at once get a `Conflict`, never a forked history.
//! Per-kind required fields are sealed as structured fields of the inner
//! message. `steps_open_to` gives the steps a person may take from the clear
//! state alone, so lists can offer actions without opening every item. Reading
//! statistics count by Japan-time month, declines excluded.

pub mod booking;
pub mod pathway;

mod liaison;
mod open;
pub mod stats;
mod step;
mod view;

use std::sync::Arc;

use chrono::NaiveDate;
use renkei_crypto::Field;

use crate::account::{Account, Role};
use crate::auth::CurrentSession;
use crate::clock::SharedClock;
use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::keys::Principal;
use crate::postroom::{Consent, OpenedItem, Postroom, Recipient};
use crate::records::audit::Audit;
use crate::store::Store;
use crate::store::StoreError;
use crate::workflow::{Relation, Step, ThreadKind, ThreadState, next_state};
use pathway::PathwayTemplate;
pub use view::{StepRecord, Thread};

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
    pub thread: Thread,
    pub steps: Vec<OpenedItem>,
    /// What this reader may do next (step names).
    pub allowed_steps: Vec<&'static str>,
}

/// One step of a thread as a reader found it: its clear metadata, and the
/// opened item or why it could not be opened (`Error::Tampered`).
pub struct StepOutcome {
    pub record: StepRecord,
    pub opened: Result<OpenedItem>,
}

/// A thread for one reader with each step's own outcome ([`Threads::view_each`]).
pub struct ThreadSteps {
    pub thread: Thread,
    pub steps: Vec<StepOutcome>,
    pub allowed_steps: Vec<&'static str>,
    /// The thread's steps against their signed sequence numbers.
    pub check: ThreadCheck,
}

/// What a thread's rows say against what its steps signed: each step signs
/// its sequence number (1 for the opening item) and the thread's version
/// counts the steps, so a deleted step leaves a gap and a rewritten thread
/// kind no longer matches its opening item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadCheck {
    /// Sequence numbers with no step row (deleted from the database).
    pub missing_steps: Vec<i64>,
    /// The thread row's kind is not the kind its opening item was sealed as.
    pub relabelled: bool,
    /// Steps that are damaged or no longer sit where their sender signed them.
    pub altered_steps: usize,
}

impl ThreadCheck {
    fn of(thread: &Thread, steps: &[StepOutcome]) -> Self {
        let present: Vec<i64> = steps.iter().filter_map(|s| s.record.thread_seq).collect();
        let last = present
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(thread.version);
        let missing_steps = (1..=last).filter(|n| !present.contains(n)).collect();
        // The opening item's own row kind is checked against its signed place.
        let relabelled = steps
            .iter()
            .find(|s| s.record.envelope_id == thread.opener_id)
            .and_then(|s| s.opened.as_ref().ok())
            .is_some_and(|o| o.kind != thread.kind);
        let altered_steps = steps
            .iter()
            .filter(|s| match &s.opened {
                Ok(item) => item.signature.is_place_difference(),
                Err(_) => true,
            })
            .count();
        Self {
            missing_steps,
            relabelled,
            altered_steps,
        }
    }

    /// No step missing, damaged or moved, and the kind as signed: the thread
    /// may take further steps.
    pub fn is_intact(&self) -> bool {
        self.missing_steps.is_empty() && !self.relabelled && self.altered_steps == 0
    }

    /// The error an edge that must not show the thread as whole answers with.
    pub fn error(&self) -> Option<Error> {
        if !self.missing_steps.is_empty() {
            Some(Error::Tampered("step_missing"))
        } else if self.relabelled {
            Some(Error::Tampered("relabelled"))
        } else {
            None
        }
    }
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
    store: Arc<dyn Store>,
    audit: Audit,
    notices: Option<Arc<crate::notify::Notices>>,
    /// Booking slots and usage days are Japan calendar times.
    clock: SharedClock,
}

impl Threads {
    pub fn new(
        directory: Arc<Directory>,
        postroom: Arc<Postroom>,
        store: Arc<dyn Store>,
        audit: Audit,
    ) -> Self {
        Self {
            directory,
            postroom,
            store,
            audit,
            notices: None,
            clock: crate::clock::system(),
        }
    }

    /// The same service reading time from `clock` (tests move it).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
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

    /// The thread, if this session can read its opening envelope; `NotFound`
    /// otherwise, whether or not it exists.
    async fn readable(&self, session: &CurrentSession, id: &str) -> Result<Thread> {
        let keyring = self.postroom.keyring(session)?;
        let thread = self
            .store
            .thread(id)
            .await?
            .map(Thread::from)
            .ok_or(Error::NotFound("item"))?;
        self.postroom
            .reader_principal(&keyring, &thread.opener_id)
            .await?;
        Ok(thread)
    }

    fn relation(thread: &Thread, actor: &Account) -> Option<Relation> {
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
        &self.store
    }

    /// The steps this person may take on a thread now (step names), from its
    /// clear state alone: for lists that offer actions without opening every
    /// item.
    pub fn steps_open_to(&self, session: &CurrentSession, thread: &Thread) -> Vec<&'static str> {
        match session.require_ready() {
            Ok(actor) => Self::allowed_steps(thread, actor),
            Err(_) => Vec::new(),
        }
    }

    fn allowed_steps(thread: &Thread, actor: &Account) -> Vec<&'static str> {
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

    /// The thread with every step opened for this reader.
    pub async fn view(&self, session: &CurrentSession, id: &str) -> Result<ThreadView> {
        let each = self.view_each(session, id).await?;
        let mut steps = Vec::with_capacity(each.steps.len());
        for s in each.steps {
            let item = s.opened?;
            if let Some(e) = item.place_error() {
                return Err(e);
            }
            steps.push(item);
        }
        if let Some(e) = each.check.error() {
            return Err(e);
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
        for step in self
            .store
            .thread_steps(id)
            .await?
            .into_iter()
            .map(StepRecord::from)
        {
            let opened = match self.postroom.open(session, &step.envelope_id).await {
                Err(e @ Error::Tampered(_)) => Err(e),
                Err(e) => return Err(e),
                Ok(item) => Ok(item),
            };
            steps.push(StepOutcome {
                record: step,
                opened,
            });
        }
        // Re-read: opening may have recorded the receipt.
        let thread = self
            .store
            .thread(id)
            .await?
            .map(Thread::from)
            .ok_or(Error::NotFound("item"))?;
        let check = ThreadCheck::of(&thread, &steps);
        // A thread whose history was cut or relabelled takes no further steps.
        let allowed_steps = if check.is_intact() {
            Self::allowed_steps(&thread, &actor)
        } else {
            Vec::new()
        };
        Ok(ThreadSteps {
            thread,
            steps,
            allowed_steps,
            check,
        })
    }

    /// The threads this reader takes part in (through any of its keys).
    pub async fn list(&self, session: &CurrentSession) -> Result<Vec<Thread>> {
        let keyring = self.postroom.keyring(session)?;
        let mut out: Vec<Thread> = Vec::new();
        for p in keyring.principals() {
            for t in self
                .store
                .threads_for(&p.key())
                .await?
                .into_iter()
                .map(Thread::from)
            {
                if !out.iter().any(|o| o.id == t.id) {
                    out.push(t);
                }
            }
        }
        out.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }
}
