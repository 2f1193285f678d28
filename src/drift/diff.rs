//! Desired vs live, after normalisation: the list of drift items.
//!
//! Rules (see docs/drift.md):
//! - Only paths the desired object declares matter. Fields the server defaulted, or that other managers
//!   added and the desired object does not mention, are not drift. This includes labels and annotations:
//!   an extra live key is not drift (server-side apply leaves keys it does not own alone, and so does
//!   kustomize-controller); a desired key that was changed or removed is.
//! - Lists of objects with a unique `name` (containers, env, volumes, ports, ...) are matched by name,
//!   `volumeMounts` by `mountPath`, unnamed ports by port and protocol; other lists of objects by index;
//!   lists of scalars (`args`, `command`) as a whole. A reordered keyed list is no drift.
//! - Quantities under `resources` compare by value (`500m` equals `0.5`), numbers by value.
//! - `kustomize.toolkit.fluxcd.io/reconcile: disabled` and `ssa: Ignore` mean no drift at all;
//!   `ssa: IfNotPresent` means only a deletion counts. A missing live object is one `Deleted` item.

use serde_json::{Map, Value};

use super::fields::FieldOwners;
use super::normalize::{normalize, normalize_pair};
use super::types::DriftItem;
use super::{pointer, quantity};

pub const RECONCILE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/reconcile";
pub const SSA_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/ssa";

/// What Flux's per-object annotations allow us to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Every difference is drift.
    Full,
    /// `ssa: IfNotPresent`: Flux only creates the object, so only its deletion is drift.
    OnlyDeletion,
    /// `reconcile: disabled` or `ssa: Ignore`: Flux leaves the object alone, so nothing is drift.
    None,
}

/// The policy from the annotations of either side (the live object may have been annotated in place).
pub fn policy(desired: &Value, live: Option<&Value>) -> Policy {
    let annotation = |key: &str| {
        [Some(desired), live]
            .into_iter()
            .flatten()
            .filter_map(move |o| o.pointer("/metadata/annotations")?.get(key)?.as_str())
            .collect::<Vec<_>>()
    };
    let ssa = annotation(SSA_ANNOTATION);
    if annotation(RECONCILE_ANNOTATION)
        .iter()
        .any(|v| v.eq_ignore_ascii_case("disabled"))
        || ssa.iter().any(|v| v.eq_ignore_ascii_case("ignore"))
    {
        Policy::None
    } else if ssa.iter().any(|v| v.eq_ignore_ascii_case("ifnotpresent")) {
        Policy::OnlyDeletion
    } else {
        Policy::Full
    }
}

/// The drift between `desired` (the unit's object, or better the server-side-apply dry-run result) and
/// `live` (None when the object is gone). `owners` comes from the live object
/// ([`FieldOwners::from_live`]) and names the actor of each item.
pub fn diff(desired: &Value, live: Option<&Value>, owners: &FieldOwners) -> Vec<DriftItem> {
    let policy = policy(desired, live);
    if policy == Policy::None {
        return Vec::new();
    }
    let Some(live) = live else {
        return vec![DriftItem::deleted(normalize(desired))];
    };
    if policy == Policy::OnlyDeletion {
        return Vec::new();
    }
    let (d, l) = normalize_pair(desired, Some(live));
    let mut out = Vec::new();
    if let Some(l) = l {
        Walker {
            owners,
            out: &mut out,
        }
        .compare(&d, &l, "", "");
    }
    out
}

struct Walker<'a> {
    owners: &'a FieldOwners,
    out: &'a mut Vec<DriftItem>,
}

impl Walker<'_> {
    /// `dpath` points into desired (reported), `lpath` into live (for ownership).
    fn compare(&mut self, d: &Value, l: &Value, dpath: &str, lpath: &str) {
        match (d, l) {
            (Value::Object(dm), Value::Object(lm)) => self.compare_maps(dm, lm, dpath, lpath),
            (Value::Array(da), Value::Array(la)) => self.compare_lists(da, la, dpath, lpath),
            _ if leaf_equal(d, l, dpath) => {}
            _ => self.changed(dpath, lpath, Some(d), Some(l)),
        }
    }

    fn compare_maps(
        &mut self,
        d: &Map<String, Value>,
        l: &Map<String, Value>,
        dpath: &str,
        lpath: &str,
    ) {
        for (k, dv) in d {
            let (dp, lp) = (pointer::join(dpath, k), pointer::join(lpath, k));
            match l.get(k) {
                Some(lv) => self.compare(dv, lv, &dp, &lp),
                // `key: null` in a manifest means "unset": nothing to compare.
                None if dv.is_null() => {}
                None => self.changed(&dp, &lp, Some(dv), None),
            }
        }
    }

    fn compare_lists(&mut self, d: &[Value], l: &[Value], dpath: &str, lpath: &str) {
        let whole = |w: &mut Self| {
            w.changed(
                dpath,
                lpath,
                Some(&Value::Array(d.to_vec())),
                Some(&Value::Array(l.to_vec())),
            )
        };
        if d.iter().all(|v| !v.is_object()) {
            let same = d.len() == l.len() && d.iter().zip(l).all(|(a, b)| leaf_equal(a, b, dpath));
            if !same {
                whole(self);
            }
            return;
        }
        let parent = pointer::segments(dpath).pop().unwrap_or_default();
        match list_key(d, &parent) {
            Some(key) => {
                for (i, de) in d.iter().enumerate() {
                    let dp = pointer::join(dpath, &i.to_string());
                    let wanted = key.of(de);
                    match l
                        .iter()
                        .position(|le| wanted.is_some() && key.of(le) == wanted)
                    {
                        Some(j) => {
                            self.compare(de, &l[j], &dp, &pointer::join(lpath, &j.to_string()))
                        }
                        None => self.changed(&dp, "", Some(de), None),
                    }
                }
            }
            None if d.len() != l.len() => whole(self),
            None => {
                for (i, (de, le)) in d.iter().zip(l).enumerate() {
                    let seg = i.to_string();
                    self.compare(
                        de,
                        le,
                        &pointer::join(dpath, &seg),
                        &pointer::join(lpath, &seg),
                    );
                }
            }
        }
    }

    fn changed(&mut self, dpath: &str, lpath: &str, d: Option<&Value>, l: Option<&Value>) {
        // Nobody owns a field that is gone; an ancestor's owner would be a guess, so only exact owners.
        // An empty `lpath` means there is no live counterpart at all (an unmatched list element).
        let owner = match l {
            Some(_) => self.owners.owner_of(lpath),
            None if lpath.is_empty() => None,
            None => self.owners.exact(lpath),
        };
        self.out.push(DriftItem {
            path: dpath.to_string(),
            desired: d.cloned(),
            live: l.cloned(),
            actor: owner.map(|o| o.manager.clone()),
        });
    }
}

/// How elements of a list of objects are identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListKey {
    Field(&'static str),
    /// `containerPort` or `port`, with the protocol.
    Port(&'static str),
}

impl ListKey {
    pub(crate) fn of(self, v: &Value) -> Option<String> {
        match self {
            ListKey::Field(f) => v.get(f)?.as_str().map(str::to_string),
            ListKey::Port(f) => {
                let port = v.get(f)?;
                let protocol = v.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                Some(format!("{port}/{protocol}"))
            }
        }
    }
}

/// The key that identifies every element of `d` uniquely, if any.
pub(crate) fn list_key(d: &[Value], parent: &str) -> Option<ListKey> {
    let candidates: &[ListKey] = if parent == "volumeMounts" {
        &[ListKey::Field("mountPath"), ListKey::Field("name")]
    } else {
        &[
            ListKey::Field("name"),
            ListKey::Field("mountPath"),
            ListKey::Port("containerPort"),
            ListKey::Port("port"),
        ]
    };
    candidates.iter().copied().find(|key| {
        let mut seen = std::collections::BTreeSet::new();
        d.iter().all(|v| key.of(v).is_some_and(|k| seen.insert(k)))
    })
}

fn leaf_equal(d: &Value, l: &Value, path: &str) -> bool {
    if d == l {
        return true;
    }
    if let (Value::Number(a), Value::Number(b)) = (d, l) {
        return a.as_f64() == b.as_f64();
    }
    let in_resources = pointer::segments(path)
        .iter()
        .any(|s| s == "resources" || s == "hard" || s == "capacity");
    in_resources && quantity::same(d, l)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::drift::normalize::{MASK, MASK_CHANGED};
    use serde_json::json;

    pub(crate) fn desired_deployment(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web", "image": image,
                        "ports": [{"containerPort": 8080}],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "resources": {"requests": {"cpu": "0.5", "memory": "128Mi"}}
                    }]}
                }
            }
        })
    }

    /// The live object as the API server returns it: defaults filled in, status, two field managers.
    pub(crate) fn live_deployment(replicas: i64, image: &str, scaler: &str) -> Value {
        let flux_fields = json!({
            "f:metadata": {"f:labels": {"f:app": {}, "f:kustomize.toolkit.fluxcd.io/name": {},
                                         "f:kustomize.toolkit.fluxcd.io/namespace": {}}},
            "f:spec": {"f:selector": {}, "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                    ".": {}, "f:name": {}, "f:image": {},
                    "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}},
                    "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}},
                              "k:{\"name\":\"B\"}": {".": {}, "f:name": {}, "f:value": {}}},
                    "f:resources": {"f:requests": {"f:cpu": {}, "f:memory": {}}}}}}}}
        });
        let managed = json!([
            {"manager": "kustomize-controller", "operation": "Apply", "apiVersion": "apps/v1",
             "time": "2026-11-01T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": flux_fields},
            {"manager": scaler, "operation": "Update", "apiVersion": "apps/v1", "subresource": "scale",
             "time": "2026-11-02T09:30:00Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
             "time": "2026-11-02T09:31:00Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:status": {"f:availableReplicas": {}, "f:replicas": {}}}}
        ]);
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "default", "uid": "6f1c", "resourceVersion": "4711",
                "generation": 3, "creationTimestamp": "2026-11-01T10:00:00Z",
                "labels": {"app": "web", "kustomize.toolkit.fluxcd.io/name": "apps",
                           "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
                "annotations": {"deployment.kubernetes.io/revision": "3"},
                "managedFields": managed
            },
            "spec": {
                "replicas": replicas, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                            "terminationMessagePath": "/dev/termination-log",
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
                            "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}}
                        }],
                        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"
                    }
                }
            },
            "status": {"replicas": replicas, "availableReplicas": replicas, "updatedReplicas": replicas}
        })
    }

    fn run(desired: &Value, live: Option<&Value>) -> Vec<DriftItem> {
        let owners = live.map(FieldOwners::from_live).unwrap_or_default();
        diff(desired, live, &owners)
    }

    #[test]
    fn in_sync_object_with_server_defaults_and_reordered_env_has_no_drift() {
        let items = run(
            &desired_deployment(1, "nginx:1.27"),
            Some(&live_deployment(1, "nginx:1.27", "kubectl-scale")),
        );
        assert_eq!(items, vec![]);
    }

    #[test]
    fn scaling_by_kubectl_is_one_item_with_its_actor() {
        let items = run(
            &desired_deployment(1, "nginx:1.27"),
            Some(&live_deployment(3, "nginx:1.27", "kubectl-scale")),
        );
        assert_eq!(
            items,
            vec![DriftItem {
                path: "/spec/replicas".into(),
                desired: Some(json!(1)),
                live: Some(json!(3)),
                actor: Some("kubectl-scale".into()),
            }]
        );
    }

    #[test]
    fn image_change_is_attributed_to_the_last_writer() {
        let mut live = live_deployment(1, "nginx:1.28", "kubectl-scale");
        live["metadata"]["managedFields"].as_array_mut().unwrap().push(json!({
            "manager": "kubectl-set", "operation": "Update", "time": "2026-11-03T00:00:00Z",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {"f:image": {}}}}}}}}));
        let items = run(&desired_deployment(1, "nginx:1.27"), Some(&live));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].path, "/spec/template/spec/containers/0/image");
        assert_eq!(items[0].live, Some(json!("nginx:1.28")));
        assert_eq!(items[0].actor.as_deref(), Some("kubectl-set"));
    }

    #[test]
    fn removed_and_changed_list_elements_use_desired_indices() {
        let mut live = live_deployment(1, "nginx:1.27", "kubectl-scale");
        // Live env is [B, A]; drop A and change B.
        live["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "B", "value": "9"}]);
        let items = run(&desired_deployment(1, "nginx:1.27"), Some(&live));
        let paths: Vec<_> = items.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "/spec/template/spec/containers/0/env/0",
                "/spec/template/spec/containers/0/env/1/value"
            ]
        );
        assert_eq!(items[0].live, None);
        assert_eq!(items[0].actor, None);
        assert_eq!(items[1].actor.as_deref(), Some("kustomize-controller"));
    }

    #[test]
    fn extra_live_labels_are_not_drift_but_changed_ones_are() {
        let mut live = live_deployment(1, "nginx:1.27", "kubectl-scale");
        live["metadata"]["labels"]["added-by-someone"] = json!("x");
        assert!(run(&desired_deployment(1, "nginx:1.27"), Some(&live)).is_empty());
        live["metadata"]["labels"]["app"] = json!("other");
        let items = run(&desired_deployment(1, "nginx:1.27"), Some(&live));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].path, "/metadata/labels/app");
    }

    #[test]
    fn scalar_lists_compare_as_a_whole() {
        let mut desired = desired_deployment(1, "nginx:1.27");
        desired["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--a", "--b"]);
        let mut live = live_deployment(1, "nginx:1.27", "kubectl-scale");
        live["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--a", "--b", "--c"]);
        let items = run(&desired, Some(&live));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].path, "/spec/template/spec/containers/0/args");
        assert_eq!(items[0].live, Some(json!(["--a", "--b", "--c"])));
    }

    #[test]
    fn deleted_object_is_one_item() {
        let items = run(&desired_deployment(1, "nginx:1.27"), None);
        assert_eq!(items.len(), 1);
        assert!(items[0].is_deletion());
    }

    #[test]
    fn flux_annotations_are_honoured() {
        let live = live_deployment(3, "nginx:1.27", "kubectl-scale");
        for (key, value) in [
            (RECONCILE_ANNOTATION, "disabled"),
            (SSA_ANNOTATION, "Ignore"),
        ] {
            let mut desired = desired_deployment(1, "nginx:1.27");
            desired["metadata"]["annotations"] = json!({key: value});
            assert!(run(&desired, Some(&live)).is_empty(), "{key}");
            assert!(run(&desired, None).is_empty(), "{key} deleted");
        }
        let mut desired = desired_deployment(1, "nginx:1.27");
        desired["metadata"]["annotations"] = json!({SSA_ANNOTATION: "IfNotPresent"});
        assert!(run(&desired, Some(&live)).is_empty());
        assert_eq!(run(&desired, None).len(), 1);
        // Annotated in place on the live object counts too.
        let mut live = live;
        live["metadata"]["annotations"][RECONCILE_ANNOTATION] = json!("disabled");
        assert!(run(&desired_deployment(1, "nginx:1.27"), Some(&live)).is_empty());
    }

    #[test]
    fn service_ports_default_protocol_and_match_by_name() {
        let desired = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "metrics", "port": 9090}]}});
        let mut live = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.0.0.7", "type": "ClusterIP", "ports": [
                {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090},
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}});
        assert!(run(&desired, Some(&live)).is_empty());
        live["spec"]["ports"][1]["port"] = json!(8000);
        let items = run(&desired, Some(&live));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].path, "/spec/ports/0/port");
        assert_eq!(
            (items[0].desired.clone(), items[0].live.clone()),
            (Some(json!(80)), Some(json!(8000)))
        );
    }

    #[test]
    fn secret_diff_holds_masks_only() {
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"},
            "type": "Opaque", "stringData": {"password": "s3cr3t-pa55"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default",
            "managedFields": [{"manager": "kubectl-edit", "operation": "Update", "time": "2026-11-02T00:00:00Z",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:password": {}}}}]},
            "type": "Opaque", "data": {"password": crate::drift::base64::encode(b"leaked-value")}});
        let items = run(&desired, Some(&live));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].path, "/data/password");
        assert_eq!(items[0].desired, Some(json!(MASK)));
        assert_eq!(items[0].live, Some(json!(MASK_CHANGED)));
        assert_eq!(items[0].actor.as_deref(), Some("kubectl-edit"));
        let text = serde_json::to_string(&items).unwrap();
        for plain in ["s3cr3t-pa55", "leaked-value"] {
            assert!(!text.contains(plain));
            assert!(!text.contains(&crate::drift::base64::encode(plain.as_bytes())));
        }
        // Deleted Secrets keep their values out of the item too.
        let text = serde_json::to_string(&run(&desired, None)).unwrap();
        assert!(
            !text.contains("s3cr3t-pa55")
                && !text.contains(&crate::drift::base64::encode(b"s3cr3t-pa55"))
        );
    }

    #[test]
    fn volume_mounts_match_by_mount_path() {
        let mut desired = desired_deployment(1, "nginx:1.27");
        desired["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "cfg", "mountPath": "/a", "subPath": "a"}, {"name": "cfg", "mountPath": "/b", "subPath": "b"}]);
        let mut live = live_deployment(1, "nginx:1.27", "kubectl-scale");
        live["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "cfg", "mountPath": "/b", "subPath": "b"}, {"name": "cfg", "mountPath": "/a", "subPath": "a"}]);
        assert!(run(&desired, Some(&live)).is_empty());
    }

    #[test]
    fn odd_inputs_never_panic() {
        let odd = [
            json!(null),
            json!(3),
            json!("x"),
            json!([1, {"a": 2}]),
            json!({"kind": "Secret", "data": "not-a-map", "stringData": ["x"]}),
            json!({"kind": "Secret", "data": {"k": 1}, "stringData": {"n": 5}}),
            json!({"metadata": "m", "spec": {"ports": "p", "replicas": "many"}}),
            json!({"metadata": {"annotations": {RECONCILE_ANNOTATION: 7}, "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"i:x": {}, "v:bad": {}, "k:{}": {"f:y": 1}}}}]},
                   "spec": {"containers": [{"name": 1}, {"name": 1}], "replicas": 0}}),
        ];
        for d in &odd {
            for l in &odd {
                let items = run(d, Some(l));
                let _ = crate::drift::classify::classify("Deployment", &items);
                let _ = crate::drift::normalize::normalize(l);
                let _ = crate::drift::health::health(Some(l));
                let _ = crate::drift::ObjectKey::of(l);
            }
            let _ = run(d, None);
        }
    }
}
