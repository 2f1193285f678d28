//! ConfigHub behind a private CA and a proxy, end to end: the hub serves HTTPS with a certificate
//! from a CA made in the test, the repository trusts that CA through `spec.certSecretRef` (`ca.crt`)
//! and reaches the hub only through an authenticating `CONNECT` proxy named by
//! `spec.proxySecretRef`; kustomize-controller applies what came through. A wrong CA is refused as
//! `CertificateVerificationFailed`, a Secret without its key is `InvalidCertSecret` naming the key,
//! a wrong proxy password is refused by the proxy, and each recovers when its Secret is fixed in
//! place.

use std::time::Duration;

use confighub_source_controller::api::ConfigHubRepository;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::json;

use crate::support::proxy::TestProxy;
use crate::support::tls::TestCa;
use crate::support::*;

const READY_TIMEOUT: Duration = Duration::from_secs(60);

async fn delete_repository(client: &kube::Client, ns: &str, name: &str) {
    let api: Api<ConfigHubRepository> = Api::namespaced(client.clone(), ns);
    api.delete(name, &Default::default())
        .await
        .expect("deleting the repository");
    wait_gone("the repository to be cleaned up", &api, name, READY_TIMEOUT).await;
}

/// The value of the first metric line starting with `series` (labels included), 0 when absent.
fn metric(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn ready_message(chr: &ConfigHubRepository) -> String {
    condition(chr, "Ready").unwrap().message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_runs_over_tls_with_a_private_ca_through_an_authenticating_proxy() {
    let ctl = controller();
    let client = client().await;
    let ns = namespace(&client, "tls-proxy").await;
    let ca = TestCa::new("e2e private CA");
    let hub = TestHub::start_tls(ca.server_cert(&["127.0.0.1", "localhost"]), ca.cert_pem()).await;
    assert!(hub.url.starts_with("https://"), "{}", hub.url);
    let space_id = hub.space("secure").await;
    hub.put_unit(&space_id, "settings", &config_map("settings", "teal"))
        .await;
    let proxy_password = format!("proxy-pw-{}", uuid::Uuid::new_v4().simple());
    let proxy = TestProxy::start("alice", &proxy_password).await;

    token_secret(&client, &ns, "token", &hub.token).await;
    apply_secret(&client, &ns, "ca", json!({"ca.crt": ca.cert_pem()})).await;
    // First a wrong proxy password: the proxy refuses, the repository says so.
    apply_secret(
        &client,
        &ns,
        "proxy",
        json!({"address": proxy.address, "username": "alice", "password": "wrong-password"}),
    )
    .await;
    apply_repository(
        &client,
        &ns,
        "secure",
        json!({"url": hub.url, "space": "secure", "interval": "1s",
               "secretRef": {"name": "token"}, "certSecretRef": {"name": "ca"},
               "proxySecretRef": {"name": "proxy"}}),
    )
    .await;
    let refused = wait_repository(
        &client,
        &ns,
        "secure",
        "False",
        Some("ProxyAuthenticationFailed"),
        READY_TIMEOUT,
    )
    .await;
    assert!(proxy.refused() > 0, "the proxy saw no request");
    assert_eq!(proxy.tunnels(), 0);
    let message = ready_message(&refused);
    assert!(
        message.contains("Secret 'proxy'") && !message.contains("wrong-password"),
        "{message}"
    );

    // The password fixed in place: the next reconcile builds a new client and gets through.
    apply_secret(
        &client,
        &ns,
        "proxy",
        json!({"address": proxy.address, "username": "alice", "password": proxy_password}),
    )
    .await;
    let chr = wait_repository(&client, &ns, "secure", "True", None, READY_TIMEOUT).await;
    assert!(chr.status.unwrap().artifact.is_some());
    assert!(
        proxy.tunnels() > 0,
        "the repository became Ready without a tunnel through the proxy"
    );

    apply_kustomization(&client, &ns, "secure", "secure").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm = wait_for("the ConfigMap to be applied", READY_TIMEOUT, || async {
        cms.get_opt("settings").await.ok().flatten()
    })
    .await;
    assert_eq!(cm.data.unwrap()["color"], "teal");

    // An edit travels the same way.
    hub.put_unit(&space_id, "settings", &config_map("settings", "navy"))
        .await;
    wait_for_or_report(
        "the edit to be applied",
        READY_TIMEOUT,
        || async {
            let cm = cms.get_opt("settings").await.ok().flatten()?;
            (cm.data?.get("color").map(String::as_str) == Some("navy")).then_some(())
        },
        delivery_report(&client, &ns, "secure"),
    )
    .await;

    let log = ctl.log_text();
    assert!(
        !log.contains(&proxy_password) && !log.contains("wrong-password"),
        "the controller logged a proxy password"
    );
    // Once the hub and proxy are gone, a left-over repository would only keep the shared controller
    // retrying every second.
    delete_repository(&client, &ns, "secure").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_refused_with_a_clear_condition_until_the_secret_is_fixed() {
    let ctl = controller();
    // No controller restart (which resets the counter compared below) while this test runs.
    let _no_restart = crate::support::controller::FULL_CHECKS_OF_EVERYTHING
        .lock()
        .await;
    let client = client().await;
    let ns = namespace(&client, "tls-ca").await;
    let ca = TestCa::new("e2e hub CA");
    let stranger = TestCa::new("e2e unrelated CA");
    let hub = TestHub::start_tls(ca.server_cert(&["127.0.0.1"]), ca.cert_pem()).await;
    let space_id = hub.space("pinned").await;
    hub.put_unit(&space_id, "settings", &config_map("settings", "red"))
        .await;
    token_secret(&client, &ns, "token", &hub.token).await;

    // A Secret without `ca.crt`: the message names the Secret and the key.
    apply_secret(&client, &ns, "ca", json!({"ca.pem": ca.cert_pem()})).await;
    apply_repository(
        &client,
        &ns,
        "pinned",
        json!({"url": hub.url, "space": "pinned", "interval": "1s",
               "secretRef": {"name": "token"}, "certSecretRef": {"name": "ca"}}),
    )
    .await;
    let chr = wait_repository(
        &client,
        &ns,
        "pinned",
        "False",
        Some("InvalidCertSecret"),
        READY_TIMEOUT,
    )
    .await;
    let message = ready_message(&chr);
    assert!(
        message.contains("'ca'") && message.contains("'ca.crt'"),
        "{message}"
    );

    // The wrong CA: the hub's certificate is not trusted, and the condition says so (not
    // "ConfigHub is down", not AuthenticationFailed).
    let failed_calls = "confighub_client_requests_total{operation=\"ListSpaces\",code=\"error\"}";
    let before = metric(&ctl.metrics().await, failed_calls);
    apply_secret(&client, &ns, "ca", json!({"ca.crt": stranger.cert_pem()})).await;
    let chr = wait_repository(
        &client,
        &ns,
        "pinned",
        "False",
        Some("CertificateVerificationFailed"),
        READY_TIMEOUT,
    )
    .await;
    let message = ready_message(&chr);
    assert!(
        message.contains("certificate verification failed")
            && message.contains(&hub.url)
            && message.contains("Secret 'ca' key 'ca.crt'"),
        "{message}"
    );
    assert!(
        metric(&ctl.metrics().await, failed_calls) > before,
        "the refused handshakes are not counted in {failed_calls}"
    );

    // The right CA, fixed in place: Ready at the next reconcile.
    apply_secret(&client, &ns, "ca", json!({"ca.crt": ca.cert_pem()})).await;
    let chr = wait_repository(&client, &ns, "pinned", "True", None, READY_TIMEOUT).await;
    assert!(chr.status.unwrap().artifact.is_some());
    delete_repository(&client, &ns, "pinned").await;
}
