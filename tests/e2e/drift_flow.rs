//! Drift end to end through the running controller: objects applied by the real kustomize-controller
//! from a ConfigHubRepository, changed behind Flux's back by other field managers, detected by the
//! controller's watches, recorded, shown in the API and the `Drifted` condition, and remediated by policy.

use std::time::Duration;

use confighub_source_controller::api::ConfigHubRepository;
use confighub_source_controller::confighub::{DataDownload, Where};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(60);
use crate::support::controller::FULL_CHECKS_OF_EVERYTHING;
const SECRET_VALUE: &str = "hunter2-original";
const SECRET_EDIT: &str = "hunter3-edited";

pub(crate) fn deployment() -> String {
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n".into()
}

fn secret() -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ntype: Opaque\nstringData:\n  password: {SECRET_VALUE}\n"
    )
}

/// A repository with a Deployment and a Secret unit, applied by kustomize-controller.
async fn managed_app(
    client: &kube::Client,
    prefix: &str,
    drift: Value,
) -> (TestNamespace, TestHub, String) {
    managed_app_every(client, prefix, drift, "5s").await
}

/// [`managed_app`] with the repository's interval (which is also its full drift check's).
async fn managed_app_every(
    client: &kube::Client,
    prefix: &str,
    drift: Value,
    interval: &str,
) -> (TestNamespace, TestHub, String) {
    managed_units(
        client,
        prefix,
        &[("web", deployment()), ("creds", secret())],
        drift,
        interval,
    )
    .await
}

/// A repository `shop` with `units`, applied by kustomize-controller into a new namespace; returns once
/// the Deployment `web` exists.
pub(crate) async fn managed_units(
    client: &kube::Client,
    prefix: &str,
    units: &[(&str, String)],
    drift: Value,
    interval: &str,
) -> (TestNamespace, TestHub, String) {
    controller();
    let ns = namespace(client, prefix).await;
    let hub = TestHub::start().await;
    let space_id = hub.space("shop").await;
    for (slug, data) in units {
        hub.put_unit(&space_id, slug, data).await;
    }
    token_secret(client, &ns, "confighub", &hub.token).await;
    apply_repository(
        client,
        &ns,
        "shop",
        json!({"url": hub.url, "space": "shop", "interval": interval, "secretRef": {"name": "confighub"}, "drift": drift}),
    )
    .await;
    wait_repository(client, &ns, "shop", "True", None, TIMEOUT).await;
    apply_kustomization(client, &ns, "shop", "shop").await;
    let deployments = resource(client, &ns, "apps", "Deployment");
    wait_for("the Deployment to be applied", TIMEOUT, || async {
        deployments.get_opt("web").await.ok().flatten()
    })
    .await;
    (ns, hub, space_id)
}

pub(crate) fn resource(
    client: &kube::Client,
    ns: &str,
    group: &str,
    kind: &str,
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1", kind);
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

/// Changes fields of an object as `manager`, the way `kubectl` or an operator would behind Flux's back.
async fn edit_as(api: &Api<DynamicObject>, name: &str, manager: &str, patch: Value) {
    api.patch(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&patch),
    )
    .await
    .expect("out-of-band edit");
}

fn deployment_patch(ns: &str, spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns}, "spec": spec})
}

/// GET on the controller's API; retried while the controller restarts (another test may roll it).
async fn api_get(path: &str) -> (u16, Value) {
    let url = format!("http://{}{path}", controller().http);
    let response = wait_for("the controller's API", TIMEOUT, || async {
        Some(http_get(&url).await)
    })
    .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until the object's record satisfies `pred` and returns it.
pub(crate) async fn record_where(id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/api/v1/drift-records/{id}");
    wait_for(what, TIMEOUT, || async {
        let (status, body) = api_get(&path).await;
        (status == 200 && pred(&body)).then_some(body)
    })
    .await
}

/// Scales the Deployment behind Flux's back and waits for the episode's fix unit (Propose mode);
/// returns the record id, the record and the fix unit's slug.
async fn scale_until_fix_unit(
    hub: &TestHub,
    deployments: &Api<DynamicObject>,
    ns: &str,
    replicas: i64,
) -> (String, Value, String) {
    let id = format!("Deployment:{ns}:web");
    edit_as(
        deployments,
        "web",
        "e2e-scaler",
        deployment_patch(ns, json!({"replicas": replicas})),
    )
    .await;
    let record = record_where(&id, "a fix unit for the episode", |r| {
        r["fix_unit"].is_string()
    })
    .await;
    let slug = record["fix_unit"].as_str().unwrap().to_string();
    wait_for("the fix unit in the hub", TIMEOUT, || {
        fix_unit_data(hub, "shop-drift-fixes", &slug)
    })
    .await;
    (id, record, slug)
}

pub(crate) fn has_type(record: &Value, t: &str) -> bool {
    record["types"]
        .as_array()
        .is_some_and(|ts| ts.iter().any(|x| x == t))
}

async fn fix_unit_data(hub: &TestHub, space: &str, slug: &str) -> Option<String> {
    let client = hub.client();
    let space = client.find_space_by_slug(space).await.ok()??;
    let filter = Where::new().eq("Slug", slug).build().ok()?;
    let unit = client
        .list_units(&space.space_id, Some(&filter), &[])
        .await
        .ok()?
        .into_iter()
        .next()?;
    match client
        .download_unit_data(&space.space_id, &unit.unit_id, None)
        .await
        .ok()?
    {
        DataDownload::Data { bytes, .. } => Some(String::from_utf8_lossy(&bytes).into_owned()),
        DataDownload::NotModified => None,
    }
}

/// Waits until repository `shop` in `ns` has `Drifted` with `status`, and returns it.
pub(crate) async fn drifted(client: &kube::Client, ns: &str, status: &str) -> ConfigHubRepository {
    wait_for(&format!("Drifted={status}"), TIMEOUT, || async {
        let chr = Api::<ConfigHubRepository>::namespaced(client.clone(), ns)
            .get("shop")
            .await
            .ok()?;
        condition(&chr, "Drifted")
            .filter(|c| c.status == status)
            .map(|_| chr)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_and_image_drift_are_recorded_and_proposed_as_a_fix_unit() {
    let client = client().await;
    let (ns, hub, _) = managed_app(&client, "drift-propose", json!({"mode": "Propose"})).await;
    let deployments = resource(&client, &ns, "apps", "Deployment");
    let id = format!("Deployment:{ns}:web");

    edit_as(
        &deployments,
        "web",
        "e2e-scaler",
        deployment_patch(&ns, json!({"replicas": 3})),
    )
    .await;
    let record = record_where(&id, "an active Scaling record", |r| {
        r["status"] == "active" && has_type(r, "Scaling")
    })
    .await;
    assert_eq!(
        record["severity"], "High",
        "1 → 3 replicas is a change of 50% or more"
    );
    assert_eq!(
        record["actor"], "e2e-scaler",
        "the record names who scaled it"
    );
    assert_eq!(record["unit_slug"], "web");
    assert!(!record["suggestion"].as_str().unwrap_or_default().is_empty());

    // Propose: the origin unit with the live value merged in, in `<space>-drift-fixes`.
    let record = record_where(&id, "the fix unit to be linked", |r| {
        r["fix_unit"].is_string()
    })
    .await;
    let slug = record["fix_unit"].as_str().unwrap().to_string();
    let data = wait_for("the fix unit in the hub", TIMEOUT, || {
        fix_unit_data(&hub, "shop-drift-fixes", &slug)
    })
    .await;
    assert!(
        data.contains("replicas: 3"),
        "the fix unit adopts the live replicas:\n{data}"
    );
    assert!(
        data.contains("image: nginx:1.27"),
        "and keeps the rest of the unit:\n{data}"
    );

    // The repository says so.
    let chr = drifted(&client, &ns, "True").await;
    let drifted = condition(&chr, "Drifted").unwrap();
    assert!(drifted.message.contains("High"), "{}", drifted.message);

    // A second change in the same episode updates the same record and the same fix unit.
    edit_as(
        &deployments,
        "web",
        "e2e-imager",
        deployment_patch(
            &ns,
            json!({"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.29"}]}}}),
        ),
    )
    .await;
    let record = record_where(&id, "a VersionChange on the same record", |r| {
        has_type(r, "VersionChange")
    })
    .await;
    assert_eq!(record["episode"], 1);
    assert_eq!(record["fix_unit"], slug.as_str());
    wait_for("the fix unit to adopt the image", TIMEOUT, || async {
        fix_unit_data(&hub, "shop-drift-fixes", &slug)
            .await
            .filter(|d| d.contains("nginx:1.29"))
    })
    .await;
    let space = hub
        .client()
        .find_space_by_slug("shop-drift-fixes")
        .await
        .unwrap()
        .unwrap();
    let units = hub
        .client()
        .list_units(&space.space_id, None, &[])
        .await
        .unwrap();
    assert_eq!(units.len(), 1, "exactly one fix unit for the episode");

    wait_for("the resources view to show the drift", TIMEOUT, || async {
        let (_, view) = api_get(&format!(
            "/api/v1/resources?namespace={ns}&kind=Deployment&name=web"
        ))
        .await;
        view.to_string().contains("\"drifted\":true").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_mode_has_flux_restore_the_object_and_resolves_the_record() {
    let client = client().await;
    let (ns, _hub, _) = managed_app(&client, "drift-revert", json!({"mode": "Revert"})).await;
    let deployments = resource(&client, &ns, "apps", "Deployment");
    let id = format!("Deployment:{ns}:web");
    edit_as(
        &deployments,
        "web",
        "e2e-scaler",
        deployment_patch(&ns, json!({"replicas": 4})),
    )
    .await;
    record_where(&id, "a record of the scale", |r| has_type(r, "Scaling")).await;
    wait_for(
        "kustomize-controller to restore replicas",
        TIMEOUT,
        || async {
            let d = deployments.get("web").await.ok()?;
            (d.data["spec"]["replicas"] == 1).then_some(())
        },
    )
    .await;
    let record = record_where(&id, "the record to resolve", |r| r["status"] == "resolved").await;
    assert!(record["resolved_at"].is_string());
    let chr = drifted(&client, &ns, "False").await;
    assert_eq!(
        condition(&chr, "Drifted").unwrap().reason,
        "NoDriftDetected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_changes_are_expected_and_left_alone() {
    let client = client().await;
    let (ns, _hub, _) = managed_app(&client, "drift-hpa", json!({"mode": "Revert"})).await;
    let deployments = resource(&client, &ns, "apps", "Deployment");
    let id = format!("Deployment:{ns}:web");
    edit_as(
        &deployments,
        "web",
        "horizontal-pod-autoscaler",
        deployment_patch(&ns, json!({"replicas": 5})),
    )
    .await;
    let record = record_where(&id, "an expected record", |r| r["expected"] == true).await;
    assert_eq!(record["actor"], "horizontal-pod-autoscaler");
    // Not reverted: after two more full checks (every 5s interval) the autoscaler's value stands.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        deployments.get("web").await.unwrap().data["spec"]["replicas"],
        5
    );
    let chr = Api::<ConfigHubRepository>::namespaced(client.clone(), &ns)
        .get("shop")
        .await
        .unwrap();
    assert_ne!(
        condition(&chr, "Drifted").map(|c| c.status),
        Some("True".into()),
        "expected drift is not Drifted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_drift_is_recorded_without_its_values_and_never_proposed() {
    let client = client().await;
    let (ns, hub, _) = managed_app(&client, "drift-secret", json!({"mode": "Propose"})).await;
    let secrets = resource(&client, &ns, "", "Secret");
    let id = format!("Secret:{ns}:creds");
    wait_for("the Secret to be applied", TIMEOUT, || async {
        secrets.get_opt("creds").await.ok().flatten()
    })
    .await;
    edit_as(
        &secrets,
        "creds",
        "e2e-editor",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns}, "stringData": {"password": SECRET_EDIT}}),
    )
    .await;
    let record = record_where(&id, "a SecretChange record", |r| {
        has_type(r, "SecretChange")
    })
    .await;
    assert_eq!(record["severity"], "High");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (_, list) = api_get(&format!("/api/v1/drift-records?namespace={ns}")).await;
    let (_, resources) = api_get(&format!("/api/v1/resources?namespace={ns}&kind=Secret")).await;
    let log = controller().log_text();
    let fix_space = hub
        .client()
        .find_space_by_slug("shop-drift-fixes")
        .await
        .unwrap();
    let mut fix_units = String::new();
    if let Some(space) = fix_space {
        for unit in hub
            .client()
            .list_units(&space.space_id, None, &[])
            .await
            .unwrap()
        {
            if let Ok(DataDownload::Data { bytes, .. }) = hub
                .client()
                .download_unit_data(&space.space_id, &unit.unit_id, None)
                .await
            {
                fix_units.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    for value in [SECRET_VALUE, SECRET_EDIT] {
        let encoded = confighub_source_controller::drift::base64::encode(value.as_bytes());
        for (place, text) in [
            ("record", record.to_string()),
            ("records API", list.to_string()),
            ("resources API", resources.to_string()),
            ("controller log", log.clone()),
            ("fix units", fix_units.clone()),
        ] {
            assert!(
                !text.contains(value) && !text.contains(&encoded),
                "a Secret value leaked into the {place}"
            );
        }
    }
    assert!(
        record["fix_unit"].is_null(),
        "no fix unit is written for Secret drift"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_fix_units_survive_a_controller_restart() {
    let _alone = FULL_CHECKS_OF_EVERYTHING.lock().await;
    let client = client().await;
    let (ns, hub, _) = managed_app(&client, "drift-restart", json!({"mode": "Propose"})).await;
    let deployments = resource(&client, &ns, "apps", "Deployment");
    let (id, before, slug) = scale_until_fix_unit(&hub, &deployments, &ns, 2).await;
    let fix_space = hub
        .client()
        .find_space_by_slug("shop-drift-fixes")
        .await
        .unwrap()
        .unwrap();
    let revisions_before = hub
        .client()
        .list_units(&fix_space.space_id, None, &[])
        .await
        .unwrap()[0]
        .head_revision_num;

    tokio::task::spawn_blocking(|| controller().restart())
        .await
        .unwrap();

    // The first pass after a restart checks every repository and sees the same drift: same record,
    // same episode, same fix unit.
    let after = record_where(&id, "the record after the restart", |r| {
        r["last_seen"].as_str() > before["last_seen"].as_str()
    })
    .await;
    assert_eq!(after["status"], "active");
    assert_eq!(after["episode"], 1);
    assert_eq!(after["first_detected"], before["first_detected"]);
    assert_eq!(after["fix_unit"], slug.as_str());
    let units = hub
        .client()
        .list_units(&fix_space.space_id, None, &[])
        .await
        .unwrap();
    assert_eq!(units.len(), 1, "no second fix unit for the same episode");
    assert_eq!(
        units[0].head_revision_num, revisions_before,
        "and the fix unit was not rewritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_flux_corrected_before_it_was_seen_is_read_back_from_flux_events() {
    let client = client().await;
    // A long interval: no full check will run while the test works.
    let (ns, _hub, _) =
        managed_app_every(&client, "drift-flux", json!({"mode": "Report"}), "10m").await;
    let secrets = resource(&client, &ns, "", "Secret");
    let id = format!("Secret:{ns}:creds");
    let _alone = FULL_CHECKS_OF_EVERYTHING.lock().await;
    // The Kustomization's first reconcile has finished (it sets the condition).
    drifted(&client, &ns, "False").await;
    // This controller process's first full check has seen the object (it is in the resources view) and found no drift.
    wait_for("the first full check", TIMEOUT, || async {
        let (_, body) = api_get(&format!(
            "/api/v1/resources?namespace={ns}&kind=Secret&name=creds"
        ))
        .await;
        body.to_string().contains("\"drifted\":false").then_some(())
    })
    .await;

    // A change the watches ignore (written under kustomize-controller's own field manager)...
    secrets
        .patch(
            "creds",
            &PatchParams {
                field_manager: Some("kustomize-controller".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"stringData": {"password": SECRET_EDIT}})),
        )
        .await
        .expect("out-of-band edit");
    // ...which Flux then corrects on its next reconcile (requested now rather than in 10 minutes).
    kustomizations(&client, &ns)
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "drift-flux-1"}}})),
        )
        .await
        .unwrap();
    let record = record_where(&id, "a record read back from Flux's event", |r| {
        r["source"] == "flux"
    })
    .await;
    assert_eq!(record["status"], "resolved", "Flux already restored it");
    assert_eq!(record["unit_slug"], "creds");
    let events = control_plane()
        .run_tool("kubectl", &["get", "events", "-n", &ns, "-o", "json"])
        .1;
    assert!(
        events.contains("DriftRevertedByFlux"),
        "an Event says Flux reverted drift"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kustomization_that_cannot_apply_is_recorded_until_it_is_ready_again() {
    let client = client().await;
    let (ns, hub, space_id) = managed_app(&client, "drift-ksfail", json!({"mode": "Report"})).await;
    let id = format!("Kustomization.kustomize.toolkit.fluxcd.io:{ns}:shop");
    // A unit of a kind the cluster does not know: kustomize-controller cannot apply the revision.
    let bad = "apiVersion: example.com/v1\nkind: NoSuchKind\nmetadata:\n  name: ghost\n";
    hub.put_unit(&space_id, "ghost", bad).await;
    let record = record_where(&id, "a record of the failing Kustomization", |r| {
        r["status"] == "active"
    })
    .await;
    assert_eq!(record["source"], "flux");
    assert!(
        record.to_string().contains("False ("),
        "the record says why: {record}"
    );
    let chr = drifted(&client, &ns, "True").await;
    assert!(
        condition(&chr, "Drifted")
            .unwrap()
            .message
            .contains("1 object(s)")
    );

    // Fixed in ConfigHub: the next revision applies, the record resolves.
    hub.put_unit(
        &space_id,
        "ghost",
        &deployment().replace("name: web", "name: ghost"),
    )
    .await;
    record_where(&id, "the record to resolve", |r| r["status"] == "resolved").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_the_fix_in_confighub_resolves_the_record_and_labels_the_fix_unit() {
    let client = client().await;
    let (ns, hub, space_id) = managed_app(&client, "drift-adopt", json!({"mode": "Propose"})).await;
    let deployments = resource(&client, &ns, "apps", "Deployment");
    let (id, _, slug) = scale_until_fix_unit(&hub, &deployments, &ns, 3).await;
    let fix = fix_unit_data(&hub, "shop-drift-fixes", &slug)
        .await
        .unwrap();

    // Someone accepts the fix: the origin unit now says what the cluster says.
    hub.put_unit(&space_id, "web", &fix).await;
    let record = record_where(
        &id,
        "the record to resolve once desired matches live",
        |r| r["status"] == "resolved",
    )
    .await;
    assert_eq!(record["episode"], 1);
    assert_eq!(
        deployments.get("web").await.unwrap().data["spec"]["replicas"],
        3,
        "the live state was adopted, not reverted"
    );
    let fix_space = hub
        .client()
        .find_space_by_slug("shop-drift-fixes")
        .await
        .unwrap()
        .unwrap();
    let labelled = wait_for("the fix unit to be labelled resolved", TIMEOUT, || async {
        let units = hub
            .client()
            .list_units(&fix_space.space_id, None, &[])
            .await
            .ok()?;
        let unit = units.into_iter().find(|u| u.slug == slug)?;
        (unit
            .labels
            .get("confighub.com/DriftStatus")
            .map(String::as_str)
            == Some("resolved"))
        .then_some(unit)
    })
    .await;
    assert_eq!(labelled.slug, slug, "kept, not deleted");
}
