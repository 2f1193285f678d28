//! The PostgreSQL backend, shared by every instance of the controller (HA). One connection behind a
//! mutex (calls are short and already off the async workers). A lost connection is replaced on the next
//! call (and a call that found its connection dead is tried once more on a new one); while the server
//! cannot be reached, calls fail at once with [`StoreError::Unavailable`] between connection attempts
//! that back off from 1 s to 30 s, so a database that is down slows nothing and crashes nothing.
//!
//! Two instances may write during a leader hand-over: every write transaction first takes a transaction
//! advisory lock named by the object's id, so episodes and fix-unit claims of one object are decided
//! one writer at a time (the unique `(id, episode)` and one-active-record constraints back it up).

use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::{Client, Config, GenericClient, NoTls};
use sha2::{Digest, Sha256};

use super::schema::{COMPONENT, POSTGRES_BASE, POSTGRES_STEPS, VERSION, pending};
use super::{RecordFilter, StoreError, Tx};
use crate::drift::record::{DriftRecord, RecordStatus};
use crate::drift::types::Severity;

const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

pub(super) struct Postgres {
    config: Config,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    client: Option<Client>,
    /// After a failed connection attempt: no new attempt before this.
    retry_at: Option<Instant>,
    backoff: Duration,
    last_error: String,
}

impl Postgres {
    /// Parses `url` (a libpq URL or key=value string); connects on first use.
    pub(super) fn new(url: &str) -> Result<Self, StoreError> {
        // The parser's messages name the option, never its value (the password stays out of errors).
        let mut config = Config::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_tcp_user_timeout().is_none() {
            // A server that vanished without closing the connection is noticed within this.
            config.tcp_user_timeout(Duration::from_secs(15));
        }
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("confighub-source-controller");
        }
        Ok(Self {
            config,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the connection; with `lock_id`, in one transaction holding that object's lock.
    pub(super) fn run<T>(
        &self,
        lock_id: Option<&str>,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut state = self.state();
        for attempt in 0..2 {
            let reused = state.client.as_ref().is_some_and(|c| !c.is_closed());
            let client = state.connect(&self.config)?;
            let result = match lock_id {
                Some(id) => in_transaction(client, id, &mut f),
                None => f(&mut PgTx(client)),
            };
            match result {
                Err(StoreError::Postgres(e)) if lost(&e) => {
                    state.client = None;
                    if attempt == 0 && reused {
                        // The connection died since its last use (a server restart): once more on a new one.
                        continue;
                    }
                    return Err(StoreError::Unavailable(e.to_string()));
                }
                other => return other,
            }
        }
        unreachable!("the loop returns on its second attempt")
    }
}

impl State {
    /// The live connection, or a new one (schema checked), or `Unavailable` while backing off.
    fn connect(&mut self, config: &Config) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(self.client.as_mut().expect("checked above"));
        }
        self.client = None;
        let now = Instant::now();
        if let Some(at) = self.retry_at.filter(|at| *at > now) {
            return Err(StoreError::Unavailable(format!(
                "{} (next attempt in {}s)",
                self.last_error,
                at.duration_since(now).as_secs() + 1
            )));
        }
        let connected = config
            .connect(NoTls)
            .map_err(|e| e.to_string())
            .and_then(|mut client| {
                migrate(&mut client)
                    .map(|()| client)
                    .map_err(|e| e.to_string())
            });
        match connected {
            Ok(client) => {
                self.retry_at = None;
                self.backoff = Duration::ZERO;
                Ok(self.client.insert(client))
            }
            Err(err) => {
                self.backoff = (self.backoff * 2).clamp(RETRY_MIN, RETRY_MAX);
                self.retry_at = Some(now + self.backoff);
                self.last_error = err.clone();
                Err(StoreError::Unavailable(err))
            }
        }
    }
}

/// Whether the error means the connection is gone (rather than a refused statement).
fn lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // connection_exception (08xxx), admin_shutdown, crash_shutdown, cannot_connect_now.
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// A 64-bit advisory-lock key for `name`, the same in every version of the controller.
fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("confighub-drift:{name}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

fn in_transaction<T>(
    client: &mut Client,
    id: &str,
    f: &mut impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(id)])?;
    let out = f(&mut PgTx(&mut tx))?;
    tx.commit()?;
    Ok(out)
}

/// Creates the tables or moves them to [`VERSION`], one instance at a time.
fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key("schema")])?;
    tx.batch_execute(POSTGRES_BASE)?;
    let current: Option<i64> = tx
        .query_opt(
            "SELECT version FROM schema_version WHERE component = $1",
            &[&COMPONENT],
        )?
        .map(|r| r.get(0));
    for (_, sql) in pending(current, POSTGRES_STEPS)? {
        tx.batch_execute(sql)?;
    }
    if current != Some(VERSION) {
        tx.execute(
            "INSERT INTO schema_version (component, version) VALUES ($1, $2)
             ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            &[&COMPONENT, &VERSION],
        )?;
    }
    tx.commit()?;
    Ok(())
}

struct PgTx<'a, C: GenericClient>(&'a mut C);

fn body(b: Option<postgres::Row>) -> Result<Option<DriftRecord>, StoreError> {
    Ok(b.map(|r| serde_json::from_str(r.get::<_, &str>(0)))
        .transpose()?)
}

fn bodies(rows: Vec<postgres::Row>) -> Result<Vec<DriftRecord>, StoreError> {
    rows.iter()
        .map(|r| Ok(serde_json::from_str(r.get::<_, &str>(0))?))
        .collect()
}

impl<C: GenericClient> Tx for PgTx<'_, C> {
    fn active(&mut self, id: &str) -> Result<Option<DriftRecord>, StoreError> {
        body(self.0.query_opt(
            "SELECT body FROM drift_records WHERE id = $1 AND status = 'active'",
            &[&id],
        )?)
    }

    fn last_episode(&mut self, id: &str) -> Result<Option<u32>, StoreError> {
        let last: Option<i64> = self
            .0
            .query_one(
                "SELECT MAX(episode) FROM drift_records WHERE id = $1",
                &[&id],
            )?
            .get(0);
        Ok(last.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    fn write(&mut self, r: &DriftRecord, insert: bool) -> Result<(), StoreError> {
        let body = serde_json::to_string(r)?;
        let (episode, status, severity, seen) = (
            i64::from(r.episode),
            r.status.as_str(),
            r.severity.as_str(),
            r.last_seen.timestamp_millis(),
        );
        if insert {
            self.0.execute(
                "INSERT INTO drift_records (id, episode, status, namespace, severity, last_seen_ms, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&r.id, &episode, &status, &r.namespace, &severity, &seen, &body],
            )?;
        } else {
            self.0.execute(
                "UPDATE drift_records SET status = $3, severity = $4, last_seen_ms = $5, body = $6
                 WHERE id = $1 AND episode = $2",
                &[&r.id, &episode, &status, &severity, &seen, &body],
            )?;
        }
        Ok(())
    }

    fn get(&mut self, id: &str) -> Result<Option<DriftRecord>, StoreError> {
        body(self.0.query_opt(
            "SELECT body FROM drift_records WHERE id = $1
             ORDER BY (status = 'active') DESC, episode DESC LIMIT 1",
            &[&id],
        )?)
    }

    fn history(&mut self, id: &str) -> Result<Vec<DriftRecord>, StoreError> {
        bodies(self.0.query(
            "SELECT body FROM drift_records WHERE id = $1 ORDER BY episode",
            &[&id],
        )?)
    }

    fn list(&mut self, filter: &RecordFilter) -> Result<Vec<DriftRecord>, StoreError> {
        let limit = filter.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        bodies(self.0.query(
            "SELECT body FROM drift_records
             WHERE ($1::text IS NULL OR namespace = $1) AND ($2::text IS NULL OR status = $2)
               AND ($3::text IS NULL OR severity = $3)
             ORDER BY last_seen_ms DESC, seq DESC LIMIT $4",
            &[
                &filter.namespace,
                &filter.status.map(RecordStatus::as_str),
                &filter.severity.map(Severity::as_str),
                &limit,
            ],
        )?)
    }

    fn active_count(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self
            .0
            .query_one(
                "SELECT COUNT(*) FROM drift_records WHERE status = 'active'",
                &[],
            )?
            .get(0);
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
            .query_opt(
                "UPDATE drift_records
                 SET fix_unit_claim = COALESCE(fix_unit_claim, $3), fix_claim_holder = $4, fix_claim_until_ms = $6
                 WHERE id = $1 AND episode = $2
                   AND (fix_claim_holder IS NULL OR fix_claim_holder = $4 OR fix_claim_until_ms < $5)
                 RETURNING fix_unit_claim",
                &[&id, &i64::from(episode), &slug, &holder, &now_ms, &until_ms],
            )?
            .map(|r| r.get(0)))
    }

    fn release(&mut self, id: &str, episode: u32, holder: &str) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE drift_records SET fix_claim_holder = NULL, fix_claim_until_ms = NULL
             WHERE id = $1 AND episode = $2 AND fix_claim_holder = $3",
            &[&id, &i64::from(episode), &holder],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("Deployment:a:web"), lock_key("Deployment:a:web"));
        assert_ne!(lock_key("Deployment:a:web"), lock_key("Deployment:a:api"));
        assert_ne!(lock_key("schema"), lock_key("Deployment:a:web"));
    }

    #[test]
    fn a_bad_url_is_a_clear_error_without_the_password() {
        let err = Postgres::new("postgres://u:hunter2@host:notaport/db")
            .err()
            .expect("refused");
        let text = err.to_string();
        assert!(text.contains("invalid PostgreSQL URL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
