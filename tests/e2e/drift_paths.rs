//! Every way people and programs change objects behind Flux's back, each seen by the controller's watch:
//! the repository's interval is 10 minutes, so after its first full check only a watch event can
//! produce a record (and the record says `source: watch`). Edits are made with the real `kubectl`
//! where a person would use it.

use std::process::Command;
use std::time::Duration;

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::drift_flow::{drifted, has_type, managed_units, record_where, resource};
use crate::support::controller::FULL_CHECKS_OF_EVERYTHING;
use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(60);

fn web() -> String {
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    tier: frontend\n  annotations:\n    team: shop\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n".into()
}

fn settings() -> String {
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: blue\n".into()
}

/// A repository with `web` and `settings`, applied by Flux, fully checked once, with both kinds watched.
/// The guard keeps other tests from making the controller check everything (a restart, an analyze
/// request) until the test ends, so only the watch can see the edit.
async fn watched_app(
    client: &kube::Client,
    prefix: &str,
) -> (TestNamespace, TestHub, tokio::sync::MutexGuard<'static, ()>) {
    let units = [("web", web()), ("settings", settings())];
    let (ns, hub, _) =
        managed_units(client, prefix, &units, json!({"mode": "Report"}), "10m").await;
    let alone = FULL_CHECKS_OF_EVERYTHING.lock().await;
    // The first full check has run (it sets the condition)...
    drifted(client, &ns, "False").await;
    // ...and both kinds' watches have listed and follow changes.
    for (group, kind) in [("apps", "Deployment"), ("", "ConfigMap")] {
        let line = format!("confighub_drift_watching{{group=\"{group}\",kind=\"{kind}\"}} 1");
        wait_for(&format!("the {kind} watch"), TIMEOUT, || async {
            let url = format!("http://{}/metrics", controller().http);
            let text = http_get(&url).await.text().await.ok()?;
            text.contains(&line).then_some(())
        })
        .await;
    }
    (ns, hub, alone)
}

/// Runs the real kubectl as a person would (admin kubeconfig), with extra environment.
fn kubectl(args: &[&str], env: &[(&str, &str)]) {
    let cp = control_plane();
    let out = Command::new(cp.tool("kubectl"))
        .args(args)
        .env("KUBECONFIG", &cp.kubeconfig)
        .envs(env.iter().copied())
        .output()
        .expect("running kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for the object's active record of `drift_type` and checks that the watch found it.
async fn seen_by_watch(id: &str, drift_type: &str) -> Value {
    let record = record_where(id, &format!("an active {drift_type} record"), |r| {
        r["status"] == "active" && has_type(r, drift_type)
    })
    .await;
    assert_eq!(record["source"], "watch", "{record}");
    assert_ne!(record["actor"], "kustomize-controller", "{record}");
    record
}

fn starts_with(record: &Value, prefix: &str) -> bool {
    record["actor"]
        .as_str()
        .is_some_and(|a| a.starts_with(prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_through_the_scale_subresource_is_seen_by_the_watch() {
    let client = client().await;
    let (ns, _hub, _alone) = watched_app(&client, "path-scale").await;
    kubectl(&["scale", "deploy/web", "--replicas=5", "-n", &ns], &[]);
    let record = seen_by_watch(&format!("Deployment:{ns}:web"), "Scaling").await;
    assert!(starts_with(&record, "kubectl"), "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_edit_is_seen_by_the_watch() {
    let client = client().await;
    let (ns, _hub, _alone) = watched_app(&client, "path-edit").await;
    // kubectl edit runs $KUBE_EDITOR on a temporary file, as a person's editor would change it.
    kubectl(
        &["edit", "deploy/web", "-n", &ns],
        &[("KUBE_EDITOR", "sed -i s/nginx:1.27/nginx:1.28/")],
    );
    let record = seen_by_watch(&format!("Deployment:{ns}:web"), "VersionChange").await;
    assert!(starts_with(&record, "kubectl"), "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_kubectl_apply_is_seen_by_the_watch() {
    let client = client().await;
    let (ns, _hub, _alone) = watched_app(&client, "path-csa").await;
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  color: green\n"
    );
    let (ok, _, err) = control_plane().kubectl_apply(&manifest);
    assert!(ok, "kubectl apply: {err}");
    let record = seen_by_watch(&format!("ConfigMap:{ns}:settings"), "ConfigMapChange").await;
    assert!(starts_with(&record, "kubectl"), "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_set_image_is_seen_by_the_watch() {
    let client = client().await;
    let (ns, _hub, _alone) = watched_app(&client, "path-image").await;
    kubectl(
        &["set", "image", "deploy/web", "web=nginx:1.29", "-n", &ns],
        &[],
    );
    let record = seen_by_watch(&format!("Deployment:{ns}:web"), "VersionChange").await;
    assert!(starts_with(&record, "kubectl"), "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_patch_is_seen_by_the_watch() {
    let client = client().await;
    let (ns, _hub, _alone) = watched_app(&client, "path-patch").await;
    kubectl(
        &[
            "patch",
            "configmap",
            "settings",
            "-n",
            &ns,
            "--type",
            "merge",
            "-p",
            r#"{"data":{"color":"red"}}"#,
        ],
        &[],
    );
    let record = seen_by_watch(&format!("ConfigMap:{ns}:settings"), "ConfigMapChange").await;
    assert!(starts_with(&record, "kubectl"), "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_label_and_annotate_of_declared_keys_are_seen_by_the_watch() {
    let client = client().await;
    let (ns, _hub, _alone) = watched_app(&client, "path-label").await;
    let id = format!("Deployment:{ns}:web");
    kubectl(
        &[
            "label",
            "deploy",
            "web",
            "tier=backend",
            "--overwrite",
            "-n",
            &ns,
        ],
        &[],
    );
    let record = seen_by_watch(&id, "LabelChange").await;
    assert!(starts_with(&record, "kubectl"), "{record}");
    kubectl(
        &[
            "annotate",
            "deploy",
            "web",
            "team=ops",
            "--overwrite",
            "-n",
            &ns,
        ],
        &[],
    );
    seen_by_watch(&id, "AnnotationChange").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_by_another_field_manager_is_seen_by_the_watch() {
    let client = client().await;
    let (ns, _hub, _alone) = watched_app(&client, "path-ssa").await;
    let configmaps = resource(&client, &ns, "", "ConfigMap");
    let patch = json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "settings", "namespace": ns}, "data": {"color": "amber"}});
    configmaps
        .patch(
            "settings",
            &PatchParams::apply("platform-team").force(),
            &Patch::Apply(&patch),
        )
        .await
        .expect("server-side apply as another manager");
    let record = seen_by_watch(&format!("ConfigMap:{ns}:settings"), "ConfigMapChange").await;
    assert_eq!(record["actor"], "platform-team");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_by_another_controller_is_seen_by_the_watch() {
    let client = client().await;
    let (ns, _hub, _alone) = watched_app(&client, "path-update").await;
    let configmaps = resource(&client, &ns, "", "ConfigMap");
    // A controller's read-modify-write: GET, change, PUT with its own field manager.
    let mut current = configmaps.get("settings").await.unwrap();
    current.data["data"]["color"] = json!("purple");
    let params = PostParams {
        field_manager: Some("config-operator".into()),
        ..Default::default()
    };
    configmaps
        .replace("settings", &params, &current)
        .await
        .expect("update by another controller");
    let record = seen_by_watch(&format!("ConfigMap:{ns}:settings"), "ConfigMapChange").await;
    assert_eq!(record["actor"], "config-operator");
}
