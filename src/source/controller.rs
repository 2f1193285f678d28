//! The kube-runtime controller over ConfigHubRepository: Flux conventions (finalizer, suspend, interval
//! with jitter, per-reconcile timeout, `reconcile.fluxcd.io/requestedAt`) around the pipeline
//! fetch → build → store, then publish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use rand::Rng;

use super::conditions::{self, Outcome};
use super::context::Context;
use super::duration::parse_duration;
use super::error::Error;
use super::metrics::{FailureLabels, ObjectLabels};
use super::pipeline;
use super::publish::{self, StatusUpdate};
use crate::api::{ConfigHubRepository, ExternalArtifact};

/// Flux's finalizer name.
pub const FINALIZER: &str = "finalizers.fluxcd.io";
/// Flux's on-demand reconcile annotation.
pub use crate::wire::REQUESTED_AT;
/// How long to wait before retrying a failed reconcile, at most (never longer than the interval).
const FAILURE_RETRY: Duration = Duration::from_secs(10);
/// Flux's default interval jitter: ±5%.
const JITTER_PERCENT: f64 = 5.0;
/// The shortest time between two reconciles of one repository: `interval: 0s` (which the schema allows,
/// as Flux's does) or `1ms` would otherwise requeue at once, in a loop that polls ConfigHub flat out.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the reconciler until `shutdown`; `writer` keeps the repository store it shares with the drift
/// engine (one watch of ConfigHubRepositories per process).
pub async fn run(
    ctx: Arc<Context>,
    writer: reflector::store::Writer<ConfigHubRepository>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<ConfigHubRepository> = match &ctx.options.watch_namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let reader = writer.as_reader();
    // Status writes must not retrigger reconciles: react only to spec changes (generation), finalizer
    // and deletion changes, and a new requestedAt annotation.
    let trigger = |chr: &ConfigHubRepository| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        chr.metadata.generation.hash(&mut h);
        chr.finalizers().hash(&mut h);
        chr.annotations().get(REQUESTED_AT).hash(&mut h);
        chr.meta().deletion_timestamp.is_some().hash(&mut h);
        Some(h.finish())
    };
    let mut config = watcher::Config::default();
    if let Some(selector) = &ctx.options.label_selector {
        config = config.labels(selector);
    }
    let stream = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(trigger, Default::default());
    let controller_config =
        kube::runtime::controller::Config::default().concurrency(ctx.options.concurrent);
    let watch_errors = ctx.metrics.watch_errors.clone();
    Controller::for_stream(stream, reader)
        .with_config(controller_config)
        .reconcile_on(deleted_artifacts(&ctx))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(kube::runtime::controller::Error::QueueError(err)) = &result {
                watch_errors.inc();
                // kube's watcher has logged it (at warn) and retries with backoff.
                tracing::debug!(error = %err, "ConfigHubRepository watch failed");
            } else if let Err(err) = result {
                tracing::debug!(error = %err, "reconcile loop");
            }
            std::future::ready(())
        })
        .await;
}

/// The repositories whose ExternalArtifact was deleted (by hand, say): reconciled at once, which writes
/// it again (an unchanged one is otherwise not rewritten). The watch keeps no objects.
fn deleted_artifacts(
    ctx: &Arc<Context>,
) -> impl futures::Stream<Item = reflector::ObjectRef<ConfigHubRepository>> + Send + 'static {
    let api: Api<ExternalArtifact> = match &ctx.options.watch_namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let managed = format!("app.kubernetes.io/managed-by={}", publish::FIELD_MANAGER);
    let ctx = Arc::clone(ctx);
    watcher(api, watcher::Config::default().labels(&managed))
        .default_backoff()
        .filter_map(move |event| {
            let deleted = match event {
                Ok(watcher::Event::Delete(artifact)) => {
                    let key = (
                        artifact.namespace().unwrap_or_default(),
                        artifact.name_any(),
                    );
                    ctx.remember_published(key.clone(), None);
                    Some(reflector::ObjectRef::new(&key.1).within(&key.0))
                }
                _ => None,
            };
            std::future::ready(deleted)
        })
}

async fn reconcile(chr: Arc<ConfigHubRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = chr.namespace().unwrap_or_default();
    let api: Api<ConfigHubRepository> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, chr, |event| async {
        match event {
            FinalizerEvent::Apply(chr) => apply(chr, ctx.clone()).await,
            FinalizerEvent::Cleanup(chr) => cleanup(chr, ctx.clone()).await,
        }
    })
    .await
    .map_err(|err| Error::Finalizer(Box::new(err)))
}

fn error_policy(chr: Arc<ConfigHubRepository>, err: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(
        name = %chr.name_any(), namespace = %chr.namespace().unwrap_or_default(),
        error = %err, "reconcile failed"
    );
    ctx.metrics
        .reconcile_failures
        .get_or_create(&FailureLabels {
            kind: ConfigHubRepository::kind(&()).to_string(),
            name: chr.name_any(),
            namespace: chr.namespace().unwrap_or_default(),
            reason: err.metric_label().to_string(),
        })
        .inc();
    Action::requeue(FAILURE_RETRY)
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

async fn apply(chr: Arc<ConfigHubRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let name = chr.name_any();
    let namespace = chr.namespace().unwrap_or_default();
    let labels = ObjectLabels::repository(&namespace, &name);
    if chr.spec.suspend {
        tracing::info!(%name, %namespace, "suspended; serving the last artifact");
        return Ok(Action::await_change());
    }
    let generation = chr.metadata.generation.unwrap_or_default();
    let status = chr.status.clone().unwrap_or_default();
    let requested_at = chr.annotations().get(REQUESTED_AT).cloned();
    let interval = effective_interval(&chr.spec.interval);

    if status.observed_generation != Some(generation) {
        let update = StatusUpdate {
            observed_generation: status.observed_generation,
            conditions: conditions::reconciling(&status.conditions, generation, &now()),
            artifact: status.artifact.clone(),
            last_handled_reconcile_at: status.last_handled_reconcile_at.clone(),
        };
        publish::apply_status(&ctx.client, &chr, &update).await?;
    }

    let timeout = parse_duration(&chr.spec.timeout).unwrap_or(Duration::from_secs(60));
    let progress = pipeline::Progress::default();
    let pass = pipeline::produce(&chr, &ctx, &progress);
    let produced = match tokio::time::timeout(timeout, pass).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(&chr, progress.step())),
    };

    let previous = status.artifact.clone();
    let (artifact, outcome, requeue) = match produced {
        Ok(produced) => {
            let mut artifact = produced.artifact;
            let is_new = previous.as_ref().map(|a| &a.digest) != Some(&artifact.digest);
            if let (false, Some(prev)) = (is_new, previous.as_ref()) {
                artifact.last_update_time = prev.last_update_time.clone();
            }
            // Written when it changed, and once per repository after a start (it may have been
            // deleted meanwhile; a deletion while running brings the repository back here).
            let key = (namespace.clone(), name.clone());
            if !ctx.is_published(&key, &artifact) {
                publish::apply_external_artifact(&ctx.client, &chr, &artifact).await?;
                ctx.remember_published(key, Some(artifact.clone()));
            }
            if is_new {
                ctx.metrics.artifacts_stored.get_or_create(&labels).inc();
                let note = format!(
                    "stored artifact with {} for revision '{}'",
                    produced.summary, artifact.revision
                );
                tracing::info!(%name, %namespace, revision = %artifact.revision, "{note}");
                ctx.publish_event_at(
                    &chr,
                    EventType::Normal,
                    "NewArtifact",
                    &note,
                    Some(&artifact.revision),
                )
                .await;
            }
            let outcome = Outcome {
                generation,
                served_revision: Some(artifact.revision.clone()),
                failure: None,
                notes: produced.notes,
            };
            (Some(artifact), outcome, jitter(interval))
        }
        Err(failure) => {
            tracing::warn!(%name, %namespace, reason = %failure.reason, message = %failure.message, "reconcile failed");
            ctx.publish_event(&chr, EventType::Warning, &failure.reason, &failure.message)
                .await;
            ctx.metrics
                .reconcile_failures
                .get_or_create(&FailureLabels {
                    kind: labels.kind.clone(),
                    name: name.clone(),
                    namespace: namespace.clone(),
                    reason: failure.reason.clone(),
                })
                .inc();
            let outcome = Outcome {
                generation,
                served_revision: previous.as_ref().map(|a| a.revision.clone()),
                failure: Some(failure),
                notes: vec![],
            };
            (previous, outcome, interval.min(FAILURE_RETRY))
        }
    };

    let update = StatusUpdate {
        observed_generation: Some(generation),
        conditions: conditions::summarize(&status.conditions, &outcome, &now()),
        artifact,
        last_handled_reconcile_at: requested_at.or(status.last_handled_reconcile_at),
    };
    if !publish::status_unchanged(&chr, &update) {
        publish::apply_status(&ctx.client, &chr, &update).await?;
    }
    ctx.metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    Ok(Action::requeue(requeue))
}

async fn cleanup(chr: Arc<ConfigHubRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = chr.name_any();
    let namespace = chr.namespace().unwrap_or_default();
    publish::delete_external_artifact(&ctx.client, &chr).await?;
    ctx.storage
        .remove_object(pipeline::STORAGE_KIND, &namespace, &name)
        .map_err(|err| Error::Storage(err.to_string()))?;
    ctx.remember_build((namespace.clone(), name.clone()), None);
    ctx.remember_published((namespace.clone(), name.clone()), None);
    ctx.metrics
        .forget(&ObjectLabels::repository(&namespace, &name));
    tracing::info!(%name, %namespace, "removed stored artifacts and the ExternalArtifact");
    Ok(Action::await_change())
}

/// The failure of a pass cut short by `spec.timeout`, naming the step it was in: "ConfigHub is slow"
/// reads apart from "the build is slow".
fn timed_out(chr: &ConfigHubRepository, step: conditions::FailedStep) -> conditions::Failure {
    let doing = match step {
        conditions::FailedStep::Fetch => format!(
            "while fetching from ConfigHub at {} (answers slower than the client's timeout, or retries of failed requests)",
            chr.spec.url
        ),
        conditions::FailedStep::Build => "while building the artifact".to_string(),
        conditions::FailedStep::Storage => "while writing the artifact to storage".to_string(),
    };
    conditions::Failure {
        step,
        reason: "Timeout".into(),
        message: format!(
            "reconcile did not finish within spec.timeout ({}) {doing}",
            chr.spec.timeout
        ),
        stalled: false,
    }
}

/// `spec.interval` as the reconciler uses it: 10 minutes when unreadable, never under [`MIN_INTERVAL`].
pub(crate) fn effective_interval(spec: &str) -> Duration {
    parse_duration(spec)
        .unwrap_or(Duration::from_secs(600))
        .max(MIN_INTERVAL)
}

/// The interval ±5%, so many repositories created together do not poll ConfigHub in lockstep.
fn jitter(interval: Duration) -> Duration {
    let factor = 1.0 + rand::rng().random_range(-JITTER_PERCENT..=JITTER_PERCENT) / 100.0;
    interval.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_interval_never_requeues_at_once() {
        assert_eq!(effective_interval("0s"), MIN_INTERVAL);
        assert_eq!(effective_interval("1ms"), MIN_INTERVAL);
        assert_eq!(effective_interval("2s"), Duration::from_secs(2));
        assert_eq!(effective_interval("nonsense"), Duration::from_secs(600));
        // Jitter and the failure retry cannot take it back under the floor by more than 5 %.
        assert!(jitter(effective_interval("0s")) >= MIN_INTERVAL.mul_f64(0.95));
        assert_eq!(
            effective_interval("0s").min(FAILURE_RETRY),
            MIN_INTERVAL,
            "a failure retries after the floor, not at once"
        );
    }

    #[test]
    fn a_timed_out_pass_names_the_step_it_was_in() {
        let chr: ConfigHubRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.confighub.com/v1beta1", "kind": "ConfigHubRepository",
            "metadata": {"name": "r", "namespace": "n"},
            "spec": {"url": "http://hub.example:8090", "space": "s", "interval": "5s", "timeout": "45s"}
        }))
        .unwrap();
        let fetch = timed_out(&chr, conditions::FailedStep::Fetch);
        assert_eq!(fetch.step, conditions::FailedStep::Fetch);
        assert!(
            fetch.message.contains("45s") && fetch.message.contains("http://hub.example:8090"),
            "{}",
            fetch.message
        );
        let build = timed_out(&chr, conditions::FailedStep::Build);
        assert_eq!(build.step, conditions::FailedStep::Build);
        assert!(build.message.contains("building"), "{}", build.message);
        assert_eq!(build.reason, "Timeout");
    }

    #[test]
    fn jitter_stays_within_five_percent() {
        for _ in 0..1000 {
            let d = jitter(Duration::from_secs(100)).as_secs_f64();
            assert!((95.0..=105.0).contains(&d), "{d}");
        }
    }
}
