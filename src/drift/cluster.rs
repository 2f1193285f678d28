//! The cluster edge of drift detection: finding an inventory entry's API, reading the live object, and
//! asking the API server what kustomize-controller's next apply would produce (a server-side-apply dry run
//! with its field manager, as `flux diff kustomization` does).

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde_json::Value;

use super::inventory::InventoryEntry;

pub use crate::wire::{FLUX_MANAGER, FLUX_NAME_LABEL, FLUX_NAMESPACE_LABEL};

type Gvk = (String, String, String);

/// Discovery answers, remembered per group/version/kind.
pub struct Resources {
    client: Client,
    known: Mutex<HashMap<Gvk, (ApiResource, ApiCapabilities)>>,
}

impl Resources {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            known: Mutex::new(HashMap::new()),
        }
    }

    pub async fn resolve(
        &self,
        entry: &InventoryEntry,
    ) -> kube::Result<(ApiResource, ApiCapabilities)> {
        let key = (
            entry.group.clone(),
            entry.version.clone(),
            entry.kind.clone(),
        );
        if let Some(found) = self
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(found.clone());
        }
        let gvk = GroupVersionKind::gvk(&entry.group, &entry.version, &entry.kind);
        let found = kube::discovery::pinned_kind(&self.client, &gvk).await?;
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, found.clone());
        Ok(found)
    }

    pub async fn api(&self, entry: &InventoryEntry) -> kube::Result<Api<DynamicObject>> {
        let (resource, caps) = self.resolve(entry).await?;
        Ok(match caps.scope {
            Scope::Namespaced => {
                Api::namespaced_with(self.client.clone(), &entry.namespace, &resource)
            }
            Scope::Cluster => Api::all_with(self.client.clone(), &resource),
        })
    }

    /// The live object as JSON, or `None` when it no longer exists.
    pub async fn live(&self, entry: &InventoryEntry) -> kube::Result<Option<Value>> {
        let api = self.api(entry).await?;
        Ok(api
            .get_opt(&entry.name)
            .await?
            .map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
    }

    /// What the object would be after kustomize-controller re-applied `desired` (nothing is written).
    pub async fn dry_run_apply(
        &self,
        entry: &InventoryEntry,
        desired: &Value,
    ) -> kube::Result<Value> {
        let api = self.api(entry).await?;
        let params = PatchParams::apply(FLUX_MANAGER).force().dry_run();
        let result = api
            .patch(&entry.name, &params, &Patch::Apply(desired))
            .await?;
        Ok(serde_json::to_value(result).unwrap_or(Value::Null))
    }
}

/// The object kustomize-controller applies for `desired`: placed in the entry's namespace and carrying the
/// labels Flux adds to everything it manages. Pure.
pub fn as_flux_applies(
    desired: &Value,
    entry: &InventoryEntry,
    ks_namespace: &str,
    ks_name: &str,
) -> Value {
    let mut object = desired.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if !entry.namespace.is_empty() {
            meta.insert("namespace".into(), Value::String(entry.namespace.clone()));
        }
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(FLUX_NAME_LABEL.into(), Value::String(ks_name.into()));
            labels.insert(
                FLUX_NAMESPACE_LABEL.into(),
                Value::String(ks_namespace.into()),
            );
        }
    }
    object
}

/// The manager that wrote the object last, from `metadata.managedFields` (latest `time`). Times have
/// one-second granularity and the API server orders entries of the same second by manager name, so on a
/// tie another manager wins over kustomize-controller: an edit made in the same second as Flux's apply
/// must still be compared. Writes through the `status` subresource are not edits of the desired state and
/// are skipped; every other subresource counts. The API server leaves `time` out of entries written
/// through `scale` (`kubectl scale`, autoscalers): such an entry may be the newest, so it wins.
pub fn last_writer(live: &Value) -> Option<String> {
    let key = |f: &Value| {
        (
            f["time"].as_str().is_none(),
            f["time"].as_str().unwrap_or_default().to_string(),
            f["manager"].as_str() != Some(FLUX_MANAGER),
        )
    };
    live["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .filter(|f| f["subresource"].as_str() != Some("status"))
        .max_by(|a, b| key(a).cmp(&key(b)))
        .and_then(|f| f["manager"].as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn desired_gets_the_namespace_and_flux_labels() {
        let entry = super::super::inventory::parse_entry("demo_web_apps_Deployment", "v1").unwrap();
        let desired = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"a": "b"}}});
        let applied = as_flux_applies(&desired, &entry, "flux-ns", "apps");
        assert_eq!(applied["metadata"]["namespace"], "demo");
        assert_eq!(applied["metadata"]["labels"]["a"], "b");
        assert_eq!(applied["metadata"]["labels"][FLUX_NAME_LABEL], "apps");
        assert_eq!(
            applied["metadata"]["labels"][FLUX_NAMESPACE_LABEL],
            "flux-ns"
        );
    }

    #[test]
    fn a_write_through_the_scale_subresource_is_an_edit() {
        // What `kubectl scale` leaves (kube-apiserver 1.36): an Update through `scale` without a time, then
        // the Deployment controller's status.
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kustomize-controller", "operation": "Apply", "time": "2026-11-23T10:00:00Z"},
            {"manager": "kubectl", "operation": "Update", "subresource": "scale"},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "time": "2026-11-23T10:05:01Z"}
        ]}});
        assert_eq!(last_writer(&live).as_deref(), Some("kubectl"));
    }

    #[test]
    fn last_writer_is_the_latest_main_resource_manager() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kustomize-controller", "operation": "Apply", "time": "2026-11-23T10:00:00Z"},
            {"manager": "kubectl-scale", "operation": "Update", "time": "2026-11-23T10:05:00Z"},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "time": "2026-11-23T10:06:00Z"}
        ]}});
        assert_eq!(last_writer(&live).as_deref(), Some("kubectl-scale"));
        assert_eq!(last_writer(&json!({})), None);
    }

    #[test]
    fn an_edit_in_the_same_second_as_flux_is_not_flux() {
        // The API server sorts same-second entries by manager name, so Flux's can come last.
        let live = json!({"metadata": {"managedFields": [
            {"manager": "bench-editor", "operation": "Apply", "time": "2026-11-23T16:44:59Z"},
            {"manager": "kustomize-controller", "operation": "Apply", "time": "2026-11-23T16:44:59Z"}
        ]}});
        assert_eq!(last_writer(&live).as_deref(), Some("bench-editor"));
        let flux_later = json!({"metadata": {"managedFields": [
            {"manager": "bench-editor", "operation": "Apply", "time": "2026-11-23T16:44:58Z"},
            {"manager": "kustomize-controller", "operation": "Apply", "time": "2026-11-23T16:44:59Z"}
        ]}});
        assert_eq!(last_writer(&flux_later).as_deref(), Some(FLUX_MANAGER));
    }
}
