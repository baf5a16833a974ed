//! The audit trail: who did what to which item, when and from where — never
//! what the item says. Entries form a hash chain: each entry's hash covers the
//! previous entry's hash and its own canonical fields, so changing, removing or
//! reordering a stored entry breaks the chain at exactly that entry.
//!
//! One entry per sign-in (ok or failed, the reason as a fixed word; a mistyped
//! ID is not recorded), sign-out, password change, view (`detail=peek` for IMAP
//! `BODY.PEEK`), download, PDF render, send, thread open and step,
//! claim/release/assign/unassign, flag change, forward, grant, every `renkei
//! admin` command (`detail` = command and outcome, `item` = a well-formed
//! facility code or account ID only), retention and patient deletions, audit
//! and report exports. An entry holds who (account ID — for `renkei admin` the
//! operator who runs it —, `bootstrap` before any operator exists, or `system`),
//! role, facility, action (a constant of `action`), item ID, detail, time (ms),
//! the request's address and the channel it came through ([`Channel`]: the
//! channel its session was opened through) — never patient data.
//!
//! Sends (and thread steps), forwards, claims and assignments write their
//! entry in the action's own transaction ([`AuditEvent::row`] handed to the
//! store), so no such action stands without its entry.
//!
//! Each entry's `hash` is SHA-256 over the JSON array of its fields and the
//! previous entry's hash. Appending first updates the one-row `audit_head`
//! (`UPDATE … RETURNING`), which locks it until commit, so concurrent appenders
//! (tasks, admin processes, nodes) queue instead of forking the chain. Appends
//! are group-committed: callers queue their entry and whoever holds the writing
//! lock appends everything queued in one transaction, answering each caller
//! after the commit. `verify` (in `verify.rs`) walks the chain from `seq` 1 (or
//! the audit retention job's signed cut) and names the first entry whose seq,
//! previous hash or own hash does not fit (and entries cut off the end, via the
//! head); it also checks the chain against the signed checkpoints kept outside
//! the database (`checkpoint.rs`), which catch a rewrite whose hashes were all
//! recomputed. `audit_log` refuses UPDATE and DELETE (triggers on both
//! backends); only the audit retention job removes entries. Reads are recorded with `note` (a failed write is
//! logged, the answer not withheld); actions whose record must exist use
//! `record` and fail with it. The address comes from the edge: HTTPS sets
//! `x-renkei-peer` on every request (replacing any client value), IMAP sessions
//! carry the address they signed in from.

use std::sync::Arc;

use crate::account::Account;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::records::AuditRow;

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened. Fixed words only, so nothing a person typed reaches the log.
pub mod action {
    pub const SIGN_IN: &str = "sign_in";
    pub const SIGN_IN_FAILED: &str = "sign_in_failed";
    pub const SIGN_OUT: &str = "sign_out";
    pub const PASSWORD_CHANGE: &str = "password_change";
    pub const SEND: &str = "send";
    pub const VIEW: &str = "view";
    pub const DOWNLOAD: &str = "download";
    pub const RENDER: &str = "render";
    pub const FORWARD: &str = "forward";
    pub const FLAGS: &str = "flags";
    pub const THREAD_OPEN: &str = "thread_open";
    pub const THREAD_STEP: &str = "thread_step";
    pub const CLAIM: &str = "claim";
    pub const RELEASE: &str = "release";
    pub const ASSIGN: &str = "assign";
    pub const UNASSIGN: &str = "unassign";
    pub const GRANT: &str = "grant";
    pub const ADMIN: &str = "admin";
    pub const RETENTION_DELETE: &str = "retention_delete";
    pub const PATIENT_SEARCH: &str = "patient_search";
    pub const PATIENT_DELETE: &str = "patient_delete";
    pub const BILLING: &str = "billing";
    pub const AUDIT_EXPORT: &str = "audit_export";
    pub const REPORT_EXPORT: &str = "report_export";
    /// A read found an attachment not to match its signed manifest (detail: its index).
    pub const ATTACHMENT_DAMAGED: &str = "attachment_damaged";
    /// A session ended other than by signing out (detail: cause and length).
    pub const SESSION_END: &str = "session_end";
    /// A second factor enrolled or removed (detail: which, and how).
    pub const FACTOR_CHANGE: &str = "factor_change";
    /// An app password made or revoked (detail: `created`/`revoked` and its ID).
    pub const APP_PASSWORD_CHANGE: &str = "app_password_change";
    /// The notification address set, verified or removed (never the address).
    pub const EMAIL_CHANGE: &str = "email_change";
    /// The node's clock changed between trusted and not (`crate::timesync`;
    /// item: the node, detail: the state, e.g. `unsynchronised`).
    pub const TIME_SYNC: &str = "time_sync";
    /// A person's earlier keys: restoration requested by a reset, approved by
    /// a custodian (item: the person; detail: the step and how many keys).
    pub const KEY_RESTORE: &str = "key_restore";
    /// Items sealed before the facility's oversight key gained its slot
    /// (item: the doctor whose key added them; detail: how many).
    pub const OVERSIGHT_HISTORY: &str = "oversight_history";
}

/// Where an action came from: the pages, the JSON API, a mail client, the
/// operator's command line or the server's own schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Channel {
    #[default]
    Web,
    Api,
    Imap,
    Cli,
    System,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Api => "api",
            Self::Imap => "imap",
            Self::Cli => "cli",
            Self::System => "system",
        }
    }

    /// The stored word back (a session's column); unknown words are `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "web" => Self::Web,
            "api" => Self::Api,
            "imap" => Self::Imap,
            "cli" => Self::Cli,
            "system" => Self::System,
            _ => return None,
        })
    }
}

/// One thing to record. Built from a session (actor, role, facility and the
/// request's address come with it) or for the operator's command line.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub actor: Option<String>,
    pub role: Option<String>,
    pub facility: Option<String>,
    pub action: &'static str,
    pub item: Option<String>,
    pub detail: Option<String>,
    pub remote_addr: Option<String>,
    pub channel: Option<Channel>,
}

/// Who acted, as the trail records it: the signed-in account and the
/// request's address. The session implements it (`crate::auth::acting`), so the
/// audit trail imports no service.
pub trait Acting {
    fn acting_account(&self) -> &Account;
    fn remote_addr(&self) -> Option<String>;
    /// The channel the session was opened through.
    fn channel(&self) -> Channel;
    /// The account, once the session may act (see `CurrentSession::require_ready`).
    fn ready_account(&self) -> Result<&Account>;
}

impl<T: Acting + ?Sized> Acting for &T {
    fn acting_account(&self) -> &Account {
        (**self).acting_account()
    }

    fn remote_addr(&self) -> Option<String> {
        (**self).remote_addr()
    }

    fn channel(&self) -> Channel {
        (**self).channel()
    }

    fn ready_account(&self) -> Result<&Account> {
        (**self).ready_account()
    }
}

/// Who asks: a signed-in operator, the command line on the server, or the
/// server's own schedule.
#[derive(Clone, Copy)]
pub enum Actor<'a> {
    /// A signed-in session (`&CurrentSession`).
    Session(&'a (dyn Acting + Sync)),
    /// `renkei admin …`, run by the operator it names (their account ID; see
    /// `src/admin/operator.rs`), recorded as the actor on channel `cli`.
    Cli(&'a str),
    System,
}

impl Actor<'_> {
    /// The entry this actor's `what` makes.
    pub fn event(&self, what: &'static str) -> AuditEvent {
        match self {
            Self::Session(s) => AuditEvent::by(s, what),
            Self::Cli(operator) => AuditEvent::cli(operator, what),
            Self::System => AuditEvent::system(what),
        }
    }

    /// Refuses a session that is not the operator's (the command line and
    /// the schedule act as the operator).
    pub fn require_operator(&self) -> Result<()> {
        match self {
            Self::Session(s) => {
                crate::roles::require(s.ready_account()?, crate::roles::Action::RunNetwork)
            }
            _ => Ok(()),
        }
    }
}

impl AuditEvent {
    pub fn by(session: &impl Acting, action: &'static str) -> Self {
        let a = session.acting_account();
        Self {
            actor: Some(a.id.as_str().to_string()),
            role: Some(a.role.as_str().to_string()),
            facility: a.facility.as_ref().map(|c| c.to_string()),
            action,
            remote_addr: session.remote_addr(),
            channel: Some(session.channel()),
            ..Self::default()
        }
    }

    /// The operator at the server's command line (`renkei admin …`), named
    /// by their account ID.
    pub fn cli(operator: &str, action: &'static str) -> Self {
        Self {
            actor: Some(operator.to_string()),
            role: Some("operator".into()),
            action,
            remote_addr: Some("local".into()),
            channel: Some(Channel::Cli),
            ..Self::default()
        }
    }

    /// The server itself (scheduled retention).
    pub fn system(action: &'static str) -> Self {
        Self {
            actor: Some("system".into()),
            action,
            channel: Some(Channel::System),
            ..Self::default()
        }
    }

    pub fn item(mut self, id: impl Into<String>) -> Self {
        self.item = Some(id.into());
        self
    }

    /// Fixed words, IDs and counts only — never anything a person typed.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The entry as a row for the store to append inside the action's own
    /// transaction (`seq` and the hashes are set there).
    pub fn row(self, at_ms: i64) -> AuditRow {
        AuditRow {
            seq: 0,
            at: at_ms,
            actor: self.actor,
            role: self.role,
            facility: self.facility,
            action: self.action.to_string(),
            item: self.item,
            detail: self.detail,
            remote_addr: self.remote_addr,
            prev_hash: String::new(),
            hash: String::new(),
            channel: self.channel.map(|c| c.as_str().to_string()),
        }
    }
}

/// The entry's hash ([`AuditRow::chain_hash`]): SHA-256 over the previous
/// hash and the canonical form of every field.
pub fn entry_hash(e: &AuditRow) -> String {
    e.chain_hash()
}

pub use super::verify::{Rewritten, Verification};

/// `[from, to]` in JST days as Unix milliseconds `[start, end)`.
pub fn jst_days(from: chrono::NaiveDate, to: chrono::NaiveDate) -> Result<(i64, i64)> {
    if to < from {
        return Err(Error::invalid(
            "to",
            "the last day is before the first",
            "終了日が開始日より前です。",
        ));
    }
    let start = |d: chrono::NaiveDate| {
        crate::clock::jst_day_start_millis(d)
            .ok_or_else(|| Error::Internal("date out of range".into()))
    };
    let next = to
        .succ_opt()
        .ok_or_else(|| Error::Internal("date out of range".into()))?;
    Ok((start(from)?, start(next)?))
}

/// Entries as CSV, with a header line; times in JST (ISO 8601 with +09:00).
pub fn to_csv(rows: &[AuditRow]) -> String {
    let mut out = String::from(crate::records::csv::BOM);
    out.push_str(&crate::records::csv::line(&[
        "seq",
        "at",
        "actor",
        "role",
        "facility",
        "action",
        "item",
        "detail",
        "remote_addr",
        "prev_hash",
        "hash",
        "channel",
    ]));
    for r in rows {
        let at = match chrono::DateTime::from_timestamp_millis(r.at) {
            Some(t) => crate::clock::rfc3339_jst(t),
            None => r.at.to_string(),
        };
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        out.push_str(&crate::records::csv::line(&[
            r.seq.to_string(),
            at,
            o(&r.actor),
            o(&r.role),
            o(&r.facility),
            r.action.clone(),
            o(&r.item),
            o(&r.detail),
            o(&r.remote_addr),
            r.prev_hash.clone(),
            r.hash.clone(),
            o(&r.channel),
        ]));
    }
    out
}

/// An entry waiting to be appended, and who waits for it.
type Pending = (
    AuditRow,
    tokio::sync::oneshot::Sender<std::result::Result<(), String>>,
);

#[derive(Clone)]
pub struct Audit {
    pub(super) store: Arc<dyn Store>,
    /// The signed checkpoints `verify` checks the chain against, if any.
    pub(super) checkpoints: Option<super::checkpoint::CheckpointFiles>,
    /// Entries not yet written.
    pending: Arc<std::sync::Mutex<Vec<Pending>>>,
    /// Held by the one caller writing; whoever gets it next writes everything
    /// that queued meanwhile in one transaction (group commit: a busy server
    /// pays one commit per group, not per view).
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl Audit {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            checkpoints: None,
            pending: Arc::default(),
            writing: Arc::default(),
        }
    }

    /// `verify` also checks the chain against these signed checkpoints.
    pub fn with_checkpoints(mut self, files: super::checkpoint::CheckpointFiles) -> Self {
        self.checkpoints = Some(files);
        self
    }

    /// Appends one entry and returns once it is committed. A failure is
    /// returned, so an action that must be recorded is not reported as done
    /// without its entry.
    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        self.record_many(vec![event]).await
    }

    /// Appends several entries (a mail client opening a folder's items in one
    /// batch) in one group, and returns once all are committed.
    pub async fn record_many(&self, events: Vec<AuditEvent>) -> Result<()> {
        let at = crate::clock::now_millis();
        let mut answers = Vec::with_capacity(events.len());
        {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| Error::Internal("audit queue poisoned".into()))?;
            for event in events {
                let row = event.row(at);
                let (done, answer) = tokio::sync::oneshot::channel();
                pending.push((row, done));
                answers.push(answer);
            }
        }
        if answers.is_empty() {
            return Ok(());
        }
        let mut results: Vec<Option<std::result::Result<(), String>>> = vec![None; answers.len()];
        {
            let _writer = self.writing.lock().await;
            // Whoever held the lock before may have written these already, with
            // everything else that had queued: then there is nothing to do (a
            // waiter that wrote its own group anyway would turn group commit
            // into one transaction per caller).
            for (answer, result) in answers.iter_mut().zip(results.iter_mut()) {
                if let Ok(r) = answer.try_recv() {
                    *result = Some(r);
                }
            }
            if results.iter().any(Option::is_none) {
                let group = std::mem::take(
                    &mut *self
                        .pending
                        .lock()
                        .map_err(|_| Error::Internal("audit queue poisoned".into()))?,
                );
                if !group.is_empty() {
                    let (rows, waiters): (Vec<_>, Vec<_>) = group.into_iter().unzip();
                    let result = self
                        .store
                        .append_audit(rows, entry_hash)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string());
                    for w in waiters {
                        let _ = w.send(result.clone());
                    }
                }
            }
        }
        for (answer, result) in answers.into_iter().zip(results) {
            let r = match result {
                Some(r) => Ok(r),
                None => answer.await,
            };
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(Error::Internal(format!("audit entry not written: {e}")));
                }
                Err(_) => {
                    return Err(Error::Internal(
                        "audit entry not written: interrupted".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Records, and only logs a failure: for reads, whose answer is already
    /// on its way and should not be withheld because the log is unreachable.
    pub async fn note(&self, event: AuditEvent) {
        let action = event.action;
        if let Err(e) = self.record(event).await {
            tracing::error!(error = %e, action, "audit entry could not be written");
        }
    }

    /// Entries in `[from_ms, to_ms)`: every facility for the operator, the own
    /// facility's for a clerk; nobody else reads the log.
    pub async fn entries(
        &self,
        session: &impl Acting,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<AuditRow>> {
        let a = session.ready_account()?;
        let facility = match a.role {
            crate::Role::Operator => None,
            crate::Role::Clerk => Some(a.facility.as_ref().ok_or(Error::Forbidden)?.to_string()),
            _ => return Err(Error::Forbidden),
        };
        Ok(self
            .store
            .audit_entries(from_ms, to_ms, facility.as_deref())
            .await?)
    }

    /// Every entry in `[from_ms, to_ms)` (the operator's command line).
    pub async fn all_entries(&self, from_ms: i64, to_ms: i64) -> Result<Vec<AuditRow>> {
        Ok(self.store.audit_entries(from_ms, to_ms, None).await?)
    }

    /// The entries of the JST days `[from, to]` that `by` may read, and the
    /// export itself on the trail: the API, the records page and `renkei admin
    /// audit export` all come through here. The command line also records the
    /// period it asked for.
    pub async fn export(
        &self,
        by: Actor<'_>,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<AuditRow>> {
        let (start, end) = jst_days(from, to)?;
        let (rows, detail) = match by {
            Actor::Session(s) => {
                let rows = self.entries(&s, start, end).await?;
                let detail = format!("entries={}", rows.len());
                (rows, detail)
            }
            Actor::Cli(_) | Actor::System => {
                let rows = self.all_entries(start, end).await?;
                let detail = format!("from={from} to={to} entries={}", rows.len());
                (rows, detail)
            }
        };
        self.note(by.event(action::AUDIT_EXPORT).detail(detail))
            .await;
        Ok(rows)
    }

    /// Runs a console action `work` for `by` (the operator, or the command
    /// line) and records it as `what` on `item`, done or refused: the
    /// services' console methods come through here, so the pages, the API
    /// and `renkei admin` write the same entry.
    pub async fn console<T>(
        &self,
        by: Actor<'_>,
        what: &str,
        item: Option<String>,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = match by.require_operator() {
            Ok(()) => work.await,
            Err(e) => Err(e),
        };
        self.admin(by, what, item, result.is_ok()).await;
        result
    }

    /// An operator's console action (a page of the console or `renkei
    /// admin`), in the same words either way: "user lock: ok". The item is
    /// a facility code or account ID only. Services record through
    /// [`Audit::console`]; only what no service does (a backup of the
    /// files, a restore) is recorded by its command directly.
    pub async fn admin(&self, by: Actor<'_>, what: &str, item: Option<String>, ok: bool) {
        let mut event = by
            .event(action::ADMIN)
            .detail(format!("{what}: {}", if ok { "ok" } else { "failed" }));
        if let Some(item) = item {
            event = event.item(item);
        }
        self.note(event).await;
    }

    /// `audit verify` on the console: the walk of [`Audit::verify`], recorded
    /// as refused when the chain is broken.
    pub async fn verify_for(&self, by: Actor<'_>) -> Result<Verification> {
        let result = match by.require_operator() {
            Ok(()) => self.verify().await,
            Err(e) => Err(e),
        };
        let intact = result.as_ref().is_ok_and(Verification::intact);
        self.admin(by, "audit verify", None, intact).await;
        result
    }

    /// `audit export` on the console: [`Audit::export`] of the JST days
    /// `period` reads from the edge's input.
    pub async fn export_for(
        &self,
        by: Actor<'_>,
        period: impl FnOnce() -> Result<(chrono::NaiveDate, chrono::NaiveDate)>,
    ) -> Result<Vec<AuditRow>> {
        let work = async {
            let (from, to) = period()?;
            self.export(by, from, to).await
        };
        self.console(by, "audit export", None, work).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AuditRow {
        AuditRow {
            seq: 1,
            at: 1_700_000_000_000,
            actor: Some("ABCD2345".into()),
            role: Some("doctor".into()),
            facility: Some("1310000017".into()),
            action: action::VIEW.into(),
            item: Some("env".into()),
            detail: None,
            remote_addr: Some("127.0.0.1".into()),
            prev_hash: GENESIS.into(),
            hash: String::new(),
            channel: Some("api".into()),
        }
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let base = entry_hash(&row());
        let changes: [fn(&mut AuditRow); 12] = [
            |r| r.seq = 2,
            |r| r.at += 1,
            |r| r.actor = Some("ABCD2346".into()),
            |r| r.role = Some("clerk".into()),
            |r| r.facility = None,
            |r| r.action = action::DOWNLOAD.into(),
            |r| r.item = Some("enw".into()),
            |r| r.detail = Some(String::new()),
            |r| r.remote_addr = Some("127.0.0.2".into()),
            |r| r.prev_hash = "1".repeat(64),
            |r| r.channel = Some("web".into()),
            |r| r.channel = None,
        ];
        for change in changes {
            let mut r = row();
            change(&mut r);
            assert_ne!(entry_hash(&r), base);
        }
    }

    #[test]
    fn entries_written_before_channels_keep_their_hash() {
        use sha2::{Digest, Sha256};
        let mut r = row();
        r.channel = None;
        let old_form = serde_json::json!([
            r.seq,
            r.at,
            r.actor,
            r.role,
            r.facility,
            r.action,
            r.item,
            r.detail,
            r.remote_addr,
            r.prev_hash,
        ]);
        let old = hex::encode(Sha256::digest(old_form.to_string().as_bytes()));
        assert_eq!(entry_hash(&r), old);
    }
}
