//! Orchestration: units in, one reproducible artifact out.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use super::archive::write_tar_gz;
use super::error::BuildError;
use super::manifest::{ObjectKey, ProcessedUnit, Stamp, process_unit};
use super::names;
use super::unit::{BuildContext, UnitInput};

/// Artifact metadata key: the ConfigHub space name.
pub const META_SPACE: &str = "confighub.com/space";
/// Artifact metadata key: number of Kubernetes/YAML units packed.
pub const META_UNIT_COUNT: &str = "confighub.com/unit-count";
/// Artifact metadata key copied by kustomize-controller into `status.lastAppliedOriginRevision`.
pub const META_OCI_REVISION: &str = "org.opencontainers.image.revision";

/// Below this much YAML the per-unit work runs on the calling thread: spawning costs more than it saves.
const PARALLEL_THRESHOLD_BYTES: usize = 256 * 1024;

/// A built artifact, ready to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltArtifact {
    /// The tar.gz.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`, what kustomize-controller verifies.
    pub digest: String,
    /// `<mode_prefix>@sha256:<hex>`; changes exactly when the bytes change.
    pub revision: String,
    /// Kubernetes/YAML units packed (a unit without objects counts but gets no file).
    pub unit_count: usize,
    /// Objects across all packed units.
    pub object_count: usize,
    /// Slugs of units skipped because their toolchain is not Kubernetes/YAML, sorted.
    pub skipped: Vec<String>,
    /// [`META_SPACE`], [`META_UNIT_COUNT`] and [`META_OCI_REVISION`].
    pub metadata: BTreeMap<String, String>,
}

impl BuiltArtifact {
    /// The bare hex of the digest (also the stored file's name).
    pub fn digest_hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// Builds the artifact for `units` of one space. Pure: the result depends only on the arguments, not on
/// their order, the clock or the machine. All-or-nothing: any bad unit fails the build.
pub fn build(units: &[UnitInput], ctx: &BuildContext) -> Result<BuiltArtifact, BuildError> {
    let mut sorted: Vec<&UnitInput> = units.iter().collect();
    sorted.sort_by(|a, b| a.slug.cmp(&b.slug));
    for pair in sorted.windows(2) {
        if pair[0].slug == pair[1].slug {
            return Err(BuildError::DuplicateUnit {
                unit: pair[0].slug.clone(),
            });
        }
    }
    let (packed, skipped): (Vec<&UnitInput>, Vec<&UnitInput>) =
        sorted.into_iter().partition(|u| u.is_kubernetes_yaml());
    let skipped: Vec<String> = skipped.into_iter().map(|u| u.slug.clone()).collect();

    let processed = process_all(&packed, ctx)?;

    let mut owners: HashMap<&ObjectKey, &str> =
        HashMap::with_capacity(processed.iter().map(|p| p.objects.len()).sum());
    for (unit, result) in packed.iter().zip(&processed) {
        for key in &result.objects {
            if let Some(first) = owners.insert(key, &unit.slug) {
                return Err(BuildError::DuplicateObject {
                    object: key.to_string(),
                    first_unit: first.to_string(),
                    second_unit: unit.slug.clone(),
                });
            }
        }
    }
    let object_count = owners.len();

    let slugs: Vec<&str> = packed.iter().map(|u| u.slug.as_str()).collect();
    let file_names = names::assign(&slugs)?;
    let files: Vec<(&str, &[u8])> = file_names
        .iter()
        .zip(&processed)
        .filter(|(_, p)| !p.yaml.is_empty())
        .map(|(name, p)| (name.as_str(), p.yaml.as_slice()))
        .collect();
    debug_assert!(files.iter().all(|(n, _)| names::is_safe_entry_name(n)));

    let bytes = write_tar_gz(&files)?;
    let hex = hex::encode(Sha256::digest(&bytes));
    let digest = format!("sha256:{hex}");
    let revision = format!("{}@{digest}", ctx.mode_prefix);

    let mut metadata = BTreeMap::new();
    metadata.insert(META_SPACE.to_string(), ctx.space_name.clone());
    metadata.insert(META_UNIT_COUNT.to_string(), packed.len().to_string());
    metadata.insert(META_OCI_REVISION.to_string(), origin_revision(ctx, &packed));

    Ok(BuiltArtifact {
        bytes,
        digest,
        revision,
        unit_count: packed.len(),
        object_count,
        skipped,
        metadata,
    })
}

/// The ConfigHub-side identifier a person reads in `lastAppliedOriginRevision`:
/// `<space>@<mode>:<n> units:<h>`, where `<h>` is the first 12 hex digits of the SHA-256 of the sorted
/// `slug:revisionNum` lines. It changes when any unit moves to another revision, and stays the same when
/// only the controller's serialisation changes (unlike the artifact digest).
fn origin_revision(ctx: &BuildContext, packed: &[&UnitInput]) -> String {
    let mut hasher = Sha256::new();
    for unit in packed {
        hasher.update(unit.slug.as_bytes());
        hasher.update(b":");
        hasher.update(unit.revision_num.to_string().as_bytes());
        hasher.update(b"\n");
    }
    let hex = hex::encode(hasher.finalize());
    format!(
        "{}@{}:{} units:{}",
        ctx.space_name,
        ctx.mode_prefix,
        packed.len(),
        &hex[..12]
    )
}

fn process_one(unit: &UnitInput, ctx: &BuildContext) -> Result<ProcessedUnit, BuildError> {
    process_unit(
        &unit.data,
        &Stamp {
            unit_slug: &unit.slug,
            revision_num: unit.revision_num,
            space_name: &ctx.space_name,
            space_id: &ctx.space_id,
        },
    )
}

/// Processes units in order, on several threads when there is enough work. The result (and the first
/// error reported) is the same as the sequential run: results are placed by index.
fn process_all(units: &[&UnitInput], ctx: &BuildContext) -> Result<Vec<ProcessedUnit>, BuildError> {
    let total: usize = units.iter().map(|u| u.data.len()).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads < 2 || total < PARALLEL_THRESHOLD_BYTES || units.len() < 2 {
        return units.iter().map(|u| process_one(u, ctx)).collect();
    }
    // Contiguous chunks of roughly equal bytes, so one thread does not get all the big units.
    let per_thread = total.div_ceil(threads);
    let mut chunks: Vec<&[&UnitInput]> = Vec::with_capacity(threads);
    let (mut start, mut acc) = (0, 0);
    for (i, u) in units.iter().enumerate() {
        acc += u.data.len();
        if acc >= per_thread && chunks.len() + 1 < threads {
            chunks.push(&units[start..=i]);
            start = i + 1;
            acc = 0;
        }
    }
    chunks.push(&units[start..]);

    let results: Vec<Result<Vec<ProcessedUnit>, BuildError>> = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(chunks.len());
        for chunk in &chunks[1..] {
            let chunk: &[&UnitInput] = chunk;
            let spawned = std::thread::Builder::new()
                .name("artifact-build".into())
                .spawn_scoped(scope, move || {
                    chunk
                        .iter()
                        .map(|u| process_one(u, ctx))
                        .collect::<Result<Vec<_>, _>>()
                });
            handles.push((chunk, spawned));
        }
        // The calling thread takes the first chunk itself.
        let mut results = vec![chunks[0].iter().map(|u| process_one(u, ctx)).collect()];
        for (chunk, spawned) in handles {
            let result = match spawned {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|_| Err(BuildError::Archive("a build thread panicked".into()))),
                // Could not spawn (thread limit): do the chunk here instead.
                Err(_) => chunk.iter().map(|u| process_one(u, ctx)).collect(),
            };
            results.push(result);
        }
        results
    });
    let mut out = Vec::with_capacity(units.len());
    for result in results {
        out.extend(result?);
    }
    Ok(out)
}
