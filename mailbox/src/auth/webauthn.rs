//! Security keys and passkeys (WebAuthn): registering, naming, removing, and
//! the challenges of a sign-in or a re-authentication.
//!
//! webauthn-rs 0.5 (OpenSSL, like Sequoia; 0.6 moved to a pre-release
//! RustCrypto stack of about a hundred crates). The relying party is the host
//! of `[http] public_url`, or `localhost`, any port. A person may register
//! several named keys; the first factor also gets recovery codes. Removing
//! needs a fresh re-authentication, and the last factor of an account that must
//! have one stays. A challenge is bound to the pending sign-in (or
//! re-authentication); completing it updates the signature counter.
//! Registration and challenge states live in memory only.

use std::time::Instant;

use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Uuid, Webauthn,
};

use super::Auth;
use super::session::CurrentSession;
use super::sign_in::PendingToken;
use super::state::PendingRegistration;
use crate::account::{Account, AccountId};
use crate::error::{Error, Result};
use crate::ids::new_id;
use crate::records::audit::action;
use crate::store::factor::WebauthnRow;

#[derive(Debug, Clone)]
pub struct SecurityKeyView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<WebauthnRow> for SecurityKeyView {
    fn from(r: WebauthnRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

impl Auth {
    fn webauthn(&self) -> Result<&Webauthn> {
        self.webauthn
            .as_ref()
            .ok_or_else(|| {
                Error::invalid(
                    "security_key",
                    "security keys need the server's address ([http] public_url) to be a host name, not an IP address",
                    "セキュリティキーを使うには、サーバーのアドレス（[http] public_url）がIPアドレスではなくホスト名である必要があります。運用担当者にお問い合わせください。",
                )
            })
    }

    /// The WebAuthn user handle: stable per account, reveals nothing.
    fn webauthn_user(id: &AccountId) -> Uuid {
        let digest = Sha256::digest(format!("renkei-webauthn:{}", id.as_str()).as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    }

    fn passkeys(rows: &[WebauthnRow]) -> Vec<(String, Passkey)> {
        rows.iter()
            .filter_map(|r| {
                serde_json::from_str::<Passkey>(&r.passkey)
                    .ok()
                    .map(|p| (r.id.clone(), p))
            })
            .collect()
    }

    fn key_name(name: &str) -> Result<String> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::invalid(
                "name",
                "give the security key a name of at most 64 characters",
                "セキュリティキーの名前を64文字以内で入力してください。",
            ));
        }
        Ok(name.to_string())
    }

    /// Starts registering a security key or passkey named `name`.
    pub async fn begin_webauthn(
        &self,
        session: &CurrentSession,
        name: &str,
    ) -> Result<CreationChallengeResponse> {
        session.require_enrolment_allowed()?;
        self.require_recent_reauth(session)?;
        let name = Self::key_name(name)?;
        let id = &session.account.id;
        let rows = self.store.webauthn_credentials(id.as_str()).await?;
        let exclude = Self::passkeys(&rows)
            .iter()
            .map(|(_, p)| p.cred_id().clone())
            .collect();
        let (challenge, state) = self
            .webauthn()?
            .start_passkey_registration(
                Self::webauthn_user(id),
                &id.display_grouped(),
                &id.display_grouped(),
                Some(exclude),
            )
            .map_err(|e| Error::Internal(format!("webauthn: {e}")))?;
        self.factors.put_registration(
            &session.record.token_hash,
            PendingRegistration {
                state,
                name,
                created: Instant::now(),
            },
        );
        Ok(challenge)
    }

    /// Finishes the registration; the first factor of an account also gets its
    /// ten recovery codes (returned once).
    pub async fn finish_webauthn(
        &self,
        session: &CurrentSession,
        credential: &RegisterPublicKeyCredential,
    ) -> Result<(SecurityKeyView, Option<Vec<String>>)> {
        session.require_enrolment_allowed()?;
        let Some(reg) = self.factors.take_registration(&session.record.token_hash) else {
            return Err(Error::NotFound("security key registration"));
        };
        let id = &session.account.id;
        let passkey = self
            .webauthn()?
            .finish_passkey_registration(credential, &reg.state)
            .map_err(|e| {
                tracing::warn!(account = id.as_str(), error = %e, "security key registration refused");
                Error::BadSecondFactor
            })?;
        let row = WebauthnRow {
            id: new_id(),
            account_id: id.as_str().into(),
            name: reg.name,
            passkey: serde_json::to_string(&passkey)
                .map_err(|e| Error::Internal(format!("passkey json: {e}")))?,
            created_at: self.now(),
            last_used_at: None,
        };
        self.store.insert_webauthn(&row).await?;
        let codes = if self.store.recovery_codes_left(id.as_str()).await? == 0 {
            Some(self.new_recovery_codes(id).await?)
        } else {
            None
        };
        self.store.set_has_second_factor(id.as_str(), true).await?;
        self.factors.reauthenticated(&session.record.token_hash);
        tracing::info!(
            account = id.as_str(),
            key = row.id,
            "security key registered"
        );
        let what = format!("security_key registered key={}", row.id);
        self.audit_credentials(session, action::FACTOR_CHANGE, what)
            .await?;
        Ok((SecurityKeyView::from(row), codes))
    }

    pub async fn rename_webauthn(
        &self,
        session: &CurrentSession,
        key: &str,
        name: &str,
    ) -> Result<()> {
        session.require_ready()?;
        let name = Self::key_name(name)?;
        if !self
            .store
            .rename_webauthn(session.account.id.as_str(), key, &name)
            .await?
        {
            return Err(Error::NotFound("security key"));
        }
        Ok(())
    }

    /// Removes a security key; refused if it is the last factor of an account
    /// that must have one.
    pub async fn remove_webauthn(&self, session: &CurrentSession, key: &str) -> Result<()> {
        session.require_ready()?;
        self.require_recent_reauth(session)?;
        let id = &session.account.id;
        let rows = self.store.webauthn_credentials(id.as_str()).await?;
        if !rows.iter().any(|r| r.id == key) {
            return Err(Error::NotFound("security key"));
        }
        let totp = self
            .store
            .totp(id.as_str())
            .await?
            .is_some_and(|t| t.sealed_secret.is_some());
        if rows.len() == 1 && !totp && self.second_factor_required(&session.account).await? {
            return Err(Error::invalid(
                "security_key",
                "this is the account's only second factor, which is required; add another first",
                "これは必須の二要素認証の唯一の手段です。先に別の手段を登録してください。",
            ));
        }
        self.store.delete_webauthn(id.as_str(), key).await?;
        self.refresh_has_second_factor(id).await?;
        tracing::info!(account = id.as_str(), key, "security key removed");
        let what = format!("security_key removed key={key}");
        self.audit_credentials(session, action::FACTOR_CHANGE, what)
            .await
    }

    /// The challenge for signing in with a security key, bound to the pending
    /// sign-in.
    pub async fn webauthn_challenge(
        &self,
        pending: &PendingToken,
    ) -> Result<RequestChallengeResponse> {
        let Some(mut p) = self.factors.take_pending(pending) else {
            return Err(Error::SessionExpired);
        };
        let result = self.webauthn_challenge_for(&p.account).await;
        match result {
            Ok((challenge, state)) => {
                p.webauthn = Some(state);
                self.factors.put_pending(pending, p);
                Ok(challenge)
            }
            Err(e) => {
                self.factors.put_pending(pending, p);
                Err(e)
            }
        }
    }

    /// The challenge for re-authenticating a session with a security key.
    pub async fn reauth_webauthn_challenge(
        &self,
        session: &CurrentSession,
    ) -> Result<RequestChallengeResponse> {
        let (challenge, state) = self.webauthn_challenge_for(&session.account.id).await?;
        self.factors
            .put_reauth_challenge(&session.record.token_hash, state);
        Ok(challenge)
    }

    async fn webauthn_challenge_for(
        &self,
        id: &AccountId,
    ) -> Result<(RequestChallengeResponse, PasskeyAuthentication)> {
        let rows = self.store.webauthn_credentials(id.as_str()).await?;
        let keys: Vec<Passkey> = Self::passkeys(&rows).into_iter().map(|(_, p)| p).collect();
        if keys.is_empty() {
            return Err(Error::NotFound("security key"));
        }
        self.webauthn()?
            .start_passkey_authentication(&keys)
            .map_err(|e| Error::Internal(format!("webauthn: {e}")))
    }

    pub(super) async fn check_webauthn(
        &self,
        account: &Account,
        credential: &PublicKeyCredential,
        state: &PasskeyAuthentication,
    ) -> Result<bool> {
        let result = match self
            .webauthn()?
            .finish_passkey_authentication(credential, state)
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(account = account.id.as_str(), error = %e, "security key refused");
                return Ok(false);
            }
        };
        let rows = self.store.webauthn_credentials(account.id.as_str()).await?;
        for (row_id, mut passkey) in Self::passkeys(&rows) {
            if passkey.cred_id() == result.cred_id() {
                passkey.update_credential(&result);
                let json = serde_json::to_string(&passkey)
                    .map_err(|e| Error::Internal(format!("passkey json: {e}")))?;
                self.store
                    .update_webauthn(&row_id, &json, self.now())
                    .await?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}
