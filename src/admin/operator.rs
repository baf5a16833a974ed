//! Who runs `renkei admin`: the audit trail records that operator's account ID
//! as the actor of every command (on channel `cli`), never an anonymous `cli`.
//!
//! Three ways, checked in this order:
//! - `--operator ID` (or `RENKEI_OPERATOR`) with that operator's password in
//!   `RENKEI_OPERATOR_PASSWORD` (an environment variable, never a flag, so it
//!   is not in the process list). The password is checked like a sign-in: a
//!   wrong one counts toward the lockout, a locked or removed account is
//!   refused, and the account must be the operator's.
//! - `[admin] operator = "ID"` in the configuration file (or
//!   `RENKEI_ADMIN_OPERATOR`): the operator scheduled scripts run as, without
//!   a password. Whoever can set it can read the database settings anyway;
//!   it is attribution for scripts, checked to name an active operator.
//! - Before any operator account exists (installing: registering the first
//!   facility and the first operator), commands run as `bootstrap`.
//!
//! Otherwise the command is refused (exit 78) and says which to set.

use std::sync::OnceLock;

use mailbox::records::Actor;
use mailbox::{AccountId, Directory, Password, Role};

/// The actor of commands run before any operator account exists.
pub const BOOTSTRAP: &str = "bootstrap";

static OPERATOR: OnceLock<String> = OnceLock::new();
/// Set when the operator proved themselves with their password (not `[admin] operator`).
static CONFIRMED: OnceLock<()> = OnceLock::new();
/// The second operator a use of the recovery key needs, password checked.
static SECOND: OnceLock<String> = OnceLock::new();

/// The actor of this run's commands: the operator [`identify`] found.
pub fn actor() -> Actor<'static> {
    Actor::Cli(OPERATOR.get().map_or(BOOTSTRAP, String::as_str))
}

fn refused(problem: impl Into<String>) -> anyhow::Error {
    crate::config::bad("admin.operator", problem)
}

/// Finds and checks the operator who runs this command (see the module).
pub async fn identify(
    directory: &Directory,
    named: Option<&str>,
    configured: Option<&str>,
) -> anyhow::Result<()> {
    let id = if let Some(id) = named {
        let Ok(password) = std::env::var("RENKEI_OPERATOR_PASSWORD") else {
            return Err(refused(
                "--operator needs that operator's password in RENKEI_OPERATOR_PASSWORD",
            ));
        };
        let account = directory
            .confirm_operator(id, &Password::new(password))
            .await?;
        let _ = CONFIRMED.set(());
        account.id
    } else if let Some(id) = configured {
        let parsed =
            AccountId::parse(id).map_err(|_| refused(format!("{id:?} is not an account ID")))?;
        let account = directory
            .account(&parsed)
            .await
            .map_err(|_| refused(format!("{id} is not an account")))?;
        if account.role != Role::Operator || account.locked || account.removed {
            return Err(refused(format!("{id} is not an active operator account")));
        }
        account.id
    } else {
        let operators = directory.accounts(None).await?;
        if operators
            .iter()
            .any(|a| a.role == Role::Operator && !a.removed)
        {
            return Err(refused(
                "name the operator who runs this: --operator ID with RENKEI_OPERATOR_PASSWORD, or [admin] operator (RENKEI_ADMIN_OPERATOR) for scripts",
            ));
        }
        return Ok(());
    };
    let _ = OPERATOR.set(id.as_str().to_string());
    Ok(())
}

/// Checks the second operator named with `--second-operator` (password in
/// `RENKEI_SECOND_OPERATOR_PASSWORD`, checked like a sign-in), for the
/// commands that use the network recovery key.
pub async fn identify_second(directory: &Directory, named: Option<&str>) -> anyhow::Result<()> {
    let Some(id) = named else {
        return Ok(());
    };
    let Ok(password) = std::env::var("RENKEI_SECOND_OPERATOR_PASSWORD") else {
        return Err(crate::config::bad(
            "admin.second_operator",
            "--second-operator needs that operator's password in RENKEI_SECOND_OPERATOR_PASSWORD",
        ));
    };
    let account = directory
        .confirm_operator(id, &Password::new(password))
        .await?;
    let _ = SECOND.set(account.id.as_str().to_string());
    Ok(())
}

/// The second operator of a use of the recovery key, if two different
/// operators each proved themselves with their password on this command.
pub fn witness() -> Option<&'static str> {
    let first = OPERATOR.get()?;
    CONFIRMED.get()?;
    SECOND.get().map(String::as_str).filter(|s| *s != first)
}
