//! Writing a file so that readers see the old content or the new one, never a part of it: a temp file
//! in the same directory, then a rename. Used by the artifact storage, the unit-data cache and `pack`,
//! which differ only in how durable and how private the result must be.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How a write is done.
#[derive(Clone, Copy, Debug)]
pub struct AtomicWrite<'a> {
    /// Temp files are named `<temp_prefix><pid>-<counter>`, so a garbage collector can find leftovers.
    pub temp_prefix: &'a str,
    /// fsync the file before the rename and the directory after it: the new content survives a crash.
    pub durable: bool,
    /// Mode 0600 (Unix): for content that may hold secrets.
    pub private: bool,
}

/// Which step failed, on which path.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path:?}: {source}")]
pub struct WriteError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl AtomicWrite<'_> {
    /// Replaces `path` with `bytes`. The directory must exist. On failure the temp file is removed and
    /// `path` is untouched.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
        let fail = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| WriteError { op, path, source }
        };
        let dir = path
            .parent()
            .ok_or_else(|| fail("writing", path)(io::Error::other("path has no parent")))?;
        let temp = dir.join(format!(
            "{}{}-{}",
            self.temp_prefix,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .map_err(fail("creating", &temp))?;
            if self.private {
                set_private(&file).map_err(fail("setting permissions on", &temp))?;
            }
            file.write_all(bytes).map_err(fail("writing", &temp))?;
            if self.durable {
                file.sync_all().map_err(fail("syncing", &temp))?;
            }
            fs::rename(&temp, path).map_err(fail("renaming into place", path))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written?;
        if self.durable {
            // On Linux the directory entry lives in the directory's own data.
            sync_dir(dir).map_err(fail("syncing directory", dir))?;
        }
        Ok(())
    }
}

#[cfg(unix)]
fn set_private(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: AtomicWrite<'static> = AtomicWrite {
        temp_prefix: ".tmp-",
        durable: true,
        private: true,
    };

    #[test]
    fn replaces_the_file_and_leaves_no_temp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        PLAIN.write(&path, b"one").unwrap();
        PLAIN.write(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_names_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        PLAIN.write(&path, b"old").unwrap();
        // Renaming a file onto a non-empty directory fails after the temp file was written.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), b"x").unwrap();
        let err = PLAIN.write(&blocked, b"new").unwrap_err();
        assert_eq!(err.op, "renaming into place");
        assert!(err.to_string().contains("blocked"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .count();
        assert_eq!(leftovers, 0);
        let missing = PLAIN
            .write(&dir.path().join("no-such-dir").join("f"), b"x")
            .unwrap_err();
        assert_eq!(missing.op, "creating");
    }
}
