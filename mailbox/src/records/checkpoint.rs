//! Checkpoints: the audit trail as evidence. Every few minutes (and at start-up
//! and clean shutdown) each node signs the chain's head — `seq`, `hash`, the
//! time, its name and the clock-sync state it was given — with the audit key,
//! an Ed25519 key kept outside the database, and appends the line to a
//! write-once file outside the database (opened append-only, fsync'd, never
//! rewritten). The public half is listed beside it (`<file>.pub`, one key a
//! line, so a changed key does not orphan older lines), so `verify` checks the
//! lines without the secret. A database writer who rewrites entries and
//! recomputes every later hash and the head cannot make the entry at a
//! checkpoint's `seq` carry the signed hash again, and cannot sign a new one.
//!
//! Retention of the audit trail (`[audit] retain_days`, off by default) is its
//! own job: it removes the oldest entries through the one door the append-only
//! triggers leave (see the migration `audit_append_only`) and records where the
//! retained chain starts as a cut signed with the same key, in the database and
//! as a `cut` line here, so `verify` starts at the first remaining entry without
//! calling the cut a break. A rogue database writer can open the same door, but
//! cannot sign the cut: removed entries then show as a break or an unsigned cut,
//! and a rewritten remainder differs from the checkpoints. Nodes sharing a
//! database share the audit key (like the second-factor key), so each can check
//! a cut another node made.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use renkei_crypto::{AuditKey, AuditPublicKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::records::audit::{AuditEvent, action};
use crate::store::Store;
use crate::store::records::AuditCut;

/// The clock-sync state when nobody says otherwise.
pub const CLOCK_UNKNOWN: &str = "unknown";

/// A checkpoint of the head (`head`), or of a retention cut (`cut`: entries up
/// to `seq` were removed, the last had `hash`).
pub const KIND_HEAD: &str = "head";
pub const KIND_CUT: &str = "cut";

/// One line of the checkpoint file. Carries no patient data: a node name,
/// times, a sequence number and hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub kind: String,
    pub node: String,
    /// Unix milliseconds.
    pub at: i64,
    pub seq: i64,
    pub hash: String,
    /// The clock-sync state the writer was given (`unknown` when none).
    pub clock: String,
    /// Ed25519 signature (hex) over [`Checkpoint::canonical`].
    pub sig: String,
}

impl Checkpoint {
    /// What the signature covers: a JSON array of every other field.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::json!([
            "renkei-audit-checkpoint/1",
            self.kind,
            self.node,
            self.at,
            self.seq,
            self.hash,
            self.clock,
        ])
        .to_string()
        .into_bytes()
    }

    /// A signed checkpoint.
    pub fn signed(
        key: &AuditKey,
        kind: &str,
        node: &str,
        at: i64,
        (seq, hash): (i64, String),
        clock: Option<&str>,
    ) -> Self {
        let mut c = Self {
            kind: kind.into(),
            node: node.into(),
            at,
            seq,
            hash,
            clock: clock.unwrap_or(CLOCK_UNKNOWN).into(),
            sig: String::new(),
        };
        c.sig = key.sign(&c.canonical());
        c
    }

    /// Whether one of `keys` signed exactly this line.
    pub fn verifies(&self, keys: &[AuditPublicKey]) -> bool {
        let message = self.canonical();
        keys.iter().any(|k| k.verify(&message, &self.sig))
    }

    /// The line as written (JSON, no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What the cut's signature covers.
pub fn cut_canonical(cut: &AuditCut) -> Vec<u8> {
    serde_json::json!(["renkei-audit-cut/1", cut.seq, cut.hash, cut.at])
        .to_string()
        .into_bytes()
}

/// The checkpoint file and the public keys beside it.
#[derive(Debug, Clone)]
pub struct CheckpointFiles {
    pub log: PathBuf,
    pub public: PathBuf,
}

/// One line of the checkpoint file as read: its number (from 1) and the
/// checkpoint, or `None` when the line is not one.
pub type ReadLine = (usize, Option<Checkpoint>);

impl CheckpointFiles {
    /// `log`, with its public keys in `log` + `.pub`.
    pub fn at(log: PathBuf) -> Self {
        let mut public = log.clone().into_os_string();
        public.push(".pub");
        Self {
            log,
            public: PathBuf::from(public),
        }
    }

    /// Appends one line, fsync'd. The file is only ever opened for appending.
    pub fn append(&self, c: &Checkpoint) -> std::io::Result<()> {
        append_line(&self.log, &c.to_line())
    }

    /// Lists `key` beside the checkpoints unless it is there already.
    pub fn publish(&self, key: &AuditPublicKey) -> std::io::Result<()> {
        if self.public_keys()?.contains(key) {
            return Ok(());
        }
        append_line(&self.public, &key.to_hex())
    }

    /// The public keys listed beside the checkpoints (none if no file).
    pub fn public_keys(&self) -> std::io::Result<Vec<AuditPublicKey>> {
        Ok(read_lines(&self.public)?
            .iter()
            .filter_map(|l| AuditPublicKey::from_hex(l).ok())
            .collect())
    }

    /// Every line of the checkpoint file (none if no file); empty lines skipped.
    pub fn read(&self) -> std::io::Result<Vec<ReadLine>> {
        Ok(read_lines(&self.log)?
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, serde_json::from_str(l).ok()))
            .collect())
    }
}

fn read_lines(path: &Path) -> std::io::Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_string).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()
}

/// Writes this node's checkpoints and runs the audit retention job.
pub struct Checkpointer {
    store: Arc<dyn Store>,
    key: Arc<AuditKey>,
    files: CheckpointFiles,
    node: String,
}

impl Checkpointer {
    /// Lists the key's public half beside the checkpoints.
    pub fn new(
        store: Arc<dyn Store>,
        key: Arc<AuditKey>,
        files: CheckpointFiles,
        node: String,
    ) -> Result<Self> {
        files
            .publish(&key.public())
            .map_err(|e| io_error(&files.public, &e))?;
        Ok(Self {
            store,
            key,
            files,
            node,
        })
    }

    pub fn files(&self) -> &CheckpointFiles {
        &self.files
    }

    /// Signs the head as it is now and appends it; `clock` is the clock-sync
    /// state (`unknown` when `None`).
    pub async fn write(&self, clock: Option<&str>) -> Result<Checkpoint> {
        let head = self.store.audit_head().await?;
        let c = Checkpoint::signed(
            &self.key,
            KIND_HEAD,
            &self.node,
            crate::clock::now_millis(),
            head,
            clock,
        );
        self.append(c).await
    }

    async fn append(&self, c: Checkpoint) -> Result<Checkpoint> {
        let files = self.files.clone();
        let line = c.clone();
        tokio::task::spawn_blocking(move || files.append(&line).map_err(|e| (files.log, e)))
            .await
            .map_err(|e| Error::Internal(format!("checkpoint writer: {e}")))?
            .map_err(|(path, e)| io_error(&path, &e))?;
        Ok(c)
    }

    /// The audit retention job: removes the entries written before
    /// `before_ms` (a prefix of the chain), records the signed cut in the
    /// database, appends it as a `cut` line and notes the run on the trail.
    pub async fn retain(
        &self,
        audit: &crate::records::audit::Audit,
        before_ms: i64,
        clock: Option<&str>,
    ) -> Result<Option<AuditCut>> {
        let key = self.key.clone();
        let sign = move |cut: &AuditCut| key.sign(&cut_canonical(cut));
        let now = crate::clock::now_millis();
        let Some(cut) = self.store.cut_audit(before_ms, now, &sign).await? else {
            return Ok(None);
        };
        let line = Checkpoint::signed(
            &self.key,
            KIND_CUT,
            &self.node,
            now,
            (cut.seq, cut.hash.clone()),
            clock,
        );
        self.append(line).await?;
        audit
            .note(
                AuditEvent::system(action::RETENTION_DELETE)
                    .item("audit_log")
                    .detail(format!("audit entries up to seq={}", cut.seq)),
            )
            .await;
        Ok(Some(cut))
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Internal(format!("audit checkpoints {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_line_no_longer_verifies() {
        let key = AuditKey::generate().unwrap();
        let keys = [key.public()];
        let c = Checkpoint::signed(&key, KIND_HEAD, "n1", 5, (7, "ab".repeat(32)), None);
        assert_eq!(c.clock, CLOCK_UNKNOWN);
        let read: Checkpoint = serde_json::from_str(&c.to_line()).unwrap();
        assert!(read.verifies(&keys));
        let edits: [fn(&mut Checkpoint); 6] = [
            |c| c.kind = KIND_CUT.into(),
            |c| c.node = "n2".into(),
            |c| c.at += 1,
            |c| c.seq += 1,
            |c| c.hash = "cd".repeat(32),
            |c| c.clock = "synchronised".into(),
        ];
        for edit in edits {
            let mut e = read.clone();
            edit(&mut e);
            assert!(!e.verifies(&keys), "{e:?}");
        }
        let other = AuditKey::generate().unwrap();
        assert!(!read.verifies(&[other.public()]));
    }
}
