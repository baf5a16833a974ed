//! App passwords: one per mail client, shown once, each locking its own copy
//! of the person's key; and the mail clients' sign-in that accepts them.
//!
//! An app password is 20 random characters (about 100 bits), shown once and
//! stored as SHA-256, with its own copy of the person's key locked under it, so
//! `sign_in_mail` unlocks the key without the account password. App passwords
//! open IMAP only (the web and API sign-in never look at them) and only for
//! 90 days after they are made. When a factor
//! is required or enrolled, the account password alone is refused on IMAP
//! (`AppPasswordRequired`). Revoking deletes the row (the next connection is
//! refused) and ends the mail sessions it opened; a password reset that
//! replaces the key deletes every app password.

use super::password::Password;
use super::session::{CurrentSession, EndCause, Peer, SessionKeys, SessionToken};
use super::totp::{normalise_code, random_code};
use super::{Auth, sha256};
use crate::account::{Account, AccountId, Role};

/// App passwords open mail for this long after they are made (ASVS: limited
/// lifetime); the settings page shows when each ends.
pub const APP_PASSWORD_VALID_FOR: std::time::Duration =
    std::time::Duration::from_secs(90 * 24 * 60 * 60);

/// When an app password stops opening mail (Unix seconds).
fn app_password_expiry(row: &AppPasswordRow) -> i64 {
    row.created_at
        .saturating_add(i64::try_from(APP_PASSWORD_VALID_FOR.as_secs()).unwrap_or(i64::MAX))
}
use crate::error::{Error, Result};
use crate::ids::new_id;
use crate::records::audit::action;
use crate::store::factor::AppPasswordRow;

#[derive(Debug, Clone)]
pub struct AppPasswordView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_from: Option<String>,
    /// When it stops opening mail (Unix seconds).
    pub expires_at: i64,
}

impl From<AppPasswordRow> for AppPasswordView {
    fn from(r: AppPasswordRow) -> Self {
        Self {
            expires_at: app_password_expiry(&r),
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            last_used_from: r.last_used_from,
        }
    }
}

impl Auth {
    /// Generates an app password for mail clients, shown once; the person's key
    /// is locked under it too.
    pub async fn create_app_password(
        &self,
        session: &CurrentSession,
        name: &str,
    ) -> Result<(AppPasswordView, Password)> {
        session.require_ready()?;
        // An app password opens mail without the second factor: making one is a
        // change of factors.
        self.require_recent_reauth(session)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::invalid(
                "name",
                "give the app password a name of at most 64 characters",
                "アプリパスワードの名前を64文字以内で入力してください。",
            ));
        }
        let secret = Password::new(random_code(20));
        let locked_key = match self.keyring(session) {
            Some(keyring) => Some(
                self.keys
                    .relock(&keyring, secret.expose().as_bytes())
                    .await?,
            ),
            None if session.account.role == Role::Operator => None,
            None => return Err(Error::SessionExpired),
        };
        let row = AppPasswordRow {
            id: new_id(),
            account_id: session.account.id.as_str().into(),
            name: name.into(),
            secret_hash: sha256(&normalise_code(secret.expose())),
            locked_key,
            created_at: self.now(),
            last_used_at: None,
            last_used_from: None,
        };
        self.store.insert_app_password(&row).await?;
        tracing::info!(
            account = row.account_id,
            app_password = row.id,
            "app password created"
        );
        let what = format!("created id={}", row.id);
        self.audit_credentials(session, action::APP_PASSWORD_CHANGE, what)
            .await?;
        Ok((AppPasswordView::from(row), secret))
    }

    pub async fn revoke_app_password(&self, session: &CurrentSession, id: &str) -> Result<()> {
        session.require_ready()?;
        if !self
            .store
            .delete_app_password(session.account.id.as_str(), id)
            .await?
        {
            return Err(Error::NotFound("app password"));
        }
        // Mail sessions it opened end too: their next command is refused.
        for digest in self.factors.sessions_of_app_password(id) {
            self.end_session_by_hash(&digest, EndCause::AppPasswordRevoked)
                .await?;
        }
        tracing::info!(
            account = session.account.id.as_str(),
            app_password = id,
            "app password revoked"
        );
        let what = format!("revoked id={id}");
        self.audit_credentials(session, action::APP_PASSWORD_CHANGE, what)
            .await
    }

    /// Sign-in for mail clients (IMAP), the only place app passwords open: an
    /// app password younger than 90 days always works; the account password
    /// only while the account neither must have nor has a second factor, and
    /// through the same check as the web (same answers, same Argon2 cost, same
    /// throttle).
    pub async fn sign_in_mail(
        &self,
        id_input: &str,
        secret: &Password,
        remote_addr: Option<String>,
    ) -> Result<(SessionToken, CurrentSession)> {
        let peer = Peer::imap(remote_addr.clone());
        let attempt = self.attempt_of(id_input, &peer).await?;
        self.throttle_check(&attempt).await?;
        let account = match AccountId::parse(id_input) {
            Ok(id) => self.store.account(&id).await?.filter(|a| !a.removed),
            Err(_) => None,
        };
        if let Some(account) = account {
            let hash = sha256(&normalise_code(secret.expose()));
            if let Some(app) = self
                .store
                .app_password_by_hash(account.id.as_str(), &hash)
                .await?
            {
                // Only the holder of a 100-bit secret learns these.
                if account.locked {
                    return Err(Error::AccountLocked);
                }
                if self.now() >= app_password_expiry(&app) {
                    return Err(Error::AppPasswordExpired);
                }
                self.throttle_succeeded(&attempt).await?;
                return self
                    .open_mail_session(account, app, secret, remote_addr)
                    .await;
            }
        }
        let account = self
            .check_password(id_input, secret, &peer, &attempt)
            .await?;
        if account.has_second_factor || self.second_factor_required(&account).await? {
            // The password was right, but this account signs in with a factor.
            return Err(Error::AppPasswordRequired);
        }
        self.throttle_succeeded(&attempt).await?;
        self.open_session(account, secret, SessionKeys::UnlockWithPassword, peer)
            .await
    }

    async fn open_mail_session(
        &self,
        account: Account,
        app: AppPasswordRow,
        secret: &Password,
        remote_addr: Option<String>,
    ) -> Result<(SessionToken, CurrentSession)> {
        let keyring = match &app.locked_key {
            Some(locked) => {
                let user = self
                    .keys
                    .unlock_locked(locked.clone(), secret.expose().as_bytes())
                    .await?;
                Some(self.keys.keyring_from(&account, user).await?)
            }
            None => None,
        };
        self.store
            .touch_app_password(&app.id, self.now(), remote_addr.as_deref())
            .await?;
        tracing::info!(
            account = account.id.as_str(),
            app_password = app.id,
            "signed in with an app password"
        );
        let (token, session) = self
            .open_session(
                account,
                secret,
                SessionKeys::from(keyring),
                Peer::imap(remote_addr),
            )
            .await?;
        self.factors
            .opened_by_app_password(&session.record.token_hash, &app.id);
        Ok((token, session))
    }
}
