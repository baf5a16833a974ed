//! What crosses the wire besides HTTP: the TLS material every listener shares,
//! the delivery worker, the notification mail sender and the IMAP server for
//! mail clients (`imap`: listeners, the connection loop, the session state
//! machine and the message rendering).

pub mod audit_mail;
pub mod delivery;
pub mod imap;
pub mod notify;
pub mod tls;
