//! The liaison office's shared inbox: claiming, assigning to a doctor and
//! handing on inside the facility.
//!
//! Assigning adds the doctor's key slot to every step of the thread (and
//! claims an unclaimed item for the liaison who assigns it);
//! unassigning removes those slot rows and inbox entries — what was read cannot
//! be un-read.

use super::Thread;
use super::Threads;
use crate::account::{Account, AccountId, Role};
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::keys::Principal;
use crate::records::audit::{AuditEvent, action};
use crate::store::StoreError;
use crate::workflow::Relation;

impl Threads {
    /// The liaison office's view of one of its shared-inbox threads.
    async fn shared_inbox_thread(
        &self,
        session: &CurrentSession,
        id: &str,
    ) -> Result<(Account, Thread)> {
        let actor = session.require_ready()?.clone();
        crate::roles::require(&actor, crate::roles::Action::WorkSharedInbox)?;
        let thread = self.readable(session, id).await?;
        if Self::relation(&thread, &actor) != Some(Relation::SharedInbox) {
            return Err(Error::Forbidden);
        }
        Ok((actor, thread))
    }

    /// A liaison takes a shared-inbox item; refused while another liaison holds it.
    pub async fn claim(&self, session: &CurrentSession, id: &str) -> Result<()> {
        let (actor, _) = self.shared_inbox_thread(session, id).await?;
        let audit = AuditEvent::by(session, action::CLAIM)
            .item(id)
            .row(crate::clock::now_millis());
        match self.store.claim_thread(id, actor.id.as_str(), &audit).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(holder)) => Err(Error::Conflict(format!(
                "already claimed by {holder}; they must release it first"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn release(&self, session: &CurrentSession, id: &str) -> Result<()> {
        self.shared_inbox_thread(session, id).await?;
        let audit = AuditEvent::by(session, action::RELEASE)
            .item(id)
            .row(crate::clock::now_millis());
        self.store.release_thread(id, &audit).await?;
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
        let (actor, thread) = self.shared_inbox_thread(session, id).await?;
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
            self.store
                .remove_thread_access(id, &format!("account:{previous}"))
                .await?;
        }
        for step in self.store.thread_steps(id).await? {
            self.postroom
                .forward(session, &step.envelope_id, doctor)
                .await?;
        }
        if thread.claimed_by.is_none() {
            // Whoever assigns an unclaimed item has taken it in (受付担当), so
            // the list shows who did; another liaison's claim first stands.
            let audit = AuditEvent::by(session, action::CLAIM)
                .item(id)
                .row(crate::clock::now_millis());
            match self.store.claim_thread(id, actor.id.as_str(), &audit).await {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let audit = AuditEvent::by(session, action::ASSIGN)
            .item(id)
            .detail(format!("to={}", doctor.as_str()))
            .row(crate::clock::now_millis());
        self.store
            .set_assignee(id, Some(doctor.as_str()), self.clock.now_millis(), &audit)
            .await?;
        tracing::info!(thread = id, to = doctor.as_str(), "thread assigned");
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
        self.directory.require_proved_recently(session)?;
        self.readable(session, id).await?;
        let steps = self.store.thread_steps(id).await?;
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
    pub async fn may_forward(&self, session: &CurrentSession, thread: &Thread) -> bool {
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
        self.store
            .remove_thread_access(id, &format!("account:{previous}"))
            .await?;
        let audit = AuditEvent::by(session, action::UNASSIGN)
            .item(id)
            .detail(format!("from={previous}"))
            .row(crate::clock::now_millis());
        self.store
            .set_assignee(id, None, self.clock.now_millis(), &audit)
            .await?;
        tracing::info!(thread = id, "thread unassigned");
        Ok(())
    }
}
