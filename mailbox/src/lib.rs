//! Renkei's domain: facilities, accounts, roles, sign-in and storage.
//!
//! Invariant: this crate knows nothing about HTTP, IMAP or SMTP; only [`store`]
//! imports sqlx.

pub mod account;
pub mod attachment_policy;
pub mod audit;
pub mod billing;
pub mod blob;
pub mod booking;
pub mod clock;
pub mod csv;
pub mod directory;
pub mod error;
pub mod facility;
pub mod folders;
pub mod ids;
pub mod intake;
pub mod keyring;
pub mod keys;
pub mod listing;
pub mod notify;
pub mod password;
pub mod pathway;
pub mod pdf;
pub mod postroom;
pub mod queue;
pub mod records;
pub mod store;
pub mod threads;
pub mod twofactor;
pub mod workflow;

/// The delivery engine, where it has always been found.
pub use queue::delivery;

pub use account::{Account, AccountId, Role};
pub use directory::{
    AuthPolicy, CurrentSession, Directory, NetworkPolicy, NewAccount, SessionToken,
};
pub use error::{Error, ErrorKind, Localized, Result};
pub use facility::{Facility, FacilityCode, FacilityCodeError};
pub use password::Password;
/// Re-exported so the edges use the same WebAuthn types as the domain.
pub use webauthn_rs;
