//! The drift engine: the cluster-facing side of the pure core, as kube-runtime controllers.
//!
//! - `reconcile.rs`: a `Controller` over Flux Kustomizations that apply a ConfigHubRepository's
//!   ExternalArtifact. A reconcile compares every object of the inventory with the repository's artifact,
//!   records the Kustomization's own readiness, ends records of objects no longer managed, sets the
//!   repository's `Drifted` condition, and requeues after the repository's `spec.interval`. Requeue,
//!   backoff and de-duplication are the runtime's; `POST /api/v1/analyze` reconciles every Kustomization.
//! - `watch.rs`: one watch per managed kind; a change by anyone but kustomize-controller is compared at
//!   once (the detector; the reconcile is the safety net).
//! - `check.rs` (one object), `status.rs` (`Drifted`), `flux.rs` (reading Flux back), `remediate.rs`
//!   (Revert), `propose.rs` (fix units); decisions are pure functions in `crate::drift`.

mod check;
mod flux;
mod propose;
mod reconcile;
mod remediate;
mod status;
#[cfg(test)]
mod tests;
mod watch;
pub use status::apply_drifted;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::mpsc;

use super::blind::{Blindness, Change, KindId, Verb};
use super::cluster::{
    FLUX_MANAGER, FLUX_NAME_LABEL, FLUX_NAMESPACE_LABEL, Resources, as_flux_applies, last_writer,
};
use super::desired::{DesiredObject, desired_objects};
use super::inventory::{InventoryEntry, external_artifact_source};
use super::{
    Claim, DetectionContext, DetectionSource, DriftHandles, DriftRecord, ObjectKey,
    ObjectRef as RecordRef, RecordFilter, RecordStatus, StoreError, Transition, detect, fix_unit,
    mode::effective_mode, resources::ResourceState,
};
use crate::api::{ConfigHubRepository, DriftMode};
use crate::confighub::{self, SpaceCreate, UnitCreate, UnitPatch};
use crate::source;

/// In Revert mode, drift still there this long after a reconcile was requested (a request lost to a
/// restart, or a busy kustomize-controller) gets another request at its next check.
const REVERT_RETRY: Duration = Duration::from_secs(30);
/// A Flux correction of an object whose drift was seen this recently is already on record.
const RECENTLY_SEEN: Duration = Duration::from_secs(60);

/// What the engine knows about one repository: the desired objects of its current artifact.
struct Repo {
    chr: ConfigHubRepository,
    digest: String,
    objects: Vec<DesiredObject>,
}

type RepoKey = (String, String);

/// The objects of one repository last found as desired, and what they were judged against.
#[derive(Default)]
struct CleanSet {
    digest: String,
    generation: i64,
    /// Record id → the resourceVersion found as desired.
    objects: HashMap<String, String>,
}

pub struct DriftEngine {
    client: Client,
    /// Every ConfigHubRepository in scope, kept by the source reconciler's watch (shared).
    repository_store: Store<ConfigHubRepository>,
    /// Every Kustomization in scope, kept by the drift controller's own watch (set when it starts).
    kustomization_store: Store<DynamicObject>,
    source: Arc<source::Context>,
    handles: DriftHandles,
    resources: Resources,
    /// Desired objects per repository, reloaded when its artifact's digest changes.
    repos: RwLock<HashMap<RepoKey, Arc<Repo>>>,
    watched: Mutex<HashSet<(String, String, String)>>,
    /// Per repository, the objects last found as desired: the periodic comparison skips the dry run
    /// of one not written since (same resourceVersion, same artifact and spec).
    clean: Mutex<HashMap<RepoKey, CleanSet>>,
    /// Per watched kind, the resourceVersion of each object (record id → version) as its watch last saw
    /// it: an object whose version is the one found as desired needs no get either while the watch is up.
    versions: Mutex<HashMap<KindId, HashMap<String, String>>>,
    /// Per repository, the `Drifted` condition this process last applied: with the store's copy, it
    /// tells when nothing needs writing without reading the repository back.
    drifted_applied: Mutex<HashMap<RepoKey, Condition>>,
    /// Kustomization → the revision its latest event named (to tell drift corrections from deployments).
    flux_revisions: Mutex<HashMap<RepoKey, String>>,
    /// Kustomization → records its last reconcile found in no inventory (ended when seen twice).
    unmanaged: Mutex<HashMap<RepoKey, HashSet<String>>>,
    /// Kustomization → the objects of its last inventory, so the resources view drops those it no
    /// longer manages, and all of them when it is deleted.
    inventories: Mutex<HashMap<RepoKey, BTreeSet<ObjectKey>>>,
    /// When a Flux reconcile was last requested to revert each active record.
    revert_requests: Mutex<HashMap<String, std::time::Instant>>,
    /// Episodes `(id, episode)` whose fix unit this process was refused (not retried at every sighting).
    fix_unit_refused: Mutex<HashSet<(String, u32)>>,
    /// The managed kinds the engine cannot see or dry-run, and why.
    blindness: Mutex<Blindness>,
    /// Kustomizations to reconcile now (a kind they apply can be seen again).
    recheck: mpsc::UnboundedSender<ObjectRef<DynamicObject>>,
    recheck_rx: Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<DynamicObject>>>>,
    /// The Kustomization store's writer, taken by [`DriftEngine::run`].
    kustomization_writer: Mutex<Option<kube::runtime::reflector::store::Writer<DynamicObject>>>,
}

impl DriftEngine {
    pub fn new(
        client: Client,
        source: Arc<source::Context>,
        handles: DriftHandles,
        repository_store: Store<ConfigHubRepository>,
    ) -> Arc<Self> {
        let writer = kube::runtime::reflector::store::Writer::new(kustomization_resource());
        let (recheck, recheck_rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            repository_store,
            kustomization_store: writer.as_reader(),
            resources: Resources::new(client.clone()),
            client,
            source,
            handles,
            repos: RwLock::new(HashMap::new()),
            watched: Mutex::new(HashSet::new()),
            clean: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
            drifted_applied: Mutex::new(HashMap::new()),
            flux_revisions: Mutex::new(HashMap::new()),
            unmanaged: Mutex::new(HashMap::new()),
            inventories: Mutex::new(HashMap::new()),
            revert_requests: Mutex::new(HashMap::new()),
            fix_unit_refused: Mutex::new(HashSet::new()),
            blindness: Mutex::new(Blindness::default()),
            recheck,
            recheck_rx: Mutex::new(Some(recheck_rx)),
            kustomization_writer: Mutex::new(Some(writer)),
        })
    }

    /// Runs until `shutdown` resolves: the Kustomization controller, and the watch of Flux's events.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) {
        tokio::spawn(Arc::clone(&self).watch_flux_events());
        reconcile::run(self, shutdown).await;
    }

    /// `--watch-namespace`: the engine reads repositories, Kustomizations and events only there.
    fn watch_namespace(&self) -> Option<&str> {
        self.source.options.watch_namespace.as_deref()
    }

    fn kustomizations_api(&self) -> Api<DynamicObject> {
        match self.watch_namespace() {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &kustomization_resource()),
            None => Api::all_with(self.client.clone(), &kustomization_resource()),
        }
    }

    /// Drops what the engine keeps for repositories and Kustomizations that are gone (deleted, or out of
    /// the watched scope), so churn does not grow it: nothing else removes them.
    fn forget_gone(&self) {
        let repository_exists = |(ns, name): &RepoKey| {
            self.repository_store
                .get(&ObjectRef::new(name).within(ns))
                .is_some()
        };
        self.repos
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|key, _| repository_exists(key));
        self.clean
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|key, _| repository_exists(key));
        self.drifted_applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|key, _| repository_exists(key));
        let exists = |(ns, name): &RepoKey| {
            self.kustomization_store
                .get(&ObjectRef::new_with(name, kustomization_resource()).within(ns))
                .is_some()
        };
        self.flux_revisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|key, _| exists(key));
        self.unmanaged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|key, _| exists(key));
        let gone: Vec<ObjectKey> = {
            let mut inventories = self.inventories.lock().unwrap_or_else(|p| p.into_inner());
            let deleted: Vec<RepoKey> =
                inventories.keys().filter(|k| !exists(k)).cloned().collect();
            deleted
                .iter()
                .filter_map(|k| inventories.remove(k))
                .flatten()
                .collect()
        };
        for key in &gone {
            self.handles.resources.remove(key);
        }
    }

    /// Remembers `ks`'s inventory, dropping from the resources view what it no longer manages.
    fn track_inventory(&self, ks: &RepoKey, objects: BTreeSet<ObjectKey>) {
        let before = self
            .inventories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ks.clone(), objects.clone())
            .unwrap_or_default();
        for key in before.difference(&objects) {
            self.handles.resources.remove(key);
        }
    }

    /// Runs a call on the record database off the async workers (SQLite and the PostgreSQL client block).
    async fn store<T: Send + 'static>(
        &self,
        call: impl FnOnce(&super::RecordStore) -> T + Send + 'static,
    ) -> T {
        let store = Arc::clone(&self.handles.store);
        tokio::task::spawn_blocking(move || call(&store))
            .await
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))
    }

    /// Records that `verb` failed on `kind`: counted always, said in the log once (then with backoff),
    /// and the `Drifted` condition of every repository managing the kind updated when it is news.
    async fn blind(&self, kind: &KindId, verb: Verb, err: &kube::Error) {
        let cause = cause(err);
        let labels = blind_labels(kind, verb);
        self.handles
            .metrics
            .blind_errors
            .get_or_create(&labels)
            .inc();
        self.handles
            .metrics
            .unavailable
            .get_or_create(&labels)
            .set(1);
        let (change, failures) = {
            let mut blindness = self.blindness.lock().unwrap_or_else(|p| p.into_inner());
            let change = blindness.fail(kind, verb, &cause, std::time::Instant::now());
            (change, blindness.failures(kind, verb))
        };
        match change {
            Change::Started | Change::Continues { log: true } => tracing::warn!(
                %kind, verb = verb.as_str(), %cause, failures, error = %err,
                "drift: cannot {} {kind}; its drift goes undetected until this works (see docs/operations.md for the RBAC)",
                verb.as_str()
            ),
            _ => {}
        }
        if change == Change::Started {
            for repo in self.repos_with_kind(kind) {
                self.update_drifted_condition(&repo).await;
            }
        }
    }

    /// Records that `verbs` worked on `kind`; returns whether the kind was blind before.
    async fn seen(&self, kind: &KindId, verbs: &[Verb]) -> bool {
        let change = self
            .blindness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ok(kind, verbs);
        if change != Change::Recovered {
            return false;
        }
        for verb in verbs {
            let labels = blind_labels(kind, *verb);
            self.handles
                .metrics
                .unavailable
                .get_or_create(&labels)
                .set(0);
        }
        tracing::info!(%kind, "drift: {kind} can be seen again");
        // Edits made while blind were never seen, and get and the dry run may work now too: every
        // Kustomization applying the kind is reconciled again.
        for ks in self.kustomizations_with_kind(kind) {
            let _ = self.recheck.send(ks);
        }
        for repo in self.repos_with_kind(kind) {
            self.update_drifted_condition(&repo).await;
        }
        true
    }
}

/// Awaits `fut`, warning when it takes long (a stuck call would otherwise stall the engine silently).
async fn timed<T>(label: &str, fut: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = fut.await;
    if started.elapsed() > Duration::from_secs(2) {
        tracing::warn!(
            label,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "drift: slow step"
        );
    }
    out
}

/// Logs how long a check took when it drops (debug), so slow checks can be found.
struct Timing(String, std::time::Instant);

impl Drop for Timing {
    fn drop(&mut self) {
        let elapsed = self.1.elapsed();
        if elapsed > Duration::from_secs(2) {
            tracing::warn!(id = %self.0, elapsed_ms = elapsed.as_millis() as u64, "drift: slow check");
        }
    }
}

fn blind_labels(kind: &KindId, verb: Verb) -> super::metrics::BlindLabels {
    super::metrics::BlindLabels {
        group: kind.group.clone(),
        kind: kind.kind.clone(),
        verb: verb.as_str().to_string(),
    }
}

/// A short cause for a failed call: the API's reason (`Forbidden`, `NotFound`), or what kind of failure
/// it was. Never the whole error, which can be long and is logged beside it.
fn cause(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if !status.reason.is_empty() => status.reason.clone(),
        kube::Error::Api(status) => format!("HTTP {}", status.code),
        kube::Error::Discovery(_) => "NotFound".to_string(),
        _ => "Unreachable".to_string(),
    }
}

/// The drift key of a Kustomization (its own record: Ready=False).
fn kustomization_key(ks: &RepoKey) -> ObjectKey {
    ObjectKey::with_group("kustomize.toolkit.fluxcd.io", "Kustomization", &ks.0, &ks.1)
}

fn kustomization_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
    ))
}
