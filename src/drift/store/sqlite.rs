//! The SQLite backend: one file under the storage path, one connection behind a `std::sync::Mutex` (which
//! is also the per-object write lock: one writer at a time). WAL mode lets readers of the file (for
//! example `sqlite3` during debugging) coexist with the writer.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::schema::{COMPONENT, SQLITE_BASE, SQLITE_STEPS, VERSION, pending};
use super::{RecordFilter, StoreError, Tx};
use crate::drift::record::{DriftRecord, RecordStatus};
use crate::drift::types::Severity;

pub(super) struct Sqlite {
    conn: Mutex<Connection>,
}

impl Sqlite {
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// [`Sqlite::open`], moving an unreadable file aside (see `RecordStore::open_or_rebuild`).
    pub(super) fn open_or_rebuild(path: &Path) -> Result<(Self, Option<PathBuf>), StoreError> {
        let healthy = Self::open(path).and_then(|db| {
            let check: String = db
                .conn()
                .query_row("PRAGMA quick_check", [], |row| row.get(0))?;
            Ok((db, check))
        });
        match healthy {
            Ok((db, check)) if check == "ok" => return Ok((db, None)),
            Ok((db, _)) => drop(db),
            Err(StoreError::Sqlite(_)) => {}
            Err(other) => return Err(other),
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".corrupt-{stamp}"));
        let aside = PathBuf::from(aside);
        std::fs::rename(path, &aside).map_err(StoreError::MoveAside)?;
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(companion));
        }
        Ok((Self::open(path)?, Some(aside)))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the connection; for a write in one immediate transaction.
    pub(super) fn run<T>(
        &self,
        write: bool,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        if !write {
            return f(&mut SqliteTx(&conn));
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&mut SqliteTx(&tx))?;
        tx.commit()?;
        Ok(out)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(SQLITE_BASE)?;
    let current: Option<i64> = tx
        .query_row(
            "SELECT version FROM schema_version WHERE component = ?1",
            [COMPONENT],
            |r| r.get(0),
        )
        .optional()?;
    let steps = pending(current, SQLITE_STEPS)?;
    for (_, sql) in &steps {
        tx.execute_batch(sql)?;
    }
    if current != Some(VERSION) {
        tx.execute(
            "INSERT INTO schema_version (component, version) VALUES (?1, ?2)
             ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            params![COMPONENT, VERSION],
        )?;
    }
    tx.commit()?;
    Ok(())
}

struct SqliteTx<'a>(&'a Connection);

fn body(b: Option<String>) -> Result<Option<DriftRecord>, StoreError> {
    Ok(b.map(|b| serde_json::from_str(&b)).transpose()?)
}

impl SqliteTx<'_> {
    fn bodies(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<DriftRecord>, StoreError> {
        let mut stmt = self.0.prepare(sql)?;
        let bodies = stmt.query_map(params, |r| r.get::<_, String>(0))?;
        bodies.map(|b| Ok(serde_json::from_str(&b?)?)).collect()
    }
}

impl Tx for SqliteTx<'_> {
    fn active(&mut self, id: &str) -> Result<Option<DriftRecord>, StoreError> {
        body(
            self.0
                .query_row(
                    "SELECT body FROM drift_records WHERE id = ?1 AND status = 'active'",
                    [id],
                    |r| r.get(0),
                )
                .optional()?,
        )
    }

    fn last_episode(&mut self, id: &str) -> Result<Option<u32>, StoreError> {
        Ok(self.0.query_row(
            "SELECT MAX(episode) FROM drift_records WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    fn write(&mut self, r: &DriftRecord, insert: bool) -> Result<(), StoreError> {
        let body = serde_json::to_string(r)?;
        let (status, severity, seen) = (
            r.status.as_str(),
            r.severity.as_str(),
            r.last_seen.timestamp_millis(),
        );
        if insert {
            self.0.execute(
                "INSERT INTO drift_records (id, episode, status, namespace, severity, last_seen_ms, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![r.id, r.episode, status, r.namespace, severity, seen, body],
            )?;
        } else {
            self.0.execute(
                "UPDATE drift_records SET status = ?3, severity = ?4, last_seen_ms = ?5, body = ?6
                 WHERE id = ?1 AND episode = ?2",
                params![r.id, r.episode, status, severity, seen, body],
            )?;
        }
        Ok(())
    }

    fn get(&mut self, id: &str) -> Result<Option<DriftRecord>, StoreError> {
        body(
            self.0
                .query_row(
                    "SELECT body FROM drift_records WHERE id = ?1
                     ORDER BY (status = 'active') DESC, episode DESC LIMIT 1",
                    [id],
                    |r| r.get(0),
                )
                .optional()?,
        )
    }

    fn history(&mut self, id: &str) -> Result<Vec<DriftRecord>, StoreError> {
        self.bodies(
            "SELECT body FROM drift_records WHERE id = ?1 ORDER BY episode",
            [id],
        )
    }

    fn list(&mut self, filter: &RecordFilter) -> Result<Vec<DriftRecord>, StoreError> {
        let limit = filter
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        self.bodies(
            "SELECT body FROM drift_records
             WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR severity = ?3)
             ORDER BY last_seen_ms DESC, seq DESC LIMIT ?4",
            params![
                filter.namespace,
                filter.status.map(RecordStatus::as_str),
                filter.severity.map(Severity::as_str),
                limit
            ],
        )
    }

    fn active_count(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self.0.query_row(
            "SELECT COUNT(*) FROM drift_records WHERE status = 'active'",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn claim(
        &mut self,
        id: &str,
        episode: u32,
        slug: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .query_row(
                "UPDATE drift_records
                 SET fix_unit_claim = COALESCE(fix_unit_claim, ?3), fix_claim_holder = ?4, fix_claim_until_ms = ?6
                 WHERE id = ?1 AND episode = ?2
                   AND (fix_claim_holder IS NULL OR fix_claim_holder = ?4 OR fix_claim_until_ms < ?5)
                 RETURNING fix_unit_claim",
                params![id, episode, slug, holder, now_ms, until_ms],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn release(&mut self, id: &str, episode: u32, holder: &str) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE drift_records SET fix_claim_holder = NULL, fix_claim_until_ms = NULL
             WHERE id = ?1 AND episode = ?2 AND fix_claim_holder = ?3",
            params![id, episode, holder],
        )?;
        Ok(())
    }
}
