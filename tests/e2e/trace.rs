//! `confighub-source-controller trace` against the real control plane: a chain delivered by the controller
//! and kustomize-controller (healthy, drifted, stale, broken, orphaned), objects made by hand, a Helm
//! release, and Argo CD Applications on Argo CD's real CRD. Text and JSON output are both checked, and the
//! exit code (0 ok, 2 broken, 3 warnings).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(60);

fn config_map(name: &str, color: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  color: {color}\n")
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: {name}\n        image: {image}\n"
    )
}

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
    hub.put_unit(&space_id, "backend", &deployment("backend", "nginx:1.27"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_follows_objects_to_their_unit_and_names_drift_and_orphans() {
    let client = client().await;
    let (ns, _hub, space_id) = delivered(&client, "trace-ok", "acorn").await;
    deployment_ready(&client, &ns, "backend", 3).await;
    let drift = drift_url();
    let chr = wait_repository(&client, &ns, "apps", "True", None, TIMEOUT).await;
    let revision = chr.status.unwrap().artifact.unwrap().revision;

    // Every level ✓, in text.
    let (code, out, err) = trace(&["deployment/backend", "-n", &ns, "--drift-url", &drift]).await;
    assert_eq!(code, 0, "trace failed:\n{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ConfigHub unit acorn/backend"),
        "{out}"
    );
    assert!(lines[0].ends_with("✓ rev 2 (head 2)"), "{out}");
    assert!(
        lines[1].contains(&format!("└─▶ ConfigHubRepository {ns}/apps")),
        "{out}"
    );
    let short = &revision[..revision.find(':').unwrap() + 9];
    assert!(lines[1].ends_with(&format!("✓ {short}…")), "{out}");
    assert!(
        lines[2].contains(&format!("└─▶ ExternalArtifact {ns}/apps")),
        "{out}"
    );
    assert!(
        lines[3].contains(&format!("└─▶ Kustomization {ns}/apps")),
        "{out}"
    );
    assert!(lines[3].ends_with(&format!("✓ Applied {short}…")), "{out}");
    assert!(
        lines[5].contains(&format!("└─▶ Deployment {ns}/backend")),
        "{out}"
    );
    assert!(lines[5].ends_with("✓ 3/3 ready"), "{out}");
    assert!(out.contains("image nginx:1.27"), "{out}");
    assert!(out.trim_end().ends_with("every level is ready."), "{out}");

    // The same in JSON, and for the ConfigMap.
    let (code, t) = trace_json(&["cm", "settings", "-n", &ns, "--drift-url", &drift]).await;
    assert_eq!(code, 0, "{t:#}");
    assert_eq!(
        kinds(&t),
        [
            "ConfigHubUnit",
            "ConfigHubRepository",
            "ExternalArtifact",
            "Kustomization",
            "ConfigMap"
        ]
    );
    assert_eq!(marks(&t), ["ok"; 5], "{t:#}");
    assert_eq!(t["owner"], "confighub");
    assert_eq!(t["status"], "ok");
    let unit = &t["levels"][0];
    assert_eq!(unit["name"], "acorn/settings");
    assert_eq!(unit["details"]["spaceId"], space_id.as_str());
    assert_eq!(unit["details"]["revision"], 2);
    assert_eq!(unit["details"]["headRevision"], 2);
    assert_eq!(t["levels"][1]["revision"], revision.as_str());
    assert_eq!(t["levels"][1]["details"]["mode"], "Head");
    assert_eq!(t["levels"][3]["revision"], revision.as_str());
    assert_eq!(t["levels"][3]["details"]["path"], "./");
    assert_eq!(t["levels"][4]["summary"], "exists");
    assert_eq!(t["drift"]["state"], "none", "{t:#}");
    assert!(t["findings"].as_array().unwrap().is_empty(), "{t:#}");

    // A Pod of the Deployment (made here, as its controllers would: no kube-controller-manager runs) is
    // traced through its ReplicaSet to the Deployment's chain.
    let deploy_uid = deployments_api(&client, &ns)
        .get("backend")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let replicasets = dynamic(&client, &ns, "apps", "v1", "ReplicaSet");
    let rs: DynamicObject = serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "backend-7d4b9c", "labels": {"app": "backend"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend",
                                 "uid": deploy_uid, "controller": true}]},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "backend"}},
                 "template": {"metadata": {"labels": {"app": "backend"}},
                              "spec": {"containers": [{"name": "backend", "image": "nginx:1.27"}]}}}}))
    .unwrap();
    let rs_uid = replicasets
        .create(&PostParams::default(), &rs)
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), &ns);
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "backend-7d4b9c-x2x9z", "labels": {"app": "backend"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "backend-7d4b9c",
                                 "uid": rs_uid, "controller": true}]},
        "spec": {"containers": [{"name": "backend", "image": "nginx:1.27"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let (code, t) =
        trace_json(&["pod/backend-7d4b9c-x2x9z", "-n", &ns, "--drift-url", &drift]).await;
    assert_eq!(
        kinds(&t),
        [
            "ConfigHubUnit",
            "ConfigHubRepository",
            "ExternalArtifact",
            "Kustomization",
            "Deployment",
            "ReplicaSet",
            "Pod"
        ],
        "{t:#}"
    );
    assert_eq!(t["object"]["kind"], "Pod");
    assert_eq!(t["owner"], "confighub");
    assert_eq!(marks(&t)[..5], ["ok"; 5], "{t:#}");
    assert_eq!(
        code, 3,
        "the Pod never runs here (no kubelet): progressing: {t:#}"
    );
    // Neither the ReplicaSet nor the Pod has status here.
    assert_eq!(finding_types(&t), ["progressing", "progressing"], "{t:#}");
    let (_, out, _) = trace(&[
        "po",
        "backend-7d4b9c-x2x9z",
        "-n",
        &ns,
        "--drift-url",
        &drift,
    ])
    .await;
    assert!(out.contains("└─▶ ReplicaSet"), "{out}");

    // The whole namespace in one pass: the same chains, one line each.
    let (code, all) = trace_json(&["--all", "-n", &ns, "--drift-url", &drift]).await;
    assert_eq!(
        code, 3,
        "the token Secret and the repository were made by hand: {all:#}"
    );
    let traces = all["traces"].as_array().unwrap();
    let find = |kind: &str, name: &str| {
        traces
            .iter()
            .find(|t| t["object"]["kind"] == kind && t["object"]["name"] == name)
            .unwrap_or_else(|| panic!("no trace of {kind}/{name} in {all:#}"))
    };
    for (kind, name) in [("Deployment", "backend"), ("ConfigMap", "settings")] {
        let t = find(kind, name);
        assert_eq!(
            (t["owner"].as_str(), t["status"].as_str()),
            (Some("confighub"), Some("ok")),
            "{t:#}"
        );
        assert_eq!(t["levels"][0]["details"]["headRevision"], 2, "{t:#}");
    }
    assert_eq!(find("Secret", "confighub")["orphan"], "never-managed");
    let (_, out, _) = trace(&["--all", "-n", &ns, "--drift-url", &drift]).await;
    let line = out
        .lines()
        .find(|l| l.contains("ConfigMap/settings"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.starts_with("✓ ConfigMap/settings")
            && line.contains(&format!(
                "ConfigHub acorn/settings@2 → ConfigHubRepository {ns}/apps"
            )),
        "{out}"
    );

    // Scaled behind Flux's back: the controller records the drift and trace shows it.
    let deployments = dynamic(&client, &ns, "apps", "v1", "Deployment");
    deployments
        .patch(
            "backend",
            &PatchParams::apply("e2e-scaler").force(),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "backend", "namespace": ns}, "spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let record_url = format!("{drift}/api/v1/drift-records/Deployment:{ns}:backend");
    wait_for("the drift record", TIMEOUT, || async {
        let r = http_get(&record_url).await;
        (r.status() == 200).then_some(())
    })
    .await;
    let (code, t) = trace_json(&["deploy/backend", "-n", &ns, "--drift-url", &drift]).await;
    assert_eq!(code, 3, "drift is a warning: {t:#}");
    assert!(finding_types(&t).contains(&"drifted".to_string()), "{t:#}");
    assert_eq!(t["drift"]["state"], "active");
    let record = &t["drift"]["record"];
    assert_eq!(record["id"], format!("Deployment:{ns}:backend"));
    assert!(
        record["types"]
            .as_array()
            .unwrap()
            .contains(&json!("Scaling")),
        "{t:#}"
    );
    assert_eq!(record["actor"], "e2e-scaler");
    assert_eq!(record["items"][0]["path"], "/spec/replicas");
    let (_, out, _) = trace(&["deploy/backend", "-n", &ns, "--drift-url", &drift]).await;
    assert!(out.contains("Drift (active): Scaling"), "{out}");
    assert!(
        out.contains("/spec/replicas: desired 3, live 5 (e2e-scaler)"),
        "{out}"
    );

    // --all reads the namespace's active drift records once and names the drift on the Deployment.
    let (_, all) = trace_json(&["--all", "-n", &ns, "--drift-url", &drift]).await;
    let backend = all["traces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["object"]["kind"] == "Deployment" && t["object"]["name"] == "backend")
        .unwrap();
    assert_eq!(backend["drift"]["state"], "active", "{backend:#}");
    assert!(
        finding_types(backend).contains(&"drifted".to_string()),
        "{backend:#}"
    );

    // The Kustomization is deleted without pruning: its objects stay, now orphaned.
    let ks = kustomizations(&client, &ns);
    merge_spec(&ks, "apps", json!({"prune": false})).await;
    // Let kustomize-controller see prune: false before the deletion.
    tokio::time::sleep(Duration::from_secs(2)).await;
    ks.delete("apps", &DeleteParams::default()).await.unwrap();
    wait_gone("the Kustomization to be gone", &ks, "apps", TIMEOUT).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    assert!(
        cms.get_opt("settings").await.unwrap().is_some(),
        "not pruned"
    );
    let (code, t) = trace_json(&["cm/settings", "-n", &ns, "--drift-url", &drift]).await;
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(t["orphan"], "was-managed", "{t:#}");
    assert!(finding_types(&t).contains(&"orphan".to_string()));
    assert!(
        t["summary"]
            .as_str()
            .unwrap()
            .contains("was managed, now orphaned"),
        "{t:#}"
    );
    let (_, out, _) = trace(&["cm/settings", "-n", &ns]).await;
    assert!(
        out.contains(&format!("Kustomization {ns}/apps, which no longer exists")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_not_yet_delivered_is_stale_at_the_level_that_holds_it() {
    let client = client().await;
    let (ns, hub, space_id) = delivered(&client, "trace-stale", "birch").await;
    let chr_api: Api<confighub_source_controller::api::ConfigHubRepository> =
        Api::namespaced(client.clone(), &ns);
    let spec = |suspend: bool| json!({"url": hub.url, "space": "birch", "interval": "2s", "secretRef": {"name": "confighub"}, "suspend": suspend});

    // The repository is suspended, then the unit is edited in ConfigHub: head 3, the cluster runs 2.
    apply_repository(&client, &ns, "apps", spec(true)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = chr_api
        .get("apps")
        .await
        .unwrap()
        .status
        .unwrap()
        .artifact
        .unwrap()
        .revision;
    hub.put_unit(&space_id, "settings", &config_map("settings", "green"))
        .await;
    let (code, t) = trace_json(&["configmap/settings", "-n", &ns]).await;
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(finding_types(&t), ["stale"], "{t:#}");
    assert_eq!(t["levels"][0]["details"]["headRevision"], 3);
    assert_eq!(t["levels"][0]["details"]["revision"], 2);
    assert_eq!(
        t["levels"][0]["details"]["artifactRevision"], 2,
        "read from the served archive"
    );
    assert_eq!(
        t["findings"][0]["level"], 1,
        "the repository holds it up: {t:#}"
    );
    let summary = t["summary"].as_str().unwrap();
    assert!(
        summary.contains("head revision 3, the artifact holds revision 2")
            && summary.contains(&format!("ConfigHubRepository {ns}/apps is suspended")),
        "{summary}"
    );
    let (code, out, _) = trace(&["configmap/settings", "-n", &ns]).await;
    assert_eq!(code, 3);
    assert!(
        out.lines().next().unwrap().ends_with("⚠ rev 2 (head 3)"),
        "{out}"
    );
    assert_eq!(
        chr_api
            .get("apps")
            .await
            .unwrap()
            .status
            .unwrap()
            .artifact
            .unwrap()
            .revision,
        before,
        "the suspended repository did not fetch the edit"
    );

    // The Kustomization is suspended and the repository resumed: the artifact moves on, Flux does not.
    let ks = kustomizations(&client, &ns);
    merge_spec(&ks, "apps", json!({"suspend": true})).await;
    apply_repository(&client, &ns, "apps", spec(false)).await;
    wait_for("the repository to fetch the edit", TIMEOUT, || async {
        let chr = chr_api.get("apps").await.ok()?;
        let rev = chr.status?.artifact?.revision;
        (rev != before).then_some(())
    })
    .await;
    let (code, t) = trace_json(&["configmap/settings", "-n", &ns]).await;
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(t["levels"][0]["details"]["artifactRevision"], 3, "{t:#}");
    assert!(
        t["summary"].as_str().unwrap().contains(
            "the artifact holds revision 3 of unit birch/settings, the cluster runs revision 2"
        ),
        "{t:#}"
    );
    let kustomization = &t["levels"][3];
    assert_eq!(kustomization["kind"], "Kustomization");
    assert_eq!(kustomization["stale"], true, "{t:#}");
    assert_eq!(kustomization["mark"], "warn");
    let summary = t["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("Kustomization {ns}/apps last applied")),
        "{summary}"
    );
    assert!(summary.contains("(it is suspended)"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kustomization_that_cannot_build_is_broken() {
    let client = client().await;
    let (ns, mut hub, _) = delivered(&client, "trace-broken", "cedar").await;
    let ks = kustomizations(&client, &ns);
    merge_spec(&ks, "apps", json!({"path": "./missing"})).await;
    wait_for("the Kustomization to fail", TIMEOUT, || async {
        kustomization_ready(&client, &ns, "apps")
            .await
            .filter(|(s, _)| s == "False")
    })
    .await;
    let (code, t) = trace_json(&["cm/settings", "-n", &ns]).await;
    assert_eq!(code, 2, "broken exits 2: {t:#}");
    assert_eq!(t["status"], "broken");
    assert_eq!(finding_types(&t)[0], "broken");
    assert_eq!(t["findings"][0]["level"], 3);
    assert_eq!(marks(&t), ["ok", "ok", "ok", "fail", "warn"], "{t:#}");
    assert_eq!(t["levels"][4]["stale"], true);
    assert_eq!(t["levels"][3]["details"]["path"], "./missing");
    let (code, out, _) = trace(&["cm/settings", "-n", &ns]).await;
    assert_eq!(code, 2);
    let last = out.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with(&format!("✗ Broken: Kustomization {ns}/apps is not ready"))
            && last.contains("missing"),
        "{out}"
    );

    // ConfigHub goes away too: the repository is the first level not Ready; the unit's head is unknown.
    hub.stop().await;
    wait_repository(
        &client,
        &ns,
        "apps",
        "False",
        Some("ConfigHubUnavailable"),
        TIMEOUT,
    )
    .await;
    let (code, t) = trace_json(&["cm/settings", "-n", &ns]).await;
    assert_eq!(code, 2, "{t:#}");
    assert_eq!(t["findings"][0]["type"], "broken");
    assert_eq!(t["findings"][0]["level"], 1, "{t:#}");
    assert_eq!(marks(&t), ["ok", "fail", "warn", "fail", "warn"], "{t:#}");
    assert!(
        finding_types(&t).contains(&"unverified".to_string()),
        "ConfigHub could not be asked: {t:#}"
    );
    let (_, out, _) = trace(&["cm/settings", "-n", &ns]).await;
    assert!(out.contains("(ConfigHub not reachable)"), "{out}");
    assert!(
        out.contains(&format!(
            "✗ Broken: ConfigHubRepository {ns}/apps is not ready"
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_made_by_hand_were_never_managed_and_helm_releases_are_read_from_their_records() {
    let client = client().await;
    let ns = namespace(&client, "trace-hand").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "by-hand"}, "data": {"k": "v"}}))
            .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let (code, t) = trace_json(&["cm/by-hand", "-n", &ns]).await;
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(
        (t["owner"].as_str(), t["orphan"].as_str()),
        (Some("none"), Some("never-managed"))
    );
    assert_eq!(kinds(&t), ["ConfigMap"]);
    let (_, out, _) = trace(&["cm/by-hand", "-n", &ns]).await;
    assert!(out.contains("⚠ Orphan: never managed"), "{out}");

    // A release installed by the helm CLI: its record Secret and an object of it.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for (version, status) in [(1, "superseded"), (2, "deployed")] {
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": format!("sh.helm.release.v1.redis.v{version}"),
                         "labels": {"owner": "helm", "name": "redis", "status": status, "version": version.to_string()}},
            "type": "helm.sh/release.v1", "data": {"release": "H4sIAAAAAAAA"}}))
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "redis-master",
            "labels": {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "redis"},
            "annotations": {"meta.helm.sh/release-name": "redis", "meta.helm.sh/release-namespace": ns}},
        "spec": {"ports": [{"port": 6379}]}}))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let (code, t) = trace_json(&["svc/redis-master", "-n", &ns]).await;
    assert_eq!(code, 0, "{t:#}");
    assert_eq!(t["owner"], "helm");
    assert_eq!(kinds(&t), ["HelmRelease", "Service"]);
    assert_eq!(t["levels"][0]["summary"], "revision 2 deployed");
    let (_, out, _) = trace(&["service", "redis-master", "-n", &ns]).await;
    assert!(
        out.starts_with(&format!("Helm release {ns}/redis")),
        "{out}"
    );

    // --all: Helm's own record Secrets belong to the release; the hand-made ConfigMap to nobody.
    let (code, all) = trace_json(&["--all", "-n", &ns]).await;
    assert_eq!(code, 3, "{all:#}");
    let owners: std::collections::BTreeMap<String, String> = all["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                format!(
                    "{}/{}",
                    t["object"]["kind"].as_str().unwrap(),
                    t["object"]["name"].as_str().unwrap()
                ),
                t["owner"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(owners["ConfigMap/by-hand"], "none");
    assert_eq!(owners["Service/redis-master"], "helm");
    assert_eq!(owners["Secret/sh.helm.release.v1.redis.v2"], "helm");
    let (_, out, _) = trace(&["--all", "-n", &ns]).await;
    assert!(out.contains("⚠ ConfigMap/by-hand"), "{out}");
    assert!(out.contains("✓ Service/redis-master"), "{out}");
    assert!(out.contains("objects:"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kustomization_over_a_git_repository_is_traced_to_its_commit() {
    use sha2::Digest;
    let client = client().await;
    let ns = namespace(&client, "trace-git").await;
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\n  namespace: {ns}\ndata:\n  hello: world\n"
    );
    let bytes = tarball(&[("greeting.yaml", &manifest)]);
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    let url = serve_bytes("fleet.tar.gz", bytes.clone()).await;
    let commit = "0123456789abcdef0123456789abcdef01234567";
    // No source-controller runs here: the test writes the GitRepository's status, as it would.
    let repos = dynamic(
        &client,
        &ns,
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
    );
    repos
        .patch(
            "fleet",
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": "fleet"},
                "spec": {"url": "https://git.example.invalid/fleet", "interval": "1h", "ref": {"branch": "main"}}})),
        )
        .await
        .unwrap();
    repos
        .patch_status(
            "fleet",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "artifact": {"digest": digest, "path": "gitrepository/fleet.tar.gz", "url": url,
                             "revision": format!("main@sha1:{commit}"), "lastUpdateTime": "2026-12-01T00:00:00Z"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                                "message": format!("stored artifact for revision 'main@sha1:{commit}'"),
                                "lastTransitionTime": "2026-12-01T00:00:00Z"}]}})),
        )
        .await
        .unwrap();
    kustomizations(&client, &ns)
        .patch(
            "fleet",
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(
                json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": "fleet"},
                "spec": {"interval": "10m", "prune": true, "wait": false, "path": "./",
                         "sourceRef": {"kind": "GitRepository", "name": "fleet"}}}),
            ),
        )
        .await
        .unwrap();
    wait_for("the Kustomization to be Ready", TIMEOUT, || async {
        kustomization_ready(&client, &ns, "fleet")
            .await
            .filter(|(s, _)| s == "True")
    })
    .await;
    let (code, t) = trace_json(&["cm/greeting", "-n", &ns]).await;
    assert_eq!(code, 0, "{t:#}");
    assert_eq!(t["owner"], "flux");
    assert_eq!(kinds(&t), ["GitRepository", "Kustomization", "ConfigMap"]);
    assert_eq!(marks(&t), ["ok", "ok", "ok"], "{t:#}");
    assert_eq!(t["levels"][0]["details"]["branch"], "main");
    assert_eq!(
        t["levels"][0]["details"]["url"],
        "https://git.example.invalid/fleet"
    );
    assert_eq!(t["levels"][1]["revision"], format!("main@sha1:{commit}"));
    assert_eq!(t["drift"]["state"], "not-checked");
    let (_, out, _) = trace(&["cm/greeting", "-n", &ns]).await;
    assert!(
        out.lines()
            .next()
            .unwrap()
            .ends_with("✓ main@sha1:01234567…"),
        "{out}"
    );
}

/// Installs a real CRD kept under tests/e2e/testdata (see each file's header) and waits until it is served.
async fn install_crd(file: &str, name: &str) {
    let path = format!("{}/tests/e2e/testdata/{file}", env!("CARGO_MANIFEST_DIR"));
    let cp = control_plane();
    let (ok, out, err) = cp.run_tool("kubectl", &["apply", "--server-side", "-f", &path]);
    assert!(ok, "installing {file}: {out}{err}");
    // `kubectl wait` right after the create can see the CRD before it has any status and fail; poll.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client().await);
    wait_for(
        &format!("CRD {name} to be established"),
        TIMEOUT,
        || async {
            let crd = crds.get(name).await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        },
    )
    .await;
}

/// Argo CD's real Application CRD (v3.5.1), once per test binary.
async fn argocd_crd() {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| install_crd("argocd-application-crd.yaml", "applications.argoproj.io"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_helm_releases_are_traced_to_their_chart_source() {
    let client = client().await;
    install_crd(
        "helmrelease-crd.yaml",
        "helmreleases.helm.toolkit.fluxcd.io",
    )
    .await;
    let ns = namespace(&client, "trace-hr").await;
    let digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    // No source-controller or helm-controller runs here: the test writes both statuses, as they would.
    let repos = dynamic(
        &client,
        &ns,
        "source.toolkit.fluxcd.io",
        "v1",
        "OCIRepository",
    );
    repos
        .patch(
            "podinfo",
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
                "metadata": {"name": "podinfo"},
                "spec": {"url": "oci://ghcr.io/stefanprodan/charts/podinfo", "interval": "1h", "ref": {"semver": "6.x"}}})),
        )
        .await
        .unwrap();
    let source_status = |version: &str| {
        json!({"status": {
            "artifact": {"digest": format!("sha256:{digest}"), "path": "p", "url": "http://x/p",
                         "revision": format!("{version}@sha256:{digest}"), "lastUpdateTime": "2026-12-01T00:00:00Z"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "stored",
                            "lastTransitionTime": "2026-12-01T00:00:00Z"}]}})
    };
    repos
        .patch_status(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(source_status("6.7.0")),
        )
        .await
        .unwrap();
    let releases = dynamic(&client, &ns, "helm.toolkit.fluxcd.io", "v2", "HelmRelease");
    releases
        .patch(
            "podinfo",
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                "metadata": {"name": "podinfo"},
                "spec": {"interval": "10m", "chartRef": {"kind": "OCIRepository", "name": "podinfo"}}})),
        )
        .await
        .expect("a HelmRelease accepted by helm-controller's CRD");
    releases
        .patch_status(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "InstallSucceeded",
                                "message": "Helm install succeeded for release trace/podinfo.v1 with chart podinfo@6.7.0",
                                "lastTransitionTime": "2026-12-01T00:00:00Z"}],
                "lastAttemptedRevision": format!("6.7.0+{}", &digest[..12]),
                "history": [{"name": "podinfo", "namespace": ns, "version": 1, "status": "deployed",
                             "chartName": "podinfo", "chartVersion": "6.7.0", "configDigest": "sha256:c",
                             "digest": "sha256:d", "firstDeployed": "2026-12-01T00:00:00Z",
                             "lastDeployed": "2026-12-01T00:00:00Z"}]}})),
        )
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "podinfo",
            "labels": {"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": ns,
                       "app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "podinfo", "meta.helm.sh/release-namespace": ns}},
        "spec": {"ports": [{"port": 9898}]}}))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();

    let (code, t) = trace_json(&["svc/podinfo", "-n", &ns]).await;
    assert_eq!(code, 0, "{t:#}");
    assert_eq!(t["owner"], "flux-helm");
    assert_eq!(kinds(&t), ["OCIRepository", "HelmRelease", "Service"]);
    assert_eq!(marks(&t), ["ok", "ok", "ok"], "{t:#}");
    assert_eq!(t["levels"][1]["summary"], "Released podinfo@6.7.0");
    assert_eq!(t["levels"][1]["details"]["releaseVersion"], 1);
    assert_eq!(t["levels"][0]["details"]["semver"], "6.x");
    let (_, out, _) = trace(&["svc/podinfo", "-n", &ns]).await;
    assert!(out.contains("└─▶ HelmRelease"), "{out}");

    // A new chart version in the source that helm-controller has not attempted: stale.
    repos
        .patch_status(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(source_status("6.8.0")),
        )
        .await
        .unwrap();
    let (code, t) = trace_json(&["svc/podinfo", "-n", &ns]).await;
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(finding_types(&t), ["stale"], "{t:#}");
    assert!(
        t["summary"]
            .as_str()
            .unwrap()
            .contains("last attempted 6.7.0+0123456789ab"),
        "{t:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_cd_applications_show_their_sync_revision_status_and_health() {
    let client = client().await;
    argocd_crd().await;
    let ns = namespace(&client, "trace-argo").await;
    let sha = "53e28ff20cc530b9ada2173fbbd64d48338583ba";
    let apps = dynamic(&client, &ns, "argoproj.io", "v1alpha1", "Application");
    let application = |sync: &str, health: &str| {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "guestbook", "namespace": ns},
            "spec": {"project": "default",
                     "source": {"repoURL": "https://git.example.invalid/argocd-example-apps.git", "path": "guestbook", "targetRevision": "HEAD"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": ns}},
            "status": {"sync": {"status": sync, "revision": sha},
                       "health": {"status": health},
                       "resources": [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": ns,
                                      "name": "guestbook-ui", "status": sync, "health": {"status": health}}]}})
    };
    // The real CRD has no status subresource: Argo CD writes status with the object, as the test does.
    apps.patch(
        "guestbook",
        &PatchParams::apply("argocd-application-controller").force(),
        &Patch::Apply(application("Synced", "Healthy")),
    )
    .await
    .expect("an Application accepted by Argo CD's CRD");
    let deployments = dynamic(&client, &ns, "apps", "v1", "Deployment");
    let deploy: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "guestbook-ui", "namespace": ns,
            "annotations": {"argocd.argoproj.io/tracking-id": format!("guestbook:apps/Deployment:{ns}/guestbook-ui")}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "guestbook-ui"}},
                 "template": {"metadata": {"labels": {"app": "guestbook-ui"}},
                              "spec": {"containers": [{"name": "ui", "image": "gcr.io/heptio-images/ks-guestbook-demo:0.2"}]}}}}))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deploy)
        .await
        .unwrap();
    deployment_ready(&client, &ns, "guestbook-ui", 3).await;

    let args = [
        "deploy/guestbook-ui",
        "-n",
        ns.as_str(),
        "--argocd-namespace",
        ns.as_str(),
    ];
    let (code, t) = trace_json(&args).await;
    assert_eq!(code, 0, "{t:#}");
    assert_eq!(t["owner"], "argocd");
    assert_eq!(kinds(&t), ["Source", "Application", "Deployment"]);
    assert_eq!(marks(&t), ["ok", "ok", "ok"], "{t:#}");
    let app = &t["levels"][1];
    assert_eq!(app["revision"], sha);
    assert_eq!(app["details"]["syncStatus"], "Synced");
    assert_eq!(app["details"]["health"], "Healthy");
    assert_eq!(app["details"]["resourceStatus"], "Synced");
    assert_eq!(
        t["levels"][0]["name"],
        "https://git.example.invalid/argocd-example-apps.git"
    );
    let (_, out, _) = trace(&args).await;
    assert!(
        out.contains(&format!("└─▶ Application {ns}/guestbook")),
        "{out}"
    );
    assert!(out.contains("✓ Synced, Healthy at 53e28ff2…"), "{out}");

    // OutOfSync: stale. Degraded: broken.
    apps.patch(
        "guestbook",
        &PatchParams::apply("argocd-application-controller").force(),
        &Patch::Apply(application("OutOfSync", "Healthy")),
    )
    .await
    .unwrap();
    let (code, t) = trace_json(&args).await;
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(finding_types(&t), ["stale"], "{t:#}");
    assert!(
        t["summary"].as_str().unwrap().contains("is OutOfSync"),
        "{t:#}"
    );
    apps.patch(
        "guestbook",
        &PatchParams::apply("argocd-application-controller").force(),
        &Patch::Apply(application("Synced", "Degraded")),
    )
    .await
    .unwrap();
    let (code, t) = trace_json(&args).await;
    assert_eq!(code, 2, "{t:#}");
    assert_eq!(finding_types(&t)[0], "broken");

    // The Application is deleted: the object was managed, and is now orphaned.
    apps.delete("guestbook", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone("the Application to be gone", &apps, "guestbook", TIMEOUT).await;
    let (code, t) = trace_json(&args).await;
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(t["orphan"], "was-managed", "{t:#}");
}

/// `trace --all` on a namespace of `TRACE_BENCH_OBJECTS` (default 200 in the suite; 5,000 for the figures)
/// ConfigMaps, every one delivered
/// by one Kustomization over a ConfigHubRepository's ExternalArtifact (objects and owner statuses written by
/// the test, both owners suspended so no controller touches them). Prints the wall time of the whole
/// command; docs/benchmarks.md quotes it. Run with
/// `TRACE_BENCH_OBJECTS=5000 cargo test --release --test e2e trace::trace_all_benchmark -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_all_benchmark() {
    use futures::StreamExt;
    let n: usize = std::env::var("TRACE_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        // In the suite: a namespace of 200 delivered objects, all traced as `ok`.
        .unwrap_or(200);
    let client = client().await;
    let ns = namespace(&client, "trace-bench").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("bench").await;
    for i in 0..10 {
        hub.put_unit(
            &space_id,
            &format!("cm-{i}"),
            &config_map(&format!("cm-{i}"), "x"),
        )
        .await;
    }
    token_secret(&client, &ns, "confighub", &hub.token).await;
    apply_repository(
        &client,
        &ns,
        "bench",
        json!({"url": hub.url, "space": "bench", "interval": "1h", "suspend": true, "secretRef": {"name": "confighub"}}),
    )
    .await;
    let revision = format!("head@sha256:{}", "ab".repeat(32));
    let chrs = dynamic(
        &client,
        &ns,
        "source.confighub.com",
        "v1beta1",
        "ConfigHubRepository",
    );
    chrs.patch_status(
        "bench",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "stored",
                            "lastTransitionTime": "2026-12-01T00:00:00Z"}],
            "artifact": {"revision": revision, "digest": "sha256:x", "path": "p", "url": "http://x/p",
                         "lastUpdateTime": "2026-12-01T00:00:00Z"}}})),
    )
    .await
    .unwrap();
    let eas = dynamic(
        &client,
        &ns,
        "source.toolkit.fluxcd.io",
        "v1",
        "ExternalArtifact",
    );
    eas.patch(
        "bench",
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
            "metadata": {"name": "bench"},
            "spec": {"sourceRef": {"apiVersion": "source.confighub.com/v1beta1", "kind": "ConfigHubRepository", "name": "bench"}}})),
    )
    .await
    .unwrap();
    eas.patch_status(
        "bench",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"status": {"artifact": {"revision": revision, "digest": "sha256:x", "path": "p",
            "url": "http://x/p", "lastUpdateTime": "2026-12-01T00:00:00Z"}}}),
        ),
    )
    .await
    .unwrap();
    let ks = kustomizations(&client, &ns);
    ks.patch(
        "bench",
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "bench"},
            "spec": {"interval": "1h", "prune": false, "suspend": true, "path": "./",
                     "sourceRef": {"kind": "ExternalArtifact", "name": "bench"}}}),
        ),
    )
    .await
    .unwrap();
    let entries: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("{ns}_cm-{i}__ConfigMap"), "v": "v1"}))
        .collect();
    ks.patch_status(
        "bench",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"lastAppliedRevision": revision,
            "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                            "message": "Applied", "lastTransitionTime": "2026-12-01T00:00:00Z"}],
            "inventory": {"entries": entries}}})),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let created = std::time::Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let cms = cms.clone();
            let (ns, space_id) = (ns.clone(), space_id.clone());
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}"),
                    "labels": {"kustomize.toolkit.fluxcd.io/name": "bench", "kustomize.toolkit.fluxcd.io/namespace": ns,
                               "confighub.com/UnitSlug": format!("cm-{i}")},
                    "annotations": {"confighub.com/SpaceName": "bench", "confighub.com/SpaceID": space_id,
                                    "confighub.com/RevisionNum": "2"}},
                    "data": {"color": "x"}}))
                .unwrap();
                cms.create(&PostParams::default(), &cm).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    println!("created {n} ConfigMaps in {:?}", created.elapsed());
    let args = ["--all", "-n", ns.as_str(), "--drift-url", &drift_url()];
    let json_args = [&args[..], &["-o", "json"]].concat();
    let mut text_times = Vec::new();
    let mut json_times = Vec::new();
    let mut json_out = String::new();
    let mut text_out = String::new();
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let (code, out, _) = trace(&args).await;
        text_times.push(start.elapsed());
        assert!(code == 0 || code == 3, "{code}");
        text_out = out;
        let start = std::time::Instant::now();
        let (_, out, _) = trace(&json_args).await;
        json_times.push(start.elapsed());
        json_out = out;
    }
    let mut single_times = Vec::new();
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let (code, _, _) = trace(&["cm/cm-0", "-n", &ns, "--drift-url", &drift_url()]).await;
        single_times.push(start.elapsed());
        assert_eq!(code, 0);
    }
    println!("trace of one of them: {single_times:?}");
    let last: Value = serde_json::from_str(&json_out).unwrap();
    let traces = last["traces"].as_array().unwrap();
    let cm0 = traces
        .iter()
        .find(|t| t["object"]["name"] == "cm-0")
        .unwrap();
    assert_eq!(cm0["owner"], "confighub", "{cm0:#}");
    assert_eq!(cm0["status"], "ok", "{cm0:#}");
    assert!(traces.len() >= n, "{}", traces.len());
    println!(
        "trace --all over {} objects: text {:?}, json {:?} ({} bytes); {}",
        traces.len(),
        text_times,
        json_times,
        json_out.len(),
        text_out
            .lines()
            .rev()
            .find(|l| l.contains("objects:"))
            .unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_reads_worker_credentials_as_the_controller_does() {
    let client = client().await;
    let (ns, _hub, _) = delivered_by(
        &client,
        "trace-worker",
        "birch",
        Some(("trace-worker", "s3cret-trace-worker")),
    )
    .await;
    // No CONFIGHUB_TOKEN: ConfigHub is asked with the worker credentials of the repository's Secret.
    let (code, t) = trace_json(&["cm/settings", "-n", &ns]).await;
    assert_eq!(code, 0, "{t:#}");
    assert_eq!(t["levels"][0]["details"]["headRevision"], 2, "{t:#}");
    assert!(
        !finding_types(&t).contains(&"unverified".to_string()),
        "ConfigHub was reached: {t:#}"
    );
}
