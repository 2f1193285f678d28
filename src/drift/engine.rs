//! The drift engine: the cluster-facing loop around the pure core. It keeps the desired objects of every
//! ConfigHubRepository (read back from its current artifact), watches the objects Flux applied from them,
//! compares on every change made by someone other than kustomize-controller (and in a full pass every
//! repository `spec.interval` and on `POST /api/v1/analyze`), records episodes, keeps the repository's
//! `Drifted` condition, and remediates by policy: report, revert through Flux, or propose a fix unit to
//! ConfigHub. Repositories and Kustomizations come from watch-fed stores, so an idle engine makes no
//! requests.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

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
use crate::source::{self, conditions as source_conditions};

/// How often the engine looks for repositories due a full check (each is due every `spec.interval`).
pub const TICK: Duration = Duration::from_secs(2);
/// How long the engine waits for its stores' first list before saying so (and then again as often).
const STORES_SLOW: Duration = Duration::from_secs(30);
/// In Revert mode, drift still there this long after a reconcile was requested (a request lost to a
/// restart, or a busy kustomize-controller) gets another request at its next check.
const REVERT_RETRY: Duration = Duration::from_secs(30);
/// A Flux correction of an object whose drift was seen this recently is already on record.
const RECENTLY_SEEN: Duration = Duration::from_secs(60);
/// Label a resolved fix unit carries (it is kept, never deleted).
pub const FIX_STATUS_LABEL: &str = "confighub.com/DriftStatus";

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

    /// Whether `repo` is due a full check now (and marks it checked).
    fn due(&self, repo: &Repo, everything: bool) -> bool {
        let key = (
            repo.chr.namespace().unwrap_or_default(),
            repo.chr.name_any(),
        );
        let interval = source::duration::parse_duration(&repo.chr.spec.interval)
            .unwrap_or(Duration::from_secs(600));
        let mut last = self.last_full.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        let due = everything
            || last
                .get(&key)
                .is_none_or(|t| now.duration_since(*t) >= interval);
        if due {
            last.insert(key, now);
        }
        due
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

    /// Whether `repo` had its full check in this pass.
    fn checked_now(&self, repo: &Repo) -> bool {
        let key = (
            repo.chr.namespace().unwrap_or_default(),
            repo.chr.name_any(),
        );
        let last = self.last_full.lock().unwrap_or_else(|p| p.into_inner());
        last.get(&key).is_some_and(|t| t.elapsed() < TICK)
    }

    /// Keeps the repository store current (the source reconciler has its own).
    async fn watch_repositories(
        self: Arc<Self>,
        writer: reflector::store::Writer<ConfigHubRepository>,
    ) {
        let api: Api<ConfigHubRepository> = match self.watch_namespace() {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            if let Err(err) = event {
                tracing::debug!(error = %err, "drift: ConfigHubRepository watch error; retrying");
            }
        }
    }

    /// Keeps the Kustomization store, the Kustomization → repository links and the per-kind watches
    /// current as Flux applies new inventories, without comparing anything (that is what watches and
    /// full checks are for).
    async fn watch_kustomizations(
        self: Arc<Self>,
        writer: reflector::store::Writer<DynamicObject>,
    ) {
        let api = self.kustomizations_api();
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let ks = match event {
                Ok(watcher::Event::Apply(ks) | watcher::Event::InitApply(ks)) => ks,
                Ok(_) => continue,
                Err(err) => {
                    tracing::debug!(error = %err, "drift: Kustomization watch error; retrying");
                    continue;
                }
            };
            let value = serde_json::to_value(&ks).unwrap_or(Value::Null);
            let Some(repo_key) = external_artifact_source(&value) else {
                continue;
            };
            let ks_key = (ks.namespace().unwrap_or_default(), ks.name_any());
            self.kustomizations
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(ks_key.clone(), repo_key.clone());
            for entry in super::inventory::entries(&value) {
                Arc::clone(&self).ensure_watch(&entry);
            }
            self.record_kustomization_readiness(&ks_key, &repo_key, &value)
                .await;
        }
    }

    /// Reads Flux back: a Kustomization of a ConfigHubRepository that is `Ready=False` cannot apply the
    /// desired state, so it is recorded (source `flux`) until it is Ready again.
    async fn record_kustomization_readiness(
        &self,
        ks: &RepoKey,
        repo_key: &RepoKey,
        value: &Value,
    ) {
        let key = ObjectKey::new("Kustomization", &ks.0, &ks.1);
        let Some((status, reason, message)) = super::inventory::ready_condition(value) else {
            return;
        };
        match status.as_str() {
            "True" => self.resolve(&key.id()).await,
            "False" => {
                let item = super::ClassifiedItem {
                    item: super::DriftItem {
                        path: "/status/conditions/Ready".into(),
                        desired: Some(json!("True")),
                        live: Some(json!(format!("False ({reason}): {message}"))),
                        actor: Some(FLUX_MANAGER.into()),
                    },
                    drift_type: super::DriftType::Other,
                    severity: super::Severity::Medium,
                    expected: false,
                };
                let repo = self.repo(repo_key);
                let detection = super::Detection {
                    key: key.clone(),
                    items: vec![item],
                    source: DetectionSource::Flux,
                    unit_slug: None,
                    revision: None,
                    repository: Some(ObjectRef::new(repo_key.0.clone(), repo_key.1.clone())),
                    kustomization: Some(ObjectRef::new(ks.0.clone(), ks.1.clone())),
                    detected_at: Utc::now(),
                };
                let Ok((transition, record)) = self.handles.store.upsert_detection(&detection)
                else {
                    return;
                };
                self.handles.metrics.observe(transition, &record);
                if transition == Transition::Started
                    && let Some(repo) = repo
                {
                    let note = format!(
                        "Kustomization {}/{} cannot apply: {reason}: {message}",
                        ks.0, ks.1
                    );
                    self.source
                        .publish_event(&repo.chr, EventType::Warning, "DriftDetected", &note)
                        .await;
                    self.update_drifted_condition(&repo).await;
                }
            }
            _ => {}
        }
    }

    /// Reads kustomize-controller's events back: objects it `configured` or re-`created` while the
    /// revision did not change are drift it just corrected. Drift already on record is skipped; drift
    /// the watches missed is recorded with source `flux`, resolved at once (Flux restored it).
    async fn watch_flux_events(self: Arc<Self>) {
        let api: Api<k8s_openapi::api::core::v1::Event> = match self.watch_namespace() {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let config = watcher::Config::default().fields("involvedObject.kind=Kustomization");
        let mut events = std::pin::pin!(watcher(api, config));
        while let Some(event) = events.next().await {
            let (event, seed_only) = match event {
                Ok(watcher::Event::Apply(e)) => (e, false),
                Ok(watcher::Event::InitApply(e)) => (e, true),
                Ok(_) => continue,
                Err(err) => {
                    tracing::debug!(error = %err, "drift: event watch error; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(revision) = event
                .annotations()
                .get(super::flux_events::REVISION_METADATA)
                .cloned()
            else {
                continue;
            };
            let ks_key = (
                event.involved_object.namespace.clone().unwrap_or_default(),
                event.involved_object.name.clone().unwrap_or_default(),
            );
            let previous = self
                .flux_revisions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(ks_key.clone(), revision.clone());
            if seed_only {
                continue;
            }
            let message = event.message.clone().unwrap_or_default();
            let corrected =
                super::flux_events::reverted_drift(&message, Some(&revision), previous.as_deref());
            for (key, drift_type) in corrected {
                self.record_flux_correction(&ks_key, key, drift_type).await;
            }
        }
    }

    async fn record_flux_correction(
        &self,
        ks: &RepoKey,
        key: ObjectKey,
        drift_type: super::DriftType,
    ) {
        let id = key.id();
        let recent = |t: Option<chrono::DateTime<Utc>>| {
            t.is_some_and(|t| (Utc::now() - t).to_std().unwrap_or_default() < RECENTLY_SEEN)
        };
        if let Ok(Some(record)) = self.handles.store.get(&id)
            && (record.status == RecordStatus::Active
                || recent(Some(record.last_seen))
                || recent(record.resolved_at))
        {
            return;
        }
        let repo_key = self
            .kustomizations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(ks)
            .cloned();
        let repo = repo_key.and_then(|k| self.repo(&k));
        let desired = repo.as_ref().and_then(|r| {
            r.objects
                .iter()
                .find(|o| o.kind() == key.kind && o.name() == key.name)
                .cloned()
        });
        let item = super::ClassifiedItem {
            item: super::DriftItem {
                path: String::new(),
                desired: None,
                live: None,
                actor: None,
            },
            severity: if drift_type == super::DriftType::Deleted {
                super::Severity::High
            } else {
                super::Severity::Low
            },
            drift_type,
            expected: false,
        };
        let detection = super::Detection {
            key: key.clone(),
            items: vec![item],
            source: DetectionSource::Flux,
            unit_slug: desired.as_ref().map(|d| d.unit_slug.clone()),
            revision: desired.as_ref().map(|d| d.revision.to_string()),
            repository: repo
                .as_ref()
                .map(|r| ObjectRef::new(r.chr.namespace().unwrap_or_default(), r.chr.name_any())),
            kustomization: Some(ObjectRef::new(ks.0.clone(), ks.1.clone())),
            detected_at: Utc::now(),
        };
        match self.handles.store.upsert_detection(&detection) {
            Ok((transition, record)) => {
                self.handles.metrics.observe(transition, &record);
                let _ = self.handles.store.resolve(&id, Utc::now());
                tracing::info!(%id, "drift corrected by Flux before it was seen; recorded from its event");
                if let Some(repo) = &repo {
                    let note = format!("{id} was changed and Flux restored it ({drift_type})");
                    self.source
                        .publish_event(&repo.chr, EventType::Normal, "DriftRevertedByFlux", &note)
                        .await;
                }
            }
            Err(err) => tracing::warn!(%id, error = %err, "drift: cannot record a Flux correction"),
        }
    }

    /// Takes repositories and Kustomizations from the stores, then compares the managed objects of every
    /// repository that is due.
    async fn full_check(self: Arc<Self>, everything: bool) -> kube::Result<()> {
        let source = DetectionSource::Analyze;
        timed("refresh_repos", self.refresh_repos()).await?;
        let mut links = HashMap::new();
        let mut checked = HashSet::new();
        for ks in self.kustomization_store.state() {
            let ks_value = serde_json::to_value(&*ks).unwrap_or(Value::Null);
            let Some(repo_key) = external_artifact_source(&ks_value) else {
                continue;
            };
            let Some(repo) = self.repo(&repo_key) else {
                continue;
            };
            let ks_key = (ks.namespace().unwrap_or_default(), ks.name_any());
            links.insert(ks_key.clone(), repo_key.clone());
            // The Kustomization's own record (Ready=False) is kept by its watch, not by this pass.
            checked.insert(format!("Kustomization:{}:{}", ks_key.0, ks_key.1));
            let entries = super::inventory::entries(&ks_value);
            // Nothing applied yet: not checked, so the first check comes as soon as Flux has applied.
            let due = !entries.is_empty() && self.due(&repo, everything);
            for entry in entries {
                Arc::clone(&self).ensure_watch(&entry);
                checked.insert(entry.record_id());
                if due {
                    timed(
                        "full check",
                        self.check(&repo, &ks_key, &entry, None, source),
                    )
                    .await;
                }
            }
        }
        tracing::debug!(
            kustomizations = links.len(),
            objects = checked.len(),
            everything,
            "drift: full pass"
        );
        *self
            .kustomizations
            .write()
            .unwrap_or_else(|p| p.into_inner()) = links.clone();

        // Records of objects no longer managed (pruned after their unit went away) are over.
        let repos: Vec<Arc<Repo>> = self
            .repos
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let missing_before =
            std::mem::take(&mut *self.missing.lock().unwrap_or_else(|p| p.into_inner()));
        let mut missing_now = HashSet::new();
        for record in self.active_records() {
            // Only when this pass read the repository's Kustomization and its inventory lacks the object:
            // a Kustomization that was not listed or linked this time proves nothing.
            let inventory_read = record.repository.as_ref().is_some_and(|r| {
                links
                    .values()
                    .any(|repo| repo.0 == r.namespace && repo.1 == r.name)
            });
            // ...and only after two passes in a row found it missing (an inventory being rewritten).
            let missing = inventory_read && !checked.contains(&record.id);
            let confirmed = missing && missing_before.contains(&record.id);
            if missing {
                missing_now.insert(record.id.clone());
            }
            if confirmed {
                timed("resolve unmanaged", self.resolve(&record.id)).await;
            }
        }
        *self.missing.lock().unwrap_or_else(|p| p.into_inner()) = missing_now;
        // The Drifted condition follows every episode start and end; this pass only repairs it (e.g. after
        // a restart), so it runs with the full checks.
        for repo in repos {
            if self.checked_now(&repo) {
                timed("drifted condition", self.update_drifted_condition(&repo)).await;
            }
        }
        Ok(())
    }

    fn repo(&self, key: &RepoKey) -> Option<Arc<Repo>> {
        self.repos
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// Loads the desired objects of every repository whose artifact changed since last time.
    async fn refresh_repos(&self) -> kube::Result<()> {
        let mut next = HashMap::new();
        for chr in self.repository_store.state() {
            let chr = ConfigHubRepository::clone(&chr);
            let key = (chr.namespace().unwrap_or_default(), chr.name_any());
            let Some(artifact) = chr.status.as_ref().and_then(|s| s.artifact.clone()) else {
                continue;
            };
            let known = self.repo(&key).filter(|r| r.digest == artifact.digest);
            let objects = match known {
                Some(repo) => repo.objects.clone(),
                None => {
                    let path = self.source.storage.root().join(&artifact.path);
                    let read = tokio::task::spawn_blocking(move || {
                        std::fs::read(&path)
                            .map_err(|e| e.to_string())
                            .and_then(|b| desired_objects(&b))
                    })
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                    match read {
                        Ok(objects) => objects,
                        Err(err) => {
                            tracing::warn!(namespace = %key.0, name = %key.1, error = %err, "drift: cannot read the artifact");
                            continue;
                        }
                    }
                }
            };
            next.insert(
                key,
                Arc::new(Repo {
                    chr,
                    digest: artifact.digest,
                    objects,
                }),
            );
        }
        *self.repos.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    /// Starts a cluster-wide watch on the Flux-managed objects of `entry`'s kind, once per kind.
    fn ensure_watch(self: Arc<Self>, entry: &InventoryEntry) {
        let key = (
            entry.group.clone(),
            entry.version.clone(),
            entry.kind.clone(),
        );
        if !self
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone())
        {
            return;
        }
        let entry = entry.clone();
        tokio::spawn(async move {
            let resource = match self.resources.resolve(&entry).await {
                Ok((resource, _)) => resource,
                Err(err) => {
                    tracing::warn!(kind = %entry.kind, error = %err, "drift: cannot watch this kind");
                    self.watched
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                    return;
                }
            };
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
            let config = watcher::Config::default().labels(FLUX_NAME_LABEL);
            let mut events = std::pin::pin!(watcher(api, config));
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(obj)) => {
                        Arc::clone(&self).on_change(&entry, obj, false).await
                    }
                    Ok(watcher::Event::Delete(obj)) => {
                        Arc::clone(&self).on_change(&entry, obj, true).await
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::debug!(kind = %entry.kind, error = %err, "drift: watch error; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }

    /// A watched object changed: compare now unless kustomize-controller itself wrote it and nothing
    /// is open for it (its own applies are not drift; they may end an episode, though).
    async fn on_change(
        self: Arc<Self>,
        kind_entry: &InventoryEntry,
        obj: DynamicObject,
        deleted: bool,
    ) {
        let labels = obj.labels();
        let (Some(ks_name), Some(ks_ns)) = (
            labels.get(FLUX_NAME_LABEL),
            labels.get(FLUX_NAMESPACE_LABEL),
        ) else {
            return;
        };
        let ks_key = (ks_ns.clone(), ks_name.clone());
        let Some(repo_key) = self
            .kustomizations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ks_key)
            .cloned()
        else {
            return;
        };
        let Some(repo) = self.repo(&repo_key) else {
            return;
        };
        let entry = InventoryEntry {
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            ..kind_entry.clone()
        };
        let live = serde_json::to_value(&obj).unwrap_or(Value::Null);
        let writer = last_writer(&live);
        let has_record = matches!(self.handles.store.get(&entry.record_id()), Ok(Some(r)) if r.status == RecordStatus::Active);
        if !deleted && writer.as_deref() == Some(FLUX_MANAGER) && !has_record {
            return;
        }
        // A "deleted" event also comes when the object merely lost Flux's labels (it left the watch's
        // selector): read it back to tell the two apart.
        let live = if deleted {
            self.resources.live(&entry).await.unwrap_or_default()
        } else {
            Some(live)
        };
        self.check(&repo, &ks_key, &entry, Some(live), DetectionSource::Watch)
            .await;
    }

    /// Compares one object with its desired state, records the result, and acts on it.
    async fn check(
        &self,
        repo: &Repo,
        ks: &RepoKey,
        entry: &InventoryEntry,
        live: Option<Option<Value>>,
        source: DetectionSource,
    ) {
        let Some(desired) = repo.objects.iter().find(|o| o.matches(entry)) else {
            return;
        };
        let started = std::time::Instant::now();
        let _timing = Timing(entry.record_id(), started);
        let applied = as_flux_applies(&desired.object, entry, &ks.0, &ks.1);
        let live = match live {
            Some(live) => live,
            None => match self.resources.live(entry).await {
                Ok(live) => live,
                Err(err) => {
                    tracing::debug!(id = %entry.record_id(), error = %err, "drift: cannot read the live object");
                    return;
                }
            },
        };
        // What kustomize-controller's next apply would make of the object; falls back to the plain desired
        // object when the dry run is refused (e.g. an immutable field changed).
        let compared = match &live {
            Some(_) => self.resources.dry_run_apply(entry, &applied).await.unwrap_or_else(|err| {
                tracing::debug!(id = %entry.record_id(), error = %err, "drift: dry run refused; comparing as is");
                applied.clone()
            }),
            None => applied.clone(),
        };
        let key = ObjectKey::new(&entry.kind, &entry.namespace, &entry.name);
        let repo_ref = ObjectRef::new(
            repo.chr.namespace().unwrap_or_default(),
            repo.chr.name_any(),
        );
        let ignore = repo
            .chr
            .spec
            .drift
            .as_ref()
            .map(|d| d.ignore.as_slice())
            .unwrap_or_default();
        let ctx = DetectionContext {
            ignore,
            source,
            unit_slug: Some(desired.unit_slug.clone()),
            revision: Some(desired.revision.to_string()),
            repository: Some(repo_ref),
            at: Utc::now(),
        };
        let detection = detect(&key, &compared, live.as_ref(), &ctx);
        let items = detection
            .as_ref()
            .map(|d| d.items.iter().map(|i| i.item.clone()).collect())
            .unwrap_or_default();
        self.handles
            .resources
            .upsert(ResourceState::new(&key, &compared, live.as_ref(), items));

        let Some(detection) = detection else {
            self.resolve(&key.id()).await;
            return;
        };
        let (transition, record) = match self.handles.store.upsert_detection(&detection) {
            Ok(result) => result,
            Err(err) => {
                tracing::warn!(id = %key.id(), error = %err, "drift: cannot record");
                return;
            }
        };
        self.handles.metrics.observe(transition, &record);
        if let Ok(n) = self.handles.store.active_count() {
            self.handles.metrics.set_active(n);
        }
        if transition == Transition::Started {
            if let Some(written) = live.as_ref().and_then(written_at) {
                let latency = (Utc::now() - written).num_milliseconds().max(0) as f64 / 1000.0;
                self.handles.metrics.detection_latency.observe(latency);
            }
            self.handles
                .metrics
                .processing
                .observe(started.elapsed().as_secs_f64());
            tracing::info!(id = %record.id, severity = %record.severity, actor = ?record.actor, source = ?record.source, "drift detected");
            let note = format!(
                "{} drifted ({}): {}",
                record.id, record.severity, record.suggestion
            );
            let kind = if record.expected {
                EventType::Normal
            } else {
                EventType::Warning
            };
            timed(
                "publish DriftDetected",
                self.source
                    .publish_event(&repo.chr, kind, "DriftDetected", &note),
            )
            .await;
            timed(
                "drifted condition after detection",
                self.update_drifted_condition(repo),
            )
            .await;
        }
        if !record.expected {
            self.remediate(repo, ks, &record, &compared, transition)
                .await;
        }
    }

    async fn resolve(&self, id: &str) {
        let record = match self.handles.store.get(id) {
            Ok(Some(r)) if r.status == RecordStatus::Active => r,
            _ => return,
        };
        if !matches!(self.handles.store.resolve(id, Utc::now()), Ok(true)) {
            return;
        }
        if let Ok(n) = self.handles.store.active_count() {
            self.handles.metrics.set_active(n);
        }
        self.revert_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        tracing::info!(%id, "drift resolved");
        let repo = record
            .repository
            .as_ref()
            .and_then(|r| self.repo(&(r.namespace.clone(), r.name.clone())));
        if let Some(repo) = repo {
            self.source
                .publish_event(
                    &repo.chr,
                    EventType::Normal,
                    "DriftResolved",
                    &format!("{id} matches the desired state again"),
                )
                .await;
            self.update_drifted_condition(&repo).await;
            if let Some(slug) = &record.fix_unit {
                self.label_fix_unit_resolved(&repo, slug).await;
            }
        }
    }

    fn active_records(&self) -> Vec<DriftRecord> {
        self.handles
            .store
            .list(&RecordFilter {
                status: Some(RecordStatus::Active),
                ..Default::default()
            })
            .unwrap_or_default()
    }

    /// Sets the repository's `Drifted` condition from its active, actionable records.
    async fn update_drifted_condition(&self, repo: &Repo) {
        let (ns, name) = (
            repo.chr.namespace().unwrap_or_default(),
            repo.chr.name_any(),
        );
        let active: Vec<DriftRecord> = self
            .active_records()
            .into_iter()
            .filter(|r| {
                !r.expected
                    && r.repository
                        .as_ref()
                        .is_some_and(|o| o.namespace == ns && o.name == name)
            })
            .collect();
        let api: Api<ConfigHubRepository> = Api::namespaced(self.client.clone(), &ns);
        let Ok(current) = api.get(&name).await else {
            return;
        };
        let previous = current.status.clone().unwrap_or_default().conditions;
        let worst = active
            .iter()
            .map(|r| r.severity)
            .max()
            .map(|s| s.to_string());
        let next = source_conditions::with_drifted(
            &previous,
            active.len(),
            worst.as_deref(),
            current.metadata.generation,
        );
        if next == previous {
            return;
        }
        let patch = json!({"status": {"conditions": next}});
        if let Err(err) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::debug!(%ns, %name, error = %err, "drift: cannot update the Drifted condition");
        }
    }

    async fn remediate(
        &self,
        repo: &Repo,
        ks: &RepoKey,
        record: &DriftRecord,
        compared: &Value,
        transition: Transition,
    ) {
        let Some(primary) = record.primary_item() else {
            return;
        };
        let mode = effective_mode(
            repo.chr.spec.drift.as_ref(),
            primary.drift_type,
            primary.severity,
        );
        match mode {
            DriftMode::Report => {}
            DriftMode::Revert => {
                let due = {
                    let mut requests = self
                        .revert_requests
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    let now = std::time::Instant::now();
                    let due = revert_due(transition, requests.get(&record.id).copied(), now);
                    if due {
                        requests.insert(record.id.clone(), now);
                    }
                    due
                };
                if due {
                    self.request_flux_reconcile(ks, &record.id).await;
                }
            }
            // A fix unit follows the episode's content; seeing the same drift again changes nothing.
            DriftMode::Propose if transition != Transition::Unchanged => {
                self.write_fix_unit(repo, record, compared).await
            }
            DriftMode::Propose => {}
        }
    }

    /// Asks kustomize-controller to reconcile now (`reconcile.fluxcd.io/requestedAt`), which restores
    /// the object; the watch then sees the restore and resolves the record.
    async fn request_flux_reconcile(&self, ks: &RepoKey, id: &str) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &ks.0, &kustomization_resource());
        let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": Utc::now().to_rfc3339()}}});
        match api
            .patch(&ks.1, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(%id, kustomization = %ks.1, "drift: requested a Flux reconcile to revert")
            }
            Err(err) => tracing::warn!(%id, error = %err, "drift: cannot request a Flux reconcile"),
        }
    }

    async fn confighub_for(
        &self,
        repo: &Repo,
    ) -> Result<(confighub::Client, confighub::Space), String> {
        let token = source::pipeline::read_token(
            &repo.chr,
            &self.source,
            &repo.chr.namespace().unwrap_or_default(),
        )
        .await
        .map_err(|f| f.message)?;
        let client = self
            .source
            .confighub(&repo.chr.spec.url, token)
            .map_err(|e| e.to_string())?;
        let space = match self
            .source
            .cached_space(&repo.chr.spec.url, &repo.chr.spec.space)
        {
            Some(space) => space,
            None => client
                .resolve_space(&repo.chr.spec.space)
                .await
                .map_err(|e| e.to_string())?,
        };
        Ok((client, space))
    }

    /// Writes (or updates) the episode's fix unit: the origin unit with the live values merged in.
    async fn write_fix_unit(&self, repo: &Repo, record: &DriftRecord, compared: &Value) {
        let result = self.try_write_fix_unit(repo, record, compared).await;
        match result {
            Ok(slug) => {
                let _ = self.handles.store.set_fix_unit(&record.id, &slug);
                self.handles.metrics.fix_unit("written");
                tracing::info!(id = %record.id, fix_unit = %slug, "drift: fix unit written");
            }
            Err((outcome, err)) => {
                self.handles.metrics.fix_unit(outcome);
                tracing::warn!(id = %record.id, error = %err, "drift: no fix unit written");
            }
        }
    }

    async fn try_write_fix_unit(
        &self,
        repo: &Repo,
        record: &DriftRecord,
        compared: &Value,
    ) -> Result<String, (&'static str, String)> {
        let failed = |e: String| ("failed", e);
        let origin_slug = record
            .unit_slug
            .clone()
            .ok_or(("refused", "no origin unit".to_string()))?;
        let (client, space) = self.confighub_for(repo).await.map_err(failed)?;
        let filter = confighub::Where::new()
            .eq("Slug", &origin_slug)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let origin = client
            .list_units(&space.space_id, Some(&filter), &[])
            .await
            .map_err(|e| failed(e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| failed(format!("origin unit '{origin_slug}' not found")))?;
        let data = match client
            .download_unit_data(&space.space_id, &origin.unit_id, None)
            .await
        {
            Ok(confighub::DataDownload::Data { bytes, .. }) => {
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Ok(confighub::DataDownload::NotModified) => {
                return Err(failed("unexpected 304".into()));
            }
            Err(e) => return Err(failed(e.to_string())),
        };
        let key = ObjectKey::new(&record.kind, &record.namespace, &record.name);
        let yaml = fix_unit::fix_unit_yaml_from(&data, &key, &record.items, Some(compared))
            .map_err(|e| ("refused", e.to_string()))?;

        let fix_space_slug = fix_space_slug(&repo.chr, &space.slug);
        let fix_space = client
            .create_space(
                &SpaceCreate {
                    slug: fix_space_slug,
                    ..Default::default()
                },
                true,
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
        let slug = match &record.fix_unit {
            Some(existing) => existing.clone(),
            None => fix_unit::fix_unit_slug(
                &origin_slug,
                &record.kind,
                &format!("{}-{}", record.name, record.episode),
            ),
        };
        let labels = fix_unit::fix_unit_labels(
            &origin_slug,
            &space.slug,
            record.revision.as_deref().unwrap_or_default(),
            &record.id,
        );
        let description = fix_unit::change_description(&key, &record.items);
        let unit = client
            .create_unit(
                &fix_space.space_id,
                &UnitCreate {
                    slug: slug.clone(),
                    toolchain_type: "Kubernetes/YAML".into(),
                    labels: labels.into_iter().collect(),
                    ..Default::default()
                },
                true,
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
        client
            .upload_unit_data(
                &fix_space.space_id,
                &unit.unit_id,
                yaml.into_bytes(),
                None,
                Some(&description),
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(slug)
    }

    async fn label_fix_unit_resolved(&self, repo: &Repo, slug: &str) {
        let Ok((client, space)) = self.confighub_for(repo).await else {
            return;
        };
        let Ok(Some(fix_space)) = client
            .find_space_by_slug(&fix_space_slug(&repo.chr, &space.slug))
            .await
        else {
            return;
        };
        let Ok(filter) = confighub::Where::new().eq("Slug", slug).build() else {
            return;
        };
        let Ok(units) = client
            .list_units(&fix_space.space_id, Some(&filter), &[])
            .await
        else {
            return;
        };
        for unit in units {
            let patch = UnitPatch {
                labels: Some(
                    [(FIX_STATUS_LABEL.to_string(), Some("resolved".to_string()))]
                        .into_iter()
                        .collect(),
                ),
                ..Default::default()
            };
            if let Err(err) = client
                .patch_unit(&fix_space.space_id, &unit.unit_id, &patch)
                .await
            {
                tracing::warn!(fix_unit = %slug, error = %err, "drift: cannot label the fix unit resolved");
            }
        }
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

/// `spec.drift.fixSpace`, else `<space>-drift-fixes`.
/// Whether to ask Flux (again) to revert: always when an episode starts; otherwise when no request is
/// known (e.g. after a restart) or the last one is [`REVERT_RETRY`] old and the drift is still there.
fn revert_due(
    transition: Transition,
    last_request: Option<std::time::Instant>,
    now: std::time::Instant,
) -> bool {
    transition == Transition::Started
        || last_request.is_none_or(|t| now.duration_since(t) >= REVERT_RETRY)
}

fn fix_space_slug(chr: &ConfigHubRepository, space_slug: &str) -> String {
    chr.spec
        .drift
        .as_ref()
        .and_then(|d| d.fix_space.clone())
        .unwrap_or_else(|| format!("{space_slug}-drift-fixes"))
}

fn kustomization_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
    ))
}

/// When the object was last written, from its newest managedFields entry.
fn written_at(live: &Value) -> Option<chrono::DateTime<Utc>> {
    let times: BTreeSet<&str> = live["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .filter_map(|f| f["time"].as_str())
        .collect();
    chrono::DateTime::parse_from_rfc3339(times.last()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_is_requested_on_start_and_again_only_when_drift_outlives_the_retry() {
        let now = std::time::Instant::now();
        let just = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        let long_ago = now.checked_sub(REVERT_RETRY).unwrap_or(now);
        assert!(revert_due(Transition::Started, Some(just), now));
        // After a restart nothing is known: the drift that is still there gets a request.
        assert!(revert_due(Transition::Unchanged, None, now));
        assert!(!revert_due(Transition::Unchanged, Some(just), now));
        assert!(!revert_due(Transition::Updated, Some(just), now));
        assert!(revert_due(Transition::Unchanged, Some(long_ago), now));
    }
}
