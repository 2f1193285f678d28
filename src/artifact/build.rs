//! Orchestration: units in, one reproducible artifact out.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use super::archive::write_tar_gz;
use super::error::BuildError;
use super::manifest::{ObjectKey, ProcessedUnit, Stamp};
use super::names;
use super::par;
use super::process::process_unit;
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
    let contents: Vec<(&str, Vec<&[u8]>)> = file_names
        .iter()
        .zip(processed.iter().zip(&packed))
        .filter(|(_, (p, _))| !p.text.is_empty())
        .map(|(name, (p, unit))| (name.as_str(), p.text.slices(&unit.data).collect()))
        .collect();
    let files: Vec<(&str, &[&[u8]])> = contents.iter().map(|(n, c)| (*n, c.as_slice())).collect();
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

/// A digest of everything [`build`] reads: the context and every unit's slug, toolchain, revision and
/// data, in slug order. Equal fingerprints mean an equal artifact, so a caller that remembers the last
/// build of a repository can skip rebuilding an unchanged space (the build itself stays the reference).
pub fn input_fingerprint(units: &[UnitInput], ctx: &BuildContext) -> [u8; 32] {
    let mut sorted: Vec<&UnitInput> = units.iter().collect();
    sorted.sort_by(|a, b| a.slug.cmp(&b.slug));
    let mut hasher = Sha256::new();
    // Length-prefixed fields, so no two different inputs hash the same byte stream.
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(ctx.space_name.as_bytes());
    field(ctx.space_id.as_bytes());
    field(ctx.mode_prefix.as_bytes());
    for unit in sorted {
        field(unit.slug.as_bytes());
        field(unit.toolchain_type.as_bytes());
        field(&unit.revision_num.to_le_bytes());
        field(&unit.data);
    }
    hasher.finalize().into()
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

/// Processes units, on several threads when there is enough work. The result (and the first error
/// reported) is the same as the sequential run: results are placed by index.
fn process_all(units: &[&UnitInput], ctx: &BuildContext) -> Result<Vec<ProcessedUnit>, BuildError> {
    par::map(
        units,
        |u| u.data.len(),
        PARALLEL_THRESHOLD_BYTES,
        |_, u| process_one(u, ctx),
    )
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use serde_yaml_ng::Value;

    use super::*;
    use crate::artifact::manifest::{
        ANNOTATION_REVISION_NUM, ANNOTATION_SPACE_ID, ANNOTATION_SPACE_NAME, LABEL_UNIT_SLUG,
    };
    use crate::artifact::names::is_safe_entry_name;

    fn ctx() -> BuildContext {
        BuildContext {
            space_name: "prod".into(),
            space_id: "5f0c-space".into(),
            mode_prefix: "head",
        }
    }

    fn deployment(name: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: apps\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n"
        )
    }

    fn k8s(slug: &str, rev: i64, yaml: &str) -> UnitInput {
        UnitInput::new(slug, "Kubernetes/YAML", rev, yaml)
    }

    fn sample() -> Vec<UnitInput> {
        vec![
            k8s("web", 3, &deployment("web")),
            k8s(
                "db",
                9,
                &format!(
                    "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: db, namespace: apps}}\n",
                    deployment("db")
                ),
            ),
            UnitInput::new("props", "AppConfig/Properties", 1, "a=b\n"),
        ]
    }

    /// (name, content) of every entry, checking each header against Flux's extraction rules.
    fn extract(bytes: &[u8]) -> Vec<(String, String)> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let raw = String::from_utf8(entry.path_bytes().to_vec()).unwrap();
            assert!(
                !raw.is_empty()
                    && !raw.contains('\\')
                    && !raw.contains("../")
                    && !raw.starts_with('/')
            );
            assert!(is_safe_entry_name(&raw), "{raw}");
            assert!(entry.header().entry_type().is_file());
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            out.push((raw, body));
        }
        out
    }

    #[test]
    fn build_is_reproducible_and_order_independent() {
        let a = build(&sample(), &ctx()).unwrap();
        let b = build(&sample(), &ctx()).unwrap();
        let mut reversed = sample();
        reversed.reverse();
        let c = build(&reversed, &ctx()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            a.digest,
            format!("sha256:{}", hex::encode(Sha256::digest(&a.bytes)))
        );
        assert_eq!(a.revision, format!("head@{}", a.digest));
        assert_eq!(a.unit_count, 2);
        assert_eq!(a.object_count, 3);
    }

    #[test]
    fn revision_changes_exactly_when_content_changes() {
        let base = build(&sample(), &ctx()).unwrap();
        // A skipped unit's data is not in the artifact.
        let mut other = sample();
        other[2].data = b"c=d\n".to_vec();
        assert_eq!(build(&other, &ctx()).unwrap().revision, base.revision);
        // A new revision number is stamped, so it changes the artifact, as does new data.
        let mut bumped = sample();
        bumped[0].revision_num = 4;
        let bumped = build(&bumped, &ctx()).unwrap();
        assert_ne!(bumped.revision, base.revision);
        assert_ne!(
            bumped.metadata[META_OCI_REVISION],
            base.metadata[META_OCI_REVISION]
        );
        let mut edited = sample();
        edited[0].data = deployment("web")
            .replace("replicas: 2", "replicas: 3")
            .into_bytes();
        assert_ne!(build(&edited, &ctx()).unwrap().revision, base.revision);
        // The released mode only changes the prefix.
        let released = build(
            &sample(),
            &BuildContext {
                mode_prefix: "released",
                ..ctx()
            },
        )
        .unwrap();
        assert_eq!(released.digest, base.digest);
        assert_eq!(released.revision, format!("released@{}", base.digest));
    }

    #[test]
    fn files_hold_stamped_objects_per_unit() {
        let built = build(&sample(), &ctx()).unwrap();
        let files = extract(&built.bytes);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["db.yaml", "web.yaml"]);
        for (name, body) in &files {
            let slug = name.trim_end_matches(".yaml");
            let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(body)
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .collect();
            assert!(!docs.is_empty());
            for doc in docs {
                let md = &doc["metadata"];
                assert_eq!(md["labels"][LABEL_UNIT_SLUG], Value::from(slug));
                assert_eq!(
                    md["annotations"][ANNOTATION_SPACE_NAME],
                    Value::from("prod")
                );
                assert_eq!(
                    md["annotations"][ANNOTATION_SPACE_ID],
                    Value::from("5f0c-space")
                );
                let rev = if slug == "db" { "9" } else { "3" };
                assert_eq!(md["annotations"][ANNOTATION_REVISION_NUM], Value::from(rev));
            }
        }
        assert!(files[0].1.contains("\n---\n"));
    }

    #[test]
    fn fingerprint_changes_exactly_when_the_build_input_does() {
        let base = input_fingerprint(&sample(), &ctx());
        let mut reversed = sample();
        reversed.reverse();
        assert_eq!(input_fingerprint(&reversed, &ctx()), base);
        let mut changed: Vec<Vec<UnitInput>> = vec![sample(), sample(), sample(), sample()];
        changed[0][0].data.push(b'\n');
        changed[1][0].revision_num += 1;
        changed[2][2].toolchain_type = "Kubernetes/YAML".into();
        changed[3][0].slug = "web2".into();
        for units in &changed {
            assert_ne!(input_fingerprint(units, &ctx()), base);
        }
        let other_space = BuildContext {
            space_id: "other".into(),
            ..ctx()
        };
        assert_ne!(input_fingerprint(&sample(), &other_space), base);
        let released = BuildContext {
            mode_prefix: "released",
            ..ctx()
        };
        assert_ne!(input_fingerprint(&sample(), &released), base);
        // Moving bytes between fields is a different input.
        let a = vec![k8s("ab", 1, "c")];
        let b = vec![k8s("a", 1, "bc")];
        assert_ne!(input_fingerprint(&a, &ctx()), input_fingerprint(&b, &ctx()));
    }

    #[test]
    fn skipped_units_are_named_and_metadata_is_recorded() {
        let built = build(&sample(), &ctx()).unwrap();
        assert_eq!(built.skipped, vec!["props".to_string()]);
        assert_eq!(built.metadata[META_SPACE], "prod");
        assert_eq!(built.metadata[META_UNIT_COUNT], "2");
        let origin = &built.metadata[META_OCI_REVISION];
        assert!(origin.starts_with("prod@head:2 units:"), "{origin}");
    }

    #[test]
    fn errors_name_the_units() {
        let cases: Vec<(Vec<UnitInput>, Vec<&str>)> = vec![
            (
                vec![k8s("ok", 1, &deployment("a")), k8s("broken", 1, "a: [\n")],
                vec!["broken"],
            ),
            (
                vec![k8s("nokind", 1, "apiVersion: v1\nmetadata: {name: x}\n")],
                vec!["nokind", "missing kind"],
            ),
            (vec![k8s("list", 1, "- 1\n- 2\n")], vec!["list", "mapping"]),
            (
                vec![
                    k8s("one", 1, &deployment("same")),
                    k8s("two", 1, &deployment("same")),
                ],
                vec!["one", "two", "Deployment.apps apps/same"],
            ),
            (
                vec![k8s(
                    "twice",
                    1,
                    &format!("{}---\n{}", deployment("x"), deployment("x")),
                )],
                vec!["twice", "Deployment.apps apps/x"],
            ),
            (vec![k8s("dup", 1, ""), k8s("dup", 2, "")], vec!["dup"]),
        ];
        for (units, wanted) in cases {
            let err = build(&units, &ctx()).unwrap_err().to_string();
            for want in wanted {
                assert!(err.contains(want), "{err:?} lacks {want:?}");
            }
        }
    }

    #[test]
    fn same_name_in_other_namespace_or_group_is_no_duplicate() {
        let units = vec![
            k8s(
                "a",
                1,
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: a}\n",
            ),
            k8s(
                "b",
                1,
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: b}\n",
            ),
            k8s(
                "c",
                1,
                "apiVersion: example.com/v1\nkind: ConfigMap\nmetadata: {name: x, namespace: a}\n",
            ),
        ];
        assert_eq!(build(&units, &ctx()).unwrap().object_count, 3);
    }

    #[test]
    fn hostile_slugs_give_safe_entries() {
        let units: Vec<UnitInput> = [
            "../../etc/cron.d/x",
            "/abs",
            "a\\b",
            ".hidden",
            "",
            "kustomization",
        ]
        .iter()
        .enumerate()
        .map(|(i, slug)| {
            k8s(
                slug,
                1,
                &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n"),
            )
        })
        .collect();
        let built = build(&units, &ctx()).unwrap();
        let files = extract(&built.bytes);
        assert_eq!(files.len(), units.len());
        assert!(files.iter().all(|(n, _)| n != "kustomization.yaml"));
    }

    #[test]
    fn empty_units_count_but_get_no_file() {
        let units = vec![
            k8s("empty", 1, "# nothing yet\n"),
            k8s("web", 1, &deployment("web")),
        ];
        let built = build(&units, &ctx()).unwrap();
        assert_eq!(built.unit_count, 2);
        assert_eq!(extract(&built.bytes).len(), 1);
        let none = build(&[], &ctx()).unwrap();
        assert_eq!(none.unit_count, 0);
        assert!(extract(&none.bytes).is_empty());
    }

    #[test]
    fn parallel_build_matches_per_unit_processing() {
        // Enough data to take the multi-threaded path.
        let units: Vec<UnitInput> = (0..1500)
            .map(|i| k8s(&format!("u{i:04}"), i, &deployment(&format!("d{i}"))))
            .collect();
        assert!(units.iter().map(|u| u.data.len()).sum::<usize>() > PARALLEL_THRESHOLD_BYTES);
        let mut shuffled = units.clone();
        shuffled.reverse();
        shuffled.swap(3, 400);
        let a = build(&units, &ctx()).unwrap();
        assert_eq!(a, build(&shuffled, &ctx()).unwrap());
        let files = extract(&a.bytes);
        assert_eq!(files.len(), 1500);
        for ((name, body), unit) in files.iter().zip(&units) {
            assert_eq!(name, &format!("{}.yaml", unit.slug));
            let single = process_one(unit, &ctx()).unwrap();
            assert_eq!(body.as_bytes(), single.text.to_vec(&unit.data).as_slice());
        }
        // The first error in slug order wins, whichever thread found it.
        let mut bad = units.clone();
        bad[1490].data = b"kind: [".to_vec();
        bad[10].data = b"kind: [".to_vec();
        let err = build(&bad, &ctx()).unwrap_err().to_string();
        assert!(err.contains("u0010"), "{err}");
    }
}
