//! Keys: each person's key (made at account creation, unlocked at sign-in,
//! re-locked on a password change), the facility keys and their grants, the
//! offline recovery key, and the keyrings of live sessions, which live only in
//! this process's memory.
//!
//! Secrets arrive as bytes: this service knows how to lock and unlock keys, not
//! what a password is or how sign-in checks one.

mod custody;
mod grants;
mod history;
pub mod keyring;
mod recovery;
mod unlock;

use std::sync::Arc;

use renkei_crypto::{FacilityRole, LockParams};
use zeroize::Zeroizing;

use crate::account::Role;
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::records::audit::Audit;
use crate::store::Store;

pub use custody::Restoration;
pub use keyring::{Keyring, Keyrings, Principal, parse_role, role_key};

/// The key service: what is stored about keys and what is unlocked in memory.
pub struct Keys {
    store: Arc<dyn Store>,
    audit: Audit,
    clock: SharedClock,
    /// Argon2id cost of the password lock on each person's secret key.
    lock: LockParams,
    /// Unlocked keys of live sessions; memory only, never stored.
    keyrings: Keyrings,
}

impl Keys {
    pub fn new(store: Arc<dyn Store>, audit: Audit, clock: SharedClock, lock: LockParams) -> Self {
        Self {
            store,
            audit,
            clock,
            lock,
            keyrings: Keyrings::default(),
        }
    }

    /// The keyrings of live sessions, by session token hash.
    pub fn keyrings(&self) -> &Keyrings {
        &self.keyrings
    }

    fn now(&self) -> i64 {
        self.clock.now_secs()
    }
}

/// Which facility keys a role holds.
pub fn facility_roles(role: Role) -> &'static [FacilityRole] {
    match role {
        Role::Clerk => &[FacilityRole::Oversight],
        Role::Liaison => &[
            FacilityRole::Oversight,
            FacilityRole::LiaisonInbox,
            FacilityRole::Custodian,
        ],
        Role::Doctor | Role::Operator => &[],
    }
}

fn crypto(e: renkei_crypto::CryptoError) -> Error {
    Error::Internal(format!("crypto: {e}"))
}

/// A secret copied for a blocking task; wiped when the task drops it.
fn secret_copy(secret: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(secret.to_vec())
}

/// Runs CPU-heavy crypto (key generation, Argon2) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("crypto task: {e}")))?
}
