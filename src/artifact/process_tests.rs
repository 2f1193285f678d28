//! Tests of one unit's processing through both paths (textual and full), and of the full path's limits.

use super::process_unit;
use crate::artifact::error::BuildError;
use crate::artifact::manifest::test_support::{parse_back, stamp};
use crate::artifact::manifest::*;
use serde_yaml_ng::Value;

#[test]
fn stamps_provenance_and_keeps_content() {
    let src = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  replicas: 3\n  note: \"007\"\n---\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default, annotations: null}\n";
    let unit = process_unit(src, &stamp()).unwrap();
    assert_eq!(unit.objects.len(), 2);
    assert_eq!(unit.objects[0].group, "apps");
    assert_eq!(unit.objects[1].group, "");
    assert_eq!(unit.objects[1].namespace, "default");
    let docs = parse_back(&unit.text.to_vec(src));
    assert_eq!(docs.len(), 2);
    for doc in &docs {
        let md = &doc["metadata"];
        assert_eq!(md["labels"][LABEL_UNIT_SLUG], Value::from("web"));
        assert_eq!(md["annotations"][ANNOTATION_REVISION_NUM], Value::from("7"));
        assert_eq!(
            md["annotations"][ANNOTATION_SPACE_NAME],
            Value::from("prod")
        );
        assert_eq!(
            md["annotations"][ANNOTATION_SPACE_ID],
            Value::from("1111-2222")
        );
    }
    assert_eq!(docs[0]["metadata"]["labels"]["app"], Value::from("web"));
    assert_eq!(docs[0]["spec"]["replicas"], Value::from(3));
    assert_eq!(docs[0]["spec"]["note"], Value::from("007"));
}

#[test]
fn empty_unit_has_no_objects() {
    let unit = process_unit(b"---\n# just a comment\n---\n", &stamp()).unwrap();
    assert!(unit.objects.is_empty());
    assert!(unit.text.is_empty());
}

#[test]
fn rejects_non_objects_with_unit_and_document() {
    let cases: &[(&[u8], &str)] = &[
        (b"kind: A\nmetadata: {name: x}\n", "missing apiVersion"),
        (b"apiVersion: v1\nmetadata: {name: x}\n", "missing kind"),
        (b"apiVersion: v1\nkind: A\n", "missing metadata"),
        (
            b"apiVersion: v1\nkind: A\nmetadata: {}\n",
            "missing metadata.name",
        ),
        (
            b"apiVersion: v1\nkind: A\nmetadata: {name: 5}\n",
            "metadata.name must be a string",
        ),
        (
            b"apiVersion: 1\nkind: A\nmetadata: {name: x}\n",
            "apiVersion must be a string",
        ),
        (b"- a\n- b\n", "found a sequence"),
        (b"just text\n", "found a string"),
        (
            b"apiVersion: v1\nkind: A\nmetadata: {name: x, labels: [1]}\n",
            "metadata.labels must be a mapping",
        ),
        (
            b"apiVersion: v1\nkind: A\nmetadata: {name: x, namespace: {a: 1}}\n",
            "metadata.namespace",
        ),
    ];
    for (src, want) in cases {
        let mut doc = b"apiVersion: v1\nkind: A\nmetadata: {name: ok}\n---\n".to_vec();
        doc.extend_from_slice(src);
        let err = process_unit(&doc, &stamp()).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
        assert!(err.contains("\"web\""), "{err}");
        assert!(err.contains("document 2"), "{err}");
    }
}

#[test]
fn invalid_yaml_names_the_unit() {
    for src in [
        &b"a: [1, 2\n"[..],
        b"a: b: c\n",
        b"a: 1\na: 2\n",
        b"\xff\xfe\xfd",
        b"key: \"unterminated\n",
    ] {
        let err = process_unit(src, &stamp()).unwrap_err();
        assert!(matches!(err, BuildError::InvalidYaml { .. }), "{err:?}");
        assert!(err.to_string().contains("\"web\""));
    }
}

#[test]
fn billion_laughs_is_refused_quickly() {
    let bomb = b"a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n\
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n\
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n\
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n\
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    let start = std::time::Instant::now();
    let err = process_unit(bomb, &stamp()).unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    assert!(err.to_string().contains("\"web\""), "{err}");
    assert!(matches!(
        err,
        BuildError::InvalidYaml { .. } | BuildError::AliasExpansion { .. }
    ));
}

#[test]
fn quadratic_alias_blowup_is_refused() {
    // One anchored list of 20k scalars aliased 20k times: fine for serde_yaml_ng's jump limit,
    // 400M nodes if expanded.
    let mut src = String::from("a: &a [");
    src.push_str(&"x,".repeat(20_000));
    src.push_str("x]\nb: [");
    src.push_str(&"*a,".repeat(20_000));
    src.push_str("*a]\n");
    // Refused by the expansion budget (not by time: no timed assertions); a build that expanded the
    // 400M nodes first would not finish this test at all.
    let err = process_unit(src.as_bytes(), &stamp()).unwrap_err();
    assert!(matches!(err, BuildError::AliasExpansion { .. }), "{err:?}");
}

#[test]
fn expansion_budget_is_per_unit_not_per_document() {
    // Each document alone stays under the limit; together they would not.
    let mut doc = String::from("apiVersion: v1\nkind: List\nmetadata: {name: l}\na: &a [");
    doc.push_str(&"x,".repeat(100));
    doc.push_str("x]\nb: [");
    doc.push_str(&"*a,".repeat(200));
    doc.push_str("*a]\n");
    assert!(process_unit(doc.as_bytes(), &stamp()).is_ok());
    let many = vec![doc.as_str(); 60].join("---\n");
    let err = process_unit(many.as_bytes(), &stamp()).unwrap_err();
    assert!(matches!(err, BuildError::AliasExpansion { .. }), "{err:?}");
}

#[test]
fn modest_aliases_are_expanded() {
    let src =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: &d {a: \"1\"}\nextra: *d\n";
    let unit = process_unit(src, &stamp()).unwrap();
    let docs = parse_back(&unit.text.to_vec(src));
    assert_eq!(docs[0]["extra"]["a"], Value::from("1"));
}

#[test]
fn oversized_unit_is_refused() {
    let big = vec![b'#'; MAX_UNIT_BYTES + 1];
    let err = process_unit(&big, &stamp()).unwrap_err();
    assert!(matches!(err, BuildError::UnitTooLarge { .. }));
}

#[test]
fn hostile_inputs_never_panic() {
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_map = "a: ".repeat(5_000);
    let inputs: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\0\0\0".to_vec(),
        b"!!binary aGVsbG8=".to_vec(),
        b"apiVersion: v1\nkind: A\nmetadata: !tag {name: x}\n".to_vec(),
        b"? [a, b]\n: c\n".to_vec(),
        b"*unknown_alias\n".to_vec(),
        b"%YAML 9.9\n---\na: 1\n".to_vec(),
        b"a: 99999999999999999999999999999999\n".to_vec(),
        nested.into_bytes(),
        deep_map.into_bytes(),
        vec![0xEF, 0xBB, 0xBF, b'a', b':', b' ', b'1'],
        (0u8..=255).collect(),
    ];
    for input in inputs {
        let _ = process_unit(&input, &stamp());
    }
}

#[test]
fn object_key_display_is_readable() {
    let key = ObjectKey {
        group: "apps".into(),
        kind: "Deployment".into(),
        namespace: "prod".into(),
        name: "web".into(),
    };
    assert_eq!(key.to_string(), "Deployment.apps prod/web");
}

/// Output minus our stamps equals the input, document by document, whichever emitter ran.
#[test]
fn everything_but_the_stamps_is_preserved() {
    let src = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: scripts
  namespace: ops
  labels: {keep: "yes", confighub.com/UnitSlug: overwritten}
data:
  run.sh: |
    #!/bin/sh
    set -eu
      indented line
    echo "done: $1" # comment-like
  empty: ""
  quoted-number: "0755"
  on: "off"
  tilde: "~"
  colon: "a: b"
  unicode: "ünï 🚀"
  tabbed: "a\tb"
  crlf: "x\r\ny"
  folded: >
    folded text
    continues
binaryData: {}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    note: |-
      no trailing newline
spec:
  replicas: 3
  ratio: 0.25
  big: 18446744073709551615
  neg: -42
  flags: [true, false, null]
  nested: [[1, 2], [], {}]
  template:
    spec:
      containers:
      - name: app
        args: ["--port", "8080", "-v", "--"]
        env:
        - {name: A, value: "1"}
---
apiVersion: example.com/v1
kind: Custom
metadata: {name: tagged}
spec:
  when: !!str 2001-12-14
  custom: !mytag {a: 1}
  "<<": {merge: like}
"#;
    let out = process_unit(src.as_bytes(), &stamp()).unwrap();
    let original = parse_back(src.as_bytes());
    let mut produced = parse_back(&out.text.to_vec(src.as_bytes()));
    assert_eq!(original.len(), produced.len());
    for (doc, want) in produced.iter_mut().zip(&original) {
        let md = doc["metadata"].as_mapping_mut().unwrap();
        let labels = md.get_mut("labels").unwrap().as_mapping_mut().unwrap();
        assert_eq!(labels.remove(LABEL_UNIT_SLUG), Some(Value::from("web")));
        let drop_labels = labels.is_empty() && want["metadata"].get("labels").is_none();
        let annotations = md.get_mut("annotations").unwrap().as_mapping_mut().unwrap();
        for key in [
            ANNOTATION_SPACE_NAME,
            ANNOTATION_SPACE_ID,
            ANNOTATION_REVISION_NUM,
        ] {
            assert!(annotations.remove(key).is_some());
        }
        let drop_annotations =
            annotations.is_empty() && want["metadata"].get("annotations").is_none();
        if drop_labels {
            md.remove("labels");
        }
        if drop_annotations {
            md.remove("annotations");
        }
        let mut want = want.clone();
        // The overwritten label is the one intended difference.
        if let Some(l) = want["metadata"]
            .get_mut("labels")
            .and_then(Value::as_mapping_mut)
        {
            l.remove(LABEL_UNIT_SLUG);
        }
        assert_eq!(doc, &want);
    }
}

#[test]
fn lines_that_look_like_document_markers_are_refused_naming_the_line() {
    for (src, line) in [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---name: x\n",
            5,
        ),
        (
            "---#\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
            1,
        ),
        ("a: 1\n---\n---labels:\n", 3),
    ] {
        let err = process_unit(src.as_bytes(), &stamp()).unwrap_err();
        assert!(
            matches!(err, BuildError::NotADocumentMarker { line: l, .. } if l == line),
            "{src}: {err}"
        );
        assert!(err.to_string().contains(&format!("line {line}")), "{err}");
    }
    // Real markers, with or without a comment after a space, and `---` inside values are fine.
    let ok = "--- # first\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: \"---y\"\n  s: |\n    ---z\n---\t\n";
    assert!(process_unit(ok.as_bytes(), &stamp()).is_ok());
}
