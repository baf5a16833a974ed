//! Notices as the sender and the people concerned see them: the queued row
//! stays in the store, these carry what a mail or a list needs.

use crate::store::notify::{NotificationRow, NotifySettings};

/// A notice leased for sending: what the mail says and whom it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingNotice {
    pub id: String,
    pub account_id: String,
    /// A [`super::NotifyReason`] as stored (`new_item`, `report`, …).
    pub reason: String,
    /// The kind of item (`reading_request`, …).
    pub kind: Option<String>,
    pub thread_id: Option<String>,
    pub envelope_id: Option<String>,
    /// The facility the text names (the sender's, or the facility concerned).
    pub facility_code: Option<String>,
    /// Set only for address confirmations: the address being confirmed.
    pub to_address: Option<String>,
    /// The confirmation link's token (address confirmations only).
    pub token: Option<String>,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Unix milliseconds it was queued (the give-up time counts from here).
    pub created_at: i64,
}

impl From<NotificationRow> for PendingNotice {
    fn from(r: NotificationRow) -> Self {
        Self {
            id: r.id,
            account_id: r.account_id,
            reason: r.reason,
            kind: r.kind,
            thread_id: r.thread_id,
            envelope_id: r.envelope_id,
            facility_code: r.facility_code,
            to_address: r.to_address,
            token: r.secret,
            attempts: r.attempts,
            created_at: r.created_at,
        }
    }
}

/// A notice that could not be sent: what it was about, never to which address
/// or with what token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedNotice {
    pub id: String,
    pub account_id: String,
    /// A [`super::NotifyReason`] as stored.
    pub reason: String,
    pub kind: Option<String>,
    pub thread_id: Option<String>,
    pub envelope_id: Option<String>,
    pub attempts: i64,
    /// The relay's last answer.
    pub last_error: Option<String>,
    /// Unix milliseconds it was queued.
    pub created_at: i64,
}

impl From<NotificationRow> for FailedNotice {
    fn from(r: NotificationRow) -> Self {
        Self {
            id: r.id,
            account_id: r.account_id,
            reason: r.reason,
            kind: r.kind,
            thread_id: r.thread_id,
            envelope_id: r.envelope_id,
            attempts: r.attempts,
            last_error: r.last_error,
            created_at: r.created_at,
        }
    }
}

/// A person's notification settings as shown to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// The verified address, or one still waiting to be verified.
    pub email: Option<String>,
    pub email_verified: bool,
    /// Waiting for its confirmation link; not used until then.
    pub pending_email: Option<String>,
    /// A [`super::NotifyMode`] as stored (`immediate`, `digest`, `off`).
    pub mode: String,
}

impl From<NotifySettings> for Preferences {
    fn from(s: NotifySettings) -> Self {
        Self {
            email: s.email,
            email_verified: s.email_verified,
            pending_email: s.pending_email,
            mode: s.notify_mode,
        }
    }
}
