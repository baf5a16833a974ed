//! The directory: the registry of facilities and accounts, and the façade the
//! edges (pages, the JSON API, IMAP, the CLI) call for people and keys. It
//! builds the authentication and key services and hands each what it needs;
//! sign-in, sessions and second factors are [`Auth`]'s methods, reached
//! through the directory.

mod accounts;
mod console;
mod facilities;

use std::ops::Deref;
use std::sync::Arc;

use renkei_crypto::SecretKey;

use crate::account::{AccountId, Role};
use crate::auth::CurrentSession;
use crate::auth::{Auth, AuthPolicy, SecondFactorKey};
use crate::clock::{self, SharedClock};
use crate::error::{Error, Result};
use crate::facility::{DEFAULT_HOME_PREFECTURE, FacilityCode};
use crate::keys::{Keys, Restoration};
use crate::records::audit::Audit;
use crate::store::Store;
use crate::store::vault::GrantRow;

pub use accounts::{ResetOutcome, validate_email};

#[derive(Debug, Clone)]
pub struct NetworkPolicy {
    /// Facilities elsewhere need the steering committee's approval reference.
    pub home_prefecture: u8,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        Self {
            home_prefecture: DEFAULT_HOME_PREFECTURE,
        }
    }
}

/// What the operator enters to create an account; the ID is always assigned.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub role: Role,
    pub facility: Option<FacilityCode>,
    pub name: String,
    pub email: Option<String>,
}

pub struct Directory {
    store: Arc<dyn Store>,
    /// The trail the console actions record themselves on.
    audit: Audit,
    network: NetworkPolicy,
    clock: SharedClock,
    keys: Arc<Keys>,
    auth: Auth,
}

impl Directory {
    pub fn new(store: Arc<dyn Store>, auth: AuthPolicy, network: NetworkPolicy) -> Self {
        Self::with_clock(store, auth, network, clock::system())
    }

    /// A directory whose rules (session timeouts, TOTP steps, facility days)
    /// read `clock`.
    pub fn with_clock(
        store: Arc<dyn Store>,
        auth: AuthPolicy,
        network: NetworkPolicy,
        clock: SharedClock,
    ) -> Self {
        let audit = Audit::new(store.clone());
        Self::assemble(store, audit, clock, auth, network)
    }

    /// The directory over `store`, writing to the one `audit` trail the other
    /// services share, reading `clock`. Builds the key and sign-in services.
    pub fn assemble(
        store: Arc<dyn Store>,
        audit: Audit,
        clock: SharedClock,
        auth: AuthPolicy,
        network: NetworkPolicy,
    ) -> Self {
        let keys = Arc::new(Keys::new(
            store.clone(),
            audit.clone(),
            clock.clone(),
            auth.key_lock,
        ));
        let auth = Auth::new(
            store.clone(),
            auth,
            audit.clone(),
            clock.clone(),
            keys.clone(),
        );
        Self {
            store,
            audit,
            network,
            clock,
            keys,
            auth,
        }
    }

    /// Security keys and passkeys for `rp_id` (the host name people use), from
    /// `origin` on any port.
    pub fn with_webauthn(mut self, rp_id: &str, origin: &str) -> Result<Self> {
        self.auth = self.auth.with_webauthn(rp_id, origin)?;
        Ok(self)
    }

    /// The key TOTP secrets are sealed under (kept outside the database).
    pub fn with_second_factor_key(mut self, key: SecondFactorKey) -> Self {
        self.auth = self.auth.with_second_factor_key(key);
        self
    }

    /// See [`Auth::with_reauth_window`].
    pub fn with_reauth_window(mut self, window: std::time::Duration) -> Self {
        self.auth = self.auth.with_reauth_window(window);
        self
    }

    /// Sign-in, sessions and second factors.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Keys, grants and the recovery key.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Makes the network's recovery key; see [`Keys::init_recovery`].
    pub async fn init_recovery(&self) -> Result<SecretKey> {
        self.keys.init_recovery().await
    }

    /// The operator's way to complete pending grants: with the offline recovery key.
    pub async fn complete_grants_with_recovery(&self, recovery: &SecretKey) -> Result<u64> {
        self.keys.complete_grants_with_recovery(recovery).await
    }

    pub async fn pending_grants(&self) -> Result<Vec<GrantRow>> {
        self.keys.pending_grants().await
    }

    /// The restorations this liaison (a custodian) may approve; see
    /// [`Keys::restorations`]. Refused to anyone without the custodian key.
    pub async fn restorations(&self, session: &CurrentSession) -> Result<Vec<Restoration>> {
        let account = custodian_role(session)?;
        let keyring = self.auth.keyring(session).ok_or(Error::SessionExpired)?;
        self.keys.restorations(account, &keyring).await
    }

    /// Approves restoring `target`'s earlier keys; see [`Keys::approve_restoration`].
    pub async fn approve_restoration(
        &self,
        session: &CurrentSession,
        target: &AccountId,
    ) -> Result<usize> {
        custodian_role(session)?;
        let keyring = self.auth.keyring(session).ok_or(Error::SessionExpired)?;
        self.keys
            .approve_restoration(session, &keyring, target)
            .await
    }
}

/// Only a liaison can hold a facility's custodian key (the operator holds no key).
fn custodian_role(session: &CurrentSession) -> Result<&crate::account::Account> {
    let account = session.require_ready()?;
    if account.role == Role::Liaison {
        Ok(account)
    } else {
        Err(Error::Forbidden)
    }
}

/// The edges call sign-in and session methods on the directory as before.
impl Deref for Directory {
    type Target = Auth;

    fn deref(&self) -> &Auth {
        &self.auth
    }
}
