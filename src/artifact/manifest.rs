//! One unit's YAML: parse (bounded), validate as Kubernetes objects, stamp provenance, re-serialise.
//!
//! Limits, and why:
//! - [`MAX_UNIT_BYTES`] (8 MiB) per unit: ConfigHub units are single applications; anything bigger is a
//!   mistake or an attack, and it keeps a 10,000-unit space within memory.
//! - serde_yaml_ng itself refuses nesting deeper than 128 and more than 100 alias jumps per event, but
//!   that still lets one alias to a large anchored list be repeated thousands of times (quadratic blow-up).
//!   So values are built through a counting visitor: every expanded node costs 1 plus its scalar length,
//!   and a unit (all its documents together) may cost at most `4 × unit size + 64 KiB`
//!   ([`expansion_budget`]). Alias-free YAML
//!   always fits (each node takes at least one input byte), while a billion-laughs document fails after
//!   a few thousand nodes, in microseconds.

use std::fmt;

use serde::de::DeserializeSeed;

use super::error::BuildError;
use super::textual;
use super::yaml::{BoundedNode, Budget, Node, emit_document};

/// Largest unit accepted, in bytes of YAML.
pub const MAX_UNIT_BYTES: usize = 8 * 1024 * 1024;

pub use crate::wire::{
    ANNOTATION_REVISION_NUM, ANNOTATION_SPACE_ID, ANNOTATION_SPACE_NAME, LABEL_UNIT_SLUG,
};

/// Identity of a Kubernetes object as kustomize sees it: duplicates of this make a build fail.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.kind)?;
        } else {
            write!(f, "{}.{}", self.kind, self.group)?;
        }
        if self.namespace.is_empty() {
            write!(f, " {}", self.name)
        } else {
            write!(f, " {}/{}", self.namespace, self.name)
        }
    }
}

/// Provenance values stamped on every object of one unit.
pub struct Stamp<'a> {
    pub unit_slug: &'a str,
    pub revision_num: i64,
    pub space_name: &'a str,
    pub space_id: &'a str,
}

/// A unit after processing: its file content and the objects it defines.
#[derive(Debug)]
pub struct ProcessedUnit {
    /// Stamped documents as a `---`-separated YAML stream; empty when the unit had no objects.
    pub text: Spliced,
    pub objects: Vec<ObjectKey>,
}

/// A unit's file content as ranges of the unit's own data and of `extra` (stamp lines and separators,
/// or the whole text when it was re-written). Unchanged bytes are never copied: the archive reads them
/// straight from the unit.
#[derive(Debug, Default)]
pub struct Spliced {
    pub extra: Vec<u8>,
    pub parts: Vec<Part>,
}

/// One range of a [`Spliced`] text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// `start..end` of the unit's data.
    Input(usize, usize),
    /// `start..end` of [`Spliced::extra`].
    Extra(usize, usize),
}

impl Spliced {
    /// A text that is all ours (the re-written path).
    pub fn rewritten(bytes: Vec<u8>) -> Self {
        let parts = if bytes.is_empty() {
            Vec::new()
        } else {
            vec![Part::Extra(0, bytes.len())]
        };
        Spliced {
            extra: bytes,
            parts,
        }
    }

    pub fn len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match *p {
                Part::Input(a, b) | Part::Extra(a, b) => b - a,
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text's bytes in order, given the unit's data.
    pub fn slices<'a>(&'a self, input: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.parts.iter().map(move |p| match *p {
            Part::Input(a, b) => &input[a..b],
            Part::Extra(a, b) => &self.extra[a..b],
        })
    }

    /// The whole text in one buffer.
    #[cfg(test)]
    pub fn to_vec(&self, input: &[u8]) -> Vec<u8> {
        self.slices(input).flatten().copied().collect()
    }
}

/// How much expansion one document of a unit of `unit_len` bytes may do.
pub fn expansion_budget(unit_len: usize) -> u64 {
    (unit_len as u64)
        .saturating_mul(4)
        .saturating_add(64 * 1024)
}

/// Parses, validates and stamps one unit. Never panics on any input.
pub fn process_unit(data: &[u8], stamp: &Stamp<'_>) -> Result<ProcessedUnit, BuildError> {
    let unit = stamp.unit_slug;
    if data.len() > MAX_UNIT_BYTES {
        return Err(BuildError::UnitTooLarge {
            unit: unit.to_string(),
            size: data.len(),
            limit: MAX_UNIT_BYTES,
        });
    }
    // Most units are plain block YAML: stamped in their own text, without building a tree.
    if let Some(processed) = textual::try_process(data, stamp) {
        return Ok(processed);
    }
    parse_and_stamp(data, stamp)
}

/// The full path: every document parsed by libyaml into a tree, checked, stamped and written out again.
/// Decides every unit the textual fast path leaves alone, with the errors users see.
pub(super) fn parse_and_stamp(data: &[u8], stamp: &Stamp<'_>) -> Result<ProcessedUnit, BuildError> {
    let unit = stamp.unit_slug;
    let limit = expansion_budget(data.len());
    // One budget for the whole unit, not per document: otherwise many small documents, each expanding
    // to the limit, would multiply it.
    let budget = Budget::new(limit);
    let mut out = String::with_capacity(data.len() + data.len() / 4 + 256);
    let mut objects = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_slice(data).enumerate() {
        let number = index + 1;
        let node = match (BoundedNode { budget: &budget }).deserialize(document) {
            Ok(v) => v,
            Err(_) if budget.exceeded() => {
                return Err(BuildError::AliasExpansion {
                    unit: unit.to_string(),
                    document: number,
                    limit,
                });
            }
            Err(e) => {
                return Err(BuildError::InvalidYaml {
                    unit: unit.to_string(),
                    document: number,
                    message: e.to_string(),
                });
            }
        };
        let invalid = |reason: String| BuildError::InvalidObject {
            unit: unit.to_string(),
            document: number,
            reason,
        };
        let mut node = match node {
            Node::Null => continue,
            Node::Map(_) => node,
            other => {
                return Err(invalid(format!(
                    "expected a Kubernetes object (a mapping), found {}",
                    other.kind_name()
                )));
            }
        };
        let key = object_key(&node).map_err(invalid)?;
        stamp_object(&mut node, stamp).map_err(invalid)?;
        if !objects.is_empty() {
            out.push_str("---\n");
        }
        let mark = out.len();
        if emit_document(&node, &mut out).is_none() {
            // Something the fast emitter leaves to libyaml: redo this document with serde_yaml_ng.
            out.truncate(mark);
            let text = serde_yaml_ng::to_string(&node.to_value())
                .map_err(|e| invalid(format!("cannot re-serialise the object: {e}")))?;
            out.push_str(&text);
        }
        objects.push(key);
    }
    let out = out.into_bytes();
    Ok(ProcessedUnit {
        text: Spliced::rewritten(out),
        objects,
    })
}

fn required_str<'m>(map: &'m Node, field: &str, path: &str) -> Result<&'m str, String> {
    match map.get(field) {
        Some(Node::Str(s)) if !s.is_empty() => Ok(s),
        Some(Node::Str(_)) => Err(format!("{path} is empty")),
        None | Some(Node::Null) => Err(format!("missing {path}")),
        Some(other) => Err(format!(
            "{path} must be a string, found {}",
            other.kind_name()
        )),
    }
}

fn object_key(object: &Node) -> Result<ObjectKey, String> {
    let api_version = required_str(object, "apiVersion", "apiVersion")?;
    let kind = required_str(object, "kind", "kind")?;
    let metadata = match object.get("metadata") {
        Some(m @ Node::Map(_)) => m,
        None | Some(Node::Null) => return Err("missing metadata".into()),
        Some(other) => {
            return Err(format!(
                "metadata must be a mapping, found {}",
                other.kind_name()
            ));
        }
    };
    let name = required_str(metadata, "name", "metadata.name")?;
    let namespace = match metadata.get("namespace") {
        None | Some(Node::Null) => "",
        Some(Node::Str(s)) => s.as_str(),
        Some(other) => {
            return Err(format!(
                "metadata.namespace must be a string, found {}",
                other.kind_name()
            ));
        }
    };
    // `apps/v1` → group `apps`; `v1` → the core group, "".
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Ok(ObjectKey {
        group: group.to_string(),
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// Sets the provenance label and annotations, creating `labels`/`annotations` when absent. Our keys
/// overwrite whatever the unit had under the same names: they describe this artifact, not the input.
fn stamp_object(object: &mut Node, stamp: &Stamp<'_>) -> Result<(), String> {
    let Node::Map(entries) = object else {
        return Err("expected a mapping".into());
    };
    let Node::Map(metadata) = Node::entry(entries, "metadata") else {
        return Err("missing metadata".into());
    };
    let labels = sub_mapping(metadata, "labels")?;
    Node::set(labels, LABEL_UNIT_SLUG, Node::Str(stamp.unit_slug.into()));
    let annotations = sub_mapping(metadata, "annotations")?;
    Node::set(
        annotations,
        ANNOTATION_SPACE_NAME,
        Node::Str(stamp.space_name.into()),
    );
    Node::set(
        annotations,
        ANNOTATION_SPACE_ID,
        Node::Str(stamp.space_id.into()),
    );
    Node::set(
        annotations,
        ANNOTATION_REVISION_NUM,
        Node::Str(stamp.revision_num.to_string()),
    );
    Ok(())
}

fn sub_mapping<'m>(
    metadata: &'m mut Vec<(Node, Node)>,
    field: &str,
) -> Result<&'m mut Vec<(Node, Node)>, String> {
    let slot = Node::entry(metadata, field);
    if *slot == Node::Null {
        *slot = Node::Map(Vec::new());
    }
    match slot {
        Node::Map(m) => Ok(m),
        other => Err(format!(
            "metadata.{field} must be a mapping, found {}",
            other.kind_name()
        )),
    }
}

/// Shared by the tests of the two stamping paths.
#[cfg(test)]
pub(super) mod test_support {
    use serde_yaml_ng::Value;

    use super::Stamp;

    pub fn stamp() -> Stamp<'static> {
        Stamp {
            unit_slug: "web",
            revision_num: 7,
            space_name: "prod",
            space_id: "1111-2222",
        }
    }

    /// The non-null documents of a YAML stream; panics when it does not parse.
    pub fn parse_back(yaml: &[u8]) -> Vec<Value> {
        serde_yaml_ng::Deserializer::from_slice(yaml)
            .map(|d| serde::Deserialize::deserialize(d).expect("output parses"))
            .filter(|v: &Value| !v.is_null())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{parse_back, stamp};
    use super::*;
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
        let bomb =
            b"a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n\
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
        let start = std::time::Instant::now();
        let err = process_unit(src.as_bytes(), &stamp()).unwrap_err();
        assert!(matches!(err, BuildError::AliasExpansion { .. }), "{err:?}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
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
        let src = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: &d {a: \"1\"}\nextra: *d\n";
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
}
