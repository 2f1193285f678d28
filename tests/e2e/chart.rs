//! The Helm chart against the real API server: its objects pass a server-side dry run, and the
//! controller every other test talks to runs as the chart's ServiceAccount, held to the chart's RBAC.

use std::io::Write;
use std::process::{Command, Stdio};

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
