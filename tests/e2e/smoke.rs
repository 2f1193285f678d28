//! Smoke tests that prove the path before the controller exists: our CRD is served and validated by a
//! real API server, and a real kustomize-controller applies an ExternalArtifact's tarball.

use std::time::Duration;

use confighub_source_controller::api::{
    Artifact, ConfigHubRepository, ExternalArtifact, RevisionMode, repository::DEFAULT_URL,
};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::*;

fn repository_yaml(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: source.confighub.com/v1beta1\nkind: ConfigHubRepository\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec}"
    )
}

#[tokio::test]
async fn repository_is_stored_with_schema_defaults() {
    let client = client().await;
    let ns = namespace(&client, "smoke-chr").await;
    let cp = control_plane();
    let (ok, _, err) = cp.kubectl_apply(&repository_yaml(
        &ns,
        "payments",
        "  space: payments-dev\n  interval: 5m\n",
    ));
    assert!(
        ok,
        "kubectl apply of a valid ConfigHubRepository failed: {err}"
    );

    // Read back untyped, so the defaults seen are the API server's and not our serde defaults.
    let gvk = GroupVersionKind::gvk("source.confighub.com", "v1beta1", "ConfigHubRepository");
    let raw: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &ApiResource::from_gvk(&gvk));
    let stored = raw.get("payments").await.unwrap();
    let spec = &stored.data["spec"];
    assert_eq!(spec["url"], DEFAULT_URL);
    assert_eq!(spec["timeout"], "60s");
    assert_eq!(spec["revision"], "Head");
    assert_eq!(spec["space"], "payments-dev");

    let typed: Api<ConfigHubRepository> = Api::namespaced(client, &ns);
    let chr = typed.get("payments").await.unwrap();
    assert_eq!(chr.spec.revision, RevisionMode::Head);
    assert_eq!(chr.spec.interval, "5m");
    assert!(!chr.spec.suspend);

    let (ok, out, err) = cp.run_tool("kubectl", &["get", "chr", "-n", &ns]);
    assert!(ok, "kubectl get chr failed: {err}");
    let header = out.lines().next().unwrap_or_default();
    for column in ["NAME", "SPACE", "REVISION", "READY", "STATUS", "AGE"] {
        assert!(
            header.contains(column),
            "printer column {column} missing from {header:?}"
        );
    }
    assert!(
        out.contains("payments-dev"),
        "the Space column shows the space: {out}"
    );
}

#[tokio::test]
async fn api_server_refuses_invalid_repositories_with_a_clear_message() {
    let client = client().await;
    let ns = namespace(&client, "smoke-invalid").await;
    let cp = control_plane();
    let cases = [
        ("  space: s\n  interval: 5 minutes\n", "spec.interval"),
        (
            "  space: s\n  interval: 1m\n  timeout: soon\n",
            "spec.timeout",
        ),
        (
            "  space: s\n  interval: 1m\n  revision: Tip\n",
            "spec.revision",
        ),
        ("  interval: 1m\n", "spec.space"),
        ("  space: s\n", "spec.interval"),
        (
            "  space: s\n  interval: 1m\n  url: ftp://example\n",
            "spec.url",
        ),
    ];
    for (i, (spec, field)) in cases.iter().enumerate() {
        let (ok, _, err) = cp.kubectl_apply(&repository_yaml(&ns, &format!("bad-{i}"), spec));
        assert!(!ok, "the API server accepted an invalid spec:\n{spec}");
        assert!(
            err.contains(field),
            "the refusal of\n{spec}should name {field}, got: {err}"
        );
    }
    let typed: Api<ConfigHubRepository> = Api::namespaced(client, &ns);
    assert!(
        typed
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn kustomize_controller_applies_an_external_artifact() {
    let client = client().await;
    let ns = namespace(&client, "smoke-ea").await;
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\n  namespace: {ns}\ndata:\n  hello: world\n"
    );
    let bytes = tarball(&[("greeting.yaml", &manifest)]);
    let hex = hex::encode(Sha256::digest(&bytes));
    let url = serve_bytes("greeting.tar.gz", bytes.clone()).await;

    let eas: Api<ExternalArtifact> = Api::namespaced(client.clone(), &ns);
    let ea: ExternalArtifact = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
        "metadata": {"name": "greeting"},
        "spec": {"sourceRef": {"apiVersion": "source.confighub.com/v1beta1",
                               "kind": "ConfigHubRepository", "name": "greeting"}}
    }))
    .unwrap();
    eas.create(&PostParams::default(), &ea).await.unwrap();
    let revision = format!("test@sha256:{hex}");
    let artifact = Artifact {
        digest: format!("sha256:{hex}"),
        path: "test/greeting.tar.gz".into(),
        url,
        revision: revision.clone(),
        last_update_time: "2026-01-01T00:00:00Z".into(),
        size: Some(bytes.len() as i64),
        metadata: Default::default(),
    };
    let status = json!({"status": {"artifact": artifact, "conditions": [{
        "type": "Ready", "status": "True", "reason": "Succeeded", "message": "stored",
        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}});
    eas.patch_status("greeting", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    let gvk = GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
    let ks_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &ApiResource::from_gvk(&gvk));
    let ks: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "greeting"},
        "spec": {"interval": "10m", "prune": true, "wait": false, "path": "./",
                 "sourceRef": {"kind": "ExternalArtifact", "name": "greeting"}}
    }))
    .unwrap();
    ks_api.create(&PostParams::default(), &ks).await.unwrap();

    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm = wait_for(
        "kustomize-controller to create the ConfigMap",
        Duration::from_secs(60),
        || {
            let cms = cms.clone();
            async move { cms.get_opt("greeting").await.ok().flatten() }
        },
    )
    .await;
    assert_eq!(cm.data.unwrap()["hello"], "world");

    let message = wait_for(
        "the Kustomization to report Ready",
        Duration::from_secs(30),
        || {
            let ks_api = ks_api.clone();
            async move {
                let ks = ks_api.get("greeting").await.ok()?;
                let ready = ks.data["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "Ready" && c["status"] == "True")?
                    .clone();
                Some(ready["message"].as_str().unwrap_or_default().to_string())
            }
        },
    )
    .await;
    assert!(
        message.contains(&revision),
        "Ready message {message:?} should name {revision}"
    );
}
