//! Reading Flux back: a Kustomization that cannot apply, and objects kustomize-controller re-applied
//! (its events) while the revision did not change.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use serde_json::{Value, json};

use super::*;

impl DriftEngine {
    /// Reads Flux back: a Kustomization of a ConfigHubRepository that is `Ready=False` cannot apply the
    /// desired state, so it is recorded (source `flux`) until it is Ready again.
    pub(super) async fn record_kustomization_readiness(
        &self,
        ks: &RepoKey,
        repo_key: &RepoKey,
        value: &Value,
    ) {
        let key = kustomization_key(ks);
        let Some((status, reason, message)) = crate::drift::inventory::ready_condition(value)
        else {
            return;
        };
        match status.as_str() {
            "True" => self.resolve(&key.id()).await,
            "False" => {
                let item = crate::drift::ClassifiedItem {
                    item: crate::drift::DriftItem {
                        path: "/status/conditions/Ready".into(),
                        desired: Some(json!("True")),
                        live: Some(json!(format!("False ({reason}): {message}"))),
                        actor: Some(FLUX_MANAGER.into()),
                    },
                    drift_type: crate::drift::DriftType::Other,
                    severity: crate::drift::Severity::Medium,
                    expected: false,
                };
                let repo = self.repo(repo_key).await.ok().flatten();
                let detection = crate::drift::Detection {
                    key: key.clone(),
                    items: vec![item],
                    source: DetectionSource::Flux,
                    unit_slug: None,
                    revision: None,
                    repository: Some(RecordRef::new(repo_key.0.clone(), repo_key.1.clone())),
                    kustomization: Some(RecordRef::new(ks.0.clone(), ks.1.clone())),
                    detected_at: Utc::now(),
                };
                let Ok((transition, record)) =
                    self.store(move |s| s.upsert_detection(&detection)).await
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
    pub(super) async fn watch_flux_events(self: Arc<Self>) {
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
                .get(crate::drift::flux_events::REVISION_METADATA)
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
            let corrected = crate::drift::flux_events::reverted_drift(
                &message,
                Some(&revision),
                previous.as_deref(),
            );
            for (key, drift_type) in corrected {
                self.record_flux_correction(&ks_key, key, drift_type).await;
            }
        }
    }

    pub(super) async fn record_flux_correction(
        &self,
        ks: &RepoKey,
        key: ObjectKey,
        drift_type: crate::drift::DriftType,
    ) {
        // Flux's event names `Kind/namespace/name` without a group: take it from the inventory.
        let key = self.with_inventory_group(ks, key);
        let id = key.id();
        let recent = |t: Option<chrono::DateTime<Utc>>| {
            t.is_some_and(|t| (Utc::now() - t).to_std().unwrap_or_default() < RECENTLY_SEEN)
        };
        let owned = id.clone();
        if let Ok(Some(record)) = self.store(move |s| s.get(&owned)).await
            && (record.status == RecordStatus::Active
                || recent(Some(record.last_seen))
                || recent(record.resolved_at))
        {
            return;
        }
        let ks_ref = ObjectRef::new_with(&ks.1, kustomization_resource()).within(&ks.0);
        let repo_key = self
            .kustomization_store
            .get(&ks_ref)
            .and_then(|k| external_artifact_source(&serde_json::to_value(&*k).ok()?));
        let repo = match repo_key {
            Some(key) => self.repo(&key).await.ok().flatten(),
            None => None,
        };
        let desired = repo.as_ref().and_then(|r| {
            r.objects
                .iter()
                .find(|o| o.kind() == key.kind && o.name() == key.name)
                .cloned()
        });
        let item = crate::drift::ClassifiedItem {
            item: crate::drift::DriftItem {
                path: String::new(),
                desired: None,
                live: None,
                actor: None,
            },
            severity: if drift_type == crate::drift::DriftType::Deleted {
                crate::drift::Severity::High
            } else {
                crate::drift::Severity::Low
            },
            drift_type,
            expected: false,
        };
        let detection = crate::drift::Detection {
            key: key.clone(),
            items: vec![item],
            source: DetectionSource::Flux,
            unit_slug: desired.as_ref().map(|d| d.unit_slug.clone()),
            revision: desired.as_ref().map(|d| d.revision.to_string()),
            repository: repo
                .as_ref()
                .map(|r| RecordRef::new(r.chr.namespace().unwrap_or_default(), r.chr.name_any())),
            kustomization: Some(RecordRef::new(ks.0.clone(), ks.1.clone())),
            detected_at: Utc::now(),
        };
        match self.store(move |s| s.upsert_detection(&detection)).await {
            Ok((transition, record)) => {
                self.handles.metrics.observe(transition, &record);
                let owned = id.clone();
                let _ = self.store(move |s| s.resolve(&owned, Utc::now())).await;
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

    /// `key` with the group of the Kustomization's inventory entry of the same kind, namespace and name.
    pub(super) fn with_inventory_group(&self, ks: &RepoKey, key: ObjectKey) -> ObjectKey {
        let found = self.kustomization_store.state().iter().find_map(|k| {
            if k.namespace().as_deref() != Some(ks.0.as_str()) || k.name_any() != ks.1 {
                return None;
            }
            let value = serde_json::to_value(&**k).unwrap_or(Value::Null);
            crate::drift::inventory::entries(&value)
                .into_iter()
                .find(|e| e.kind == key.kind && e.name == key.name && e.namespace == key.namespace)
        });
        match found {
            Some(entry) => entry.key(),
            None => key,
        }
    }
}
