//! The drift reconcile against a mocked API server (kube's `tower-test`), as kube-rs' controller-rs
//! tests its reconciler: the requests it makes and the status it writes, without a cluster. The mock
//! answers by method and path (the per-kind watch the reconcile starts runs beside it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::api::DynamicObject;
use kube::client::Body;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use serde_json::{Value, json};

use super::{DriftEngine, reconcile};
use crate::api::ConfigHubRepository;
use crate::artifact::{BuildContext, UnitInput, build};

const NS: &str = "demo";

/// How the mocked API server treats the managed Deployment.
#[derive(Clone, Copy)]
enum Cluster {
    /// Everything about Deployments is refused (403), as under a ClusterRole without them.
    Forbidden,
    /// The Deployment was scaled to 3 by `kubectl scale` (desired: 1).
    Scaled,
    /// The Deployment is as desired (and stays at one resourceVersion).
    Clean,
}

struct Fixture {
    engine: Arc<DriftEngine>,
    kustomization: Arc<DynamicObject>,
    /// Bodies of every PATCH to the repository's status.
    status_patches: Arc<Mutex<Vec<Value>>>,
    /// Dry-run applies of the Deployment, and reads of it (`Clean` only).
    dry_runs: Arc<AtomicUsize>,
    gets: Arc<AtomicUsize>,
    /// Reads of the repository (the Drifted condition read back).
    repo_gets: Arc<AtomicUsize>,
    kustomizations: Writer<DynamicObject>,
    repositories: Writer<ConfigHubRepository>,
    _dir: tempfile::TempDir,
}

fn deployment(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": NS, "resourceVersion": "7",
                        "labels": {"kustomize.toolkit.fluxcd.io/name": "shop",
                                   "kustomize.toolkit.fluxcd.io/namespace": NS,
                                   "confighub.com/UnitSlug": "web"},
                        "managedFields": [
                            {"manager": "kustomize-controller", "operation": "Apply", "apiVersion": "apps/v1",
                             "time": "2026-11-30T10:00:00Z", "fieldsType": "FieldsV1",
                             "fieldsV1": {"f:spec": {"f:selector": {}, "f:template": {}}}},
                            {"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                             "subresource": "scale", "fieldsType": "FieldsV1",
                             "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
}

fn repository(digest: &str, path: &str) -> ConfigHubRepository {
    serde_json::from_value(json!({
        "apiVersion": "source.confighub.com/v1beta1", "kind": "ConfigHubRepository",
        "metadata": {"name": "shop", "namespace": NS, "generation": 1, "uid": "u1"},
        "spec": {"url": "http://127.0.0.1:9", "space": "shop", "interval": "10m"},
        "status": {"artifact": {"digest": digest, "path": path, "url": "http://x/a.tar.gz",
                                "revision": "head@sha256:aa", "lastUpdateTime": "2026-11-30T10:00:00Z"}}
    }))
    .unwrap()
}

fn answer(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn forbidden(what: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
           "message": format!("{what} is forbidden: User \"system:serviceaccount:flux-system:c\" cannot")})
}

/// The mocked API server: answers each request by method and path.
async fn serve(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    cluster: Cluster,
    chr: ConfigHubRepository,
    patches: Arc<Mutex<Vec<Value>>>,
    dry_runs: Arc<AtomicUsize>,
    gets: Arc<AtomicUsize>,
    repo_gets: Arc<AtomicUsize>,
) {
    // Watch requests are held open, never answered, as a quiet watch would be.
    let mut open_watches = Vec::new();
    while let Some((request, send)) = handle.next_request().await {
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let path = uri.path().to_string();
        let body = request
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        let response = match (method.as_str(), path.as_str(), cluster) {
            ("GET", "/apis/apps/v1", _) => answer(
                StatusCode::OK,
                &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
                        "resources": [{"name": "deployments", "singularName": "deployment", "namespaced": true,
                                       "kind": "Deployment", "verbs": ["get", "list", "watch", "patch"]}]}),
            ),
            (_, p, Cluster::Forbidden) if p.contains("/deployments") => {
                answer(StatusCode::FORBIDDEN, &forbidden("deployments.apps"))
            }
            ("GET", "/apis/apps/v1/deployments", Cluster::Scaled | Cluster::Clean) => {
                // The kind's watch: an empty list, then nothing (the request is left to time out).
                if uri.query().unwrap_or_default().contains("watch=true") {
                    open_watches.push(send);
                    continue;
                }
                answer(
                    StatusCode::OK,
                    &json!({"kind": "DeploymentList", "apiVersion": "apps/v1",
                            "metadata": {"resourceVersion": "7"}, "items": []}),
                )
            }
            ("GET", p, Cluster::Scaled) if p.ends_with("/deployments/web") => {
                answer(StatusCode::OK, &deployment(3))
            }
            ("GET", p, Cluster::Clean) if p.ends_with("/deployments/web") => {
                gets.fetch_add(1, Ordering::SeqCst);
                answer(StatusCode::OK, &deployment(1))
            }
            // The dry run as kustomize-controller: what its next apply would make of the object.
            ("PATCH", p, Cluster::Scaled | Cluster::Clean) if p.ends_with("/deployments/web") => {
                assert!(
                    uri.query().unwrap_or_default().contains("dryRun=All"),
                    "{uri}"
                );
                dry_runs.fetch_add(1, Ordering::SeqCst);
                answer(StatusCode::OK, &deployment(1))
            }
            ("GET", p, _) if p.ends_with("/confighubrepositories/shop") => {
                repo_gets.fetch_add(1, Ordering::SeqCst);
                answer(StatusCode::OK, &serde_json::to_value(&chr).unwrap())
            }
            ("PATCH", p, _) if p.ends_with("/confighubrepositories/shop/status") => {
                assert!(
                    uri.query()
                        .unwrap_or_default()
                        .contains("fieldManager=confighub-source-controller-drift"),
                    "the Drifted condition is applied under the drift engine's own manager: {uri}"
                );
                patches
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                answer(StatusCode::OK, &serde_json::to_value(&chr).unwrap())
            }
            // Events (kube's recorder).
            ("POST", p, _) if p.contains("/events") => answer(StatusCode::CREATED, &json!({})),
            _ => answer(
                StatusCode::NOT_FOUND,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                        "reason": "NotFound", "message": format!("{method} {path}")}),
            ),
        };
        send.send_response(response);
    }
}

async fn fixture(cluster: Cluster) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    std::fs::create_dir_all(&root).unwrap();
    let unit = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n";
    let built = build(
        &[UnitInput::new("web", "Kubernetes/YAML", 4, unit)],
        &BuildContext {
            space_name: "shop".into(),
            space_id: "id".into(),
            mode_prefix: "head",
        },
    )
    .unwrap();
    std::fs::write(root.join("shop.tar.gz"), &built.bytes).unwrap();
    let chr = repository("sha256:aa", "shop.tar.gz");

    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, NS);
    let status_patches = Arc::new(Mutex::new(Vec::new()));
    let dry_runs = Arc::new(AtomicUsize::new(0));
    let gets = Arc::new(AtomicUsize::new(0));
    let repo_gets = Arc::new(AtomicUsize::new(0));
    tokio::spawn(serve(
        handle,
        cluster,
        chr.clone(),
        Arc::clone(&status_patches),
        Arc::clone(&dry_runs),
        Arc::clone(&gets),
        Arc::clone(&repo_gets),
    ));

    let mut registry = prometheus_client::registry::Registry::default();
    let source = crate::source::Context::new(
        client.clone(),
        crate::source::metrics::SourceMetrics::register(&mut registry),
        crate::artifact::storage::Storage::new(root.clone(), "127.0.0.1:1".into()),
        crate::source::cache::UnitDataCache::new(dir.path().join("cache")).unwrap(),
        crate::source::ControllerOptions {
            watch_namespace: None,
            label_selector: None,
            concurrent: 1,
            no_cross_namespace_refs: false,
            artifacts_to_keep: 0,
            confighub_concurrent_requests: 8,
        },
        None,
    );
    let handles = crate::drift::DriftHandles::open(
        &crate::drift::DriftDb::parse("", &root).unwrap(),
        &mut registry,
    )
    .unwrap();
    let mut repositories = Writer::<ConfigHubRepository>::default();
    repositories.apply_watcher_event(&watcher::Event::Apply(chr));
    let engine = DriftEngine::new(client, source, handles, repositories.as_reader());
    let kustomization: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "shop", "namespace": NS},
        "spec": {"sourceRef": {"kind": "ExternalArtifact", "name": "shop"}, "path": "./", "prune": true},
        "status": {"inventory": {"entries": [{"id": "demo_web_apps_Deployment", "v": "v1"}]},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                                   "message": "Applied revision: head@sha256:aa"}]}
    }))
    .unwrap();
    // The controller's store holds the Kustomization before it is reconciled.
    let mut kustomizations = engine.kustomization_writer.lock().unwrap().take().unwrap();
    kustomizations.apply_watcher_event(&watcher::Event::Apply(kustomization.clone()));
    Fixture {
        kustomizations,
        repositories,
        engine,
        kustomization: Arc::new(kustomization),
        status_patches,
        dry_runs,
        gets,
        repo_gets,
        _dir: dir,
    }
}

fn drifted_conditions(patches: &[Value]) -> Vec<BTreeMap<String, Value>> {
    patches
        .iter()
        .flat_map(|p| {
            p["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| serde_json::from_value(c).unwrap())
        .collect()
}

#[tokio::test]
async fn a_kind_the_api_refuses_makes_drifted_unknown_naming_it() {
    let f = fixture(Cluster::Forbidden).await;
    let action = reconcile::reconcile(Arc::clone(&f.kustomization), Arc::clone(&f.engine))
        .await
        .unwrap();
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(600)),
        "requeued after the repository's interval"
    );
    let conditions = drifted_conditions(&f.status_patches.lock().unwrap());
    let last = conditions
        .last()
        .expect("the Drifted condition was written");
    assert_eq!(last["type"], "Drifted");
    assert_eq!(last["status"], "Unknown");
    assert_eq!(last["reason"], "DetectionUnavailable");
    let message = last["message"].as_str().unwrap();
    // `get` from the check; `list` too once the kind's watch (running beside it) has been refused.
    assert!(
        message.contains("Deployment.apps (")
            && message.contains("get")
            && message.contains("Forbidden"),
        "{message}"
    );
    // Nothing was judged from what could not be read.
    assert_eq!(f.engine.active_records().await.len(), 0);
    // Only Drifted is in the patch: the reconciler's conditions are not touched.
    for patch in f.status_patches.lock().unwrap().iter() {
        let types: Vec<&str> = patch["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["type"].as_str())
            .collect();
        assert_eq!(types, ["Drifted"]);
    }
}

#[tokio::test]
async fn a_scaled_deployment_is_recorded_and_drifted_true() {
    let f = fixture(Cluster::Scaled).await;
    reconcile::reconcile(Arc::clone(&f.kustomization), Arc::clone(&f.engine))
        .await
        .unwrap();
    let records = f.engine.active_records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.id, format!("Deployment:{NS}:web"));
    assert_eq!(record.actor.as_deref(), Some("kubectl"));
    assert_eq!(record.unit_slug.as_deref(), Some("web"));
    assert_eq!(record.revision.as_deref(), Some("4"));
    let conditions = drifted_conditions(&f.status_patches.lock().unwrap());
    let last = conditions
        .last()
        .expect("the Drifted condition was written");
    assert_eq!(
        (last["status"].as_str(), last["reason"].as_str()),
        (Some("True"), Some("DriftDetected"))
    );
}

/// The periodic comparison dry-runs an object again only when it was written since it was last found
/// as desired (or when it drifted): an unchanged cluster costs a get per object, not a dry run.
#[tokio::test]
async fn an_object_unchanged_since_found_clean_is_not_dry_run_again() {
    for (cluster, expected) in [(Cluster::Clean, 1), (Cluster::Scaled, 2)] {
        let f = fixture(cluster).await;
        for _ in 0..2 {
            reconcile::reconcile(Arc::clone(&f.kustomization), Arc::clone(&f.engine))
                .await
                .unwrap();
        }
        assert_eq!(f.dry_runs.load(Ordering::SeqCst), expected);
    }
}

/// A Drifted condition that the store's copy already shows, as this process last applied it, is not
/// read back from the API server (a GET per repository per interval at scale); a store that has not
/// caught up with the last write is.
#[tokio::test]
async fn an_unchanged_drifted_condition_is_neither_read_back_nor_written() {
    let mut f = fixture(Cluster::Clean).await;
    let pass = || reconcile::reconcile(Arc::clone(&f.kustomization), Arc::clone(&f.engine));
    pass().await.unwrap();
    assert_eq!(f.repo_gets.load(Ordering::SeqCst), 1);
    assert_eq!(f.status_patches.lock().unwrap().len(), 1);
    // The store has not seen the write yet: read back (the mock answers without the condition, so
    // it is applied again).
    pass().await.unwrap();
    assert_eq!(f.repo_gets.load(Ordering::SeqCst), 2);
    // The watch delivers the write: nothing is read or written any more.
    let applied = drifted_conditions(&f.status_patches.lock().unwrap())[0].clone();
    let mut chr = repository("sha256:aa", "shop.tar.gz");
    chr.status
        .as_mut()
        .unwrap()
        .conditions
        .push(serde_json::from_value(serde_json::to_value(&applied).unwrap()).unwrap());
    f.repositories
        .apply_watcher_event(&watcher::Event::Apply(chr));
    let patches = f.status_patches.lock().unwrap().len();
    pass().await.unwrap();
    assert_eq!(f.repo_gets.load(Ordering::SeqCst), 2, "no read back");
    assert_eq!(f.status_patches.lock().unwrap().len(), patches, "no write");
}

/// Once the kind's watch reports the very version found as desired, the periodic comparison does not
/// even read the object; a newer version brings the read (and the dry run) back.
#[tokio::test]
async fn an_object_the_watch_saw_unchanged_is_not_read_again() {
    let f = fixture(Cluster::Clean).await;
    let pass = || reconcile::reconcile(Arc::clone(&f.kustomization), Arc::clone(&f.engine));
    pass().await.unwrap();
    assert_eq!(f.gets.load(Ordering::SeqCst), 1);
    let entry = crate::drift::inventory::InventoryEntry {
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
        namespace: NS.into(),
        name: "web".into(),
    };
    let kind = crate::drift::blind::KindId::new("apps", "Deployment");
    let seen = |rv: &str| {
        let mut live = deployment(1);
        live["metadata"]["resourceVersion"] = json!(rv);
        Ok(watcher::Event::Apply(serde_json::from_value(live).unwrap()))
    };
    f.engine.track_version(&entry, &kind, &seen("7"));
    pass().await.unwrap();
    assert_eq!(
        f.gets.load(Ordering::SeqCst),
        1,
        "no read while the watch says unchanged"
    );
    f.engine.track_version(&entry, &kind, &seen("8"));
    pass().await.unwrap();
    assert_eq!(f.gets.load(Ordering::SeqCst), 2, "a newer version is read");
}

#[tokio::test]
async fn what_is_kept_for_a_deleted_repository_and_kustomization_goes_with_them() {
    let mut f = fixture(Cluster::Scaled).await;
    reconcile::reconcile(Arc::clone(&f.kustomization), Arc::clone(&f.engine))
        .await
        .unwrap();
    assert_eq!(f.engine.repos.read().unwrap().len(), 1);
    assert_eq!(f.engine.unmanaged.lock().unwrap().len(), 1);
    let everything = crate::drift::resources::ResourceQuery::default();
    use crate::drift::resources::ResourceView as _;
    assert_eq!(f.engine.handles.resources.list(&everything).len(), 1);
    let chr = ConfigHubRepository::clone(&f.engine.repository_store.state()[0]);
    f.repositories
        .apply_watcher_event(&watcher::Event::Delete(chr));
    f.kustomizations
        .apply_watcher_event(&watcher::Event::Delete((*f.kustomization).clone()));
    f.engine.forget_gone();
    assert!(f.engine.repos.read().unwrap().is_empty());
    assert!(f.engine.unmanaged.lock().unwrap().is_empty());
    assert!(f.engine.handles.resources.list(&everything).is_empty());
}

#[tokio::test]
async fn a_kustomization_of_another_source_is_left_alone() {
    let f = fixture(Cluster::Scaled).await;
    let mut other = (*f.kustomization).clone();
    other.data["spec"]["sourceRef"] = json!({"kind": "GitRepository", "name": "repo"});
    let action = reconcile::reconcile(Arc::new(other), Arc::clone(&f.engine))
        .await
        .unwrap();
    assert_eq!(action, kube::runtime::controller::Action::await_change());
    assert!(f.status_patches.lock().unwrap().is_empty());
}
