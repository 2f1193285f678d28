//! Tests of the store when its PostgreSQL server is silent, ends connections or is down.

use super::*;

#[test]
fn between_connection_attempts_calls_fail_at_once() {
    // A server that takes connections and never answers: an attempt waits out connect_timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    silent.set_nonblocking(true).unwrap();
    let port = silent.local_addr().unwrap().port();
    let attempts = || std::iter::from_fn(|| silent.accept().ok()).count();
    let store = RecordStore::connect_postgres(&format!(
        "postgres://u:p@127.0.0.1:{port}/drift?connect_timeout=1"
    ))
    .unwrap();
    assert!(store.active_count().unwrap_err().is_unavailable());
    assert_eq!(attempts(), 1);
    // Within the backoff (1 s after the first failure, doubling) no new attempt is made.
    assert!(store.get("x").unwrap_err().is_unavailable());
    assert!(
        store
            .list(&RecordFilter::default())
            .unwrap_err()
            .is_unavailable()
    );
    assert_eq!(attempts(), 0);
}

#[test]
fn a_lost_postgres_connection_is_replaced_on_the_next_call() {
    let f = Fixture::postgres("lost_connection");
    let Fixture::Postgres(url) = &f else {
        unreachable!()
    };
    let store = f.open();
    store
        .upsert_detection(&det("ConfigMap", "a", "b", "/data/k", 1, 2, t(0)))
        .unwrap();
    // The server ends every other connection to the database (as a restart or failover would).
    let mut admin = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
    let ended: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(ended, 1, "the store's connection was ended");
    assert!(store.get("ConfigMap:a:b").unwrap().is_some());
    assert!(store.is_available());
}

#[test]
fn a_postgres_server_that_is_down_makes_the_store_unavailable_not_the_process() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = RecordStore::connect_postgres(&format!(
        "postgres://{}:{}@127.0.0.1:{port}/drift",
        crate::test_postgres::USER,
        crate::test_postgres::PASSWORD
    ))
    .unwrap();
    let mut registry = Registry::default();
    store.register_metrics(&mut registry);
    let err = store.active_count().unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(
        !err.to_string().contains(crate::test_postgres::PASSWORD),
        "{err}"
    );
    assert!(!store.is_available());
    let again = store.get("x").unwrap_err();
    assert_eq!(
        again.to_string(),
        err.to_string(),
        "the same words every time"
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"confighub_drift_store_up{backend="postgres"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"confighub_drift_store_errors_total{backend="postgres"} 2"#),
        "{text}"
    );
}
