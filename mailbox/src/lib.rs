//! Renkei's domain: facilities, accounts, roles, sign-in and storage.
//!
//! Invariant: this crate knows nothing about HTTP, IMAP or SMTP; only [`store`]
//! imports sqlx.

pub mod account;
pub mod auth;
pub mod blob;
pub mod clock;
pub mod directory;
pub mod error;
pub mod facility;
pub mod ids;
pub mod keys;
mod localized;
pub mod notify;
pub mod pdf;
pub mod postroom;
pub mod queue;
pub mod records;
pub mod store;
pub mod threads;
pub mod workflow;

/// The delivery engine, where it has always been found.
pub use queue::delivery;

pub use account::{Account, AccountId, Role};
pub use auth::{AuthPolicy, CurrentSession, Password, SessionToken};
pub use directory::{Directory, NetworkPolicy, NewAccount};
pub use error::{Error, ErrorKind, Localized, Result};
pub use facility::{Facility, FacilityCode, FacilityCodeError};
/// Re-exported so the edges use the same WebAuthn types as the domain.
pub use webauthn_rs;
