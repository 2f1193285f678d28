//! The drift engine: the cluster-facing loop around the pure core. It keeps the desired objects of every
//! ConfigHubRepository (read back from its current artifact), watches the objects Flux applied from them,
//! compares on every change made by someone other than kustomize-controller (and in a full pass every
//! repository `spec.interval` and on `POST /api/v1/analyze`), records episodes, keeps the repository's
//! `Drifted` condition, and remediates by policy: report, revert through Flux, or propose a fix unit to
//! ConfigHub. Repositories and Kustomizations come from watch-fed stores, so an idle engine makes no
//! requests.

mod check;
mod flux;
mod propose;
mod remediate;
mod status;
pub use status::apply_drifted;
mod watch;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::{Client, ResourceExt};

use super::blind::{Blindness, Change, KindId, Verb};
use super::cluster::{
    FLUX_MANAGER, FLUX_NAME_LABEL, FLUX_NAMESPACE_LABEL, Resources, as_flux_applies, last_writer,
};
use super::desired::{DesiredObject, desired_objects};
use super::inventory::{InventoryEntry, external_artifact_source};
use super::{
    DetectionContext, DetectionSource, DriftHandles, DriftRecord, ObjectKey, ObjectRef,
    RecordFilter, RecordStatus, Transition, detect, fix_unit, mode::effective_mode,
    resources::ResourceState,
};
use crate::api::{ConfigHubRepository, DriftMode};
use crate::confighub::{self, SpaceCreate, UnitCreate, UnitPatch};
use crate::source::{self};

/// How often the engine looks for repositories due a full check (each is due every `spec.interval`).
pub const TICK: Duration = Duration::from_secs(2);
/// How long the engine waits for its stores' first list before saying so (and then again as often).
const STORES_SLOW: Duration = Duration::from_secs(30);
/// In Revert mode, drift still there this long after a reconcile was requested (a request lost to a
/// restart, or a busy kustomize-controller) gets another request at its next check.
const REVERT_RETRY: Duration = Duration::from_secs(30);
/// A Flux correction of an object whose drift was seen this recently is already on record.
const RECENTLY_SEEN: Duration = Duration::from_secs(60);

/// What the engine knows about one repository.
struct Repo {
    chr: ConfigHubRepository,
    digest: String,
    objects: Vec<DesiredObject>,
}

type RepoKey = (String, String);

struct StoreWriters {
    repositories: reflector::store::Writer<ConfigHubRepository>,
    kustomizations: reflector::store::Writer<DynamicObject>,
}

pub struct DriftEngine {
    client: Client,
    /// Every ConfigHubRepository and Kustomization in scope, kept by watches: full passes read these
    /// instead of listing the API every tick.
    repository_store: Store<ConfigHubRepository>,
    kustomization_store: Store<DynamicObject>,
    /// The stores' writers, taken by [`DriftEngine::run`], which drives them.
    store_writers: Mutex<Option<StoreWriters>>,
    source: Arc<source::Context>,
    handles: DriftHandles,
    resources: Resources,
    repos: RwLock<HashMap<RepoKey, Arc<Repo>>>,
    /// Kustomization (namespace, name) → the repository whose ExternalArtifact it applies.
    kustomizations: RwLock<HashMap<RepoKey, RepoKey>>,
    watched: Mutex<HashSet<(String, String, String)>>,
    /// When each repository last had a full check.
    last_full: Mutex<HashMap<RepoKey, std::time::Instant>>,
    /// Kustomization → the revision its latest event named (to tell drift corrections from deployments).
    flux_revisions: Mutex<HashMap<RepoKey, String>>,
    /// Records whose object the last pass found in no inventory.
    missing: Mutex<HashSet<String>>,
    /// When a Flux reconcile was last requested to revert each active record.
    revert_requests: Mutex<HashMap<String, std::time::Instant>>,
    /// The managed kinds the engine cannot see or dry-run, and why.
    blindness: Mutex<Blindness>,
}

impl DriftEngine {
    pub fn new(client: Client, source: Arc<source::Context>, handles: DriftHandles) -> Arc<Self> {
        let repositories = reflector::store::Writer::default();
        let kustomizations = reflector::store::Writer::new(kustomization_resource());
        Arc::new(Self {
            repository_store: repositories.as_reader(),
            kustomization_store: kustomizations.as_reader(),
            store_writers: Mutex::new(Some(StoreWriters {
                repositories,
                kustomizations,
            })),
            resources: Resources::new(client.clone()),
            client,
            source,
            handles,
            repos: RwLock::new(HashMap::new()),
            kustomizations: RwLock::new(HashMap::new()),
            watched: Mutex::new(HashSet::new()),
            last_full: Mutex::new(HashMap::new()),
            flux_revisions: Mutex::new(HashMap::new()),
            missing: Mutex::new(HashSet::new()),
            revert_requests: Mutex::new(HashMap::new()),
            blindness: Mutex::new(Blindness::default()),
        })
    }

    /// Runs until `shutdown` resolves: Kustomizations and Flux's events are watched, every repository gets
    /// a full check every `spec.interval`, and every repository on each analyze request.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let Some(writers) = self
            .store_writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            tracing::error!("drift: the engine was started twice");
            return;
        };
        tokio::spawn(Arc::clone(&self).watch_repositories(writers.repositories));
        tokio::spawn(Arc::clone(&self).watch_kustomizations(writers.kustomizations));
        tokio::spawn(Arc::clone(&self).watch_flux_events());
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        // Full passes read the stores: wait for their first complete list, so a pass never judges from a
        // half-filled store.
        let ready = async {
            let _ = self.repository_store.wait_until_ready().await;
            let _ = self.kustomization_store.wait_until_ready().await;
        };
        tokio::pin!(ready);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = &mut ready => break,
                _ = tokio::time::sleep(STORES_SLOW) => tracing::warn!(
                    "drift: still waiting for the first list of ConfigHubRepositories and Kustomizations \
                     (is Flux's Kustomization CRD installed, and may this controller list it?)"
                ),
            }
        }
        loop {
            let everything = tokio::select! {
                _ = &mut shutdown => return,
                _ = ticker.tick() => false,
                _ = self.handles.analyze.notified() => true,
            };
            if let Err(err) = Arc::clone(&self).full_check(everything).await {
                tracing::warn!(error = %err, "drift: full check failed");
            }
            self.handles.metrics.passes.inc();
        }
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

    /// Runs a call on the record database off the async workers (SQLite blocks).
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
        let labels = super::metrics::BlindLabels {
            group: kind.group.clone(),
            kind: kind.kind.clone(),
            verb: verb.as_str().to_string(),
        };
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
        let change = self
            .blindness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fail(kind, verb, &cause, std::time::Instant::now());
        let failures = self
            .blindness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failures(kind, verb);
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
            let labels = super::metrics::BlindLabels {
                group: kind.group.clone(),
                kind: kind.kind.clone(),
                verb: verb.as_str().to_string(),
            };
            self.handles
                .metrics
                .unavailable
                .get_or_create(&labels)
                .set(0);
        }
        tracing::info!(%kind, "drift: {kind} can be seen again");
        for repo in self.repos_with_kind(kind) {
            // Edits made while blind were never seen: the repository gets a full check at the next tick
            // (which also shows whether get and the dry run work now).
            let key = (
                repo.chr.namespace().unwrap_or_default(),
                repo.chr.name_any(),
            );
            self.last_full
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            self.update_drifted_condition(&repo).await;
        }
        true
    }

    fn repo(&self, key: &RepoKey) -> Option<Arc<Repo>> {
        self.repos
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
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
