//! A persistent, content-addressed cache of unit data under the storage path, keyed by ConfigHub's
//! `DataHash` (the sha256 of the bytes), so an unchanged unit is never downloaded twice — also across
//! restarts. Entries verify themselves on read: a corrupt file is dropped and fetched again.
//!
//! Revisions are immutable, so `(UnitID, RevisionNum) → DataHash` is cached too; `LastReleased` mode then
//! needs no revision look-up for a unit whose released revision has not moved.

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

impl UnitDataCache {
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
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
