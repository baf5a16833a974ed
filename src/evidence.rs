//! The audit trail as evidence, inside `serve`: the audit key (outside the
//! database), signed checkpoints of the chain's head every `[audit]
//! checkpoint_secs` and at start-up and clean shutdown (appended to the
//! write-once checkpoint file, mailed to `[smtp] operator_address` when a relay
//! is set), and the daily audit retention job when `[audit] retain_days` is set.
//! What a checkpoint is and how `verify` uses it: `mailbox::records::checkpoint`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mailbox::records::audit::Audit;
use mailbox::records::checkpoint::{CheckpointFiles, Checkpointer};
use mailbox::store::Store;
use renkei_crypto::AuditKey;
use tokio::task::JoinHandle;
use transport::audit_mail::CheckpointMailer;

use crate::config::Settings;

/// The environment variable that may hold the audit key (hex).
pub const AUDIT_KEY_ENV: &str = "RENKEI_AUDIT_KEY";

/// The audit key: `RENKEI_AUDIT_KEY` (hex), or the key file (`[audit]
/// key_path`, made on first start, mode 0600). Nodes sharing a database share it.
pub fn audit_key(settings: &Settings) -> anyhow::Result<AuditKey> {
    if let Ok(hex) = std::env::var(AUDIT_KEY_ENV) {
        return AuditKey::from_hex(&hex).context(AUDIT_KEY_ENV);
    }
    let path = &settings.audit.key_file;
    if !path.exists() {
        create_parent(path)?;
        let key = AuditKey::generate().context("generating the audit key")?;
        crate::demo::write_private(path, key.to_hex().as_str())?;
        tracing::info!(path = %path.display(), "generated the audit key");
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    AuditKey::from_hex(&text).with_context(|| format!("reading {}", path.display()))
}

fn create_parent(path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(())
}

/// The checkpoint file and its public keys, as configured.
pub fn checkpoint_files(settings: &Settings) -> anyhow::Result<CheckpointFiles> {
    let files = CheckpointFiles::at(settings.audit.checkpoint_file.clone());
    create_parent(&files.log)?;
    Ok(files)
}

/// This node's checkpoints, their mail copy and the audit retention job.
pub struct Evidence {
    pub checkpointer: Checkpointer,
    mailer: Option<CheckpointMailer>,
    audit: Audit,
    every: Duration,
    retain_days: u32,
    node: String,
}

impl Evidence {
    pub fn build(settings: &Settings, store: Arc<dyn Store>, audit: Audit) -> anyhow::Result<Self> {
        let checkpointer = Checkpointer::new(
            store,
            Arc::new(audit_key(settings)?),
            checkpoint_files(settings)?,
            settings.audit.node.clone(),
        )
        .context("audit checkpoints")?;
        let mailer = match (&settings.relay, &settings.audit.mail_to) {
            (Some(relay), Some(to)) => Some(CheckpointMailer::new(relay, to)?),
            _ => None,
        };
        Ok(Self {
            checkpointer,
            mailer,
            audit,
            every: settings.audit.checkpoint_every,
            retain_days: settings.audit.retain_days,
            node: settings.audit.node.clone(),
        })
    }

    /// Signs and appends a checkpoint of the head, and mails it. `clock` is the
    /// clock-sync state (`unknown` when `None`). Failures are logged: serving
    /// goes on, and the gap shows in the file.
    pub async fn checkpoint(&self, clock: Option<&str>) {
        let c = match self.checkpointer.write(clock).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "audit checkpoint could not be written");
                return;
            }
        };
        if let Some(mailer) = &self.mailer
            && let Err(e) = mailer.send(&self.node, c.seq, &c.to_line()).await
        {
            tracing::warn!(error = %e, seq = c.seq, "audit checkpoint mail failed");
        }
    }

    /// One run of the audit retention job: entries older than `retain_days`.
    pub async fn retain(&self, clock: Option<&str>) {
        if self.retain_days == 0 {
            return;
        }
        let day_ms = 24 * 3600 * 1000i64;
        let before = mailbox::clock::now_millis() - i64::from(self.retain_days) * day_ms;
        match self.checkpointer.retain(&self.audit, before, clock).await {
            Ok(Some(cut)) => tracing::info!(up_to_seq = cut.seq, "audit retention removed entries"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "audit retention failed"),
        }
    }

    /// Checkpoints every `checkpoint_secs` (the first one after a period: the
    /// start-up checkpoint is the caller's) and the audit retention job daily
    /// (first at start-up). `clock` gives the clock-sync state each time.
    pub fn spawn(
        self: Arc<Self>,
        clock: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut checkpoints = tokio::time::interval_at(start + self.every, self.every);
            let mut retention = tokio::time::interval(Duration::from_secs(24 * 3600));
            for tick in [&mut checkpoints, &mut retention] {
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            loop {
                tokio::select! {
                    _ = checkpoints.tick() => self.checkpoint(clock().as_deref()).await,
                    _ = retention.tick() => self.retain(clock().as_deref()).await,
                }
            }
        })
    }
}
