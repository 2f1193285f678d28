//! Worker credentials end to end: a ConfigHubRepository whose Secret holds `CONFIGHUB_WORKER_ID` and
//! `CONFIGHUB_WORKER_SECRET`, against a hub whose access tokens expire within seconds. The controller
//! keeps reconciling through many token lifetimes without a failed reconcile; wrong or incomplete
//! credentials are `AuthenticationFailed` naming the Secret's key, apart from "ConfigHub is down", and
//! recover when the Secret is fixed in place.

use std::time::{Duration, Instant};

use confighub_source_controller::api::ConfigHubRepository;
use confighub_source_controller::connection::Connections;
use kube::api::Api;
use serde_json::json;

use crate::support::controller::FULL_CHECKS_OF_EVERYTHING;
use crate::support::*;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const TOKEN_TTL: Duration = Duration::from_secs(3);

fn worker_keys(id: &str, secret: &str) -> serde_json::Value {
    json!({"CONFIGHUB_WORKER_ID": id, "CONFIGHUB_WORKER_SECRET": secret})
}

/// The value of the first metric line starting with `series` (labels included), 0 when absent.
fn metric(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn object_series(metric: &str, ns: &str, name: &str) -> String {
    format!("{metric}{{kind=\"ConfigHubRepository\",name=\"{name}\",namespace=\"{ns}\"}}")
}

fn events_of(ns: &str) -> String {
    control_plane()
        .run_tool("kubectl", &["get", "events", "-n", ns, "-o", "json"])
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_credentials_keep_working_through_many_token_lifetimes() {
    let ctl = controller();
    // No controller restart (which resets the counters read below) while this test measures.
    let _no_restart = FULL_CHECKS_OF_EVERYTHING.lock().await;
    let client = client().await;
    let ns = namespace(&client, "cred-ttl").await;
    let (worker_id, worker_secret) = (
        format!("worker-{}", uuid::Uuid::new_v4().simple()),
        format!("secret-{}", uuid::Uuid::new_v4().simple()),
    );
    let hub = TestHub::start_with(
        vec![(worker_id.clone(), worker_secret.clone())],
        Some(TOKEN_TTL),
    )
    .await;
    let space_id = hub.space("rolling").await;
    hub.put_unit(&space_id, "settings", &config_map("settings", "color-0"))
        .await;
    apply_secret(
        &client,
        &ns,
        "worker",
        worker_keys(&worker_id, &worker_secret),
    )
    .await;
    // The interval (1 s) is a third of the token lifetime (3 s).
    apply_repository(
        &client,
        &ns,
        "rolling",
        json!({"url": hub.url, "space": "rolling", "interval": "1s", "secretRef": {"name": "worker"}}),
    )
    .await;
    let chr = wait_repository(&client, &ns, "rolling", "True", None, READY_TIMEOUT).await;
    let mut revision = chr.status.unwrap().artifact.unwrap().revision;

    let reconciles = object_series("gotk_reconcile_duration_seconds_count", &ns, "rolling");
    let exchanges = "confighub_client_requests_total{operation=\"AuthWorker\",code=\"200\"}";
    let before = ctl.metrics().await;
    let started = Instant::now();
    let repos: Api<ConfigHubRepository> = Api::namespaced(client.clone(), &ns);

    // Edit the unit every second for five token lifetimes; every edit must reach the artifact.
    let mut edits = 0;
    while started.elapsed() < TOKEN_TTL * 5 {
        edits += 1;
        hub.put_unit(
            &space_id,
            "settings",
            &config_map("settings", &format!("color-{edits}")),
        )
        .await;
        revision = wait_for("the edit to reach the artifact", READY_TIMEOUT, || async {
            let chr = repos.get("rolling").await.ok()?;
            let current = chr.status?.artifact?.revision;
            (current != revision).then_some(current)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Proof the checks below ran across the whole span: reconciles kept happening, and several
    // access tokens were issued and used.
    let after = ctl.metrics().await;
    let reconciled = metric(&after, &reconciles) - metric(&before, &reconciles);
    assert!(
        reconciled >= 10.0,
        "{reconciled} reconciles in {:?}",
        started.elapsed()
    );
    let renewed = metric(&after, exchanges) - metric(&before, exchanges);
    assert!(
        renewed >= 3.0,
        "{renewed} token exchanges in five token lifetimes"
    );
    assert!(edits >= 5, "{edits} edits");
    eprintln!(
        "worker credentials: {edits} edits, {reconciled} reconciles, {renewed} token exchanges in {:?} (token lifetime {TOKEN_TTL:?})",
        started.elapsed()
    );

    // …and none of them failed.
    let chr = wait_repository(&client, &ns, "rolling", "True", None, READY_TIMEOUT).await;
    assert!(condition(&chr, "FetchFailed").is_none());
    let failures = format!(
        "confighub_source_reconcile_failures_total{{kind=\"ConfigHubRepository\",name=\"rolling\",namespace=\"{ns}\""
    );
    assert!(
        !after.contains(&failures),
        "no failed reconcile of this repository:\n{}",
        after
            .lines()
            .filter(|l| l.contains("reconcile_failures"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every request the controller made so far is counted by operation; none replaced a whole unit
    // (writes of existing units are merge patches).
    assert!(
        after.contains("confighub_client_requests_total{operation=\"ListUnits\",code=\"200\"}")
    );
    assert!(
        !after.contains("operation=\"UpdateUnit\""),
        "no PUT of a unit"
    );
    let events = events_of(&ns);
    assert!(events.contains("NewArtifact"), "the events were read");
    assert!(
        !events.contains("\"Warning\""),
        "no warning events: {events}"
    );
    let log = ctl.log_text();
    assert!(
        !log.contains(&worker_secret),
        "the worker secret is never logged"
    );
    // Access tokens are JWT-shaped: they all start with the base64url of `{"alg"`.
    assert!(!log.contains("eyJhbGci"), "no access token is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_worker_credentials_are_named_and_recover_when_fixed_in_place() {
    let ctl = controller();
    let client = client().await;
    let ns = namespace(&client, "cred-wrong").await;
    let worker_id = format!("worker-{}", uuid::Uuid::new_v4().simple());
    let right = format!("right-{}", uuid::Uuid::new_v4().simple());
    let wrong = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    let mut hub = TestHub::start_with(vec![(worker_id.clone(), right.clone())], None).await;
    let space_id = hub.space("guarded").await;
    hub.put_unit(&space_id, "settings", &config_map("settings", "blue"))
        .await;

    // What `cub worker install` writes: the secret alone, the ID kept in the Deployment.
    apply_secret(
        &client,
        &ns,
        "worker",
        json!({"CONFIGHUB_WORKER_SECRET": wrong}),
    )
    .await;
    apply_repository(
        &client,
        &ns,
        "guarded",
        json!({"url": hub.url, "space": "guarded", "interval": "2s", "secretRef": {"name": "worker"}}),
    )
    .await;
    let chr = wait_repository(
        &client,
        &ns,
        "guarded",
        "False",
        Some("AuthenticationFailed"),
        READY_TIMEOUT,
    )
    .await;
    let ready = condition(&chr, "Ready").unwrap();
    assert!(
        ready.message.contains("'worker'") && ready.message.contains("'CONFIGHUB_WORKER_ID'"),
        "names the Secret and the missing key: {}",
        ready.message
    );
    assert_eq!(
        condition(&chr, "FetchFailed").unwrap().reason,
        "AuthenticationFailed"
    );

    // Both keys, wrong secret: refused by POST /auth/worker.
    apply_secret(&client, &ns, "worker", worker_keys(&worker_id, &wrong)).await;
    let repos: Api<ConfigHubRepository> = Api::namespaced(client.clone(), &ns);
    let chr = wait_for(
        "the refused secret to be reported",
        READY_TIMEOUT,
        || async {
            let chr = repos.get("guarded").await.ok()?;
            let ready = condition(&chr, "Ready")?;
            (ready.reason == "AuthenticationFailed" && ready.message.contains("401")).then_some(chr)
        },
    )
    .await;
    let message = condition(&chr, "Ready").unwrap().message;
    assert!(
        message.contains("'worker'") && message.contains("CONFIGHUB_WORKER_SECRET"),
        "names the Secret and the key: {message}"
    );
    assert!(
        !message.contains(&wrong) && !message.contains(&right),
        "{message}"
    );

    // Fixed in place: Ready at a following reconcile, nobody touches the repository.
    apply_secret(&client, &ns, "worker", worker_keys(&worker_id, &right)).await;
    let chr = wait_repository(&client, &ns, "guarded", "True", None, READY_TIMEOUT).await;
    assert!(condition(&chr, "FetchFailed").is_none());

    // ConfigHub down is not an authentication problem.
    hub.stop().await;
    let chr = wait_repository(
        &client,
        &ns,
        "guarded",
        "False",
        Some("ConfigHubUnavailable"),
        READY_TIMEOUT,
    )
    .await;
    let message = condition(&chr, "Ready").unwrap().message;
    assert!(
        !message.contains("CONFIGHUB_WORKER") && !message.contains("Secret"),
        "not reported as a credentials problem: {message}"
    );
    // Back up, it has forgotten the token it issued: the controller renews it on the 401 and the
    // reconcile succeeds.
    hub.restart().await;
    wait_repository(&client, &ns, "guarded", "True", None, READY_TIMEOUT).await;

    let events = events_of(&ns);
    assert!(events.contains("AuthenticationFailed") && events.contains("NewArtifact"));
    assert!(!events.contains(&wrong) && !events.contains(&right));
    let status = serde_json::to_string(&repos.get("guarded").await.unwrap()).unwrap();
    assert!(!status.contains(&wrong) && !status.contains(&right));
    let log = ctl.log_text();
    assert!(
        !log.contains(&wrong) && !log.contains(&right),
        "secrets never logged"
    );
}

/// The connection module as another caller (the drift engine) uses it: one call gives the client and
/// the space; callers with the same credentials share the client and its access token; a Secret
/// rotated in place is picked up by the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_serve_any_caller_with_shared_clients_and_rotated_secrets() {
    controller();
    let client = client().await;
    let ns = namespace(&client, "cred-conn").await;
    let worker_id = format!("worker-{}", uuid::Uuid::new_v4().simple());
    let right = format!("right-{}", uuid::Uuid::new_v4().simple());
    let mut hub = TestHub::start_with(vec![(worker_id.clone(), right.clone())], None).await;
    hub.space("shared").await;
    apply_secret(&client, &ns, "worker", worker_keys(&worker_id, &right)).await;
    let chr: ConfigHubRepository = serde_json::from_value(json!({
        "apiVersion": "source.confighub.com/v1beta1", "kind": "ConfigHubRepository",
        "metadata": {"name": "shared", "namespace": ns},
        "spec": {"url": hub.url, "space": "shared", "interval": "1m", "secretRef": {"name": "worker"}}
    }))
    .unwrap();

    let connections = Connections::new(None, 1);
    let first = connections.connect(&client, &chr).await.unwrap();
    assert_eq!(first.space.slug, "shared");
    let second = connections.connect(&client, &chr).await.unwrap();
    second.client.me().await.unwrap();
    let stats = first.client.stats();
    assert_eq!(
        (stats.token_exchanges, stats.requests),
        (1, 3),
        "one exchange, one space lookup and one call, shared by both callers"
    );

    // Rotated in place to a wrong secret: a fresh connection is refused, naming the Secret's key.
    let wrong = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    apply_secret(&client, &ns, "worker", worker_keys(&worker_id, &wrong)).await;
    let err = Connections::new(None, 1)
        .connect(&client, &chr)
        .await
        .unwrap_err();
    assert_eq!(err.reason, "AuthenticationFailed");
    assert!(
        err.message.contains("'worker'") && err.message.contains("CONFIGHUB_WORKER_SECRET"),
        "{}",
        err.message
    );
    assert!(!err.message.contains(&wrong));
    // The long-lived connections pick up the rotation at their next use too (the space is cached,
    // so the refusal comes from the first call).
    let rotated = connections.connect(&client, &chr).await.unwrap();
    assert!(
        rotated
            .client
            .me()
            .await
            .unwrap_err()
            .is_credentials_rejected()
    );
    hub.stop().await;
}
