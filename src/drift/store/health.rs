//! Whether the record database can be reached: a gauge and an error counter, and a log line when it goes
//! away (then again with backoff while it stays away) and one when it is back. The engine and the API go
//! on without it: detection still runs, nothing is recorded, and the API answers 503.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::StoreError;
use crate::drift::blind::{LOG_BACKOFF_MAX, LOG_BACKOFF_MIN};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    /// `sqlite` or `postgres`.
    pub backend: String,
}

struct Outage {
    since: Instant,
    failures: u64,
    next_log: Instant,
    backoff: Duration,
}

pub(super) struct Health {
    labels: BackendLabels,
    /// `confighub_drift_store_up{backend}`: 1 while the record database answers, 0 while it cannot be reached.
    up: Family<BackendLabels, Gauge>,
    /// `confighub_drift_store_errors_total{backend}`: calls that failed because it could not be reached.
    errors: Family<BackendLabels, Counter>,
    outage: Mutex<Option<Outage>>,
}

impl Health {
    pub(super) fn new(backend: &str) -> Self {
        let labels = BackendLabels {
            backend: backend.to_string(),
        };
        let up = Family::<BackendLabels, Gauge>::default();
        up.get_or_create(&labels).set(1);
        let errors = Family::<BackendLabels, Counter>::default();
        let _ = errors.get_or_create(&labels);
        Self {
            labels,
            up,
            errors,
            outage: Mutex::new(None),
        }
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "confighub_drift_store_up",
            "1 while the drift record database answers, 0 while it cannot be reached (drift is then not recorded).",
            self.up.clone(),
        );
        registry.register(
            "confighub_drift_store_errors",
            "Calls on the drift record database that failed because it could not be reached.",
            self.errors.clone(),
        );
    }

    pub(super) fn observe<T>(&self, result: &Result<T, StoreError>) {
        let now = Instant::now();
        let mut outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Err(err @ StoreError::Unavailable(_)) => {
                self.errors.get_or_create(&self.labels).inc();
                self.up.get_or_create(&self.labels).set(0);
                match outage.as_mut() {
                    None => {
                        tracing::warn!(backend = %self.labels.backend, error = %err,
                            "drift: the record database cannot be reached; drift is not recorded and the API answers 503 until it is back");
                        *outage = Some(Outage {
                            since: now,
                            failures: 1,
                            next_log: now + LOG_BACKOFF_MIN,
                            backoff: LOG_BACKOFF_MIN * 2,
                        });
                    }
                    Some(o) => {
                        o.failures += 1;
                        if now >= o.next_log {
                            tracing::warn!(backend = %self.labels.backend, error = %err, failures = o.failures,
                                down_seconds = now.duration_since(o.since).as_secs(),
                                "drift: the record database still cannot be reached");
                            o.next_log = now + o.backoff;
                            o.backoff = (o.backoff * 2).min(LOG_BACKOFF_MAX);
                        }
                    }
                }
            }
            // Any other answer came from the database: it is reachable.
            _ => {
                if let Some(o) = outage.take() {
                    self.up.get_or_create(&self.labels).set(1);
                    tracing::info!(backend = %self.labels.backend, failures = o.failures,
                        down_seconds = now.duration_since(o.since).as_secs(),
                        "drift: the record database is reachable again");
                }
            }
        }
    }

    /// Whether the last call found the database unreachable.
    pub(super) fn is_down(&self) -> bool {
        self.outage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}
