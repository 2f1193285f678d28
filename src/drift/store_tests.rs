//! Tests of [`super`] (store.rs).

use super::*;
use crate::drift::detect::{classify_items, detect, tests::ctx};
use crate::drift::record::DetectionSource;
use crate::drift::types::{DriftItem, ObjectKey};
use chrono::Duration;
use serde_json::json;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + secs, 0).unwrap()
}

fn det(
    kind: &str,
    ns: &str,
    name: &str,
    path: &str,
    d: i64,
    l: i64,
    at: DateTime<Utc>,
) -> Detection {
    let key = ObjectKey::new(kind, ns, name);
    let items = vec![DriftItem {
        path: path.into(),
        desired: Some(json!(d)),
        live: Some(json!(l)),
        actor: Some("kubectl".into()),
    }];
    Detection {
        items: classify_items(&key, items, &[]),
        key,
        source: DetectionSource::Watch,
        unit_slug: Some(name.into()),
        revision: Some("1".into()),
        repository: None,
        kustomization: None,
        detected_at: at,
    }
}

fn store() -> (tempfile::TempDir, RecordStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordStore::open(&dir.path().join("drift.db")).unwrap();
    (dir, store)
}

#[test]
fn episode_lifecycle() {
    let (_dir, store) = store();
    let id = "Deployment:default:web";
    let (tr, r) = store
        .upsert_detection(&det(
            "Deployment",
            "default",
            "web",
            "/spec/replicas",
            1,
            3,
            t(0),
        ))
        .unwrap();
    assert_eq!(
        (tr, r.episode, r.status),
        (Transition::Started, 1, RecordStatus::Active)
    );
    let (tr, r) = store
        .upsert_detection(&det(
            "Deployment",
            "default",
            "web",
            "/spec/replicas",
            1,
            3,
            t(10),
        ))
        .unwrap();
    assert_eq!(tr, Transition::Unchanged);
    assert_eq!((r.first_detected, r.last_seen), (t(0), t(10)));
    let (tr, r) = store
        .upsert_detection(&det(
            "Deployment",
            "default",
            "web",
            "/spec/replicas",
            1,
            4,
            t(20),
        ))
        .unwrap();
    assert_eq!(tr, Transition::Updated);
    assert_eq!(r.items[0].item.live, Some(json!(4)));
    assert!(store.set_fix_unit(id, "web-drift-deployment-web").unwrap());
    assert!(store.resolve(id, t(80)).unwrap());
    assert!(!store.resolve(id, t(90)).unwrap());
    let resolved = store.get(id).unwrap().unwrap();
    assert_eq!(resolved.status, RecordStatus::Resolved);
    assert_eq!(resolved.resolved_at, Some(t(80)));
    assert_eq!(
        resolved.fix_unit.as_deref(),
        Some("web-drift-deployment-web")
    );
    assert_eq!(resolved.time_to_resolve(), Some(80.0));
    let (tr, r) = store
        .upsert_detection(&det(
            "Deployment",
            "default",
            "web",
            "/spec/replicas",
            1,
            2,
            t(100),
        ))
        .unwrap();
    assert_eq!(
        (tr, r.episode, r.first_detected),
        (Transition::Started, 2, t(100))
    );
    assert_eq!(store.get(id).unwrap().unwrap().episode, 2);
    assert_eq!(store.history(id).unwrap().len(), 2);
    assert_eq!(store.active_count().unwrap(), 1);
    assert!(store.get("Deployment:default:nope").unwrap().is_none());
}

#[test]
fn empty_detections_are_refused() {
    let (_dir, store) = store();
    let mut d = det("Deployment", "default", "web", "/spec/replicas", 1, 3, t(0));
    d.items.clear();
    assert!(matches!(
        store.upsert_detection(&d),
        Err(StoreError::EmptyDetection)
    ));
}

#[test]
fn a_corrupt_database_is_moved_aside_and_a_healthy_one_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drift.db");
    // Healthy: reopened as it is.
    {
        let store = RecordStore::open(&path).unwrap();
        store
            .upsert_detection(&det("ConfigMap", "a", "b", "/data/k", 1, 2, t(0)))
            .unwrap();
    }
    let (store, moved) = RecordStore::open_or_rebuild(&path).unwrap();
    assert_eq!(moved, None);
    assert!(store.get("ConfigMap:a:b").unwrap().is_some());
    drop(store);
    // Garbage where the database was (a torn copy, a disk fault): moved aside, a new store works.
    std::fs::write(
        &path,
        b"this is not a sqlite database, not even close......",
    )
    .unwrap();
    let (store, moved) = RecordStore::open_or_rebuild(&path).unwrap();
    let aside = moved.expect("moved aside");
    assert!(aside.to_string_lossy().contains("drift.db.corrupt-"));
    assert!(std::fs::read(&aside).unwrap().starts_with(b"this is not"));
    assert_eq!(store.active_count().unwrap(), 0);
    store
        .upsert_detection(&det("ConfigMap", "a", "b", "/data/k", 1, 2, t(0)))
        .unwrap();
    assert!(store.get("ConfigMap:a:b").unwrap().is_some());
}

#[test]
fn records_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drift.db");
    {
        let store = RecordStore::open(&path).unwrap();
        store
            .upsert_detection(&det(
                "Deployment",
                "default",
                "web",
                "/spec/replicas",
                1,
                3,
                t(0),
            ))
            .unwrap();
    }
    let store = RecordStore::open(&path).unwrap();
    let r = store.get("Deployment:default:web").unwrap().unwrap();
    assert_eq!(r.items[0].item.path, "/spec/replicas");
    let (tr, _) = store
        .upsert_detection(&det(
            "Deployment",
            "default",
            "web",
            "/spec/replicas",
            1,
            3,
            t(5),
        ))
        .unwrap();
    assert_eq!(tr, Transition::Unchanged);
}

#[test]
fn filters_and_statistics() {
    let (_dir, store) = store();
    store
        .upsert_detection(&det("Deployment", "a", "web", "/spec/replicas", 1, 3, t(0)))
        .unwrap(); // High
    store
        .upsert_detection(&det("Deployment", "b", "api", "/spec/replicas", 4, 5, t(1)))
        .unwrap(); // Medium
    store
        .upsert_detection(&det(
            "ConfigMap",
            "b",
            "cfg",
            "/metadata/labels/x",
            1,
            2,
            t(2),
        ))
        .unwrap(); // Low
    store.resolve("Deployment:a:web", t(30)).unwrap();
    store.resolve("ConfigMap:b:cfg", t(12)).unwrap();
    let ns_b = store
        .list(&RecordFilter {
            namespace: Some("b".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        ns_b.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        vec!["cfg", "api"]
    );
    let active = store
        .list(&RecordFilter {
            status: Some(RecordStatus::Active),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(active.len(), 1);
    let high = store
        .list(&RecordFilter {
            severity: Some(Severity::High),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(high[0].id, "Deployment:a:web");
    let one = store
        .list(&RecordFilter {
            limit: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(one.len(), 1);
    let s = store.statistics().unwrap();
    assert_eq!((s.total, s.active, s.resolved), (3, 1, 2));
    assert_eq!(s.by_type.get(&DriftType::Scaling), Some(&2));
    assert_eq!(s.by_type.get(&DriftType::LabelChange), Some(&1));
    assert_eq!(s.by_severity.get(&Severity::High), Some(&1));
    assert_eq!(s.by_namespace.get("b"), Some(&2));
    assert_eq!(s.mean_time_to_resolve_seconds, Some(20.0));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["by_type"]["Scaling"], json!(2));
}

#[test]
fn a_record_built_from_a_secret_diff_holds_no_secret_value() {
    let (_dir, store) = store();
    let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"},
            "data": {"password": crate::drift::base64::encode(b"correct-horse")},
            "stringData": {"token": "battery-staple"}});
    let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"Y29ycmVjdC1ob3JzZQ==\"}}"}},
            "data": {"password": crate::drift::base64::encode(b"tr0ub4dor&3"), "token": crate::drift::base64::encode(b"battery-staple")}});
    let key = ObjectKey::new("Secret", "default", "db");
    let d = detect(&key, &desired, Some(&live), &ctx(&[])).unwrap();
    assert_eq!(d.items.len(), 1);
    assert_eq!(
        (d.items[0].drift_type, d.items[0].severity),
        (DriftType::SecretChange, Severity::High)
    );
    store.upsert_detection(&d).unwrap();
    let gone = detect(&key, &desired, None, &ctx(&[])).unwrap();
    store
        .resolve(&key.id(), Utc::now() + Duration::seconds(1))
        .unwrap();
    store.upsert_detection(&gone).unwrap();
    let mut text = serde_json::to_string(&store.history(&key.id()).unwrap()).unwrap();
    for file in ["drift.db", "drift.db-wal"] {
        let bytes = std::fs::read(_dir.path().join(file)).unwrap_or_default();
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    for plain in ["correct-horse", "battery-staple", "tr0ub4dor&3"] {
        assert!(!text.contains(plain), "{plain}");
        assert!(
            !text.contains(&crate::drift::base64::encode(plain.as_bytes())),
            "{plain} (base64)"
        );
    }
}
