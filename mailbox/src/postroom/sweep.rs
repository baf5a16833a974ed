//! Blob sweeping: what a crash between sealing and commit left behind.
//!
//! Blobs are written before the commit, so a crash in between leaves blobs of
//! an unacknowledged submission. The sweep removes blobs no row names, at
//! start-up for files older than an hour, or on `renkei admin blobs sweep`.

use super::Postroom;
use crate::error::Result;
use crate::records::Actor;

impl Postroom {
    /// `blobs sweep` on the console: [`Postroom::sweep_orphan_blobs`], recorded.
    pub async fn sweep_blobs(&self, by: Actor<'_>, min_age: std::time::Duration) -> Result<u64> {
        let work = self.sweep_orphan_blobs(min_age);
        self.audit.console(by, "blobs sweep", None, work).await
    }

    /// Removes blobs that belong to no stored item — left by a crash between sealing
    /// and the database commit (the submission was never acknowledged) — and
    /// unfinished `*.partial` files. Only entries older than `min_age` go, so a
    /// submission in flight on another node sharing the folder is never touched.
    pub async fn sweep_orphan_blobs(&self, min_age: std::time::Duration) -> Result<u64> {
        let root = self.blobs.root().to_path_buf();
        let Ok(dirs) = std::fs::read_dir(&root) else {
            return Ok(0);
        };
        let old_enough = |p: &std::path::Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age)
        };
        let mut removed = 0;
        for dir in dirs.flatten() {
            let path = dir.path();
            let Some(id) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if !path.is_dir() || !old_enough(&path) {
                continue;
            }
            if self.store.envelope_exists(&id).await? {
                // A committed item: only leftovers of an interrupted write go.
                for f in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                    if f.path().extension().is_some_and(|e| e == "partial") && old_enough(&f.path())
                    {
                        let _ = std::fs::remove_file(f.path());
                        removed += 1;
                    }
                }
            } else if std::fs::remove_dir_all(&path).is_ok() {
                tracing::info!(
                    envelope = id,
                    "removed blobs of an unacknowledged submission"
                );
                removed += 1;
            }
        }
        Ok(removed)
    }
}
