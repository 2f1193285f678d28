//! Fix units: the origin unit's manifest with the live drifted values merged in, so a person can adopt
//! a change into ConfigHub by reviewing and applying one unit. Pure: YAML in, YAML out.
//!
//! Only the document of the drifted object is rewritten (other documents keep their exact text,
//! comments included). Secret values never leave the cluster: any Secret drift refuses the fix.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value as Yaml};
use sha2::{Digest, Sha256};

use super::normalize::{MASK, MASK_CHANGED};
use super::pointer;
use super::types::{ClassifiedItem, DriftType, ObjectKey};

/// ConfigHub's slug limit.
pub const MAX_SLUG_LEN: usize = 128;
const HASH_LEN: usize = 8;
/// ConfigHub label values are at most 128 characters.
const MAX_LABEL_VALUE: usize = 128;
/// Bound on the change description, so it fits any reasonable column.
pub const MAX_DESCRIPTION: usize = 1024;

pub const LABEL_ORIGIN_UNIT: &str = "DriftOriginUnit";
pub const LABEL_ORIGIN_SPACE: &str = "DriftOriginSpace";
pub const LABEL_ORIGIN_REVISION: &str = "DriftOriginRevision";
pub const LABEL_RECORD: &str = "DriftRecord";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FixError {
    #[error("the origin unit is not valid YAML: {0}")]
    Yaml(String),
    #[error("no document for {0} in the origin unit")]
    ObjectNotFound(String),
    #[error("more than one document for {0} in the origin unit")]
    Ambiguous(String),
    #[error("Secret drift is never written to ConfigHub: Secret values stay in the cluster")]
    SecretRefused,
    #[error("nothing to adopt: every item is expected drift")]
    NothingToAdopt,
    #[error("cannot apply {0} to the origin document")]
    BadPath(String),
    #[error("adopting the deletion would leave the unit empty; delete the unit instead")]
    WouldBeEmpty,
}

/// The origin unit's YAML with the live values of `items` merged into the document of `key`.
/// Expected items are skipped; a deletion removes the document. Item paths must index lists as the
/// unit's document does; when they came from a diff against another desired object (a dry-run
/// result), use [`fix_unit_yaml_from`]. (The engine always does; the tests use this.)
#[cfg(test)]
pub fn fix_unit_yaml(
    origin_unit_yaml: &str,
    key: &ObjectKey,
    items: &[ClassifiedItem],
) -> Result<String, FixError> {
    fix_unit_yaml_from(origin_unit_yaml, key, items, None)
}

/// `fix_unit_yaml` for items whose paths index the lists of `desired` (the object the diff compared,
/// e.g. a server-side-apply dry run, where keyed lists may be ordered differently): list indices are
/// translated to the unit document's by the elements' keys (`name`, `mountPath`, port).
pub fn fix_unit_yaml_from(
    origin_unit_yaml: &str,
    key: &ObjectKey,
    items: &[ClassifiedItem],
    desired: Option<&serde_json::Value>,
) -> Result<String, FixError> {
    let acted: Vec<&ClassifiedItem> = items.iter().filter(|i| !i.expected).collect();
    if acted.is_empty() {
        return Err(FixError::NothingToAdopt);
    }
    let masked = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .and_then(|v| v.as_str())
            .is_some_and(|s| s == MASK || s == MASK_CHANGED)
    };
    if key.kind == "Secret"
        || acted
            .iter()
            .any(|i| i.drift_type == DriftType::SecretChange || masked(&i.item.live))
    {
        return Err(FixError::SecretRefused);
    }
    let mut docs = split_documents(origin_unit_yaml);
    let mut found = None;
    for (i, doc) in docs.iter().enumerate() {
        let value: Yaml =
            serde_yaml_ng::from_str(&doc.body).map_err(|e| FixError::Yaml(e.to_string()))?;
        if is_object(&value, key) {
            if found.is_some() {
                return Err(FixError::Ambiguous(key.id()));
            }
            found = Some((i, value));
        }
    }
    let Some((index, mut value)) = found else {
        return Err(FixError::ObjectNotFound(key.id()));
    };
    if acted.iter().any(|i| i.item.is_deletion()) {
        docs.remove(index);
        if docs.iter().all(|d| {
            d.body.trim().is_empty()
                || d.body
                    .lines()
                    .all(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
        }) {
            return Err(FixError::WouldBeEmpty);
        }
        return Ok(join_documents(&docs));
    }
    // Sets first, then removals from the highest list index down, so indices stay valid.
    let (mut removals, sets): (Vec<&ClassifiedItem>, Vec<&ClassifiedItem>) =
        acted.into_iter().partition(|i| i.item.live.is_none());
    let normalized = desired.map(super::normalize::normalize);
    let target = |path: &str| match &normalized {
        Some(d) => reindex(d, &value, &pointer::segments(path)),
        None => pointer::segments(path),
    };
    let mut writes = Vec::new();
    for item in sets {
        let path = &item.item.path;
        let live = item
            .item
            .live
            .as_ref()
            .ok_or_else(|| FixError::BadPath(path.clone()))?;
        let live = serde_yaml_ng::to_value(live).map_err(|e| FixError::Yaml(e.to_string()))?;
        writes.push((target(path), live, path.clone()));
    }
    let mut removals: Vec<Vec<String>> = removals.drain(..).map(|i| target(&i.item.path)).collect();
    for (segs, live, path) in writes {
        set(&mut value, &segs, live).ok_or(FixError::BadPath(path))?;
    }
    removals.sort_by_key(|segs| std::cmp::Reverse(sort_key(segs)));
    for segs in removals {
        remove(&mut value, &segs);
    }
    docs[index].body =
        serde_yaml_ng::to_string(&value).map_err(|e| FixError::Yaml(e.to_string()))?;
    Ok(join_documents(&docs))
}

/// Numeric segments compare as numbers, so `/env/10` sorts after `/env/9`.
fn sort_key(segs: &[String]) -> Vec<(u64, String)> {
    segs.iter()
        .map(|s| (s.parse::<u64>().unwrap_or(u64::MAX), s.clone()))
        .collect()
}

/// Translates list indices of `segs` (into `desired`) to the unit document's, matching keyed list
/// elements (`name`, `mountPath`, port) as the diff does. Unkeyed lists and unmatched elements keep
/// their index.
fn reindex(desired: &serde_json::Value, doc: &Yaml, segs: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(segs.len());
    let (mut d, mut u) = (Some(desired), Some(doc));
    for (n, seg) in segs.iter().enumerate() {
        let mut seg = seg.clone();
        if let (Some(serde_json::Value::Array(dl)), Some(Yaml::Sequence(ul)), Ok(i)) =
            (d, u, seg.parse::<usize>())
        {
            let parent = n.checked_sub(1).map_or("", |p| segs[p].as_str());
            let wanted =
                super::diff::list_key(dl, parent).and_then(|k| Some((k, k.of(dl.get(i)?)?)));
            if let Some((k, wanted)) = wanted {
                let found = ul.iter().position(|e| {
                    serde_json::to_value(e).ok().and_then(|e| k.of(&e)).as_ref() == Some(&wanted)
                });
                if let Some(j) = found {
                    seg = j.to_string();
                }
            }
            d = dl.get(i);
        } else {
            d = d.and_then(|d| d.get(seg.as_str()));
        }
        u = u.and_then(|u| match u {
            Yaml::Sequence(ul) => seg.parse::<usize>().ok().and_then(|j| ul.get(j)),
            other => other.get(seg.as_str()),
        });
        out.push(seg);
    }
    out
}

fn is_object(doc: &Yaml, key: &ObjectKey) -> bool {
    let s = |v: Option<&Yaml>| v.and_then(Yaml::as_str).map(str::to_string);
    let meta = doc.get("metadata");
    s(doc.get("kind")).as_deref() == Some(key.kind.as_str())
        && s(meta.and_then(|m| m.get("name"))).as_deref() == Some(key.name.as_str())
        && s(meta.and_then(|m| m.get("namespace"))).is_none_or(|ns| ns == key.namespace)
}

fn set(node: &mut Yaml, segs: &[String], new: Yaml) -> Option<()> {
    let Some((first, rest)) = segs.split_first() else {
        *node = new;
        return Some(());
    };
    match node {
        Yaml::Mapping(map) => {
            let k = Yaml::String(first.clone());
            if rest.is_empty() {
                map.insert(k, new);
                return Some(());
            }
            let child = map
                .entry(k)
                .or_insert_with(|| Yaml::Mapping(Mapping::new()));
            set(child, rest, new)
        }
        Yaml::Sequence(seq) => {
            let i: usize = first.parse().ok()?;
            if i == seq.len() && rest.is_empty() {
                seq.push(new);
                return Some(());
            }
            set(seq.get_mut(i)?, rest, new)
        }
        Yaml::Null if !rest.is_empty() || first.parse::<usize>().is_err() => {
            *node = Yaml::Mapping(Mapping::new());
            set(node, segs, new)
        }
        _ => None,
    }
}

fn remove(node: &mut Yaml, segs: &[String]) {
    let Some((first, rest)) = segs.split_first() else {
        return;
    };
    match node {
        Yaml::Mapping(map) if rest.is_empty() => {
            map.remove(first.as_str());
        }
        Yaml::Mapping(map) => {
            if let Some(child) = map.get_mut(first.as_str()) {
                remove(child, rest);
            }
        }
        Yaml::Sequence(seq) => match first.parse::<usize>() {
            Ok(i) if rest.is_empty() && i < seq.len() => {
                seq.remove(i);
            }
            Ok(i) => {
                if let Some(child) = seq.get_mut(i) {
                    remove(child, rest);
                }
            }
            Err(_) => {}
        },
        _ => {}
    }
}

/// A document of a YAML stream with the separator line that opened it (if any), kept verbatim.
struct Document {
    separator: Option<String>,
    body: String,
}

/// Splits on `---` lines. A `---` at column 0 cannot be inside a block scalar, so this is exact.
fn split_documents(text: &str) -> Vec<Document> {
    let mut docs = vec![Document {
        separator: None,
        body: String::new(),
    }];
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t") {
            docs.push(Document {
                separator: Some(line.to_string()),
                body: String::new(),
            });
        } else if let Some(last) = docs.last_mut() {
            last.body.push_str(line);
        }
    }
    docs
}

fn join_documents(docs: &[Document]) -> String {
    let mut out = String::new();
    for d in docs {
        if let Some(sep) = &d.separator {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(sep);
            if !sep.ends_with('\n') {
                out.push('\n');
            }
        }
        out.push_str(&d.body);
    }
    out
}

/// The fix unit's slug: `<origin>-drift-<kind>-<name>`, cleaned to ConfigHub's slug alphabet. When it
/// had to be cleaned or shortened, a hash of the inputs is appended, so it stays unique and stable.
pub fn fix_unit_slug(origin_slug: &str, kind: &str, name: &str) -> String {
    let raw = format!("{origin_slug}-drift-{}-{name}", kind.to_ascii_lowercase());
    let mut clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = clean
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if trimmed == raw && raw.len() <= MAX_SLUG_LEN {
        return raw;
    }
    let digest = Sha256::digest(format!("{origin_slug}\0{kind}\0{name}").as_bytes());
    let suffix = &hex::encode(digest)[..HASH_LEN];
    clean = trimmed;
    // ASCII only, so byte truncation is a char boundary.
    clean.truncate(MAX_SLUG_LEN - HASH_LEN - 1);
    let clean = clean.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if clean.is_empty() {
        format!("drift-{suffix}")
    } else {
        format!("{clean}-{suffix}")
    }
}

/// Labels linking the fix unit to where it came from.
pub fn fix_unit_labels(
    origin_slug: &str,
    space: &str,
    revision: &str,
    record_id: &str,
) -> BTreeMap<String, String> {
    [
        (LABEL_ORIGIN_UNIT, origin_slug),
        (LABEL_ORIGIN_SPACE, space),
        (LABEL_ORIGIN_REVISION, revision),
        (LABEL_RECORD, record_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), label_value(v)))
    .collect()
}

fn label_value(v: &str) -> String {
    let clean: String = v
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_LABEL_VALUE)
        .collect();
    clean.trim().to_string()
}

/// The fix unit's `LastChangeDescription`: what drifted, from what to what, by whom. One line, bounded.
pub fn change_description(key: &ObjectKey, items: &[ClassifiedItem]) -> String {
    let show = |v: &Option<serde_json::Value>| match v {
        None => "<unset>".to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let parts: Vec<String> = items
        .iter()
        .filter(|i| !i.expected)
        .map(|i| {
            let by = i
                .item
                .actor
                .as_deref()
                .map(|a| format!(" by {a}"))
                .unwrap_or_default();
            if i.item.is_deletion() {
                format!("deleted{by}")
            } else {
                format!(
                    "{} {} -> {} ({}{by})",
                    i.item.path,
                    show(&i.item.desired),
                    show(&i.item.live),
                    i.drift_type
                )
            }
        })
        .collect();
    let ns = if key.namespace.is_empty() {
        String::new()
    } else {
        format!("{}/", key.namespace)
    };
    let text = format!(
        "Adopt drift on {} {ns}{}: {}",
        key.kind,
        key.name,
        parts.join("; ")
    );
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX_DESCRIPTION {
        let mut t: String = text.chars().take(MAX_DESCRIPTION - 1).collect();
        t.push('…');
        t
    } else {
        text
    }
}

#[cfg(test)]
#[path = "fix_unit_tests.rs"]
mod tests;
