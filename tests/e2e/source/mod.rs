//! The source end to end: units in a local hub → ConfigHubRepository → artifact → ExternalArtifact →
//! applied by the real kustomize-controller; edits, deletions, release mode, faults and clean-up.

mod stored;

use std::time::Duration;

use confighub_source_controller::api::{ConfigHubRepository, ExternalArtifact};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use crate::support::*;

const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn spec(hub: &TestHub, space: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({"url": hub.url, "space": space, "interval": "2s", "secretRef": {"name": "confighub"}});
    if let (Some(obj), Some(more)) = (spec.as_object_mut(), extra.as_object()) {
        obj.extend(more.clone());
    }
    spec
}

/// A hub space `name` with one ConfigMap unit, the token Secret, and a Ready repository `name` over it
/// in a fresh namespace: the setup the fault and storage tests share.
async fn ready_settings_repository(
    client: &kube::Client,
    prefix: &str,
    name: &str,
) -> (TestNamespace, TestHub, String, ConfigHubRepository) {
    let ns = namespace(client, prefix).await;
    let hub = TestHub::start().await;
    let space_id = hub.space(name).await;
    hub.put_unit(&space_id, "settings", &config_map("settings", "blue"))
        .await;
    token_secret(client, &ns, "confighub", &hub.token).await;
    apply_repository(client, &ns, name, spec(&hub, name, json!({}))).await;
    let chr = wait_repository(client, &ns, name, "True", None, READY_TIMEOUT).await;
    (ns, hub, space_id, chr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_reach_the_cluster_and_follow_edits_and_deletions() {
    controller();
    let client = client().await;
    let ns = namespace(&client, "src-flow").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("apps").await;
    hub.put_unit(&space_id, "settings", &config_map("settings", "blue"))
        .await;
    let web = hub
        .put_unit(&space_id, "web", &deployment("web", "nginx:1.27", 1))
        .await;
    token_secret(&client, &ns, "confighub", &hub.token).await;
    apply_repository(&client, &ns, "apps", spec(&hub, "apps", json!({}))).await;

    // `kubectl wait` is how users and scripts wait for a source.
    let (ok, out, err) = control_plane().run_tool(
        "kubectl",
        &[
            "wait",
            "--for=condition=Ready",
            "chr/apps",
            "-n",
            &ns,
            "--timeout=60s",
        ],
    );
    assert!(ok, "kubectl wait failed: {out}{err}");
    let chr = wait_repository(
        &client,
        &ns,
        "apps",
        "True",
        Some("Succeeded"),
        READY_TIMEOUT,
    )
    .await;
    let artifact = chr
        .status
        .as_ref()
        .unwrap()
        .artifact
        .clone()
        .expect("status.artifact");
    assert!(
        artifact.revision.starts_with("head@sha256:"),
        "{}",
        artifact.revision
    );
    assert_eq!(
        artifact.digest,
        format!(
            "sha256:{}",
            artifact.revision.trim_start_matches("head@sha256:")
        )
    );
    assert_eq!(
        artifact
            .metadata
            .get("confighub.com/unit-count")
            .map(String::as_str),
        Some("2")
    );

    // The ExternalArtifact mirrors it, points back at the repository and is owned by it.
    let ea = Api::<ExternalArtifact>::namespaced(client.clone(), &ns)
        .get("apps")
        .await
        .unwrap();
    assert_eq!(
        ea.status.as_ref().unwrap().artifact.as_ref(),
        Some(&artifact)
    );
    let source_ref = ea.spec.source_ref.clone().unwrap();
    assert_eq!(
        (source_ref.kind.as_str(), source_ref.name.as_str()),
        ("ConfigHubRepository", "apps")
    );
    let owner = &ea.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("ConfigHubRepository", chr.metadata.uid.as_deref().unwrap())
    );

    // The artifact is served where the status says, with the digest it claims.
    let bytes = http_get(&artifact.url).await.bytes().await.unwrap();
    use sha2::Digest;
    assert_eq!(
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))),
        artifact.digest
    );

    apply_kustomization(&client, &ns, "apps", "apps").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm = wait_for("the ConfigMap to be applied", READY_TIMEOUT, || async {
        cms.get_opt("settings").await.ok().flatten()
    })
    .await;
    let labels = cm.metadata.labels.clone().unwrap_or_default();
    let annotations = cm.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        labels.get("confighub.com/UnitSlug").map(String::as_str),
        Some("settings")
    );
    assert_eq!(
        annotations
            .get("confighub.com/SpaceName")
            .map(String::as_str),
        Some("apps")
    );
    assert_eq!(annotations.get("confighub.com/SpaceID"), Some(&space_id));
    assert_eq!(
        annotations
            .get("confighub.com/RevisionNum")
            .map(String::as_str),
        Some("2")
    );
    // kustomize-controller applies the objects one request after another: the Deployment may come a
    // moment after the ConfigMap.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    wait_for(
        "the Deployment unit to be applied",
        READY_TIMEOUT,
        || async { deployments.get_opt("web").await.ok().flatten() },
    )
    .await;

    // An edit in ConfigHub becomes a new revision in the cluster.
    hub.put_unit(&space_id, "settings", &config_map("settings", "green"))
        .await;
    wait_for("the edit to reach the cluster", READY_TIMEOUT, || async {
        (config_map_color(&cms, "settings").await.as_deref() == Some("green")).then_some(())
    })
    .await;
    let cm = cms.get("settings").await.unwrap();
    assert_eq!(
        cm.metadata
            .annotations
            .unwrap()
            .get("confighub.com/RevisionNum")
            .map(String::as_str),
        Some("3")
    );

    // A deleted unit is pruned.
    hub.delete_unit(&space_id, &web).await;
    wait_gone(
        "the Deployment to be pruned",
        &deployments,
        "web",
        READY_TIMEOUT,
    )
    .await;

    // The real flux CLI sees the source and traces an applied object back to the repository.
    let chr = wait_repository(&client, &ns, "apps", "True", None, READY_TIMEOUT).await;
    let revision = chr.status.unwrap().artifact.unwrap().revision;
    let (ok, out, err) =
        control_plane().run_tool("flux", &["get", "sources", "external", "-n", &ns]);
    assert!(ok, "flux get sources external failed: {err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("apps"))
        .unwrap_or_else(|| panic!("no row for apps in:\n{out}"));
    // flux shortens the checksum to 8 characters.
    let short = &revision[..revision.find(':').unwrap() + 9];
    assert!(
        row.contains("True") && row.contains(short),
        "flux lists it Ready at {short}: {row}"
    );
    assert!(
        row.contains(&format!("ConfigHubRepository/{ns}/apps")),
        "flux shows the source: {row}"
    );
    let (ok, out, err) =
        control_plane().run_tool("flux", &["trace", "configmap", "settings", "-n", &ns]);
    assert!(ok, "flux trace failed: {out}{err}");
    assert!(
        out.contains("ConfigHubRepository"),
        "flux trace reaches the ConfigHubRepository:\n{out}"
    );

    // Flux's reconcile histogram is exported for this object (waited for: another test may have
    // just restarted the shared controller, which starts its series afresh at the next reconcile).
    let series = format!(
        "gotk_reconcile_duration_seconds_count{{kind=\"ConfigHubRepository\",name=\"apps\",namespace=\"{ns}\"}}"
    );
    wait_for(
        "the repository's reconcile histogram in /metrics",
        READY_TIMEOUT,
        || async { controller().metrics().await.contains(&series).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_released_mode_ignores_edits_until_a_release() {
    controller();
    // No controller restart (which resets the bulk-read counter read below) while this test runs.
    let _no_restart = crate::support::controller::FULL_CHECKS_OF_EVERYTHING
        .lock()
        .await;
    let client = client().await;
    let ns = namespace(&client, "src-released").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("rel").await;
    hub.put_releasable_unit(&space_id, "settings", &config_map("settings", "blue"))
        .await;
    // Released by the service's rules: a unit off the release Target never is, and one with validation
    // errors blocks the release until it is fixed.
    hub.put_unit(&space_id, "elsewhere", &config_map("elsewhere", "green"))
        .await;
    let broken = hub
        .put_releasable_unit(&space_id, "broken", "apiVersion: v1\nkind: ConfigMap\n")
        .await;
    token_secret(&client, &ns, "confighub", &hub.token).await;
    apply_repository(
        &client,
        &ns,
        "rel",
        spec(&hub, "rel", json!({"revision": "LastReleased"})),
    )
    .await;

    // Never released: Ready, but the units are left out and the message says why.
    let chr = wait_repository(&client, &ns, "rel", "True", None, READY_TIMEOUT).await;
    let ready = condition(&chr, "Ready").unwrap();
    for words in [
        "left out 3 unit(s) never released",
        "1 not on the space's release target ('elsewhere')",
        "1 with validation errors, which block a release ('broken')",
        "1 releasable but not released yet ('settings')",
    ] {
        assert!(ready.message.contains(words), "{words}: {}", ready.message);
    }
    assert!(
        chr.status
            .unwrap()
            .artifact
            .unwrap()
            .revision
            .starts_with("released@sha256:")
    );
    let refused = hub.try_release(&space_id).await.unwrap_err();
    assert_eq!(refused.status(), Some(422), "{refused}");
    hub.delete_unit(&space_id, &broken).await;

    hub.release(&space_id).await;
    apply_kustomization(&client, &ns, "rel", "rel").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for("the released unit to be applied", READY_TIMEOUT, || async {
        (config_map_color(&cms, "settings").await.as_deref() == Some("blue")).then_some(())
    })
    .await;
    let released = wait_repository(&client, &ns, "rel", "True", None, READY_TIMEOUT).await;
    let released_revision = released.status.unwrap().artifact.unwrap().revision;
    // The released data came in a bulk read, counted by the client metric.
    let metrics = controller().metrics().await;
    assert!(
        metrics
            .contains("confighub_client_requests_total{operation=\"SearchUnitData\",code=\"200\"}"),
        "no bulk read in /metrics"
    );

    // An unreleased edit: several reconciles later, nothing changed.
    hub.put_unit(&space_id, "settings", &config_map("settings", "red"))
        .await;
    let api: Api<ConfigHubRepository> = Api::namespaced(client.clone(), &ns);
    for round in 0..3 {
        let token = format!("round-{round}");
        api.patch(
            "rel",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
            ),
        )
        .await
        .unwrap();
        let chr = wait_for(
            "the requested reconcile to be handled",
            READY_TIMEOUT,
            || async {
                let chr = api.get("rel").await.ok()?;
                (chr.status.as_ref()?.last_handled_reconcile_at.as_deref() == Some(token.as_str()))
                    .then_some(chr)
            },
        )
        .await;
        assert_eq!(
            chr.status.unwrap().artifact.unwrap().revision,
            released_revision
        );
    }
    assert_eq!(
        config_map_color(&cms, "settings").await.as_deref(),
        Some("blue")
    );

    hub.release(&space_id).await;
    wait_for("the new release to be applied", READY_TIMEOUT, || async {
        (config_map_color(&cms, "settings").await.as_deref() == Some("red")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_hub_or_a_broken_unit_keeps_the_last_artifact_and_recovers() {
    controller();
    let client = client().await;
    let (ns, mut hub, space_id, good) =
        ready_settings_repository(&client, "src-faults", "faulty").await;
    let good_artifact = good.status.unwrap().artifact.unwrap();
    apply_kustomization(&client, &ns, "faulty", "faulty").await;
    wait_for("the Kustomization to be Ready", READY_TIMEOUT, || async {
        kustomization_ready(&client, &ns, "faulty")
            .await
            .filter(|(s, _)| s == "True")
    })
    .await;

    // ConfigHub goes away: FetchFailed, the last artifact is still served, Flux stays Ready.
    hub.stop().await;
    let chr = wait_repository(
        &client,
        &ns,
        "faulty",
        "False",
        Some("ConfigHubUnavailable"),
        READY_TIMEOUT,
    )
    .await;
    let fetch = condition(&chr, "FetchFailed").expect("a FetchFailed condition");
    assert_eq!(fetch.status, "True");
    assert!(
        fetch.message.contains("faulty"),
        "the message names the space: {}",
        fetch.message
    );
    assert_eq!(
        chr.status.as_ref().unwrap().artifact.as_ref(),
        Some(&good_artifact)
    );
    assert_eq!(http_get(&good_artifact.url).await.status(), 200);
    let (ks_status, _) = kustomization_ready(&client, &ns, "faulty").await.unwrap();
    assert_eq!(
        ks_status, "True",
        "the Kustomization stays Ready while the source cannot fetch"
    );

    // It comes back: Ready again within an interval or two, without anyone touching the object.
    hub.restart().await;
    let chr = wait_repository(&client, &ns, "faulty", "True", None, READY_TIMEOUT).await;
    assert!(condition(&chr, "FetchFailed").is_none());

    // A unit with invalid YAML: BuildFailed naming the unit, previous artifact kept.
    hub.put_unit(
        &space_id,
        "broken",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n",
    )
    .await;
    let chr = wait_repository(
        &client,
        &ns,
        "faulty",
        "False",
        Some("InvalidUnit"),
        READY_TIMEOUT,
    )
    .await;
    let ready = condition(&chr, "Ready").unwrap();
    assert!(
        ready.message.contains("broken"),
        "the message names the unit: {}",
        ready.message
    );
    assert_eq!(
        chr.status.as_ref().unwrap().artifact.as_ref(),
        Some(&good_artifact)
    );
    hub.put_unit(&space_id, "broken", &config_map("fixed", "yellow"))
        .await;
    let chr = wait_repository(&client, &ns, "faulty", "True", None, READY_TIMEOUT).await;
    assert_ne!(
        chr.status.unwrap().artifact.unwrap().digest,
        good_artifact.digest
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for("the fixed unit to be applied", READY_TIMEOUT, || async {
        config_map_color(&cms, "fixed").await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_problems_are_named_and_recover() {
    controller();
    let client = client().await;
    let ns = namespace(&client, "src-token").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("secure").await;
    hub.put_unit(&space_id, "settings", &config_map("settings", "blue"))
        .await;
    apply_repository(&client, &ns, "secure", spec(&hub, "secure", json!({}))).await;

    let chr = wait_repository(
        &client,
        &ns,
        "secure",
        "False",
        Some("SecretNotFound"),
        READY_TIMEOUT,
    )
    .await;
    let fetch = condition(&chr, "FetchFailed").unwrap();
    assert_eq!(fetch.reason, "SecretNotFound");
    assert!(
        fetch.message.contains("confighub"),
        "names the Secret: {}",
        fetch.message
    );

    token_secret(&client, &ns, "confighub", "not-the-token").await;
    let chr = wait_for(
        "the rejected token to be reported",
        READY_TIMEOUT,
        || async {
            let chr = Api::<ConfigHubRepository>::namespaced(client.clone(), &ns)
                .get("secure")
                .await
                .ok()?;
            condition(&chr, "FetchFailed")
                .filter(|c| c.reason == "AuthenticationFailed")
                .map(|_| chr)
        },
    )
    .await;
    let message = condition(&chr, "Ready").unwrap().message;
    assert!(
        message.contains("401"),
        "says the token was rejected: {message}"
    );
    assert!(
        !message.contains("not-the-token"),
        "never shows the token: {message}"
    );

    token_secret(&client, &ns, "confighub", &hub.token).await;
    wait_repository(&client, &ns, "secure", "True", None, READY_TIMEOUT).await;
    let events = control_plane()
        .run_tool("kubectl", &["get", "events", "-n", &ns, "-o", "json"])
        .1;
    assert!(
        events.contains("AuthenticationFailed") && events.contains("NewArtifact"),
        "events record both"
    );
    assert!(!events.contains("not-the-token"));
    assert!(
        !controller().log_text().contains(&hub.token),
        "the controller never logs a token"
    );
}

/// The units in the repository's current artifact, from its metadata.
fn unit_count(chr: &ConfigHubRepository) -> Option<String> {
    chr.status
        .as_ref()?
        .artifact
        .as_ref()?
        .metadata
        .get("confighub.com/unit-count")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_units_are_packed_only_when_the_repository_asks_for_them() {
    let client = client().await;
    controller();
    let (ns, hub, space_id, chr) = ready_settings_repository(&client, "src-hidden", "hidden").await;
    assert_eq!(unit_count(&chr).as_deref(), Some("1"));
    // A hidden unit (as ConfigHub hides its BackingUnits): left out, like the service's lists do.
    hub.put_hidden_unit(
        &space_id,
        "backing",
        "BackingUnit",
        &config_map("backing", "grey"),
    )
    .await;
    hub.put_unit(&space_id, "extra", &config_map("extra", "green"))
        .await;
    let api: Api<ConfigHubRepository> = Api::namespaced(client.clone(), &ns);
    // A reconcile requested after both units exist has run: its artifact holds the visible one only.
    api.patch(
        "hidden",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "hidden-1"}}}),
        ),
    )
    .await
    .unwrap();
    let chr = wait_for("the requested reconcile", READY_TIMEOUT, || async {
        let chr = api.get("hidden").await.ok()?;
        let handled = chr.status.as_ref()?.last_handled_reconcile_at.as_deref() == Some("hidden-1");
        handled.then_some(chr)
    })
    .await;
    assert_eq!(
        unit_count(&chr).as_deref(),
        Some("2"),
        "the hidden unit is left out"
    );
    // Asked for: the hidden unit is packed too.
    apply_repository(
        &client,
        &ns,
        "hidden",
        spec(&hub, "hidden", json!({"includeHidden": true})),
    )
    .await;
    wait_for("the hidden unit packed", READY_TIMEOUT, || async {
        let chr = api.get("hidden").await.ok()?;
        (unit_count(&chr).as_deref() == Some("3")).then_some(())
    })
    .await;
}
