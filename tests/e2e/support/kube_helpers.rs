//! Small helpers over kube-rs for the tests: a client per test, a namespace per test, and polling.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::control_plane;

/// A client for the shared control plane, bound to the calling test's runtime.
pub async fn client() -> Client {
    let cp = control_plane();
    let kubeconfig = Kubeconfig::read_from(&cp.kubeconfig).expect("reading the test kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("loading the test kubeconfig");
    Client::try_from(config).expect("building a kube client")
}

/// A test's own namespace, deleted with everything in it when the test ends (passed or failed), so
/// later tests do not share the controller with the repositories of finished ones. Derefs to its name.
pub struct TestNamespace(String);

impl std::ops::Deref for TestNamespace {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl std::fmt::Display for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for TestNamespace {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl PartialEq<TestNamespace> for serde_json::Value {
    fn eq(&self, other: &TestNamespace) -> bool {
        self.as_str() == Some(other.0.as_str())
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // The test control plane has no kube-controller-manager, so deleting a namespace does not delete
        // what is in it: the repositories and Kustomizations are deleted first (their finalizers run in
        // the controllers), or they would go on reconciling against the test's stopped hub.
        let _ = control_plane().run_tool(
            "kubectl",
            &[
                "delete",
                "confighubrepositories,kustomizations",
                "--all",
                "-n",
                &self.0,
                "--wait=false",
                "--ignore-not-found",
            ],
        );
        // Not waited for: the finalizers finish in the background.
        let _ = control_plane().run_tool(
            "kubectl",
            &[
                "delete",
                "namespace",
                &self.0,
                "--wait=false",
                "--ignore-not-found",
            ],
        );
    }
}

/// Creates a fresh namespace `<prefix>-<random>` so tests never see each other's objects.
pub async fn namespace(client: &Client, prefix: &str) -> TestNamespace {
    let name = format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("creating the test namespace");
    TestNamespace(name)
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

use confighub_source_controller::api::ConfigHubRepository;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

/// A Secret holding a ConfigHub token under key `token`.
pub async fn token_secret(client: &Client, ns: &str, name: &str, token: &str) {
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "stringData": {"token": token}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("applying the token Secret");
}

/// A Secret with these string keys, applied in place (server-side apply: keys left out are removed).
pub async fn apply_secret(client: &Client, ns: &str, name: &str, data: serde_json::Value) {
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("applying the Secret");
}

/// Creates or updates a ConfigHubRepository from a JSON spec.
pub async fn apply_repository(client: &Client, ns: &str, name: &str, spec: serde_json::Value) {
    apply_repository_labelled(client, ns, name, serde_json::json!({}), spec).await
}

/// Creates or updates a ConfigHubRepository with these labels (e.g. a shard's key).
pub async fn apply_repository_labelled(
    client: &Client,
    ns: &str,
    name: &str,
    labels: serde_json::Value,
    spec: serde_json::Value,
) {
    let chr = serde_json::json!({
        "apiVersion": "source.confighub.com/v1beta1", "kind": "ConfigHubRepository",
        "metadata": {"name": name, "labels": labels}, "spec": spec
    });
    Api::<ConfigHubRepository>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&chr),
        )
        .await
        .expect("applying the ConfigHubRepository");
}

pub fn kustomizations(client: &Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

/// A Kustomization applying the ExternalArtifact `source` (pruning, no health checks: the test
/// cluster runs no workloads).
pub async fn apply_kustomization(client: &Client, ns: &str, name: &str, source: &str) {
    let ks = serde_json::json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": name},
        "spec": {"interval": "10m", "prune": true, "wait": false, "path": "./", "targetNamespace": ns,
                 "sourceRef": {"kind": "ExternalArtifact", "name": source}}
    });
    kustomizations(client, ns)
        .patch(name, &PatchParams::apply("e2e").force(), &Patch::Apply(&ks))
        .await
        .expect("applying the Kustomization");
}

pub fn condition(chr: &ConfigHubRepository, type_: &str) -> Option<Condition> {
    chr.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// Waits until the repository's Ready condition has `status` (and `reason`, if given) for its current
/// generation, and returns the repository.
pub async fn wait_repository(
    client: &Client,
    ns: &str,
    name: &str,
    status: &str,
    reason: Option<&str>,
    timeout: Duration,
) -> ConfigHubRepository {
    let api: Api<ConfigHubRepository> = Api::namespaced(client.clone(), ns);
    let what = format!("ConfigHubRepository {ns}/{name} Ready={status} reason={reason:?}");
    let result = tokio::time::timeout(timeout, async {
        loop {
            if let Ok(chr) = api.get(name).await {
                let current = chr.status.as_ref().and_then(|s| s.observed_generation)
                    == chr.metadata.generation;
                if let Some(ready) = condition(&chr, "Ready")
                    && current
                    && ready.status == status
                    && reason.is_none_or(|r| ready.reason == r)
                {
                    return chr;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    match result {
        Ok(chr) => chr,
        Err(_) => {
            let last = api.get(name).await.ok().and_then(|c| c.status);
            let log = super::controller::started_controller()
                .map(|c| c.log_tail_about(&format!("\"{ns}\""), 40))
                .unwrap_or_default();
            panic!(
                "timed out waiting for {what}; last status: {last:#?}\nthe shared controller's last log lines about {ns}:\n{log}"
            )
        }
    }
}

/// The Ready condition of a Kustomization, as (status, message).
pub async fn kustomization_ready(
    client: &Client,
    ns: &str,
    name: &str,
) -> Option<(String, String)> {
    let ks = kustomizations(client, ns).get(name).await.ok()?;
    let ready = ks.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?
        .clone();
    Some((
        ready["status"].as_str()?.to_string(),
        ready["message"].as_str().unwrap_or_default().to_string(),
    ))
}

/// Waits until `name` no longer exists in `api` (deleted, finalized, pruned).
pub async fn wait_gone<K>(what: &str, api: &Api<K>, name: &str, timeout: Duration)
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(what, timeout, || async {
        api.get_opt(name)
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
}

/// Where a delivery stands, for a failure message: the repository's artifact and conditions, its
/// ExternalArtifact's revision, the Kustomization's last applied revision and Ready condition, and the
/// shared controller's last log lines about the namespace.
pub async fn delivery_report(client: &Client, ns: &str, name: &str) -> String {
    let repo = Api::<ConfigHubRepository>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .map(|c| format!("{:?}", c.status))
        .unwrap_or_else(|e| e.to_string());
    let gvk = GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", "ExternalArtifact");
    let external =
        Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
            .get(name)
            .await
            .map(|a| a.data["status"]["artifact"]["revision"].to_string())
            .unwrap_or_else(|e| e.to_string());
    let ks = kustomizations(client, ns)
        .get(name)
        .await
        .map(|k| k.data["status"].to_string())
        .unwrap_or_else(|e| e.to_string());
    let log = super::controller::started_controller()
        .map(|c| c.log_tail_about(&format!("\"{ns}\""), 40))
        .unwrap_or_default();
    format!(
        "repository status: {repo}\nExternalArtifact revision: {external}\nKustomization status: {ks}\ncontroller log about {ns}:\n{log}"
    )
}

/// [`wait_for`], printing `report` before panicking when it times out.
pub async fn wait_for_or_report<T, F, Fut, R>(
    what: &str,
    timeout: Duration,
    check: F,
    report: R,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
    R: Future<Output = String>,
{
    let deadline = Instant::now() + timeout;
    let mut check = check;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            let report = report.await;
            panic!("timed out after {timeout:?} waiting for {what}\n{report}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
