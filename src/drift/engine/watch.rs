//! Watches: repositories and Kustomizations into the stores, and one watch per managed kind whose
//! changes by anyone but kustomize-controller are compared at once.

use std::sync::Arc;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{self};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

use super::*;

impl DriftEngine {
    /// Keeps the repository store current (the source reconciler has its own).
    pub(super) async fn watch_repositories(
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
    pub(super) async fn watch_kustomizations(
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
            for entry in crate::drift::inventory::entries(&value) {
                Arc::clone(&self).ensure_watch(&entry);
            }
            self.record_kustomization_readiness(&ks_key, &repo_key, &value)
                .await;
        }
    }

    /// Starts a cluster-wide watch on the Flux-managed objects of `entry`'s kind, once per kind.
    pub(super) fn ensure_watch(self: Arc<Self>, entry: &InventoryEntry) {
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
            let kind = KindId::new(&entry.group, &entry.kind);
            let resource = match self.resources.resolve(&entry).await {
                Ok((resource, _)) => resource,
                Err(err) => {
                    self.blind(&kind, Verb::Discover, &err).await;
                    // Retried at the next pass (the CRD may be installed later).
                    self.watched
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                    return;
                }
            };
            self.seen(&kind, &[Verb::Discover]).await;
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
            let config = watcher::Config::default().labels(FLUX_NAME_LABEL);
            // The runtime's backoff paces retries after refusals (up to 30 s apart), so a permission
            // granted later is picked up by itself.
            let mut events = std::pin::pin!(watcher(api, config).default_backoff());
            // Whether this (re)list follows a spell of blindness: then every object is compared, since
            // edits made meanwhile were never seen.
            let mut catching_up = false;
            let labels = crate::drift::metrics::KindLabels {
                group: entry.group.clone(),
                kind: entry.kind.clone(),
            };
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(obj)) => {
                        Arc::clone(&self).on_change(&entry, obj, false).await
                    }
                    Ok(watcher::Event::Delete(obj)) => {
                        Arc::clone(&self).on_change(&entry, obj, true).await
                    }
                    Ok(watcher::Event::Init) => {
                        catching_up = self
                            .blindness
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .is_blind(&kind);
                    }
                    Ok(watcher::Event::InitApply(obj)) if catching_up => {
                        Arc::clone(&self).on_change(&entry, obj, false).await
                    }
                    Ok(watcher::Event::InitApply(_)) => {}
                    Ok(watcher::Event::InitDone) => {
                        self.seen(&kind, &[Verb::List, Verb::Watch]).await;
                        catching_up = false;
                        self.handles.metrics.watching.get_or_create(&labels).set(1);
                    }
                    Err(err) => {
                        let (verb, err) = match err {
                            watcher::Error::InitialListFailed(e) => (Verb::List, e),
                            watcher::Error::WatchStartFailed(e)
                            | watcher::Error::WatchFailed(e) => (Verb::Watch, e),
                            watcher::Error::WatchError(status) => {
                                (Verb::Watch, kube::Error::Api(status))
                            }
                            watcher::Error::NoResourceVersion => continue,
                        };
                        self.handles.metrics.watching.get_or_create(&labels).set(0);
                        self.blind(&kind, verb, &err).await;
                    }
                }
            }
        });
    }

    /// A watched object changed: compare now unless kustomize-controller itself wrote it and nothing
    /// is open for it (its own applies are not drift; they may end an episode, though).
    pub(super) async fn on_change(
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
        let id = entry.record_id();
        let has_record = matches!(self.store(move |s| s.get(&id)).await, Ok(Some(r)) if r.status == RecordStatus::Active);
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
}
