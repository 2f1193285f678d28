//! Two controller processes with `--leader-elect` on one Lease (the chart's Lease RBAC, as the chart's
//! ServiceAccount) and one PostgreSQL drift database: exactly one leads and records a drift with its
//! fix unit; SIGKILL it, and the other takes over within 15 s (the bound), keeps that one
//! record and fix unit (none duplicated) and carries a hub edit through kustomize-controller into the
//! cluster.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::json;

use crate::instances::Instance;
use crate::support::postgres::database_url;
use crate::support::service_account::{NAMESPACE, helm_template};
use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(60);
/// The bound for a takeover after the leader dies.
const TAKEOVER: Duration = Duration::from_secs(15);

/// The leader election flags of the chart's Deployment (so the test proves the binary takes them),
/// timed so a takeover fits the bound (a candidate takes over 5 s after it last saw the Lease renewed,
/// trying every 1-2.2 s), plus what only an out-of-cluster process needs: the Lease's namespace (a pod
/// uses its own), and a Lease name of this test's.
fn election_flags(lease: &str, ns: &str, drift_db: &str) -> Vec<String> {
    let rendered = helm_template(
        control_plane(),
        NAMESPACE,
        &[
            "--set",
            "leaderElection.leaseDuration=5s",
            "--set",
            "leaderElection.renewDeadline=3s",
            "--set",
            "leaderElection.retryPeriod=1s",
        ],
    );
    let deployment = rendered
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("the chart's Deployment");
    let mut flags: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .filter(|a| {
            a.starts_with("--enable-leader-election") || a.starts_with("--leader-election-")
        })
        // The test's own Lease name replaces the chart's.
        .filter(|a| !a.starts_with("--leader-election-id="))
        .map(str::to_string)
        .collect();
    assert_eq!(
        flags.len(),
        5,
        "the chart passes the election flags: {flags:?}"
    );
    flags.extend(
        [
            "--leader-election-namespace",
            NAMESPACE,
            "--leader-election-id",
            lease,
            "--watch-namespace",
            ns,
            "--drift-db",
            drift_db,
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    flags
}

/// Waits until exactly one of `instances` reports itself leader (and every other one follower); returns
/// the leader's index.
async fn one_leader(instances: &[&Instance], lease: &str, timeout: Duration) -> usize {
    wait_for("exactly one leader", timeout, || async {
        let mut statuses = Vec::new();
        for instance in instances {
            statuses.push(instance.leader_status(lease).await?);
        }
        let leaders: Vec<usize> = (0..statuses.len()).filter(|&i| statuses[i] == 1).collect();
        let followers = statuses.iter().filter(|&&s| s == 0).count();
        (leaders.len() == 1 && followers == statuses.len() - 1).then(|| leaders[0])
    })
    .await
}

/// The episode of the active record `id` on `instance`, once it has one.
async fn record_episode(instance: &Instance, id: &str) -> u64 {
    wait_for(&format!("an active record {id}"), TIMEOUT, || async {
        let (code, body) = instance.get(&format!("/api/v1/drift-records/{id}")).await?;
        let record: serde_json::Value = serde_json::from_str(&body).ok()?;
        (code == 200 && record["status"] == "active")
            .then(|| record["episode"].as_u64())
            .flatten()
    })
    .await
}

/// How many units of the fix space propose a fix of unit `settings`.
async fn fix_units(hub: &confighub_source_controller::confighub::Client) -> usize {
    let Ok(Some(space)) = hub.find_space_by_slug("ha-drift-fixes").await else {
        return 0;
    };
    hub.list_units(&space.space_id, None, &[])
        .await
        .map(|units| {
            units
                .iter()
                .filter(|u| u.labels.get("DriftOriginUnit").map(String::as_str) == Some("settings"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_takes_over_when_the_leader_is_killed() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let client = client().await;
    let ns = namespace(&client, "ha-leader").await;
    let lease = format!("chsc-e2e-{}", &ns);
    let hub = TestHub::start().await;
    let space_id = hub.space("ha").await;
    hub.put_unit(&space_id, "settings", &config_map("settings", "blue"))
        .await;
    token_secret(&client, &ns, "confighub", &hub.token).await;

    let drift_db = database_url("ha_leader");
    let flags = election_flags(&lease, &ns, &drift_db);
    let mut instances = [Instance::start("a", &flags), Instance::start("b", &flags)];
    let leader = one_leader(&[&instances[0], &instances[1]], &lease, TIMEOUT).await;
    let follower = 1 - leader;

    // The follower says it is not ready (a Service routes to the leader) and serves no artifacts.
    let (code, body) = instances[follower].get("/readyz").await.unwrap();
    assert_eq!(code, 503, "a follower is not ready: {body}");
    let (code, _) = instances[follower].get_artifact("/anything").await.unwrap();
    assert_eq!(code, 503, "a follower's artifact server refuses");
    let (code, _) = instances[leader].get("/readyz").await.unwrap();
    assert_eq!(code, 200, "the leader is ready");

    // The leader delivers the space.
    apply_repository(
        &client,
        &ns,
        "ha",
        json!({"url": hub.url, "space": "ha", "interval": "2s", "secretRef": {"name": "confighub"},
               "drift": {"mode": "Propose"}}),
    )
    .await;
    apply_kustomization(&client, &ns, "ha", "ha").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for("the unit to reach the cluster", TIMEOUT, || async {
        (config_map_color(&cms, "settings").await.as_deref() == Some("blue")).then_some(())
    })
    .await;
    // Only the leader reconciles: it exports the reconcile histogram of the repository (it has just
    // delivered it), the follower does not.
    let series = format!(
        "gotk_reconcile_duration_seconds_count{{kind=\"ConfigHubRepository\",name=\"ha\",namespace=\"{ns}\"}}"
    );
    let (_, metrics) = instances[leader].get("/metrics").await.unwrap();
    assert!(metrics.contains(&series), "the leader reconciled: {series}");
    let (_, metrics) = instances[follower].get("/metrics").await.unwrap();
    assert!(
        !metrics.contains(&series),
        "the follower reconciled nothing"
    );

    // Drift behind Flux's back: the leader records it and proposes one fix unit.
    let edited = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": &*ns}, "data": {"color": "red"}});
    cms.patch(
        "settings",
        &kube::api::PatchParams::apply("e2e-editor").force(),
        &kube::api::Patch::Apply(&edited),
    )
    .await
    .unwrap();
    let id = format!("ConfigMap:{ns}:settings");
    let episode = record_episode(&instances[leader], &id).await;
    let fixes = hub.client();
    wait_for("the leader's fix unit", TIMEOUT, || async {
        (fix_units(&fixes).await == 1).then_some(())
    })
    .await;

    // SIGKILL the leader: no release of the Lease; the follower must wait it out, within the bound.
    instances[leader].kill();
    let killed = Instant::now();
    wait_for("the follower to take over", TAKEOVER, || async {
        (instances[follower].leader_status(&lease).await == Some(1)).then_some(())
    })
    .await;
    let took = killed.elapsed();
    assert!(took <= TAKEOVER, "took over after {took:?}");
    eprintln!("takeover after SIGKILL of the leader: {took:?} (lease 5 s, retry 1 s)");
    let (code, _) = instances[follower].get("/readyz").await.unwrap();
    assert_eq!(code, 200, "the new leader is ready");
    // The new leader judged every object again (a full pass after taking over), found the same drift
    // in the shared database, and wrote no second record or fix unit.
    let passes = |metrics: String| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("confighub_drift_passes_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    wait_for("a full drift pass of the new leader", TIMEOUT, || async {
        let (_, metrics) = instances[follower].get("/metrics").await?;
        (passes(metrics) > 0).then_some(())
    })
    .await;
    assert_eq!(
        record_episode(&instances[follower], &id).await,
        episode,
        "the same episode, not a new record"
    );
    assert_eq!(fix_units(&fixes).await, 1, "no second fix unit");
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let spec = leases.get(&lease).await.unwrap().spec.unwrap();
    assert_eq!(
        spec.lease_transitions,
        Some(1),
        "one change of holder: {spec:?}"
    );

    // A unit edited in the hub afterwards reaches the cluster through kustomize-controller.
    hub.put_unit(&space_id, "settings", &config_map("settings", "green"))
        .await;
    wait_for("the edit to reach the cluster", TIMEOUT, || async {
        (config_map_color(&cms, "settings").await.as_deref() == Some("green")).then_some(())
    })
    .await;
    let chr = wait_repository(&client, &ns, "ha", "True", None, TIMEOUT).await;
    let url = chr.status.unwrap().artifact.unwrap().url;
    assert!(
        url.contains(&instances[follower].storage_addr),
        "the new leader serves the artifact: {url}"
    );

    // SIGTERM the leader: it steps down (--leader-election-release-on-cancel, on in the chart), so the
    // Lease no longer names it once it has exited, and a third instance takes over without waiting out
    // the lease.
    let third = Instance::start("c", &flags);
    wait_for("the third instance to follow", TIMEOUT, || async {
        (third.leader_status(&lease).await == Some(0)).then_some(())
    })
    .await;
    let holder = leases
        .get(&lease)
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity;
    assert!(holder.is_some(), "the leader holds the Lease");
    let status = instances[follower].terminate().await;
    assert!(status.success(), "a clean shutdown: {status:?}");
    let after = leases
        .get(&lease)
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity;
    assert_ne!(after, holder, "the leader released the Lease on SIGTERM");
    wait_for("the third instance to lead", TIMEOUT, || async {
        (third.leader_status(&lease).await == Some(1)).then_some(())
    })
    .await;
}
