//! Who manages an object, read from its own labels, annotations and ownerReferences (pure). The I/O layer
//! then fetches that owner; this only says where to look.

use serde_json::Value;

/// Labels kustomize-controller puts on every object it applies.
pub const KUSTOMIZE_NAME: &str = "kustomize.toolkit.fluxcd.io/name";
pub const KUSTOMIZE_NAMESPACE: &str = "kustomize.toolkit.fluxcd.io/namespace";
/// Labels helm-controller puts on every object of a HelmRelease.
pub const HELM_RELEASE_NAME: &str = "helm.toolkit.fluxcd.io/name";
pub const HELM_RELEASE_NAMESPACE: &str = "helm.toolkit.fluxcd.io/namespace";
/// Argo CD's tracking annotation, `<app>:<group>/<kind>:<namespace>/<name>`.
pub const ARGO_TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
/// Argo CD's default tracking label (also set by many Helm charts, so only a weak hint).
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Annotations Helm (3.2+) puts on every object of a release.
pub const HELM_META_NAME: &str = "meta.helm.sh/release-name";
pub const HELM_META_NAMESPACE: &str = "meta.helm.sh/release-namespace";
/// Provenance the artifact stamps on every object (docs/artifacts.md).
pub const UNIT_SLUG_LABEL: &str = "confighub.com/UnitSlug";
pub const SPACE_NAME_ANNOTATION: &str = "confighub.com/SpaceName";
pub const SPACE_ID_ANNOTATION: &str = "confighub.com/SpaceID";
pub const REVISION_NUM_ANNOTATION: &str = "confighub.com/RevisionNum";

/// An Argo CD Application as named by a tracking id or label: `name`, or `<namespace>_<name>` for
/// applications outside Argo CD's own namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppRef {
    pub namespace: Option<String>,
    pub name: String,
}

impl AppRef {
    pub fn parse(instance: &str) -> AppRef {
        match instance.split_once('_') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() => AppRef {
                namespace: Some(ns.to_string()),
                name: name.to_string(),
            },
            _ => AppRef {
                namespace: None,
                name: instance.to_string(),
            },
        }
    }
}

/// A parsed `argocd.argoproj.io/tracking-id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackingId {
    pub app: AppRef,
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// Parses `<app>:<group>/<kind>:<namespace>/<name>` as Argo CD does: the name may itself hold `:`.
pub fn parse_tracking_id(value: &str) -> Option<TrackingId> {
    let mut parts = value.splitn(3, ':');
    let app = parts.next()?;
    let group_kind = parts.next()?;
    let ns_name = parts.next()?;
    let (group, kind) = group_kind.split_once('/')?;
    let (namespace, name) = ns_name.split_once('/')?;
    if app.is_empty() || kind.is_empty() || name.is_empty() || kind.contains('/') {
        return None;
    }
    Some(TrackingId {
        app: AppRef::parse(app),
        group: group.to_string(),
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// Where to look for the object's owner, strongest evidence first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerHint {
    /// Flux kustomize-controller labels.
    Kustomization {
        namespace: String,
        name: String,
    },
    /// Flux helm-controller labels.
    HelmRelease {
        namespace: String,
        name: String,
    },
    /// Argo CD tracking annotation that refers to this very object.
    ArgoTracking(AppRef),
    /// Helm's release annotations, or (weak) `app.kubernetes.io/managed-by: Helm` with the instance label.
    Helm {
        namespace: String,
        release: String,
    },
    /// A controller ownerReference (a Pod's ReplicaSet, a ReplicaSet's Deployment): trace that object.
    Controller {
        api_version: String,
        kind: String,
        name: String,
    },
    /// Only Argo CD's default tracking label (weak: many charts set it too).
    ArgoInstanceLabel(AppRef),
    None,
}

fn map<'a>(obj: &'a Value, field: &str) -> &'a serde_json::Map<String, Value> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    obj["metadata"][field]
        .as_object()
        .unwrap_or_else(|| EMPTY.get_or_init(serde_json::Map::new))
}

pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    map(obj, "labels")
        .get(key)?
        .as_str()
        .filter(|v| !v.is_empty())
}

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    map(obj, "annotations")
        .get(key)?
        .as_str()
        .filter(|v| !v.is_empty())
}

pub fn namespace_of(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or_default()
}

pub fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn kind_of(obj: &Value) -> &str {
    obj["kind"].as_str().unwrap_or_default()
}

/// The API group of an object (`""` for the core group).
pub fn group_of(obj: &Value) -> &str {
    obj["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit_once('/'))
        .map(|(g, _)| g)
        .unwrap_or_default()
}

/// Whether the object carries any label or annotation a GitOps tool leaves on what it manages.
pub fn has_gitops_marks(obj: &Value) -> bool {
    label(obj, KUSTOMIZE_NAME).is_some()
        || label(obj, HELM_RELEASE_NAME).is_some()
        || annotation(obj, ARGO_TRACKING_ID).is_some()
        || annotation(obj, HELM_META_NAME).is_some()
}

/// Reads the owner hint from the object alone.
pub fn detect(obj: &Value) -> OwnerHint {
    let own_ns = namespace_of(obj);
    if let Some(name) = label(obj, KUSTOMIZE_NAME) {
        return OwnerHint::Kustomization {
            namespace: label(obj, KUSTOMIZE_NAMESPACE)
                .unwrap_or(own_ns)
                .to_string(),
            name: name.to_string(),
        };
    }
    if let Some(name) = label(obj, HELM_RELEASE_NAME) {
        return OwnerHint::HelmRelease {
            namespace: label(obj, HELM_RELEASE_NAMESPACE)
                .unwrap_or(own_ns)
                .to_string(),
            name: name.to_string(),
        };
    }
    if let Some(id) = annotation(obj, ARGO_TRACKING_ID).and_then(parse_tracking_id) {
        // Argo CD ignores a tracking id that names another object (a copy made by another tool).
        if id.kind == kind_of(obj)
            && id.name == name_of(obj)
            && id.namespace == own_ns
            && id.group == group_of(obj)
        {
            return OwnerHint::ArgoTracking(id.app);
        }
    }
    // Helm's own release records (storage driver `secret`).
    if kind_of(obj) == "Secret"
        && label(obj, "owner") == Some("helm")
        && let Some(release) = label(obj, "name")
    {
        return OwnerHint::Helm {
            namespace: own_ns.to_string(),
            release: release.to_string(),
        };
    }
    if let Some(release) = annotation(obj, HELM_META_NAME) {
        return OwnerHint::Helm {
            namespace: annotation(obj, HELM_META_NAMESPACE)
                .unwrap_or(own_ns)
                .to_string(),
            release: release.to_string(),
        };
    }
    if let Some(owner) = obj["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|refs| refs.iter().find(|r| r["controller"] == Value::Bool(true)))
    {
        return OwnerHint::Controller {
            api_version: owner["apiVersion"].as_str().unwrap_or("v1").to_string(),
            kind: owner["kind"].as_str().unwrap_or_default().to_string(),
            name: owner["name"].as_str().unwrap_or_default().to_string(),
        };
    }
    if label(obj, MANAGED_BY_LABEL).is_some_and(|m| m.eq_ignore_ascii_case("helm"))
        && let Some(instance) = label(obj, INSTANCE_LABEL)
    {
        return OwnerHint::Helm {
            namespace: own_ns.to_string(),
            release: instance.to_string(),
        };
    }
    if let Some(instance) = label(obj, INSTANCE_LABEL) {
        return OwnerHint::ArgoInstanceLabel(AppRef::parse(instance));
    }
    OwnerHint::None
}

/// The ConfigHub provenance stamped on an object by the artifact build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    pub space: String,
    pub space_id: String,
    pub unit: String,
    /// The unit revision the object came from (`None` when the annotation is missing or not a number).
    pub revision: Option<i64>,
}

pub fn provenance(obj: &Value) -> Option<Provenance> {
    let unit = label(obj, UNIT_SLUG_LABEL)?;
    Some(Provenance {
        space: annotation(obj, SPACE_NAME_ANNOTATION)
            .unwrap_or_default()
            .to_string(),
        space_id: annotation(obj, SPACE_ID_ANNOTATION)
            .unwrap_or_default()
            .to_string(),
        unit: unit.to_string(),
        revision: annotation(obj, REVISION_NUM_ANNOTATION).and_then(|r| r.trim().parse().ok()),
    })
}

/// Whether a Flux Kustomization inventory lists the object (`<ns>_<name>_<group>_<kind>`).
pub fn inventory_lists(kustomization: &Value, obj: &Value) -> bool {
    let id = format!(
        "{}_{}_{}_{}",
        namespace_of(obj),
        name_of(obj),
        group_of(obj),
        kind_of(obj)
    );
    kustomization["status"]["inventory"]["entries"]
        .as_array()
        .is_some_and(|entries| entries.iter().any(|e| e["id"].as_str() == Some(&id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value, annotations: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "demo", "labels": labels, "annotations": annotations}})
    }

    #[test]
    fn tracking_ids_parse_as_argo_cd_does() {
        let id = parse_tracking_id("shop:apps/Deployment:demo/web").unwrap();
        assert_eq!(id.app, AppRef::parse("shop"));
        assert_eq!(
            (id.group.as_str(), id.kind.as_str(), id.namespace.as_str()),
            ("apps", "Deployment", "demo")
        );
        let cluster = parse_tracking_id("ops_infra:/Namespace:/demo").unwrap();
        assert_eq!(
            cluster.app,
            AppRef {
                namespace: Some("ops".into()),
                name: "infra".into()
            }
        );
        assert_eq!(
            (cluster.group.as_str(), cluster.namespace.as_str()),
            ("", "")
        );
        assert_eq!(
            parse_tracking_id("a:g/k:ns/name:with:colons").unwrap().name,
            "name:with:colons"
        );
        assert!(parse_tracking_id("app").is_none());
        assert!(parse_tracking_id("app;group/kind/ns").is_none());
    }

    #[test]
    fn owners_are_detected_strongest_first() {
        let flux = obj(
            json!({KUSTOMIZE_NAME: "apps", KUSTOMIZE_NAMESPACE: "flux-system", INSTANCE_LABEL: "x"}),
            json!({}),
        );
        assert_eq!(
            detect(&flux),
            OwnerHint::Kustomization {
                namespace: "flux-system".into(),
                name: "apps".into()
            }
        );
        let hr = obj(
            json!({HELM_RELEASE_NAME: "podinfo", HELM_RELEASE_NAMESPACE: "apps", MANAGED_BY_LABEL: "Helm"}),
            json!({HELM_META_NAME: "podinfo"}),
        );
        assert!(matches!(detect(&hr), OwnerHint::HelmRelease { .. }));
        let argo = obj(
            json!({INSTANCE_LABEL: "other"}),
            json!({ARGO_TRACKING_ID: "shop:apps/Deployment:demo/web"}),
        );
        assert_eq!(
            detect(&argo),
            OwnerHint::ArgoTracking(AppRef::parse("shop"))
        );
        // A copied object whose tracking id names another object is not Argo CD's.
        let copy = obj(
            json!({}),
            json!({ARGO_TRACKING_ID: "shop:apps/Deployment:other/web"}),
        );
        assert_eq!(detect(&copy), OwnerHint::None);
        let helm = obj(
            json!({MANAGED_BY_LABEL: "Helm", INSTANCE_LABEL: "redis"}),
            json!({HELM_META_NAME: "cache", HELM_META_NAMESPACE: "data"}),
        );
        assert_eq!(
            detect(&helm),
            OwnerHint::Helm {
                namespace: "data".into(),
                release: "cache".into()
            }
        );
        let weak_helm = obj(
            json!({MANAGED_BY_LABEL: "Helm", INSTANCE_LABEL: "redis"}),
            json!({}),
        );
        assert_eq!(
            detect(&weak_helm),
            OwnerHint::Helm {
                namespace: "demo".into(),
                release: "redis".into()
            }
        );
        let label_only = obj(json!({INSTANCE_LABEL: "argocd_guestbook"}), json!({}));
        assert_eq!(
            detect(&label_only),
            OwnerHint::ArgoInstanceLabel(AppRef {
                namespace: Some("argocd".into()),
                name: "guestbook".into()
            })
        );
        assert_eq!(detect(&obj(json!({}), json!({}))), OwnerHint::None);
    }

    #[test]
    fn pods_follow_their_controller_before_weak_labels() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "demo",
            "labels": {MANAGED_BY_LABEL: "Helm", INSTANCE_LABEL: "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d", "controller": true, "uid": "u"}]}});
        assert_eq!(
            detect(&pod),
            OwnerHint::Controller {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "web-7d".into()
            }
        );
    }

    #[test]
    fn provenance_and_inventory() {
        let o = obj(
            json!({UNIT_SLUG_LABEL: "backend"}),
            json!({SPACE_NAME_ANNOTATION: "prod", SPACE_ID_ANNOTATION: "s-1", REVISION_NUM_ANNOTATION: "12"}),
        );
        assert_eq!(
            provenance(&o),
            Some(Provenance {
                space: "prod".into(),
                space_id: "s-1".into(),
                unit: "backend".into(),
                revision: Some(12)
            })
        );
        assert_eq!(provenance(&obj(json!({}), json!({}))), None);
        let ks = json!({"status": {"inventory": {"entries": [{"id": "demo_web_apps_Deployment", "v": "v1"}]}}});
        assert!(inventory_lists(&ks, &o));
        assert!(!inventory_lists(&json!({}), &o));
    }
}
