//! File modes of what the node keeps: every file of the data folder (the
//! SQLite database, keys, blobs, certificate, backups) is 0600 and every
//! folder 0700. New ones are made so (`main` sets the umask to 077); what an
//! older version or another tool left wider is tightened at start.

use std::path::Path;

#[cfg(unix)]
fn tighten_one(path: &Path, meta: &std::fs::Metadata) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    let want = if meta.is_dir() { 0o700 } else { 0o600 };
    if mode & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))?;
    Ok(true)
}

#[cfg(not(unix))]
fn tighten_one(_: &Path, _: &std::fs::Metadata) -> std::io::Result<bool> {
    Ok(false)
}

/// Tightens `root` and everything below it (symbolic links are left alone);
/// returns how many entries were tightened.
pub fn tighten_tree(root: &Path) -> std::io::Result<u64> {
    let mut changed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        if tighten_one(&path, &meta)? {
            changed += 1;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(changed)
}

/// At start: the data folder and the key files kept elsewhere.
pub fn tighten_at_start(settings: &crate::config::Settings) {
    let mut roots = vec![settings.data_dir.clone()];
    roots.extend([
        settings.blind_index_key_file.clone(),
        settings.second_factor_key_file.clone(),
        settings.audit.key_file.clone(),
    ]);
    for root in roots {
        match tighten_tree(&root) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                path = %root.display(),
                entries = n,
                "file modes were wider than 0600/0700; tightened"
            ),
            Err(e) => {
                tracing::warn!(path = %root.display(), error = %e, "cannot tighten file modes")
            }
        }
    }
}
