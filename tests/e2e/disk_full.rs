//! A real full disk: a shard whose storage is a 4 MiB tmpfs (mounted in a mount namespace of its own by
//! `unshare`, so this needs no privilege beyond user namespaces). Filled up, a new revision fails with
//! `StorageOperationFailed` while the last artifact keeps being served, checked by digest; when space
//! returns, the new revision is stored and served.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use confighub_source_controller::api::{Artifact, ConfigHubRepository};
use kube::api::Api;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(90);

fn config_map(color: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: {color}\n"
    )
}

/// GETs the artifact and checks the bytes against its digest.
async fn served_intact(artifact: &Artifact) -> bool {
    let response = http_get(&artifact.url).await;
    if response.status() != 200 {
        return false;
    }
    let bytes = response.bytes().await.unwrap();
    format!("sha256:{}", hex::encode(Sha256::digest(&bytes))) == artifact.digest
}

/// Writes zeros into `path` until the file system refuses (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("creating the filler");
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(err) => {
                assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
                break;
            }
        }
    }
    let _ = file.sync_all();
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_storage_operation_failed_and_the_last_artifact_keeps_serving() {
    let dir = std::env::temp_dir().join(format!("chsc-e2e-{}-disk", std::process::id()));
    let storage = dir.join("tmpfs");
    std::fs::create_dir_all(&storage).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=4m tmpfs '{}' && exec \"$@\"",
        storage.display()
    );
    let wrapper = [
        "unshare",
        "--map-root-user",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script.as_str(),
        "sh",
    ];
    let shard = Shard::start("disk-full", Some(&storage), &wrapper);
    // The shard's view of its storage: the tmpfs lives in its mount namespace.
    let inside: PathBuf = Path::new(&format!("/proc/{}/root", shard.pid()))
        .join(storage.strip_prefix("/").expect("an absolute temp dir"));
    let client = client().await;
    let ns = namespace(&client, "disk-full").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("disk").await;
    hub.put_unit(&space_id, "settings", &config_map("blue"))
        .await;
    token_secret(&client, &ns, "confighub", &hub.token).await;
    apply_repository_labelled(
        &client,
        &ns,
        "disk",
        json!({ SHARD_KEY: "disk-full" }),
        json!({"url": hub.url, "space": "disk", "interval": "2s", "secretRef": {"name": "confighub"}}),
    )
    .await;
    let chr = wait_repository(&client, &ns, "disk", "True", None, TIMEOUT).await;
    let good = chr.status.unwrap().artifact.unwrap();
    assert!(served_intact(&good).await);
    assert!(
        inside.join("artifacts").exists(),
        "the shard's storage is the tmpfs ({})",
        inside.display()
    );

    let filler = inside.join("filler");
    let written = fill(&filler);
    assert!(written < 4 * 1024 * 1024, "a 4 MiB tmpfs took {written} B");
    hub.put_unit(&space_id, "settings", &config_map("green"))
        .await;

    let failed = wait_repository(
        &client,
        &ns,
        "disk",
        "False",
        Some("StorageOperationFailed"),
        TIMEOUT,
    )
    .await;
    let message = condition(&failed, "Ready").unwrap().message;
    assert!(
        message.to_lowercase().contains("space"),
        "the message says the disk is full: {message}"
    );
    let status = failed.status.unwrap();
    assert_eq!(
        status.artifact.as_ref().map(|a| &a.digest),
        Some(&good.digest),
        "the status keeps the last good artifact"
    );
    assert!(
        served_intact(&good).await,
        "the last artifact is served intact on a full disk"
    );
    let metrics = shard.metrics().await;
    assert!(
        metrics.contains(&format!(
            "confighub_source_reconcile_failures_total{{kind=\"ConfigHubRepository\",name=\"disk\",namespace=\"{ns}\",reason=\"StorageOperationFailed\"}}"
        )),
        "the failure is counted"
    );

    // Space returns: the new revision is stored and served, by itself.
    std::fs::remove_file(&filler).unwrap();
    let repos: Api<ConfigHubRepository> = Api::namespaced(client.clone(), &ns);
    let recovered = wait_for("the new revision after space returned", TIMEOUT, || async {
        let chr = repos.get("disk").await.ok()?;
        let ready = condition(&chr, "Ready")?;
        let artifact = chr.status?.artifact?;
        (ready.status == "True" && artifact.digest != good.digest).then_some(artifact)
    })
    .await;
    assert!(served_intact(&recovered).await);
}
