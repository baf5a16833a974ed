//! `verify`: the walk of the audit chain, and its check against the signed
//! checkpoints kept outside the database (see `checkpoint.rs`).
//!
//! The walk starts at the first retained entry: `seq` 1, or the one after the
//! audit retention job's cut, whose signature must hold. It names the first
//! entry whose seq, previous hash or own hash does not fit (`first_broken`), and
//! entries cut off the end via the head. A writer who rewrote a segment and
//! recomputed every later hash and the head passes the walk, but the entry at a
//! later checkpoint's `seq` no longer has the signed hash: the segment is named
//! as lying between the last checkpoint that still fits and the first that
//! does not. A checkpoint line that does not verify, and a head behind the
//! newest checkpoint, are breaks too.

use std::collections::BTreeMap;

use renkei_crypto::AuditPublicKey;

use super::audit::{Audit, GENESIS, entry_hash};
use super::checkpoint::{Checkpoint, CheckpointFiles, cut_canonical};
use crate::error::{Error, Result};

/// A segment rewritten with its hashes recomputed, between two checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The last checkpoint before it whose entry still fits (`None`: the
    /// segment may start at the first retained entry).
    pub intact: Option<i64>,
    /// The first checkpoint whose entry differs.
    pub differs: i64,
    /// The first rewritten entry, when the checkpoints pin it down (the two
    /// checkpoints are neighbours).
    pub first_differing: Option<i64>,
}

/// The outcome of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verification {
    /// Entries checked.
    pub entries: u64,
    /// The first entry that does not fit the chain, and why.
    pub first_broken: Option<(i64, &'static str)>,
    /// The retained chain starts after this `seq` (0: nothing was removed).
    pub starts_after: i64,
    /// Checkpoints whose entry was compared.
    pub checkpoints: u64,
    /// The first checkpoint line that is not a valid signed checkpoint (its
    /// line number, and why).
    pub bad_checkpoint: Option<(usize, &'static str)>,
    /// A segment whose entries differ from what the checkpoints signed.
    pub rewritten: Option<Rewritten>,
}

impl Verification {
    /// Nothing found wrong.
    pub fn intact(&self) -> bool {
        self.first_broken.is_none() && self.bad_checkpoint.is_none() && self.rewritten.is_none()
    }
}

/// The valid checkpoints by `seq` (the first line's hash for a `seq`), and the
/// first line that is not one.
type Signed = (BTreeMap<i64, String>, Option<(usize, &'static str)>);

fn signed_checkpoints(files: &CheckpointFiles, keys: &[AuditPublicKey]) -> Result<Signed> {
    let lines = files
        .read()
        .map_err(|e| Error::Internal(format!("reading {}: {e}", files.log.display())))?;
    let mut by_seq = BTreeMap::new();
    let mut bad = None;
    for (line, c) in lines {
        let why = match &c {
            None => Some("not_a_checkpoint"),
            Some(c) if !c.verifies(keys) => Some("bad_signature"),
            Some(_) => None,
        };
        match (why, c) {
            (Some(why), _) => {
                bad = bad.or(Some((line, why)));
            }
            (None, Some(Checkpoint { seq, hash, .. })) => {
                by_seq.entry(seq).or_insert(hash);
            }
            (None, None) => {}
        }
    }
    Ok((by_seq, bad))
}

impl Audit {
    /// Walks the retained chain and checks it against the signed checkpoints
    /// (see the module documentation of `verify.rs`).
    pub async fn verify(&self) -> Result<Verification> {
        const PAGE: i64 = 5000;
        let (keys, (checkpoints, bad_checkpoint)) = match &self.checkpoints {
            Some(files) => {
                let keys = files.public_keys().map_err(|e| {
                    Error::Internal(format!("reading {}: {e}", files.public.display()))
                })?;
                let signed = signed_checkpoints(files, &keys)?;
                (keys, signed)
            }
            None => (Vec::new(), (BTreeMap::new(), None)),
        };
        let cut = self.store.audit_cut().await?;
        let mut v = Verification {
            starts_after: cut.seq,
            bad_checkpoint,
            ..Verification::default()
        };
        if cut.seq > 0
            && !keys
                .iter()
                .any(|k| k.verify(&cut_canonical(&cut), &cut.sig))
        {
            v.first_broken = Some((cut.seq + 1, "cut_not_signed"));
            return Ok(v);
        }
        let (mut prev, mut expected) = if cut.seq > 0 {
            (cut.hash.clone(), cut.seq + 1)
        } else {
            (GENESIS.to_string(), 1)
        };
        let mut last_intact = None;
        loop {
            let page = self.store.audit_after(expected - 1, PAGE).await?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                v.entries += 1;
                let broken = if row.seq != expected {
                    Some("missing_entry_before")
                } else if row.prev_hash != prev {
                    Some("previous_hash_mismatch")
                } else if entry_hash(row) != row.hash {
                    Some("hash_mismatch")
                } else {
                    None
                };
                if let Some(reason) = broken {
                    v.first_broken = Some((row.seq, reason));
                    return Ok(v);
                }
                if let Some(signed) = checkpoints.get(&row.seq) {
                    v.checkpoints += 1;
                    if *signed != row.hash {
                        let first = last_intact.unwrap_or(cut.seq) + 1 == row.seq;
                        v.rewritten = Some(Rewritten {
                            intact: last_intact,
                            differs: row.seq,
                            first_differing: first.then_some(row.seq),
                        });
                        return Ok(v);
                    }
                    last_intact = Some(row.seq);
                }
                prev = row.hash.clone();
                expected += 1;
            }
        }
        let (head_seq, head_hash) = self.store.audit_head().await?;
        if head_seq != expected - 1 || head_hash != prev {
            v.first_broken = Some((expected, "entries_missing_at_end"));
        } else if checkpoints
            .last_key_value()
            .is_some_and(|(seq, _)| *seq > head_seq)
        {
            v.first_broken = Some((expected, "head_behind_checkpoint"));
        }
        Ok(v)
    }
}
