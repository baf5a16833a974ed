//! `renkei admin user …`: accounts, credential letters, password and
//! second-factor resets.

use mailbox::notify::Notices;
use mailbox::{Account, AccountId, Directory, Error, FacilityCode, NewAccount, Password, Result};

use mailbox::records::audit::Audit;

use super::recovery::{audit_use, witnessed_recovery};
use crate::cli::UserCommand;

fn print_account(a: &Account) {
    println!("id:               {}", a.id);
    println!("name:             {}", a.name);
    println!("role:             {}", a.role);
    println!(
        "facility:         {}",
        a.facility
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into())
    );
    println!(
        "e-mail:           {} ({})",
        a.email.as_deref().unwrap_or("-"),
        if a.email_verified {
            "verified"
        } else {
            "not verified"
        }
    );
    println!("must change pw:   {}", a.must_change_password);
    println!("locked:           {}", a.locked);
    println!("failed attempts:  {}", a.failed_attempts);
}

/// The text of a credential letter, to print and send by post.
fn credential_letter(a: &Account, facility_name: Option<&str>, password: &Password) {
    println!("==================== Renkei 利用者ID通知書 ====================");
    if let Some(name) = facility_name {
        println!("施設 / Facility:      {name}");
    }
    println!("氏名 / Name:          {}", a.name);
    println!("役割 / Role:          {} ({})", a.role.label_ja(), a.role);
    println!("ユーザーID / ID:      {}", a.id);
    println!("初期パスワード / Initial password: {}", password.expose());
    println!("初回ログイン時にパスワードの変更が必要です。");
    println!("You must change this password when you first sign in.");
    println!("===============================================================");
}

/// The credential letter as PDF, readable by the owner only (it holds a password).
fn credential_letter_pdf(
    path: &std::path::Path,
    a: &Account,
    facility_name: Option<&str>,
    password: &Password,
    reset: bool,
) -> Result<()> {
    let facility = match (&a.facility, facility_name) {
        (Some(code), Some(name)) => Some(format!("{name}（{code}）")),
        (Some(code), None) => Some(code.to_string()),
        _ => None,
    };
    let issued = (chrono::Utc::now() + chrono::Duration::hours(9))
        .format("%Y-%m-%d")
        .to_string();
    let role = format!("{}（{}）", a.role.label_ja(), a.role);
    let pdf = mailbox::pdf::credential_letter(&mailbox::pdf::CredentialLetter {
        account_id: &a.id.display_grouped(),
        name: &a.name,
        role_ja: &role,
        facility: facility.as_deref(),
        password: password.expose(),
        issued_on: &issued,
        reset,
    })?;
    crate::demo::write_private_bytes(path, &pdf).map_err(|e| Error::Internal(format!("{e:#}")))?;
    println!("credential letter PDF written to {}", path.display());
    Ok(())
}

async fn facility_name(directory: &Directory, a: &Account) -> Option<String> {
    match &a.facility {
        Some(code) => directory.facility(code).await.ok().map(|f| f.name),
        None => None,
    }
}

/// What `user add` was given.
struct UserAdd {
    role: String,
    facility: Option<String>,
    name: String,
    email: Option<String>,
    letter_pdf: Option<std::path::PathBuf>,
}

/// `user add`: the account, its credential letter, and the address's confirmation link.
async fn add_user(directory: &Directory, notices: &Notices, new: UserAdd) -> Result<()> {
    let UserAdd {
        role,
        facility,
        name,
        email,
        letter_pdf,
    } = new;
    let (account, password) = directory
        .issue_account(super::operator::actor(), || {
            Ok(NewAccount {
                role: role.parse()?,
                facility: facility.as_deref().map(FacilityCode::parse).transpose()?,
                name,
                email: email.filter(|e| !e.trim().is_empty()),
            })
        })
        .await?;
    let fname = facility_name(directory, &account).await;
    credential_letter(&account, fname.as_deref(), &password);
    if let Some(path) = letter_pdf {
        credential_letter_pdf(&path, &account, fname.as_deref(), &password, false)?;
    }
    // Notices go only to a confirmed address: mail the link now.
    if let Some(address) = &account.email {
        notices.request_confirmation(&account.id, address).await?;
        if notices.policy().enabled {
            println!("A confirmation link is being mailed to the address.");
        } else {
            println!("No mail relay is configured: the address stays unconfirmed.");
        }
    }
    Ok(())
}

/// `user reset-password`: a new password, and what the person can no longer
/// read. With the recovery key (two operators) the person keeps their key, is
/// told by a notice, and the trail names both operators.
async fn reset_password(
    (directory, notices, audit): (&Directory, &Notices, &Audit),
    id: &str,
    recovery_key: Vec<std::path::PathBuf>,
    letter_pdf: Option<std::path::PathBuf>,
) -> Result<()> {
    let with_key = !recovery_key.is_empty();
    let mut second = None;
    let (account, outcome) = directory
        .reset_account_password(super::operator::actor(), id, || {
            if !with_key {
                return Ok(None);
            }
            let (key, witness) = witnessed_recovery(&recovery_key)?;
            second = Some(witness);
            Ok(Some(key))
        })
        .await?;
    if let Some(second) = second {
        audit_use(
            audit,
            "user reset-password",
            Some(account.id.as_str().to_string()),
            second,
        )
        .await;
        notices
            .security_notice(&account.id, mailbox::notify::RECOVERY_KEY_RESET)
            .await?;
    }
    let fname = facility_name(directory, &account).await;
    credential_letter(&account, fname.as_deref(), &outcome.password);
    if let Some(path) = letter_pdf {
        credential_letter_pdf(&path, &account, fname.as_deref(), &outcome.password, true)?;
    }
    if outcome.key_replaced {
        println!(
            "WARNING: reset without the recovery key: {} has a NEW key and can no longer open {} earlier item(s) addressed to them personally:",
            account.id,
            outcome.unreadable_items.len()
        );
        for item in &outcome.unreadable_items {
            println!("  {item}");
        }
        println!(
            "Facility grants are pending again until another member signs in or `admin grants complete` runs."
        );
        if outcome.restoration_requested {
            println!(
                "A liaison of their facility can restore the earlier items on /recoveries once the person has chosen their own password."
            );
        }
    } else if with_key {
        println!("The person keeps their key: every earlier item stays readable.");
    }
    Ok(())
}

pub(super) async fn user(
    directory: &Directory,
    notices: &Notices,
    audit: &Audit,
    command: UserCommand,
) -> Result<()> {
    match command {
        UserCommand::Add {
            role,
            facility,
            name,
            email,
            letter_pdf,
        } => {
            add_user(
                directory,
                notices,
                UserAdd {
                    role,
                    facility,
                    name,
                    email,
                    letter_pdf,
                },
            )
            .await?;
        }
        UserCommand::List { facility } => {
            println!("id\trole\tfacility\tname\tlocked");
            for a in directory
                .list_accounts(super::operator::actor(), facility.as_deref())
                .await?
            {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    a.id,
                    a.role,
                    a.facility
                        .as_ref()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    a.name,
                    a.locked
                );
            }
        }
        UserCommand::Show { id } => {
            print_account(
                &directory
                    .show_account(super::operator::actor(), &id)
                    .await?,
            );
        }
        UserCommand::Lock { id, reason } => {
            let a = directory
                .lock_account(super::operator::actor(), &id, true, Some(&reason))
                .await?;
            println!("account {} locked", a.id);
        }
        UserCommand::Unlock { id } => {
            let a = directory
                .lock_account(super::operator::actor(), &id, false, None)
                .await?;
            println!("account {} unlocked", a.id);
        }
        UserCommand::ResetPassword {
            id,
            recovery_key,
            letter_pdf,
        } => reset_password((directory, notices, audit), &id, recovery_key, letter_pdf).await?,
        UserCommand::Factors => {
            println!("id\ttotp\trecovery_codes_left\tapp_passwords\tsecurity_keys");
            for r in directory.list_factors(super::operator::actor()).await? {
                let id = AccountId::parse(&r.account_id)
                    .map(|a| a.display_grouped())
                    .unwrap_or(r.account_id);
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    id,
                    if r.totp { "yes" } else { "no" },
                    r.recovery_codes_left,
                    r.app_passwords,
                    r.security_keys
                );
            }
        }
        UserCommand::ResetSecondFactor { id } => {
            let a = directory
                .reset_account_factor(super::operator::actor(), &id, || Ok(()))
                .await?;
            notices
                .security_notice(&a.id, "second_factor_reset")
                .await?;
            println!(
                "second factor of {} reset: sessions ended, the person must enrol again at the next sign-in",
                a.id
            );
        }
        UserCommand::Remove { id } => {
            let a = directory
                .remove_member(super::operator::actor(), &id)
                .await?;
            println!("account {} removed: grants deleted, account locked", a.id);
        }
    }
    Ok(())
}
