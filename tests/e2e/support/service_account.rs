//! The controller under test runs as the Helm chart's ServiceAccount, with the chart's RBAC and nothing
//! else, so every end-to-end test also proves that RBAC sufficient. Once per control plane this applies
//! the ServiceAccount and RBAC objects of `helm template` (default values, namespace flux-system), asks
//! the TokenRequest API for a token, and writes a kubeconfig that authenticates with it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::cluster::{ControlPlane, repo_root};

pub const NAMESPACE: &str = "flux-system";
pub const NAME: &str = "confighub-source-controller";
const RBAC_KINDS: &[&str] = &[
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

/// `helm template` of the chart as release `confighub-source-controller` in `namespace`, parsed.
pub fn helm_template(cp: &ControlPlane, namespace: &str, extra: &[&str]) -> Vec<Value> {
    let chart = repo_root().join("charts/confighub-source-controller");
    let chart = chart.to_str().unwrap();
    let mut args = vec!["template", NAME, chart, "--namespace", namespace];
    args.extend_from_slice(extra);
    let (ok, out, err) = cp.run_tool("helm", &args);
    assert!(ok, "helm template failed: {err}");
    parse_documents(&out)
}

/// Every non-empty document of a multi-document YAML stream.
pub fn parse_documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| <Value as serde::Deserialize>::deserialize(doc).expect("rendered YAML parses"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// Applies the chart's ServiceAccount and RBAC, and returns a kubeconfig (written into `dir`) that
/// authenticates as that ServiceAccount with a TokenRequest token.
///
/// The RBAC is applied once per test process: applying it again (for a shard or a controller of a
/// test's own) would briefly empty the aggregated drift ClusterRole until it is aggregated again, and
/// every controller already running would be refused its drift reads in that window.
pub fn service_account_kubeconfig(cp: &ControlPlane, dir: &Path) -> PathBuf {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let token = TOKEN.get_or_init(|| apply_rbac_and_request_token(cp));

    // The admin kubeconfig with the ServiceAccount's token in place of the admin token.
    let text = std::fs::read_to_string(&cp.kubeconfig).expect("reading the admin kubeconfig");
    let mut config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    for user in config["users"].as_sequence_mut().expect("kubeconfig users") {
        user["user"] = serde_yaml_ng::to_value(json!({"token": token})).unwrap();
    }
    let path = dir.join("kubeconfig-service-account");
    std::fs::write(&path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The chart's ServiceAccount and RBAC applied (and aggregated), and a token of the ServiceAccount.
fn apply_rbac_and_request_token(cp: &ControlPlane) -> String {
    let rbac: Vec<Value> = helm_template(cp, NAMESPACE, &[])
        .into_iter()
        .filter(|o| RBAC_KINDS.contains(&o["kind"].as_str().unwrap_or("")))
        .collect();
    let mut items = vec![json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}
    })];
    items.extend(rbac.iter().cloned());
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    let (ok, _, err) = cp.kubectl_apply(&list.to_string());
    assert!(ok, "applying the chart's RBAC failed: {err}");
    aggregate_cluster_roles(cp, &rbac);

    let (ok, token, err) = cp.run_tool(
        "kubectl",
        &[
            "create",
            "token",
            NAME,
            "-n",
            NAMESPACE,
            "--duration",
            "24h",
        ],
    );
    assert!(ok, "kubectl create token failed: {err}");
    token.trim().to_string()
}

/// Does what kube-controller-manager's clusterrole-aggregation controller would (the test control
/// plane has no controller manager): the rules of a ClusterRole with an aggregationRule become the
/// union of the rules of the ClusterRoles its selectors match.
fn aggregate_cluster_roles(cp: &ControlPlane, rendered: &[Value]) {
    for role in rendered.iter().filter(|o| o["kind"] == "ClusterRole") {
        let Some(selectors) = role["aggregationRule"]["clusterRoleSelectors"].as_array() else {
            continue;
        };
        let mut rules: Vec<Value> = Vec::new();
        for selector in selectors {
            let labels = selector["matchLabels"]
                .as_object()
                .expect("matchLabels only");
            let selector: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            let (ok, out, err) = cp.run_tool(
                "kubectl",
                &[
                    "get",
                    "clusterroles",
                    "-l",
                    &selector.join(","),
                    "-o",
                    "json",
                ],
            );
            assert!(ok, "listing aggregated ClusterRoles failed: {err}");
            let list: Value = serde_json::from_str(&out).unwrap();
            for item in list["items"].as_array().unwrap() {
                for rule in item["rules"].as_array().into_iter().flatten() {
                    if !rules.contains(rule) {
                        rules.push(rule.clone());
                    }
                }
            }
        }
        let name = role["metadata"]["name"].as_str().unwrap();
        let patch = json!({"rules": rules}).to_string();
        let (ok, _, err) = cp.run_tool(
            "kubectl",
            &[
                "patch",
                "clusterrole",
                name,
                "--type",
                "merge",
                "-p",
                &patch,
            ],
        );
        assert!(ok, "aggregating ClusterRole {name} failed: {err}");
    }
}
