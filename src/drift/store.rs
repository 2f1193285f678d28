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
mod tests {
    use super::*;
    use crate::drift::detect::{classify_items, detect, tests::ctx};
    use crate::drift::record::DetectionSource;
    use crate::drift::types::{DriftItem, ObjectKey};
    use chrono::Duration;
    use serde_json::json;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + secs, 0).unwrap()
    }

    fn det(
        kind: &str,
        ns: &str,
        name: &str,
        path: &str,
        d: i64,
        l: i64,
        at: DateTime<Utc>,
    ) -> Detection {
        let key = ObjectKey::new(kind, ns, name);
        let items = vec![DriftItem {
            path: path.into(),
            desired: Some(json!(d)),
            live: Some(json!(l)),
            actor: Some("kubectl".into()),
        }];
        Detection {
            items: classify_items(&key, items, &[]),
            key,
            source: DetectionSource::Watch,
            unit_slug: Some(name.into()),
            revision: Some("1".into()),
            repository: None,
            kustomization: None,
            detected_at: at,
        }
    }

    fn store() -> (tempfile::TempDir, RecordStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::open(&dir.path().join("drift.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn episode_lifecycle() {
        let (_dir, store) = store();
        let id = "Deployment:default:web";
        let (tr, r) = store
            .upsert_detection(&det(
                "Deployment",
                "default",
                "web",
                "/spec/replicas",
                1,
                3,
                t(0),
            ))
            .unwrap();
        assert_eq!(
            (tr, r.episode, r.status),
            (Transition::Started, 1, RecordStatus::Active)
        );
        let (tr, r) = store
            .upsert_detection(&det(
                "Deployment",
                "default",
                "web",
                "/spec/replicas",
                1,
                3,
                t(10),
            ))
            .unwrap();
        assert_eq!(tr, Transition::Unchanged);
        assert_eq!((r.first_detected, r.last_seen), (t(0), t(10)));
        let (tr, r) = store
            .upsert_detection(&det(
                "Deployment",
                "default",
                "web",
                "/spec/replicas",
                1,
                4,
                t(20),
            ))
            .unwrap();
        assert_eq!(tr, Transition::Updated);
        assert_eq!(r.items[0].item.live, Some(json!(4)));
        assert!(store.set_fix_unit(id, "web-drift-deployment-web").unwrap());
        assert!(store.resolve(id, t(80)).unwrap());
        assert!(!store.resolve(id, t(90)).unwrap());
        let resolved = store.get(id).unwrap().unwrap();
        assert_eq!(resolved.status, RecordStatus::Resolved);
        assert_eq!(resolved.resolved_at, Some(t(80)));
        assert_eq!(
            resolved.fix_unit.as_deref(),
            Some("web-drift-deployment-web")
        );
        assert_eq!(resolved.time_to_resolve(), Some(80.0));
        let (tr, r) = store
            .upsert_detection(&det(
                "Deployment",
                "default",
                "web",
                "/spec/replicas",
                1,
                2,
                t(100),
            ))
            .unwrap();
        assert_eq!(
            (tr, r.episode, r.first_detected),
            (Transition::Started, 2, t(100))
        );
        assert_eq!(store.get(id).unwrap().unwrap().episode, 2);
        assert_eq!(store.history(id).unwrap().len(), 2);
        assert_eq!(store.active_count().unwrap(), 1);
        assert!(store.get("Deployment:default:nope").unwrap().is_none());
    }

    #[test]
    fn empty_detections_are_refused() {
        let (_dir, store) = store();
        let mut d = det("Deployment", "default", "web", "/spec/replicas", 1, 3, t(0));
        d.items.clear();
        assert!(matches!(
            store.upsert_detection(&d),
            Err(StoreError::EmptyDetection)
        ));
    }

    #[test]
    fn a_corrupt_database_is_moved_aside_and_a_healthy_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drift.db");
        // Healthy: reopened as it is.
        {
            let store = RecordStore::open(&path).unwrap();
            store
                .upsert_detection(&det("ConfigMap", "a", "b", "/data/k", 1, 2, t(0)))
                .unwrap();
        }
        let (store, moved) = RecordStore::open_or_rebuild(&path).unwrap();
        assert_eq!(moved, None);
        assert!(store.get("ConfigMap:a:b").unwrap().is_some());
        drop(store);
        // Garbage where the database was (a torn copy, a disk fault): moved aside, a new store works.
        std::fs::write(
            &path,
            b"this is not a sqlite database, not even close......",
        )
        .unwrap();
        let (store, moved) = RecordStore::open_or_rebuild(&path).unwrap();
        let aside = moved.expect("moved aside");
        assert!(aside.to_string_lossy().contains("drift.db.corrupt-"));
        assert!(std::fs::read(&aside).unwrap().starts_with(b"this is not"));
        assert_eq!(store.active_count().unwrap(), 0);
        store
            .upsert_detection(&det("ConfigMap", "a", "b", "/data/k", 1, 2, t(0)))
            .unwrap();
        assert!(store.get("ConfigMap:a:b").unwrap().is_some());
    }

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drift.db");
        {
            let store = RecordStore::open(&path).unwrap();
            store
                .upsert_detection(&det(
                    "Deployment",
                    "default",
                    "web",
                    "/spec/replicas",
                    1,
                    3,
                    t(0),
                ))
                .unwrap();
        }
        let store = RecordStore::open(&path).unwrap();
        let r = store.get("Deployment:default:web").unwrap().unwrap();
        assert_eq!(r.items[0].item.path, "/spec/replicas");
        let (tr, _) = store
            .upsert_detection(&det(
                "Deployment",
                "default",
                "web",
                "/spec/replicas",
                1,
                3,
                t(5),
            ))
            .unwrap();
        assert_eq!(tr, Transition::Unchanged);
    }

    #[test]
    fn filters_and_statistics() {
        let (_dir, store) = store();
        store
            .upsert_detection(&det("Deployment", "a", "web", "/spec/replicas", 1, 3, t(0)))
            .unwrap(); // High
        store
            .upsert_detection(&det("Deployment", "b", "api", "/spec/replicas", 4, 5, t(1)))
            .unwrap(); // Medium
        store
            .upsert_detection(&det(
                "ConfigMap",
                "b",
                "cfg",
                "/metadata/labels/x",
                1,
                2,
                t(2),
            ))
            .unwrap(); // Low
        store.resolve("Deployment:a:web", t(30)).unwrap();
        store.resolve("ConfigMap:b:cfg", t(12)).unwrap();
        let ns_b = store
            .list(&RecordFilter {
                namespace: Some("b".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            ns_b.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            vec!["cfg", "api"]
        );
        let active = store
            .list(&RecordFilter {
                status: Some(RecordStatus::Active),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(active.len(), 1);
        let high = store
            .list(&RecordFilter {
                severity: Some(Severity::High),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(high[0].id, "Deployment:a:web");
        let one = store
            .list(&RecordFilter {
                limit: Some(1),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(one.len(), 1);
        let s = store.statistics().unwrap();
        assert_eq!((s.total, s.active, s.resolved), (3, 1, 2));
        assert_eq!(s.by_type.get(&DriftType::Scaling), Some(&2));
        assert_eq!(s.by_type.get(&DriftType::LabelChange), Some(&1));
        assert_eq!(s.by_severity.get(&Severity::High), Some(&1));
        assert_eq!(s.by_namespace.get("b"), Some(&2));
        assert_eq!(s.mean_time_to_resolve_seconds, Some(20.0));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["by_type"]["Scaling"], json!(2));
    }

    #[test]
    fn a_record_built_from_a_secret_diff_holds_no_secret_value() {
        let (_dir, store) = store();
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"},
            "data": {"password": crate::drift::base64::encode(b"correct-horse")},
            "stringData": {"token": "battery-staple"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"Y29ycmVjdC1ob3JzZQ==\"}}"}},
            "data": {"password": crate::drift::base64::encode(b"tr0ub4dor&3"), "token": crate::drift::base64::encode(b"battery-staple")}});
        let key = ObjectKey::new("Secret", "default", "db");
        let d = detect(&key, &desired, Some(&live), &ctx(&[])).unwrap();
        assert_eq!(d.items.len(), 1);
        assert_eq!(
            (d.items[0].drift_type, d.items[0].severity),
            (DriftType::SecretChange, Severity::High)
        );
        store.upsert_detection(&d).unwrap();
        let gone = detect(&key, &desired, None, &ctx(&[])).unwrap();
        store
            .resolve(&key.id(), Utc::now() + Duration::seconds(1))
            .unwrap();
        store.upsert_detection(&gone).unwrap();
        let mut text = serde_json::to_string(&store.history(&key.id()).unwrap()).unwrap();
        for file in ["drift.db", "drift.db-wal"] {
            let bytes = std::fs::read(_dir.path().join(file)).unwrap_or_default();
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        for plain in ["correct-horse", "battery-staple", "tr0ub4dor&3"] {
            assert!(!text.contains(plain), "{plain}");
            assert!(
                !text.contains(&crate::drift::base64::encode(plain.as_bytes())),
                "{plain} (base64)"
            );
        }
    }
}
