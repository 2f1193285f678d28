//! Digests that never move by accident: a fixed set of units gives a fixed, checked-in artifact digest.
//! A change of the scanner, serde_yaml_ng's emitter, zlib-rs, the gzip level or the tar layout that
//! alters the bytes fails here first — and would otherwise give every repository a new revision (and
//! Flux a re-apply) on upgrade. When a change is meant, update the digest and say so in the release
//! notes (docs/artifacts.md, "The bytes depend on").

use super::{BuildContext, UnitInput, build};

/// The units: block YAML (textual path) with comments and quoting, a multi-document unit, a unit the
/// full parser writes out (an anchor), a cluster-scoped object and a unit of another toolchain.
fn units() -> Vec<UnitInput> {
    vec![
        UnitInput::new(
            "web",
            "Kubernetes/YAML",
            7,
            "# the web tier\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  replicas: 2 # two is enough\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: \"nginx:1.27\"\n        args: [\"--port\", '8080']\n",
        ),
        UnitInput::new(
            "config",
            "Kubernetes/YAML",
            3,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: blue\n  note: |\n    two\n    lines\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n",
        ),
        UnitInput::new(
            "anchored",
            "Kubernetes/YAML",
            1,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: anchored\ndata:\n  a: &v shared\n  b: *v\n",
        ),
        UnitInput::new(
            "namespace",
            "Kubernetes/YAML",
            2,
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
        ),
        UnitInput::new("notes", "AppConfig/Properties", 1, "a=b\n"),
    ]
}

fn context() -> BuildContext {
    BuildContext {
        space_name: "golden".into(),
        space_id: "00000000-0000-4000-8000-000000000001".into(),
        mode_prefix: "head",
    }
}

#[test]
fn a_fixed_set_of_units_gives_the_checked_in_digest() {
    let built = build(&units(), &context()).unwrap();
    assert_eq!(built.object_count, 5);
    assert_eq!(built.skipped, ["notes"]);
    assert_eq!(
        built.digest, GOLDEN_DIGEST,
        "the artifact bytes changed: every repository gets a new revision on upgrade"
    );
    // The same input twice is the same bytes (no time, order or thread count in them).
    assert_eq!(build(&units(), &context()).unwrap().bytes, built.bytes);
}

const GOLDEN_DIGEST: &str =
    "sha256:ff0db4e02b46e81680996c5cb086a1d99e19a63b521669167a3f67a0182b77ff";
