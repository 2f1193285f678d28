//! One unit's YAML the full way: parse (bounded), validate as Kubernetes objects, stamp provenance,
//! re-serialise; and the types both stamping paths share (the textual path imports them from here).
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
use super::yaml::{BoundedNode, Budget, Node};

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

    /// The whole text in one buffer (tests and fuzz checks).
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

/// The full path: every document parsed by libyaml into a tree, checked, stamped and written out again.
/// Decides every unit the textual fast path leaves alone, with the errors users see.
pub(crate) fn parse_and_stamp(data: &[u8], stamp: &Stamp<'_>) -> Result<ProcessedUnit, BuildError> {
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
        let text = serde_yaml_ng::to_string(&node.to_value())
            .map_err(|e| invalid(format!("cannot re-serialise the object: {e}")))?;
        out.push_str(&text);
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

/// Shared by the tests of the two stamping paths and the fuzz checks ([`crate::fuzzing`]).
pub(crate) mod test_support {
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
