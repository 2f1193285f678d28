//! Unit texts the tests put in the hub, and how they read the result back from the cluster.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

/// A ConfigMap unit whose `data.color` tells which edit reached the cluster.
pub fn config_map(name: &str, color: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  color: {color}\n")
}

/// A Deployment unit of `replicas` running `image`.
pub fn deployment(name: &str, image: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: {name}\n        image: {image}\n"
    )
}

/// `data.color` of the ConfigMap `name`, if it exists.
pub async fn config_map_color(cms: &Api<ConfigMap>, name: &str) -> Option<String> {
    cms.get_opt(name)
        .await
        .ok()
        .flatten()?
        .data?
        .get("color")
        .cloned()
}
