//! What the clerk and the operator see across threads: the facility's
//! overview, reading counts per month and per-account usage.

use chrono::{Datelike, NaiveDate};

use super::Thread;
use super::Threads;
use crate::account::Role;
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::records::audit::{AuditEvent, action};
use crate::store::thread::{ReadingCountRow, UsageRow};

/// Reports by one reading doctor for one facility in a month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingCount {
    pub reader_id: String,
    pub facility_code: String,
    pub reports: i64,
}

impl From<ReadingCountRow> for ReadingCount {
    fn from(r: ReadingCountRow) -> Self {
        Self {
            reader_id: r.reader_id,
            facility_code: r.facility_code,
            reports: r.reports,
        }
    }
}

/// Usage figures of one account, for its facility's clerks. Times are Unix
/// milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The account, or `liaison:CODE` for the facility's shared liaison inbox
    /// (the last line).
    pub account_id: String,
    pub last_sign_in_at: Option<i64>,
    /// Items the account sent.
    pub sent: i64,
    /// Items in the account's Inbox, and those not yet opened.
    pub received: i64,
    pub unopened: i64,
    /// Open threads addressed or assigned to the account past their wanted-by date.
    pub overdue: i64,
}

impl From<UsageRow> for Usage {
    fn from(u: UsageRow) -> Self {
        Self {
            account_id: u.account_id,
            last_sign_in_at: u.last_sign_in_at,
            sent: u.sent,
            received: u.received,
            unopened: u.unopened,
            overdue: u.overdue,
        }
    }
}

impl Threads {
    /// Every thread the facility sent or received, with its progress (clerks and
    /// liaisons; clear metadata only).
    pub async fn facility_overview(&self, session: &CurrentSession) -> Result<Vec<Thread>> {
        let actor = session.require_ready()?;
        let (Role::Clerk | Role::Liaison, Some(code)) = (actor.role, actor.facility.as_ref())
        else {
            return Err(Error::Forbidden);
        };
        Ok(self
            .store
            .threads_of_facility(&code.to_string())
            .await?
            .into_iter()
            .map(Thread::from)
            .collect())
    }

    /// Reading reports in a calendar month (JST), per reading doctor and facility.
    /// Declines never count. Doctors see their own line, clerks and liaisons their
    /// facility's, the operator the network's.
    pub async fn reading_stats(
        &self,
        session: &CurrentSession,
        month: &str,
    ) -> Result<Vec<ReadingCount>> {
        let actor = session.require_ready()?;
        let bad = || {
            Error::invalid(
                "month",
                format!("month must look like 2026-11, got {month:?}"),
                "集計月は 2026-11 の形式で指定してください。",
            )
        };
        let first = NaiveDate::parse_from_str(&format!("{}-01", month.trim()), "%Y-%m-%d")
            .map_err(|_| bad())?;
        let next = if first.month() == 12 {
            NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
        }
        .ok_or_else(bad)?;
        let jst = |d: NaiveDate| crate::clock::jst_day_start_millis(d).ok_or_else(bad);
        let all = self.store.reading_counts(jst(first)?, jst(next)?).await?;
        let own_facility = actor.facility.as_ref().map(|c| c.to_string());
        Ok(all
            .into_iter()
            .filter(|c| match actor.role {
                Role::Operator => true,
                Role::Doctor => c.reader_id == actor.id.as_str(),
                Role::Clerk | Role::Liaison => Some(&c.facility_code) == own_facility.as_ref(),
            })
            .map(ReadingCount::from)
            .collect())
    }

    /// The reading counts of `month` as an export (the CSV download): the
    /// same rows as `reading_stats`, and the export on the audit trail.
    pub async fn export_reading_stats(
        &self,
        session: &CurrentSession,
        month: &str,
    ) -> Result<Vec<ReadingCount>> {
        let rows = self.reading_stats(session, month).await?;
        self.note_report_export(session, "readings_csv").await;
        Ok(rows)
    }

    /// A facility's per-account usage as an export (the CSV download): the
    /// same rows as `usage_of`, and the export on the audit trail.
    pub async fn export_usage_of(
        &self,
        session: &CurrentSession,
        facility: Option<&FacilityCode>,
    ) -> Result<Vec<Usage>> {
        let rows = self.usage_of(session, facility).await?;
        self.note_report_export(session, "usage_csv").await;
        Ok(rows)
    }

    async fn note_report_export(&self, session: &CurrentSession, report: &'static str) {
        self.audit
            .note(AuditEvent::by(session, action::REPORT_EXPORT).detail(report))
            .await;
    }

    /// Per-account usage of the clerk's facility.
    pub async fn usage(&self, session: &CurrentSession) -> Result<Vec<Usage>> {
        self.usage_of(session, None).await
    }

    /// Per-account usage of a facility: a clerk's own, or any one the operator
    /// names.
    pub async fn usage_of(
        &self,
        session: &CurrentSession,
        facility: Option<&FacilityCode>,
    ) -> Result<Vec<Usage>> {
        let actor = session.require_ready()?;
        let code = match (actor.role, actor.facility.as_ref(), facility) {
            (Role::Clerk, Some(own), None) => own,
            (Role::Clerk, Some(own), Some(asked)) if own == asked => own,
            (Role::Operator, _, Some(asked)) => asked,
            (Role::Operator, _, None) => {
                return Err(Error::invalid(
                    "facility",
                    "name the facility",
                    "施設コードを指定してください。",
                ));
            }
            _ => return Err(Error::Forbidden),
        };
        let today = self.clock.today_jst().format("%Y-%m-%d").to_string();
        Ok(self
            .store
            .usage_of_facility(&code.to_string(), &today)
            .await?
            .into_iter()
            .map(Usage::from)
            .collect())
    }
}
