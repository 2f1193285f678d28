//! Tests of [`super`] (store.rs).

use super::*;
use crate::drift::detect::{classify_items, detect, tests::ctx};
use crate::drift::record::DetectionSource;
use crate::drift::types::{DriftItem, ObjectKey};
use chrono::Duration;
use prometheus_client::registry::Registry;
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

/// Where a test's records live: a SQLite file, or a fresh database on the test PostgreSQL server. Every
/// test below that takes a `Fixture` runs on both (see [`on_both_backends`]).
enum Fixture {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Fixture {
    fn sqlite() -> Self {
        Fixture::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres(test: &str) -> Self {
        Fixture::Postgres(crate::test_postgres::database_url(test))
    }

    /// A store on the fixture's database; each call is another connection (another instance).
    fn open(&self) -> RecordStore {
        match self {
            Fixture::Sqlite(dir) => RecordStore::open(&dir.path().join("drift.db")).unwrap(),
            Fixture::Postgres(url) => RecordStore::connect_postgres(url).unwrap(),
        }
    }

    /// Everything the database keeps, as text.
    fn raw_text(&self) -> String {
        match self {
            Fixture::Sqlite(dir) => ["drift.db", "drift.db-wal"]
                .iter()
                .map(|f| {
                    String::from_utf8_lossy(&std::fs::read(dir.path().join(f)).unwrap_or_default())
                        .into_owned()
                })
                .collect(),
            Fixture::Postgres(url) => {
                let mut client = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
                client
                    .query("SELECT t::text FROM drift_records t", &[])
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect()
            }
        }
    }
}

/// One `#[test]` per backend for each named test function.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Fixture::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Fixture::postgres(stringify!($name))) } )*
        }
    };
}

on_both_backends!(
    episode_lifecycle,
    empty_detections_are_refused,
    records_survive_reopening,
    filters_and_statistics,
    a_record_built_from_a_secret_diff_holds_no_secret_value,
    a_fix_unit_claim_is_one_writers_and_keeps_the_first_slug,
    concurrent_instances_start_one_episode_and_grant_one_claim,
);

fn episode_lifecycle(f: Fixture) {
    let store = f.open();
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

fn empty_detections_are_refused(f: Fixture) {
    let store = f.open();
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

fn records_survive_reopening(f: Fixture) {
    {
        let store = f.open();
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
    let store = f.open();
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

fn filters_and_statistics(f: Fixture) {
    let store = f.open();
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

fn a_record_built_from_a_secret_diff_holds_no_secret_value(f: Fixture) {
    let store = f.open();
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
    text.push_str(&f.raw_text());
    for plain in ["correct-horse", "battery-staple", "tr0ub4dor&3"] {
        assert!(!text.contains(plain), "{plain}");
        assert!(
            !text.contains(&crate::drift::base64::encode(plain.as_bytes())),
            "{plain} (base64)"
        );
    }
}

fn a_fix_unit_claim_is_one_writers_and_keeps_the_first_slug(f: Fixture) {
    let (a, b) = (f.open(), f.open());
    let id = "Deployment:default:web";
    let (_, r) = a
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
    assert_eq!(r.episode, 1);
    assert_eq!(
        a.claim_fix_unit(id, 1, "web-a").unwrap(),
        Claim::Granted("web-a".into())
    );
    // Instance b, during a hand-over, cannot write while a is writing.
    assert_eq!(
        b.claim_fix_unit(id, 1, "web-b").unwrap(),
        Claim::HeldElsewhere
    );
    // a's write failed: b may try now, under the slug a claimed first.
    a.release_fix_unit(id, 1).unwrap();
    assert_eq!(
        b.claim_fix_unit(id, 1, "web-b").unwrap(),
        Claim::Granted("web-a".into())
    );
    assert!(b.set_fix_unit(id, "web-a").unwrap());
    assert_eq!(
        a.get(id).unwrap().unwrap().fix_unit.as_deref(),
        Some("web-a")
    );
    // Linked and released: a later rewrite of the episode (its drift changed) goes to the same unit.
    assert_eq!(
        a.claim_fix_unit(id, 1, "other").unwrap(),
        Claim::Granted("web-a".into())
    );
    // a died holding the claim: b takes over once the lease has lapsed.
    let later =
        Utc::now() + Duration::from_std(FIX_UNIT_CLAIM_LEASE).unwrap() + Duration::seconds(1);
    assert_eq!(
        b.claim_fix_unit(id, 1, "web-b").unwrap(),
        Claim::HeldElsewhere
    );
    assert_eq!(
        b.claim_fix_unit_at(id, 1, "web-b", later).unwrap(),
        Claim::Granted("web-a".into())
    );
    // Another episode's or an ended episode's fix unit is not claimed.
    assert_eq!(a.claim_fix_unit(id, 2, "web-2").unwrap(), Claim::Ended);
    assert!(a.resolve(id, t(50)).unwrap());
    assert_eq!(a.claim_fix_unit(id, 1, "web-a").unwrap(), Claim::Ended);
    a.upsert_detection(&det(
        "Deployment",
        "default",
        "web",
        "/spec/replicas",
        1,
        4,
        t(60),
    ))
    .unwrap();
    assert_eq!(
        b.claim_fix_unit(id, 2, "web-2").unwrap(),
        Claim::Granted("web-2".into())
    );
}

/// Eight instances see the same new drift at once: one episode starts, and one of them may write its fix
/// unit.
fn concurrent_instances_start_one_episode_and_grant_one_claim(f: Fixture) {
    let id = "Deployment:default:web";
    let stores: Vec<RecordStore> = (0..8).map(|_| f.open()).collect();
    let barrier = std::sync::Barrier::new(stores.len());
    let (transitions, claims): (Vec<Transition>, Vec<Claim>) = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let (transition, r) = store
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
                    barrier.wait();
                    let claim = store.claim_fix_unit(id, r.episode, "web-1").unwrap();
                    (transition, claim)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).unzip()
    });
    let started = transitions
        .iter()
        .filter(|t| **t == Transition::Started)
        .count();
    assert_eq!(started, 1, "{transitions:?}");
    assert_eq!(stores[0].history(id).unwrap().len(), 1);
    let granted = claims
        .iter()
        .filter(|c| matches!(c, Claim::Granted(_)))
        .count();
    assert_eq!(granted, 1, "{claims:?}");
}

#[test]
fn a_sqlite_database_of_the_first_schema_is_moved_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drift.db");
    {
        // As the first controllers left it: the record tables, no version table, no claim columns.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(super::schema::SQLITE_BASE).unwrap();
        conn.execute_batch("DROP TABLE schema_version").unwrap();
    }
    let store = RecordStore::open(&path).unwrap();
    store
        .upsert_detection(&det("ConfigMap", "a", "b", "/data/k", 1, 2, t(0)))
        .unwrap();
    assert_eq!(
        store.claim_fix_unit("ConfigMap:a:b", 1, "b-fix").unwrap(),
        Claim::Granted("b-fix".into())
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row(
            "SELECT version FROM schema_version WHERE component = 'drift_records'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, super::schema::VERSION);
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drift.db");
    drop(RecordStore::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    let err = RecordStore::open_or_rebuild(&path).err().expect("refused");
    assert!(
        err.to_string()
            .contains("version 99, newer than this controller"),
        "{err}"
    );
    // Not moved aside: it is a newer controller's history, not garbage.
    assert!(path.exists());
}

/// A PostgreSQL server that is silent, gone or down.
#[path = "store_connection_tests.rs"]
mod connection;
