//! Renkei's domain: facilities, accounts, roles, sign-in and storage.
//!
//! Invariant: this crate knows nothing about HTTP, IMAP or SMTP; only [`store`]
//! imports sqlx.

pub mod account;
mod acting;
pub mod blob;
pub mod clock;
pub mod directory;
pub mod error;
pub mod facility;
pub mod ids;
pub mod keyring;
pub mod keys;
pub mod notify;
pub mod password;
pub mod pdf;
pub mod postroom;
pub mod queue;
pub mod records;
pub mod store;
pub mod threads;
pub mod twofactor;

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
