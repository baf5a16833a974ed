//! Row types shared by both backends and their conversion to domain types; a row
//! that no longer satisfies the domain rules is reported as corrupt, never trusted.

use chrono::NaiveDate;

use super::{SessionRecord, StoreError};
use crate::account::PasswordDigest;
use crate::account::{Account, AccountId};
use crate::facility::{Facility, FacilityCode};

#[derive(sqlx::FromRow)]
pub(super) struct FacilityRow {
    pub code: String,
    pub name: String,
    pub address: String,
    pub phone: String,
    pub departments: String,
    pub publish_details: bool,
    pub active_from: String,
    pub active_until: Option<String>,
    pub approval_ref: Option<String>,
    pub city: String,
    pub public_note: String,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn date(s: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| corrupt("date", e))
}

impl TryFrom<FacilityRow> for Facility {
    type Error = StoreError;
    fn try_from(r: FacilityRow) -> Result<Self, StoreError> {
        Ok(Facility {
            code: FacilityCode::parse(&r.code).map_err(|e| corrupt("facility code", e))?,
            name: r.name,
            city: r.city,
            address: r.address,
            phone: r.phone,
            departments: serde_json::from_str(&r.departments)
                .map_err(|e| corrupt("departments", e))?,
            public_note: r.public_note,
            publish_details: r.publish_details,
            active_from: date(&r.active_from)?,
            active_until: r.active_until.as_deref().map(date).transpose()?,
            approval_ref: r.approval_ref,
        })
    }
}

pub(super) fn departments_json(f: &Facility) -> String {
    serde_json::to_string(&f.departments).unwrap_or_else(|_| "[]".to_string())
}

pub(super) fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    pub id: String,
    pub role: String,
    pub facility_code: Option<String>,
    pub name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub password_hash: String,
    pub must_change_password: bool,
    pub locked: bool,
    pub failed_attempts: i64,
    pub has_second_factor: bool,
    pub removed: bool,
    pub created_at: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(Account {
            id: AccountId::parse(&r.id).map_err(|e| corrupt("account id", e))?,
            role: r.role.parse().map_err(|e| corrupt("role", e))?,
            facility: r
                .facility_code
                .as_deref()
                .map(FacilityCode::parse)
                .transpose()
                .map_err(|e| corrupt("facility code", e))?,
            name: r.name,
            email: r.email,
            email_verified: r.email_verified,
            password: PasswordDigest(r.password_hash),
            must_change_password: r.must_change_password,
            locked: r.locked,
            failed_attempts: u32::try_from(r.failed_attempts).unwrap_or(u32::MAX),
            has_second_factor: r.has_second_factor,
            removed: r.removed,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    pub token_hash: Vec<u8>,
    pub account_id: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub remote_addr: Option<String>,
    pub channel: Option<String>,
}

/// [`SessionRow`] and [`AccountRow`] of one join (see `select_session_with_account`).
#[derive(sqlx::FromRow)]
pub(super) struct SessionAccountRow {
    #[sqlx(flatten)]
    pub account: AccountRow,
    pub session_created_at: i64,
    pub last_seen: i64,
    pub remote_addr: Option<String>,
    pub session_channel: Option<String>,
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(SessionRecord {
            token_hash: r.token_hash,
            account_id: AccountId::parse(&r.account_id).map_err(|e| corrupt("account id", e))?,
            created_at: r.created_at,
            last_seen: r.last_seen,
            remote_addr: r.remote_addr,
            channel: r.channel,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct FailedLoginRow {
    pub failed_attempts: i64,
    pub locked: bool,
}
