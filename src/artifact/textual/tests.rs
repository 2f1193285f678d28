//! The fast path held to the full parser: exact output, fallbacks, mutants and real manifests.

use super::*;
use crate::artifact::manifest::parse_and_stamp;
use crate::artifact::manifest::test_support::{parse_back as documents, stamp};
use crate::fuzzing::mutants::{Rng, mutate};

/// When the fast path takes `data`, the full parser must take it too, find the same objects, and
/// its output must read back as the same documents. Returns whether the fast path took it.
fn agrees(data: &[u8]) -> bool {
    let Some(fast) = try_process(data, &stamp()) else {
        return false;
    };
    let shown = String::from_utf8_lossy(data);
    let full = parse_and_stamp(data, &stamp())
        .unwrap_or_else(|e| panic!("fast path took what the full parser refuses ({e}):\n{shown}"));
    assert_eq!(fast.objects, full.objects, "{shown}");
    assert_eq!(
        documents(&fast.text.to_vec(data)),
        documents(&full.text.to_vec(data)),
        "input:\n{shown}\nfast:\n{}\nfull:\n{}",
        String::from_utf8_lossy(&fast.text.to_vec(data)),
        String::from_utf8_lossy(&full.text.to_vec(data))
    );
    true
}

/// Shapes Kubernetes tools write; every one must take the fast path.
const COMMON: &[&str] = &[
    // kubectl / ConfigHub style: indentless sequences, labels present.
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: apps\n  labels:\n    app: web\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n        args:\n        - --port=8080\n        - -v\n        env:\n        - name: A\n          value: \"1\"\n        ports:\n        - containerPort: 80\n          name: http\n",
    // Indented sequences, four-space indentation, comments everywhere, annotations present.
    "# leading comment\napiVersion: v1   # trailing\nkind: ConfigMap\nmetadata:\n    name: 'cfg'\n    annotations:\n        note: \"a: b # not a comment\"\n        other: it's fine\n    # between keys\ndata:\n    list:\n        - a\n        -   b\n        - c: d\n          e: f\n",
    // Block scalars of every chomping, nested compact sequences, flow collections, empty values.
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: scripts\ndata:\n  run.sh: |\n    #!/bin/sh\n    set -eu\n\n      indented: line\n    echo \"done\" # still text\n  keep: |+\n    kept\n\n  strip: >-\n    folded\n    text\n  empty: \"\"\n  nothing:\n  none: ~\n  flow: {a: 1, \"b\": [x, 'y', \"z\"], c: {}}\n  seq: [1, 2.5, -3, true, null, --flag]\n  nested:\n  - - a\n    - b\n  - -\n    - c\nbinaryData: {}\n",
    // Several documents, empty ones, a last line without newline.
    "---\n# only a comment\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n  labels: \n    a: b\nspec:\n  ports:\n  - port: 80\n---\n---\napiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: \"quoted-name\"\n  namespace: ns\nspec:\n  \"quoted key\": 1\n  'single': 2\n  url: http://example.com:8080/path?q=1#frag\n  time: 12:30:00\n  unicode: ünï 🚀\n  end: true",
    // A mapping with more than 16 keys (repeats are found by sorting), a kept block before `---`,
    // deep nesting.
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  annotations:\n    a: |+\n      kept\n\ndata:\n  k01: a\n  k02: b\n  k03: c\n  k04: d\n  k05: e\n  k06: f\n  k07: g\n  k08: h\n  k09: i\n  k10: j\n  k11: k\n  k12: l\n  k13: m\n  k14: n\n  k15: o\n  k16: p\n  k17: q\n  k18: r\n  tail: |+\n    kept\n\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  a:\n    b:\n      c:\n      - d:\n          e:\n          - - f\n            - g: h\n",
    // Scalars over several lines, as controller-gen writes CRD descriptions.
    "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  versions:\n  - name: v1\n    schema:\n      openAPIV3Schema:\n        description: Widget is a thing that spans\n          more than one line\n\n          and a blank one.\n        properties:\n          apiVersion:\n            description: 'APIVersion defines the versioned schema. It''s\n              quoted: because of the colon'\n            type: string\n          kind:\n            description: \"Kind is a string value \\\n              continued, with \\\"escapes\\\"\n              and more\"\n            type: string\n        type: object\n    served: true\n    enum:\n    - a long item\n      that wraps\n    - short\n",
    // A sequence item whose value starts on the next line; a key whose mapping is a sequence item.
    "apiVersion: v1\nkind: List\nmetadata:\n  name: l\nitems:\n-\n  a: 1\n- b:\n    c: 2\n-\n  - x\n",
];

#[test]
fn common_shapes_take_the_fast_path_and_agree_with_the_full_parser() {
    for src in COMMON {
        assert!(agrees(src.as_bytes()), "fell back:\n{src}");
    }
}

#[test]
fn the_units_own_text_is_kept_and_stamps_go_under_metadata() {
    let src = "# header kept\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c   # why\n  labels:\n    app: c\ndata:\n  a: 'x'  # note\n";
    let out = try_process(src.as_bytes(), &stamp()).unwrap();
    let text = String::from_utf8(out.text.to_vec(src.as_bytes())).unwrap();
    assert_eq!(
        text,
        "# header kept\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  annotations:\n    confighub.com/SpaceName: prod\n    confighub.com/SpaceID: \"1111-2222\"\n    confighub.com/RevisionNum: \"7\"\n  name: c   # why\n  labels:\n    confighub.com/UnitSlug: web\n    app: c\ndata:\n  a: 'x'  # note\n"
    );
    assert_eq!(out.objects[0].to_string(), "ConfigMap c");
}

#[test]
fn huge_mappings_are_checked_for_repeats_without_quadratic_work() {
    let head = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
    let keys: Vec<String> = (0..200_000).map(|i| format!("k{i}: v")).collect();
    let flow = format!("{head}data: {{{}}}\n", keys.join(", "));
    assert!(try_process(flow.as_bytes(), &stamp()).is_some());
    let repeated = format!("{head}data: {{{}, k7: w}}\n", keys.join(", "));
    assert!(try_process(repeated.as_bytes(), &stamp()).is_none());
    let block = format!("{head}data:\n  {}\n  k7: w\n", keys.join("\n  "));
    assert!(try_process(block.as_bytes(), &stamp()).is_none());
}

#[test]
fn unusual_or_invalid_input_is_left_to_the_full_parser() {
    let ok = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
    let cases: &[&str] = &[
        "a: &x 1\nb: *x\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: !!str c\n",
        "apiVersion: v1\nkind: A\nmetadata:\n\tname: c\n",
        "apiVersion: v1\r\nkind: A\r\nmetadata:\r\n  name: c\r\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\ndata:\n  a: multi\n    line: x\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\ndata:\n  a: \"multi\nline\"\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\ndata:\n  a: multi\n  # comment\n    line\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: multi\n    line\n",
        "apiVersion: v1\nkind: A\nmetadata: {name: c}\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n  labels: {}\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n  labels:\n    confighub.com/UnitSlug: x\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n  annotations:\n    confighub.com/RevisionNum: \"1\"\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n  labels:\n  annotations:\n    a: b\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: 1\n\"spec\": 2\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec:\n  a: 1\n  a: 2\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: {a: 1, a: 2}\n",
        "%YAML 1.2\n---\napiVersion: v1\nkind: A\nmetadata:\n  name: c\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n...\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\ndata:\n  a: |2\n      x\n",
        "- a\n- b\n",
        "just text\n",
        "~\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: - a\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec:\n  a: 1\n   b: 2\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: [a, b, ]\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: 123\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: \"\"\n",
        "apiVersion: v1\nkind: true\nmetadata:\n  name: c\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  namespace: n\n",
        "kind: A\nmetadata:\n  name: c\n",
        "\u{feff}apiVersion: v1\nkind: A\nmetadata:\n  name: c\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\ndata:\n  a: x\u{85}y\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: [a, b\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: a: b\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec:\n  \"a\\x\": 1\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n  labels:\n  - a\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\ndata:\n  s: |\n    end without newline",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n? complex\n: key\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\non: push\n",
        "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n<<: {a: 1}\n",
        "  apiVersion: v1\n  kind: A\n  metadata:\n    name: c\n",
    ];
    assert!(try_process(ok.as_bytes(), &stamp()).is_some());
    for src in cases {
        assert!(
            try_process(src.as_bytes(), &stamp()).is_none(),
            "fast path took:\n{src}"
        );
    }
}

/// Every YAML file under `dir` (recursively): (path, bytes).
fn yaml_files(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && let Ok(bytes) = std::fs::read(&path)
        {
            out.push((path, bytes));
        }
    }
}

/// Real manifests: the project's own (CRD, RBAC, Deployment, demo units), plus any folder named by
/// FAST_PATH_CORPUS (e.g. a Go module cache full of Kubernetes YAML) for a wider local check.
#[test]
fn real_manifests_agree_with_the_full_parser() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["crds", "config", "examples/demo"] {
        yaml_files(&root.join(dir), &mut files);
    }
    let own = files.len();
    if let Ok(extra) = std::env::var("FAST_PATH_CORPUS") {
        yaml_files(std::path::Path::new(&extra), &mut files);
    }
    let mut taken = Vec::new();
    let mut objects = 0;
    for (path, bytes) in &files {
        if bytes.len() > crate::artifact::MAX_UNIT_BYTES {
            continue;
        }
        objects += usize::from(parse_and_stamp(bytes, &stamp()).is_ok());
        if agrees(bytes) {
            taken.push(path.clone());
        }
    }
    eprintln!(
        "fast path took {} of the {objects} files that are valid units ({} files)",
        taken.len(),
        files.len()
    );
    assert!(own >= 5, "the project's manifests were not found");
    let demo = root.join("examples/demo/units");
    assert!(
        files
            .iter()
            .filter(|(p, _)| p.starts_with(&demo))
            .all(|(p, _)| taken.contains(p)),
        "a demo unit fell back to the full parser"
    );
}

#[test]
fn whatever_the_fast_path_takes_the_full_parser_reads_the_same() {
    let seed = std::env::var("FAST_PATH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut rng = Rng(seed);
    let mut taken = 0;
    let mut total = 0;
    // A longer local search: FAST_PATH_MUTANTS=200000 FAST_PATH_SEED=<n> cargo test --release ...
    let rounds: usize = std::env::var("FAST_PATH_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    for src in COMMON {
        let mut current = src.to_string();
        for round in 0..rounds {
            // Mostly single edits of the original, sometimes an accumulation of edits.
            if round % 4 == 0 {
                current = src.to_string();
            }
            current = mutate(&current, &mut rng);
            total += 1;
            if agrees(current.as_bytes()) {
                taken += 1;
            }
        }
    }
    // The check above only means something if many mutants still take the fast path.
    assert!(
        taken * 10 > total,
        "only {taken} of {total} mutants took the fast path"
    );
}
