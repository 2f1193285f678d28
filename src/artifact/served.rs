//! Stored artifacts kept in memory for the artifact server, so that serving a current artifact again
//! costs no system call and no trip to Tokio's blocking pool (issue 14, P6: with one client those trips,
//! not the bytes, were most of a request's time).
//!
//! Safe because stored files never change: the name is the content's digest and a write is a rename
//! ([`super::storage`]). The one owner of the files, [`super::storage::Storage`], forgets a path after
//! every write or delete of it; the server keeps only what it read whole after its path checks. A read
//! that raced a forget is not kept: the server takes a [`Ticket`] before reading, and a forget in
//! between makes the ticket stale. Bounded by bytes (`--storage-cache-mib`); least recently used
//! first out, as `quick_cache` decides.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, OptionsBuilder, Weighter};

/// Shards of the cache; a file larger than the budget divided by this is never kept.
const SHARDS: usize = 4;

/// Handle shared by the storage (which forgets) and the artifact server (which keeps and reads).
#[derive(Clone, Default)]
pub struct ServedFiles {
    inner: Option<Arc<Inner>>,
    metrics: Arc<Metrics>,
}

/// Where a served file came from, so an operator can see what the memory buys and what it holds.
struct Metrics {
    /// `confighub_source_artifact_served_total{from}`: files served, `from` memory or disk.
    served: Family<FromLabels, Counter>,
    /// The two series of `served`, looked up once rather than on every request.
    from_memory: Counter,
    from_disk: Counter,
    /// `confighub_source_artifact_memory_bytes`: bytes of files held (0 when the memory is off).
    bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let served = Family::<FromLabels, Counter>::default();
        let from_memory = served.get_or_create(&FromLabels { from: "memory" }).clone();
        let from_disk = served.get_or_create(&FromLabels { from: "disk" }).clone();
        Self {
            served,
            from_memory,
            from_disk,
            bytes: Gauge::default(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FromLabels {
    from: &'static str,
}

struct Inner {
    files: Cache<String, Bytes, ByLength>,
    /// Bumped by every forget; a keep whose ticket is older is dropped. Held across the insert too, so a
    /// forget cannot fall between the check and the insert.
    generation: Mutex<u64>,
}

/// Proof of which forgets a read started after ([`ServedFiles::ticket`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket(u64);

#[derive(Clone)]
struct ByLength;

impl Weighter<String, Bytes> for ByLength {
    fn weight(&self, key: &String, value: &Bytes) -> u64 {
        (key.len() + value.len()).max(1) as u64
    }
}

impl std::fmt::Debug for ServedFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("ServedFiles(off)"),
            Some(inner) => write!(
                f,
                "ServedFiles({} files, {} of {} bytes)",
                inner.files.len(),
                inner.files.weight(),
                inner.files.capacity()
            ),
        }
    }
}

impl ServedFiles {
    /// Keeps up to `budget` bytes of files; 0 keeps nothing (every request reads the disk).
    pub fn new(budget: u64) -> Self {
        if budget == 0 {
            return Self::default();
        }
        // About 16 KiB per artifact (a space of a few dozen units); only a sizing hint.
        let estimated = usize::try_from(budget / (16 * 1024))
            .unwrap_or(usize::MAX)
            .max(16);
        let options = OptionsBuilder::new()
            .shards(SHARDS)
            .estimated_items_capacity(estimated)
            .weight_capacity(budget)
            .build()
            .expect("shards, items and weight are set");
        let files = Cache::with_options(
            options,
            ByLength,
            DefaultHashBuilder::default(),
            Default::default(),
        );
        Self {
            inner: Some(Arc::new(Inner {
                files,
                generation: Mutex::new(0),
            })),
            metrics: Arc::default(),
        }
    }

    /// Registers `confighub_source_artifact_served_total{from}` and
    /// `confighub_source_artifact_memory_bytes`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "confighub_source_artifact_served",
            "Artifact files served by the artifact server, from memory or from disk.",
            self.metrics.served.clone(),
        );
        registry.register(
            "confighub_source_artifact_memory_bytes",
            "Bytes of artifact files the artifact server holds in memory (at most --storage-cache-mib).",
            self.metrics.bytes.clone(),
        );
    }

    /// The file at relative `path`, if it is kept (counted as served from memory).
    pub(crate) fn get(&self, path: &str) -> Option<Bytes> {
        let bytes = self.inner.as_ref()?.files.get(path)?;
        self.metrics.from_memory.inc();
        Some(bytes)
    }

    /// A file served from disk (a miss, or one never kept).
    pub(crate) fn served_from_disk(&self) {
        self.metrics.from_disk.inc();
    }

    /// Called with the lock held after every change, so the gauge ends at the last change's value.
    fn update_bytes(&self, inner: &Inner) {
        let held = i64::try_from(inner.files.weight()).unwrap_or(i64::MAX);
        self.metrics.bytes.set(held);
    }

    /// Taken before reading a file from disk, handed back to [`Self::keep`].
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.inner.as_ref().map_or(0, |inner| *inner.generation()))
    }

    /// Keeps `bytes` as the file at `path` unless a forget happened since `ticket` was taken.
    pub(crate) fn keep(&self, path: &str, bytes: Bytes, ticket: Ticket) {
        let Some(inner) = &self.inner else { return };
        let generation = inner.generation();
        if *generation == ticket.0 {
            inner.files.insert(path.to_string(), bytes);
            self.update_bytes(inner);
        }
    }

    /// The file at relative `path` was written or deleted.
    pub(crate) fn forget(&self, path: &str) {
        let Some(inner) = &self.inner else { return };
        let mut generation = inner.generation();
        *generation += 1;
        inner.files.remove(path);
        self.update_bytes(inner);
    }

    /// Every file under the relative directory `dir` was deleted.
    pub(crate) fn forget_under(&self, dir: &str) {
        let Some(inner) = &self.inner else { return };
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let mut generation = inner.generation();
        *generation += 1;
        inner.files.retain(|path, _| !path.starts_with(&prefix));
        self.update_bytes(inner);
    }
}

impl Inner {
    fn generation(&self) -> std::sync::MutexGuard<'_, u64> {
        // The counter is valid whatever a panicking holder did.
        self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_was_read_and_forgets_what_was_written_or_deleted() {
        let served = ServedFiles::new(1 << 20);
        let t = served.ticket();
        served.keep("a/ns/x/1.tar.gz", Bytes::from_static(b"one"), t);
        served.keep("a/ns/y/2.tar.gz", Bytes::from_static(b"two"), t);
        served.keep("a/ns/xy/3.tar.gz", Bytes::from_static(b"three"), t);
        assert_eq!(served.get("a/ns/x/1.tar.gz").as_deref(), Some(&b"one"[..]));

        served.forget("a/ns/x/1.tar.gz");
        assert_eq!(served.get("a/ns/x/1.tar.gz"), None);
        // A directory's files go, a sibling whose name starts the same stays.
        served.forget_under("a/ns/y");
        assert_eq!(served.get("a/ns/y/2.tar.gz"), None);
        assert_eq!(
            served.get("a/ns/xy/3.tar.gz").as_deref(),
            Some(&b"three"[..])
        );
    }

    #[test]
    fn a_read_that_raced_a_forget_is_not_kept() {
        let served = ServedFiles::new(1 << 20);
        let before = served.ticket();
        // The storage deletes some file while the server is reading another from disk.
        served.forget("a/ns/x/old.tar.gz");
        served.keep("a/ns/x/new.tar.gz", Bytes::from_static(b"new"), before);
        assert_eq!(served.get("a/ns/x/new.tar.gz"), None);
        served.keep(
            "a/ns/x/new.tar.gz",
            Bytes::from_static(b"new"),
            served.ticket(),
        );
        assert!(served.get("a/ns/x/new.tar.gz").is_some());
    }

    #[test]
    fn bounded_by_bytes_and_off_at_zero() {
        let served = ServedFiles::new(64 * 1024);
        for i in 0..100 {
            served.keep(
                &format!("k/ns/n/{i}.tar.gz"),
                Bytes::from(vec![b'x'; 4096]),
                served.ticket(),
            );
        }
        let inner = served.inner.as_ref().unwrap();
        assert!(inner.files.weight() <= 64 * 1024, "{served:?}");
        assert!(!inner.files.is_empty());
        // A file over a shard's share of the budget is never kept.
        served.keep("big", Bytes::from(vec![0; 64 * 1024]), served.ticket());
        assert_eq!(served.get("big"), None);

        assert_eq!(
            served.metrics.bytes.get(),
            i64::try_from(inner.files.weight()).unwrap()
        );

        let off = ServedFiles::new(0);
        off.keep("a", Bytes::from_static(b"a"), off.ticket());
        assert_eq!(off.get("a"), None);
        off.forget("a");
    }
}
