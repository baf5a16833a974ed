//! `renkei admin backup DIR` and `renkei admin restore DIR`.
//!
//! A backup is a folder: the database (SQLite: `renkei.db`, a consistent copy
//! taken with `VACUUM INTO` while the server keeps writing; PostgreSQL:
//! `renkei.pgdump`, `pg_dump`'s custom format, which dumps one snapshot), then
//! the blob files the database refers to (blobs never change once written and
//! are written before the row that names them, so every blob of a committed
//! item is there to copy), the blind-index key file (deletion requests need
//! the same key), the audit key's public halves (`audit-keys.pub`: a restored
//! network signs with a key of its own, and `verify` still checks the cut the
//! old one signed), and `backup.toml` saying what is inside.
//!
//! Blobs of items deleted while the backup runs are counted as skipped. `admin
//! restore DIR` runs before the store is opened, into a new data folder (and an
//! empty PostgreSQL database, with `pg_restore`), then migrates and records the
//! restore in the audit trail.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use mailbox::store::{Store, StoreTarget};
use serde::{Deserialize, Serialize};

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
    blind_index_key: bool,
}

const MANIFEST: &str = "backup.toml";
const SQLITE_FILE: &str = "renkei.db";
const PG_FILE: &str = "renkei.pgdump";
const AUDIT_KEYS: &str = "audit-keys.pub";

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
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
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
    let key_file = settings.blind_index_key_file.exists();
    if key_file {
        let text = std::fs::read_to_string(&settings.blind_index_key_file)?;
        crate::demo::write_private(&dir.join("blind-index.key"), &text)?;
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
        blind_index_key: key_file,
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
pub async fn restore(settings: &Settings, dir: &Path) -> anyhow::Result<()> {
    let manifest: Manifest = toml::from_str(
        &std::fs::read_to_string(dir.join(MANIFEST))
            .with_context(|| format!("{} is not a Renkei backup", dir.display()))?,
    )?;
    std::fs::create_dir_all(&settings.data_dir)?;
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
    let key = dir.join("blind-index.key");
    if key.exists() {
        if settings.blind_index_key_file.exists() {
            bail!(
                "{} exists; a restored network needs its own blind-index key",
                settings.blind_index_key_file.display()
            );
        }
        crate::demo::write_private(
            &settings.blind_index_key_file,
            &std::fs::read_to_string(&key)?,
        )?;
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
