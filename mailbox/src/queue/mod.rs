//! Leased queues: deliveries and notification mails are both rows that a
//! worker leases for a while, then completes, defers with back-off, or gives up
//! on. The one back-off policy and the lease and give-up rules are
//! [`crate::retry`] (a leaf, so `notify` can use them while the delivery engine
//! here uses `notify`); the statements are the store's (`store::lease`), the
//! delivery engine is [`delivery`].

pub mod delivery;

pub use crate::retry::{BackOff, GiveUp, lease_until};
