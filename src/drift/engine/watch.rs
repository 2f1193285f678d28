//! One watch per managed kind: a change by anyone but kustomize-controller is compared at once.

use std::sync::Arc;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

use super::*;

impl DriftEngine {
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
                self.track_version(&entry, &kind, &event);
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

    /// Keeps the version of every object the watch reports; a (re)list starts the kind afresh, since
    /// objects deleted meanwhile are never reported.
    pub(super) fn track_version(
        &self,
        kind_entry: &InventoryEntry,
        kind: &KindId,
        event: &Result<watcher::Event<DynamicObject>, watcher::Error>,
    ) {
        let id = |obj: &DynamicObject| {
            InventoryEntry {
                namespace: obj.namespace().unwrap_or_default(),
                name: obj.name_any(),
                ..kind_entry.clone()
            }
            .record_id()
        };
        let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        let objects = versions.entry(kind.clone()).or_default();
        match event {
            Ok(watcher::Event::Init) | Err(_) => objects.clear(),
            Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                match obj.resource_version() {
                    Some(version) => objects.insert(id(obj), version),
                    None => objects.remove(&id(obj)),
                };
            }
            Ok(watcher::Event::Delete(obj)) => {
                objects.remove(&id(obj));
            }
            Ok(watcher::Event::InitDone) => {}
        }
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
        let ks_ref = ObjectRef::new_with(ks_name, kustomization_resource()).within(ks_ns);
        let Some((repo_key, ks_value)) = self.kustomization_store.get(&ks_ref).and_then(|ks| {
            let value = serde_json::to_value(&*ks).ok()?;
            Some((external_artifact_source(&value)?, value))
        }) else {
            return;
        };
        let Ok(Some(repo)) = self.repo(&repo_key).await else {
            return;
        };
        // Mid-delivery (a new artifact Flux has not applied yet) the cluster is compared when Flux
        // has applied it: the Kustomization's reconcile does that.
        if super::reconcile::behind_source(&ks_value, &repo) {
            return;
        }
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
