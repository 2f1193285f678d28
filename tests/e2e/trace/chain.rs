//! Chains this controller and kustomize-controller delivered: healthy, drifted, stale and broken, and
//! the credentials trace reads.

use super::*;

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
