//! What crosses the wire besides HTTP. Today: the TLS material every listener
//! shares. The delivery queue, notifications and the IMAP server come here next.

pub mod tls;
