//! `hub --tls-cert/--tls-key` as a process, and the client's TLS settings against it: a client
//! trusting the hub's private CA gets through; one trusting another CA, or only the system roots, is
//! refused as a certificate verification failure at once (no retries: it cannot get better).

use confighub_source_controller::confighub::{Client, ClientOptions, Error};

use crate::cli::{start_with, terminate};
use crate::support::fast_options;
use crate::tls_support::TestCa;

fn trusting(ca_pem: Option<String>) -> ClientOptions {
    let mut options = fast_options();
    options.transport.tls.ca_pem = ca_pem.map(String::into_bytes);
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_serves_https_and_only_a_client_trusting_its_ca_gets_through() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("hub test CA");
    let server = ca.server_cert(&["127.0.0.1"]);
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &server.cert_pem).unwrap();
    std::fs::write(&key, &server.key_pem).unwrap();
    let data = dir.path().join("data");
    let args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let (child, origin) = start_with(&data, &args, Some("tls-token")).await;
    assert!(origin.starts_with("https://127.0.0.1:"), "{origin}");

    let trusted = Client::new(
        &origin,
        Some("tls-token".into()),
        trusting(Some(ca.cert_pem())),
    )
    .unwrap();
    trusted.me().await.unwrap();

    for (what, ca_pem) in [
        ("another CA", Some(TestCa::new("unrelated CA").cert_pem())),
        ("the system roots only", None),
    ] {
        let client = Client::new(&origin, Some("tls-token".into()), trusting(ca_pem)).unwrap();
        let err = client.me().await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Tls {
                    certificate: true,
                    ..
                }
            ),
            "{what}: {err:?}"
        );
        assert_eq!(err.tls_certificate_refused(), Some(true));
        assert_eq!(err.metric_label(), "tls");
        assert!(
            err.to_string().contains("certificate verification failed")
                && err.to_string().contains(&origin),
            "{what}: {err}"
        );
        assert_eq!(
            client.stats().requests,
            1,
            "{what}: a refused certificate was retried"
        );
    }
    terminate(child).await;
}

#[tokio::test]
async fn a_tls_certificate_without_its_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_confighub-source-controller"))
        .args(["hub", "--addr", "127.0.0.1:0", "--token", "t", "--data"])
        .arg(dir.path())
        .args(["--tls-cert", "/nonexistent.crt"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

#[tokio::test]
async fn an_unreadable_certificate_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_confighub-source-controller"))
        .args(["hub", "--addr", "127.0.0.1:0", "--token", "t", "--data"])
        .arg(dir.path())
        .args([
            "--tls-cert",
            "/nonexistent.crt",
            "--tls-key",
            "/nonexistent.key",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-cert /nonexistent.crt"), "{stderr}");
}
