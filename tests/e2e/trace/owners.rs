//! Owners other than this controller: objects made by hand, Helm releases, Kustomizations over a
//! GitRepository, and Argo CD Applications on their real CRDs.

use super::*;

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
