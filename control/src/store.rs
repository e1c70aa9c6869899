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

/// Replaces the file at `path` with `text` atomically (readable by root only), keeping the
/// previous contents as `path.bak`.
///
/// # Errors
/// Any I/O error, with the path; the file at `path` is then unchanged.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
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
    sync_dir(&dir).map_err(|e| annotate("syncing", &dir, e))
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
        write_atomic(&path, "one\n").unwrap();
        assert!(!backup_path(&path).exists());
        write_atomic(&path, "two\n").unwrap();
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
}
