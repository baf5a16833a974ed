//! Sends the queued notification mails through the configured relay (lettre,
//! implicit TLS or STARTTLS), retries with back-off until the give-up time, sends
//! the daily digests, and runs the escalation sweep. What a mail says and who gets
//! it are `mailbox::notify`'s rules; this is the wire.
//!
//! Relay security: STARTTLS required, implicit TLS, or plain for a relay on the
//! same host; an extra CA file for a private relay certificate. The person's
//! verified address is read again at send time. A failed attempt backs off (the
//! queue's one `BackOff`) until `give_up_after` (default 24 h) and is then
//! `failed`, which the person and the operator see; a permanent SMTP refusal
//! fails at once. `serve` starts the sender only when `[smtp]` is configured;
//! without it nothing is queued.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::message::{Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mailbox::clock::now_millis;
use mailbox::notify::{NoticeText, Notices, PendingNotice, compose, compose_digest};
use mailbox::queue::lease_until;
use mailbox::store::Store;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelaySecurity {
    /// TLS from the first byte (usually port 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS, which is required (usually 587).
    StartTls,
    /// No TLS: only for a relay on the same host.
    Plain,
}

impl RelaySecurity {
    pub fn parse(s: &str) -> Result<Self, NotifyError> {
        match s.trim() {
            "implicit" | "tls" => Ok(Self::Implicit),
            "starttls" => Ok(Self::StartTls),
            "plain" | "none" => Ok(Self::Plain),
            other => Err(NotifyError::Config(format!(
                "smtp security must be implicit, starttls or plain, not {other:?}"
            ))),
        }
    }
}

/// Where and how to hand mails over.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub host: String,
    pub port: u16,
    pub security: RelaySecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The From address of every notice.
    pub from: String,
    /// Extra trust anchor (PEM) for a relay with a private certificate.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification settings: {0}")]
    Config(String),
    #[error("smtp: {0}")]
    Smtp(String),
    #[error(transparent)]
    Domain(#[from] mailbox::Error),
    #[error("storage: {0}")]
    Store(#[from] mailbox::store::StoreError),
}

/// How long a claimed row stays with this sender.
const LEASE: Duration = Duration::from_secs(10 * 60);
const BATCH: i64 = 32;
/// How often an idle sender looks for due rows.
pub const IDLE_POLL: Duration = Duration::from_millis(500);
/// How often the digest and escalation sweeps run.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The SMTP transport to the configured relay (also used for the audit
/// checkpoint mails).
pub fn relay_transport(
    settings: &RelaySettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifyError> {
    let tls = || -> Result<TlsParameters, NotifyError> {
        let mut builder = TlsParameters::builder(settings.host.clone());
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                NotifyError::Config(format!("reading smtp ca_file {}: {e}", path.display()))
            })?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| NotifyError::Config(format!("smtp ca_file: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| NotifyError::Config(format!("smtp TLS: {e}")))
    };
    let mut relay = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
        .port(settings.port)
        .timeout(Some(Duration::from_secs(20)));
    relay = match settings.security {
        RelaySecurity::Implicit => relay.tls(Tls::Wrapper(tls()?)),
        RelaySecurity::StartTls => relay.tls(Tls::Required(tls()?)),
        RelaySecurity::Plain => relay.tls(Tls::None),
    };
    if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
        relay = relay.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(relay.build())
}

/// A plain-text mail as large providers accept it: MIME-Version, a UTF-8
/// text part and a Message-ID `<id@domain of from>`.
pub(crate) fn plain_mail(
    from: &Mailbox,
    to: Mailbox,
    subject: String,
    body: String,
    id: &str,
) -> Result<Message, lettre::error::Error> {
    // A msg-id's left part is a dot-atom: keep only what is always safe there.
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{id}@{}>", from.email.domain())))
        .singlepart(SinglePart::plain(body))
}

pub struct Notifier {
    store: Arc<dyn Store>,
    notices: Arc<Notices>,
    relay: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    base_url: String,
}

impl Notifier {
    pub fn new(
        settings: &RelaySettings,
        store: Arc<dyn Store>,
        notices: Arc<Notices>,
        base_url: String,
    ) -> Result<Self, NotifyError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| NotifyError::Config(format!("smtp from address: {e}")))?;
        Ok(Self {
            store,
            notices,
            relay: relay_transport(settings)?,
            from,
            base_url,
        })
    }

    /// The address a row goes to now: the one being confirmed, or the person's
    /// verified address if they still want mail.
    async fn address_of(&self, row: &PendingNotice) -> Result<Option<String>, NotifyError> {
        if let Some(to) = &row.to_address {
            return Ok(Some(to.clone()));
        }
        Ok(self
            .store
            .notify_target(&row.account_id)
            .await?
            .map(|t| t.email))
    }

    /// Sends one notice; `id` names it in its Message-ID, so a retry of the
    /// same notice carries the same one.
    async fn transmit(&self, to: &str, text: NoticeText, id: &str) -> Result<(), (bool, String)> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| (true, format!("the address cannot be used: {e}")))?;
        let message = plain_mail(&self.from, to, text.subject, text.body, id)
            .map_err(|e| (true, format!("building the mail: {e}")))?;
        self.relay
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| (e.is_permanent(), e.to_string()))
    }

    /// Records a failed attempt: retried with back-off until the give-up time, at
    /// once failed when the relay refused it for good.
    async fn attempt_failed(
        &self,
        row: &PendingNotice,
        permanent: bool,
        error: &str,
    ) -> Result<(), NotifyError> {
        let attempts = row.attempts + 1;
        let now = now_millis();
        let next = if permanent {
            None
        } else {
            self.notices
                .policy()
                .next_attempt(row.created_at, attempts, now)
        };
        if next.is_none() {
            tracing::warn!(
                notification = row.id,
                account = row.account_id,
                attempts,
                error,
                "notification failed for good"
            );
        } else {
            tracing::info!(
                notification = row.id,
                attempts,
                error,
                "notification deferred"
            );
        }
        self.store
            .defer_notification(&row.id, attempts, next, error)
            .await?;
        Ok(())
    }

    /// Sends one batch of due immediate notices; returns how many were handled.
    pub async fn send_due(&self, now: i64) -> Result<usize, NotifyError> {
        let rows = self
            .notices
            .claim_due(now, lease_until(now, LEASE), false, BATCH)
            .await?;
        for row in &rows {
            let Some(to) = self.address_of(row).await? else {
                self.store
                    .drop_notification(row.id.as_str(), "no verified address, or notifications off")
                    .await?;
                continue;
            };
            let facts = self.notices.facts(row).await;
            let text = compose(row, &facts, &self.base_url);
            match self.transmit(&to, text, &row.id).await {
                Ok(()) => {
                    self.store.notification_sent(&row.id, now_millis()).await?;
                    tracing::info!(
                        notification = row.id,
                        reason = row.reason,
                        "notification sent"
                    );
                }
                Err((permanent, error)) => self.attempt_failed(row, permanent, &error).await?,
            }
        }
        Ok(rows.len())
    }

    /// Sends one summary per person for their due digest lines.
    pub async fn send_digests(&self, now: i64) -> Result<usize, NotifyError> {
        let rows = self
            .notices
            .claim_due(now, lease_until(now, LEASE), true, 1000)
            .await?;
        let mut by_account: BTreeMap<String, Vec<PendingNotice>> = BTreeMap::new();
        for row in rows {
            by_account
                .entry(row.account_id.clone())
                .or_default()
                .push(row);
        }
        let people = by_account.len();
        for (account, rows) in by_account {
            let Some(target) = self.store.notify_target(&account).await? else {
                for row in &rows {
                    self.store
                        .drop_notification(&row.id, "no verified address, or notifications off")
                        .await?;
                }
                continue;
            };
            let mut lines = Vec::with_capacity(rows.len());
            for row in rows {
                let facts = self.notices.facts(&row).await;
                lines.push((row, facts));
            }
            let text = compose_digest(&lines, &self.base_url);
            let id = format!("digest-{}", mailbox::ids::new_id());
            match self.transmit(&target.email, text, &id).await {
                Ok(()) => {
                    let at = now_millis();
                    for (row, _) in &lines {
                        self.store.notification_sent(&row.id, at).await?;
                    }
                    tracing::info!(account, lines = lines.len(), "digest sent");
                }
                Err((permanent, error)) => {
                    for (row, _) in &lines {
                        self.attempt_failed(row, permanent, &error).await?;
                    }
                }
            }
        }
        Ok(people)
    }
}

/// Runs until `shutdown` resolves: immediate notices as they come, digests and
/// the escalation sweep every [`SWEEP_EVERY`].
pub async fn run(notifier: Arc<Notifier>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut last_sweep: Option<Instant> = None;
    loop {
        let mut pause = IDLE_POLL;
        match notifier.send_due(now_millis()).await {
            Ok(n) if n > 0 => pause = Duration::ZERO,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sending notifications failed"),
        }
        if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            last_sweep = Some(Instant::now());
            if let Err(e) = notifier.notices.escalate_due(now_millis()).await {
                tracing::warn!(error = %e, "escalation sweep failed");
            }
            if let Err(e) = notifier.send_digests(now_millis()).await {
                tracing::warn!(error = %e, "sending digests failed");
            }
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
