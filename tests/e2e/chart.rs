//! The Helm chart against the real API server: its objects pass a server-side dry run, and the
//! controller every other test talks to runs as the chart's ServiceAccount, held to the chart's RBAC.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::support::service_account::{NAME, NAMESPACE, helm_template};
use crate::support::*;

/// `kubectl <args> -f -` with `objects` as a List on stdin, as the admin.
fn kubectl_with_objects(args: &[&str], objects: Vec<Value>) -> (bool, String) {
    let cp = control_plane();
    let mut child = Command::new(cp.tool("kubectl"))
        .args(args)
        .args(["-f", "-"])
        .env("KUBECONFIG", &cp.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kubectl");
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn chart_objects_pass_a_server_side_dry_run() {
    let client = client().await;
    let ns = namespace(&client, "chart").await;
    let cp = control_plane();
    // The ServiceMonitor CRD (Prometheus Operator) is not installed here, so that variation is left
    // to tests/packaging.rs.
    for values in [
        &[][..],
        &["--set", "persistence.enabled=false"][..],
        &[
            "--set",
            "networkPolicy.fluxNamespace=flux",
            "--set",
            "rbac.drift.rbacKinds=true",
        ][..],
    ] {
        let objects = helm_template(cp, &ns, values);
        // --force-conflicts: the cluster-scoped objects exist already (applied for the controller);
        // rendered for this namespace, their binding subjects differ.
        let (ok, out) = kubectl_with_objects(
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--force-conflicts",
            ],
            objects,
        );
        assert!(
            ok,
            "server-side dry run of the chart with {values:?} failed:\n{out}"
        );
    }
}

#[tokio::test]
async fn the_controller_runs_as_the_chart_service_account_with_least_privilege() {
    let cp = control_plane();
    let kubeconfig = controller().kubeconfig.clone();
    let kubectl_as_controller = |args: &[&str]| {
        let out = Command::new(cp.tool("kubectl"))
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("running kubectl");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let whoami: Value =
        serde_json::from_str(&kubectl_as_controller(&["auth", "whoami", "-o", "json"])).unwrap();
    assert_eq!(
        whoami["status"]["userInfo"]["username"],
        format!("system:serviceaccount:{NAMESPACE}:{NAME}")
    );
    // What it needs...
    for (verb, resource) in [
        ("watch", "confighubrepositories.source.confighub.com"),
        ("patch", "externalartifacts.source.toolkit.fluxcd.io"),
        ("list", "deployments.apps"),
        ("patch", "configmaps"),
        ("get", "secrets"),
    ] {
        let answer = kubectl_as_controller(&["auth", "can-i", verb, resource, "-A"]);
        assert_eq!(
            answer, "yes",
            "the controller should be allowed to {verb} {resource}"
        );
    }
    // ... and what it must not do: write workloads or Secrets for real, or touch RBAC.
    for (verb, resource) in [
        ("create", "deployments.apps"),
        ("delete", "configmaps"),
        ("update", "secrets"),
        ("list", "pods"),
        ("patch", "clusterroles.rbac.authorization.k8s.io"),
        ("create", "secrets"),
    ] {
        let answer = kubectl_as_controller(&["auth", "can-i", verb, resource, "-A"]);
        assert_eq!(
            answer, "no",
            "the controller should not be allowed to {verb} {resource}"
        );
    }
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n";
const CONFIG_MAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: info\n";

/// Requests of the controller that the API server refused for lack of permission.
/// Refusals in the controller's log, but those of the kind `drift_blind` withholds on purpose.
fn refused_requests() -> Vec<String> {
    controller()
        .log_text()
        .lines()
        .filter(|l| l.contains("forbidden: User") && !l.contains(crate::drift_blind::GROUP))
        .map(|l| l.chars().take(400).collect())
        .collect()
}

/// The drift engine's reads, watches and dry runs under the chart's RBAC. Drift detection degrades
/// rather than fails without a permission (a refused watch or dry run is logged and skipped), so the
/// drift tests alone would pass with the drift reader's rules missing; the controller's log tells.
#[tokio::test]
async fn drift_detection_needs_no_permission_the_chart_does_not_grant() {
    const TIMEOUT: Duration = Duration::from_secs(60);
    let client = client().await;
    controller();
    let ns = namespace(&client, "chart-drift").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("app").await;
    hub.put_unit(&space_id, "web", DEPLOYMENT).await;
    hub.put_unit(&space_id, "settings", CONFIG_MAP).await;
    token_secret(&client, &ns, "confighub", &hub.token).await;
    apply_repository(
        &client,
        &ns,
        "app",
        json!({"url": hub.url, "space": "app", "interval": "5s",
               "secretRef": {"name": "confighub"}, "drift": {"mode": "Report"}}),
    )
    .await;
    wait_repository(&client, &ns, "app", "True", None, TIMEOUT).await;
    apply_kustomization(&client, &ns, "app", "app").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    wait_for("the Deployment to be applied", TIMEOUT, || async {
        deployments.get_opt("web").await.ok().flatten()
    })
    .await;

    // Scaled behind Flux's back, as `kubectl scale` would.
    let scale = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": ns}, "spec": {"replicas": 3}});
    deployments
        .patch(
            "web",
            &PatchParams::apply("kubectl-edit").force(),
            &Patch::Apply(&scale),
        )
        .await
        .expect("scaling the Deployment");
    let url = format!(
        "http://{}/api/v1/drift-records/Deployment:{ns}:web",
        controller().http
    );
    wait_for("the drift record", TIMEOUT, || async {
        (http_get(&url).await.status() == 200).then_some(())
    })
    .await;

    let refused = refused_requests();
    assert!(
        refused.is_empty(),
        "the API server refused {} requests of the controller (RBAC too narrow):\n{}",
        refused.len(),
        refused.join("\n")
    );
}
