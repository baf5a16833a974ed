//! Opening a thread: the form checked for its kind, the recipient checked,
//! and the opening envelope sealed and stored with the thread in one
//! transaction.

use super::pathway;
use super::{Created, NewThread, Threads, field, require_fields, sealed_fields};
use crate::account::{Account, Role};
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::postroom::{
    Idempotency, OutgoingAttachment, PatientConfirmation, Recipient, Sealing, ThreadLink,
};
use crate::store::thread::{ResourceRow, ThreadChange, ThreadRow};
use crate::workflow::ThreadKind;

/// Whom a new thread is addressed to, and what its kind adds to the row.
struct Addressed {
    to: Option<Recipient>,
    template: Option<String>,
    stage: Option<i64>,
    booked_slot: Option<String>,
}

/// The IDs a new thread gets.
struct NewThreadIds<'a> {
    thread: &'a str,
    opener: &'a str,
}

impl Threads {
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
        self.open_with_key(session, new, attachments, confirmed, None)
            .await
    }

    /// `open_confirming` with the client's Idempotency-Key, remembered with
    /// the opening envelope (see `Postroom::send_with_key`).
    pub async fn open_with_key(
        &self,
        session: &CurrentSession,
        new: NewThread,
        attachments: Vec<OutgoingAttachment>,
        confirmed: PatientConfirmation,
        idempotency: Option<Idempotency>,
    ) -> Result<Created> {
        let sender = session.require_ready()?.clone();
        crate::roles::require(&sender, crate::roles::Action::Send)?;
        let Some(own_facility) = sender.facility.clone() else {
            return Err(Error::Forbidden);
        };
        let mut addressed = self.addressed(&new, &own_facility).await?;
        let Some(to) = addressed.to.take() else {
            return Err(Error::invalid(
                "to",
                "no recipient",
                "宛先を指定してください。",
            ));
        };
        let target_facility = self.target_facility(&to, new.kind).await?;
        let target = to.principal();
        let slots = self
            .postroom
            .resolve_slots(&sender, std::slice::from_ref(&to), Vec::new())
            .await?;
        let envelope_id = crate::ids::new_id();
        let thread_id = crate::ids::new_id();
        let t = self.clock.now_millis();
        let row = thread_row(
            &new,
            NewThreadIds {
                thread: &thread_id,
                opener: &envelope_id,
            },
            &sender,
            &own_facility,
            (target.key(), target_facility.to_string()),
            addressed,
            t,
        );
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
                    idempotency,
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

    /// Whom a new thread goes to, by its kind: the form checked, a booking's
    /// time held, a pathway's template and first stage.
    async fn addressed(&self, new: &NewThread, own_facility: &FacilityCode) -> Result<Addressed> {
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
                    Some(Recipient::LiaisonInbox(code)) if code != own_facility => new.to.clone(),
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
        Ok(Addressed {
            to,
            template,
            stage,
            booked_slot,
        })
    }

    /// The facility a thread goes to. A request for a reading or a referral
    /// letter goes to a doctor or to the facility's liaison office, never to a
    /// clerk.
    async fn target_facility(&self, to: &Recipient, kind: ThreadKind) -> Result<FacilityCode> {
        Ok(match to {
            Recipient::Person(id) => {
                let a = self
                    .directory
                    .account(id)
                    .await
                    .map_err(|_| Error::NotFound("recipient"))?;
                if a.role != Role::Doctor && kind != ThreadKind::Share {
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
        match self.store.resource(id).await? {
            Some(r) if r.active => Ok(r),
            _ => Err(missing()),
        }
    }
}

/// The thread's first row (version 1, in its kind's initial state).
fn thread_row(
    new: &NewThread,
    ids: NewThreadIds<'_>,
    sender: &Account,
    own_facility: &FacilityCode,
    target: (String, String),
    addressed: Addressed,
    t: i64,
) -> ThreadRow {
    ThreadRow {
        id: ids.thread.into(),
        kind: new.kind.as_str().into(),
        state: new.kind.initial_state().as_str().into(),
        version: 1,
        opener_id: ids.opener.into(),
        requester_id: sender.id.as_str().into(),
        requester_facility: Some(own_facility.to_string()),
        target: target.0,
        target_facility: target.1,
        claimed_by: None,
        assignee_id: None,
        reader_id: None,
        urgency: new.urgency.as_str().into(),
        wanted_by: new.wanted_by.map(|d| d.format("%Y-%m-%d").to_string()),
        resource_id: new
            .resource_id
            .clone()
            .filter(|_| new.kind == ThreadKind::Booking),
        booked_slot: addressed.booked_slot,
        template: addressed.template,
        stage: addressed.stage,
        created_at: t,
        updated_at: t,
        delivered_at: None,
        opened_at: None,
        opened_by: None,
        closed_at: None,
        escalated_at: None,
    }
}
