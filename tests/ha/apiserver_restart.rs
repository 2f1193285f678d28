//! The controller rides out a kube-apiserver restart without restarting itself: the same process
//! (no exit, no restart) resumes its watches and keeps writing status once the API server is back.

use std::path::PathBuf;
use std::time::Duration;

use confighub_source_controller::api::ExternalArtifact;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::json;

use crate::instances::Instance;
use crate::support::controller::wait_ready;
use crate::support::*;

/// An upper bound, not a measurement: after a restart the watches come back on kube's watcher backoff
/// (up to 30 s between tries), on a machine shared with other tests.
const TIMEOUT: Duration = Duration::from_secs(180);

/// The state folder of this binary's control plane (where hack/dev-cluster.sh keeps its pid and the
/// API server's state).
fn cluster_dir() -> PathBuf {
    control_plane().kubeconfig.parent().unwrap().to_path_buf()
}

/// Asks hack/dev-cluster.sh to stop (SIGUSR1) or start (SIGUSR2) the kube-apiserver, and waits until
/// it says it has.
async fn api_server(signal: libc::c_int, state: &str) {
    let dir = cluster_dir();
    let pid: i32 = std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signals the control plane script this test process started.
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "signalling dev-cluster.sh"
    );
    wait_for(
        &format!("the kube-apiserver to be {state}"),
        Duration::from_secs(180),
        || async {
            let now = std::fs::read_to_string(dir.join("apiserver")).unwrap_or_default();
            (now.trim() == state).then_some(())
        },
    )
    .await;
}

/// The sum of the controller's series that start with `prefix`.
async fn counter(controller: &Instance, prefix: &str) -> u64 {
    let (_, text) = controller
        .get("/metrics")
        .await
        .expect("the controller answers");
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn external_artifact_revision(client: &kube::Client, ns: &str, name: &str) -> Option<String> {
    let ea = Api::<ExternalArtifact>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .ok()??;
    Some(ea.status?.artifact?.revision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_rides_out_a_kube_apiserver_restart() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let client = client().await;
    let ns = namespace(&client, "ha-restart").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("restart").await;
    hub.put_unit(&space_id, "settings", &config_map("settings", "blue"))
        .await;
    token_secret(&client, &ns, "confighub", &hub.token).await;
    let mut controller = Instance::start("restart", &["--watch-namespace".into(), ns.clone()]);
    wait_ready(&controller.http, &controller.log);
    let pid = controller.pid();

    apply_repository(
        &client,
        &ns,
        "restart",
        json!({"url": hub.url, "space": "restart", "interval": "2s", "secretRef": {"name": "confighub"}}),
    )
    .await;
    apply_kustomization(&client, &ns, "restart", "restart").await;
    // kustomize-controller, too, just came through the restart: its first status write after it can
    // fail on its own stale cache ("failed to update status: timed out waiting for the condition",
    // seen in CI), and it retries after `retryInterval`, which defaults to the 10 minute interval. A
    // short one, as Flux users set, so that its retry is not what this test waits for.
    kustomizations(&client, &ns)
        .patch(
            "restart",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"retryInterval": "2s"}})),
        )
        .await
        .expect("setting the Kustomization's retryInterval");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for("the unit to reach the cluster", TIMEOUT, || async {
        (config_map_color(&cms, "settings").await.as_deref() == Some("blue")).then_some(())
    })
    .await;
    let before = external_artifact_revision(&client, &ns, "restart")
        .await
        .expect("the ExternalArtifact has a revision");

    // Stop the API server until the controller has proof of it: a reconcile that failed, and its
    // watch of repositories broken.
    let failures = format!(
        "confighub_source_reconcile_failures_total{{kind=\"ConfigHubRepository\",name=\"restart\",namespace=\"{ns}\","
    );
    let watch_errors = "confighub_source_watch_errors_total ";
    let failed = counter(&controller, &failures).await;
    let broken = counter(&controller, watch_errors).await;
    api_server(libc::SIGUSR1, "stopped").await;
    wait_for(
        "a reconcile to fail while the API server is down",
        TIMEOUT,
        || async { (counter(&controller, &failures).await > failed).then_some(()) },
    )
    .await;
    wait_for(
        "the watch to fail while the API server is down",
        TIMEOUT,
        || async { (counter(&controller, watch_errors).await > broken).then_some(()) },
    )
    .await;
    api_server(libc::SIGUSR2, "running").await;

    // The same process carries on: a hub edit becomes a new ExternalArtifact revision, the repository's
    // status follows it, and kustomize-controller applies it.
    hub.put_unit(&space_id, "settings", &config_map("settings", "green"))
        .await;
    let after = wait_for("a new ExternalArtifact revision", TIMEOUT, || async {
        external_artifact_revision(&client, &ns, "restart")
            .await
            .filter(|r| *r != before)
    })
    .await;
    wait_for("the repository's status to follow", TIMEOUT, || async {
        let chr = wait_repository(&client, &ns, "restart", "True", None, TIMEOUT).await;
        (chr.status?.artifact?.revision == after).then_some(())
    })
    .await;
    wait_for("the edit to reach the cluster", TIMEOUT, || async {
        (config_map_color(&cms, "settings").await.as_deref() == Some("green")).then_some(())
    })
    .await;
    // The watch of repositories resumed: a spec change made now is seen (its generation observed).
    apply_repository(
        &client,
        &ns,
        "restart",
        json!({"url": hub.url, "space": "restart", "interval": "2s", "timeout": "45s",
               "secretRef": {"name": "confighub"}}),
    )
    .await;
    wait_repository(&client, &ns, "restart", "True", None, TIMEOUT).await;
    assert!(
        controller.running() && controller.pid() == pid,
        "the controller did not exit or restart; log:\n{}",
        controller.log_text()
    );
}
