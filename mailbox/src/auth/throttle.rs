//! The sign-in throttle, shared by every node through the database.
//!
//! Two counters per attempt, both keyed by SHA-256 so neither a typed ID nor an
//! address is stored: the *pair* — the typed ID with the address, or with the
//! device when it brings a device cookie that signed in to that account before
//! — and the *address*. A pair past `delay_after` failures waits a growing
//! delay (1 s doubling to `max_delay`); the count is forgotten after a day
//! without failures, and a success clears it. An address past its cap is
//! refused for the rest of the window, except for a known device. Unknown IDs
//! are counted exactly like real ones, so neither answer nor delay tells them
//! apart; nothing here ever locks an account.

use std::time::Duration;

use super::session::Peer;
use super::{Auth, sha256};
use crate::account::AccountId;
use crate::error::{Error, Result};
use crate::ids::random_bytes;
use crate::store::throttle::Reset;

/// A pair's count is forgotten after this long without failures.
const PAIR_QUIET: Duration = Duration::from_secs(24 * 60 * 60);
/// A device cookie stays good this long after its last use.
pub const DEVICE_VALID_FOR: Duration = Duration::from_secs(180 * 24 * 60 * 60);

/// What one sign-in attempt is counted under.
#[derive(Clone)]
pub(super) struct Attempt {
    pair: String,
    address: Option<String>,
    /// The attempt came with a device cookie that signed in to this ID before.
    known_device: bool,
}

fn key(parts: &[&str]) -> String {
    hex::encode(sha256(&parts.join("\n")))
}

/// The typed ID as the store spells it, or as typed (trimmed, upper case) when
/// it is no ID at all, so made-up IDs are counted like real ones.
fn canonical_id(id_input: &str) -> String {
    match AccountId::parse(id_input) {
        Ok(id) => id.as_str().to_string(),
        Err(_) => id_input
            .trim()
            .chars()
            .take(64)
            .collect::<String>()
            .to_uppercase(),
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Auth {
    /// Keys the attempt and finds out whether its device is known for the ID.
    pub(super) async fn attempt_of(&self, id_input: &str, peer: &Peer) -> Result<Attempt> {
        let id = canonical_id(id_input);
        let now = self.now();
        let known_device = match &peer.device {
            Some(cookie) if !cookie.is_empty() => {
                self.store
                    .device_known(&sha256(cookie), &id, now - secs(DEVICE_VALID_FOR), now)
                    .await?
            }
            _ => false,
        };
        let subject = if known_device {
            format!("device:{}", peer.device.as_deref().unwrap_or_default())
        } else {
            format!("addr:{}", peer.addr.as_deref().unwrap_or("-"))
        };
        Ok(Attempt {
            pair: key(&["pair", &id, &subject]),
            address: peer.addr.as_ref().map(|a| key(&["addr", a])),
            known_device,
        })
    }

    /// Refuses the attempt while its pair waits out its delay, or while its
    /// address is over the cap and the device is not known.
    pub(super) async fn throttle_check(&self, attempt: &Attempt) -> Result<()> {
        let mut keys = vec![attempt.pair.as_str()];
        if let Some(a) = &attempt.address {
            keys.push(a);
        }
        let now = self.now();
        let limit = self.policy.address_limit;
        for row in self.store.throttle(&keys).await? {
            let failures = u32::try_from(row.failures).unwrap_or(u32::MAX);
            if row.key == attempt.pair {
                let wait = secs(self.policy.delay_for(failures));
                if now < row.last_at.saturating_add(wait) {
                    tracing::warn!(failures, "sign-in refused: waiting out the delay");
                    return Err(Error::TooManyAttempts);
                }
            } else if !attempt.known_device
                && failures >= limit.failures
                && row.first_at > now - secs(limit.window)
            {
                tracing::warn!(
                    failures,
                    "sign-in refused: too many failures from this address"
                );
                return Err(Error::TooManyAttempts);
            }
        }
        Ok(())
    }

    /// Counts a failed attempt under its pair and its address.
    pub(super) async fn throttle_failed(&self, attempt: &Attempt) -> Result<()> {
        let now = self.now();
        self.store
            .throttle_failed(
                &attempt.pair,
                now,
                Reset::QuietSince(now - secs(PAIR_QUIET)),
            )
            .await?;
        if let Some(a) = &attempt.address {
            let window = secs(self.policy.address_limit.window);
            self.store
                .throttle_failed(a, now, Reset::WindowStartedBefore(now - window))
                .await?;
        }
        Ok(())
    }

    /// A success clears the pair (the address keeps its count).
    pub(super) async fn throttle_succeeded(&self, attempt: &Attempt) -> Result<()> {
        Ok(self.store.throttle_clear(&attempt.pair).await?)
    }

    /// After a successful sign-in: remembers the browser's device cookie for
    /// the account (a new one when it brought none), and returns the value to
    /// set. One cookie may stand for several accounts on a shared workstation.
    pub async fn remember_device(
        &self,
        account: &AccountId,
        presented: Option<&str>,
    ) -> Result<String> {
        let token = match presented {
            Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => t.to_string(),
            _ => hex::encode(random_bytes::<32>()),
        };
        self.store
            .remember_device(&sha256(&token), account.as_str(), self.now())
            .await?;
        Ok(token)
    }

    /// Forgets old counts (run with the session purge).
    pub async fn purge_throttle(&self) -> Result<u64> {
        let horizon = secs(PAIR_QUIET.max(self.policy.address_limit.window));
        Ok(self.store.purge_throttle(self.now() - horizon).await?)
    }
}
