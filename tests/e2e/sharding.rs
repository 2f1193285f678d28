//! Flux-style sharding: a second controller started with
//! `--watch-label-selector sharding.fluxcd.io/key=shard-b` owns the repositories with that label, the
//! shared controller (`!sharding.fluxcd.io/key`) the rest. Each reconciles and serves only its own, and
//! kustomize-controller applies both, fetching each artifact from the shard that built it.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::json;

use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(90);

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  from: {name}\n")
}

fn reconciles(ns: &str, name: &str) -> String {
    format!(
        "gotk_reconcile_duration_seconds_count{{kind=\"ConfigHubRepository\",name=\"{name}\",namespace=\"{ns}\"}}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_each_reconcile_and_serve_only_their_own_repositories() {
    let main = controller();
    // No controller restart (which resets the counters read below) while this test runs.
    let _no_restart = crate::support::controller::FULL_CHECKS_OF_EVERYTHING
        .lock()
        .await;
    let shard = Shard::start("shard-b", None, &[]);
    let client = client().await;
    let ns = namespace(&client, "shards").await;
    let hub = TestHub::start().await;
    for space in ["main", "shard"] {
        let id = hub.space(space).await;
        hub.put_unit(&id, "settings", &config_map(&format!("from-{space}")))
            .await;
    }
    token_secret(&client, &ns, "confighub", &hub.token).await;
    let spec = |space: &str| json!({"url": hub.url, "space": space, "interval": "1m", "secretRef": {"name": "confighub"}});
    apply_repository(&client, &ns, "main-owned", spec("main")).await;
    apply_repository_labelled(
        &client,
        &ns,
        "shard-owned",
        json!({ SHARD_KEY: "shard-b" }),
        spec("shard"),
    )
    .await;
    let main_owned = wait_repository(&client, &ns, "main-owned", "True", None, TIMEOUT).await;
    let shard_owned = wait_repository(&client, &ns, "shard-owned", "True", None, TIMEOUT).await;

    // Each artifact is served by the controller that built it.
    let url = |chr: &confighub_source_controller::api::ConfigHubRepository| {
        chr.status.clone().unwrap().artifact.unwrap().url
    };
    let main_storage = main.storage_path.clone();
    assert!(
        !url(&main_owned).contains(&shard.storage_addr),
        "{}",
        url(&main_owned)
    );
    assert!(
        url(&shard_owned).starts_with(&format!("http://{}/", shard.storage_addr)),
        "{}",
        url(&shard_owned)
    );
    let served = http_get(&url(&shard_owned)).await;
    assert_eq!(served.status(), 200);
    let stored = |root: &std::path::Path, name: &str| {
        root.join("artifacts/confighubrepository")
            .join(ns.as_str())
            .join(name)
            .exists()
    };
    assert!(stored(&main_storage, "main-owned") && stored(&shard.storage_path, "shard-owned"));
    assert!(
        !stored(&main_storage, "shard-owned") && !stored(&shard.storage_path, "main-owned"),
        "neither stored the other's artifact"
    );

    // kustomize-controller applies both, fetching from each shard.
    apply_kustomization(&client, &ns, "main-apps", "main-owned").await;
    apply_kustomization(&client, &ns, "shard-apps", "shard-owned").await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for name in ["from-main", "from-shard"] {
        wait_for(&format!("ConfigMap {name} applied"), TIMEOUT, || async {
            config_maps.get_opt(name).await.ok().flatten()
        })
        .await;
    }

    // Each reconciled only its own: the series of its own repository is proof it reconciled while the
    // other's was in the same list.
    let shard_metrics = shard.metrics().await;
    assert!(
        shard_metrics.contains(&reconciles(&ns, "shard-owned")),
        "{shard_metrics}"
    );
    assert!(!shard_metrics.contains(&reconciles(&ns, "main-owned")));
    let main_metrics = main.metrics().await;
    assert!(main_metrics.contains(&reconciles(&ns, "main-owned")));
    assert!(!main_metrics.contains(&reconciles(&ns, "shard-owned")));
}
