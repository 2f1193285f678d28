//! `hub import`: the library function and, once, the real binary.

use std::path::PathBuf;

use confighub_source_controller::confighub::DataDownload;
use confighub_source_controller::hub::import::{ImportAction, import_paths};

use crate::support::{TOKEN, TestHub};

fn write(dir: &std::path::Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_creates_updates_and_skips_unchanged() {
    let hubdir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(hubdir.path()).await;
    let c = hub.client();
    let files = tempfile::tempdir().unwrap();
    write(
        files.path(),
        "web.yaml",
        "kind: Deployment\nmetadata: {name: web}\n",
    );
    write(files.path(), "db.yml", "kind: StatefulSet\n");
    write(files.path(), "my app.yaml", "kind: Service\n");
    write(files.path(), "README.md", "ignored");
    let paths = vec![files.path().to_path_buf()];

    let first = import_paths(&c, "imported", &paths).await.unwrap();
    let summary: Vec<(&str, ImportAction, i64)> = first
        .iter()
        .map(|o| (o.slug.as_str(), o.action, o.head_revision_num))
        .collect();
    assert_eq!(
        summary,
        [
            ("db", ImportAction::Created, 2),
            ("my-app", ImportAction::Created, 2),
            ("web", ImportAction::Created, 2)
        ]
    );
    let space = c.resolve_space("imported").await.unwrap();
    let units = c.list_units(&space.space_id, None, &[]).await.unwrap();
    assert_eq!(units.len(), 3);
    assert!(units.iter().all(|u| u.toolchain_type == "Kubernetes/YAML"));
    let web = units.iter().find(|u| u.slug == "web").unwrap();
    match c
        .download_unit_data(&space.space_id, &web.unit_id, None)
        .await
        .unwrap()
    {
        DataDownload::Data { bytes, .. } => {
            assert_eq!(bytes.as_ref(), b"kind: Deployment\nmetadata: {name: web}\n")
        }
        DataDownload::NotModified => panic!("304 without If-None-Match"),
    }

    // Unchanged files make no revision; a changed one makes exactly one.
    write(
        files.path(),
        "db.yml",
        "kind: StatefulSet\nspec: {replicas: 3}\n",
    );
    let second = import_paths(&c, "imported", &paths).await.unwrap();
    let summary: Vec<(&str, ImportAction, i64)> = second
        .iter()
        .map(|o| (o.slug.as_str(), o.action, o.head_revision_num))
        .collect();
    assert_eq!(
        summary,
        [
            ("db", ImportAction::Updated, 3),
            ("my-app", ImportAction::Unchanged, 2),
            ("web", ImportAction::Unchanged, 2)
        ]
    );
    let revs = c
        .list_revisions(&space.space_id, &web.unit_id, None, None, None)
        .await
        .unwrap();
    assert_eq!(revs.len(), 2);
    assert!(revs[1].description.contains("web.yaml"));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_cli_talks_to_a_running_hub() {
    let hubdir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(hubdir.path()).await;
    let files = tempfile::tempdir().unwrap();
    let one = write(files.path(), "frontend.yaml", "kind: ConfigMap\n");
    let bin = env!("CARGO_BIN_EXE_confighub-source-controller");

    let out = tokio::process::Command::new(bin)
        .args([
            "hub",
            "import",
            "--space",
            "cli-space",
            "--url",
            &hub.origin,
        ])
        .arg(&one)
        .env("CONFIGHUB_TOKEN", TOKEN)
        .env_remove("CONFIGHUB_URL")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("created unit frontend (revision 2)"),
        "{stdout}"
    );

    let c = hub.client();
    let space = c.resolve_space("cli-space").await.unwrap();
    let units = c.list_units(&space.space_id, None, &[]).await.unwrap();
    assert_eq!(units.len(), 1);
    assert_eq!(units[0].data_size, "kind: ConfigMap\n".len() as i64);

    let wrong = "cli-wrong-token-4471";
    let out = tokio::process::Command::new(bin)
        .args([
            "hub",
            "import",
            "--space",
            "cli-space",
            "--url",
            &hub.origin,
            "--token",
            wrong,
        ])
        .arg(&one)
        .env_remove("CONFIGHUB_TOKEN")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains(wrong), "token leaked: {stderr}");
    hub.stop().await;
}
