//! Comparing one object (dry run, diff, record), which every watch event and reconcile ends in, and the
//! desired objects it is compared with.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use kube::ResourceExt;
use kube::runtime::events::EventType;
use serde_json::Value;

use super::*;

impl DriftEngine {
    /// The repository `key` with the desired objects of its current artifact (read from storage only
    /// when the digest changed); `None` while it has no artifact.
    pub(super) async fn repo(
        &self,
        key: &RepoKey,
    ) -> Result<Option<Arc<Repo>>, super::reconcile::Error> {
        let Some(chr) = self
            .repository_store
            .get(&ObjectRef::new(&key.1).within(&key.0))
        else {
            return Ok(None);
        };
        let Some(artifact) = chr.status.as_ref().and_then(|s| s.artifact.clone()) else {
            return Ok(None);
        };
        let cached = self
            .repos
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .filter(|r| r.digest == artifact.digest)
            .map(|r| r.objects.clone());
        let objects = match cached {
            Some(objects) => objects,
            None => {
                let path = self.source.storage.root().join(&artifact.path);
                tokio::task::spawn_blocking(move || {
                    std::fs::read(&path)
                        .map_err(|e| e.to_string())
                        .and_then(|b| desired_objects(&b))
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
                .map_err(|e| super::reconcile::Error::Artifact(key.0.clone(), key.1.clone(), e))?
            }
        };
        let repo = Arc::new(Repo {
            chr: ConfigHubRepository::clone(&chr),
            digest: artifact.digest,
            objects,
        });
        self.repos
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), Arc::clone(&repo));
        Ok(Some(repo))
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
        let kind = KindId::new(&entry.group, &entry.kind);
        if live.is_none()
            && source == DetectionSource::Analyze
            && self.unchanged_since_clean(repo, entry, &kind)
        {
            return;
        }
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
        if let Some(live) = &live
            && source == DetectionSource::Analyze
            && self.still_clean(repo, &entry.record_id(), live)
        {
            return;
        }
        // Parsed only now: most periodic checks end above without it.
        let applied = as_flux_applies(&desired.object(), entry, &ks.0, &ks.1);
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
                // The object (or its namespace) went away since the get: the watch reports the
                // deletion; it says nothing about what we can see.
                Err(err) if going_away(&err) => {
                    tracing::debug!(id = %entry.record_id(), error = %err, "drift: object went away during the check");
                    return;
                }
                Err(err) => {
                    self.blind(&kind, Verb::Patch, &err).await;
                    return;
                }
            },
            None => applied.clone(),
        };
        let key = entry.key();
        let repo_ref = RecordRef::new(
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
            if let Some(live) = &live {
                self.remember_clean(repo, key.id(), live);
            }
            self.resolve(&key.id()).await;
            return;
        };
        self.forget_clean(repo, &key.id());
        let upsert = detection.clone();
        let (transition, record) = match self.store(move |s| s.upsert_detection(&upsert)).await {
            Ok(result) => result,
            // The store says so itself (log with backoff, metric); each check need not.
            Err(err) if err.is_unavailable() => return,
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

    /// Whether `live` is the very version of object `id` last found as desired against this artifact
    /// and spec (what the dry run would say again).
    fn still_clean(&self, repo: &Repo, id: &str, live: &Value) -> bool {
        let Some(version) = live["metadata"]["resourceVersion"].as_str() else {
            return false;
        };
        let clean = self.clean.lock().unwrap_or_else(|p| p.into_inner());
        clean
            .get(&repo_key(repo))
            .filter(|c| c.digest == repo.digest && c.generation == generation(repo))
            .and_then(|c| c.objects.get(id))
            .is_some_and(|v| v == version)
    }

    /// Whether the kind's watch is up and its latest version of the object is the one last found as
    /// desired: then neither a get nor a dry run can say anything new (an edit since would have moved the
    /// version, and the watch compares edits by others as they come).
    fn unchanged_since_clean(&self, repo: &Repo, entry: &InventoryEntry, kind: &KindId) -> bool {
        if self
            .blindness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_blind(kind)
        {
            return false;
        }
        let id = entry.record_id();
        let version = {
            let versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
            match versions.get(kind).and_then(|v| v.get(&id)) {
                Some(version) => version.clone(),
                None => return false,
            }
        };
        let live = serde_json::json!({"metadata": {"resourceVersion": version}});
        self.still_clean(repo, &id, &live)
    }

    fn remember_clean(&self, repo: &Repo, id: String, live: &Value) {
        let Some(version) = live["metadata"]["resourceVersion"].as_str() else {
            return;
        };
        let mut clean = self.clean.lock().unwrap_or_else(|p| p.into_inner());
        let set = clean.entry(repo_key(repo)).or_default();
        if set.digest != repo.digest || set.generation != generation(repo) {
            // Judged against another artifact or spec: none of it holds any more.
            *set = CleanSet {
                digest: repo.digest.clone(),
                generation: generation(repo),
                objects: HashMap::new(),
            };
        }
        set.objects.insert(id, version.to_string());
    }

    fn forget_clean(&self, repo: &Repo, id: &str) {
        let mut clean = self.clean.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = clean.get_mut(&repo_key(repo)) {
            set.objects.remove(id);
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
        self.fix_unit_refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(refused, _)| refused != id);
        tracing::info!(%id, "drift resolved");
        let repo = match &record.repository {
            Some(r) => self
                .repo(&(r.namespace.clone(), r.name.clone()))
                .await
                .ok()
                .flatten(),
            None => None,
        };
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
        self.try_active_records().await.unwrap_or_default()
    }

    pub(super) async fn try_active_records(&self) -> Result<Vec<DriftRecord>, super::StoreError> {
        self.store(|s| {
            s.list(&RecordFilter {
                status: Some(RecordStatus::Active),
                ..Default::default()
            })
        })
        .await
    }
}

fn repo_key(repo: &Repo) -> RepoKey {
    (
        repo.chr.namespace().unwrap_or_default(),
        repo.chr.name_any(),
    )
}

fn generation(repo: &Repo) -> i64 {
    repo.chr.metadata.generation.unwrap_or_default()
}

/// When the object was last written, from its newest managedFields entry; `None` when unknown.
fn written_at(live: &Value) -> Option<chrono::DateTime<Utc>> {
    let fields = live["metadata"]["managedFields"].as_array()?;
    // A write through `scale` carries no time and may be the newest: then the time is unknown.
    if fields
        .iter()
        .any(|f| f["time"].is_null() && f["subresource"].as_str() != Some("status"))
    {
        return None;
    }
    let times: BTreeSet<&str> = fields.iter().filter_map(|f| f["time"].as_str()).collect();
    chrono::DateTime::parse_from_rfc3339(times.last()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A dry run refused because the object or its namespace is being deleted: 404, or a 403 for a create.
/// A dry-run apply of an object deleted since it was read (pruned by Flux, say) is a create: the API
/// server refuses it for new content in a terminating namespace, or because the controller may not
/// create that kind (its RBAC never grants create, only what reads and dry-runs existing objects need).
/// Neither is blindness: a refusal of what the engine does use names `get`, `list`, `watch` or `patch`.
fn going_away(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => {
            status.code == 404
                || (status.code == 403
                    && (status.message.contains("being terminated")
                        || status.message.contains("cannot create resource")))
        }
        _ => false,
    }
}

#[cfg(test)]
mod going_away_tests {
    use super::going_away;

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            serde_json::from_value(serde_json::json!({
                "status": "Failure", "code": code, "message": message, "reason": "x"
            }))
            .unwrap(),
        )
    }

    #[test]
    fn a_vanishing_object_is_not_blindness_but_a_refusal_is() {
        assert!(going_away(&api(404, "configmaps \"x\" not found")));
        assert!(going_away(&api(
            403,
            "configmaps \"x\" is forbidden: unable to create new content in namespace n because it is being terminated"
        )));
        // Seen in the e2e suite when Flux pruned an object between the watch event and the dry run.
        assert!(going_away(&api(
            403,
            "configmaps \"settings\" is forbidden: User \"system:serviceaccount:flux-system:confighub-source-controller\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"n\""
        )));
        assert!(!going_away(&api(
            403,
            "configmaps \"x\" is forbidden: User \"system:serviceaccount:a:b\" cannot patch resource"
        )));
        assert!(!going_away(&api(500, "etcd timeout")));
    }
}
