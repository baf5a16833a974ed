//! What crosses the wire besides HTTP: the TLS material every listener shares, the
//! delivery worker and the notification mail sender. The IMAP server comes here next.

pub mod delivery;
pub mod imap;
pub mod notify;
pub mod tls;
