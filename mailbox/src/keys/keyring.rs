//! Keys unlocked for a signed-in session. They live only in this process's memory,
//! keyed by the session, and are wiped (Sequoia's `Protected` memory zeroizes) when
//! the session ends by sign-out, idle or absolute timeout.
//!
//! A keyring also keeps the last four envelopes its session opened
//! (`RecentlyOpened`), which attachment reads reuse: scrolling a 2,048-slice
//! study had decrypted and parsed its 2,049-entry manifest for every slice. The
//! key slots are still checked on every read; the plaintext goes with the
//! session. A session without its keyring (after a restart) is treated as
//! expired.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use renkei_crypto::{FacilityRole, OpenedEnvelope, SecretKey};

use crate::account::AccountId;
use crate::facility::FacilityCode;

/// One of the principals that can hold a key slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    Account(AccountId),
    LiaisonInbox(FacilityCode),
    Oversight(FacilityCode),
}

impl Principal {
    /// The form stored in `envelope_slots.principal`.
    pub fn key(&self) -> String {
        match self {
            Self::Account(id) => format!("account:{}", id.as_str()),
            Self::LiaisonInbox(code) => format!("liaison:{code}"),
            Self::Oversight(code) => format!("oversight:{code}"),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let (kind, rest) = s.split_once(':')?;
        match kind {
            "account" => AccountId::parse(rest).ok().map(Self::Account),
            "liaison" => FacilityCode::parse(rest).ok().map(Self::LiaisonInbox),
            "oversight" => FacilityCode::parse(rest).ok().map(Self::Oversight),
            _ => None,
        }
    }
}

/// The facility-key role as stored in `facility_keys.role`.
pub fn role_key(role: FacilityRole) -> &'static str {
    match role {
        FacilityRole::LiaisonInbox => "liaison",
        FacilityRole::Oversight => "oversight",
        FacilityRole::Custodian => "custodian",
    }
}

pub fn parse_role(s: &str) -> Option<FacilityRole> {
    match s {
        "liaison" => Some(FacilityRole::LiaisonInbox),
        "oversight" => Some(FacilityRole::Oversight),
        "custodian" => Some(FacilityRole::Custodian),
        _ => None,
    }
}

/// The keys one session holds.
pub struct Keyring {
    pub account: AccountId,
    pub facility: Option<FacilityCode>,
    pub user: SecretKey,
    pub liaison_inbox: Option<SecretKey>,
    pub oversight: Option<SecretKey>,
    /// A liaison's hold on the decryption halves of the facility's people
    /// (`keys::custody`); never a slot principal.
    pub custodian: Option<SecretKey>,
    /// The person's earlier decryption halves, given back by a restoration:
    /// they open items sealed to the person's earlier keys.
    pub previous: Vec<SecretKey>,
    /// Envelopes this session opened last, for attachment reads (see
    /// [`RecentlyOpened`]).
    pub recent: RecentlyOpened,
}

/// The last few envelopes a session opened, decrypted and verified, so that
/// scrolling through a study (one render per slice) does not decrypt and
/// parse an item's manifest of thousands of entries for every slice. The
/// plaintext lives only in this session's memory and goes with it (the
/// manifest's session keys wipe themselves on drop). Access is still checked
/// against the key slots on every read; only the cryptography is reused.
#[derive(Default)]
pub struct RecentlyOpened {
    inner: Mutex<VecDeque<(String, Arc<OpenedEnvelope>)>>,
}

impl RecentlyOpened {
    /// A study is read from one item at a time; a few cover a thread's steps.
    const KEEP: usize = 4;

    pub fn get(&self, id: &str) -> Option<Arc<OpenedEnvelope>> {
        let mut recent = self.inner.lock().ok()?;
        let at = recent.iter().position(|(k, _)| k == id)?;
        let hit = recent.remove(at)?;
        let opened = hit.1.clone();
        recent.push_front(hit);
        Some(opened)
    }

    pub fn put(&self, id: &str, opened: Arc<OpenedEnvelope>) {
        if let Ok(mut recent) = self.inner.lock() {
            recent.retain(|(k, _)| k != id);
            recent.push_front((id.to_string(), opened));
            recent.truncate(Self::KEEP);
        }
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("account", &self.account)
            .field("liaison_inbox", &self.liaison_inbox.is_some())
            .field("oversight", &self.oversight.is_some())
            .field("custodian", &self.custodian.is_some())
            .field("previous", &self.previous.len())
            .finish()
    }
}

impl Keyring {
    /// The key this session uses for a principal, if it holds one.
    pub fn key_for(&self, principal: &Principal) -> Option<&SecretKey> {
        match principal {
            Principal::Account(id) if *id == self.account => Some(&self.user),
            Principal::LiaisonInbox(code) if Some(code) == self.facility.as_ref() => {
                self.liaison_inbox.as_ref()
            }
            Principal::Oversight(code) if Some(code) == self.facility.as_ref() => {
                self.oversight.as_ref()
            }
            _ => None,
        }
    }

    /// The key that opens `envelope` for `principal`: the person's own key, or
    /// the earlier key of theirs whose slot the envelope carries.
    pub fn opener_for(
        &self,
        principal: &Principal,
        envelope: &renkei_crypto::SealedEnvelope,
    ) -> Option<&SecretKey> {
        let key = self.key_for(principal)?;
        if self.previous.is_empty() || !matches!(principal, Principal::Account(_)) {
            return Some(key);
        }
        let slots = renkei_crypto::key_slots(envelope).unwrap_or_default();
        if slots.contains(&key.cert().key_slot_id()) {
            return Some(key);
        }
        self.previous
            .iter()
            .find(|k| slots.contains(&k.cert().key_slot_id()))
            .or(Some(key))
    }

    /// Every principal this session can read as, most specific first.
    pub fn principals(&self) -> Vec<Principal> {
        let mut out = vec![Principal::Account(self.account.clone())];
        if let Some(code) = &self.facility {
            if self.liaison_inbox.is_some() {
                out.push(Principal::LiaisonInbox(code.clone()));
            }
            if self.oversight.is_some() {
                out.push(Principal::Oversight(code.clone()));
            }
        }
        out
    }
}

/// Session token hash → unlocked keys.
#[derive(Default)]
pub struct Keyrings {
    inner: Mutex<HashMap<Vec<u8>, Arc<Keyring>>>,
}

impl Keyrings {
    pub fn insert(&self, session: Vec<u8>, keyring: Keyring) {
        if let Ok(mut map) = self.inner.lock() {
            map.insert(session, Arc::new(keyring));
        }
    }

    pub fn insert_shared(&self, session: Vec<u8>, keyring: Arc<Keyring>) {
        if let Ok(mut map) = self.inner.lock() {
            map.insert(session, keyring);
        }
    }

    /// The sessions that hold keys.
    pub fn sessions(&self) -> Vec<Vec<u8>> {
        self.inner
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn get(&self, session: &[u8]) -> Option<Arc<Keyring>> {
        self.inner.lock().ok().and_then(|m| m.get(session).cloned())
    }

    pub fn remove(&self, session: &[u8]) {
        if let Ok(mut map) = self.inner.lock() {
            map.remove(session);
        }
    }

    pub fn remove_account(&self, account: &AccountId) {
        if let Ok(mut map) = self.inner.lock() {
            map.retain(|_, k| k.account != *account);
        }
    }
}
