//! The PostgreSQL backend, shared by every instance of the controller (HA). One tokio-postgres connection
//! behind a mutex, driven by a small runtime of its own that the calls (already off the async workers)
//! block on, each with a deadline ([`CALL_TIMEOUT`]). A lost connection is replaced on the next
//! call (and a call that found its connection dead is tried once more on a new one); while the server
//! cannot be reached, calls fail at once with [`StoreError::Unavailable`] between connection attempts
//! that back off from 1 s to 30 s, so a database that is down slows nothing and crashes nothing.
//!
//! Two instances may write during a leader hand-over: every write transaction first takes a transaction
//! advisory lock named by the object's id, so episodes and fix-unit claims of one object are decided
//! one writer at a time (the unique `(id, episode)` and one-active-record constraints back it up).

use std::future::Future;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls, Row, Transaction, types::ToSql};

use super::schema::{COMPONENT, POSTGRES_BASE, POSTGRES_STEPS, VERSION, pending};
use super::{RecordFilter, StoreError, Tx};
use crate::drift::record::{DriftRecord, RecordStatus};
use crate::drift::types::Severity;

const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Longest wait for one connection (with its schema check) or one statement: a server that took the
/// connection but does not answer (hung, stopped, a proxy in front of a dead one) is given up on, and
/// the connection dropped, instead of blocking the store for ever.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

pub(super) struct Postgres {
    config: Config,
    /// Drives the client's connection and timeouts; calls block on it from the blocking pool.
    runtime: Option<Runtime>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    client: Option<(Client, JoinHandle<()>)>,
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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Config(format!("starting the PostgreSQL client: {e}")))?;
        Ok(Self {
            config,
            runtime: Some(runtime),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("taken only on drop")
    }

    /// Runs `f` on the connection; with `lock_id`, in one transaction holding that object's lock.
    pub(super) fn run<T>(
        &self,
        lock_id: Option<&str>,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let rt = self.runtime();
        let mut state = self.state();
        for attempt in 0..2 {
            let reused = state.client.as_ref().is_some_and(|(c, _)| !c.is_closed());
            let client = state.connect(rt, &self.config)?;
            let result = match lock_id {
                Some(id) => in_transaction(rt, client, id, &mut f),
                None => f(&mut PgTx {
                    on: On::Client(client),
                    rt,
                }),
            };
            match result {
                Err(StoreError::Postgres(e)) if lost(&e) => {
                    state.drop_client();
                    if attempt == 0 && reused {
                        // The connection died since its last use (a server restart): once more on a new one.
                        continue;
                    }
                    return Err(StoreError::Unavailable(e.to_string()));
                }
                Err(err @ StoreError::Unavailable(_)) => {
                    // No answer in time: this connection is not to be trusted again.
                    state.drop_client();
                    return Err(err);
                }
                other => return other,
            }
        }
        unreachable!("the loop returns on its second attempt")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.state().drop_client();
        // Dropping a runtime may block, which an async caller must not; nothing is left to wait for.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `fut` on `rt`, giving up after [`CALL_TIMEOUT`].
fn block<T>(
    rt: &Runtime,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError> {
    // The timer is made inside the runtime (it needs one).
    match rt.block_on(async { tokio::time::timeout(CALL_TIMEOUT, fut).await }) {
        Ok(result) => Ok(result?),
        Err(_) => Err(StoreError::Unavailable(format!(
            "the database did not answer within {}s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

impl State {
    fn drop_client(&mut self) {
        if let Some((_, task)) = self.client.take() {
            task.abort();
        }
    }

    /// The live connection, or a new one (schema checked), or `Unavailable` while backing off.
    fn connect(&mut self, rt: &Runtime, config: &Config) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(|(c, _)| !c.is_closed()) {
            return Ok(&mut self.client.as_mut().expect("checked above").0);
        }
        self.drop_client();
        // The same text as the failed attempt's: it ends up in the `Drifted` condition, which must not
        // change at every call.
        if self.retry_at.is_some_and(|at| at > Instant::now()) {
            return Err(StoreError::Unavailable(self.last_error.clone()));
        }
        // libpq's meaning: connect_timeout bounds the whole connection (tokio-postgres: only the TCP part).
        let deadline = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CALL_TIMEOUT);
        let connected = rt.block_on(async {
            let (mut client, connection) =
                match tokio::time::timeout(deadline, config.connect(NoTls)).await {
                    Ok(Ok(pair)) => pair,
                    Ok(Err(err)) => return Err(err.to_string()),
                    Err(_) => {
                        return Err(format!(
                            "no connection within {}s (connect_timeout)",
                            deadline.as_secs()
                        ));
                    }
                };
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            match tokio::time::timeout(CALL_TIMEOUT, migrate(&mut client)).await {
                Ok(Ok(())) => Ok((client, task)),
                failed => {
                    task.abort();
                    Err(match failed {
                        Ok(Err(err)) => err.to_string(),
                        _ => format!("no answer within {}s", CALL_TIMEOUT.as_secs()),
                    })
                }
            }
        });
        match connected {
            Ok(pair) => {
                self.retry_at = None;
                self.backoff = Duration::ZERO;
                Ok(&mut self.client.insert(pair).0)
            }
            Err(err) => {
                self.backoff = (self.backoff * 2).clamp(RETRY_MIN, RETRY_MAX);
                // From the failure: an attempt can take up to its timeouts.
                self.retry_at = Some(Instant::now() + self.backoff);
                self.last_error = err.clone();
                Err(StoreError::Unavailable(err))
            }
        }
    }
}

/// Whether the error means the connection is gone (rather than a refused statement).
fn lost(e: &tokio_postgres::Error) -> bool {
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
    rt: &Runtime,
    client: &mut Client,
    id: &str,
    f: &mut impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = block(rt, client.transaction())?;
    block(
        rt,
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(id)]),
    )?;
    let out = f(&mut PgTx {
        on: On::Tx(&tx),
        rt,
    })?;
    block(rt, tx.commit())?;
    Ok(out)
}

/// Creates the tables or moves them to [`VERSION`], one instance at a time.
async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key("schema")])
        .await?;
    tx.batch_execute(POSTGRES_BASE).await?;
    let current: Option<i64> = tx
        .query_opt(
            "SELECT version FROM schema_version WHERE component = $1",
            &[&COMPONENT],
        )
        .await?
        .map(|r| r.get(0));
    for (_, sql) in pending(current, POSTGRES_STEPS)? {
        tx.batch_execute(sql).await?;
    }
    if current != Some(VERSION) {
        tx.execute(
            "INSERT INTO schema_version (component, version) VALUES ($1, $2)
             ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            &[&COMPONENT, &VERSION],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Where a statement runs: on the connection, or in the open transaction.
enum On<'a> {
    Client(&'a Client),
    Tx(&'a Transaction<'a>),
}

struct PgTx<'a> {
    on: On<'a>,
    rt: &'a Runtime,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl PgTx<'_> {
    fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        match &self.on {
            On::Client(c) => block(self.rt, c.query(sql, params)),
            On::Tx(t) => block(self.rt, t.query(sql, params)),
        }
    }

    fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
        match &self.on {
            On::Client(c) => block(self.rt, c.query_opt(sql, params)),
            On::Tx(t) => block(self.rt, t.query_opt(sql, params)),
        }
    }

    fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row, StoreError> {
        match &self.on {
            On::Client(c) => block(self.rt, c.query_one(sql, params)),
            On::Tx(t) => block(self.rt, t.query_one(sql, params)),
        }
    }

    fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        match &self.on {
            On::Client(c) => block(self.rt, c.execute(sql, params)),
            On::Tx(t) => block(self.rt, t.execute(sql, params)),
        }
    }
}

fn body(b: Option<Row>) -> Result<Option<DriftRecord>, StoreError> {
    Ok(b.map(|r| serde_json::from_str(r.get::<_, &str>(0)))
        .transpose()?)
}

fn bodies(rows: Vec<Row>) -> Result<Vec<DriftRecord>, StoreError> {
    rows.iter()
        .map(|r| Ok(serde_json::from_str(r.get::<_, &str>(0))?))
        .collect()
}

impl Tx for PgTx<'_> {
    fn active(&mut self, id: &str) -> Result<Option<DriftRecord>, StoreError> {
        body(self.query_opt(
            "SELECT body FROM drift_records WHERE id = $1 AND status = 'active'",
            &[&id],
        )?)
    }

    fn last_episode(&mut self, id: &str) -> Result<Option<u32>, StoreError> {
        let last: Option<i64> = self
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
            self.execute(
                "INSERT INTO drift_records (id, episode, status, namespace, severity, last_seen_ms, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&r.id, &episode, &status, &r.namespace, &severity, &seen, &body],
            )?;
        } else {
            self.execute(
                "UPDATE drift_records SET status = $3, severity = $4, last_seen_ms = $5, body = $6
                 WHERE id = $1 AND episode = $2",
                &[&r.id, &episode, &status, &severity, &seen, &body],
            )?;
        }
        Ok(())
    }

    fn get(&mut self, id: &str) -> Result<Option<DriftRecord>, StoreError> {
        body(self.query_opt(
            "SELECT body FROM drift_records WHERE id = $1
             ORDER BY (status = 'active') DESC, episode DESC LIMIT 1",
            &[&id],
        )?)
    }

    fn history(&mut self, id: &str) -> Result<Vec<DriftRecord>, StoreError> {
        bodies(self.query(
            "SELECT body FROM drift_records WHERE id = $1 ORDER BY episode",
            &[&id],
        )?)
    }

    fn list(&mut self, filter: &RecordFilter) -> Result<Vec<DriftRecord>, StoreError> {
        let limit = filter.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let (status, severity) = (
            filter.status.map(RecordStatus::as_str),
            filter.severity.map(Severity::as_str),
        );
        bodies(self.query(
            "SELECT body FROM drift_records
             WHERE ($1::text IS NULL OR namespace = $1) AND ($2::text IS NULL OR status = $2)
               AND ($3::text IS NULL OR severity = $3)
             ORDER BY last_seen_ms DESC, seq DESC LIMIT $4",
            &[&filter.namespace, &status, &severity, &limit],
        )?)
    }

    fn active_count(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self
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
        self.execute(
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
