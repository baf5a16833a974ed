//! The session as the audit trail's actor: auth knows records' `Acting`, never
//! the other way round.

use crate::account::Account;
use crate::auth::CurrentSession;
use crate::error::Result;
use crate::records::audit::{Acting, Channel};

impl Acting for CurrentSession {
    fn acting_account(&self) -> &Account {
        &self.account
    }

    fn remote_addr(&self) -> Option<String> {
        self.record.remote_addr.clone()
    }

    fn channel(&self) -> Channel {
        self.record
            .channel
            .as_deref()
            .and_then(Channel::parse)
            .unwrap_or_default()
    }

    fn ready_account(&self) -> Result<&Account> {
        self.require_ready()
    }
}
