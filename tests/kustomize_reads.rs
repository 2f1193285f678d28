//! The YAML kustomize-controller accepts: every unit is read both by the controller and by kustomize's
//! own API (`hack/kustomize-read`, the kustomize version kustomize-controller v1.9.6 builds with, each
//! unit as the only resource of a generated kustomization.yaml, as kustomize-controller generates one).
//! Units kustomize accepts must be accepted with the same objects; units the controller accepts must
//! build in kustomize; where the controller refuses what kustomize takes, the reason must be one of the
//! differences documented in docs/artifacts.md. Inputs: the project's manifests, encoding oddities real
//! editors produce, and mutants of Kubernetes YAML (`KUSTOMIZE_MUTANTS`, default 1,500;
//! `KUSTOMIZE_SEED`; `KUSTOMIZE_CORPUS=<dir>` adds every YAML file under a folder).

#[path = "e2e/support/go_tool.rs"]
mod go_tool;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use confighub_source_controller::fuzzing::mutants::{Rng, mutate};
use confighub_source_controller::fuzzing::read_unit;

/// Refusals of the controller that kustomize does not share, each documented in docs/artifacts.md
/// ("What kustomize accepts and the controller refuses"): (substring of our error, why).
const JUSTIFIED: &[(&str, &str)] = &[
    (
        "duplicate mapping key",
        "refused: a repeated key (kustomize keeps one of the values silently)",
    ),
    (
        "missing apiVersion",
        "refused: no apiVersion (kustomize builds it, the apply fails)",
    ),
    (
        "missing kind",
        "refused: no kind (kustomize builds it, the apply fails)",
    ),
    (
        "missing metadata.name",
        "refused: no name (kustomize builds it, the apply fails)",
    ),
    (
        "must be a mapping",
        "refused: metadata field of the wrong type (kustomize builds it, the apply fails)",
    ),
];

/// Units the controller packs that kustomize's build refuses for a reason beyond YAML and object
/// identity, which the controller does not check (a field of the wrong type for its kind, found by a
/// kustomize transformer walking that kind's fields): the Kustomization reports kustomize's error, as
/// the API server would refuse the object anyway. (substring of kustomize's error, category).
const KIND_SCHEMA: &[(&str, &str)] = &[(
    "expected sequence or mapping node",
    "accepted, kustomize refuses: a field of the wrong type for its kind",
)];

fn yaml_files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && let Ok(bytes) = std::fs::read(&path)
        {
            out.push((path.display().to_string(), bytes));
        }
    }
}

/// What real editors and tools produce besides plain UTF-8 with LF.
fn oddities() -> Vec<(String, Vec<u8>)> {
    let base =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: odd\n  namespace: ns\ndata:\n  a: b\n";
    let mut out = vec![
        ("crlf".to_string(), base.replace('\n', "\r\n").into_bytes()),
        ("bom".to_string(), [b"\xEF\xBB\xBF".as_slice(), base.as_bytes()].concat()),
        ("cr-only".to_string(), base.replace('\n', "\r").into_bytes()),
        ("no-final-newline".to_string(), base.trim_end().as_bytes().to_vec()),
        ("trailing-spaces".to_string(), base.replace('\n', "  \n").into_bytes()),
        ("tab-indent".to_string(), base.replace("  name", "\tname").into_bytes()),
        ("nbsp-value".to_string(), base.replace("a: b", "a: b\u{a0}c").into_bytes()),
        ("nbsp-indent".to_string(), base.replace("  name", "\u{a0} name").into_bytes()),
        ("nul".to_string(), base.replace("a: b", "a: b\0").into_bytes()),
        ("latin1".to_string(), base.replace("a: b", "a: caf\u{e9}").replace('\u{e9}', "\u{0}").into_bytes()),
        ("utf16le".to_string(), base.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()),
        ("empty".to_string(), Vec::new()),
        ("only-comment".to_string(), b"# nothing here\n".to_vec()),
        ("document-end".to_string(), format!("{base}...\n").into_bytes()),
        ("two-docs".to_string(), format!("{base}---\n{}", base.replace("name: odd", "name: odd2")).into_bytes()),
        ("list-kind".to_string(), b"apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: in-list\n".to_vec()),
        ("anchors".to_string(), b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: anchored\n  labels: &l\n    a: b\n  annotations: *l\n".to_vec()),
        ("merge-key".to_string(), b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: merged\ndata:\n  <<: {a: b}\n  c: d\n".to_vec()),
        ("yaml-1.1-bools".to_string(), b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bools\ndata:\n  a: yes\n  b: on\n".to_vec()),
        ("no-name".to_string(), b"apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n".to_vec()),
        ("no-kind".to_string(), b"apiVersion: v1\nmetadata:\n  name: x\n".to_vec()),
        ("json".to_string(), br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "json"}}"#.to_vec()),
    ];
    out.iter_mut()
        .for_each(|(name, _)| *name = format!("oddity:{name}"));
    out
}

#[derive(Debug, serde::Deserialize)]
struct GoRead {
    ok: bool,
    #[serde(default)]
    error: String,
    objects: Vec<GoObject>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GoObject {
    api_version: String,
    kind: String,
    namespace: String,
    name: String,
}

fn group(api_version: &str) -> String {
    api_version
        .rsplit_once('/')
        .map(|(g, _)| g.to_string())
        .unwrap_or_default()
}

#[test]
fn kustomize_and_the_controller_read_units_alike() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = Vec::new();
    for dir in [
        "config",
        "examples/demo",
        "charts/confighub-source-controller/crds",
        "tests/e2e/testdata",
    ] {
        yaml_files(&root.join(dir), &mut inputs);
    }
    let manifests = inputs.len();
    inputs.extend(oddities());
    if let Ok(extra) = std::env::var("KUSTOMIZE_CORPUS") {
        yaml_files(Path::new(&extra), &mut inputs);
    }
    let seeds: Vec<Vec<u8>> = inputs
        .iter()
        .take(manifests)
        .map(|(_, b)| b.clone())
        .collect();
    let mutants: usize = std::env::var("KUSTOMIZE_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let mut rng = Rng(std::env::var("KUSTOMIZE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5DEE_CE66_D1CE_B00C));
    let small: Vec<&Vec<u8>> = seeds.iter().filter(|s| s.len() < 4096).collect();
    for n in 0..mutants {
        let seed = String::from_utf8_lossy(small[rng.below(small.len())]).to_string();
        let mut mutant = mutate(&seed, &mut rng);
        if n % 3 == 0 {
            mutant = mutate(&mutant, &mut rng);
        }
        inputs.push((format!("mutant:{n}"), mutant.into_bytes()));
    }

    let dir = tempfile::tempdir().unwrap();
    let mut list = String::new();
    for (i, (_, bytes)) in inputs.iter().enumerate() {
        let path = dir.path().join(format!("{i}.yaml"));
        std::fs::write(&path, bytes).unwrap();
        list.push_str(&format!("{}\n", path.display()));
    }
    let mut child = Command::new(go_tool::built_go_tool("kustomize-read"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting kustomize-read");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let reads: Vec<GoRead> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reads.len(), inputs.len());

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for ((label, bytes), go) in inputs.iter().zip(&reads) {
        let shown = || format!("{label}:\n{}", String::from_utf8_lossy(bytes));
        match (read_unit(bytes), go.ok) {
            (Ok(ours), true) => {
                let mut theirs: Vec<[String; 4]> = go
                    .objects
                    .iter()
                    .map(|o| {
                        [
                            group(&o.api_version),
                            o.kind.clone(),
                            o.namespace.clone(),
                            o.name.clone(),
                        ]
                    })
                    .collect();
                let mut ours = ours;
                ours.sort();
                theirs.sort();
                if ours == theirs {
                    *counts.entry("both accept, same objects").or_default() += 1;
                } else {
                    failures.push(format!(
                        "different objects: ours {ours:?}, kustomize {theirs:?}\n{}",
                        shown()
                    ));
                }
            }
            (Err(_), false) => *counts.entry("both refuse").or_default() += 1,
            (Ok(ours), false) => match KIND_SCHEMA
                .iter()
                .find(|(needle, _)| go.error.contains(needle))
            {
                Some((_, why)) => *counts.entry(why).or_default() += 1,
                None => failures.push(format!(
                    "the controller accepts ({} objects) what kustomize refuses ({})\n{}",
                    ours.len(),
                    go.error,
                    shown()
                )),
            },
            (Err(ours), true) => match JUSTIFIED.iter().find(|(needle, _)| ours.contains(needle)) {
                Some((_, why)) => *counts.entry(why).or_default() += 1,
                None => failures.push(format!(
                    "the controller refuses ({ours}) what kustomize accepts ({} objects)\n{}",
                    go.objects.len(),
                    shown()
                )),
            },
        }
    }
    eprintln!(
        "{} inputs ({manifests} manifests, {mutants} mutants): {counts:?}",
        inputs.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreements; the first ones:\n\n{}",
        failures.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}
