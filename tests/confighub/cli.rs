//! `hub` as a process: serves on the address it prints, refuses to start without a token, and
//! shuts down cleanly on SIGTERM with its data kept.

use std::process::Stdio;
use std::time::Duration;

use confighub_source_controller::confighub::{Client, Credentials, SpaceCreate};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::fast_options;

const BIN: &str = env!("CARGO_BIN_EXE_confighub-source-controller");

async fn start(data: &std::path::Path, token: &str) -> (tokio::process::Child, String) {
    start_with(data, &[], Some(token)).await
}

pub(crate) async fn start_with(
    data: &std::path::Path,
    args: &[&str],
    token: Option<&str>,
) -> (tokio::process::Child, String) {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["hub", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args);
    match token {
        Some(token) => cmd.env("CONFIGHUB_TOKEN", token),
        None => cmd.env_remove("CONFIGHUB_TOKEN"),
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("hub prints its address")
        .unwrap()
        .unwrap();
    let origin = line
        .strip_prefix("hub listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, origin)
}

pub(crate) async fn terminate(mut child: tokio::process::Child) {
    let pid = child.id().unwrap() as i32;
    // SAFETY: sends SIGTERM to the child we spawned and still own.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("hub exits on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_serves_persists_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let (child, origin) = start(data.path(), "cli-serve-token").await;
    let client = Client::new(&origin, Some("cli-serve-token".into()), fast_options()).unwrap();
    client.me().await.unwrap();
    let req = SpaceCreate {
        slug: "kept".into(),
        ..Default::default()
    };
    let space = client.create_space(&req, false).await.unwrap();
    terminate(child).await;

    let (child, origin) = start(data.path(), "cli-serve-token").await;
    let client = Client::new(&origin, Some("cli-serve-token".into()), fast_options()).unwrap();
    assert_eq!(
        client.resolve_space("kept").await.unwrap().space_id,
        space.space_id
    );
    terminate(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_refuses_to_start_without_a_token_or_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["hub", "--addr", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .env_remove("CONFIGHUB_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("token"));

    let out = tokio::process::Command::new(BIN)
        .args(["hub", "--addr", "127.0.0.1:0", "--token", "t"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_serves_workers_with_expiring_tokens() {
    let data = tempfile::tempdir().unwrap();
    let (child, origin) = start_with(
        data.path(),
        &[
            "--worker",
            "w-1=cli-secret",
            "--worker",
            "w-2=other",
            "--token-ttl",
            "30s",
        ],
        None,
    )
    .await;
    for (id, secret) in [("w-1", "cli-secret"), ("w-2", "other")] {
        let client = Client::with_credentials(
            &origin,
            Some(Credentials::worker(id, secret)),
            fast_options(),
        )
        .unwrap();
        client.me().await.unwrap();
        assert_eq!(client.stats().token_exchanges, 1);
    }
    let wrong = Client::with_credentials(
        &origin,
        Some(Credentials::worker("w-1", "other")),
        fast_options(),
    )
    .unwrap();
    assert!(wrong.me().await.unwrap_err().is_credentials_rejected());
    terminate(child).await;

    for bad in [["--worker", "no-equals-sign"], ["--token-ttl", "soon"]] {
        let out = tokio::process::Command::new(BIN)
            .args(["hub", "--addr", "127.0.0.1:0", "--token", "t", "--data"])
            .arg(data.path())
            .args(bad)
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "{bad:?} is refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(bad[0]), "{stderr}");
        assert!(!stderr.contains("cli-secret"));
    }
}
