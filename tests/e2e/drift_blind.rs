//! Never blind in silence: the controller runs as the chart's ServiceAccount, whose RBAC covers the
//! common kinds but not a CRD of the user's. Flux applies a custom object; the controller cannot list or
//! watch that kind, says so in the repository's `Drifted` condition (Unknown, DetectionUnavailable, the
//! kind and the verb named), counts it in a metric and logs it once; once the permission is granted it
//! sees the kind again and an edit of the custom object is recorded by the watch.

use std::time::Duration;

use confighub_source_controller::api::ConfigHubRepository;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use crate::drift_flow::{deployment, managed_units, record_where};
use crate::support::service_account::{NAME as SA_NAME, NAMESPACE as SA_NAMESPACE};
use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(90);
/// The group of the CRD the chart's RBAC does not cover (its refusals are expected).
pub(crate) const GROUP: &str = "blind.e2e.example.com";

fn crd() -> String {
    format!(
        r#"{{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {{"name": "widgets.{GROUP}"}},
  "spec": {{"group": "{GROUP}", "scope": "Namespaced",
    "names": {{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"}},
    "versions": [{{"name": "v1", "served": true, "storage": true,
      "schema": {{"openAPIV3Schema": {{"type": "object", "properties": {{"spec": {{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}}}}}}]}}}}"#
    )
}

fn widget_unit() -> String {
    format!("apiVersion: {GROUP}/v1\nkind: Widget\nmetadata:\n  name: gizmo\nspec:\n  size: 1\n")
}

async fn metric_value(line_start: &str) -> Option<f64> {
    let text = controller().metrics().await;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_controller_may_not_watch_makes_drifted_unknown_until_it_is_granted() {
    let client = client().await;
    // No restart or check of everything meanwhile: the log is counted, and the last edit must be the
    // watch's to find.
    let _alone = crate::support::controller::FULL_CHECKS_OF_EVERYTHING
        .lock()
        .await;
    let cp = control_plane();
    let (ok, _, err) = cp.kubectl_apply(&crd());
    assert!(ok, "installing the CRD: {err}");
    let (ok, _, err) = cp.run_tool(
        "kubectl",
        &[
            "wait",
            "--for=condition=Established",
            &format!("crd/widgets.{GROUP}"),
            "--timeout=60s",
        ],
    );
    assert!(ok, "waiting for the CRD: {err}");

    let units = [("web", deployment()), ("gizmo", widget_unit())];
    let (ns, _hub, _) =
        managed_units(&client, "blind", &units, json!({"mode": "Report"}), "10m").await;
    let repos: Api<ConfigHubRepository> = Api::namespaced(client.clone(), &ns);

    // Blind, and saying so: the condition names the kind and the refused verb.
    let blind = wait_for("Drifted=Unknown naming Widget", TIMEOUT, || async {
        let chr = repos.get("shop").await.ok()?;
        condition(&chr, "Drifted")
            .filter(|c| c.status == "Unknown" && c.reason == "DetectionUnavailable")
    })
    .await;
    assert!(
        blind.message.contains(&format!("Widget.{GROUP}")) && blind.message.contains("list"),
        "{blind:?}"
    );
    assert!(!blind.message.contains("Deployment"), "{blind:?}");
    let unavailable = format!(
        "confighub_drift_detection_unavailable{{group=\"{GROUP}\",kind=\"Widget\",verb=\"list\"}}"
    );
    assert_eq!(metric_value(&unavailable).await, Some(1.0));
    // Said once, not once per retry: wait for proof that retries happened (the error counter), then
    // count the warnings.
    let errors = format!(
        "confighub_drift_detection_errors_total{{group=\"{GROUP}\",kind=\"Widget\",verb=\"list\"}}"
    );
    wait_for("three refused lists of Widgets", TIMEOUT, || async {
        metric_value(&errors).await.filter(|n| *n >= 3.0)
    })
    .await;
    let warnings = controller()
        .log_text()
        .lines()
        .filter(|l| l.contains("\"WARN\"") && l.contains(&format!("cannot list Widget.{GROUP}")))
        .count();
    assert_eq!(warnings, 1, "one warning for the kind, then backoff");

    // Granted (as a user would for their CRD): the controller sees the kind again by itself.
    let grant = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "e2e-blind-widgets"},
         "rules": [{"apiGroups": [GROUP], "resources": ["widgets"], "verbs": ["get", "list", "watch", "patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "e2e-blind-widgets"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "e2e-blind-widgets"},
         "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NAMESPACE}]}
    ]});
    let (ok, _, err) = cp.kubectl_apply(&grant.to_string());
    assert!(ok, "granting Widgets: {err}");
    wait_for(
        "Drifted=False once Widgets can be watched",
        TIMEOUT,
        || async {
            let chr = repos.get("shop").await.ok()?;
            condition(&chr, "Drifted").filter(|c| c.status == "False")
        },
    )
    .await;
    assert_eq!(metric_value(&unavailable).await, Some(0.0));

    // And drift of the kind is detected again, by the watch.
    let widgets = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &ns,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, "v1", "Widget")),
    );
    let patch = json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Widget",
                       "metadata": {"name": "gizmo", "namespace": ns}, "spec": {"size": 3}});
    widgets
        .patch(
            "gizmo",
            &PatchParams::apply("widget-tuner").force(),
            &Patch::Apply(&patch),
        )
        .await
        .expect("editing the Widget");
    let id = format!("Widget.{GROUP}:{ns}:gizmo");
    let record = record_where(&id, "an active record of the Widget", |r| {
        r["status"] == "active"
    })
    .await;
    assert_eq!(record["source"], "watch", "{record}");
    assert_eq!(record["actor"], "widget-tuner", "{record}");
}
