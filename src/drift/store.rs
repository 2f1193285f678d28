//! Drift records in SQLite under the storage path, so history survives restarts.
//!
//! Concurrency: one connection behind a `std::sync::Mutex`; every method is synchronous and short
//! (single-row writes, small scans). From async code call it through `tokio::task::spawn_blocking`
//! (the REST API does), so a slow disk never stalls the runtime. WAL mode lets readers of the file
//! (for example `sqlite3` during debugging) coexist with the writer.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::detect::Detection;
use super::record::{DriftRecord, RecordStatus};
use super::types::{DriftType, Severity};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS drift_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    status TEXT NOT NULL,
    namespace TEXT NOT NULL,
    severity TEXT NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (id, episode));
CREATE UNIQUE INDEX IF NOT EXISTS drift_records_one_active ON drift_records (id) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS drift_records_by_status ON drift_records (status, last_seen_ms);
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("drift store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("drift store: corrupt record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("drift store: a detection without items is no drift; resolve the record instead")]
    EmptyDetection,
    #[error("drift store: moving an unreadable database aside: {0}")]
    MoveAside(#[source] std::io::Error),
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

pub struct RecordStore {
    conn: Mutex<Connection>,
}

impl RecordStore {
    /// Opens (creating if needed) the database at `path`, e.g. `<storage-path>/drift.db`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// [`RecordStore::open`], but a file that is not a readable SQLite database, or fails SQLite's quick
    /// check, is moved aside to `<file>.corrupt-<unix seconds>` (with its `-wal`/`-shm`) and a new store
    /// started: records are history, and the controller must come up. Returns where the old file went.
    pub fn open_or_rebuild(path: &Path) -> Result<(Self, Option<std::path::PathBuf>), StoreError> {
        let healthy = Self::open(path).and_then(|store| {
            let check: String = store
                .conn()
                .query_row("PRAGMA quick_check", [], |row| row.get(0))?;
            Ok((store, check))
        });
        match healthy {
            Ok((store, check)) if check == "ok" => return Ok((store, None)),
            Ok((store, _)) => drop(store),
            Err(StoreError::Sqlite(_)) => {}
            Err(other) => return Err(other),
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".corrupt-{stamp}"));
        let aside = std::path::PathBuf::from(aside);
        std::fs::rename(path, &aside).map_err(StoreError::MoveAside)?;
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            let _ = std::fs::remove_file(std::path::PathBuf::from(companion));
        }
        Ok((Self::open(path)?, Some(aside)))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a detection: starts a new episode when the object has no active record, else updates it.
    pub fn upsert_detection(
        &self,
        det: &Detection,
    ) -> Result<(Transition, DriftRecord), StoreError> {
        if det.items.is_empty() {
            return Err(StoreError::EmptyDetection);
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = det.key.id();
        let active = active_record(&tx, &id)?;
        let (transition, record) = match active {
            Some(mut record) => {
                let changed = record.update(det);
                write(&tx, &record, false)?;
                (
                    if changed {
                        Transition::Updated
                    } else {
                        Transition::Unchanged
                    },
                    record,
                )
            }
            None => {
                let last: Option<u32> = tx.query_row(
                    "SELECT MAX(episode) FROM drift_records WHERE id = ?1",
                    [&id],
                    |r| r.get(0),
                )?;
                let record = DriftRecord::start(det, last.unwrap_or(0) + 1);
                write(&tx, &record, true)?;
                (Transition::Started, record)
            }
        };
        tx.commit()?;
        Ok((transition, record))
    }

    /// Resolves the object's active record; false when there was none.
    pub fn resolve(&self, id: &str, when: DateTime<Utc>) -> Result<bool, StoreError> {
        self.modify_active(id, |r| {
            r.status = RecordStatus::Resolved;
            r.resolved_at = Some(when.max(r.first_detected));
        })
    }

    /// Links the fix unit written for the object's active record; false when there is none.
    pub fn set_fix_unit(&self, id: &str, slug: &str) -> Result<bool, StoreError> {
        self.modify_active(id, |r| r.fix_unit = Some(slug.to_string()))
    }

    fn modify_active(
        &self,
        id: &str,
        f: impl FnOnce(&mut DriftRecord),
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let Some(mut record) = active_record(&tx, id)? else {
            return Ok(false);
        };
        f(&mut record);
        write(&tx, &record, false)?;
        tx.commit()?;
        Ok(true)
    }

    /// The object's active record, else its latest resolved one.
    pub fn get(&self, id: &str) -> Result<Option<DriftRecord>, StoreError> {
        let conn = self.conn();
        let body: Option<String> = conn
            .query_row(
                "SELECT body FROM drift_records WHERE id = ?1
                 ORDER BY (status = 'active') DESC, episode DESC LIMIT 1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// Every episode of one object, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<DriftRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT body FROM drift_records WHERE id = ?1 ORDER BY episode")?;
        let bodies = stmt.query_map([id], |r| r.get::<_, String>(0))?;
        bodies.map(|b| Ok(serde_json::from_str(&b?)?)).collect()
    }

    /// Records matching `filter`, most recently seen first.
    pub fn list(&self, filter: &RecordFilter) -> Result<Vec<DriftRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT body FROM drift_records
             WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR severity = ?3)
             ORDER BY last_seen_ms DESC, seq DESC LIMIT ?4",
        )?;
        let limit = filter
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let bodies = stmt.query_map(
            params![
                filter.namespace,
                filter.status.map(RecordStatus::as_str),
                filter.severity.map(Severity::as_str),
                limit
            ],
            |r| r.get::<_, String>(0),
        )?;
        bodies.map(|b| Ok(serde_json::from_str(&b?)?)).collect()
    }

    /// Number of active records (for the active drifts gauge).
    pub fn active_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM drift_records WHERE status = 'active'",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
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

fn active_record(conn: &Connection, id: &str) -> Result<Option<DriftRecord>, StoreError> {
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM drift_records WHERE id = ?1 AND status = 'active'",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
}

fn write(conn: &Connection, r: &DriftRecord, insert: bool) -> Result<(), StoreError> {
    let body = serde_json::to_string(r)?;
    let (status, severity, seen) = (
        r.status.as_str(),
        r.severity.as_str(),
        r.last_seen.timestamp_millis(),
    );
    if insert {
        conn.execute(
            "INSERT INTO drift_records (id, episode, status, namespace, severity, last_seen_ms, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![r.id, r.episode, status, r.namespace, severity, seen, body],
        )?;
    } else {
        conn.execute(
            "UPDATE drift_records SET status = ?3, severity = ?4, last_seen_ms = ?5, body = ?6
             WHERE id = ?1 AND episode = ?2",
            params![r.id, r.episode, status, severity, seen, body],
        )?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
