//! The operator's console: what the console pages, the JSON API and `renkei
//! admin` ask of the directory on the operator's behalf. Each action records
//! itself on the audit trail, done or refused, in the same words whichever
//! edge asked ("user lock: ok"), with the facility code or account ID it
//! concerns — never names, addresses or passwords. No edge writes these
//! entries itself.
//!
//! An edge hands over the typed text of the facility or account the action
//! concerns (the service parses it, so a malformed one is recorded as a
//! refusal too) and, where it has a form to read, a closure that reads it:
//! that reading runs inside the recorded action, so a refused form is
//! recorded like any other refusal.

use chrono::NaiveDate;
use renkei_crypto::SecretKey;

use super::{Directory, NewAccount, ResetOutcome};
use crate::account::{Account, AccountId};
use crate::auth::Password;
use crate::error::{Error, Result};
use crate::facility::{Facility, FacilityCode};
use crate::records::Actor;
use crate::store::factor::FactorSummaryRow;
use crate::store::vault::GrantRow;

/// A facility code as typed, for the trail: only a well-formed code is recorded.
fn facility_item(code: &str) -> Option<String> {
    FacilityCode::parse(code).ok().map(|c| c.to_string())
}

/// An account ID as typed, for the trail: only a well-formed ID is recorded.
fn account_item(id: &str) -> Option<String> {
    AccountId::parse(id).ok().map(|a| a.as_str().to_string())
}

/// An existing facility named by its code; a malformed code names none.
fn existing_facility(code: &str) -> Result<FacilityCode> {
    FacilityCode::parse(code).map_err(|_| Error::NotFound("facility"))
}

/// An existing account named by its ID; a malformed ID names none.
fn existing_account(id: &str) -> Result<AccountId> {
    AccountId::parse(id).map_err(|_| Error::NotFound("account"))
}

impl Directory {
    /// `facility add`: a new facility with `code`, participating from today
    /// unless `fill` (the edge's form) says otherwise.
    pub async fn register_facility(
        &self,
        by: Actor<'_>,
        code: &str,
        fill: impl FnOnce(&mut Facility) -> Result<()>,
    ) -> Result<Facility> {
        let work = async {
            let mut f = Facility::new(FacilityCode::parse(code)?, "", self.clock.today_jst());
            fill(&mut f)?;
            self.add_facility(f).await
        };
        self.audit
            .console(by, "facility add", facility_item(code), work)
            .await
    }

    /// `facility update`: the stored facility as `fill` changes it.
    pub async fn edit_facility(
        &self,
        by: Actor<'_>,
        code: &str,
        fill: impl FnOnce(&mut Facility) -> Result<()>,
    ) -> Result<Facility> {
        let work = async {
            let mut f = self.facility(&existing_facility(code)?).await?;
            fill(&mut f)?;
            self.update_facility(f).await
        };
        self.audit
            .console(by, "facility update", facility_item(code), work)
            .await
    }

    /// `facility deactivate`: participation ends on the day `last_day` reads
    /// from the edge's form (today when it reads none).
    pub async fn end_facility(
        &self,
        by: Actor<'_>,
        code: &str,
        last_day: impl FnOnce() -> Result<Option<NaiveDate>>,
    ) -> Result<Facility> {
        let work = async {
            let code = existing_facility(code)?;
            let last = last_day()?.unwrap_or_else(|| self.clock.today_jst());
            self.deactivate_facility(&code, last).await
        };
        self.audit
            .console(by, "facility deactivate", facility_item(code), work)
            .await
    }

    /// `facility escalation`: unopened items for the facility escalate after
    /// `hours` (at least one); answers the hours set.
    pub async fn set_escalation(&self, by: Actor<'_>, code: &str, hours: u32) -> Result<u32> {
        let work = async {
            let code = existing_facility(code)?;
            self.facility(&code).await?;
            let hours = hours.max(1);
            self.store
                .set_escalation_hours(code.as_str(), i64::from(hours))
                .await?;
            Ok(hours)
        };
        self.audit
            .console(by, "facility escalation", facility_item(code), work)
            .await
    }

    /// `facility second-factor`: `required`, `optional`, or `network` (follow
    /// the network's rule).
    pub async fn set_second_factor_rule(
        &self,
        by: Actor<'_>,
        code: &str,
        rule: &str,
    ) -> Result<()> {
        let work = async {
            let code = existing_facility(code)?;
            let required = match rule {
                "required" => Some(true),
                "optional" => Some(false),
                "network" => None,
                _ => {
                    return Err(Error::invalid(
                        "rule",
                        "the rule is `required`, `optional` or `network`",
                        "設定は required・optional・network のいずれかです。",
                    ));
                }
            };
            self.set_facility_second_factor(&code, required).await
        };
        self.audit
            .console(by, "facility second-factor", facility_item(code), work)
            .await
    }

    /// `user add`: the account `new` (the edge's form) describes, with an
    /// issued password; the entry names the new ID.
    pub async fn issue_account(
        &self,
        by: Actor<'_>,
        new: impl FnOnce() -> Result<NewAccount>,
    ) -> Result<(Account, Password)> {
        let result = match by.require_operator().and_then(|()| new()) {
            Ok(new) => self.add_account(new).await,
            Err(e) => Err(e),
        };
        let item = result.as_ref().ok().map(|(a, _)| a.id.as_str().to_string());
        self.audit.admin(by, "user add", item, result.is_ok()).await;
        result
    }

    /// `user lock --reason` / `user unlock`. Only the help desk locks an
    /// account (failed sign-ins only delay), and says why: the reason (at most
    /// 200 characters, no patient data) goes on the audit trail.
    pub async fn lock_account(
        &self,
        by: Actor<'_>,
        id: &str,
        locked: bool,
        reason: Option<&str>,
    ) -> Result<Account> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        let what = if locked { "user lock" } else { "user unlock" };
        let work = async {
            if locked && reason.is_none_or(|r| r.chars().count() > 200) {
                return Err(Error::invalid(
                    "reason",
                    "give the reason for the lock (at most 200 characters)",
                    "ロックの理由を200文字以内で入力してください。",
                ));
            }
            self.set_locked(&existing_account(id)?, locked).await
        };
        let result = self.audit.console(by, what, account_item(id), work).await;
        if let (Ok(_), true, Some(reason)) = (&result, locked, reason) {
            let what = format!("lock reason: {reason}");
            self.audit.admin(by, &what, account_item(id), true).await;
        }
        result
    }

    /// `user reset-password`: `recovery` reads the edge's input (the
    /// confirmation, the recovery key if the operator has it at hand).
    pub async fn reset_account_password(
        &self,
        by: Actor<'_>,
        id: &str,
        recovery: impl FnOnce() -> Result<Option<SecretKey>>,
    ) -> Result<(Account, ResetOutcome)> {
        let work = async {
            let key = recovery()?;
            let id = existing_account(id)?;
            let outcome = self.reset_password_with(&id, key.as_ref()).await?;
            Ok((self.account(&id).await?, outcome))
        };
        self.audit
            .console(by, "user reset-password", account_item(id), work)
            .await
    }

    /// `user reset-second-factor`, once `confirmed` (the identity check the
    /// edge asks for) passes; the person enrols again at the next sign-in.
    pub async fn reset_account_factor(
        &self,
        by: Actor<'_>,
        id: &str,
        confirmed: impl FnOnce() -> Result<()>,
    ) -> Result<Account> {
        let work = async {
            confirmed()?;
            let id = existing_account(id)?;
            self.reset_second_factor(&id).await
        };
        self.audit
            .console(by, "user reset-second-factor", account_item(id), work)
            .await
    }

    /// `user remove`: every grant goes, the account stays locked for good.
    pub async fn remove_member(&self, by: Actor<'_>, id: &str) -> Result<Account> {
        let work = async { self.remove_account(&existing_account(id)?).await };
        self.audit
            .console(by, "user remove", account_item(id), work)
            .await
    }

    /// `recovery init`: `keep` (the edge) writes the key's offline files,
    /// never in clear, before its certificate is stored.
    pub async fn create_recovery_key(
        &self,
        by: Actor<'_>,
        keep: impl FnOnce(&SecretKey) -> Result<()>,
    ) -> Result<SecretKey> {
        let work = async { self.keys.init_recovery_with(keep).await };
        self.audit.console(by, "recovery init", None, work).await
    }

    /// `grants complete` with the recovery key `key` reads.
    pub async fn complete_grants(
        &self,
        by: Actor<'_>,
        key: impl FnOnce() -> Result<SecretKey>,
    ) -> Result<u64> {
        let work = async { self.complete_grants_with_recovery(&key()?).await };
        self.audit.console(by, "grants complete", None, work).await
    }

    /// `facility list`.
    pub async fn list_facilities(&self, by: Actor<'_>) -> Result<Vec<Facility>> {
        self.audit
            .console(by, "facility list", None, self.facilities())
            .await
    }

    /// `facility show`.
    pub async fn show_facility(&self, by: Actor<'_>, code: &str) -> Result<Facility> {
        let work = async { self.facility(&existing_facility(code)?).await };
        self.audit
            .console(by, "facility show", facility_item(code), work)
            .await
    }

    /// `user list`, of one facility when `facility` names one.
    pub async fn list_accounts(
        &self,
        by: Actor<'_>,
        facility: Option<&str>,
    ) -> Result<Vec<Account>> {
        let work = async {
            let code = facility.map(FacilityCode::parse).transpose()?;
            self.accounts(code.as_ref()).await
        };
        self.audit.console(by, "user list", None, work).await
    }

    /// `user show`.
    pub async fn show_account(&self, by: Actor<'_>, id: &str) -> Result<Account> {
        let work = async { self.account(&existing_account(id)?).await };
        self.audit
            .console(by, "user show", account_item(id), work)
            .await
    }

    /// `user factors`: who has which second factor (counts only).
    pub async fn list_factors(&self, by: Actor<'_>) -> Result<Vec<FactorSummaryRow>> {
        self.audit
            .console(by, "user factors", None, self.factor_summaries())
            .await
    }

    /// `grants list`: facility keys waiting for a member to hand them on.
    pub async fn list_pending_grants(&self, by: Actor<'_>) -> Result<Vec<GrantRow>> {
        self.audit
            .console(by, "grants list", None, self.pending_grants())
            .await
    }
}
