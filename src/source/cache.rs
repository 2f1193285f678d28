//! A persistent, content-addressed cache of unit data under the storage path, keyed by ConfigHub's
//! `DataHash` (the sha256 of the bytes), so an unchanged unit is never downloaded twice — also across
//! restarts. Entries verify themselves on read: a corrupt file is dropped and fetched again.
//!
//! Revisions are immutable, so `(UnitID, RevisionNum) → DataHash` is cached too; `LastReleased` mode then
//! needs no revision look-up for a unit whose released revision has not moved.
//!
//! The layout carries a version in `<root>/FORMAT`. A cache without one is the first releases' layout,
//! which is version 1, and is adopted as it is; a cache of any other version (a newer controller's, or
//! an unreadable file) is emptied and refilled from ConfigHub: nothing in it is lost that cannot be
//! fetched again.

use crate::atomic_file::AtomicWrite;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Clone, Debug)]
pub struct UnitDataCache {
    root: PathBuf,
}

/// sha256 hex of `bytes`, ConfigHub's `DataHash`.
pub fn data_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A cache key must be 64 lowercase hex digits: nothing else ever becomes a path.
fn valid_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// ConfigHub ids are UUIDs; refuse anything else as a path segment.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// The file holding the layout's version, and the version this controller writes and reads.
const FORMAT_FILE: &str = "FORMAT";
const FORMAT: &str = "confighub-unit-cache 1";

impl UnitDataCache {
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        match std::fs::read(root.join(FORMAT_FILE)) {
            Ok(found) if found.trim_ascii() == FORMAT.as_bytes() => {}
            Ok(found) => {
                tracing::warn!(
                    path = %root.display(),
                    found = %String::from_utf8_lossy(&found).trim(),
                    expected = FORMAT,
                    "unit cache: a layout this controller does not read; it is emptied and refilled from ConfigHub"
                );
                for dir in ["data", "revisions"] {
                    match std::fs::remove_dir_all(root.join(dir)) {
                        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                        _ => {}
                    }
                }
                write_atomic(&root.join(FORMAT_FILE), FORMAT.as_bytes())?;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(&root.join(FORMAT_FILE), FORMAT.as_bytes())?;
            }
            Err(err) => return Err(err),
        }
        std::fs::create_dir_all(root.join("data"))?;
        std::fs::create_dir_all(root.join("revisions"))?;
        Ok(Self { root })
    }

    fn data_path(&self, hash: &str) -> PathBuf {
        self.root.join("data").join(&hash[..2]).join(hash)
    }

    /// The bytes whose sha256 is `hash`, if cached and intact.
    pub fn get(&self, hash: &str) -> Option<Vec<u8>> {
        let hash = hash.to_ascii_lowercase();
        if !valid_hash(&hash) {
            return None;
        }
        let path = self.data_path(&hash);
        let bytes = std::fs::read(&path).ok()?;
        if data_hash(&bytes) == hash {
            Some(bytes)
        } else {
            let _ = std::fs::remove_file(&path);
            None
        }
    }

    /// Stores `bytes` under their own hash and returns it.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let hash = data_hash(bytes);
        let path = self.data_path(&hash);
        if !path.exists() {
            write_atomic(&path, bytes)?;
        }
        Ok(hash)
    }

    /// The DataHash of revision `num` of unit `unit_id`, if seen before.
    pub fn revision_hash(&self, unit_id: &str, num: i64) -> Option<String> {
        if !valid_id(unit_id) {
            return None;
        }
        let text = std::fs::read_to_string(
            self.root
                .join("revisions")
                .join(unit_id)
                .join(num.to_string()),
        )
        .ok()?;
        let hash = text.trim().to_string();
        valid_hash(&hash).then_some(hash)
    }

    pub fn put_revision_hash(&self, unit_id: &str, num: i64, hash: &str) -> std::io::Result<()> {
        if !valid_id(unit_id) || !valid_hash(hash) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "invalid unit id or data hash",
            ));
        }
        write_atomic(
            &self
                .root
                .join("revisions")
                .join(unit_id)
                .join(num.to_string()),
            hash.as_bytes(),
        )
    }
}

/// Temp file in the same directory, then rename: readers never see half a file. Private: unit data can
/// hold Secrets. Not fsynced: every read checks the content against its hash (and revision entries
/// against the hash format), so what a crash tears is dropped and fetched again; syncing two files and
/// two directories per unit made a first sync of 10,000 units several seconds slower.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("path has no parent"))?;
    std::fs::create_dir_all(dir)?;
    AtomicWrite {
        temp_prefix: ".tmp-",
        durable: false,
        private: true,
    }
    .write(path, bytes)
    .map_err(|e| std::io::Error::new(e.source.kind(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache as the releases before the version file left it: `data/<2 hex>/<hash>` and
    /// `revisions/<unit id>/<num>`, nothing else.
    fn first_release_layout(root: &Path, bytes: &[u8]) -> String {
        let hash = data_hash(bytes);
        let data = root.join("data").join(&hash[..2]);
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join(&hash), bytes).unwrap();
        let unit = root
            .join("revisions")
            .join("0f5e2a8c-1b7d-4c55-9e0a-3c1d2b4a5f60");
        std::fs::create_dir_all(&unit).unwrap();
        std::fs::write(unit.join("3"), format!("{hash}\n")).unwrap();
        hash
    }

    #[test]
    fn the_first_releases_cache_is_read_and_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let hash = first_release_layout(dir.path(), b"kind: ConfigMap\n");
        let cache = UnitDataCache::new(dir.path()).unwrap();
        assert_eq!(cache.get(&hash).unwrap(), b"kind: ConfigMap\n");
        assert_eq!(
            cache.revision_hash("0f5e2a8c-1b7d-4c55-9e0a-3c1d2b4a5f60", 3),
            Some(hash)
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap(),
            FORMAT
        );
    }

    #[test]
    fn a_cache_of_another_version_is_emptied_and_refilled() {
        let dir = tempfile::tempdir().unwrap();
        let hash = first_release_layout(dir.path(), b"kind: ConfigMap\n");
        std::fs::write(dir.path().join(FORMAT_FILE), "confighub-unit-cache 9\n").unwrap();
        let cache = UnitDataCache::new(dir.path()).unwrap();
        assert!(
            cache.get(&hash).is_none(),
            "entries of another layout are not read"
        );
        assert_eq!(
            cache.revision_hash("0f5e2a8c-1b7d-4c55-9e0a-3c1d2b4a5f60", 3),
            None
        );
        let again = cache.put(b"kind: ConfigMap\n").unwrap();
        assert_eq!(cache.get(&again).unwrap(), b"kind: ConfigMap\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap(),
            FORMAT
        );
    }

    #[test]
    fn round_trips_and_survives_a_new_instance() {
        let dir = tempfile::tempdir().unwrap();
        let hash = UnitDataCache::new(dir.path())
            .unwrap()
            .put(b"kind: ConfigMap\n")
            .unwrap();
        let again = UnitDataCache::new(dir.path()).unwrap();
        assert_eq!(again.get(&hash).unwrap(), b"kind: ConfigMap\n");
        assert_eq!(hash, data_hash(b"kind: ConfigMap\n"));
    }

    #[test]
    fn corrupt_entries_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = UnitDataCache::new(dir.path()).unwrap();
        let hash = cache.put(b"a: 1\n").unwrap();
        std::fs::write(cache.data_path(&hash), b"a: 2\n").unwrap();
        assert!(cache.get(&hash).is_none());
        assert!(!cache.data_path(&hash).exists());
    }

    #[test]
    fn hostile_keys_never_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        let cache = UnitDataCache::new(dir.path()).unwrap();
        assert!(cache.get("../../etc/passwd").is_none());
        assert!(cache.get(&"g".repeat(64)).is_none());
        assert!(cache.put_revision_hash("../x", 1, &data_hash(b"")).is_err());
        assert!(cache.revision_hash("../x", 1).is_none());
    }

    #[test]
    fn revision_index_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let cache = UnitDataCache::new(dir.path()).unwrap();
        let id = "0d9c2f4e-1111-4222-8333-444455556666";
        assert!(cache.revision_hash(id, 3).is_none());
        cache.put_revision_hash(id, 3, &data_hash(b"x")).unwrap();
        assert_eq!(cache.revision_hash(id, 3).unwrap(), data_hash(b"x"));
    }
}
