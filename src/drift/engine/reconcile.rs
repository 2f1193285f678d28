//! The drift controller: a kube-runtime `Controller` over Flux Kustomizations. Each Kustomization that
//! applies a ConfigHubRepository's ExternalArtifact is reconciled when it changes (Flux applied, its
//! inventory or readiness moved), after its repository's `spec.interval`, when a kind it applies can be
//! seen again, and on `POST /api/v1/analyze`. The runtime de-duplicates and schedules; nothing here keeps
//! a clock.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

use super::{DriftEngine, RepoKey, kustomization_key};
use crate::drift::inventory::{entries, external_artifact_source};
use crate::drift::{DetectionSource, RecordStatus};

/// After a failed reconcile, the Kustomization is tried again this much later.
const RETRY: Duration = Duration::from_secs(10);
/// At most this many Kustomizations are compared at once (each compares its objects one by one).
const CONCURRENCY: u16 = 4;

/// Why a reconcile failed; the label is what `confighub_drift_reconcile_errors_total` counts by.
#[derive(Debug, thiserror::Error)]
pub(super) enum Error {
    #[error("cannot read the artifact of {0}/{1}: {2}")]
    Artifact(String, String, String),
}

impl Error {
    pub(super) fn metric_label(&self) -> &'static str {
        match self {
            Error::Artifact(..) => "artifact",
        }
    }
}

/// Runs the controller until `shutdown`.
pub(super) async fn run(
    engine: Arc<DriftEngine>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let Some(writer) = engine
        .kustomization_writer
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    else {
        tracing::error!("drift: the engine was started twice");
        return;
    };
    let recheck = engine
        .recheck_rx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .map(tokio_stream_from)
        .unwrap_or_else(|| futures::stream::empty().boxed());
    // A reconcile judges objects against their repository: wait for the shared repository store's first
    // list, saying so when it takes long (an empty store would make every Kustomization look unlinked).
    let mut shutdown = Box::pin(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = engine.repository_store.wait_until_ready() => break,
            _ = tokio::time::sleep(Duration::from_secs(30)) => tracing::warn!(
                "drift: still waiting for the first list of ConfigHubRepositories"
            ),
        }
    }
    let analyze = Arc::clone(&engine.handles.analyze);
    let analyze = futures::stream::unfold(analyze, |notify| async move {
        notify.notified().await;
        Some(((), notify))
    });
    let stream = watcher(engine.kustomizations_api(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        // While Flux reconciles (Ready=Unknown) the objects are being applied: judge them once it is done.
        .try_filter(|ks| std::future::ready(!in_progress(ks)))
        .predicate_filter(applied_state, Default::default());
    let config = kube::runtime::controller::Config::default().concurrency(CONCURRENCY);
    Controller::for_stream_with(
        stream,
        engine.kustomization_store.clone(),
        super::kustomization_resource(),
    )
    .with_config(config)
    .reconcile_on(recheck)
    .reconcile_all_on(analyze)
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, engine)
    .for_each(|_| async {})
    .await;
}

/// What makes a Kustomization worth comparing again: its spec, what Flux applied (revision, inventory)
/// and its readiness. Not its annotations: a `requestedAt` means Flux is about to apply, and comparing
/// mid-apply would judge a half-applied revision.
fn applied_state(ks: &DynamicObject) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ks.metadata.generation.hash(&mut h);
    let status = &ks.data["status"];
    status["lastAppliedRevision"].to_string().hash(&mut h);
    status["inventory"].to_string().hash(&mut h);
    if let Some((status, reason, message)) = crate::drift::inventory::ready_condition(&ks.data) {
        (status, reason, message).hash(&mut h);
    }
    Some(h.finish())
}

fn in_progress(ks: &DynamicObject) -> bool {
    crate::drift::inventory::ready_condition(&ks.data)
        .is_some_and(|(status, ..)| status == "Unknown")
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> futures::stream::BoxStream<'static, T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

fn error_policy(ks: Arc<DynamicObject>, err: &Error, engine: Arc<DriftEngine>) -> Action {
    tracing::warn!(
        namespace = %ks.namespace().unwrap_or_default(), name = %ks.name_any(), error = %err,
        "drift: reconcile failed"
    );
    engine
        .handles
        .metrics
        .reconcile_errors
        .get_or_create(&crate::drift::metrics::ErrorLabels {
            reason: err.metric_label().to_string(),
        })
        .inc();
    Action::requeue(RETRY)
}

pub(super) async fn reconcile(
    ks: Arc<DynamicObject>,
    engine: Arc<DriftEngine>,
) -> Result<Action, Error> {
    engine.forget_gone();
    let value = serde_json::to_value(&*ks).unwrap_or(Value::Null);
    // Not ours (another source kind), or a repository with no artifact yet: Flux has nothing of ours
    // applied, and the next apply changes the Kustomization, which brings it back here.
    let Some(repo_key) = external_artifact_source(&value) else {
        return Ok(Action::await_change());
    };
    let Some(repo) = engine.repo(&repo_key).await? else {
        return Ok(Action::await_change());
    };
    let ks_key: RepoKey = (ks.namespace().unwrap_or_default(), ks.name_any());
    engine
        .record_kustomization_readiness(&ks_key, &repo_key, &value)
        .await;
    let inventory = entries(&value);
    // Keyed as the resources view keys them (kind, namespace, name).
    let objects = inventory
        .iter()
        .map(|e| crate::drift::ObjectKey::new(&e.kind, &e.namespace, &e.name))
        .collect();
    engine.track_inventory(&ks_key, objects);
    for entry in &inventory {
        Arc::clone(&engine).ensure_watch(entry);
    }
    let interval = crate::source::controller::effective_interval(&repo.chr.spec.interval);
    if behind_source(&value, &repo) {
        // Flux has not applied the newest artifact yet: comparing the cluster with it would call every
        // change it brings drift. Its apply changes `lastAppliedRevision`, which brings it back here.
        return Ok(Action::requeue(interval));
    }
    for entry in &inventory {
        engine
            .check(&repo, &ks_key, entry, None, DetectionSource::Analyze)
            .await;
    }
    let managed: HashSet<String> = inventory.iter().map(|e| e.record_id()).collect();
    engine.end_unmanaged(&ks_key, &managed).await;
    engine.update_drifted_condition(&repo).await;
    engine.handles.metrics.passes.inc();
    // The same floor as the source reconciler's: `interval: 0s` must not loop.
    Ok(Action::requeue(interval))
}

/// Whether the Kustomization last applied another revision than the artifact the engine compares with
/// (a new one Flux has not applied yet). A Kustomization that never applied anything is not behind.
pub(super) fn behind_source(ks: &Value, repo: &super::Repo) -> bool {
    let applied = ks["status"]["lastAppliedRevision"].as_str();
    let current = repo
        .chr
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .map(|a| a.revision.as_str());
    matches!((applied, current), (Some(a), Some(c)) if !a.is_empty() && a != c)
}

impl DriftEngine {
    /// Ends the records of objects this Kustomization no longer manages (pruned after their unit went
    /// away) — only when two reconciles in a row found them missing, since an inventory may be rewritten.
    pub(super) async fn end_unmanaged(&self, ks: &RepoKey, managed: &HashSet<String>) {
        let own = kustomization_key(ks).id();
        let missing_now: HashSet<String> = self
            .active_records()
            .await
            .into_iter()
            .filter(|r| {
                r.status == RecordStatus::Active
                    && r.id != own
                    && r.kustomization
                        .as_ref()
                        .is_some_and(|k| k.namespace == ks.0 && k.name == ks.1)
                    && !managed.contains(&r.id)
            })
            .map(|r| r.id)
            .collect();
        let missing_before = self
            .unmanaged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ks.clone(), missing_now.clone())
            .unwrap_or_default();
        for id in missing_now.intersection(&missing_before) {
            self.resolve(id).await;
        }
    }
}
