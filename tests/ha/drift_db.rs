//! Drift state in a PostgreSQL database the instances share (`--drift-db` / `DRIFT_DB`): a record and its
//! fix unit outlive the controller that wrote them (killed, its storage gone), and two controllers working
//! at once (a leader hand-over) write one record and one fix unit per episode.

use std::time::Duration;

use confighub_source_controller::confighub::{Client, Unit};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::own_controller::{OwnController, own_controller};
use crate::support::postgres::{PASSWORD, database_url};
use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(90);
const FIX_SPACE: &str = "shop-drift-fixes";

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: {name}\n        image: nginx:1.27\n"
    )
}

fn deployments(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("apps", "v1", "Deployment");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

/// Scales a Deployment behind Flux's back, as `kubectl scale` would.
async fn scale(api: &Api<DynamicObject>, ns: &str, name: &str, replicas: i64) {
    let patch = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns}, "spec": {"replicas": replicas}});
    api.patch(
        name,
        &PatchParams::apply("e2e-scaler").force(),
        &Patch::Apply(&patch),
    )
    .await
    .expect("scaling behind Flux's back");
}

/// The units of the fix space that propose a fix of origin unit `origin`.
async fn fix_units(hub: &Client, origin: &str) -> Vec<Unit> {
    let Ok(Some(space)) = hub.find_space_by_slug(FIX_SPACE).await else {
        return Vec::new();
    };
    hub.list_units(&space.space_id, None, &[])
        .await
        .expect("listing the fix space")
        .into_iter()
        .filter(|u| u.labels.get("DriftOriginUnit").map(String::as_str) == Some(origin))
        .collect()
}

/// Waits until `controller` has the record `id` matching `pred`, and returns it.
async fn record(
    controller: &OwnController,
    id: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/api/v1/drift-records/{id}");
    wait_for(
        &format!("{what} ({})", controller.name),
        TIMEOUT,
        || async {
            let (status, body) = controller.get(&path).await;
            (status == 200 && pred(&body)).then_some(body)
        },
    )
    .await
}

/// `confighub_drift_passes_total` of `controller`: each is a full comparison of one Kustomization.
async fn passes(controller: &OwnController) -> u64 {
    controller
        .metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("confighub_drift_passes_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until `controller` completed a full comparison after now (so it judged every object again).
async fn a_full_pass(controller: &OwnController) {
    let before = passes(controller).await;
    wait_for(
        &format!("a full drift pass of {}", controller.name),
        TIMEOUT,
        || async { (passes(controller).await > before).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_records_and_fix_units_outlive_the_controller_that_wrote_them() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let client = client().await;
    let ns = namespace(&client, "drift-db").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("shop").await;
    for name in ["web", "api"] {
        hub.put_unit(&space_id, name, &deployment(name)).await;
    }
    token_secret(&client, &ns, "confighub", &hub.token).await;
    let url = database_url("drift_db_e2e");
    let watch = ["--watch-namespace", ns.as_str()];

    // Controller a takes the URL from the environment, as the chart passes it from a Secret.
    let mut a = own_controller("drift-db-a", &watch, &[("DRIFT_DB", url.as_str())]);
    apply_repository(
        &client,
        &ns,
        "shop",
        json!({"url": hub.url, "space": "shop", "interval": "5s", "secretRef": {"name": "confighub"},
               "drift": {"mode": "Propose"}}),
    )
    .await;
    wait_repository(&client, &ns, "shop", "True", None, TIMEOUT).await;
    apply_kustomization(&client, &ns, "shop", "shop").await;
    let api = deployments(&client, &ns);
    wait_for("both Deployments to be applied", TIMEOUT, || async {
        let web = api.get_opt("web").await.ok().flatten();
        let other = api.get_opt("api").await.ok().flatten();
        (web.is_some() && other.is_some()).then_some(())
    })
    .await;

    // Drift under a: a record, and its fix unit in ConfigHub.
    let web = format!("Deployment:{ns}:web");
    scale(&api, &ns, "web", 3).await;
    let written = record(&a, &web, "web's record with its fix unit", |r| {
        r["fix_unit"].is_string()
    })
    .await;
    let slug = written["fix_unit"].as_str().unwrap().to_string();
    assert_eq!(
        (written["episode"].clone(), written["status"].clone()),
        (json!(1), json!("active"))
    );
    let hub_client = hub.client();
    let units = wait_for("web's fix unit in the hub", TIMEOUT, || async {
        let units = fix_units(&hub_client, "web").await;
        (!units.is_empty()).then_some(units)
    })
    .await;
    assert_eq!(
        units.iter().map(|u| u.slug.as_str()).collect::<Vec<_>>(),
        vec![slug.as_str()]
    );
    let log = a.log_text();
    assert!(
        !log.contains(PASSWORD),
        "the database password reached the log"
    );
    assert!(
        log.contains("postgres://postgres:REDACTED@127.0.0.1"),
        "the log names the database, redacted"
    );

    // a's node is lost. b starts with empty storage and the same database (from the flag).
    a.kill();
    let mut b = own_controller(
        "drift-db-b",
        &[watch[0], watch[1], "--drift-db", url.as_str()],
        &[],
    );
    let (status, seen) = b.get(&format!("/api/v1/drift-records/{web}")).await;
    assert_eq!(
        status, 200,
        "b knows the record before it compared anything: {seen}"
    );
    assert_eq!(
        (seen["episode"].clone(), seen["fix_unit"].clone()),
        (json!(1), json!(slug))
    );
    // Once b has compared the drifted Deployment itself: the same episode, and no second fix unit.
    a_full_pass(&b).await;
    let (_, history) = b
        .get(&format!("/api/v1/drift-records?namespace={ns}"))
        .await;
    let episodes: Vec<&Value> = history["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["id"] == json!(web))
        .collect();
    assert_eq!(episodes.len(), 1, "one record for web: {history}");
    assert_eq!(episodes[0]["status"], "active");
    assert_eq!(
        fix_units(&hub_client, "web").await.len(),
        1,
        "no second fix unit for web"
    );
    assert!(
        !b.metrics()
            .await
            .contains(r#"confighub_drift_fix_units_total{result="written"}"#),
        "b wrote no fix unit"
    );

    // A hand-over with two writers: a comes back (empty storage again) while b still runs; new drift is
    // seen by both, and recorded and proposed once.
    let a2 = own_controller("drift-db-a2", &watch, &[("DRIFT_DB", url.as_str())]);
    a_full_pass(&a2).await; // a2's watches are up
    let other = format!("Deployment:{ns}:api");
    scale(&api, &ns, "api", 4).await;
    let proposed = record(&b, &other, "api's record with its fix unit", |r| {
        r["fix_unit"].is_string()
    })
    .await;
    // Both have judged the drifted object since.
    a_full_pass(&a2).await;
    a_full_pass(&b).await;
    let units = fix_units(&hub_client, "api").await;
    assert_eq!(
        units.iter().map(|u| u.slug.as_str()).collect::<Vec<_>>(),
        vec![proposed["fix_unit"].as_str().unwrap()],
        "one fix unit for api's episode"
    );
    for c in [&a2, &b] {
        let (_, all) = c
            .get(&format!("/api/v1/drift-records?namespace={ns}"))
            .await;
        let ids: Vec<&str> = all["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["id"].as_str())
            .collect();
        assert_eq!(
            ids.iter().filter(|i| **i == other).count(),
            1,
            "{}: {all}",
            c.name
        );
        assert_eq!(
            ids.iter().filter(|i| **i == web).count(),
            1,
            "{}: {all}",
            c.name
        );
    }
    assert_eq!(fix_units(&hub_client, "web").await.len(), 1);
    let exit = b.stop();
    assert!(
        exit.success(),
        "b stops cleanly on SIGTERM: {exit}\n{}",
        b.log_text()
    );
}

/// Forwards connections from a loopback port to the test PostgreSQL server while running: the database
/// "comes back" when it starts.
async fn forward(listener: tokio::net::TcpListener, to: u16) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

fn metric(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_whose_database_is_down_serves_says_so_and_recovers() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let client = client().await;
    let ns = namespace(&client, "drift-db-down").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("shop").await;
    hub.put_unit(&space_id, "web", &deployment("web")).await;
    token_secret(&client, &ns, "confighub", &hub.token).await;
    let real = crate::support::postgres::server().port;
    let db = database_url("drift_db_down");
    // The database's address, with nothing listening yet: the server is "down".
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = db.replace(&format!(":{real}/"), &format!(":{port}/"));

    let mut c = own_controller(
        "drift-db-down",
        &["--watch-namespace", ns.as_str(), "--drift-db", url.as_str()],
        &[],
    );
    // Up and serving, and saying the record store is away.
    let (status, body) = c.get("/api/v1/drift-records").await;
    assert_eq!(status, 503, "{body}");
    let up = r#"confighub_drift_store_up{backend="postgres"}"#;
    assert_eq!(metric(&c.metrics().await, up).as_deref(), Some("0"));
    apply_repository(
        &client,
        &ns,
        "shop",
        json!({"url": hub.url, "space": "shop", "interval": "5s", "secretRef": {"name": "confighub"},
               "drift": {"mode": "Report"}}),
    )
    .await;
    // Sources do not need the record store: the artifact is served and applied.
    wait_repository(&client, &ns, "shop", "True", None, TIMEOUT).await;
    apply_kustomization(&client, &ns, "shop", "shop").await;
    let repos: Api<confighub_source_controller::api::ConfigHubRepository> =
        Api::namespaced(client.clone(), &ns);
    let unknown = wait_for(
        "Drifted=Unknown (RecordStoreUnavailable)",
        TIMEOUT,
        || async {
            let chr = repos.get("shop").await.ok()?;
            condition(&chr, "Drifted")
                .filter(|c| c.status == "Unknown" && c.reason == "RecordStoreUnavailable")
        },
    )
    .await;
    assert!(!unknown.message.contains(PASSWORD), "{}", unknown.message);
    let warnings = c
        .log_text()
        .matches("the record database cannot be reached")
        .count();
    assert_eq!(warnings, 1, "said once, not per call");
    assert!(!c.log_text().contains(PASSWORD));

    // The database comes back: the controller reconnects (backoff at most 30 s) and works again.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the database's port");
    let forwarder = tokio::spawn(forward(listener, real));
    let api = deployments(&client, &ns);
    wait_for("the Deployment to be applied", TIMEOUT, || async {
        api.get_opt("web").await.ok().flatten()
    })
    .await;
    scale(&api, &ns, "web", 3).await;
    let id = format!("Deployment:{ns}:web");
    record(&c, &id, "the record, once the database is back", |r| {
        r["status"] == "active"
    })
    .await;
    assert_eq!(metric(&c.metrics().await, up).as_deref(), Some("1"));
    assert!(
        c.log_text()
            .contains("the record database is reachable again")
    );
    wait_for("Drifted=True", TIMEOUT, || async {
        let chr = repos.get("shop").await.ok()?;
        condition(&chr, "Drifted").filter(|c| c.status == "True")
    })
    .await;
    let exit = c.stop();
    assert!(
        exit.success(),
        "stops cleanly on SIGTERM: {exit}\n{}",
        c.log_text()
    );
    forwarder.abort();
}
