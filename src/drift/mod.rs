//! Drift: what changed in the cluster behind Flux's back, how bad it is, and what to do about it.
//!
//! The core is pure — [`mod@normalize`], [`mod@diff`], [`mod@classify`], [`suggest`], [`fix_unit`], [`health`] are
//! functions of data — and the edges are small: [`store`] (records in SQLite or PostgreSQL), [`api`] (REST), [`metrics`].
//! Watches, dry runs, conditions and remediation are wired by the controller (see docs/drift.md).

pub mod api;
pub mod base64;
pub(crate) mod blind;
pub(crate) mod classify;
pub(crate) mod cluster;
pub(crate) mod desired;
pub(crate) mod detect;
pub(crate) mod diff;
pub mod engine;
pub(crate) mod fields;
pub(crate) mod fix_unit;
pub(crate) mod flux_events;
pub(crate) mod health;
pub(crate) mod inventory;
pub mod metrics;
pub(crate) mod mode;
pub(crate) mod normalize;
pub(crate) mod pointer;
pub(crate) mod quantity;
pub mod record;
pub mod resources;
pub mod store;
pub(crate) mod suggest;
pub mod types;

#[cfg(test)]
mod real;

pub use classify::{classify, classify_item, expected, highest};
pub use detect::{Detection, DetectionContext, detect};
pub use diff::diff;
pub use fields::FieldOwners;
pub use normalize::{normalize, normalize_pair};
pub use record::{DetectionSource, DriftRecord, ObjectRef, RecordStatus};
pub use store::{Claim, DriftDb, RecordFilter, RecordStore, Statistics, StoreError, Transition};
pub use types::{ClassifiedItem, DriftItem, DriftType, IgnoreRule, ObjectKey, Severity};

use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::sync::Notify;

/// File name of the record database under `--storage-path`.
pub const DATABASE_FILE: &str = "drift.db";

/// The drift state the process shares: opened once by `run`, handed to the API now and to the
/// controller when it is wired (it fills `resources`, writes to `store`, waits on `analyze`).
#[derive(Clone)]
pub struct DriftHandles {
    pub store: Arc<RecordStore>,
    pub resources: Arc<resources::ResourceRegistry>,
    /// Fired by `POST /api/v1/analyze`; the controller runs a full comparison on each notification.
    pub analyze: Arc<Notify>,
    pub metrics: metrics::DriftMetrics,
    /// Where an unreadable SQLite database was moved when this process opened the store.
    pub moved_aside: Option<std::path::PathBuf>,
}

impl DriftHandles {
    /// Opens the record store `db` names (see `--drift-db`) and registers the metrics. A PostgreSQL database that is down does not stop the controller: the store reports it (log,
    /// `confighub_drift_store_up`) and connects once it is back.
    pub fn open(db: &DriftDb, registry: &mut Registry) -> Result<Self, StoreError> {
        let (store, moved) = RecordStore::open_db(db)?;
        if let Some(aside) = &moved {
            tracing::warn!(
                moved_to = %aside.display(),
                "drift: the record database was unreadable; it was moved aside and a new one started (drift history before now is in the moved file)"
            );
        }
        tracing::info!(backend = db.backend(), drift_db = %db, "drift: record store");
        store.register_metrics(registry);
        let store = Arc::new(store);
        let metrics = metrics::DriftMetrics::register(registry);
        Ok(Self {
            store,
            resources: Arc::new(resources::ResourceRegistry::default()),
            analyze: Arc::new(Notify::new()),
            metrics,
            moved_aside: moved,
        })
    }

    /// Sets the active drifts gauge from the store (off the async workers: the store blocks). A store that
    /// cannot be reached leaves it for the engine's first pass.
    pub async fn prime_active_gauge(&self) -> Result<(), StoreError> {
        let store = Arc::clone(&self.store);
        let count = tokio::task::spawn_blocking(move || store.active_count())
            .await
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
        match count {
            Ok(n) => self.metrics.set_active(n),
            Err(err) if err.is_unavailable() => {}
            Err(err) => return Err(err),
        }
        Ok(())
    }

    pub fn api_state(&self) -> api::DriftApiState {
        api::DriftApiState::new(
            Arc::clone(&self.store),
            Arc::clone(&self.resources) as Arc<dyn resources::ResourceView>,
            Arc::clone(&self.analyze),
        )
    }
}
