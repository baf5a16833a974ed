//! `renkei admin backup DIR` and `renkei admin restore DIR`.
//!
//! A backup is a folder: the database (SQLite: `renkei.db`, a consistent copy
//! taken with `VACUUM INTO` while the server keeps writing; PostgreSQL:
//! `renkei.pgdump`, `pg_dump`'s custom format, which dumps one snapshot), then
//! the blob files the database refers to (blobs never change once written and
//! are written before the row that names them, so every blob of a committed
//! item is there to copy), `keys.sealed`: the blind-index key (deletion
//! requests need the same key) and the second-factor key (TOTP enrolments)
//! sealed to the network recovery certificate, never in clear, so a backup
//! needs `recovery init` first; the audit key's public halves
//! (`audit-keys.pub`: a restored network signs with a key of its own, and
//! `verify` still checks the cut the old one signed), and `backup.toml`
//! saying what is inside. Every file is 0600, every folder 0700.
//!
//! Blobs of items deleted while the backup runs are counted as skipped. `admin
//! restore DIR --recovery-key …` opens the sealed keys with the recovery file
//! (passphrase or two shares) and runs before the store is opened, into a new
//! data folder (and an empty PostgreSQL database, with `pg_restore`), then
//! migrates and records the restore in the audit trail.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use mailbox::store::{Store, StoreTarget};
use renkei_crypto::SecretKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::Settings;

#[derive(Serialize, Deserialize)]
struct Manifest {
    /// `sqlite` or `postgres`.
    backend: String,
    taken_at: String,
    blobs: u64,
    /// Blobs the database named that were gone by the time they were copied
    /// (an item deleted by retention between the snapshot and the copy).
    blobs_missing: u64,
    /// The recovery certificate `keys.sealed` is sealed to (its fingerprint).
    #[serde(default)]
    keys_sealed_to: Option<String>,
}

/// What `keys.sealed` holds, in hex, as the key files do.
#[derive(Serialize, Deserialize)]
struct SealedKeys {
    blind_index_key: String,
    second_factor_key: String,
}

impl Drop for SealedKeys {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.blind_index_key.zeroize();
        self.second_factor_key.zeroize();
    }
}

const MANIFEST: &str = "backup.toml";
const SQLITE_FILE: &str = "renkei.db";
const PG_FILE: &str = "renkei.pgdump";
const AUDIT_KEYS: &str = "audit-keys.pub";
const SEALED_KEYS: &str = "keys.sealed";
/// What backups before sealed keys held in clear; read on restore only.
const LEGACY_BLIND_KEY: &str = "blind-index.key";

/// A key in hex from its environment variable, or else its file.
fn key_hex(env: &str, file: &Path) -> anyhow::Result<Zeroizing<String>> {
    if let Ok(hex) = std::env::var(env) {
        return Ok(Zeroizing::new(hex.trim().to_string()));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
    );
    Ok(Zeroizing::new(text.trim().to_string()))
}

/// The blind-index and second-factor keys sealed to the recovery certificate.
async fn seal_keys(
    settings: &Settings,
    store: &Arc<dyn Store>,
) -> anyhow::Result<(Vec<u8>, String)> {
    let Some(cert) = store.recovery_cert().await? else {
        bail!(
            "the network has no recovery key: a backup seals its keys to it. Run `renkei admin recovery init` first"
        );
    };
    let cert = renkei_crypto::Certificate::from_bytes(&cert)?;
    let keys = SealedKeys {
        blind_index_key: key_hex("RENKEI_BLIND_INDEX_KEY", &settings.blind_index_key_file)?
            .to_string(),
        second_factor_key: key_hex("RENKEI_SECOND_FACTOR_KEY", &settings.second_factor_key_file)?
            .to_string(),
    };
    let plain = Zeroizing::new(toml::to_string(&keys)?);
    let sealed = renkei_crypto::seal_bytes(plain.as_bytes(), &[&cert])?;
    Ok((sealed, cert.fingerprint()))
}

/// The keys a restore puts in place: (environment variable, file, hex).
type RestoredKeys = Vec<(&'static str, PathBuf, Zeroizing<String>)>;

/// Checks (`write` false) or writes one restored key where this node reads
/// it: its file, unless its environment variable is set (then it must hold
/// the same key).
fn place_key(
    (env, file, hex): &(&'static str, PathBuf, Zeroizing<String>),
    write: bool,
) -> anyhow::Result<()> {
    if let Ok(set) = std::env::var(env) {
        if set.trim() != hex.as_str() {
            bail!(
                "{env} holds another key than the backup's; unset it or set it to the backup's key"
            );
        }
        return Ok(());
    }
    if file.exists() {
        bail!(
            "{} exists; a restored network needs the backup's key there",
            file.display()
        );
    }
    if !write {
        return Ok(());
    }
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    crate::demo::write_private(file, hex)
}

/// Opens `keys.sealed` with the recovery key: the keys to put in place.
fn open_keys(
    settings: &Settings,
    dir: &Path,
    manifest: &Manifest,
    recovery: &SecretKey,
) -> anyhow::Result<RestoredKeys> {
    let blind = (
        "RENKEI_BLIND_INDEX_KEY",
        settings.blind_index_key_file.clone(),
    );
    let sealed = dir.join(SEALED_KEYS);
    if !sealed.exists() {
        let legacy = dir.join(LEGACY_BLIND_KEY);
        if legacy.exists() {
            let hex = Zeroizing::new(std::fs::read_to_string(&legacy)?.trim().to_string());
            return Ok(vec![(blind.0, blind.1, hex)]);
        }
        bail!("{} holds no keys", dir.display());
    }
    if manifest.keys_sealed_to.as_deref() != Some(recovery.fingerprint().as_str()) {
        bail!("this recovery key is not the one the backup's keys are sealed to");
    }
    let plain = renkei_crypto::open_bytes(&std::fs::read(&sealed)?, recovery)
        .context("opening the backup's keys with the recovery key")?;
    let text = Zeroizing::new(String::from_utf8(plain.to_vec()).context("the sealed keys")?);
    let keys: SealedKeys = toml::from_str(&text).context("the sealed keys")?;
    Ok(vec![
        (
            blind.0,
            blind.1,
            Zeroizing::new(keys.blind_index_key.clone()),
        ),
        (
            "RENKEI_SECOND_FACTOR_KEY",
            settings.second_factor_key_file.clone(),
            Zeroizing::new(keys.second_factor_key.clone()),
        ),
    ])
}

fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    std::fs::File::open(to)?.sync_all()?;
    Ok(())
}

/// Takes a backup into `dir`, which must not exist yet or be empty.
pub async fn backup(settings: &Settings, store: &Arc<dyn Store>, dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty; back up into a new folder", dir.display());
    }
    // Sealed first: without a recovery key nothing is written.
    let (sealed, sealed_to) = seal_keys(settings, store).await?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::demo::write_private_bytes(&dir.join(SEALED_KEYS), &sealed)?;
    let backend = match &settings.store {
        StoreTarget::Sqlite(_) => {
            let target = dir.join(SQLITE_FILE);
            let path = target
                .to_str()
                .context("the backup folder's path is not UTF-8")?;
            if !store.snapshot_into(path).await? {
                bail!("this store cannot snapshot itself");
            }
            "sqlite"
        }
        StoreTarget::Postgres(url) => {
            let status = tokio::process::Command::new("pg_dump")
                .arg("--format=custom")
                .arg("--no-owner")
                .arg("--file")
                .arg(dir.join(PG_FILE))
                .arg("--dbname")
                .arg(url)
                .status()
                .await
                .context("running pg_dump (Debian: postgresql-client)")?;
            if !status.success() {
                bail!("pg_dump failed: {status}");
            }
            "postgres"
        }
    };
    // Keys read after the snapshot: a superset of the snapshot's, except
    // blobs of items deleted in between, which nothing restored will need.
    let blob_root = settings.data_dir.join("blobs");
    let (mut blobs, mut missing) = (0u64, 0u64);
    for key in store.all_blob_keys().await? {
        let from = blob_root.join(&key);
        if !from.exists() {
            missing += 1;
            continue;
        }
        copy_file(&from, &dir.join("blobs").join(&key))?;
        blobs += 1;
    }
    let public = crate::evidence::checkpoint_files(settings)?.public;
    if public.exists() {
        copy_file(&public, &dir.join(AUDIT_KEYS))?;
    }
    let manifest = Manifest {
        backend: backend.into(),
        taken_at: chrono::Utc::now().to_rfc3339(),
        blobs,
        blobs_missing: missing,
        keys_sealed_to: Some(sealed_to),
    };
    std::fs::write(dir.join(MANIFEST), toml::to_string(&manifest)?)?;
    println!(
        "backup of the {backend} database and {blobs} blob file(s) written to {}",
        dir.display()
    );
    if missing > 0 {
        println!("{missing} blob file(s) of items deleted during the backup were skipped");
    }
    Ok(())
}

/// Brings a backup back into the configured data folder and database, which
/// must both be new (no database file; an empty PostgreSQL database).
pub async fn restore(settings: &Settings, dir: &Path, recovery: &SecretKey) -> anyhow::Result<()> {
    let manifest: Manifest = toml::from_str(
        &std::fs::read_to_string(dir.join(MANIFEST))
            .with_context(|| format!("{} is not a Renkei backup", dir.display()))?,
    )?;
    std::fs::create_dir_all(&settings.data_dir)?;
    if let StoreTarget::Sqlite(path) = &settings.store
        && path.exists()
    {
        bail!("{} exists; restore into a new data folder", path.display());
    }
    // Opened and checked before anything is written; written once the database is back.
    let keys = open_keys(settings, dir, &manifest, recovery)?;
    for key in &keys {
        place_key(key, false)?;
    }
    match (&settings.store, manifest.backend.as_str()) {
        (StoreTarget::Sqlite(path), "sqlite") => {
            if path.exists() {
                bail!("{} exists; restore into a new data folder", path.display());
            }
            copy_file(&dir.join(SQLITE_FILE), path)?;
        }
        (StoreTarget::Postgres(url), "postgres") => {
            let status = tokio::process::Command::new("pg_restore")
                .arg("--no-owner")
                .arg("--exit-on-error")
                .arg("--dbname")
                .arg(url)
                .arg(dir.join(PG_FILE))
                .status()
                .await
                .context("running pg_restore (Debian: postgresql-client)")?;
            if !status.success() {
                bail!("pg_restore failed: {status} (the target database must be empty)");
            }
        }
        (_, other) => {
            bail!("this backup holds a {other} database; configure the same backend to restore it")
        }
    }
    let from = dir.join("blobs");
    let mut copied = 0u64;
    if from.exists() {
        let mut stack: Vec<PathBuf> = vec![from.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let p = entry?.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(&from)?;
                    copy_file(&p, &settings.data_dir.join("blobs").join(rel))?;
                    copied += 1;
                }
            }
        }
    }
    for key in &keys {
        place_key(key, true)?;
    }
    let keys = dir.join(AUDIT_KEYS);
    if keys.exists() {
        let from = mailbox::records::checkpoint::CheckpointFiles {
            log: PathBuf::new(),
            public: keys,
        };
        let into = crate::evidence::checkpoint_files(settings)?;
        for key in from.public_keys()? {
            into.publish(&key)?;
        }
    }
    println!(
        "restored the {} database and {copied} blob file(s) from {}",
        manifest.backend,
        dir.display()
    );
    Ok(())
}
