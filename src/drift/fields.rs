//! Who owns which field: `metadata.managedFields` turned into JSON-pointer prefixes.
//!
//! Each managedFields entry has a `fieldsV1` trie: `f:<name>` is a map field, `k:{json}` a list element
//! identified by its key fields, `v:<json>` a set element, `i:<n>` a list index, and `.` the node itself.
//! Keys and values are resolved against the live object to list indices, so owners can be looked up by
//! the same pointers the diff produces for the live side.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::pointer;

/// One manager's claim on one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldOwner {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// RFC 3339, as the server writes it; compared as a string (same format everywhere).
    pub time: Option<String>,
    pub subresource: Option<String>,
}

/// The field ownership of one live object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldOwners {
    /// (pointer segments, owner) for every owned leaf and every `.` node.
    entries: Vec<(Vec<String>, FieldOwner)>,
}

impl FieldOwners {
    /// Parses `metadata.managedFields` of `live`; malformed entries are skipped.
    pub fn from_live(live: &Value) -> Self {
        let mut entries = Vec::new();
        let Some(fields) = live
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
        else {
            return Self::default();
        };
        for entry in fields {
            let Some(manager) = entry.get("manager").and_then(Value::as_str) else {
                continue;
            };
            let owner = FieldOwner {
                manager: manager.to_string(),
                operation: str_field(entry, "operation").unwrap_or_default(),
                time: str_field(entry, "time"),
                subresource: str_field(entry, "subresource"),
            };
            if let Some(Value::Object(trie)) = entry.get("fieldsV1") {
                let mut paths = Vec::new();
                walk(trie, Some(live), &mut Vec::new(), &mut paths);
                entries.extend(paths.into_iter().map(|p| (p, owner.clone())));
            }
        }
        Self { entries }
    }

    /// The owner of `path` or of its closest owned ancestor. Among owners of equally specific paths the
    /// latest write wins; on equal times an `Update` (an imperative edit) is preferred over an `Apply`.
    pub fn owner_of(&self, path: &str) -> Option<&FieldOwner> {
        let segs = pointer::segments(path);
        self.entries
            .iter()
            .filter(|(p, _)| p.len() <= segs.len() && p.iter().zip(&segs).all(|(a, b)| a == b))
            .max_by(|(pa, a), (pb, b)| {
                pa.len()
                    .cmp(&pb.len())
                    .then_with(|| a.time.cmp(&b.time))
                    .then_with(|| (a.operation == "Update").cmp(&(b.operation == "Update")))
            })
            .map(|(_, o)| o)
    }

    /// The owner of exactly `path` (or of a field below it), without falling back to ancestors.
    pub fn exact(&self, path: &str) -> Option<&FieldOwner> {
        let segs = pointer::segments(path);
        self.entries
            .iter()
            .filter(|(p, _)| p.len() >= segs.len() && p.iter().zip(&segs).all(|(a, b)| a == b))
            .max_by(|(_, a), (_, b)| a.time.cmp(&b.time))
            .map(|(_, o)| o)
    }

    /// Every (pointer, manager) pair, for debugging and the API.
    pub fn paths(&self) -> impl Iterator<Item = (String, &str)> {
        self.entries.iter().map(|(segs, o)| {
            let p: String = segs
                .iter()
                .map(|s| format!("/{}", pointer::escape(s)))
                .collect();
            (p, o.manager.as_str())
        })
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Depth-first over the trie; `live` is the live node at `prefix` (None once it cannot be resolved).
fn walk(
    trie: &Map<String, Value>,
    live: Option<&Value>,
    prefix: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    if !prefix.is_empty() && (trie.is_empty() || trie.contains_key(".")) {
        out.push(prefix.clone());
    }
    for (key, child) in trie {
        if key == "." {
            continue;
        }
        let Some((segment, live_child)) = resolve(key, live) else {
            continue;
        };
        prefix.push(segment);
        match child {
            Value::Object(sub) => walk(sub, live_child, prefix, out),
            _ => out.push(prefix.clone()),
        }
        prefix.pop();
    }
}

/// Maps one trie key to a pointer segment (and the live node it names).
fn resolve<'a>(key: &str, live: Option<&'a Value>) -> Option<(String, Option<&'a Value>)> {
    if let Some(name) = key.strip_prefix("f:") {
        return Some((name.to_string(), live.and_then(|l| l.get(name))));
    }
    if let Some(idx) = key.strip_prefix("i:") {
        let i: usize = idx.parse().ok()?;
        return Some((idx.to_string(), live.and_then(|l| l.get(i))));
    }
    let items = live?.as_array()?;
    let (i, item) = if let Some(json) = key.strip_prefix("k:") {
        let wanted: Map<String, Value> = serde_json::from_str(json).ok()?;
        items.iter().enumerate().find(|(_, item)| {
            wanted
                .iter()
                .all(|(k, v)| item.get(k).is_some_and(|iv| loose_eq(iv, v)))
        })?
    } else if let Some(json) = key.strip_prefix("v:") {
        let wanted: Value = serde_json::from_str(json).ok()?;
        items
            .iter()
            .enumerate()
            .find(|(_, item)| **item == wanted)?
    } else {
        return None;
    };
    Some((i.to_string(), Some(item)))
}

/// Key fields are typed in the trie (`{"containerPort":80}`) but a defaulted protocol may be missing.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live() -> Value {
        json!({
            "kind": "Deployment",
            "metadata": {"name": "web", "managedFields": [
                {"manager": "kustomize-controller", "operation": "Apply", "time": "2026-11-01T10:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {},
                            "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}}}}},
                {"manager": "kubectl-scale", "operation": "Update", "subresource": "scale",
                 "time": "2026-11-02T10:00:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:spec": {"f:replicas": {}}}}
            ]},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "sidecar", "image": "envoy"},
                {"name": "web", "image": "nginx:1", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}
            ]}}}
        })
    }

    #[test]
    fn most_specific_owner_wins() {
        let owners = FieldOwners::from_live(&live());
        assert_eq!(
            owners.owner_of("/spec/replicas").unwrap().manager,
            "kubectl-scale"
        );
        assert_eq!(
            owners
                .owner_of("/spec/template/spec/containers/1/image")
                .unwrap()
                .manager,
            "kustomize-controller"
        );
        assert_eq!(
            owners
                .owner_of("/spec/template/spec/containers/1/env/1/value")
                .unwrap()
                .manager,
            "kustomize-controller"
        );
        // The sidecar at index 0 is owned by nobody listed.
        assert!(
            owners
                .owner_of("/spec/template/spec/containers/0/image")
                .is_none()
        );
        assert_eq!(
            owners.owner_of("/metadata/labels/app").unwrap().operation,
            "Apply"
        );
        assert!(
            owners
                .exact("/spec/template/spec/containers/1/args")
                .is_none()
        );
        assert!(
            owners
                .paths()
                .any(|(p, m)| p == "/spec/replicas" && m == "kubectl-scale")
        );
    }

    #[test]
    fn malformed_managed_fields_are_ignored() {
        let obj = json!({"metadata": {"managedFields": [{"manager": 1}, {"manager": "x", "fieldsV1": 3},
            {"manager": "y", "fieldsV1": {"f:spec": {"k:notjson": {}}}}]}});
        let owners = FieldOwners::from_live(&obj);
        assert!(owners.owner_of("/spec/x").is_none());
        assert_eq!(FieldOwners::from_live(&json!(null)), FieldOwners::default());
    }
}
