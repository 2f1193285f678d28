//! The client against the hub's fault mode (`hub --fault-rate`), one fault kind at a time: each ends in
//! the error class the controller turns into a condition, retries what may succeed on a second try
//! (honouring `Retry-After`), and recovers as soon as faults stop.

use std::time::{Duration, Instant};

use confighub_source_controller::confighub::{Client, ClientOptions, DataDownload, Error};
use confighub_source_controller::hub::faults::{FaultKind, FaultReport, FaultUpdate};
use confighub_source_controller::hub::{self, Hub, HubConfig};

use crate::support::TOKEN;

struct Faulty {
    hub: Hub,
    origin: String,
    _dir: tempfile::TempDir,
}

async fn faulty() -> Faulty {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(HubConfig::new(dir.path().to_path_buf(), vec![TOKEN.into()])).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(hub::serve(listener, hub.clone(), std::future::pending()));
    Faulty {
        hub,
        origin,
        _dir: dir,
    }
}

impl Faulty {
    fn client(&self, timeout: Duration) -> Client {
        let options = ClientOptions {
            timeout,
            max_retries: 2,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..ClientOptions::default()
        };
        Client::new(&self.origin, Some(TOKEN.into()), options).unwrap()
    }

    fn only(&self, kind: FaultKind, rate: f64) {
        self.hub
            .set_faults(FaultUpdate {
                rate: Some(rate),
                seed: Some(1),
                kinds: Some(vec![kind]),
                delay_ms: Some(600_000),
                retry_after: Some(1),
            })
            .unwrap();
    }

    async fn report(&self) -> FaultReport {
        reqwest::Client::new()
            .get(format!("{}/admin/faults", self.origin))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A space with one unit, made before any fault is on; returns (space id, unit id).
async fn seed(f: &Faulty) -> (String, String) {
    let c = f.client(Duration::from_secs(20));
    let space = c
        .create_space(
            &confighub_source_controller::confighub::SpaceCreate {
                slug: "faults".into(),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    let unit = c
        .create_unit(
            &space.space_id,
            &confighub_source_controller::confighub::UnitCreate {
                slug: "web".into(),
                toolchain_type: "Kubernetes/YAML".into(),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    c.upload_unit_data(
        &space.space_id,
        &unit.unit_id,
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: \"1\"\n".to_vec(),
        None,
        None,
    )
    .await
    .unwrap();
    (space.space_id, unit.unit_id)
}

/// A fault, the attempts the client makes with `max_retries` 2, and what it must end in.
type Case = (FaultKind, u64, fn(&Error) -> bool);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_in_its_error_class_after_the_retries_it_deserves() {
    let f = faulty().await;
    let (space_id, unit_id) = seed(&f).await;
    let c = f.client(Duration::from_secs(20));
    let mut seen = f.report().await.requests;
    let cases: [Case; 5] = [
        (FaultKind::ServerError, 3, |e| {
            e.status() == Some(500) && e.is_transient()
        }),
        (FaultKind::Throttled, 3, |e| {
            e.status() == Some(429) && e.is_transient()
        }),
        (FaultKind::Reset, 3, |e| {
            matches!(e, Error::Transport { .. })
        }),
        (FaultKind::Truncated, 3, |e| {
            matches!(e, Error::Transport { .. })
        }),
        // A 200 that is not JSON (a proxy mangling it) is retried like a 5xx, then named.
        (FaultKind::Garbage, 3, |e| matches!(e, Error::Decode { .. })),
    ];
    for (kind, attempts, expected) in cases {
        f.only(kind, 1.0);
        let started = Instant::now();
        let err = c.list_units(&space_id, None, &[]).await.unwrap_err();
        assert!(expected(&err), "{kind:?}: {err:?}");
        let report = f.report().await;
        seen += attempts;
        assert_eq!(report.requests, seen, "{kind:?}");
        assert_eq!(report.faults[kind.name()], attempts, "{kind:?}");
        if kind == FaultKind::Throttled {
            // Backoff alone is at most 50 ms a retry here: two waits of Retry-After: 1 took ≥ 2 s.
            assert!(
                started.elapsed() >= Duration::from_secs(2),
                "{:?}",
                started.elapsed()
            );
        }
    }
    // A truncated data download is an error, never short data.
    f.only(FaultKind::Truncated, 1.0);
    let err = c
        .download_unit_data(&space_id, &unit_id, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    // A garbage data download keeps its ETag: the bytes do not hash to it (the caller checks).
    f.only(FaultKind::Garbage, 1.0);
    match c
        .download_unit_data(&space_id, &unit_id, None)
        .await
        .unwrap()
    {
        DataDownload::Data { bytes, etag } => {
            let hash = confighub_source_controller::source::cache::data_hash(&bytes);
            assert_ne!(Some(hash), etag);
        }
        other => panic!("{other:?}"),
    }
    f.only(FaultKind::Garbage, 0.0);
    assert_eq!(c.list_units(&space_id, None, &[]).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_times_out_and_turning_faults_off_releases_the_held_ones() {
    let f = faulty().await;
    let (space_id, _) = seed(&f).await;
    f.only(FaultKind::Slow, 1.0);
    let err = f
        .client(Duration::from_millis(300))
        .list_units(&space_id, None, &[])
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(f.report().await.faults["slow"], 3);

    // A call held back (for 600 s) is answered once faults are turned off, well within its 20 s.
    let c = f.client(Duration::from_secs(20));
    let held = tokio::spawn(async move { c.list_units(&space_id, None, &[]).await });
    while f.report().await.faults["slow"] < 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.only(FaultKind::Slow, 0.0);
    assert_eq!(held.await.unwrap().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_needs_the_token_and_refuses_bad_settings() {
    let f = faulty().await;
    let http = reqwest::Client::new();
    let url = format!("{}/admin/faults", f.origin);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let put = |body: serde_json::Value| http.put(&url).bearer_auth(TOKEN).json(&body).send();
    assert_eq!(
        put(serde_json::json!({"rate": 2})).await.unwrap().status(),
        400
    );
    assert_eq!(
        put(serde_json::json!({"kinds": []}))
            .await
            .unwrap()
            .status(),
        400
    );
    let ok = put(serde_json::json!({"rate": 0.25, "seed": 9, "kinds": ["reset", "slow"]}))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let report: FaultReport = ok.json().await.unwrap();
    assert_eq!((report.rate, report.seed), (0.25, 9));
    assert_eq!(report.kinds, vec![FaultKind::Reset, FaultKind::Slow]);
    // Requests to /admin/ and those marked exempt are never faulted, nor counted.
    put(serde_json::json!({"rate": 1, "kinds": ["server_error"]}))
        .await
        .unwrap();
    let exempt = http
        .get(format!("{}/api/space", f.origin))
        .bearer_auth(TOKEN)
        .header(hub::faults::EXEMPT_HEADER, "1")
        .send()
        .await
        .unwrap();
    assert_eq!(exempt.status(), 200);
    assert_eq!(f.report().await.requests, 0);
}
