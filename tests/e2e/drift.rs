//! Drift against a real API server: the server-side-apply dry run with kustomize-controller's field
//! manager, edits by other managers, the pure pipeline (`detect`), the record store, and the drift API
//! served by the running controller.

use std::sync::Arc;

use chrono::Utc;
use confighub_source_controller::drift::{
    DetectionContext, DetectionSource, DriftType, ObjectKey, RecordStatus, RecordStore, Severity,
    Transition, detect,
};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::*;

const FLUX: &str = "kustomize-controller";

fn api(client: &Client, ns: &str, group: &str, version: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

/// What the controller will do: dry-run apply the desired object as kustomize-controller (forced).
async fn dry_run(api: &Api<DynamicObject>, name: &str, desired: &Value) -> Value {
    let obj = api
        .patch(
            name,
            &PatchParams::apply(FLUX).force().dry_run(),
            &Patch::Apply(desired),
        )
        .await
        .expect("server-side-apply dry run");
    serde_json::to_value(obj).unwrap()
}

/// Applies `desired` for real as kustomize-controller would (forced, its field manager).
async fn apply_as_flux(api: &Api<DynamicObject>, name: &str, desired: &Value) {
    api.patch(
        name,
        &PatchParams::apply(FLUX).force(),
        &Patch::Apply(desired),
    )
    .await
    .expect("server-side apply as kustomize-controller");
}

async fn live(api: &Api<DynamicObject>, name: &str) -> Option<Value> {
    api.get_opt(name)
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
}

fn ctx() -> DetectionContext<'static> {
    DetectionContext {
        ignore: &[],
        source: DetectionSource::Analyze,
        unit_slug: None,
        revision: None,
        repository: None,
        at: Utc::now(),
    }
}

#[tokio::test]
async fn scaling_by_another_manager_is_detected_recorded_and_resolved_by_a_revert() {
    let client = client().await;
    let ns = namespace(&client, "drift-scale").await;
    let deployments = api(&client, &ns, "apps", "v1", "Deployment");
    let desired = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web", "confighub.com/UnitSlug": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                                        "resources": {"requests": {"cpu": "0.5"}}}]}}}
    });
    apply_as_flux(&deployments, "web", &desired).await;
    let key = ObjectKey::new("Deployment", ns.as_str(), "web");
    let dry = dry_run(&deployments, "web", &desired).await;
    assert_eq!(
        detect(&key, &dry, live(&deployments, "web").await.as_ref(), &ctx()),
        None
    );
    assert_eq!(
        detect(
            &key,
            &desired,
            live(&deployments, "web").await.as_ref(),
            &ctx()
        ),
        None
    );

    // Someone scales by hand with their own field manager.
    deployments
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("kubectl-scale".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    let dry = dry_run(&deployments, "web", &desired).await;
    let det = detect(&key, &dry, live(&deployments, "web").await.as_ref(), &ctx()).expect("drift");
    assert_eq!(det.items.len(), 1, "{:?}", det.items);
    let item = &det.items[0];
    assert_eq!(item.item.path, "/spec/replicas");
    assert_eq!(
        (item.item.desired.clone(), item.item.live.clone()),
        (Some(json!(1)), Some(json!(3)))
    );
    assert_eq!(item.item.actor.as_deref(), Some("kubectl-scale"));
    assert_eq!(
        (item.drift_type, item.severity),
        (DriftType::Scaling, Severity::High)
    );
    assert_eq!(det.unit_slug.as_deref(), Some("web"));

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RecordStore::open(&dir.path().join("drift.db")).unwrap());
    let (transition, record) = store.upsert_detection(&det).unwrap();
    assert_eq!(transition, Transition::Started);
    assert!(
        record.suggestion.contains("replicas=3"),
        "{}",
        record.suggestion
    );

    // Revert: apply the desired state for real; the comparison is clean and the record resolves.
    apply_as_flux(&deployments, "web", &desired).await;
    let dry = dry_run(&deployments, "web", &desired).await;
    assert_eq!(
        detect(&key, &dry, live(&deployments, "web").await.as_ref(), &ctx()),
        None
    );
    assert!(store.resolve(&key.id(), Utc::now()).unwrap());
    assert_eq!(
        store.get(&key.id()).unwrap().unwrap().status,
        RecordStatus::Resolved
    );

    // Deleting it is drift too.
    deployments
        .delete("web", &Default::default())
        .await
        .unwrap();
    let gone = wait_for(
        "the deployment to be gone",
        std::time::Duration::from_secs(30),
        || {
            let deployments = deployments.clone();
            async move {
                deployments
                    .get_opt("web")
                    .await
                    .unwrap()
                    .is_none()
                    .then_some(())
            }
        },
    );
    gone.await;
    let det = detect(&key, &desired, None, &ctx()).expect("deletion is drift");
    assert_eq!(det.items[0].drift_type, DriftType::Deleted);
}

#[tokio::test]
async fn secret_edits_are_detected_without_the_values() {
    let client = client().await;
    let ns = namespace(&client, "drift-secret").await;
    let secrets = api(&client, &ns, "", "v1", "Secret");
    let desired = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": ns}, "stringData": {"password": "first-value-42"}});
    apply_as_flux(&secrets, "db", &desired).await;
    secrets
        .patch(
            "db",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"stringData": {"password": "second-value-43"}})),
        )
        .await
        .unwrap();
    let key = ObjectKey::new("Secret", ns.as_str(), "db");
    let dry = dry_run(&secrets, "db", &desired).await;
    let det = detect(&key, &dry, live(&secrets, "db").await.as_ref(), &ctx()).expect("drift");
    assert_eq!(det.items.len(), 1, "{:?}", det.items);
    assert_eq!(det.items[0].item.path, "/data/password");
    assert_eq!(
        (det.items[0].drift_type, det.items[0].severity),
        (DriftType::SecretChange, Severity::High)
    );
    assert_eq!(det.items[0].item.actor.as_deref(), Some("kubectl-edit"));
    let dir = tempfile::tempdir().unwrap();
    let store = RecordStore::open(&dir.path().join("drift.db")).unwrap();
    let (_, record) = store.upsert_detection(&det).unwrap();
    let text = serde_json::to_string(&record).unwrap();
    for value in [
        "first-value-42",
        "second-value-43",
        "Zmlyc3QtdmFsdWUtNDI=",
        "c2Vjb25kLXZhbHVlLTQz",
    ] {
        assert!(!text.contains(value), "{value} leaked into the record");
    }
}

#[tokio::test]
async fn drift_spec_is_validated_by_the_api_server() {
    let cp = control_plane();
    let client = client().await;
    let ns = namespace(&client, "drift-spec").await;
    let manifest = |name: &str, ty: &str| {
        format!(
            "apiVersion: source.confighub.com/v1beta1\nkind: ConfigHubRepository\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  space: demo\n  interval: 5m\n  suspend: true\n  drift:\n    mode: Propose\n    fixSpace: fixes\n    overrides:\n    - {{type: {ty}, mode: Revert}}\n    - {{severity: Low, mode: Report}}\n    ignore:\n    - {{paths: [/spec/replicas], kind: Deployment}}\n"
        )
    };
    let (ok, _, err) = cp.kubectl_apply(&manifest("good", "Scaling"));
    assert!(ok, "{err}");
    let repos: Api<confighub_source_controller::api::ConfigHubRepository> =
        Api::namespaced(client, &ns);
    let spec = repos
        .get("good")
        .await
        .unwrap()
        .spec
        .drift
        .expect("drift spec");
    assert_eq!(
        spec.mode,
        confighub_source_controller::api::DriftMode::Propose
    );
    assert_eq!(spec.overrides[0].drift_type, Some(DriftType::Scaling));
    assert_eq!(spec.ignore[0].paths, vec!["/spec/replicas".to_string()]);
    let (ok, _, err) = cp.kubectl_apply(&manifest("bad", "Bogus"));
    assert!(!ok && err.contains("Unsupported value"), "{err}");
}

#[tokio::test]
async fn the_controller_serves_the_drift_api_and_metrics() {
    // Its analyze request makes the controller check every repository at once.
    let _alone = crate::support::controller::FULL_CHECKS_OF_EVERYTHING
        .lock()
        .await;
    let c = controller();
    let base = format!("http://{}", c.http);
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move { Ok::<_, ()>(http_get(&url).await) }
    };
    let resp = get("/api/v1/drift-records").await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["records"].is_array());
    assert_eq!(get("/api/v1/statistics").await.unwrap().status(), 200);
    assert_eq!(get("/api/v1/resources").await.unwrap().status(), 200);
    assert_eq!(
        get("/api/v1/drift-records/Deployment:x:y")
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        get("/api/v1/drift-records?severity=Huge")
            .await
            .unwrap()
            .status(),
        400
    );
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/analyze"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(c.metrics().await.contains("confighub_drift_active"));
    assert!(c.storage_path.join("drift.db").exists());
}
