//! DESIGN.md's "who may do what", as one table the services check before they
//! act, so every path (API, pages, IMAP) is refused the same way and the
//! handlers never decide it on their own.
//!
//! The finer rules (own items only, the thread's relation, the facility) stay
//! with each service; this table says which role may attempt an action at all.

use crate::account::{Account, Role};
use crate::error::{Error, Result};
use crate::workflow::{Step, ThreadKind};

/// What someone tries to do, as the role table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send a new item or open a thread.
    Send,
    /// Reply, report, decline, accept, withdraw, acknowledge, pathway stages.
    ActOnItem,
    /// Forward an item to a doctor of the own facility.
    Forward,
    /// Claim, release, assign or unassign a shared-inbox item.
    WorkSharedInbox,
    /// Accept, reschedule or cancel a booking.
    Booking,
    /// List a facility's bookable equipment or clinic slots.
    ManageResources,
    /// Facilities, accounts, locks, deletion requests.
    RunNetwork,
}

impl Action {
    pub const ALL: [Self; 7] = [
        Self::Send,
        Self::ActOnItem,
        Self::Forward,
        Self::WorkSharedInbox,
        Self::Booking,
        Self::ManageResources,
        Self::RunNetwork,
    ];

    /// The action a thread step is: bookings' steps are bookings.
    pub fn of_step(kind: ThreadKind, step: Step) -> Self {
        match (kind, step) {
            (ThreadKind::Booking, Step::Confirm | Step::Propose | Step::Cancel) => Self::Booking,
            _ => Self::ActOnItem,
        }
    }

    fn label_ja(self) -> &'static str {
        match self {
            Self::Send => "送信",
            Self::ActOnItem => "返信・報告などの操作",
            Self::Forward => "転送",
            Self::WorkSharedInbox => "共有受信箱の担当・割り当て",
            Self::Booking => "予約の受付・変更・取消",
            Self::ManageResources => "予約枠の登録",
            Self::RunNetwork => "施設・アカウントの管理",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::ActOnItem => "act_on_item",
            Self::Forward => "forward",
            Self::WorkSharedInbox => "work_shared_inbox",
            Self::Booking => "booking",
            Self::ManageResources => "manage_resources",
            Self::RunNetwork => "run_network",
        }
    }
}

/// Whether `role` may attempt `action` at all (DESIGN.md, "Who may do what").
pub fn permits(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        // Own items: read, reply, report, decline, forward; bookings they made.
        Role::Doctor => matches!(action, Send | ActOnItem | Forward | Booking),
        // Sends nothing, changes nothing except bookings.
        Role::Clerk => matches!(action, Booking),
        // Own items, the shared inbox and bookings.
        Role::Liaison => matches!(
            action,
            Send | ActOnItem | Forward | WorkSharedInbox | Booking | ManageResources
        ),
        // Runs the network; never reads or writes content.
        Role::Operator => matches!(action, RunNetwork),
    }
}

/// Refuses `action` for the account's role with [`Error::RoleForbids`].
pub fn require(account: &Account, action: Action) -> Result<()> {
    if permits(account.role, action) {
        Ok(())
    } else {
        tracing::warn!(
            account = account.id.as_str(),
            role = account.role.as_str(),
            action = action.as_str(),
            "refused by the role table"
        );
        Err(Error::RoleForbids {
            role: account.role,
            action,
        })
    }
}

/// The refusal's Japanese message: who may not do what.
pub(crate) fn refusal_ja(role: Role, action: Action) -> String {
    let hint = match role {
        Role::Clerk => "事務員IDでは送信や変更はできません（予約の受付・変更・取消を除く）。",
        Role::Operator => "運営者IDでは診療情報を扱えません。",
        Role::Doctor | Role::Liaison => "",
    };
    format!(
        "{}のアカウントでは「{}」はできません。{hint}",
        role.label_ja(),
        action.label_ja()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_the_design() {
        // (role, actions allowed), straight from DESIGN.md's table.
        let table = [
            (
                Role::Doctor,
                &[
                    Action::Send,
                    Action::ActOnItem,
                    Action::Forward,
                    Action::Booking,
                ][..],
            ),
            (Role::Clerk, &[Action::Booking][..]),
            (
                Role::Liaison,
                &[
                    Action::Send,
                    Action::ActOnItem,
                    Action::Forward,
                    Action::WorkSharedInbox,
                    Action::Booking,
                    Action::ManageResources,
                ][..],
            ),
            (Role::Operator, &[Action::RunNetwork][..]),
        ];
        for (role, allowed) in table {
            for action in Action::ALL {
                assert_eq!(
                    permits(role, action),
                    allowed.contains(&action),
                    "{role:?} {action:?}"
                );
            }
        }
        assert!(refusal_ja(Role::Clerk, Action::Send).contains("事務員"));
    }
}
