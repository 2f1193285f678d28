//! Events reach Flux's notification-controller (`--events-addr`) in Flux's event format: the shared
//! controller posts every event to `hack/flux-event-receiver`, which decodes each post with Flux's own
//! Go type and refuses what notification-controller could not route to an Alert.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// The first event the receiver accepted about ExternalArtifact `ns/name` with `reason`.
fn received(ns: &str, name: &str, reason: &str) -> Option<Value> {
    event_receiver().events().into_iter().find(|e| {
        e["involvedObject"]["namespace"] == ns
            && e["involvedObject"]["name"] == name
            && e["reason"] == reason
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_notification_controller_about_the_external_artifact() {
    let ctl = controller();
    // No controller restart (which resets the counters read below) while this test runs.
    let _no_restart = crate::support::controller::FULL_CHECKS_OF_EVERYTHING
        .lock()
        .await;
    let client = client().await;
    let ns = namespace(&client, "events").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("notify").await;
    hub.put_unit(&space_id, "settings", &config_map("settings", "blue"))
        .await;
    token_secret(&client, &ns, "confighub", &hub.token).await;
    let mut spec = json!({"url": hub.url, "space": "notify", "interval": "1m", "secretRef": {"name": "confighub"}});
    apply_repository(&client, &ns, "notify", spec.clone()).await;
    let chr = wait_repository(&client, &ns, "notify", "True", None, TIMEOUT).await;
    let revision = chr.status.unwrap().artifact.unwrap().revision;

    let stored = wait_for("the NewArtifact event at the receiver", TIMEOUT, || async {
        received(&ns, "notify", "NewArtifact")
    })
    .await;
    assert_eq!(
        stored["involvedObject"],
        json!({"kind": "ExternalArtifact", "namespace": ns, "name": "notify",
               "apiVersion": "source.toolkit.fluxcd.io/v1"}),
        "about the ExternalArtifact an Alert can select"
    );
    assert_eq!(stored["severity"], "info");
    assert_eq!(
        stored["metadata"]["source.toolkit.fluxcd.io/revision"], revision,
        "the stored artifact's revision, under the object's group"
    );
    assert_eq!(stored["reportingController"], "confighub-source-controller");
    assert!(
        stored["message"].as_str().unwrap().contains(&revision),
        "{stored}"
    );

    // A failure is an error event, at the revision still being served.
    spec["space"] = json!("no-such-space");
    apply_repository(&client, &ns, "notify", spec).await;
    let failed = wait_repository(&client, &ns, "notify", "False", None, TIMEOUT).await;
    let reason = condition(&failed, "Ready").unwrap().reason;
    let warning = wait_for("the failure's event at the receiver", TIMEOUT, || async {
        received(&ns, "notify", &reason)
    })
    .await;
    assert_eq!(warning["severity"], "error");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("no-such-space"),
        "{warning}"
    );
    assert_eq!(
        warning["metadata"]["source.toolkit.fluxcd.io/revision"],
        revision
    );

    // Every post any test caused so far decoded with Flux's type and could be routed; the controller
    // counted its deliveries.
    let refused = event_receiver().refused();
    assert!(refused.is_empty(), "refused posts: {refused:#?}");
    let metrics = ctl.metrics().await;
    assert!(
        metrics.contains("confighub_notification_events_total{result=\"sent\"}"),
        "deliveries are counted"
    );
    assert!(
        !metrics.contains("confighub_notification_events_total{result=\"refused\"}"),
        "{metrics}"
    );
}
