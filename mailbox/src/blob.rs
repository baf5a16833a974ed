//! The blob store: a folder of sealed attachment files. Blobs are OpenPGP messages,
//! so the folder holds nothing readable. A blob is written under a temporary name,
//! synced, then renamed, so a crash never leaves a half-written blob in place.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// A blob being written; removed again unless committed.
#[derive(Debug)]
pub struct PendingBlob {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.contains("..")
        && !key.starts_with('/')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
}

impl BlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        if valid_key(key) {
            Ok(self.root.join(key))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid blob key",
            ))
        }
    }

    /// Starts a blob; returns the file to write and the handle to commit it.
    pub fn create(&self, key: &str) -> io::Result<(File, PendingBlob)> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("partial");
        let file = File::create(&tmp)?;
        Ok((
            file,
            PendingBlob {
                tmp,
                path,
                committed: false,
            },
        ))
    }

    pub fn open(&self, key: &str) -> io::Result<File> {
        File::open(self.path(key)?)
    }

    pub fn delete(&self, key: &str) -> io::Result<()> {
        match fs::remove_file(self.path(key)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// The file a key maps to (tests tamper with blobs through it).
    pub fn file_path(&self, key: &str) -> io::Result<PathBuf> {
        self.path(key)
    }
}

impl PendingBlob {
    /// Syncs the finished file and moves it into place.
    pub fn commit(mut self) -> io::Result<()> {
        File::open(&self.tmp)?.sync_all()?;
        fs::rename(&self.tmp, &self.path)?;
        if let Some(parent) = self.path.parent() {
            File::open(parent)?.sync_all()?;
        }
        self.committed = true;
        Ok(())
    }
}

/// Commits many blobs of one item: the files are synced by a few threads at
/// once (a study of thousands of files paid one fsync after another), then
/// moved into place, then each folder is synced once.
pub fn commit_all(pending: Vec<PendingBlob>) -> io::Result<()> {
    const THREADS: usize = 8;
    let per = pending.len().div_ceil(THREADS).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = pending
            .chunks(per)
            .map(|group| {
                s.spawn(move || -> io::Result<()> {
                    for p in group {
                        File::open(&p.tmp)?.sync_all()?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| io::Error::other("sync thread"))?)
    })?;
    let mut folders: Vec<PathBuf> = Vec::new();
    for mut p in pending {
        fs::rename(&p.tmp, &p.path)?;
        p.committed = true;
        if let Some(parent) = p.path.parent()
            && !folders.iter().any(|f| f == parent)
        {
            folders.push(parent.to_path_buf());
        }
    }
    for folder in folders {
        File::open(folder)?.sync_all()?;
    }
    Ok(())
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
