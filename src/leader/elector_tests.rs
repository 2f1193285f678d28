//! The elector against a mocked API server (kube's `tower-test`) that keeps one Lease with
//! resourceVersion semantics (a write with a stale version is a 409, as the real one answers), on
//! tokio's paused clock: who leads, takeovers after the lease duration, write conflicts, and losing
//! leadership.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

use super::*;

const NS: &str = "flux-system";
const NAME: &str = "chsc-leader";
const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/flux-system/leases";

#[derive(Default)]
struct FakeApi {
    lease: Option<Value>,
    version: u64,
    /// Every request fails with 503, as while the API server is unreachable.
    down: bool,
    /// The next write is refused with 409, as when another candidate wrote first.
    conflict_next: bool,
}

type Shared = Arc<Mutex<FakeApi>>;

fn answer(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code,
           "message": reason})
}

impl FakeApi {
    fn handle(&mut self, method: &str, path: &str, body: &[u8]) -> Response<Body> {
        if self.down {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                &status(503, "ServiceUnavailable"),
            );
        }
        let item = format!("{PATH}/{NAME}");
        match (method, path) {
            ("GET", p) if p == item => match &self.lease {
                Some(lease) => answer(StatusCode::OK, lease),
                None => answer(StatusCode::NOT_FOUND, &status(404, "NotFound")),
            },
            ("POST", PATH) | ("PUT", _) => {
                let mut lease: Value = serde_json::from_slice(body).unwrap();
                let sent = lease["metadata"]["resourceVersion"]
                    .as_str()
                    .map(str::to_string);
                let current = self.lease.as_ref().map(|l| {
                    l["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_string()
                });
                let conflict = std::mem::take(&mut self.conflict_next)
                    || (method == "POST" && current.is_some())
                    || (method == "PUT" && sent != current);
                if conflict {
                    return answer(StatusCode::CONFLICT, &status(409, "Conflict"));
                }
                self.version += 1;
                lease["metadata"]["resourceVersion"] = json!(self.version.to_string());
                self.lease = Some(lease.clone());
                answer(StatusCode::OK, &lease)
            }
            _ => panic!("unexpected request {method} {path}"),
        }
    }

    fn holder(&self) -> Option<String> {
        self.lease.as_ref()?["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
    }
}

/// A candidate `identity` talking to the shared fake API server.
fn candidate(api: &Shared, identity: &str) -> (LeaderElector, Registry) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api = Arc::clone(api);
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().to_string();
            let path = request.uri().path().to_string();
            let body = request
                .into_body()
                .collect_bytes()
                .await
                .unwrap_or_default();
            let response = api.lock().unwrap().handle(&method, &path, &body);
            send.send_response(response);
        }
    });
    let client = kube::Client::new(service, NS);
    let mut registry = Registry::default();
    let metrics = ElectionMetrics::register(&mut registry, NAME);
    let config = ElectionConfig {
        namespace: NS.into(),
        name: NAME.into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
        release_on_cancel: true,
    };
    (LeaderElector::new(client, config, metrics), registry)
}

fn leading(registry: &Registry) -> bool {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
    out.contains(&format!(
        "leader_election_master_status{{name=\"{NAME}\"}} 1"
    ))
}

#[tokio::test(start_paused = true)]
async fn one_candidate_leads_and_the_other_waits_while_it_renews() {
    let api = Shared::default();
    let (mut a, a_metrics) = candidate(&api, "a");
    let (mut b, b_metrics) = candidate(&api, "b");
    a.acquire().await;
    assert!(leading(&a_metrics));
    assert_eq!(api.lock().unwrap().holder().as_deref(), Some("a"));

    // While a renews, b never gets the Lease, however long it tries (the clock runs 60 s here).
    let renewing = tokio::spawn(async move { a.hold().await });
    let waited = tokio::time::timeout(Duration::from_secs(60), b.acquire()).await;
    assert!(waited.is_err(), "b took a Lease a kept renewing");
    assert!(!leading(&b_metrics));
    assert_eq!(api.lock().unwrap().holder().as_deref(), Some("a"));

    // a stops renewing (it died): b takes over once the record has not changed for 15 s.
    renewing.abort();
    let started = Instant::now();
    b.acquire().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(13) && took <= Duration::from_secs(15 + 5),
        "took over after {took:?}"
    );
    assert!(leading(&b_metrics));
    let lease = api.lock().unwrap().lease.clone().unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

#[tokio::test(start_paused = true)]
async fn a_write_conflict_means_someone_else_won() {
    let api = Shared::default();
    let (mut a, _) = candidate(&api, "a");
    api.lock().unwrap().conflict_next = true;
    let outcome = a.try_acquire_or_renew().await.unwrap();
    assert!(outcome.is_err(), "a conflict is not leadership");
    assert!(api.lock().unwrap().lease.is_none());
    assert_eq!(a.try_acquire_or_renew().await.unwrap(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_gives_up_at_the_renew_deadline() {
    let api = Shared::default();
    let (mut a, a_metrics) = candidate(&api, "a");
    a.acquire().await;
    api.lock().unwrap().down = true;
    let started = Instant::now();
    let lost = a.hold().await;
    let took = started.elapsed();
    assert!(
        matches!(lost, LostLeadership::NotRenewed { .. }),
        "{lost:?}"
    );
    // Given up by the deadline (10 s), so before another may take over (15 s).
    assert!(took <= Duration::from_secs(10), "gave up after {took:?}");
    assert!(!leading(&a_metrics));
    let errors = {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &a_metrics).unwrap();
        out
    };
    assert!(
        errors.contains("confighub_leader_election_errors_total{name=\"chsc-leader\"}"),
        "{errors}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_finds_another_holder_has_lost() {
    let api = Shared::default();
    let (mut a, _) = candidate(&api, "a");
    a.acquire().await;
    {
        let mut api = api.lock().unwrap();
        api.version += 1;
        let version = api.version.to_string();
        let lease = api.lease.as_mut().unwrap();
        lease["spec"]["holderIdentity"] = json!("b");
        lease["metadata"]["resourceVersion"] = json!(version);
    }
    let lost = a.hold().await;
    assert!(
        matches!(&lost, LostLeadership::Taken { holder, .. } if holder == "b"),
        "{lost:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn release_clears_the_holder_so_the_next_candidate_leads_at_once() {
    let api = Shared::default();
    let (mut a, _) = candidate(&api, "a");
    let (mut b, _) = candidate(&api, "b");
    a.acquire().await;
    // b has seen a's record: without a release it would wait 15 s.
    assert!(b.try_acquire_or_renew().await.unwrap().is_err());
    a.release().await;
    assert_eq!(api.lock().unwrap().holder(), None);
    let started = Instant::now();
    b.acquire().await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "b waited out the lease: {:?}",
        started.elapsed()
    );
}
