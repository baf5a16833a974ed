//! Notification mails: who is told of what, and what the mail may say.
//!
//! A notice names the kind of item, the facility concerned and a link, nothing
//! else: never a patient's name or ID, a subject, or any content. Rows are queued
//! in the same transaction as the event (delivery, escalation, address change),
//! keyed so that repeating the event queues nothing twice; `transport::notify`
//! sends them.
//!
//! `Notices` turns a delivery into rows (one per person behind each Inbox
//! entry, for the steps the other side must know of: a new item, a report, a
//! reply, a decline, a withdrawal, a booking confirmed, moved or cancelled, a
//! pathway stage — never to the sending facility's own liaison inbox about its
//! own outgoing step), queues assignment notices, escalates
//! unopened items to the receiving facility's liaisons and clerks after its
//! `escalation_hours` (default 4), keeps each person's mode (immediate, a daily
//! digest at 08:00 JST, off) and the address-change flow (a link to the new
//! address, used only once opened). Rows carry a `dedup_key`
//! (`item:ENVELOPE:ACCOUNT`, …) and are inserted with `ON CONFLICT DO NOTHING`.
//! Only verified addresses get mail.

mod notice;
mod reason;
mod text;

pub use notice::{FailedNotice, PendingNotice, Preferences};
pub use reason::NotifyReason;
pub use text::{
    NoticeFacts, NoticeText, RECOVERY_KEY_RESET, compose, compose_digest, kind_labels, link,
};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use crate::account::{AccountId, Role};
use crate::auth::CurrentSession;
use crate::clock::SharedClock;
use crate::directory::validate_email;
use crate::error::{Error, Result};
use crate::keys::Principal;
use crate::records::Actor;
use crate::records::audit::{Audit, AuditEvent, Channel, action};
use crate::retry::{BackOff, GiveUp};
use crate::store::Store;
use crate::store::notify::{NotificationRow, NotifyTarget};
use crate::store::queue::MailboxEntryRow;
use crate::store::vault::EnvelopeRow;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A person's choice: a mail per event, one summary a day, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyMode {
    Immediate,
    Digest,
    Off,
}

impl NotifyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::Digest => "digest",
            Self::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "immediate" => Ok(Self::Immediate),
            "digest" => Ok(Self::Digest),
            "off" => Ok(Self::Off),
            _ => Err(Error::invalid(
                "mode",
                "notification mode must be immediate, digest or off",
                "通知方法は「すぐに」「1日1回まとめて」「通知しない」のいずれかです。",
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NotifyPolicy {
    /// Off when no relay is configured: nothing is queued.
    pub enabled: bool,
    /// After this long since queuing, a notice that could not be sent is failed
    /// and shown to the person and the operator.
    pub give_up_after: Duration,
    /// How long a failed attempt waits before the next.
    pub retry: BackOff,
    /// Hour of the day (Japan time) the daily digest goes out.
    pub digest_hour: u32,
    /// How long a confirmation link stays valid.
    pub confirm_valid_for: Duration,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        Self {
            enabled: false,
            give_up_after: Duration::from_secs(24 * 3600),
            retry: BackOff {
                base: Duration::from_secs(30),
                max: Duration::from_secs(30 * 60),
            },
            digest_hour: 8,
            confirm_valid_for: Duration::from_secs(24 * 3600),
        }
    }
}

impl NotifyPolicy {
    /// The wait after `attempts` failed attempts.
    pub fn backoff(&self, attempts: i64) -> Duration {
        self.retry.delay(attempts)
    }

    /// When the next attempt of a row queued at `created_at` is due, or `None`
    /// once the give-up time has passed.
    pub fn next_attempt(&self, created_at: i64, attempts: i64, now: i64) -> Option<i64> {
        let deadline = created_at.saturating_add(millis(self.give_up_after));
        self.retry.next_attempt(attempts, now, GiveUp::At(deadline))
    }

    /// The next digest time after `now`: `digest_hour` o'clock in Japan (UTC+9).
    pub fn next_digest_at(&self, now: i64) -> i64 {
        const HOUR: i64 = 3_600_000;
        const DAY: i64 = 24 * HOUR;
        let jst = now + 9 * HOUR;
        let day_start = jst - jst.rem_euclid(DAY);
        let mut at = day_start + i64::from(self.digest_hour.min(23)) * HOUR;
        if at <= jst {
            at += DAY;
        }
        at - 9 * HOUR
    }
}

/// Whether `principal` is the sending facility's own liaison inbox and the
/// envelope a later step of a thread: a facility is not told of what its own
/// doctor sent out (the copy is for the office's overview, not news).
fn own_outgoing_step(envelope: &EnvelopeRow, principal: &str) -> bool {
    let later_step = !matches!(envelope.step.as_deref(), None | Some("open"));
    later_step
        && matches!(
            (Principal::parse(principal), envelope.sender_facility.as_deref()),
            (Some(Principal::LiaisonInbox(code)), Some(sender)) if code.as_str() == sender
        )
}

/// A new pending row for one person.
fn row(
    dedup_key: String,
    target: &NotifyTarget,
    reason: NotifyReason,
    policy: &NotifyPolicy,
    now: i64,
) -> NotificationRow {
    let digest = target.notify_mode == NotifyMode::Digest.as_str();
    NotificationRow {
        id: crate::ids::new_id(),
        dedup_key,
        account_id: target.account_id.clone(),
        reason: reason.as_str().into(),
        kind: None,
        thread_id: None,
        envelope_id: None,
        facility_code: None,
        to_address: None,
        secret: None,
        digest,
        state: "pending".into(),
        attempts: 0,
        next_attempt_at: if digest {
            policy.next_digest_at(now)
        } else {
            now
        },
        last_error: None,
        created_at: now,
        sent_at: None,
    }
}

/// Queues notices for events, and keeps each person's notification settings.
pub struct Notices {
    store: Arc<dyn Store>,
    /// The trail the console's look at failed notices is recorded on.
    audit: Audit,
    policy: NotifyPolicy,
    /// When rows are queued and when confirmation links run out.
    clock: SharedClock,
}

impl Notices {
    pub fn new(store: Arc<dyn Store>, policy: NotifyPolicy) -> Self {
        Self {
            audit: Audit::new(store.clone()),
            store,
            policy,
            clock: crate::clock::system(),
        }
    }

    /// The same notices recording on `audit` (the one trail of the application).
    #[must_use]
    pub fn with_audit(mut self, audit: Audit) -> Self {
        self.audit = audit;
        self
    }

    /// The same notices reading time from `clock` (tests move it).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    pub fn policy(&self) -> &NotifyPolicy {
        &self.policy
    }

    /// People behind a mailbox principal: the person, or the liaisons of a facility.
    async fn targets_of(&self, principal: &str) -> Result<Vec<NotifyTarget>> {
        Ok(match Principal::parse(principal) {
            Some(Principal::Account(id)) => self
                .store
                .notify_target(id.as_str())
                .await?
                .into_iter()
                .collect(),
            Some(Principal::LiaisonInbox(code)) => {
                self.store
                    .facility_notify_targets(code.as_str(), Role::Liaison.as_str())
                    .await?
            }
            Some(Principal::Oversight(_)) | None => Vec::new(),
        })
    }

    /// The notices a delivery queues: one per person behind each Inbox entry,
    /// when the envelope's step is one people are told of.
    pub async fn for_delivery(
        &self,
        envelope: &EnvelopeRow,
        entries: &[MailboxEntryRow],
        now: i64,
    ) -> Result<Vec<NotificationRow>> {
        self.for_delivery_with(envelope, entries, now, &mut HashMap::new())
            .await
    }

    /// As [`Self::for_delivery`], reusing the targets a batch has looked up.
    pub(crate) async fn for_delivery_with(
        &self,
        envelope: &EnvelopeRow,
        entries: &[MailboxEntryRow],
        now: i64,
        known: &mut HashMap<String, Vec<NotifyTarget>>,
    ) -> Result<Vec<NotificationRow>> {
        if !self.policy.enabled {
            return Ok(Vec::new());
        }
        let Some(reason) = NotifyReason::for_step(Some(&envelope.kind), envelope.step.as_deref())
        else {
            return Ok(Vec::new());
        };
        let mut rows: Vec<NotificationRow> = Vec::new();
        for entry in entries
            .iter()
            .filter(|e| e.folder == "inbox" && !own_outgoing_step(envelope, &e.principal))
        {
            if !known.contains_key(&entry.principal) {
                let targets = self.targets_of(&entry.principal).await?;
                known.insert(entry.principal.clone(), targets);
            }
            let targets = known.get(&entry.principal).cloned().unwrap_or_default();
            for target in targets {
                if target.account_id == envelope.sender_id
                    || rows.iter().any(|r| r.account_id == target.account_id)
                {
                    continue;
                }
                let mut r = row(
                    format!("item:{}:{}", envelope.id, target.account_id),
                    &target,
                    reason,
                    &self.policy,
                    now,
                );
                r.kind = Some(envelope.kind.clone());
                r.thread_id = envelope.thread_id.clone();
                r.envelope_id = Some(envelope.id.clone());
                r.facility_code = envelope.sender_facility.clone();
                rows.push(r);
            }
        }
        Ok(rows)
    }

    /// Tells the sender an item could not be delivered.
    pub(crate) async fn for_failure(
        &self,
        envelope: &EnvelopeRow,
        now: i64,
    ) -> Result<Vec<NotificationRow>> {
        if !self.policy.enabled {
            return Ok(Vec::new());
        }
        let Some(target) = self.store.notify_target(&envelope.sender_id).await? else {
            return Ok(Vec::new());
        };
        let mut r = row(
            format!("failed:{}:{}", envelope.id, target.account_id),
            &target,
            NotifyReason::DeliveryFailed,
            &self.policy,
            now,
        );
        r.kind = Some(envelope.kind.clone());
        r.thread_id = envelope.thread_id.clone();
        r.envelope_id = Some(envelope.id.clone());
        Ok(vec![r])
    }

    /// Tells the person the operator changed their sign-in (`what`: a short
    /// machine word for the dedup key). Sent at once whatever the notification
    /// mode; the mail names no detail beyond the kind of change.
    pub async fn security_notice(&self, account: &AccountId, what: &str) -> Result<()> {
        self.account_notice(account, what, NotifyReason::SecurityChange)
            .await
    }

    /// Tells the person a liaison restored their earlier keys (`keys::custody`);
    /// sent at once, naming nothing but that.
    pub async fn keys_restored(&self, account: &AccountId) -> Result<()> {
        self.account_notice(account, "keys_restored", NotifyReason::KeysRestored)
            .await
    }

    async fn account_notice(
        &self,
        account: &AccountId,
        what: &str,
        reason: NotifyReason,
    ) -> Result<()> {
        if !self.policy.enabled {
            return Ok(());
        }
        let Some(target) = self.store.notify_target(account.as_str()).await? else {
            return Ok(());
        };
        let now = self.clock.now_millis();
        let mut r = row(
            format!("security:{what}:{}:{now}", account.as_str()),
            &target,
            reason,
            &self.policy,
            now,
        );
        r.digest = false;
        r.next_attempt_at = now;
        // Which change, for the mail's words (no content, no patient data).
        r.kind = Some(what.to_string());
        self.store.queue_notifications(&[r]).await?;
        tracing::info!(account = account.as_str(), "security notice queued");
        Ok(())
    }

    /// Tells a doctor the liaison office handed them an item.
    pub async fn assigned(
        &self,
        doctor: &AccountId,
        thread_id: &str,
        kind: &str,
        requester_facility: Option<&str>,
    ) -> Result<()> {
        if !self.policy.enabled {
            return Ok(());
        }
        let Some(target) = self.store.notify_target(doctor.as_str()).await? else {
            return Ok(());
        };
        let now = self.clock.now_millis();
        let mut r = row(
            format!("assign:{thread_id}:{}:{now}", doctor.as_str()),
            &target,
            NotifyReason::Assigned,
            &self.policy,
            now,
        );
        r.kind = Some(kind.into());
        r.thread_id = Some(thread_id.into());
        r.facility_code = requester_facility.map(str::to_string);
        self.store.queue_notifications(&[r]).await?;
        Ok(())
    }

    /// Tells the liaisons and clerks of each facility about items addressed to it
    /// that nobody has opened within its escalation hours; each thread once per
    /// delivery. Returns how many threads were escalated.
    pub async fn escalate_due(&self, now: i64) -> Result<usize> {
        if !self.policy.enabled {
            return Ok(0);
        }
        let mut escalated = 0;
        for t in self.store.unopened_threads(now).await? {
            let mut targets = self
                .store
                .facility_notify_targets(&t.target_facility, Role::Liaison.as_str())
                .await?;
            targets.extend(
                self.store
                    .facility_notify_targets(&t.target_facility, Role::Clerk.as_str())
                    .await?,
            );
            let rows: Vec<NotificationRow> = targets
                .iter()
                .map(|target| {
                    let mut r = row(
                        format!(
                            "escalate:{}:{}:{}",
                            t.thread_id, t.delivered_at, target.account_id
                        ),
                        target,
                        NotifyReason::Escalation,
                        &self.policy,
                        now,
                    );
                    r.kind = Some(t.kind.clone());
                    r.thread_id = Some(t.thread_id.clone());
                    r.envelope_id = Some(t.opener_id.clone());
                    r.facility_code = t.requester_facility.clone();
                    r
                })
                .collect();
            if self.store.escalate_thread(&t.thread_id, now, &rows).await? {
                tracing::info!(
                    thread = t.thread_id,
                    notices = rows.len(),
                    "escalated an unopened item"
                );
                escalated += 1;
            }
        }
        Ok(escalated)
    }

    // --- a person's settings ---------------------------------------------------

    pub async fn settings(&self, session: &CurrentSession) -> Result<Preferences> {
        session.require_ready()?;
        self.store
            .notify_settings(session.account.id.as_str())
            .await?
            .map(Preferences::from)
            .ok_or(Error::NotFound("account"))
    }

    pub async fn set_mode(&self, session: &CurrentSession, mode: NotifyMode) -> Result<()> {
        session.require_ready()?;
        self.store
            .set_notify_mode(session.account.id.as_str(), mode.as_str())
            .await?;
        Ok(())
    }

    /// Records a new address and mails it a confirmation link; the old address
    /// (if any) stays in use until the link is opened.
    pub async fn request_email_change(
        &self,
        session: &CurrentSession,
        address: &str,
    ) -> Result<()> {
        session.require_ready()?;
        self.request_confirmation(&session.account.id, address)
            .await?;
        // The address itself stays off the trail.
        self.audit
            .record(AuditEvent::by(session, action::EMAIL_CHANGE).detail("requested"))
            .await
    }

    /// Also used when the operator enters an address for a new account.
    pub async fn request_confirmation(&self, account: &AccountId, address: &str) -> Result<()> {
        let address = address.trim();
        validate_email(address)?;
        let mut token = [0u8; 32];
        OsRng.fill_bytes(&mut token);
        let token = hex::encode(token);
        let token_hash = Sha256::digest(token.as_bytes()).to_vec();
        let now = self.clock.now_millis();
        let confirmation = NotificationRow {
            id: crate::ids::new_id(),
            dedup_key: format!("confirm:{}:{}", account.as_str(), hex::encode(&token_hash)),
            account_id: account.as_str().into(),
            reason: NotifyReason::ConfirmAddress.as_str().into(),
            kind: None,
            thread_id: None,
            envelope_id: None,
            facility_code: None,
            to_address: Some(address.into()),
            secret: Some(token),
            digest: false,
            state: if self.policy.enabled {
                "pending".into()
            } else {
                "dropped".into()
            },
            attempts: 0,
            next_attempt_at: now,
            last_error: (!self.policy.enabled).then(|| "no mail relay is configured".into()),
            created_at: now,
            sent_at: None,
        };
        self.store
            .set_pending_email(
                account.as_str(),
                address,
                &token_hash,
                now.saturating_add(millis(self.policy.confirm_valid_for)),
                &confirmation,
            )
            .await?;
        tracing::info!(account = account.as_str(), "address confirmation queued");
        Ok(())
    }

    /// Opens a confirmation link: the pending address becomes the verified one.
    pub async fn confirm_email(&self, token: &str) -> Result<AccountId> {
        let token_hash = Sha256::digest(token.trim().as_bytes()).to_vec();
        let id = self
            .store
            .confirm_email(&token_hash, self.clock.now_millis())
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    "token",
                    "the confirmation link is not valid or has expired",
                    "確認リンクが無効か、有効期限が切れています。設定画面からもう一度登録してください。",
                )
            })?;
        tracing::info!(account = id.as_str(), "address confirmed");
        let id = AccountId::parse(&id).map_err(|_| Error::Internal("stored account id".into()))?;
        // Opened from a mail link, not a session: the account is the actor.
        if let Some(account) = self.store.account(&id).await? {
            self.audit
                .record(AuditEvent {
                    actor: Some(id.as_str().to_string()),
                    role: Some(account.role.as_str().to_string()),
                    facility: account.facility.as_ref().map(|c| c.to_string()),
                    action: action::EMAIL_CHANGE,
                    detail: Some("verified".into()),
                    channel: Some(Channel::Web),
                    ..AuditEvent::default()
                })
                .await?;
        }
        Ok(id)
    }

    /// The person's own notices that could not be sent.
    pub async fn failed_for(&self, session: &CurrentSession) -> Result<Vec<FailedNotice>> {
        session.require_ready()?;
        self.failed(Some(session.account.id.as_str())).await
    }

    /// `notifications failed` on the console: every failed notice, recorded
    /// (metadata only: reason, kind, IDs).
    pub async fn failed_for_console(&self, by: Actor<'_>) -> Result<Vec<FailedNotice>> {
        let work = self.failed(None);
        self.audit
            .console(by, "notifications failed", None, work)
            .await
    }

    /// Every failed notice, for the operator (metadata only: reason, kind, IDs).
    pub async fn failed_all(&self, session: &CurrentSession) -> Result<Vec<FailedNotice>> {
        if session.require_ready()?.role != Role::Operator {
            return Err(Error::Forbidden);
        }
        self.failed(None).await
    }

    async fn failed(&self, account: Option<&str>) -> Result<Vec<FailedNotice>> {
        Ok(self
            .store
            .failed_notifications(account)
            .await?
            .into_iter()
            .map(FailedNotice::from)
            .collect())
    }

    /// What a notice may say of its facility and thread, looked up as it is
    /// sent (a facility renamed meanwhile is named as it is now). A lookup that
    /// fails leaves the fact out rather than holding the notice back.
    pub async fn facts(&self, row: &PendingNotice) -> NoticeFacts {
        let facility = match row
            .facility_code
            .as_deref()
            .and_then(|c| crate::FacilityCode::parse(c).ok())
        {
            Some(code) => self
                .store
                .facility(&code)
                .await
                .ok()
                .flatten()
                .map(|f| f.name),
            None => None,
        };
        let thread = match row.thread_id.as_deref() {
            Some(id) => self.store.thread(id).await.ok().flatten(),
            None => None,
        };
        NoticeFacts {
            facility,
            urgent: thread.as_ref().is_some_and(|t| t.urgency == "urgent"),
            wanted_by: thread.and_then(|t| t.wanted_by),
        }
    }

    /// Leases due notices to the sender until `lease_until`: immediate ones,
    /// or (`digest`) the lines of daily summaries.
    pub async fn claim_due(
        &self,
        now: i64,
        lease_until: i64,
        digest: bool,
        limit: i64,
    ) -> Result<Vec<PendingNotice>> {
        Ok(self
            .store
            .claim_notifications(now, lease_until, digest, limit)
            .await?
            .into_iter()
            .map(PendingNotice::from)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(reason: NotifyReason) -> PendingNotice {
        PendingNotice {
            id: "n1".into(),
            account_id: "K7M4QX9R".into(),
            reason: reason.as_str().into(),
            kind: Some("reading_request".into()),
            thread_id: Some("t1".into()),
            envelope_id: Some("e1".into()),
            facility_code: Some("3710300017".into()),
            to_address: None,
            token: None,
            attempts: 0,
            created_at: 0,
        }
    }

    #[test]
    fn a_notice_names_kind_facility_and_link() {
        let facts = NoticeFacts {
            facility: Some("高松クリニック".into()),
            urgent: true,
            wanted_by: Some("2026-12-01".into()),
        };
        let text = compose(
            &sample(NotifyReason::NewItem),
            &facts,
            "https://renkei.example/",
        );
        assert!(text.subject.contains("【至急】"), "{}", text.subject);
        assert!(text.body.contains("至急") && text.body.contains("希望期日: 2026-12-01"));
        assert!(text.subject.contains("読影依頼"), "{}", text.subject);
        assert!(
            text.body
                .contains("高松クリニック から読影依頼が届きました")
        );
        assert!(text.body.contains("https://renkei.example/threads/t1"));
        assert!(text.body.contains("reading request"));
    }

    #[test]
    fn back_off_grows_and_gives_up_after_the_limit() {
        let p = NotifyPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_secs(30));
        assert_eq!(p.backoff(3), Duration::from_secs(120));
        assert_eq!(p.backoff(30), p.retry.max);
        let day = 24 * 3_600_000;
        assert_eq!(p.next_attempt(0, 1, 1000), Some(31_000));
        // Never scheduled past the deadline, and nothing after it.
        assert_eq!(p.next_attempt(0, 20, day - 1), Some(day));
        assert_eq!(p.next_attempt(0, 21, day), None);
    }

    #[test]
    fn the_digest_goes_out_at_eight_in_japan() {
        let p = NotifyPolicy::default();
        // 2026-11-25 12:00 UTC = 21:00 JST → next 08:00 JST is 2026-11-25 23:00 UTC.
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .map(|d| d.timestamp_millis())
            .unwrap_or_default();
        let at = chrono::DateTime::from_timestamp_millis(p.next_digest_at(now))
            .map(|d| d.to_rfc3339())
            .unwrap_or_default();
        assert_eq!(at, "2026-11-25T23:00:00+00:00");
        // 22:30 UTC = 07:30 JST → 30 minutes later.
        let early = now + 10 * 3_600_000 + 1_800_000;
        assert_eq!(p.next_digest_at(early), now + 11 * 3_600_000);
    }

    #[test]
    fn a_digest_lists_each_update_without_content() {
        let rows = vec![
            (
                sample(NotifyReason::NewItem),
                NoticeFacts {
                    facility: Some("高松クリニック".to_string()),
                    ..NoticeFacts::default()
                },
            ),
            (sample(NotifyReason::Report), NoticeFacts::default()),
        ];
        let text = compose_digest(&rows, "https://renkei.example");
        assert!(text.subject.contains("2"));
        assert_eq!(
            text.body
                .matches("https://renkei.example/threads/t1")
                .count(),
            2
        );
    }
}
