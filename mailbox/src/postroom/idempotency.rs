//! Idempotent submits. A client that sends an `Idempotency-Key` with a
//! submission (an item, a thread, a step) has the answer remembered in the
//! very transaction that stores the envelope: a crash never leaves an
//! envelope without its key or a key without its envelope. A retry with the
//! same key gets that answer and stores nothing new (see the web layer for the
//! HTTP side). While one request with a key runs, others with the same key
//! find it held here ([`Postroom::hold_idempotency_key`]); across nodes the
//! key's row refuses the second commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Postroom;
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::store::idempotency::{IdempotencyRow, KEEP_MILLIS};

/// What a submission with a key stores beside its envelope.
pub struct Idempotency {
    /// SHA-256 of the key (the account is the sender's).
    pub key_hash: [u8; 32],
    /// Builds the answer to remember once the IDs are known. Called once, in
    /// the commit, after the attachments were read whole.
    pub answer: Box<dyn FnOnce(&Submitted) -> RememberedAnswer + Send>,
}

/// The IDs a submission made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub envelope_id: String,
    /// The thread the envelope opened or advanced.
    pub thread_id: Option<String>,
}

/// An answer as remembered: never patient data, only what answering again needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedAnswer {
    /// SHA-256 of the operation and request body.
    pub request_hash: [u8; 32],
    pub status: u16,
    /// The response body (JSON holding IDs).
    pub body: Vec<u8>,
}

/// An account and a key's hash.
type Slot = (String, [u8; 32]);

/// Keys with a request running in this process.
#[derive(Default)]
pub(super) struct HeldKeys(Mutex<HashMap<Slot, Arc<tokio::sync::Mutex<()>>>>);

/// A key held by one request (or waited for); released when dropped.
pub struct KeyHold {
    keys: Arc<HeldKeys>,
    slot: Slot,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyHold {
    /// Whether this request holds the key (no other one is running with it).
    pub fn held(&self) -> bool {
        self.guard.is_some()
    }

    /// Waits until the request holding the key is done, then holds it.
    pub async fn wait(&mut self) {
        if self.guard.is_none() {
            self.guard = Some(self.lock.clone().lock_owned().await);
        }
    }
}

impl Drop for KeyHold {
    fn drop(&mut self) {
        // The last hold of a key (the map's own handle aside) removes it.
        self.guard.take();
        if let Ok(mut map) = self.keys.0.lock()
            && map
                .get(&self.slot)
                .is_some_and(|l| Arc::ptr_eq(l, &self.lock))
            && Arc::strong_count(&self.lock) <= 2
        {
            map.remove(&self.slot);
        }
    }
}

impl Postroom {
    /// Holds `key_hash` of the session's account for this request, unless a
    /// request with it is running in this process ([`KeyHold::held`] false;
    /// [`KeyHold::wait`] waits for it).
    pub fn hold_idempotency_key(&self, session: &CurrentSession, key_hash: [u8; 32]) -> KeyHold {
        let slot = (session.account.id.as_str().to_string(), key_hash);
        let lock = match self.held_keys.0.lock() {
            Ok(mut map) => map.entry(slot.clone()).or_default().clone(),
            // A poisoned map only loses the in-process check; the key's row
            // still refuses a second commit.
            Err(_) => Arc::default(),
        };
        let guard = lock.clone().try_lock_owned().ok();
        KeyHold {
            keys: self.held_keys.clone(),
            slot,
            lock,
            guard,
        }
    }

    /// The answer remembered for the session's account and `key_hash`, if the
    /// key was used in the last 24 hours.
    pub async fn remembered_answer(
        &self,
        session: &CurrentSession,
        key_hash: &[u8; 32],
    ) -> Result<Option<RememberedAnswer>> {
        let since = self.clock.now_millis() - KEEP_MILLIS;
        let row = self
            .store
            .idempotency_answer(session.account.id.as_str(), key_hash, since)
            .await?;
        row.map(|r| {
            Ok(RememberedAnswer {
                request_hash: r.request_hash.as_slice().try_into().map_err(|_| {
                    Error::Internal("stored idempotency request hash is not 32 bytes".into())
                })?,
                status: u16::try_from(r.status).map_err(|_| {
                    Error::Internal(format!("stored idempotency status {}", r.status))
                })?,
                body: r.response,
            })
        })
        .transpose()
    }

    /// Forgets idempotency keys older than 24 hours; returns how many.
    pub async fn sweep_idempotency_keys(&self) -> Result<u64> {
        let before = self.clock.now_millis() - KEEP_MILLIS;
        Ok(self.store.purge_idempotency_keys(before).await?)
    }

    /// The row a committing submission stores, its answer built now.
    pub(super) fn idempotency_row(
        &self,
        account_id: &str,
        key: Idempotency,
        made: &Submitted,
    ) -> IdempotencyRow {
        let answer = (key.answer)(made);
        IdempotencyRow {
            account_id: account_id.to_string(),
            key_hash: key.key_hash.to_vec(),
            request_hash: answer.request_hash.to_vec(),
            status: i64::from(answer.status),
            response: answer.body,
            created_at: self.clock.now_millis(),
        }
    }
}
