//! Flux's Kustomization inventory (`status.inventory.entries[].id = "<ns>_<name>_<group>_<kind>"`) and the
//! link from a Kustomization back to the ConfigHubRepository whose ExternalArtifact it applies. Pure.

use serde_json::Value;

/// One object kustomize-controller applied.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InventoryEntry {
    pub namespace: String,
    pub name: String,
    pub group: String,
    pub kind: String,
    pub version: String,
}

impl InventoryEntry {
    /// The object's drift key (with its group).
    pub fn key(&self) -> crate::drift::ObjectKey {
        crate::drift::ObjectKey::with_group(&self.group, &self.kind, &self.namespace, &self.name)
    }

    /// The drift record id ([`crate::drift::ObjectKey::id`]).
    pub fn record_id(&self) -> String {
        self.key().id()
    }
}

/// Parses one inventory id; `None` for anything that is not exactly four `_`-separated parts (Kubernetes
/// names, groups and kinds never contain `_`).
pub fn parse_entry(id: &str, version: &str) -> Option<InventoryEntry> {
    let parts: Vec<&str> = id.split('_').collect();
    let [namespace, name, group, kind] = parts.as_slice() else {
        return None;
    };
    if name.is_empty() || kind.is_empty() {
        return None;
    }
    Some(InventoryEntry {
        namespace: namespace.to_string(),
        name: name.to_string(),
        group: group.to_string(),
        kind: kind.to_string(),
        version: version.to_string(),
    })
}

/// Every well-formed entry of a Kustomization's `status.inventory`.
pub fn entries(kustomization: &Value) -> Vec<InventoryEntry> {
    kustomization["status"]["inventory"]["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| parse_entry(e["id"].as_str()?, e["v"].as_str().unwrap_or("v1")))
                .collect()
        })
        .unwrap_or_default()
}

/// The ExternalArtifact a Kustomization applies, as (namespace, name), if its source is one.
pub fn external_artifact_source(kustomization: &Value) -> Option<(String, String)> {
    let source = &kustomization["spec"]["sourceRef"];
    if source["kind"].as_str()? != "ExternalArtifact" {
        return None;
    }
    let own_ns = kustomization["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let ns = source["namespace"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or(own_ns);
    Some((ns.to_string(), source["name"].as_str()?.to_string()))
}

/// The Kustomization's Ready condition as (status, reason, message).
pub fn ready_condition(kustomization: &Value) -> Option<(String, String, String)> {
    let ready = kustomization["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    let text = |k: &str| ready[k].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_flux_inventory_ids() {
        let e = parse_entry("demo_web_apps_Deployment", "v1").unwrap();
        assert_eq!(
            (
                e.namespace.as_str(),
                e.name.as_str(),
                e.group.as_str(),
                e.kind.as_str()
            ),
            ("demo", "web", "apps", "Deployment")
        );
        assert_eq!(e.record_id(), "Deployment:demo:web");
        let core = parse_entry("default_podinfo__Service", "v1").unwrap();
        assert_eq!((core.group.as_str(), core.version.as_str()), ("", "v1"));
        let cluster = parse_entry("_demo__Namespace", "v1").unwrap();
        assert_eq!(cluster.namespace, "");
        assert!(parse_entry("a_b_c", "v1").is_none());
        assert!(parse_entry("a_b_c_d_e", "v1").is_none());
        assert!(parse_entry("ns__apps_Deployment", "v1").is_none());
    }

    #[test]
    fn reads_entries_and_the_external_artifact_source() {
        let ks = json!({
            "metadata": {"name": "apps", "namespace": "team"},
            "spec": {"sourceRef": {"kind": "ExternalArtifact", "name": "payments"}},
            "status": {"inventory": {"entries": [
                {"id": "team_web_apps_Deployment", "v": "v1"},
                {"id": "garbage", "v": "v1"},
                {"id": "team_settings__ConfigMap", "v": "v1"}
            ]}}
        });
        assert_eq!(entries(&ks).len(), 2);
        assert_eq!(
            external_artifact_source(&ks),
            Some(("team".into(), "payments".into()))
        );
        let git = json!({"metadata": {"namespace": "x"}, "spec": {"sourceRef": {"kind": "GitRepository", "name": "r"}}});
        assert_eq!(external_artifact_source(&git), None);
        assert!(entries(&json!({})).is_empty());
    }

    #[test]
    fn reads_the_ready_condition() {
        let ks = json!({"status": {"conditions": [
            {"type": "Reconciling", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ReconciliationFailed", "message": "no matches for kind"}
        ]}});
        assert_eq!(
            ready_condition(&ks),
            Some((
                "False".into(),
                "ReconciliationFailed".into(),
                "no matches for kind".into()
            ))
        );
        assert_eq!(ready_condition(&json!({})), None);
    }
}
