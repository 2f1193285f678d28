//! Drift records, in SQLite under the storage path (one instance, the default) or in PostgreSQL shared by
//! every instance (`--drift-db postgres://...`, for HA), so history and fix-unit bookkeeping survive
//! restarts and leader changes.
//!
//! The record logic (episodes, resolution, fix-unit claims) is written once here against [`Tx`]; the
//! backends (`store/sqlite.rs`, `store/postgres.rs`) only run SQL. Every method is synchronous and short;
//! from async code call it through `tokio::task::spawn_blocking` (the engine and the REST API do). A write
//! holds a per-object lock for its transaction (the connection mutex for SQLite, an advisory lock in
//! PostgreSQL), so two instances cannot both start an episode or both claim a fix unit.

mod health;
mod location;
mod postgres;
mod schema;
mod sqlite;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use prometheus_client::registry::Registry;
use serde::Serialize;

use super::detect::Detection;
use super::record::{DriftRecord, RecordStatus};
use super::types::{DriftType, Severity};
pub use location::{DriftDb, redact_url};

/// How long a fix-unit claim keeps other instances from writing the same fix unit; a writer that died
/// mid-write leaves its claim behind, and another instance takes over once it has lapsed.
pub const FIX_UNIT_CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("drift store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("drift store: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The database cannot be reached (down, or the connection was lost); retried with backoff.
    #[error("drift store: the database is unavailable: {0}")]
    Unavailable(String),
    #[error("drift store: {0}")]
    Schema(String),
    #[error("drift store: {0}")]
    Config(String),
    #[error("drift store: corrupt record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("drift store: a detection without items is no drift; resolve the record instead")]
    EmptyDetection,
    #[error("drift store: moving an unreadable database aside: {0}")]
    MoveAside(#[source] std::io::Error),
}

impl StoreError {
    /// The database is down or unreachable (the REST API answers 503, the engine waits).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// What a detection did to the object's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Transition {
    /// No active record: a new episode began.
    Started,
    /// The active record's items (or provenance) changed.
    Updated,
    /// Same drift seen again; only `last_seen` moved.
    Unchanged,
}

/// List filter; `None` fields match everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordFilter {
    pub namespace: Option<String>,
    pub status: Option<RecordStatus>,
    pub severity: Option<Severity>,
    pub limit: Option<usize>,
}

/// Counts over every record (all episodes), plus resolution time.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Statistics {
    pub total: u64,
    pub active: u64,
    pub resolved: u64,
    /// Records having at least one item of the type.
    pub by_type: BTreeMap<DriftType, u64>,
    pub by_severity: BTreeMap<Severity, u64>,
    pub by_namespace: BTreeMap<String, u64>,
    /// Mean of `resolved_at - first_detected` over resolved records; null when none resolved.
    pub mean_time_to_resolve_seconds: Option<f64>,
}

/// The answer to a fix-unit claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Write the fix unit under this slug (the first slug ever claimed for the episode).
    Granted(String),
    /// Another instance is writing it now (its lease has not lapsed).
    HeldElsewhere,
    /// The episode is no longer active.
    Ended,
}

/// One transaction's (or one connection's) reads and writes of records, in a backend's SQL.
pub(crate) trait Tx {
    fn active(&mut self, id: &str) -> Result<Option<DriftRecord>, StoreError>;
    fn last_episode(&mut self, id: &str) -> Result<Option<u32>, StoreError>;
    fn write(&mut self, r: &DriftRecord, insert: bool) -> Result<(), StoreError>;
    /// The active record, else the latest one.
    fn get(&mut self, id: &str) -> Result<Option<DriftRecord>, StoreError>;
    fn history(&mut self, id: &str) -> Result<Vec<DriftRecord>, StoreError>;
    fn list(&mut self, filter: &RecordFilter) -> Result<Vec<DriftRecord>, StoreError>;
    fn active_count(&mut self) -> Result<u64, StoreError>;
    /// Sets the episode's claim (slug kept if one was claimed before) for `holder` until `until_ms`,
    /// unless another holder's claim lasts past `now_ms`; returns the slug, or `None` when not granted.
    fn claim(
        &mut self,
        id: &str,
        episode: u32,
        slug: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<String>, StoreError>;
    /// Ends `holder`'s claim on the episode (the slug stays claimed).
    fn release(&mut self, id: &str, episode: u32, holder: &str) -> Result<(), StoreError>;
}

enum Backend {
    Sqlite(sqlite::Sqlite),
    /// Boxed: its client configuration is large, and a store is made once.
    Postgres(Box<postgres::Postgres>),
}

pub struct RecordStore {
    backend: Backend,
    health: health::Health,
    /// This process's name in fix-unit claims.
    holder: String,
}

impl RecordStore {
    /// Opens (creating if needed) the SQLite database at `path`, e.g. `<storage-path>/drift.db`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self::with(Backend::Sqlite(sqlite::Sqlite::open(path)?)))
    }

    /// [`RecordStore::open`], but a file that is not a readable SQLite database, or fails SQLite's quick
    /// check, is moved aside to `<file>.corrupt-<unix seconds>` (with its `-wal`/`-shm`) and a new store
    /// started: records are history, and the controller must come up. Returns where the old file went.
    pub fn open_or_rebuild(path: &Path) -> Result<(Self, Option<std::path::PathBuf>), StoreError> {
        let (sqlite, moved) = sqlite::Sqlite::open_or_rebuild(path)?;
        Ok((Self::with(Backend::Sqlite(sqlite)), moved))
    }

    /// A store in the PostgreSQL database at `url`. Only the URL is checked here: a database that is down
    /// is connected to (and its schema created) on first use, and again after every lost connection.
    pub fn connect_postgres(url: &str) -> Result<Self, StoreError> {
        Ok(Self::with(Backend::Postgres(Box::new(
            postgres::Postgres::new(url)?,
        ))))
    }

    /// Opens the store `db` names (a corrupt SQLite file is moved aside, see [`RecordStore::open_or_rebuild`]).
    pub fn open_db(db: &DriftDb) -> Result<(Self, Option<std::path::PathBuf>), StoreError> {
        match db {
            DriftDb::Sqlite(path) => Self::open_or_rebuild(path),
            DriftDb::Postgres(url) => Ok((Self::connect_postgres(url)?, None)),
        }
    }

    fn with(backend: Backend) -> Self {
        let name = match backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        };
        Self {
            backend,
            health: health::Health::new(name),
            holder: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Whether the database answered the last call (false while it cannot be reached).
    pub fn is_available(&self) -> bool {
        !self.health.is_down()
    }

    /// Registers `confighub_drift_store_up` and `confighub_drift_store_errors_total`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.health.register(registry);
    }

    /// Runs `f` on the backend (in one transaction holding the lock of `lock_id` when given), and tells
    /// the health tracker how it went.
    fn run<T>(
        &self,
        lock_id: Option<&str>,
        f: impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = match &self.backend {
            Backend::Sqlite(db) => db.run(lock_id.is_some(), f),
            Backend::Postgres(db) => db.run(lock_id, f),
        };
        self.health.observe(&result);
        result
    }

    /// Records a detection: starts a new episode when the object has no active record, else updates it.
    pub fn upsert_detection(
        &self,
        det: &Detection,
    ) -> Result<(Transition, DriftRecord), StoreError> {
        if det.items.is_empty() {
            return Err(StoreError::EmptyDetection);
        }
        let id = det.key.id();
        self.run(Some(&id), |tx| match tx.active(&id)? {
            Some(mut record) => {
                let changed = record.update(det);
                tx.write(&record, false)?;
                let transition = if changed {
                    Transition::Updated
                } else {
                    Transition::Unchanged
                };
                Ok((transition, record))
            }
            None => {
                let last = tx.last_episode(&id)?;
                let record = DriftRecord::start(det, last.unwrap_or(0) + 1);
                tx.write(&record, true)?;
                Ok((Transition::Started, record))
            }
        })
    }

    /// Resolves the object's active record; false when there was none.
    pub fn resolve(&self, id: &str, when: DateTime<Utc>) -> Result<bool, StoreError> {
        self.modify_active(id, |r| {
            r.status = RecordStatus::Resolved;
            r.resolved_at = Some(when.max(r.first_detected));
        })
    }

    /// Links the fix unit written for the object's active record and ends this process's claim on it;
    /// false when there is no active record.
    pub fn set_fix_unit(&self, id: &str, slug: &str) -> Result<bool, StoreError> {
        self.run(Some(id), |tx| {
            let Some(mut record) = tx.active(id)? else {
                return Ok(false);
            };
            record.fix_unit = Some(slug.to_string());
            tx.write(&record, false)?;
            tx.release(id, record.episode, &self.holder)?;
            Ok(true)
        })
    }

    /// Claims the right to write the fix unit of episode `episode` of `id`, proposing `slug`. Granted when
    /// no other instance holds a live claim; the slug granted is the first one ever claimed for the
    /// episode, so every instance writes the same unit. Call [`RecordStore::set_fix_unit`] after writing,
    /// or [`RecordStore::release_fix_unit`] when the write failed.
    pub fn claim_fix_unit(&self, id: &str, episode: u32, slug: &str) -> Result<Claim, StoreError> {
        self.claim_fix_unit_at(id, episode, slug, Utc::now())
    }

    fn claim_fix_unit_at(
        &self,
        id: &str,
        episode: u32,
        slug: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let now_ms = now.timestamp_millis();
        let until_ms = now_ms + FIX_UNIT_CLAIM_LEASE.as_millis() as i64;
        self.run(Some(id), |tx| {
            match tx.active(id)? {
                Some(r) if r.episode == episode => {}
                _ => return Ok(Claim::Ended),
            }
            Ok(
                match tx.claim(id, episode, slug, &self.holder, now_ms, until_ms)? {
                    Some(slug) => Claim::Granted(slug),
                    None => Claim::HeldElsewhere,
                },
            )
        })
    }

    /// Ends this process's claim on the episode's fix unit without linking it (the write failed).
    pub fn release_fix_unit(&self, id: &str, episode: u32) -> Result<(), StoreError> {
        self.run(Some(id), |tx| tx.release(id, episode, &self.holder))
    }

    fn modify_active(&self, id: &str, f: impl Fn(&mut DriftRecord)) -> Result<bool, StoreError> {
        self.run(Some(id), |tx| {
            let Some(mut record) = tx.active(id)? else {
                return Ok(false);
            };
            f(&mut record);
            tx.write(&record, false)?;
            Ok(true)
        })
    }

    /// The object's active record, else its latest resolved one.
    pub fn get(&self, id: &str) -> Result<Option<DriftRecord>, StoreError> {
        self.run(None, |tx| tx.get(id))
    }

    /// Every episode of one object, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<DriftRecord>, StoreError> {
        self.run(None, |tx| tx.history(id))
    }

    /// Records matching `filter`, most recently seen first.
    pub fn list(&self, filter: &RecordFilter) -> Result<Vec<DriftRecord>, StoreError> {
        self.run(None, |tx| tx.list(filter))
    }

    /// Number of active records (for the active drifts gauge).
    pub fn active_count(&self) -> Result<u64, StoreError> {
        self.run(None, |tx| tx.active_count())
    }

    pub fn statistics(&self) -> Result<Statistics, StoreError> {
        let records = self.list(&RecordFilter::default())?;
        let mut stats = Statistics::default();
        let mut resolve_times = Vec::new();
        for r in &records {
            stats.total += 1;
            match r.status {
                RecordStatus::Active => stats.active += 1,
                RecordStatus::Resolved => stats.resolved += 1,
            }
            for t in &r.types {
                *stats.by_type.entry(*t).or_default() += 1;
            }
            *stats.by_severity.entry(r.severity).or_default() += 1;
            *stats.by_namespace.entry(r.namespace.clone()).or_default() += 1;
            resolve_times.extend(r.time_to_resolve());
        }
        if !resolve_times.is_empty() {
            stats.mean_time_to_resolve_seconds =
                Some(resolve_times.iter().sum::<f64>() / resolve_times.len() as f64);
        }
        Ok(stats)
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
