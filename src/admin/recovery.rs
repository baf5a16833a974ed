//! The network recovery key at the command line: `recovery init` writes it
//! never in clear (under a passphrase, or as three custodians' shares of
//! which any two open it), and every use (`user reset-password
//! --recovery-key`, `grants complete`) takes two operators, each with their
//! password (`--operator`, `--second-operator`), and is audited with both.
//!
//! The passphrase is read from `RENKEI_RECOVERY_PASSPHRASE` (an environment
//! variable, never a flag, so it is not in the process list).

use std::path::{Path, PathBuf};

use mailbox::records::audit::Audit;
use mailbox::{Directory, Error, Result};
use renkei_crypto::{RecoveryFile, RecoveryFileKind, SecretKey};
use zeroize::Zeroizing;

use super::operator;
use crate::cli::{GrantsCommand, RecoveryCommand};

/// Where the passphrase of a recovery file comes from.
pub const PASSPHRASE_ENV: &str = "RENKEI_RECOVERY_PASSPHRASE";
/// The shortest passphrase `recovery init` accepts.
const MIN_PASSPHRASE_CHARS: usize = 16;

fn bad_file(en: impl Into<String>) -> Error {
    Error::invalid(
        "recovery_key",
        en,
        "復旧鍵ファイル（またはパスフレーズ・分割片）が正しくありません。",
    )
}

/// The recovery key from its files: one passphrase file (passphrase in
/// [`PASSPHRASE_ENV`]) or two custodians' share files.
pub fn read_recovery_files(paths: &[PathBuf]) -> Result<SecretKey> {
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| bad_file(format!("cannot read {}: {e}", path.display())))?,
        );
        files.push(
            RecoveryFile::parse(&text).map_err(|e| bad_file(format!("{}: {e}", path.display())))?,
        );
    }
    let passphrase = std::env::var(PASSPHRASE_ENV).ok().map(Zeroizing::new);
    if files.iter().any(|f| f.kind == RecoveryFileKind::Passphrase) && passphrase.is_none() {
        return Err(bad_file(format!(
            "this recovery file needs its passphrase in {PASSPHRASE_ENV}"
        )));
    }
    renkei_crypto::open_recovery(&files, passphrase.as_ref().map(|p| p.as_bytes()))
        .map_err(|e| bad_file(e.to_string()))
}

/// The recovery key, for a command two operators run: refused (and so
/// recorded as refused by the action that asked) unless both proved
/// themselves. Returns the key and the second operator.
pub fn witnessed_recovery(paths: &[PathBuf]) -> Result<(SecretKey, &'static str)> {
    let Some(second) = operator::witness() else {
        eprintln!(
            "the recovery key takes two operators: --operator ID with RENKEI_OPERATOR_PASSWORD and --second-operator ID (another operator) with RENKEI_SECOND_OPERATOR_PASSWORD"
        );
        return Err(Error::Forbidden);
    };
    Ok((read_recovery_files(paths)?, second))
}

/// Records who witnessed a use of the recovery key, beside the action's own entry.
pub async fn audit_use(audit: &Audit, what: &str, item: Option<String>, second: &str) {
    audit
        .admin(
            operator::actor(),
            &format!("recovery key used: {what} (second operator {second})"),
            item,
            true,
        )
        .await;
}

/// Refuses a path inside the data folder: the recovery key's files never
/// stay on the server (only the demo keeps them there, and says so).
fn outside_data_dir(out: &Path, data_dir: &Path) -> Result<()> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let resolved = std::fs::canonicalize(&parent).unwrap_or(parent);
    let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    if resolved.starts_with(&data) || out.starts_with(data_dir) {
        return Err(Error::invalid(
            "out",
            format!(
                "{} is inside the data folder; write the recovery key's files to removable media and keep them offline",
                out.display()
            ),
            "復旧鍵はデータフォルダーの外（外部媒体）に書き出し、オフラインで保管してください。",
        ));
    }
    Ok(())
}

/// The three custodians named on `--custodians`.
fn custodians(list: &str) -> Result<Vec<String>> {
    let names: Vec<String> = list
        .split([',', '、'])
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if names.len() != renkei_crypto::SHARES_MADE {
        return Err(Error::invalid(
            "custodians",
            "name exactly three custodians, comma-separated",
            "保管者を3名、カンマ区切りで指定してください。",
        ));
    }
    Ok(names)
}

/// Writes the share files into `dir`, one per custodian; returns their paths.
pub fn write_shares(key: &SecretKey, names: &[String], dir: &Path) -> Result<Vec<PathBuf>> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let texts = renkei_crypto::recovery_shares(key, &refs)
        .map_err(|e| Error::invalid("custodians", e.to_string(), "保管者名が正しくありません。"))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
    let mut paths = Vec::new();
    for (n, text) in texts.iter().enumerate() {
        let path = dir.join(format!("recovery-share-{}.txt", n + 1));
        if path.exists() {
            return Err(Error::Conflict(format!(
                "{} already exists; not overwriting it",
                path.display()
            )));
        }
        crate::demo::write_private(&path, text).map_err(|e| Error::Internal(format!("{e:#}")))?;
        paths.push(path);
    }
    Ok(paths)
}

fn passphrase() -> Result<Zeroizing<String>> {
    let p = std::env::var(PASSPHRASE_ENV).map(Zeroizing::new).map_err(|_| {
        Error::invalid(
            "passphrase",
            format!("put the recovery key's passphrase in {PASSPHRASE_ENV}, or split it with --custodians"),
            "パスフレーズを指定するか、--custodians で3名に分割してください。",
        )
    })?;
    if p.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(Error::invalid(
            "passphrase",
            format!("the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters"),
            "パスフレーズは16文字以上にしてください。",
        ));
    }
    Ok(p)
}

/// `recovery init`.
pub async fn recovery(
    directory: &Directory,
    data_dir: &Path,
    command: RecoveryCommand,
) -> Result<()> {
    let RecoveryCommand::Init {
        out,
        custodians: named,
    } = command;
    outside_data_dir(&out, data_dir)?;
    let names = named.as_deref().map(custodians).transpose()?;
    let mut written = Vec::new();
    let key = directory
        .create_recovery_key(operator::actor(), |key| {
            if let Some(names) = &names {
                written = write_shares(key, names, &out)?;
                return Ok(());
            }
            if out.exists() {
                return Err(Error::Conflict(format!(
                    "{} already exists; not overwriting it",
                    out.display()
                )));
            }
            let text = renkei_crypto::recovery_with_passphrase(
                key,
                passphrase()?.as_bytes(),
                renkei_crypto::LockParams::default(),
            )
            .map_err(|e| Error::Internal(format!("locking the recovery key: {e}")))?;
            crate::demo::write_private(&out, &text)
                .map_err(|e| Error::Internal(format!("{e:#}")))?;
            written.push(out.clone());
            Ok(())
        })
        .await?;
    println!(
        "recovery certificate stored; fingerprint {}",
        key.fingerprint()
    );
    match &names {
        Some(names) => {
            for (path, name) in written.iter().zip(names) {
                println!("share for {name}: {}", path.display());
            }
            println!(
                "any two shares open the key: give each custodian their file, keep them offline, and delete them from this machine"
            );
        }
        None => println!(
            "the key, locked under the passphrase, is in {} — move it offline and delete it from this machine",
            out.display()
        ),
    }
    Ok(())
}

/// `grants list` and `grants complete`.
pub async fn grants(directory: &Directory, audit: &Audit, command: GrantsCommand) -> Result<()> {
    match command {
        GrantsCommand::List => {
            println!("facility_code\tkey\taccount\twaiting_since");
            for g in directory.list_pending_grants(operator::actor()).await? {
                let since = chrono::DateTime::from_timestamp(g.created_at, 0)
                    .map(|d| d.to_rfc3339())
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{}",
                    g.facility_code, g.role, g.account_id, since
                );
            }
        }
        GrantsCommand::Complete { recovery_key } => {
            let mut second = None;
            let n = directory
                .complete_grants(operator::actor(), || {
                    let (key, witness) = witnessed_recovery(&recovery_key)?;
                    second = Some(witness);
                    Ok(key)
                })
                .await?;
            if let Some(second) = second {
                audit_use(audit, "grants complete", None, second).await;
            }
            println!("{n} pending grant(s) completed");
        }
    }
    Ok(())
}
