//! Writing the configuration file so that a crash at any instant leaves either the old or the
//! new version, never a torn one: a temporary file in the same directory, fsync, the previous
//! version kept as `NAME.bak`, rename over the old name, fsync of the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The backup's path: `xlagg.toml` -> `xlagg.toml.bak`.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".bak");
    PathBuf::from(name)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// How a write ended once the new version is in place.
#[derive(Debug)]
#[must_use]
pub enum Written {
    /// In place and on disk.
    Durable,
    /// In place (every reader sees the new version), but the directory could not be synced:
    /// a power loss before the next sync may bring the old version back. The caller keeps the
    /// change (file and running state agree) and warns.
    NotDurable(io::Error),
}

/// Replaces the file at `path` with `text` atomically (readable by root only), keeping the
/// previous contents as `path.bak`.
///
/// # Errors
/// Any I/O error before the new version is in place, with the path; the file at `path` is then
/// unchanged. After the rename nothing is an error: see [`Written::NotDurable`].
pub fn write_atomic(path: &Path, text: &str) -> io::Result<Written> {
    write_atomic_with(path, text, sync_dir)
}

fn write_atomic_with(
    path: &Path,
    text: &str,
    sync_dir: impl Fn(&Path) -> io::Result<()>,
) -> io::Result<Written> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let annotate = |what: &str, p: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
    };
    let tmp = with_suffix(path, &format!(".tmp.{}", std::process::id()));
    if let Ok(old) = fs::read(path) {
        let bak = backup_path(path);
        let bak_tmp = with_suffix(&bak, &format!(".tmp.{}", std::process::id()));
        write_synced(&bak_tmp, &old).map_err(|e| annotate("writing", &bak_tmp, e))?;
        fs::rename(&bak_tmp, &bak).map_err(|e| annotate("renaming to", &bak, e))?;
    }
    if let Err(e) = write_synced(&tmp, text.as_bytes()) {
        let _ = fs::remove_file(&tmp);
        return Err(annotate("writing", &tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(annotate("renaming to", path, e));
    }
    Ok(match sync_dir(&dir) {
        Ok(()) => Written::Durable,
        Err(e) => Written::NotDurable(annotate("syncing", &dir, e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_keeps_a_backup_and_is_root_only() {
        let dir = std::env::temp_dir().join(format!("xlagg-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("xlagg.toml");
        assert!(matches!(write_atomic(&path, "one\n"), Ok(Written::Durable)));
        assert!(!backup_path(&path).exists());
        assert!(matches!(write_atomic(&path, "two\n"), Ok(Written::Durable)));
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(fs::read_to_string(backup_path(&path)).unwrap(), "one\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_directory_sync_after_the_rename_is_not_a_failed_write() {
        let dir = std::env::temp_dir().join(format!("xlagg-store-sync-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("xlagg.toml");
        assert!(matches!(write_atomic(&path, "one\n"), Ok(Written::Durable)));
        let failing = |_: &Path| Err(io::Error::other("EIO"));
        match write_atomic_with(&path, "two\n", failing) {
            Ok(Written::NotDurable(e)) => assert!(e.to_string().contains("syncing"), "{e}"),
            other => panic!("the new version is in place, so not an error: {other:?}"),
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_write_that_cannot_complete_leaves_the_old_version() {
        let dir = std::env::temp_dir().join(format!("xlagg-store-full-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("xlagg.toml");
        assert!(matches!(write_atomic(&path, "one\n"), Ok(Written::Durable)));
        // A directory where the temporary file would go: the write fails before the rename.
        let tmp = with_suffix(&path, &format!(".tmp.{}", std::process::id()));
        fs::create_dir_all(&tmp).unwrap();
        assert!(write_atomic(&path, "two\n").is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "one\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
