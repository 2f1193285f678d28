//! `hub --tls-cert/--tls-key` as a process, and the client's TLS settings against it: a client
//! trusting the hub's private CA gets through; one trusting another CA, or only the system roots, is
//! refused as a certificate verification failure at once (no retries: it cannot get better). And a
//! client certificate (`tls.crt` + `tls.key`) is presented to a server that requires one.

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

/// A server that requires a client certificate signed by `ca` answers `{}` to everything.
async fn mutual_tls_server(ca: &TestCa) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let server = ca.server_cert(&["127.0.0.1"]);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder(std::sync::Arc::new(roots))
        .build()
        .unwrap();
    let config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(&server.cert_pem).unwrap()],
            PrivateKeyDer::from_pem_slice(&server.key_pem).unwrap(),
        )
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let origin = format!("https://{}", listener.local_addr().unwrap());
    let app =
        axum::Router::new().fallback(|| async { ([("content-type", "application/json")], "{}") });
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(config));
    let server = axum_server::from_tcp_rustls(listener, tls).unwrap();
    tokio::spawn(async move { server.serve(app.into_make_service()).await });
    origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_tls_crt_and_tls_key_is_presented() {
    let ca = TestCa::new("mutual TLS CA");
    let origin = mutual_tls_server(&ca).await;
    let client_cert = ca.server_cert(&["controller"]);

    let mut options = trusting(Some(ca.cert_pem()));
    options.transport.tls.client_identity = Some((
        client_cert.cert_pem.clone(),
        confighub_source_controller::confighub::Token::new(
            String::from_utf8(client_cert.key_pem.clone()).unwrap(),
        ),
    ));
    let with_cert = Client::new(&origin, Some("t".into()), options).unwrap();
    with_cert.me().await.unwrap();

    let without = Client::new(&origin, Some("t".into()), trusting(Some(ca.cert_pem()))).unwrap();
    let err = without.me().await.unwrap_err();
    assert!(
        err.tls_certificate_refused().is_some(),
        "a missing client certificate is a TLS failure: {err:?}"
    );
}
