//! What the controller stores: a deleted repository's artifacts go, a damaged or corrupt stored artifact
//! is found and rebuilt, an unchanged space is not rebuilt.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_repository_removes_its_artifacts_and_external_artifact() {
    let ctl = controller();
    let client = client().await;
    let (ns, _hub, _, chr) = ready_settings_repository(&client, "src-delete", "gone").await;
    let path = chr.status.unwrap().artifact.unwrap().path;
    let file = ctl.storage_path.join("artifacts").join(&path);
    assert!(file.is_file(), "{} is stored", file.display());

    let api: Api<ConfigHubRepository> = Api::namespaced(client.clone(), &ns);
    api.delete("gone", &DeleteParams::default()).await.unwrap();
    wait_gone(
        "the repository to be finalized",
        &api,
        "gone",
        READY_TIMEOUT,
    )
    .await;
    assert!(!file.exists(), "the artifact file is removed");
    assert!(
        !file.parent().unwrap().exists(),
        "the repository's storage folder is removed"
    );
    let eas: Api<ExternalArtifact> = Api::namespaced(client.clone(), &ns);
    assert!(
        eas.get_opt("gone").await.unwrap().is_none(),
        "the ExternalArtifact is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_stored_artifact_is_found_on_start_and_rebuilt() {
    let _alone = crate::support::controller::FULL_CHECKS_OF_EVERYTHING
        .lock()
        .await;
    let ctl = controller();
    let client = client().await;
    let (_ns, _hub, _, chr) = ready_settings_repository(&client, "src-corrupt", "disk").await;
    let artifact = chr.status.unwrap().artifact.unwrap();
    let file = ctl.storage_path.join("artifacts").join(&artifact.path);
    std::fs::write(&file, b"not the artifact any more").unwrap();

    tokio::task::spawn_blocking(|| controller().restart())
        .await
        .unwrap();

    // Verified on start (the corrupt file is dropped), rebuilt by the first reconcile: same digest.
    use sha2::Digest;
    wait_for("the artifact to be rebuilt", READY_TIMEOUT, || async {
        let bytes = std::fs::read(&file).ok()?;
        (format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))) == artifact.digest)
            .then_some(())
    })
    .await;
    assert!(
        controller().log_text().contains("failed verification"),
        "the controller says which stored artifact failed verification"
    );
    let served = http_get(&artifact.url).await.bytes().await.unwrap();
    assert_eq!(
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&served))),
        artifact.digest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_space_is_not_rebuilt_and_a_damaged_artifact_is() {
    let ctl = controller();
    let client = client().await;
    let (ns, _hub, _, chr) = ready_settings_repository(&client, "src-unchanged", "steady").await;
    let artifact = chr.status.unwrap().artifact.unwrap();
    let series = format!(
        "confighub_source_builds_skipped_total{{kind=\"ConfigHubRepository\",name=\"steady\",namespace=\"{ns}\"}}"
    );
    let skipped = |metrics: String| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    // The interval is 2 s: the next reconciles find the same units and reuse the stored artifact.
    wait_for(
        "a reconcile that skips the build",
        READY_TIMEOUT,
        || async { (skipped(controller().metrics().await) >= 2).then_some(()) },
    )
    .await;
    let repos: Api<ConfigHubRepository> = Api::namespaced(client.clone(), &ns);
    let now = repos.get("steady").await.unwrap();
    assert_eq!(
        now.status.unwrap().artifact.unwrap().revision,
        artifact.revision,
        "same units, same revision"
    );

    // Damaged on disk while running: the next reconcile notices and writes it again, same digest.
    let file = ctl.storage_path.join("artifacts").join(&artifact.path);
    std::fs::write(&file, b"not the artifact any more").unwrap();
    use sha2::Digest;
    wait_for(
        "the damaged artifact to be rebuilt",
        READY_TIMEOUT,
        || async {
            let bytes = std::fs::read(&file).ok()?;
            (format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))) == artifact.digest)
                .then_some(())
        },
    )
    .await;
    let served = http_get(&artifact.url).await.bytes().await.unwrap();
    assert_eq!(
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&served))),
        artifact.digest
    );
}
