//! The vocabulary shared by every drift step: object keys and drift items. Types, severities and ignore
//! rules are part of the `ConfigHubRepository` CRD (`spec.drift`), so they live with the API types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::api::drift::{DriftType, IgnoreRule, Severity};

/// Identifies one managed object. Its [`ObjectKey::id`] is the drift record id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
    /// API group; empty for the core group (and where it is not known, e.g. a Flux event's text).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
}

/// Groups of Kubernetes itself (`apps`, `batch`, `*.k8s.io`): their kinds never share a name, so records
/// of their objects keep the short id.
fn built_in_group(group: &str) -> bool {
    !group.contains('.') || group.ends_with(".k8s.io")
}

impl ObjectKey {
    /// A key without a group: the core group, or a kind whose group is not known.
    pub fn new(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            group: String::new(),
        }
    }

    /// A key with its API group.
    pub fn with_group(
        group: impl Into<String>,
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            group: group.into(),
            ..Self::new(kind, namespace, name)
        }
    }

    /// `<Kind>:<namespace>:<name>` for Kubernetes' own kinds, `<Kind>.<group>:<namespace>:<name>` for every
    /// other group (two CRDs may share a kind name); the namespace part is empty for cluster-scoped objects.
    pub fn id(&self) -> String {
        if built_in_group(&self.group) {
            format!("{}:{}:{}", self.kind, self.namespace, self.name)
        } else {
            format!(
                "{}.{}:{}:{}",
                self.kind, self.group, self.namespace, self.name
            )
        }
    }

    /// Parses an id made by [`ObjectKey::id`]. Kinds contain no `.` and names no `:`, so splitting is
    /// unambiguous.
    pub fn parse_id(id: &str) -> Option<Self> {
        let mut parts = id.splitn(3, ':');
        let kind = parts.next().filter(|k| !k.is_empty())?;
        let namespace = parts.next()?;
        let name = parts.next().filter(|n| !n.is_empty() && !n.contains(':'))?;
        let (kind, group) = kind.split_once('.').unwrap_or((kind, ""));
        Some(Self::with_group(group, kind, namespace, name))
    }

    /// The key of a Kubernetes object, from its `apiVersion`, `kind` and `metadata`.
    pub fn of(obj: &Value) -> Option<Self> {
        let kind = obj.get("kind")?.as_str()?;
        let meta = obj.get("metadata")?;
        let name = meta.get("name")?.as_str()?;
        let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Some(Self::with_group(group, kind, namespace, name))
    }
}

/// How the drift was noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionSource {
    /// A watch event from a field manager other than kustomize-controller.
    Watch,
    /// A full comparison (periodic or `POST /api/v1/analyze`).
    Analyze,
    /// Read back from Flux: a "configured" event while the revision did not change.
    Flux,
}

/// A namespaced object reference (the ConfigHubRepository, the Kustomization).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// One difference between the desired and the live object.
///
/// `path` is a JSON pointer into the *desired* object (list indices are desired indices, even when a
/// list was matched by name), so it can be applied to the unit the object came from. `None` means the
/// field is absent on that side. For Secrets the values are masks (`***`), never data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftItem {
    pub path: String,
    #[serde(default)]
    pub desired: Option<Value>,
    #[serde(default)]
    pub live: Option<Value>,
    /// The field manager that last wrote the live field, from `metadata.managedFields`.
    #[serde(default)]
    pub actor: Option<String>,
}

impl DriftItem {
    /// The single item that stands for a deleted object: path `""` (the whole document), no live value.
    pub fn deleted(desired: Value) -> Self {
        Self {
            path: String::new(),
            desired: Some(desired),
            live: None,
            actor: None,
        }
    }

    pub fn is_deletion(&self) -> bool {
        self.path.is_empty() && self.live.is_none()
    }
}

/// A drift item with its classification, as stored in records and served by the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifiedItem {
    #[serde(flatten)]
    pub item: DriftItem,
    #[serde(rename = "type")]
    pub drift_type: DriftType,
    pub severity: Severity,
    /// Autoscaler-owned or ignored by a rule: recorded, never acted on.
    pub expected: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_round_trip_including_cluster_scoped_objects() {
        let k = ObjectKey::new("Deployment", "default", "web");
        assert_eq!(k.id(), "Deployment:default:web");
        assert_eq!(ObjectKey::parse_id(&k.id()), Some(k));
        let c = ObjectKey::new("ClusterRole", "", "admin");
        assert_eq!(c.id(), "ClusterRole::admin");
        assert_eq!(ObjectKey::parse_id("ClusterRole::admin"), Some(c));
        assert_eq!(ObjectKey::parse_id("nonsense"), None);
        // Kubernetes' own groups keep the short id; any other group is part of it.
        let apps = ObjectKey::with_group("apps", "Deployment", "default", "web");
        assert_eq!(apps.id(), "Deployment:default:web");
        let crd = ObjectKey::with_group("example.com", "Deployment", "default", "web");
        assert_eq!(crd.id(), "Deployment.example.com:default:web");
        assert_ne!(crd.id(), apps.id());
        assert_eq!(ObjectKey::parse_id(&crd.id()), Some(crd));
        let netpol = ObjectKey::with_group("networking.k8s.io", "NetworkPolicy", "a", "b");
        assert_eq!(netpol.id(), "NetworkPolicy:a:b");
        assert_eq!(ObjectKey::parse_id("A:b:"), None);
    }

    #[test]
    fn key_of_an_object() {
        let obj = json!({"kind":"Service","metadata":{"name":"web","namespace":"apps"}});
        assert_eq!(
            ObjectKey::of(&obj),
            Some(ObjectKey::new("Service", "apps", "web"))
        );
        assert_eq!(ObjectKey::of(&json!({"kind": 3})), None);
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::High > Severity::Medium && Severity::Medium > Severity::Low);
        assert_eq!(Severity::parse("high"), Some(Severity::High));
        assert_eq!(Severity::parse("Huge"), None);
    }
}
