//! Re-authentication before the actions that take much out at once or cannot
//! be undone: a whole-item or whole-study ZIP, a forward, a PDF export and a
//! patient deletion request (ASVS 3.7.1). The person must have proved
//! themselves within the last five minutes (`[auth] reauth_secs`): by signing
//! in (the session's `created_at`, in the store) or since, with their password
//! or a second factor ([`Auth::prove`], remembered for the session in memory
//! beside its keyring, which is per node as well). Otherwise the service
//! answers `ReauthRequired`: the API's `reauthentication_required`, a page's
//! way to `/reauth?next=…`. A wrong password here counts like a failed
//! sign-in. The older `require_recent_reauth` (changing the password, the
//! address or the factors) asks accounts with a second factor for that factor.

use std::time::Duration;

use super::Auth;
use super::password::Password;
use super::session::{CurrentSession, Peer};
use super::sign_in::SecondFactor;
use crate::error::{Error, Result};
use crate::records::audit::Acting;

/// How a person proves themselves again.
#[derive(Debug, Clone)]
pub enum Proof {
    Password(Password),
    Factor(SecondFactor),
}

impl Auth {
    /// How long a sign-in or a re-authentication covers the actions above.
    pub fn reauth_window(&self) -> Duration {
        self.reauth_window
    }

    /// Re-authentication with the password or a second factor; the session
    /// may then take the actions above for [`Auth::reauth_window`].
    pub async fn prove(&self, session: &CurrentSession, proof: &Proof) -> Result<()> {
        match proof {
            Proof::Factor(factor) => self.reauthenticate(session, factor).await,
            Proof::Password(password) => {
                let peer = Peer {
                    addr: session.record.remote_addr.clone(),
                    channel: Acting::channel(session),
                    device: None,
                };
                // Counted and delayed like a sign-in: a stolen session cannot
                // guess the password faster than the sign-in page allows.
                let account = self
                    .password_proof(session.account.id.as_str(), password, &peer)
                    .await?;
                if account.id != session.account.id {
                    return Err(Error::BadCredentials);
                }
                self.factors.reauthenticated(&session.record.token_hash);
                tracing::info!(
                    account = account.id.as_str(),
                    "re-authenticated with the password"
                );
                Ok(())
            }
        }
    }

    /// The check before a whole-item or whole-study ZIP, a forward, a PDF
    /// export and a deletion request: signed in, or re-authenticated, within
    /// [`Auth::reauth_window`].
    pub fn require_proved_recently(&self, session: &CurrentSession) -> Result<()> {
        let window = self.reauth_window;
        let since_sign_in = self
            .clock
            .now_millis()
            .saturating_sub(session.record.created_at);
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        if since_sign_in < window_ms
            || self
                .factors
                .proved_within(&session.record.token_hash, window)
        {
            Ok(())
        } else {
            Err(Error::ReauthRequired)
        }
    }
}

impl Auth {
    /// The operator who runs `renkei admin`, proved by their password: the
    /// same check as a sign-in (a wrong password counts, a locked or removed
    /// account is refused), and the account must be the operator's.
    pub async fn confirm_operator(&self, id: &str, password: &Password) -> Result<crate::Account> {
        let peer = Peer {
            addr: Some("local".into()),
            channel: crate::records::audit::Channel::Cli,
            device: None,
        };
        let account = self.password_proof(id, password, &peer).await?;
        if account.role != crate::Role::Operator {
            return Err(Error::Forbidden);
        }
        Ok(account)
    }
}

impl Auth {
    /// A password checked as a sign-in checks it: throttled per address and
    /// account, a failure counted, a success clearing the count.
    async fn password_proof(
        &self,
        id: &str,
        password: &Password,
        peer: &Peer,
    ) -> Result<crate::Account> {
        let attempt = self.attempt_of(id, peer).await?;
        self.throttle_check(&attempt).await?;
        let account = self.check_password(id, password, peer, &attempt).await?;
        self.throttle_succeeded(&attempt).await?;
        Ok(account)
    }
}
