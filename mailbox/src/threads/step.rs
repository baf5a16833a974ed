//! Taking a step on a thread: the role table and the state machine checked,
//! the step sealed as an envelope to everyone on the thread, and the thread
//! advanced in the same transaction.

use super::Thread;
use super::pathway;
use super::{StepInput, Threads, conflict, field, require_fields, sealed_fields};
use crate::account::Account;
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::keys::{Keyring, Principal};
use crate::postroom::{Idempotency, OutgoingAttachment, Recipient, Sealing, ThreadLink};
use crate::store::thread::{ThreadChange, ThreadPatch};
use crate::workflow::{Step, ThreadKind, ThreadState, next_state};

/// What a step does to the thread, built up branch by branch.
struct StepChange {
    patch: ThreadPatch,
    extra_principals: Vec<Principal>,
    next: ThreadState,
}

impl Threads {
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
        self.act_with_key(session, thread_id, input, attachments, None)
            .await
    }

    /// `act` with the client's Idempotency-Key, remembered with the step's
    /// envelope (see `Postroom::send_with_key`).
    pub async fn act_with_key(
        &self,
        session: &CurrentSession,
        thread_id: &str,
        input: StepInput,
        attachments: Vec<OutgoingAttachment>,
        idempotency: Option<Idempotency>,
    ) -> Result<String> {
        let actor = session.require_ready()?.clone();
        let keyring = self.postroom.keyring(session)?;
        let thread = self.readable(session, thread_id).await?;
        let kind = ThreadKind::parse(&thread.kind)?;
        crate::roles::require(&actor, crate::roles::Action::of_step(kind, input.step))?;
        let state = ThreadState::parse(&thread.state)
            .ok_or_else(|| Error::Internal(format!("stored thread state {:?}", thread.state)))?;
        let relation = Self::relation(&thread, &actor).ok_or(Error::Forbidden)?;
        let next = next_state(kind, state, input.step, actor.role, relation)?;
        require_fields(&input.fields, input.step.required_fields(kind))?;

        let (mut patch, extra_principals, next) = self
            .step_patch(&keyring, &thread, &input, state, next, &actor)
            .await?;
        patch.state = next.as_str().into();
        if next.is_closed() && !state.is_closed() {
            patch.closed_at = Some(self.clock.now_millis());
        }

        // Everyone on the thread so far gets a slot on the step.
        let mut principals: Vec<Principal> = self
            .store
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
        let envelope_id = crate::ids::new_id();
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
                    idempotency,
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

    /// What a step changes on the thread besides its state: the reader of a
    /// report, a booked time, a pathway handed on.
    async fn step_patch(
        &self,
        keyring: &Keyring,
        thread: &Thread,
        input: &StepInput,
        state: ThreadState,
        next: ThreadState,
        actor: &Account,
    ) -> Result<(ThreadPatch, Vec<Principal>, ThreadState)> {
        let mut change = StepChange {
            patch: ThreadPatch::default(),
            extra_principals: Vec::new(),
            next,
        };
        match input.step {
            Step::Report => change.patch.reader_id = Some(actor.id.as_str().into()),
            Step::Confirm if state == ThreadState::Requested => {
                // The time named now, or the one the request holds.
                if field(&input.fields, "slot").is_none() && thread.booked_slot.is_none() {
                    require_fields(&input.fields, &["slot"])?;
                }
                if let Some(slot) = field(&input.fields, "slot") {
                    change.patch.booked_slot = Some(
                        self.bookable_slot(
                            thread.resource_id.as_deref(),
                            Some(thread.id.as_str()),
                            slot,
                        )
                        .await?,
                    );
                }
            }
            Step::Confirm | Step::Propose => {
                if let Some(slot) = field(&input.fields, "slot") {
                    change.patch.booked_slot = Some(
                        self.bookable_slot(
                            thread.resource_id.as_deref(),
                            Some(thread.id.as_str()),
                            slot,
                        )
                        .await?,
                    );
                }
            }
            Step::Stage => {
                self.hand_on_stage(keyring, thread, input, actor, &mut change)
                    .await?
            }
            _ => {}
        }
        Ok((change.patch, change.extra_principals, change.next))
    }

    /// A pathway's stage: filled in, and handed to the next facility's shared
    /// inbox (which gets a key slot on every earlier envelope), or the last
    /// stage, which completes the pathway.
    async fn hand_on_stage(
        &self,
        keyring: &Keyring,
        thread: &Thread,
        input: &StepInput,
        actor: &Account,
        change: &mut StepChange,
    ) -> Result<()> {
        let thread_id = thread.id.as_str();
        let template = pathway::template(thread.template.as_deref().unwrap_or_default())?;
        let stage = usize::try_from(thread.stage.unwrap_or(0)).unwrap_or(usize::MAX);
        template.check_stage(stage, &input.fields)?;
        if stage + 1 >= template.stages.len() {
            change.next = ThreadState::Completed;
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
            for step in self.store.thread_steps(thread_id).await? {
                for (p, cert) in &grant {
                    self.postroom
                        .extend_access(keyring, &step.envelope_id, p, cert, &actor.id)
                        .await?;
                }
            }
            change.patch.target = Some((inbox.key(), code.to_string()));
            change.patch.stage = Some(thread.stage.unwrap_or(0) + 1);
            change.extra_principals.push(inbox);
        }
        Ok(())
    }
}
