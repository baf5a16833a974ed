//! Renkei's domain: facilities, accounts and roles (pure modules), the services
//! by concern — `auth`, `keys`, `directory`, `postroom`, `threads`, `records`,
//! `notify`, `queue` — and their storage (`store`, the blob folder).
//!
//! Invariant: this crate knows nothing about HTTP, IMAP or SMTP; only [`store`]
//! imports sqlx. The service folders do not import each other in a loop: each
//! uses only those before it in `records, keys, auth, directory, postroom,
//! notify, threads`; shared utilities live in `clock`, `ids`, `error`,
//! `account`, `facility` and `workflow`.

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
pub mod retry;
pub mod roles;
pub mod store;
pub mod threads;
pub mod timesync;
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
