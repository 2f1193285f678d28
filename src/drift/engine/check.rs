//! Comparing: full passes over every repository that is due, and the check of one object (dry run,
//! diff, record), which every watch event and full pass ends in.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kube::ResourceExt;
use kube::runtime::events::EventType;
use serde_json::Value;

use super::*;

impl DriftEngine {
    /// Whether `repo` is due a full check now (and marks it checked).
    pub(super) fn due(&self, repo: &Repo, everything: bool) -> bool {
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

    /// Whether `repo` had its full check in this pass.
    pub(super) fn checked_now(&self, repo: &Repo) -> bool {
        let key = (
            repo.chr.namespace().unwrap_or_default(),
            repo.chr.name_any(),
        );
        let last = self.last_full.lock().unwrap_or_else(|p| p.into_inner());
        last.get(&key).is_some_and(|t| t.elapsed() < TICK)
    }

    /// Takes repositories and Kustomizations from the stores, then compares the managed objects of every
    /// repository that is due.
    pub(super) async fn full_check(self: Arc<Self>, everything: bool) -> kube::Result<()> {
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
            checked.insert(kustomization_key(&ks_key).id());
            let entries = crate::drift::inventory::entries(&ks_value);
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
        for record in self.active_records().await {
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

    /// Loads the desired objects of every repository whose artifact changed since last time.
    pub(super) async fn refresh_repos(&self) -> kube::Result<()> {
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

    /// Compares one object with its desired state, records the result, and acts on it.
    pub(super) async fn check(
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
        let kind = KindId::new(&entry.group, &entry.kind);
        let live = match live {
            Some(live) => live,
            None => match self.resources.live(entry).await {
                Ok(live) => {
                    self.seen(&kind, &[Verb::Get]).await;
                    live
                }
                Err(err) => {
                    self.blind(&kind, Verb::Get, &err).await;
                    return;
                }
            },
        };
        // What kustomize-controller's next apply would make of the object. A dry run the API refuses for
        // the object's content (e.g. an immutable field changed) falls back to the plain desired object; one
        // refused to us (403) or failing is blindness, and nothing is judged from it.
        let compared = match &live {
            Some(_) => match self.resources.dry_run_apply(entry, &applied).await {
                Ok(compared) => {
                    self.seen(&kind, &[Verb::Patch]).await;
                    compared
                }
                Err(kube::Error::Api(status)) if status.code == 400 || status.code == 422 => {
                    tracing::debug!(id = %entry.record_id(), error = %status, "drift: dry run refused; comparing as is");
                    applied.clone()
                }
                Err(err) => {
                    self.blind(&kind, Verb::Patch, &err).await;
                    return;
                }
            },
            None => applied.clone(),
        };
        let key = entry.key();
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
        let upsert = detection.clone();
        let (transition, record) = match self.store(move |s| s.upsert_detection(&upsert)).await {
            Ok(result) => result,
            Err(err) => {
                tracing::warn!(id = %key.id(), error = %err, "drift: cannot record");
                return;
            }
        };
        self.handles.metrics.observe(transition, &record);
        if let Ok(n) = self.store(|s| s.active_count()).await {
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

    pub(super) async fn resolve(&self, id: &str) {
        let owned = id.to_string();
        let record = match self.store(move |s| s.get(&owned)).await {
            Ok(Some(r)) if r.status == RecordStatus::Active => r,
            _ => return,
        };
        let owned = id.to_string();
        if !matches!(
            self.store(move |s| s.resolve(&owned, Utc::now())).await,
            Ok(true)
        ) {
            return;
        }
        if let Ok(n) = self.store(|s| s.active_count()).await {
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

    pub(super) async fn active_records(&self) -> Vec<DriftRecord> {
        self.store(|s| {
            s.list(&RecordFilter {
                status: Some(RecordStatus::Active),
                ..Default::default()
            })
        })
        .await
        .unwrap_or_default()
    }
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
