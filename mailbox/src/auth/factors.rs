//! Second factors as a whole: whether an account must have one, what it has,
//! its recovery codes, and the operator's reset after an identity check.
//!
//! Recovery codes carry 80 random bits, are stored as SHA-256, and each is used
//! once by one `UPDATE`. Whether an account must have a factor is the network
//! rule (`required` or `optional`), overridden per facility
//! (`facility_second_factor`); a session whose account must have one and has
//! none carries `enrolment_required`, and `require_ready` refuses everything
//! but enrolling. The operator's reset removes TOTP and recovery codes and ends
//! the sessions; it is audited as `second_factor_reset`, and the caller queues
//! a `security_change` notice (no content) to the person.

use super::app_passwords::AppPasswordView;
use super::session::CurrentSession;
use super::totp::{RECOVERY_CODES, SecondFactorKey, normalise_code, random_code};
use super::webauthn::SecurityKeyView;
use super::{Auth, sha256};
use crate::account::{Account, AccountId};
use crate::error::{Error, Result};
use crate::records::audit::action;
use crate::store::factor::FactorSummaryRow;

#[derive(Debug, Clone)]
pub struct FactorsView {
    pub security_keys: Vec<SecurityKeyView>,
    pub required: bool,
    pub totp: bool,
    pub totp_pending: bool,
    pub recovery_codes_left: i64,
    pub app_passwords: Vec<AppPasswordView>,
}

impl Auth {
    /// Whether the account must have a second factor: the facility's setting if
    /// the operator made one, else the network's.
    pub async fn second_factor_required(&self, account: &Account) -> Result<bool> {
        if let Some(code) = &account.facility
            && let Some(required) = self.store.facility_second_factor(code.as_str()).await?
        {
            return Ok(required);
        }
        Ok(self.policy.second_factor_required)
    }

    pub(crate) fn enrolment_pending(&self, account: &Account, required: bool) -> bool {
        required && !account.has_second_factor
    }

    pub(super) fn factor_key(&self) -> Result<&SecondFactorKey> {
        self.second_factor_key
            .as_ref()
            .ok_or_else(|| Error::Internal("no second-factor key is configured".into()))
    }

    pub(super) async fn new_recovery_codes(&self, id: &AccountId) -> Result<Vec<String>> {
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| random_code(16)).collect();
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| sha256(&normalise_code(c))).collect();
        self.store
            .replace_recovery_codes(id.as_str(), &hashes)
            .await?;
        Ok(codes)
    }

    /// New recovery codes; the old ones stop working.
    pub async fn regenerate_recovery_codes(&self, session: &CurrentSession) -> Result<Vec<String>> {
        session.require_ready()?;
        self.require_recent_reauth(session)?;
        if !session.account.has_second_factor {
            return Err(Error::NotFound("second factor"));
        }
        let codes = self.new_recovery_codes(&session.account.id).await?;
        tracing::info!(
            account = session.account.id.as_str(),
            "recovery codes replaced"
        );
        let what = "recovery_codes replaced".to_string();
        self.audit_credentials(session, action::FACTOR_CHANGE, what)
            .await?;
        Ok(codes)
    }

    pub async fn factors(&self, session: &CurrentSession) -> Result<FactorsView> {
        session.require_enrolment_allowed()?;
        let id = session.account.id.as_str();
        let totp = self.store.totp(id).await?;
        Ok(FactorsView {
            security_keys: self
                .store
                .webauthn_credentials(id)
                .await?
                .into_iter()
                .map(SecurityKeyView::from)
                .collect(),
            required: self.second_factor_required(&session.account).await?,
            totp: totp.as_ref().is_some_and(|t| t.sealed_secret.is_some()),
            totp_pending: totp.as_ref().is_some_and(|t| t.pending_secret.is_some()),
            recovery_codes_left: self.store.recovery_codes_left(id).await?,
            app_passwords: self
                .store
                .app_passwords(id)
                .await?
                .into_iter()
                .map(AppPasswordView::from)
                .collect(),
        })
    }

    /// `has_second_factor` follows what is enrolled; recovery codes go with the
    /// last factor. When the last one goes, a password chosen under the
    /// second-factor rule (12 characters) may be too short for the rule without
    /// one (13): the person is asked for a new password before anything else.
    pub(super) async fn refresh_has_second_factor(&self, id: &AccountId) -> Result<bool> {
        let totp = self
            .store
            .totp(id.as_str())
            .await?
            .is_some_and(|t| t.sealed_secret.is_some());
        let keys = !self
            .store
            .webauthn_credentials(id.as_str())
            .await?
            .is_empty();
        let has = totp || keys;
        if !has {
            self.store.delete_recovery_codes(id.as_str()).await?;
            let account = self.stored_account(id).await?;
            if account.has_second_factor {
                self.store.set_password(id, &account.password, true).await?;
            }
        }
        self.store.set_has_second_factor(id.as_str(), has).await?;
        Ok(has)
    }

    /// After an identity check at the help desk: removes the person's TOTP and
    /// recovery codes, ends their sessions and logs it. App passwords stay (they
    /// are separate credentials, listed and revocable by the person). The caller
    /// queues the contentless mail that tells the person
    /// (`Notices::security_notice`): auth does not depend on notify.
    pub async fn reset_second_factor(&self, id: &AccountId) -> Result<Account> {
        let account = self.stored_account(id).await?;
        // Where factors are optional, the password must now meet the longer
        // rule: a new one first (where required, enrolment comes first).
        if account.has_second_factor && !self.second_factor_required(&account).await? {
            self.store.set_password(id, &account.password, true).await?;
        }
        self.store.delete_totp(id.as_str()).await?;
        self.store.delete_recovery_codes(id.as_str()).await?;
        self.store.delete_webauthn_of(id.as_str()).await?;
        self.store.set_has_second_factor(id.as_str(), false).await?;
        self.end_sessions_of(id, super::EndCause::SecondFactorReset, None)
            .await?;
        self.factors.forget_account(id);
        tracing::warn!(
            audit = "second_factor_reset",
            account = id.as_str(),
            "the operator reset the second factor"
        );
        let _ = account;
        self.stored_account(id).await
    }

    /// Which accounts have which factors.
    pub async fn factor_summaries(&self) -> Result<Vec<FactorSummaryRow>> {
        Ok(self.store.factor_summaries().await?)
    }
}
