//! The registry of facilities: registering, updating and ending participation,
//! the public list, and each facility's second-factor requirement.
//!
//! A facility outside the network's home prefecture is registered only with an
//! approval reference.

use chrono::NaiveDate;

use super::Directory;
use crate::error::{Error, Result};
use crate::facility::{Facility, FacilityCode, PublicListing};
use crate::store::StoreError;

impl Directory {
    fn validate_facility(&self, f: &Facility) -> Result<()> {
        if f.name.trim().is_empty() {
            return Err(Error::invalid(
                "name",
                "the facility name is empty",
                "施設名を入力してください。",
            ));
        }
        if f.code.prefecture() != self.network.home_prefecture
            && f.approval_ref
                .as_deref()
                .is_none_or(|r| r.trim().is_empty())
        {
            return Err(Error::invalid(
                "approval_ref",
                format!(
                    "a facility outside prefecture {:02} needs the steering committee's approval reference",
                    self.network.home_prefecture
                ),
                "県外の医療施設の登録には運営委員会の承認番号が必要です。",
            ));
        }
        if let Some(until) = f.active_until
            && until < f.active_from
        {
            return Err(Error::invalid(
                "active_until",
                "active-until is before active-from",
                "利用終了日が利用開始日より前です。",
            ));
        }
        Ok(())
    }

    pub async fn add_facility(&self, facility: Facility) -> Result<Facility> {
        self.validate_facility(&facility)?;
        match self.store.insert_facility(&facility).await {
            Err(StoreError::Conflict(_)) => Err(Error::Conflict(format!(
                "facility {} is already registered",
                facility.code
            ))),
            other => other.map(|()| facility).map_err(Error::from),
        }
    }

    pub async fn update_facility(&self, facility: Facility) -> Result<Facility> {
        self.validate_facility(&facility)?;
        match self.store.update_facility(&facility).await {
            Err(StoreError::NotFound) => Err(Error::NotFound("facility")),
            other => other.map(|()| facility).map_err(Error::from),
        }
    }

    /// Ends participation on `last_day`; the facility is billed through that month.
    pub async fn deactivate_facility(
        &self,
        code: &FacilityCode,
        last_day: NaiveDate,
    ) -> Result<Facility> {
        let mut facility = self.facility(code).await?;
        facility.active_until = Some(last_day.max(facility.active_from));
        self.update_facility(facility).await
    }

    pub async fn facility(&self, code: &FacilityCode) -> Result<Facility> {
        self.store
            .facility(code)
            .await?
            .ok_or(Error::NotFound("facility"))
    }

    pub async fn facilities(&self) -> Result<Vec<Facility>> {
        Ok(self.store.facilities().await?)
    }

    /// The public list of participating facilities (no sign-in): those active
    /// on `day`, by city and name, each showing only what it chose to publish.
    pub async fn public_listings(&self, day: NaiveDate) -> Result<Vec<PublicListing>> {
        let mut listed: Vec<PublicListing> = self
            .store
            .facilities()
            .await?
            .iter()
            .filter(|f| f.is_active_on(day))
            .map(Facility::public_listing)
            .collect();
        listed.sort_by(|a, b| (&a.city, &a.name).cmp(&(&b.city, &b.name)));
        Ok(listed)
    }

    /// Sets or clears (`None`: follow the network) a facility's requirement.
    pub async fn set_facility_second_factor(
        &self,
        code: &FacilityCode,
        required: Option<bool>,
    ) -> Result<()> {
        self.facility(code).await?;
        self.store
            .set_facility_second_factor(code.as_str(), required)
            .await?;
        tracing::info!(facility = %code, required = ?required, "second-factor requirement set");
        Ok(())
    }
}
