//! IMAP for mail clients: the session state machine over imap-next's flows and
//! imap-codec's syntax, and messages rendered on demand.

pub mod render;
pub mod session;
