//! HTTP plumbing shared by the pages and the API: serving over TLS, CSRF,
//! sessions from cookies or bearer tokens, typed extractors, errors, byte
//! ranges, streamed uploads and downloads, and ZIP streaming.

pub mod archive_zip;
pub mod csrf;
pub mod download;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod ranges;
pub mod serve;
pub mod session;
pub mod upload;
pub mod zipstream;

pub use serve::{same_origin_writes, serve_https};
