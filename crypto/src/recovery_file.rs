//! The network recovery key's offline files: never the key in clear.
//!
//! Two forms, both plain text the operator can print or copy:
//! - **passphrase**: one file holding the key locked like a person's key
//!   (OpenPGP SKESK v6, Argon2id S2K, AES-256-OCB; [`SecretKey::lock_with`]);
//! - **shares**: three files, one per named custodian, each a Shamir share
//!   (GF(256), `blahaj`) of the key's bytes; any two open the key, one alone
//!   says nothing about it.
//!
//! Every file names the network (the key's fingerprint), so shares or a
//! passphrase file of another network are refused by name, not by a failure.

use blahaj::{Share, Sharks};
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};
use crate::keys::{LockParams, LockedKey, SecretKey};

const BEGIN: &str = "-----BEGIN RENKEI RECOVERY KEY-----";
const END: &str = "-----END RENKEI RECOVERY KEY-----";
/// Shares needed to open the key, and shares made.
pub const SHARES_NEEDED: u8 = 2;
pub const SHARES_MADE: usize = 3;

/// What one recovery file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryFileKind {
    /// The key locked under a passphrase.
    Passphrase,
    /// One custodian's share (`index` 1–3).
    Share { custodian: String, index: u8 },
}

/// A recovery file read back: its kind, the network it belongs to, its data.
pub struct RecoveryFile {
    pub kind: RecoveryFileKind,
    /// The recovery key's fingerprint.
    pub network: String,
    data: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for RecoveryFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryFile")
            .field("kind", &self.kind)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

fn invalid(what: impl Into<String>) -> CryptoError {
    CryptoError::InvalidInput(what.into())
}

fn render(fields: &[(&str, String)], data: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    out.push_str(BEGIN);
    out.push('\n');
    for (k, v) in fields {
        out.push_str(&format!("{k}: {v}\n"));
    }
    let hex = Zeroizing::new(hex::encode(data));
    for chunk in hex.as_bytes().chunks(64) {
        out.push_str("data: ");
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// The key locked under `passphrase`: the content of the one recovery file.
pub fn recovery_with_passphrase(
    key: &SecretKey,
    passphrase: &[u8],
    params: LockParams,
) -> Result<Zeroizing<String>> {
    let locked = key.lock_with(passphrase, params)?;
    Ok(render(
        &[
            ("kind", "passphrase".into()),
            ("network", key.fingerprint()),
            (
                "note",
                "Renkei network recovery key, locked under a passphrase; keep offline".into(),
            ),
        ],
        locked.as_bytes(),
    ))
}

/// A custodian's name as it can stand on one line of a share file.
fn custodian_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) || name.chars().count() > 100 {
        return Err(invalid(
            "a custodian's name must be one line of 1 to 100 characters",
        ));
    }
    Ok(name.to_string())
}

/// The key split among three named custodians, any two of whom open it:
/// one file's content per custodian, in their order.
pub fn recovery_shares(key: &SecretKey, custodians: &[&str]) -> Result<Vec<Zeroizing<String>>> {
    if custodians.len() != SHARES_MADE {
        return Err(invalid("name exactly three custodians"));
    }
    let names = custodians
        .iter()
        .map(|n| custodian_name(n))
        .collect::<Result<Vec<_>>>()?;
    let tsk = key.tsk_bytes()?;
    let shares: Vec<Share> = Sharks(SHARES_NEEDED)
        .dealer(&tsk)
        .take(SHARES_MADE)
        .collect();
    let mut files = Vec::with_capacity(SHARES_MADE);
    for (n, (share, name)) in shares.iter().zip(names).enumerate() {
        let bytes = Zeroizing::new(Vec::from(share));
        files.push(render(
            &[
                ("kind", "share".into()),
                ("network", key.fingerprint()),
                ("custodian", name),
                ("share", format!("{} of {SHARES_MADE}", n + 1)),
                (
                    "note",
                    format!(
                        "Renkei network recovery key share; any {SHARES_NEEDED} shares open the key; keep offline"
                    ),
                ),
            ],
            &bytes,
        ));
    }
    Ok(files)
}

impl RecoveryFile {
    /// Reads a file written by [`recovery_with_passphrase`] or [`recovery_shares`].
    pub fn parse(text: &str) -> Result<Self> {
        let not_one = || invalid("not a Renkei recovery key file");
        let body = text
            .split_once(BEGIN)
            .and_then(|(_, rest)| rest.split_once(END))
            .map(|(body, _)| body)
            .ok_or_else(not_one)?;
        let (mut kind, mut network, mut custodian, mut index) = (None, None, None, None);
        let mut hex_data = Zeroizing::new(String::new());
        for line in body.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim() {
                "kind" => kind = Some(v.to_string()),
                "network" => network = Some(v.to_string()),
                "custodian" => custodian = Some(v.to_string()),
                "share" => index = v.split_whitespace().next().and_then(|n| n.parse().ok()),
                "data" => hex_data.push_str(v),
                _ => {}
            }
        }
        let data = Zeroizing::new(hex::decode(hex_data.as_bytes()).map_err(|_| not_one())?);
        let kind = match (kind.as_deref(), custodian, index) {
            (Some("passphrase"), _, _) => RecoveryFileKind::Passphrase,
            (Some("share"), Some(custodian), Some(index)) => {
                RecoveryFileKind::Share { custodian, index }
            }
            _ => return Err(not_one()),
        };
        Ok(RecoveryFile {
            kind,
            network: network.ok_or_else(not_one)?,
            data,
        })
    }
}

/// Opens the recovery key from its files: one passphrase file with its
/// passphrase, or shares of at least two different custodians.
pub fn open_recovery(files: &[RecoveryFile], passphrase: Option<&[u8]>) -> Result<SecretKey> {
    let first = files.first().ok_or_else(|| invalid("no recovery file"))?;
    if files.iter().any(|f| f.network != first.network) {
        return Err(invalid("these recovery files belong to different networks"));
    }
    let key = if first.kind == RecoveryFileKind::Passphrase {
        if files.len() != 1 {
            return Err(invalid("a passphrase file is used alone"));
        }
        let passphrase =
            passphrase.ok_or_else(|| invalid("this recovery file needs its passphrase"))?;
        LockedKey::from_bytes(first.data.to_vec()).unlock(passphrase)?
    } else {
        let mut shares = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for f in files {
            let RecoveryFileKind::Share { index, .. } = &f.kind else {
                return Err(invalid("a passphrase file and shares cannot be mixed"));
            };
            if seen.insert(*index) {
                shares.push(Share::try_from(f.data.as_slice()).map_err(invalid)?);
            }
        }
        if seen.len() < usize::from(SHARES_NEEDED) {
            return Err(invalid(format!(
                "{SHARES_NEEDED} shares of different custodians are needed; one share alone opens nothing"
            )));
        }
        let tsk = Zeroizing::new(
            Sharks(SHARES_NEEDED)
                .recover(shares.iter())
                .map_err(invalid)?,
        );
        SecretKey::from_tsk_bytes(&tsk).map_err(|_| invalid("these shares do not fit together"))?
    };
    if key.fingerprint() != first.network {
        return Err(invalid(
            "these recovery files do not open the key they name",
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(texts: &[&Zeroizing<String>]) -> Vec<RecoveryFile> {
        texts
            .iter()
            .map(|t| RecoveryFile::parse(t).unwrap())
            .collect()
    }

    #[test]
    fn passphrase_file_opens_only_with_its_passphrase() {
        let key = SecretKey::generate_recovery().unwrap();
        let text = recovery_with_passphrase(
            &key,
            b"correct horse battery staple",
            LockParams::insecure_for_tests(),
        )
        .unwrap();
        assert!(!text.contains(&hex::encode(&*key.tsk_bytes().unwrap())));
        let files = parse_all(&[&text]);
        assert_eq!(files[0].network, key.fingerprint());
        let opened = open_recovery(&files, Some(b"correct horse battery staple")).unwrap();
        assert_eq!(opened.fingerprint(), key.fingerprint());
        assert!(matches!(
            open_recovery(&parse_all(&[&text]), Some(b"wrong")),
            Err(CryptoError::WrongPassword)
        ));
        assert!(open_recovery(&parse_all(&[&text]), None).is_err());
    }

    #[test]
    fn any_two_shares_open_the_key_and_one_alone_does_not() {
        let key = SecretKey::generate_recovery().unwrap();
        let texts = recovery_shares(&key, &["香川 一郎", "Mori", "Ueda"]).unwrap();
        assert_eq!(texts.len(), 3);
        let tsk = key.tsk_bytes().unwrap();
        for t in &texts {
            assert!(!t.contains(&hex::encode(&*tsk)));
        }
        for (a, b) in [(0, 1), (1, 2), (0, 2)] {
            let k = open_recovery(&parse_all(&[&texts[a], &texts[b]]), None).unwrap();
            assert_eq!(k.fingerprint(), key.fingerprint());
        }
        let one = open_recovery(&parse_all(&[&texts[1]]), None);
        assert!(matches!(one, Err(CryptoError::InvalidInput(m)) if m.contains("one share alone")));
        // The same share twice is still one share.
        assert!(open_recovery(&parse_all(&[&texts[0], &texts[0]]), None).is_err());
        // Shares of two different splits do not fit together.
        let other = recovery_shares(&key, &["a", "b", "c"]).unwrap();
        assert!(open_recovery(&parse_all(&[&texts[0], &other[1]]), None).is_err());
        assert!(recovery_shares(&key, &["a", "b"]).is_err());
        assert!(recovery_shares(&key, &["a", "b\nc", "d"]).is_err());
        assert!(RecoveryFile::parse("hello").is_err());
    }
}
