//! `confighub-source-controller trace` against the real control plane: a chain delivered by the controller
//! and kustomize-controller (healthy, drifted, stale, broken, orphaned), objects made by hand, a Helm
//! release, and Argo CD Applications on Argo CD's real CRD. Text and JSON output are both checked, and the
//! exit code (0 ok, 2 broken, 3 warnings).

mod bench;
mod chain;
mod owners;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the real binary's `trace` against the test cluster; returns (exit code, stdout, stderr).
async fn trace(args: &[&str]) -> (i32, String, String) {
    // TRACE_BIN: another build of the binary (the benchmark uses a release build).
    let bin = std::env::var("TRACE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_confighub-source-controller").to_string());
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("trace")
        .args(args)
        .arg("--kubeconfig")
        .arg(&control_plane().kubeconfig)
        .env_remove("CONFIGHUB_TOKEN")
        .env_remove("CONFIGHUB_URL")
        .env_remove("KUBECONFIG");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("running trace"))
        .await
        .unwrap();
    let (code, stdout, stderr) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    // Shown with --nocapture (and on failure): what a user would see.
    if !args.contains(&"json") && stdout.len() < 20_000 {
        println!("$ trace {} (exit {code})\n{stdout}{stderr}", args.join(" "));
    }
    (code, stdout, stderr)
}

/// `trace ... -o json`, parsed; returns (exit code, trace).
async fn trace_json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (code, out, err) = trace(&all).await;
    let v = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!("trace -o json printed no JSON ({e}); stdout:\n{out}\nstderr:\n{err}")
    });
    (code, v)
}

/// The string `field` of every element of the array `t[list]`.
fn strings(t: &Value, list: &str, field: &str) -> Vec<String> {
    t[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[field].as_str().unwrap().to_string())
        .collect()
}

fn kinds(t: &Value) -> Vec<String> {
    strings(t, "levels", "kind")
}

fn marks(t: &Value) -> Vec<String> {
    strings(t, "levels", "mark")
}

fn finding_types(t: &Value) -> Vec<String> {
    strings(t, "findings", "type")
}

/// Merge-patches `spec` of the Kustomization `name`.
async fn merge_spec(ks: &Api<DynamicObject>, name: &str, spec: Value) {
    ks.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": spec })),
    )
    .await
    .unwrap();
}

fn dynamic(
    client: &kube::Client,
    ns: &str,
    group: &str,
    version: &str,
    kind: &str,
) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind)),
    )
}

/// Sets a Deployment's status as a kube-controller-manager would (the test cluster runs none).
async fn deployment_ready(client: &kube::Client, ns: &str, name: &str, ready: i64) {
    let api = dynamic(client, ns, "apps", "v1", "Deployment");
    let generation = api
        .get(name)
        .await
        .unwrap()
        .metadata
        .generation
        .unwrap_or(1);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"status": {"observedGeneration": generation, "replicas": 3,
            "readyReplicas": ready, "updatedReplicas": 3, "availableReplicas": ready}}),
        ),
    )
    .await
    .expect("setting the Deployment's status");
}

/// A hub space with a ConfigMap and a Deployment unit, a Ready repository and a Kustomization that applied
/// both, in a fresh namespace. Returns (namespace, hub, space id).
async fn delivered(
    client: &kube::Client,
    prefix: &str,
    space: &str,
) -> (TestNamespace, TestHub, String) {
    delivered_by(client, prefix, space, None).await
}

/// [`delivered`] with the repository's Secret holding worker credentials (`Some((id, secret))`, which
/// the hub accepts) instead of a static token.
async fn delivered_by(
    client: &kube::Client,
    prefix: &str,
    space: &str,
    worker: Option<(&str, &str)>,
) -> (TestNamespace, TestHub, String) {
    controller();
    let ns = namespace(client, prefix).await;
    let hub = match worker {
        Some((id, secret)) => {
            TestHub::start_with(vec![(id.to_string(), secret.to_string())], None).await
        }
        None => TestHub::start().await,
    };
    let space_id = hub.space(space).await;
    hub.put_unit(&space_id, "settings", &config_map("settings", "blue"))
        .await;
    hub.put_unit(
        &space_id,
        "backend",
        &deployment("backend", "nginx:1.27", 3),
    )
    .await;
    match worker {
        Some((id, secret)) => {
            let data = std::collections::BTreeMap::from([
                ("CONFIGHUB_WORKER_ID".to_string(), id.to_string()),
                ("CONFIGHUB_WORKER_SECRET".to_string(), secret.to_string()),
            ]);
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some("confighub".into()),
                    ..Default::default()
                },
                string_data: Some(data),
                ..Default::default()
            };
            Api::<Secret>::namespaced(client.clone(), &ns)
                .create(&PostParams::default(), &secret)
                .await
                .expect("creating the worker Secret");
        }
        None => token_secret(client, &ns, "confighub", &hub.token).await,
    }
    apply_repository(
        client,
        &ns,
        "apps",
        json!({"url": hub.url, "space": space, "interval": "2s", "secretRef": {"name": "confighub"}}),
    )
    .await;
    wait_repository(client, &ns, "apps", "True", None, TIMEOUT).await;
    apply_kustomization(client, &ns, "apps", "apps").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let deployments = dynamic(client, &ns, "apps", "v1", "Deployment");
    wait_for("both units to be applied", TIMEOUT, || async {
        let cm = cms.get_opt("settings").await.ok().flatten();
        let d = deployments.get_opt("backend").await.ok().flatten();
        (cm.is_some() && d.is_some()).then_some(())
    })
    .await;
    wait_for("the Kustomization to be Ready", TIMEOUT, || async {
        kustomization_ready(client, &ns, "apps")
            .await
            .filter(|(s, _)| s == "True")
    })
    .await;
    (ns, hub, space_id)
}

fn deployments_api(client: &kube::Client, ns: &str) -> Api<k8s_openapi::api::apps::v1::Deployment> {
    Api::namespaced(client.clone(), ns)
}

fn drift_url() -> String {
    format!("http://{}", controller().http)
}
