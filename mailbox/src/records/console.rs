//! The records' console actions (`renkei admin retention …`,
//! `deletion-request …`, `billing`): each records itself on the audit trail,
//! done or refused, like the directory's console actions. The patient ID
//! never reaches the trail; the facility code does.

use super::{Actor, DeletionReport, Records, billing};
use crate::error::Result;
use crate::facility::FacilityCode;
use crate::store::records::DeletionCandidate;

/// A facility code as typed, for the trail: only a well-formed code is recorded.
fn facility_item(code: &str) -> Option<String> {
    FacilityCode::parse(code).ok().map(|c| c.to_string())
}

impl Records {
    /// `retention run --apply` (or `--dry-run`): [`Records::run_retention`] now.
    pub async fn retention_for(&self, by: Actor<'_>, apply: bool) -> Result<DeletionReport> {
        let what = if apply {
            "retention run --apply"
        } else {
            "retention run --dry-run"
        };
        let work = self.run_retention(by, self.clock.now(), apply);
        self.vault.audit.console(by, what, None, work).await
    }

    /// `deletion-request find`: [`Records::patient_matches`] for the patient
    /// ID `patient` reads from the edge's input.
    pub async fn patient_matches_for(
        &self,
        by: Actor<'_>,
        facility: &str,
        patient: impl FnOnce() -> Result<String>,
    ) -> Result<Vec<DeletionCandidate>> {
        let work = async {
            let code = FacilityCode::parse(facility)?;
            self.patient_matches(by, &code, &patient()?).await
        };
        let item = facility_item(facility);
        self.vault
            .audit
            .console(by, "deletion-request find", item, work)
            .await
    }

    /// `deletion-request apply`: [`Records::delete_patient`] with the count
    /// the operator confirmed.
    pub async fn delete_patient_for(
        &self,
        by: Actor<'_>,
        facility: &str,
        patient: impl FnOnce() -> Result<String>,
        confirm: usize,
    ) -> Result<DeletionReport> {
        let work = async {
            let code = FacilityCode::parse(facility)?;
            self.delete_patient(by, &code, &patient()?, confirm).await
        };
        let item = facility_item(facility);
        self.vault
            .audit
            .console(by, "deletion-request apply", item, work)
            .await
    }

    /// `billing`: the statement of `month` (`YYYY-MM`) over every facility.
    pub async fn billing_for(&self, by: Actor<'_>, month: &str) -> Result<billing::Statement> {
        let work = async { billing::statement(&self.vault.store.facilities().await?, month) };
        self.vault.audit.console(by, "billing", None, work).await
    }
}
