//! Artifact storage on local disk: the I/O edge of [`crate::artifact`].
//!
//! Layout `<root>/<kind>/<namespace>/<name>/<digest-hex>.tar.gz`, as Flux's storage does, so the file name
//! is the content address and a stored file never changes. Writes go to a hidden temp file in the same
//! directory, are fsynced, renamed into place, and the directory is fsynced: a crash or full disk leaves
//! either the old artifact or the new one, never a torn file, and never removes the last good one.
//!
//! All calls are blocking file I/O; from async code run them in `tokio::task::spawn_blocking`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::build::BuiltArtifact;
use super::served::ServedFiles;
use crate::api::artifact::Artifact;
use crate::atomic_file::AtomicWrite;

/// Suffix of stored archives.
pub const ARCHIVE_SUFFIX: &str = ".tar.gz";
/// Prefix of in-progress writes; hidden so the artifact server never serves them.
const TEMP_PREFIX: &str = ".tmp-";
/// Temp files older than this are leftovers of a crash and are removed by [`Storage::gc`].
const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// Why a storage operation failed. Messages carry the operation and the path, so a full disk reads as
/// `storage: writing "/data/...": No space left on device (os error 28)`.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A kind/namespace/name that could leave the storage root or is not a plain name.
    #[error("storage: refusing unsafe {what} {value:?}")]
    UnsafeName { what: &'static str, value: String },
    /// A path that resolves outside the storage root (for example through a symlink).
    #[error("storage: path {path:?} is outside the storage root")]
    OutsideRoot { path: PathBuf },
    /// Only `sha256:<64 lowercase hex>` digests are produced and checked.
    #[error("storage: unsupported digest {0:?} (want sha256:<64 hex>)")]
    BadDigest(String),
}

impl StorageError {
    fn io<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> StorageError + 'p {
        move |source| StorageError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where an artifact landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredArtifact {
    /// Relative to the root, `/`-separated: `<kind>/<ns>/<name>/<hex>.tar.gz`.
    pub path: String,
    /// `http://<advertised-addr>/<path>`.
    pub url: String,
    pub size: u64,
    /// `sha256:<hex>`.
    pub digest: String,
}

impl StoredArtifact {
    /// The Flux status shape for this artifact (`last_update_time` is RFC 3339, chosen by the caller
    /// because this module keeps no clock).
    pub fn to_status(&self, built: &BuiltArtifact, last_update_time: String) -> Artifact {
        Artifact {
            digest: self.digest.clone(),
            path: self.path.clone(),
            url: self.url.clone(),
            revision: built.revision.clone(),
            last_update_time,
            size: i64::try_from(self.size).ok(),
            metadata: built.metadata.clone(),
        }
    }
}

/// The artifact store rooted at one directory.
#[derive(Clone, Debug)]
pub struct Storage {
    root: PathBuf,
    advertised_addr: String,
    /// What the artifact server keeps in memory; told of every write and delete here.
    served: ServedFiles,
}

impl Storage {
    /// `advertised_addr` is `host:port` (Flux's `--storage-adv-addr`); an `http(s)://` prefix is kept.
    pub fn new(root: PathBuf, advertised_addr: String) -> Self {
        let advertised_addr = advertised_addr.trim_end_matches('/').to_string();
        Self {
            root,
            advertised_addr,
            served: ServedFiles::default(),
        }
    }

    /// Tells `served` (the artifact server's memory) of every file this storage writes or deletes.
    pub fn with_served(mut self, served: ServedFiles) -> Self {
        self.served = served;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The URL an artifact at relative `path` is served from.
    pub fn url_for(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        if self.advertised_addr.starts_with("http://")
            || self.advertised_addr.starts_with("https://")
        {
            format!("{}/{path}", self.advertised_addr)
        } else {
            format!("http://{}/{path}", self.advertised_addr)
        }
    }

    /// Relative path of an artifact (no I/O).
    pub fn relative_path(
        kind: &str,
        namespace: &str,
        name: &str,
        digest: &str,
    ) -> Result<String, StorageError> {
        check_component("kind", kind)?;
        check_component("namespace", namespace)?;
        check_component("name", name)?;
        let hex = digest_hex(digest)?;
        Ok(format!("{kind}/{namespace}/{name}/{hex}{ARCHIVE_SUFFIX}"))
    }

    fn object_dir(&self, kind: &str, namespace: &str, name: &str) -> Result<PathBuf, StorageError> {
        check_component("kind", kind)?;
        check_component("namespace", namespace)?;
        check_component("name", name)?;
        Ok(self.root.join(kind).join(namespace).join(name))
    }

    /// Resolves a relative artifact path, refusing anything that is not plain `/`-separated components
    /// (checked on the raw string: `Path::components` would silently drop `.` segments).
    fn resolve(&self, relative: &str) -> Result<PathBuf, StorageError> {
        let unsafe_path = || StorageError::UnsafeName {
            what: "path",
            value: relative.to_string(),
        };
        let mut out = self.root.clone();
        for part in relative.split('/') {
            check_component("path component", part).map_err(|_| unsafe_path())?;
            out.push(part);
        }
        Ok(out)
    }

    /// Creates `<root>/<kind>/<ns>/<name>` one level at a time, refusing any existing level that
    /// resolves (through a symlink) outside the root before anything is created through it.
    fn create_object_dir(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<PathBuf, StorageError> {
        let dir = self.object_dir(kind, namespace, name)?;
        fs::create_dir_all(&self.root)
            .map_err(StorageError::io("creating directory", &self.root))?;
        let root =
            fs::canonicalize(&self.root).map_err(StorageError::io("resolving", &self.root))?;
        let mut current = self.root.clone();
        for part in [kind, namespace, name] {
            current.push(part);
            match fs::create_dir(&current) {
                Ok(()) => continue,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StorageError::io("creating directory", &current)(e)),
            }
            let real =
                fs::canonicalize(&current).map_err(StorageError::io("resolving", &current))?;
            if !real.starts_with(&root) {
                return Err(StorageError::OutsideRoot { path: current });
            }
            if !real.is_dir() {
                return Err(StorageError::Io {
                    op: "creating directory",
                    path: current,
                    source: io::Error::other("exists and is not a directory"),
                });
            }
        }
        Ok(dir)
    }

    /// Stores `artifact` for the object `kind/namespace/name`. Atomic; a no-op when a file with the same
    /// digest and intact content is already there.
    pub fn store(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        artifact: &BuiltArtifact,
    ) -> Result<StoredArtifact, StorageError> {
        let relative = Self::relative_path(kind, namespace, name, &artifact.digest)?;
        let dir = self.create_object_dir(kind, namespace, name)?;
        let final_path = self.resolve(&relative)?;
        let stored = StoredArtifact {
            url: self.url_for(&relative),
            path: relative,
            size: artifact.bytes.len() as u64,
            digest: artifact.digest.clone(),
        };
        if self.verify_file(&final_path, &artifact.digest)? {
            return Ok(stored);
        }

        debug_assert!(final_path.starts_with(&dir));
        AtomicWrite {
            temp_prefix: TEMP_PREFIX,
            durable: true,
            private: true,
        }
        .write(&final_path, &artifact.bytes)
        .map_err(|e| StorageError::io(e.op, &e.path)(e.source))?;
        // Same name, so same content, unless the old file was damaged: never serve that from memory.
        self.served.forget(&stored.path);
        Ok(stored)
    }

    /// The stored artifact with `digest` for an object, if present (not verified; see [`Self::verify`]).
    pub fn artifact_for(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        digest: &str,
    ) -> Result<Option<StoredArtifact>, StorageError> {
        let relative = Self::relative_path(kind, namespace, name, digest)?;
        let path = self.resolve(&relative)?;
        match fs::symlink_metadata(&path) {
            Ok(md) if md.is_file() => Ok(Some(StoredArtifact {
                url: self.url_for(&relative),
                path: relative,
                size: md.len(),
                digest: digest.to_string(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("inspecting", &path)(e)),
        }
    }

    /// Whether the file at relative `path` exists and has `digest`. Missing → `Ok(false)`.
    pub fn verify(&self, path: &str, digest: &str) -> Result<bool, StorageError> {
        let full = self.resolve(path)?;
        self.verify_file(&full, digest)
    }

    fn verify_file(&self, full: &Path, digest: &str) -> Result<bool, StorageError> {
        let want = digest_hex(digest)?;
        let mut file = match File::open(full) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StorageError::io("opening", full)(e)),
        };
        let md = file
            .metadata()
            .map_err(StorageError::io("inspecting", full))?;
        if !md.is_file() {
            return Ok(false);
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(StorageError::io("reading", full))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hex::encode(hasher.finalize()) == want)
    }

    /// Checks every stored archive against the digest in its name, removing the corrupt ones so the
    /// next reconcile rebuilds them. Returns `(relative path, ok)` for each archive found. Meant for
    /// start-up: storage on a persistent volume may hold files torn by a node crash before this
    /// controller fsynced, or edited by hand.
    pub fn verify_all(&self) -> Vec<(String, bool)> {
        let mut results = Vec::new();
        for (relative, full, hex) in self.walk_archives() {
            let ok = matches!(self.verify_file(&full, &format!("sha256:{hex}")), Ok(true));
            if !ok {
                let _ = fs::remove_file(&full);
                self.served.forget(&relative);
            }
            results.push((relative, ok));
        }
        results.sort();
        results
    }

    /// `(relative, full, hex)` of every `<kind>/<ns>/<name>/<hex>.tar.gz` under the root.
    fn walk_archives(&self) -> Vec<(String, PathBuf, String)> {
        let mut out = Vec::new();
        for kind in list_dirs(&self.root) {
            for ns in list_dirs(&self.root.join(&kind)) {
                for name in list_dirs(&self.root.join(&kind).join(&ns)) {
                    let dir = self.root.join(&kind).join(&ns).join(&name);
                    let Ok(entries) = fs::read_dir(&dir) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let Ok(file) = entry.file_name().into_string() else {
                            continue;
                        };
                        let Some(hex) = file.strip_suffix(ARCHIVE_SUFFIX) else {
                            continue;
                        };
                        if !is_sha256_hex(hex) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                            continue;
                        }
                        out.push((
                            format!("{kind}/{ns}/{name}/{file}"),
                            entry.path(),
                            hex.to_string(),
                        ));
                    }
                }
            }
        }
        out
    }

    /// Garbage-collects an object's directory: keeps `current` (a relative path as in the status) plus the
    /// `keep_recent` most recently written other archives, deletes the rest and stale temp files.
    /// Returns the relative paths deleted. Never deletes `current`.
    pub fn gc(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        current: &str,
        keep_recent: usize,
    ) -> Result<Vec<String>, StorageError> {
        let dir = self.object_dir(kind, namespace, name)?;
        let current_file = Path::new(current).file_name().map(|f| f.to_os_string());
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StorageError::io("listing", &dir)(e)),
        };
        let now = SystemTime::now();
        let mut archives: Vec<(SystemTime, String)> = Vec::new();
        let mut deleted = Vec::new();
        for entry in entries {
            let entry = entry.map_err(StorageError::io("listing", &dir))?;
            let file_name = entry.file_name();
            let Some(file) = file_name.to_str() else {
                continue;
            };
            let Ok(md) = entry.metadata() else {
                continue;
            };
            if !md.is_file() {
                continue;
            }
            let modified = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if file.starts_with(TEMP_PREFIX) {
                if now
                    .duration_since(modified)
                    .is_ok_and(|age| age > STALE_TEMP_AGE)
                {
                    let path = entry.path();
                    fs::remove_file(&path).map_err(StorageError::io("removing", &path))?;
                    deleted.push(format!("{kind}/{namespace}/{name}/{file}"));
                }
                continue;
            }
            if !file.ends_with(ARCHIVE_SUFFIX)
                || Some(file_name.as_os_str()) == current_file.as_deref()
            {
                continue;
            }
            archives.push((modified, file.to_string()));
        }
        // Newest first; name breaks ties so the outcome does not depend on directory order.
        archives.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, file) in archives.into_iter().skip(keep_recent) {
            let path = dir.join(&file);
            fs::remove_file(&path).map_err(StorageError::io("removing", &path))?;
            let relative = format!("{kind}/{namespace}/{name}/{file}");
            self.served.forget(&relative);
            deleted.push(relative);
        }
        Ok(deleted)
    }

    /// Deletes every artifact of an object (on ConfigHubRepository deletion). Missing is fine.
    pub fn remove_object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<(), StorageError> {
        let dir = self.object_dir(kind, namespace, name)?;
        // After the deletion, whatever its outcome: a file it removed must not be served from memory.
        let _forget = ForgetOnDrop(&self.served, format!("{kind}/{namespace}/{name}"));
        match fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::io("inspecting", &dir)(e)),
            Ok(md) if !md.is_dir() => {
                // A symlink or file where a directory should be: remove the entry, never follow it.
                return fs::remove_file(&dir).map_err(StorageError::io("removing", &dir));
            }
            Ok(_) => {}
        }
        fs::remove_dir_all(&dir).map_err(StorageError::io("removing", &dir))?;
        // Tidy the namespace directory when it became empty; failure (not empty) is expected.
        if let Some(parent) = dir.parent() {
            let _ = fs::remove_dir(parent);
        }
        Ok(())
    }
}

/// Forgets a directory's files when dropped, i.e. after every return path of a deletion.
struct ForgetOnDrop<'a>(&'a ServedFiles, String);

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.forget_under(&self.1);
    }
}

fn list_dirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| check_component("dir", n).is_ok())
        .collect();
    out.sort();
    out
}

/// A single plain path component: Kubernetes names are DNS-safe, but never trust that.
fn check_component(what: &'static str, value: &str) -> Result<(), StorageError> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StorageError::UnsafeName {
            what,
            value: value.to_string(),
        })
    }
}

fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn digest_hex(digest: &str) -> Result<&str, StorageError> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if is_sha256_hex(hex) => Ok(hex),
        _ => Err(StorageError::BadDigest(digest.to_string())),
    }
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
