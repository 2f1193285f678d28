//! One pass of the source pipeline for a ConfigHubRepository: credentials → fetch → build → store.
//! Each step's failure is a [`Failure`] naming the step, so conditions can say what and where.

use kube::ResourceExt;

use super::conditions::{FailedStep, Failure};
use super::context::Context;
use super::fetch;
use super::metrics::ObjectLabels;
use crate::api::{Artifact, ConfigHubRepository};
use crate::artifact::{self, BuildContext, BuildError, BuiltArtifact, StoredArtifact};
use crate::connection::{self, AUTHENTICATION_FAILED, ConnectError, Connected};

/// The kind folder under the storage root, as Flux lays storage out.
pub const STORAGE_KIND: &str = "confighubrepository";

/// What a successful pass produced.
#[derive(Debug)]
pub struct Produced {
    pub artifact: Artifact,
    /// e.g. "12 units (30 objects)", for events and logs.
    pub summary: String,
    /// Extra facts for the Ready message: skipped and unreleased units.
    pub notes: Vec<String>,
}

/// The step a pass is in, so a pass cut short by `spec.timeout` can say which step it was in (the
/// future is dropped, so it cannot say so itself).
#[derive(Debug, Default)]
pub struct Progress(std::sync::atomic::AtomicU8);

impl Progress {
    fn set(&self, step: FailedStep) {
        self.0
            .store(step as u8, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn step(&self) -> FailedStep {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            s if s == FailedStep::Build as u8 => FailedStep::Build,
            s if s == FailedStep::Storage as u8 => FailedStep::Storage,
            _ => FailedStep::Fetch,
        }
    }
}

pub async fn produce(
    chr: &ConfigHubRepository,
    ctx: &Context,
    progress: &Progress,
) -> Result<Produced, Failure> {
    progress.set(FailedStep::Fetch);
    let connected = ctx
        .connections
        .connect(&ctx.client, chr)
        .await
        .map_err(connect_failure)?;
    let credentials = connected.credentials.clone();
    produce_with(chr, ctx, connected, progress)
        .await
        .map_err(|mut failure| {
            // Say which Secret and keys ConfigHub refused, so "the Secret is wrong" reads apart from
            // "ConfigHub is down".
            if failure.reason == AUTHENTICATION_FAILED {
                failure.message = connection::refused(credentials.as_ref(), &failure.message);
            }
            failure
        })
}

fn connect_failure(e: ConnectError) -> Failure {
    Failure {
        step: FailedStep::Fetch,
        reason: e.reason.into(),
        message: e.message,
        stalled: e.stalled,
    }
}

async fn produce_with(
    chr: &ConfigHubRepository,
    ctx: &Context,
    Connected { client, space, .. }: Connected,
    progress: &Progress,
) -> Result<Produced, Failure> {
    let namespace = chr.namespace().unwrap_or_default();
    let name = chr.name_any();
    let (origin, space_ref) = (chr.spec.url.as_str(), chr.spec.space.as_str());
    let fetched = fetch::fetch(
        &client,
        &ctx.cache,
        space,
        chr.spec.where_.as_deref(),
        chr.spec.include_hidden,
        chr.spec.revision,
    )
    .await
    .inspect_err(|failure| {
        // A space deleted (or re-created under a new ID) since it was resolved: resolve it again.
        if failure.reason == "NotFound" {
            ctx.remember_space(origin, space_ref, None);
        }
    })?;
    ctx.metrics.unit_downloads.inc_by(fetched.downloads as u64);
    ctx.metrics
        .unit_cache_hits
        .inc_by(fetched.cache_hits as u64);

    let build_ctx = BuildContext {
        space_name: fetched.space.slug.clone(),
        space_id: fetched.space.space_id.clone(),
        mode_prefix: chr.spec.revision.revision_prefix(),
    };
    let units = fetched.units;
    let key = (namespace.clone(), name.clone());
    progress.set(FailedStep::Build);
    let (build_input, inputs) = tokio::task::spawn_blocking(move || {
        let inputs = artifact::input_fingerprint(&units, &build_ctx);
        ((units, build_ctx), inputs)
    })
    .await
    .map_err(|e| build_failure_message("BuildPanicked", e.to_string()))?;
    let (stored, built) = match reuse_last_build(ctx, &key, &inputs).await? {
        Some(reused) => {
            let labels = ObjectLabels::repository(&namespace, &name);
            ctx.metrics.builds_skipped.get_or_create(&labels).inc();
            reused
        }
        None => {
            let (stored, built) = build_and_store(ctx, &key, build_input, progress).await?;
            ctx.remember_build(key.clone(), Some((inputs, &built)));
            (stored, built)
        }
    };

    let mut notes = Vec::new();
    if !built.skipped.is_empty() {
        notes.push(format!(
            "skipped {} unit(s) that are not Kubernetes/YAML: {}",
            built.skipped.len(),
            list(&built.skipped)
        ));
    }
    if !fetched.unreleased.is_empty() {
        notes.push(unreleased_note(&fetched.unreleased));
    }
    let summary = format!(
        "{} units ({} objects)",
        built.unit_count, built.object_count
    );
    let now = k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now());
    let artifact = stored.to_status(&built, now.to_string());
    Ok(Produced {
        artifact,
        summary,
        notes,
    })
}

/// The last build of this repository and its stored file, when the inputs are the same and the file is
/// still in storage: an unchanged space costs a fingerprint, not a build.
async fn reuse_last_build(
    ctx: &Context,
    key: &(String, String),
    inputs: &[u8; 32],
) -> Result<Option<(StoredArtifact, BuiltArtifact)>, Failure> {
    let Some(built) = ctx.unchanged_build(key, inputs) else {
        return Ok(None);
    };
    let storage = ctx.storage.clone();
    let (ns, n, digest) = (key.0.clone(), key.1.clone(), built.digest.clone());
    let stored = tokio::task::spawn_blocking(move || {
        let stored = storage.artifact_for(STORAGE_KIND, &ns, &n, &digest)?;
        // Re-hashing the archive costs about a millisecond per MB; a file removed or damaged behind
        // our back is rebuilt, as it always was.
        match stored {
            Some(s) if storage.verify(&s.path, &s.digest)? => Ok(Some(s)),
            _ => Ok::<_, artifact::StorageError>(None),
        }
    })
    .await
    .map_err(|e| storage_failure(e.to_string()))?
    .map_err(|e| storage_failure(e.to_string()))?;
    Ok(stored.map(|stored| (stored, built)))
}

/// Builds the artifact, stores it and collects old ones.
async fn build_and_store(
    ctx: &Context,
    key: &(String, String),
    (units, build_ctx): (Vec<artifact::UnitInput>, BuildContext),
    progress: &Progress,
) -> Result<(StoredArtifact, BuiltArtifact), Failure> {
    let built = tokio::task::spawn_blocking(move || artifact::build(&units, &build_ctx))
        .await
        .map_err(|e| build_failure_message("BuildPanicked", e.to_string()))?
        .map_err(build_failure)?;

    progress.set(FailedStep::Storage);
    let storage = ctx.storage.clone();
    let keep = ctx.options.artifacts_to_keep;
    let (ns, n) = key.clone();
    tokio::task::spawn_blocking(move || {
        let stored = storage.store(STORAGE_KIND, &ns, &n, &built)?;
        if let Err(err) = storage.gc(STORAGE_KIND, &ns, &n, &stored.path, keep) {
            tracing::warn!(error = %err, "garbage collection of old artifacts failed");
        }
        Ok::<_, artifact::StorageError>((stored, built))
    })
    .await
    .map_err(|e| storage_failure(e.to_string()))?
    .map_err(|e| storage_failure(e.to_string()))
}

/// At most a handful of names, so a status message stays readable.
/// "left out 3 unit(s) never released: 2 not on the space's release target ('a', 'b'); 1 …",
/// grouped by reason (the input is sorted by slug).
fn unreleased_note(units: &[(String, crate::source::fetch::NeverReleased)]) -> String {
    let mut by_reason: std::collections::BTreeMap<_, Vec<String>> = Default::default();
    for (slug, why) in units {
        by_reason.entry(*why).or_default().push(slug.clone());
    }
    let parts: Vec<String> = by_reason
        .iter()
        .map(|(why, slugs)| format!("{} {} ({})", slugs.len(), why.why(), list(slugs)))
        .collect();
    format!(
        "left out {} unit(s) never released: {}",
        units.len(),
        parts.join("; ")
    )
}

fn list(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

fn build_failure(err: BuildError) -> Failure {
    let reason = match &err {
        BuildError::DuplicateObject { .. } | BuildError::DuplicateUnit { .. } => "DuplicateObject",
        BuildError::FileNameCollision { .. } => "FileNameCollision",
        BuildError::Archive(_) => "ArchiveFailed",
        _ => "InvalidUnit",
    };
    build_failure_message(reason, err.to_string())
}

fn build_failure_message(reason: &str, message: String) -> Failure {
    Failure {
        step: FailedStep::Build,
        reason: reason.into(),
        message,
        stalled: false,
    }
}

fn storage_failure(message: String) -> Failure {
    Failure {
        step: FailedStep::Storage,
        reason: "StorageOperationFailed".into(),
        message,
        stalled: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::fetch::NeverReleased;

    #[test]
    fn the_unreleased_note_counts_units_by_reason() {
        let units: Vec<(String, NeverReleased)> = [
            ("a", NeverReleased::NotOnReleaseTarget),
            ("b", NeverReleased::NotYetReleased),
            ("c", NeverReleased::NotOnReleaseTarget),
            ("d", NeverReleased::ValidationErrors),
        ]
        .into_iter()
        .map(|(s, w)| (s.to_string(), w))
        .collect();
        assert_eq!(
            unreleased_note(&units),
            "left out 4 unit(s) never released: 2 not on the space's release target ('a', 'c'); \
             1 with validation errors, which block a release ('d'); 1 releasable but not released yet \
             ('b')"
        );
    }
}
