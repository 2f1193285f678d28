//! Tests of [`super`] (fix_unit.rs).

use super::*;
use crate::drift::detect::classify_items;
use crate::drift::types::{DriftItem, IgnoreRule};
use serde_json::json;

const UNIT: &str = "# web unit, owned by team a
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.27
        env:
        - name: A
          value: '1'
        - name: B
          value: '2'
";

fn items(kind: &str, items: Vec<DriftItem>, ignore: &[IgnoreRule]) -> Vec<ClassifiedItem> {
    classify_items(&ObjectKey::new(kind, "default", "web"), items, ignore)
}

fn it(path: &str, d: Option<serde_json::Value>, l: Option<serde_json::Value>) -> DriftItem {
    DriftItem {
        path: path.into(),
        desired: d,
        live: l,
        actor: Some("kubectl-scale".into()),
    }
}

#[test]
fn merges_live_values_into_the_matching_document_only() {
    let key = ObjectKey::new("Deployment", "default", "web");
    let drift = items(
        "Deployment",
        vec![
            it("/spec/replicas", Some(json!(1)), Some(json!(3))),
            it(
                "/spec/template/spec/containers/0/env/0",
                Some(json!({"name": "A", "value": "1"})),
                None,
            ),
            it(
                "/spec/template/spec/containers/0/image",
                Some(json!("nginx:1.27")),
                Some(json!("nginx:1.28")),
            ),
        ],
        &[],
    );
    let out = fix_unit_yaml(UNIT, &key, &drift).unwrap();
    assert!(
        out.starts_with("# web unit, owned by team a\napiVersion: v1\nkind: Service\n"),
        "{out}"
    );
    assert!(out.contains("replicas: 3"), "{out}");
    assert!(out.contains("image: nginx:1.28"));
    let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&out)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(
        docs[1]["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "B", "value": "2"}])
    );
    assert_eq!(docs[1]["metadata"]["name"], json!("web"));
    assert_eq!(docs[0]["spec"]["ports"][0]["port"], json!(80));
}

#[test]
fn refuses_secrets_and_expected_only_drift() {
    let key = ObjectKey::new("Secret", "default", "web");
    let drift = items(
        "Secret",
        vec![it("/data/pw", Some(json!(MASK)), Some(json!(MASK_CHANGED)))],
        &[],
    );
    assert_eq!(
        fix_unit_yaml(UNIT, &key, &drift),
        Err(FixError::SecretRefused)
    );
    let key = ObjectKey::new("Deployment", "default", "web");
    let drift = items(
        "Deployment",
        vec![it(
            "/spec/template/spec/containers/0/env/2",
            Some(json!({"name": "P", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}})),
            None,
        )],
        &[],
    );
    assert_eq!(
        fix_unit_yaml(UNIT, &key, &drift),
        Err(FixError::SecretRefused)
    );
    let ignore = [IgnoreRule {
        paths: vec!["/spec/replicas".into()],
        kind: None,
        name: None,
    }];
    let drift = items(
        "Deployment",
        vec![it("/spec/replicas", Some(json!(1)), Some(json!(3)))],
        &ignore,
    );
    assert_eq!(
        fix_unit_yaml(UNIT, &key, &drift),
        Err(FixError::NothingToAdopt)
    );
}

#[test]
fn missing_objects_bad_yaml_and_deletions() {
    let drift = items(
        "Deployment",
        vec![it("/spec/replicas", Some(json!(1)), Some(json!(3)))],
        &[],
    );
    let other = ObjectKey::new("Deployment", "default", "api");
    assert!(matches!(
        fix_unit_yaml(UNIT, &other, &drift),
        Err(FixError::ObjectNotFound(_))
    ));
    assert!(matches!(
        fix_unit_yaml("a: [", &other, &drift),
        Err(FixError::Yaml(_))
    ));
    let key = ObjectKey::new("Deployment", "default", "web");
    let deleted = items("Deployment", vec![DriftItem::deleted(json!({}))], &[]);
    let out = fix_unit_yaml(UNIT, &key, &deleted).unwrap();
    assert!(
        !out.contains("Deployment") && out.contains("kind: Service"),
        "{out}"
    );
    let svc = ObjectKey::new("Service", "default", "web");
    let only = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n";
    assert_eq!(
        fix_unit_yaml(
            only,
            &svc,
            &items("Service", vec![DriftItem::deleted(json!({}))], &[])
        ),
        Err(FixError::WouldBeEmpty)
    );
    let bad = items(
        "Deployment",
        vec![it(
            "/spec/template/spec/containers/7/image",
            None,
            Some(json!("x")),
        )],
        &[],
    );
    assert!(matches!(
        fix_unit_yaml(UNIT, &key, &bad),
        Err(FixError::BadPath(_))
    ));
    let twice = format!("{UNIT}---\n{}", UNIT.split("---\n").nth(1).unwrap());
    assert!(matches!(
        fix_unit_yaml(&twice, &key, &drift),
        Err(FixError::Ambiguous(_))
    ));
}

#[test]
fn slugs_are_valid_bounded_and_deterministic() {
    assert_eq!(
        fix_unit_slug("web", "Deployment", "web"),
        "web-drift-deployment-web"
    );
    let long = "a".repeat(200);
    for (o, k, n) in [
        ("web", "Deployment", long.as_str()),
        ("web", "ClusterRole", "system:admin"),
        ("-", "X", ":"),
        ("", "", ""),
    ] {
        let s = fix_unit_slug(o, k, n);
        assert!(crate::hub::validate::is_valid_slug(&s), "{s}");
        assert!(s.len() <= MAX_SLUG_LEN);
        assert_eq!(s, fix_unit_slug(o, k, n));
    }
    assert_ne!(
        fix_unit_slug("web", "Deployment", &long),
        fix_unit_slug("web", "Deployment", &format!("{long}b"))
    );
    assert_ne!(
        fix_unit_slug("w", "ClusterRole", "a:b"),
        fix_unit_slug("w", "ClusterRole", "a/b")
    );
}

#[test]
fn labels_and_description() {
    let labels = fix_unit_labels("web", "prod", "7", "Deployment:default:web");
    assert_eq!(
        labels.get(LABEL_RECORD).map(String::as_str),
        Some("Deployment:default:web")
    );
    assert_eq!(labels.len(), 4);
    assert!(fix_unit_labels(&"x".repeat(300), "s", "1", "r")[LABEL_ORIGIN_UNIT].len() <= 128);
    let key = ObjectKey::new("Deployment", "default", "web");
    let drift = items(
        "Deployment",
        vec![it("/spec/replicas", Some(json!(1)), Some(json!(3)))],
        &[],
    );
    assert_eq!(
        change_description(&key, &drift),
        "Adopt drift on Deployment default/web: /spec/replicas 1 -> 3 (Scaling by kubectl-scale)"
    );
    let many: Vec<_> = (0..200)
        .map(|i| {
            it(
                &format!("/metadata/labels/l{i}"),
                Some(json!("a")),
                Some(json!("b")),
            )
        })
        .collect();
    assert!(
        change_description(&key, &items("Deployment", many, &[]))
            .chars()
            .count()
            <= MAX_DESCRIPTION
    );
}

#[test]
fn odd_units_are_errors_not_panics() {
    let key = ObjectKey::new("Deployment", "default", "web");
    let drift = items(
        "Deployment",
        vec![it("/spec/replicas", Some(json!(1)), Some(json!(3)))],
        &[],
    );
    for unit in [
        "",
        "---\n---\n",
        "[1, 2]",
        "a: &x [*x]",
        "? [a]\n: b\n",
        "kind: Deployment\nmetadata: 3\n",
        "kind: Deployment\nmetadata:\n  name: web\nspec: 3\n",
        "...\n--- !tag\nx: 1\n",
    ] {
        let _ = fix_unit_yaml(unit, &key, &drift);
    }
    let odd_path = items(
        "Deployment",
        vec![it("/spec/replicas/deeper/0", None, Some(json!(3)))],
        &[],
    );
    assert!(fix_unit_yaml(UNIT, &key, &odd_path).is_err());
}
