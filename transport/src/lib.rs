//! What crosses the wire besides HTTP: the TLS material every listener shares and
//! the delivery worker. Notifications and the IMAP server come here next.

pub mod delivery;
pub mod tls;
