//! Deployment packages on disk: `code/<hex sha256>.zip` and its unpacked `code/<hex sha256>/`.
//!
//! A package is validated while it is unpacked into a private temporary directory, every file
//! and directory is fsynced, and only then is the directory renamed into place, so a visible
//! `code/<hex>/` is always complete. Symlinks are refused outright (rather than checked for
//! escaping the tree), and since none are ever created, no later entry can write through one.
//!
//! Permissions: unix mode bits from the zip are kept (an executable `bootstrap` stays
//! executable) minus group/other write. Entries without unix modes get 0644 (files) and 0755
//! (directories). A root `bootstrap` without any execute bit is made 0755, because zips built
//! on Windows carry DOS attributes that read as 0664 and Gust can never run such a bootstrap.
//!
//! This module does blocking I/O; callers run it on a blocking thread.

use std::fs::{self, File, OpenOptions};
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// Lambda's message for a package that is not a readable zip.
pub(crate) const UNZIP_FAILED: &str =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name for a temporary sibling that no other writer (thread or process) will pick.
fn tmp_name(prefix: &str, hex: &str) -> String {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".tmp-{prefix}-{hex}-{}-{n}", std::process::id())
}

/// Hex SHA-256 of a package.
pub(crate) fn code_id(zip: &[u8]) -> String {
    hex::encode(Sha256::digest(zip))
}

/// Removes temporaries left by a crash in the middle of [`put_code`].
pub(crate) fn clean_temporaries(code_root: &Path) {
    let Ok(entries) = fs::read_dir(code_root) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
            continue;
        }
        let path = entry.path();
        let result = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove temporary code file");
        }
    }
}

/// Stores and unpacks a package under `code_root`; returns its hex SHA-256. Idempotent.
pub(crate) fn put_code(code_root: &Path, zip: &[u8], max_unzipped: u64) -> Result<String> {
    let hex = code_id(zip);
    let zip_path = code_root.join(format!("{hex}.zip"));
    let dir_path = code_root.join(&hex);
    if zip_path.is_file() && dir_path.is_dir() {
        return Ok(hex);
    }

    // Validate and unpack first: a rejected package leaves nothing behind.
    let tmp_dir = code_root.join(tmp_name("dir", &hex));
    if let Err(e) = unpack(zip, &tmp_dir, max_unzipped) {
        let _ = fs::remove_dir_all(&tmp_dir);
        return Err(e);
    }

    let tmp_zip = code_root.join(tmp_name("zip", &hex));
    let written = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp_zip)?;
        f.write_all(zip)?;
        f.set_permissions(fs::Permissions::from_mode(0o444))?;
        f.sync_all()?;
        fs::rename(&tmp_zip, &zip_path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp_zip);
        let _ = fs::remove_dir_all(&tmp_dir);
        return Err(e.into());
    }

    if let Err(e) = fs::rename(&tmp_dir, &dir_path) {
        // A concurrent put of the same package won the race; its copy is identical.
        let _ = fs::remove_dir_all(&tmp_dir);
        if !dir_path.is_dir() {
            return Err(e.into());
        }
    }
    File::open(code_root)?.sync_all()?;
    Ok(hex)
}

/// What an entry's path is after checking it stays inside the package.
fn safe_relative_path(name: &str) -> Option<PathBuf> {
    if name.contains('\0') || name.contains('\\') {
        return None;
    }
    let mut out = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidPackage(msg.into())
}

/// Unpacks `zip` into `dest` (which must not exist), validating every entry.
fn unpack(zip: &[u8], dest: &Path, max_unzipped: u64) -> Result<()> {
    let too_big = || {
        invalid(format!(
            "Unzipped size must be smaller than {max_unzipped} bytes"
        ))
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|e| {
        tracing::debug!(error = %e, "rejected package");
        invalid(UNZIP_FAILED)
    })?;

    // Declared sizes first, so an obviously oversized package costs no disk writes; the real
    // byte count is enforced while copying, since declared sizes can lie.
    let mut declared = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|_| invalid(UNZIP_FAILED))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > max_unzipped {
        return Err(too_big());
    }

    fs::create_dir(dest)?;
    let mut dirs: Vec<(PathBuf, u32)> = vec![(dest.to_path_buf(), 0o755)];
    let mut remaining = max_unzipped;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| {
            tracing::debug!(error = %e, "rejected package entry");
            invalid(UNZIP_FAILED)
        })?;
        let name = entry.name().to_string();
        let rel = safe_relative_path(&name)
            .ok_or_else(|| invalid(format!("the entry {name:?} points outside the package")))?;
        if entry.is_symlink() {
            return Err(invalid(format!(
                "the entry {name:?} is a symbolic link, which packages may not contain"
            )));
        }
        let mode = entry
            .unix_mode()
            .map(|m| m & 0o7777)
            .filter(|m| m & 0o777 != 0);
        if rel.as_os_str().is_empty() {
            continue;
        }
        let path = dest.join(&rel);
        if entry.is_dir() {
            create_dirs(dest, &rel, &mut dirs)?;
            let mode = mode.map_or(0o755, |m| m | 0o700) & !0o7022;
            if let Some(d) = dirs.iter_mut().find(|(p, _)| *p == path) {
                d.1 = mode;
            }
            continue;
        }
        if let Some(parent) = rel.parent() {
            create_dirs(dest, parent, &mut dirs)?;
        }
        let is_root_bootstrap = rel == Path::new("bootstrap");
        let mut mode = mode.map_or(0o644, |m| m | 0o400);
        if is_root_bootstrap && mode & 0o111 == 0 {
            mode = 0o755;
        }
        // No setuid/setgid/sticky, and nothing writable by group or other.
        let mode = mode & 0o755;

        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    invalid(format!("the entry {name:?} appears more than once"))
                } else {
                    e.into()
                }
            })?;
        loop {
            let n = entry.read(&mut buf).map_err(|e| {
                tracing::debug!(error = %e, entry = %name, "rejected package entry data");
                invalid(UNZIP_FAILED)
            })?;
            if n == 0 {
                break;
            }
            remaining = remaining.checked_sub(n as u64).ok_or_else(too_big)?;
            file.write_all(&buf[..n])?;
        }
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
    }
    // Deepest first, so a parent made read-only cannot stop its children being synced.
    dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (dir, mode) in &dirs {
        fs::set_permissions(dir, fs::Permissions::from_mode(*mode))?;
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Creates `rel` and its missing ancestors under `dest`, remembering each with mode 0755.
fn create_dirs(dest: &Path, rel: &Path, dirs: &mut Vec<(PathBuf, u32)>) -> Result<()> {
    let mut path = dest.to_path_buf();
    for part in rel.components() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(invalid(format!(
                    "the entry {:?} is both a file and a directory",
                    rel.display()
                )));
            }
            Err(_) => {
                fs::create_dir(&path)?;
                dirs.push((path.clone(), 0o755));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_confined() {
        assert_eq!(
            safe_relative_path("a/b.txt"),
            Some(PathBuf::from("a/b.txt"))
        );
        assert_eq!(safe_relative_path("./a"), Some(PathBuf::from("a")));
        assert_eq!(safe_relative_path("../evil"), None);
        assert_eq!(safe_relative_path("a/../../evil"), None);
        assert_eq!(safe_relative_path("a/../b"), None);
        assert_eq!(safe_relative_path("/etc/passwd"), None);
        assert_eq!(safe_relative_path("a\\..\\b"), None);
    }
}
