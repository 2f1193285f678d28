//! Checks against objects captured from a real kube-apiserver (v1.36, `hack/dev-cluster.sh`): applied
//! with field manager kustomize-controller, then `kubectl scale --replicas=3`, `kubectl set image`,
//! `kubectl patch` of the Secret and of the Service port. `dry-*` is the server-side-apply dry run of the
//! unit's object with kustomize-controller's manager and force, as the controller will produce it.

use serde_json::Value;

use super::detect::{DetectionContext, detect};
use super::record::DetectionSource;
use super::types::{DriftType, ObjectKey, Severity};

fn load(name: &str) -> Value {
    let text = match name {
        "desired-deploy" => include_str!("testdata/desired-deploy.json"),
        "dry-deploy" => include_str!("testdata/dry-deploy.json"),
        "live-deploy" => include_str!("testdata/live-deploy.json"),
        "desired-secret" => include_str!("testdata/desired-secret.json"),
        "dry-secret" => include_str!("testdata/dry-secret.json"),
        "live-secret" => include_str!("testdata/live-secret.json"),
        "desired-svc" => include_str!("testdata/desired-svc.json"),
        "live-svc" => include_str!("testdata/live-svc.json"),
        _ => "null",
    };
    serde_json::from_str(text).unwrap()
}

fn summary(
    kind: &str,
    desired: &str,
    live: &str,
) -> Vec<(String, Option<String>, DriftType, Severity)> {
    let ctx = DetectionContext {
        ignore: &[],
        source: DetectionSource::Analyze,
        unit_slug: None,
        revision: None,
        repository: None,
        at: chrono::Utc::now(),
    };
    let key = ObjectKey::new(kind, "default", if kind == "Secret" { "db" } else { "web" });
    detect(&key, &load(desired), Some(&load(live)), &ctx)
        .map(|d| d.items)
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.item.path, i.item.actor, i.drift_type, i.severity))
        .collect()
}

#[test]
fn deployment_scaled_and_image_set_by_kubectl() {
    let want = vec![
        (
            "/spec/replicas".to_string(),
            Some("kubectl".to_string()),
            DriftType::Scaling,
            Severity::High,
        ),
        (
            "/spec/template/spec/containers/0/image".to_string(),
            Some("kubectl-set".to_string()),
            DriftType::VersionChange,
            Severity::High,
        ),
    ];
    assert_eq!(summary("Deployment", "dry-deploy", "live-deploy"), want);
    // The unit's own object gives the same answer (defaults and `0.5` vs `500m` are no drift).
    assert_eq!(summary("Deployment", "desired-deploy", "live-deploy"), want);
}

#[test]
fn secret_patched_by_kubectl() {
    for desired in ["dry-secret", "desired-secret"] {
        let items = summary("Secret", desired, "live-secret");
        assert_eq!(items.len(), 1, "{desired}");
        assert_eq!(items[0].0, "/data/password");
        assert_eq!(
            (items[0].2, items[0].3),
            (DriftType::SecretChange, Severity::High)
        );
        assert_eq!(items[0].1.as_deref(), Some("kubectl-patch"));
        let key = ObjectKey::new("Secret", "default", "db");
        let ctx = DetectionContext {
            ignore: &[],
            source: DetectionSource::Watch,
            unit_slug: None,
            revision: None,
            repository: None,
            at: chrono::Utc::now(),
        };
        let det = detect(&key, &load(desired), Some(&load("live-secret")), &ctx).unwrap();
        let text = serde_json::to_string(&super::record::DriftRecord::start(&det, 1)).unwrap();
        for value in ["hunter2", "aHVudGVyMg==", "Y2hhbmdlZA=="] {
            assert!(!text.contains(value), "{value} leaked");
        }
    }
}

#[test]
fn service_port_patched_by_kubectl() {
    let items = summary("Service", "desired-svc", "live-svc");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].0, "/spec/ports/0/port");
    assert_eq!(
        (items[0].2, items[0].3),
        (DriftType::PortChange, Severity::Medium)
    );
}

#[test]
fn fix_unit_adopts_the_real_drift() {
    let ctx = DetectionContext {
        ignore: &[],
        source: DetectionSource::Analyze,
        unit_slug: Some("web".into()),
        revision: None,
        repository: None,
        at: chrono::Utc::now(),
    };
    let key = ObjectKey::new("Deployment", "default", "web");
    let det = detect(&key, &load("dry-deploy"), Some(&load("live-deploy")), &ctx).unwrap();
    let unit = include_str!("testdata/unit-web.yaml");
    let fixed = super::fix_unit::fix_unit_yaml(unit, &key, &det.items).unwrap();
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&fixed)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0]["spec"]["replicas"], serde_json::json!(3));
    assert_eq!(
        docs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        serde_json::json!("nginx:1.28")
    );
    assert_eq!(
        docs[0]["spec"]["template"]["spec"]["containers"][0]["env"][1]["value"],
        serde_json::json!("2")
    );
    // The other documents are kept byte for byte.
    assert!(fixed.ends_with(unit.split_once("---\n").unwrap().1));
}

#[test]
fn fix_unit_translates_dry_run_list_indices_to_the_unit() {
    use serde_json::json;
    // The dry run orders env as [B, A] (say, live order); the unit has [A, B].
    let mut dry = load("dry-deploy");
    dry["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]);
    let mut live = load("live-deploy");
    live["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "B", "value": "2"}, {"name": "A", "value": "9"}]);
    let ctx = DetectionContext {
        ignore: &[],
        source: DetectionSource::Analyze,
        unit_slug: None,
        revision: None,
        repository: None,
        at: chrono::Utc::now(),
    };
    let key = ObjectKey::new("Deployment", "default", "web");
    let det = detect(&key, &dry, Some(&live), &ctx).unwrap();
    let env_item = det
        .items
        .iter()
        .find(|i| i.item.path.contains("/env/"))
        .unwrap();
    assert_eq!(
        env_item.item.path,
        "/spec/template/spec/containers/0/env/1/value"
    );
    let unit = include_str!("testdata/unit-web.yaml");
    let fixed = super::fix_unit::fix_unit_yaml_from(unit, &key, &det.items, Some(&dry)).unwrap();
    let doc: Value = serde_yaml_ng::from_str(fixed.split("---\n").next().unwrap()).unwrap();
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "9"}, {"name": "B", "value": "2"}])
    );
}
