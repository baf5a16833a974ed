//! Retention and patient deletion requests (様式2).
//!
//! Content here is a temporary copy: an item goes when the retention period
//! (one year by default) has passed, a thread as a whole once its youngest
//! item is that old. A patient's deletion request finds every item the blind
//! index ties to the facility code + patient ID, with the other items of their
//! threads. Either way the database rows go in one transaction (key slots,
//! attachments, mailbox entries, queue rows, threads, IMAP numbers,
//! notifications), then the blobs, and the deletion log keeps what went: IDs,
//! kinds, dates and sizes — never anything that names the patient.
//!
//! Retention runs on a schedule inside `serve` (`[records]
//! retention_interval_secs`, hourly by default, first at start-up) and by
//! `renkei admin retention run --dry-run|--apply`. A deletion request computes
//! the blind index with the same HMAC as sealing, finds the items carrying it
//! plus every other item of their threads (steps carry no blind index), shows
//! them as metadata only, and deletes them only when the operator confirms the
//! count seen: a stale count deletes nothing. A crash between the transaction
//! and the blob removal leaves only orphan blobs, which the sweep removes. The
//! audit trail and deletion log keep the random item IDs, nothing else.

pub mod audit;
pub mod billing;
mod console;
pub mod csv;
mod deletion;

use std::sync::Arc;

use renkei_crypto::BlindIndexKey;

pub use audit::Actor;
pub use deletion::DeletionReport;

use crate::blob::BlobStore;
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::records::audit::{Audit, action};
use crate::store::Store;
use crate::store::records::{DeletionCandidate, DeletionLogRow};

/// Default retention period, in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 365;

/// What deletion reaches: the store, the audit trail, the blob folder and the
/// blind-index key, handed over explicitly (see `Postroom::vault`), so records
/// depend on no other service.
#[derive(Clone)]
pub struct Vault {
    pub store: Arc<dyn Store>,
    pub audit: Audit,
    pub blobs: BlobStore,
    pub blind_key: Arc<BlindIndexKey>,
}

pub struct Records {
    vault: Vault,
    retention_days: u32,
    /// When a deletion run happened.
    clock: SharedClock,
}

/// What counts as someone reaching an item's content (or handing it on).
const ACCESS_ACTIONS: &[&str] = &[
    action::VIEW,
    action::DOWNLOAD,
    action::RENDER,
    action::FORWARD,
    action::REPORT_EXPORT,
    action::CLAIM,
    action::ASSIGN,
    action::SEND,
    action::THREAD_OPEN,
    action::THREAD_STEP,
];

impl Records {
    pub fn new(vault: Vault, retention_days: u32) -> Self {
        Self {
            vault,
            retention_days,
            clock: crate::clock::system(),
        }
    }

    /// The same service reading time from `clock` (tests move it).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    pub fn retention_days(&self) -> u32 {
        self.retention_days
    }

    /// Deletes (or with `apply == false` only lists) every item whose
    /// retention period ended before `now`.
    pub async fn run_retention(
        &self,
        by: Actor<'_>,
        now: chrono::DateTime<chrono::Utc>,
        apply: bool,
    ) -> Result<DeletionReport> {
        by.require_operator()?;
        let cutoff = now.timestamp() - i64::from(self.retention_days) * 86_400;
        let store = &self.vault.store;
        let expired = store.expired_items(cutoff).await?;
        self.delete(by, "retention", expired, apply).await
    }

    /// The items a deletion request concerns, as clear metadata only.
    pub async fn patient_matches(
        &self,
        by: Actor<'_>,
        facility: &FacilityCode,
        patient_id: &str,
    ) -> Result<Vec<DeletionCandidate>> {
        by.require_operator()?;
        let index = self.blind_index(facility, patient_id)?;
        let found = self.vault.store.patient_items(&index).await?;
        self.vault
            .audit
            .record(
                by.event(action::PATIENT_SEARCH)
                    .detail(format!("facility={facility} matches={}", found.len())),
            )
            .await?;
        Ok(found)
    }

    /// Who opened, downloaded, rendered, exported or handed on the patient's
    /// items (found through the blind index, with the other items of their
    /// threads): the audit entries naming those items or their threads. The
    /// question itself is on the trail, without the patient ID.
    pub async fn patient_access(
        &self,
        by: Actor<'_>,
        facility: &FacilityCode,
        patient_id: &str,
    ) -> Result<Vec<crate::store::records::AuditRow>> {
        by.require_operator()?;
        let index = self.blind_index(facility, patient_id)?;
        let found = self.vault.store.patient_items(&index).await?;
        let mut names: Vec<String> = found.iter().map(|c| c.envelope_id.clone()).collect();
        names.extend(found.iter().filter_map(|c| c.thread_id.clone()));
        names.sort();
        names.dedup();
        let entries = self.vault.store.audit_of_items(&names).await?;
        let accesses: Vec<_> = entries
            .into_iter()
            .filter(|e| ACCESS_ACTIONS.contains(&e.action.as_str()))
            .collect();
        self.vault
            .audit
            .record(by.event(action::PATIENT_SEARCH).detail(format!(
                "purpose=access_report facility={facility} items={} entries={}",
                found.len(),
                accesses.len()
            )))
            .await?;
        Ok(accesses)
    }

    /// Deletes every item of the patient. `confirm` is the number of matches
    /// the operator saw; if it no longer fits (an item arrived or went since),
    /// nothing is deleted and the operator looks again.
    pub async fn delete_patient(
        &self,
        by: Actor<'_>,
        facility: &FacilityCode,
        patient_id: &str,
        confirm: usize,
    ) -> Result<DeletionReport> {
        by.require_operator()?;
        let index = self.blind_index(facility, patient_id)?;
        let found = self.vault.store.patient_items(&index).await?;
        if found.len() != confirm {
            return Err(Error::Conflict(format!(
                "{} item(s) match now, not the {confirm} confirmed; look at the matches again",
                found.len()
            )));
        }
        self.delete(by, "patient_request", found, true).await
    }

    fn blind_index(&self, facility: &FacilityCode, patient_id: &str) -> Result<Vec<u8>> {
        if patient_id.trim().is_empty() {
            return Err(Error::invalid(
                "patient_id",
                "the patient ID is empty",
                "患者IDを入力してください。",
            ));
        }
        Ok(
            renkei_crypto::blind_index(&self.vault.blind_key, facility.as_str(), patient_id)
                .to_vec(),
        )
    }

    async fn delete(
        &self,
        by: Actor<'_>,
        reason: &'static str,
        items: Vec<DeletionCandidate>,
        apply: bool,
    ) -> Result<DeletionReport> {
        let store = &self.vault.store;
        let ids: Vec<String> = items.iter().map(|i| i.envelope_id.clone()).collect();
        let blobs = store.blobs_of(&ids).await?;
        let run_id = crate::ids::new_id();
        let at = self.clock.now_secs();
        let log: Vec<DeletionLogRow> = items
            .iter()
            .map(|i| {
                let own = blobs.iter().filter(|b| b.envelope_id == i.envelope_id);
                DeletionLogRow {
                    run_id: run_id.clone(),
                    reason: reason.into(),
                    envelope_id: i.envelope_id.clone(),
                    kind: i.kind.clone(),
                    sender_facility: i.sender_facility.clone(),
                    created_at: i.created_at,
                    body_size: i.body_size,
                    attachments: own.clone().count() as i64,
                    attachment_bytes: own.map(|b| b.sealed_size).sum(),
                    deleted_at: at,
                }
            })
            .collect();
        let mut report = DeletionReport {
            run_id: run_id.clone(),
            reason,
            applied: apply,
            at,
            items: log,
            blobs_removed: 0,
        };
        if !apply || ids.is_empty() {
            return Ok(report);
        }
        // Rows first: a crash in between leaves blob files nothing refers to
        // (the orphan sweep removes them), never rows whose blobs are gone.
        store.delete_items(&ids, &report.items).await?;
        for b in &blobs {
            match self.vault.blobs.delete(&b.blob_key) {
                Ok(()) => report.blobs_removed += 1,
                Err(e) => tracing::warn!(
                    envelope = b.envelope_id,
                    error = %e,
                    "a deleted item's blob could not be removed"
                ),
            }
        }
        tracing::info!(
            run = run_id,
            reason,
            items = ids.len(),
            blobs = report.blobs_removed,
            "items deleted"
        );
        let what = if reason == "retention" {
            action::RETENTION_DELETE
        } else {
            action::PATIENT_DELETE
        };
        self.vault
            .audit
            .record(by.event(what).item(run_id).detail(format!(
                "items={} bytes={}",
                report.items.len(),
                report.total_bytes()
            )))
            .await?;
        Ok(report)
    }

    /// The deletion log of one run (the receipt, again).
    pub async fn run_log(&self, run_id: &str) -> Result<Vec<DeletionLogRow>> {
        Ok(self.vault.store.deletion_log(run_id).await?)
    }
}
