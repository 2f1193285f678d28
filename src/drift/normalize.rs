//! Normalisation before comparison, as `flux diff kustomization` does: drop what the server owns
//! (managedFields, status, server-set metadata), fold Secret `stringData` into `data`, default port
//! protocols to TCP, and mask Secret values so they never leave this module.
//!
//! Secret masking keeps whether a value differs without keeping the value: [`normalize_pair`] compares the
//! encoded values of both sides first and then replaces them with [`MASK`] (equal, or only on one side)
//! or, on the live side, [`MASK_CHANGED`] (different). A diff item then says "changed" and holds no data.

use serde_json::{Map, Value};

use super::base64;

/// What every Secret value is replaced with.
pub const MASK: &str = "***";
/// The live-side mask of a Secret value that differs from the desired one.
pub const MASK_CHANGED: &str = "*** (changed)";

/// Metadata the API server sets; never part of the desired state.
const SERVER_METADATA: [&str; 8] = [
    "managedFields",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Written by `kubectl apply` (client-side); holds a full copy of the object, Secret data included.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Normalises one object for display: server fields dropped, `ownerReferences` dropped (on managed
/// objects they are set by controllers, not by the unit), Secret values masked as `***`.
pub fn normalize(obj: &Value) -> Value {
    let mut out = strip(obj, false);
    if is_secret(&out) {
        mask_all(&mut out);
    }
    out
}

/// Normalises a desired/live pair for comparison. `ownerReferences` are kept on both sides only when
/// the desired object declares them. Secret values are masked on both sides, the live side as
/// [`MASK_CHANGED`] where it differs from the desired value.
pub fn normalize_pair(desired: &Value, live: Option<&Value>) -> (Value, Option<Value>) {
    let keep_owners = desired
        .pointer("/metadata/ownerReferences")
        .is_some_and(|v| !v.is_null());
    let mut d = strip(desired, keep_owners);
    let mut l = live.map(|l| strip(l, keep_owners));
    if is_secret(&d) || l.as_ref().is_some_and(is_secret) {
        match l.as_mut() {
            Some(l) => mask_pair(&mut d, l),
            None => mask_all(&mut d),
        }
        if let Some(l) = l.as_mut() {
            mask_all_unmasked(l);
        }
    }
    (d, l)
}

pub fn is_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
}

/// Drops server-owned fields, folds `stringData` and defaults port protocols. No masking.
fn strip(obj: &Value, keep_owner_refs: bool) -> Value {
    let mut out = obj.clone();
    let Some(map) = out.as_object_mut() else {
        return out;
    };
    map.remove("status");
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in SERVER_METADATA {
            meta.remove(key);
        }
        if !keep_owner_refs {
            meta.remove("ownerReferences");
        }
        if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            ann.remove(LAST_APPLIED);
            if ann.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if is_secret(&out) {
        fold_string_data(&mut out);
    }
    if let Some(spec) = out.get_mut("spec") {
        default_port_protocols(spec);
    }
    out
}

/// `stringData` is write-only: the server encodes it into `data` (where it wins over `data`).
fn fold_string_data(secret: &mut Value) {
    let Some(map) = secret.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Some(data) = data.as_object_mut() {
        for (k, v) in string_data {
            let plain = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            data.insert(k, Value::String(base64::encode(plain.as_bytes())));
        }
    }
}

/// The API server defaults `protocol: TCP` on Service and container ports.
fn default_port_protocols(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "ports"
                    && let Value::Array(ports) = child
                {
                    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                        let is_port =
                            port.contains_key("port") || port.contains_key("containerPort");
                        if is_port && !port.contains_key("protocol") {
                            port.insert("protocol".into(), Value::String("TCP".into()));
                        }
                    }
                }
                default_port_protocols(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(default_port_protocols),
        _ => {}
    }
}

fn secret_data_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.get_mut("data").and_then(Value::as_object_mut)
}

fn mask_all(obj: &mut Value) {
    if let Some(data) = secret_data_mut(obj) {
        data.values_mut()
            .for_each(|v| *v = Value::String(MASK.into()));
    }
}

/// Masks live values not already masked by [`mask_pair`] (keys only the live side has).
fn mask_all_unmasked(obj: &mut Value) {
    if let Some(data) = secret_data_mut(obj) {
        for v in data.values_mut() {
            if v.as_str() != Some(MASK) && v.as_str() != Some(MASK_CHANGED) {
                *v = Value::String(MASK.into());
            }
        }
    }
}

fn mask_pair(desired: &mut Value, live: &mut Value) {
    let desired_data = secret_data_mut(desired).map(std::mem::take);
    let mut masked_desired = Map::new();
    if let Some(desired_data) = desired_data {
        let live_data = secret_data_mut(live);
        let mut live_data = live_data;
        for (k, dv) in desired_data {
            if let Some(ld) = live_data.as_deref_mut()
                && let Some(lv) = ld.get_mut(&k)
            {
                let mask = if *lv == dv { MASK } else { MASK_CHANGED };
                *lv = Value::String(mask.into());
            }
            masked_desired.insert(k, Value::String(MASK.into()));
        }
    }
    if let Some(map) = desired.as_object_mut()
        && map.contains_key("data")
    {
        map.insert("data".into(), Value::Object(masked_desired));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "default", "uid": "1234", "resourceVersion": "99",
                "generation": 4, "creationTimestamp": "2026-01-01T00:00:00Z",
                "annotations": {LAST_APPLIED: "{\"spec\":{}}", "team": "a"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "9"}],
                "managedFields": [{"manager": "kubectl", "operation": "Update"}]
            },
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}},
            "status": {"availableReplicas": 1}
        })
    }

    #[test]
    fn drops_server_fields_and_defaults_protocols() {
        let n = normalize(&live_deployment());
        let meta = &n["metadata"];
        for k in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "ownerReferences",
        ] {
            assert!(meta.get(k).is_none(), "{k} kept");
        }
        assert_eq!(meta["annotations"], json!({"team": "a"}));
        assert!(n.get("status").is_none());
        assert_eq!(
            n.pointer("/spec/template/spec/containers/0/ports/0/protocol"),
            Some(&json!("TCP"))
        );
    }

    #[test]
    fn owner_references_kept_when_desired_declares_them() {
        let mut desired = live_deployment();
        desired["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences");
        let (d, l) = normalize_pair(&desired, Some(&live_deployment()));
        assert!(d.pointer("/metadata/ownerReferences").is_none());
        assert!(l.unwrap().pointer("/metadata/ownerReferences").is_none());
        desired["metadata"]["ownerReferences"] = json!([{"name": "mine"}]);
        let (d, l) = normalize_pair(&desired, Some(&live_deployment()));
        assert!(d.pointer("/metadata/ownerReferences").is_some());
        assert!(l.unwrap().pointer("/metadata/ownerReferences").is_some());
    }

    #[test]
    fn secrets_fold_string_data_and_mask_keeping_only_whether_values_differ() {
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"password": "hunter2", "user": "admin"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "data": {"password": base64::encode(b"changed!"), "user": base64::encode(b"admin"),
                     "extra": base64::encode(b"other")}});
        let (d, l) = normalize_pair(&desired, Some(&live));
        let l = l.unwrap();
        assert_eq!(d["data"], json!({"password": MASK, "user": MASK}));
        assert_eq!(
            l["data"],
            json!({"password": MASK_CHANGED, "user": MASK, "extra": MASK})
        );
        let all = format!("{d}{l}{}", normalize(&live));
        for secret in ["hunter2", "changed!", "admin", "other"] {
            assert!(!all.contains(secret));
            assert!(!all.contains(&base64::encode(secret.as_bytes())));
        }
    }

    #[test]
    fn deleted_secret_is_masked_too() {
        let desired =
            json!({"kind": "Secret", "metadata": {"name": "db"}, "data": {"k": "c2VjcmV0"}});
        let (d, l) = normalize_pair(&desired, None);
        assert!(l.is_none());
        assert_eq!(d["data"]["k"], json!(MASK));
    }

    #[test]
    fn non_objects_pass_through() {
        assert_eq!(normalize(&json!(3)), json!(3));
    }
}
