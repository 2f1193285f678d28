//! Turning what the user typed (`deploy`, `deployments.apps`, `chr`, `Kustomization`) into an API resource:
//! a table of common kinds answers without any API call; anything else asks the API server's aggregated
//! discovery (`/api` and `/apis`, two requests), which also carries CRDs' short names.

use kube::Client;
use kube::core::{ApiResource, GroupVersionKind};

/// A resolved resource type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// (group, version, kind, plural, namespaced, short names)
type Known = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
);

const KNOWN: &[Known] = &[
    ("", "v1", "ConfigMap", "configmaps", true, &["cm"]),
    ("", "v1", "Secret", "secrets", true, &[]),
    ("", "v1", "Service", "services", true, &["svc"]),
    ("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"]),
    ("", "v1", "Pod", "pods", true, &["po"]),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["pvc"],
    ),
    ("", "v1", "Namespace", "namespaces", false, &["ns"]),
    ("apps", "v1", "Deployment", "deployments", true, &["deploy"]),
    ("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"]),
    ("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"]),
    ("apps", "v1", "ReplicaSet", "replicasets", true, &["rs"]),
    ("batch", "v1", "Job", "jobs", true, &[]),
    ("batch", "v1", "CronJob", "cronjobs", true, &["cj"]),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        true,
        &["ing"],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
    ),
    (
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
        true,
        &["ks"],
    ),
    (
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
        true,
        &["hr"],
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "ExternalArtifact",
        "externalartifacts",
        true,
        &["ea"],
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
        "gitrepositories",
        true,
        &["gitrepo"],
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "OCIRepository",
        "ocirepositories",
        true,
        &["ocirepo"],
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "Bucket",
        "buckets",
        true,
        &[],
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "HelmChart",
        "helmcharts",
        true,
        &["hc"],
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "HelmRepository",
        "helmrepositories",
        true,
        &["helmrepo"],
    ),
    (
        "source.confighub.com",
        "v1beta1",
        "ConfigHubRepository",
        "confighubrepositories",
        true,
        &["chr"],
    ),
    (
        "argoproj.io",
        "v1alpha1",
        "Application",
        "applications",
        true,
        &["app", "apps"],
    ),
];

fn resolved(k: &Known) -> Resolved {
    let (group, version, kind, plural, namespaced, _) = *k;
    Resolved {
        resource: ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            plural,
        ),
        namespaced,
    }
}

/// Whether `typed` (lowercased; may carry a `.group` suffix) names this resource.
fn matches(
    typed: &str,
    group: &str,
    kind: &str,
    plural: &str,
    singular: &str,
    shorts: &[&str],
) -> bool {
    let (name, want_group) = match typed.split_once('.') {
        Some((n, g)) => (n, Some(g)),
        None => (typed, None),
    };
    if want_group.is_some_and(|g| g != group) {
        return false;
    }
    name == kind.to_ascii_lowercase()
        || name == plural
        || name == singular
        || shorts.contains(&name)
}

/// A common kind, without asking the API server.
pub fn known(typed: &str) -> Option<Resolved> {
    let typed = typed.to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|k| {
            let singular = k.2.to_ascii_lowercase();
            matches(&typed, k.0, k.2, k.3, &singular, k.5)
        })
        .map(resolved)
}

/// The resource for a group/version/kind (an ownerReference, a sourceRef): the table, else discovery.
pub async fn for_gvk(client: &Client, gvk: &GroupVersionKind) -> Result<Resolved, String> {
    if let Some(k) = KNOWN.iter().find(|k| k.0 == gvk.group && k.2 == gvk.kind) {
        let mut r = resolved(k);
        if k.1 != gvk.version && !gvk.version.is_empty() {
            r.resource = ApiResource::from_gvk_with_plural(gvk, k.3);
        }
        return Ok(r);
    }
    let (resource, caps) = kube::discovery::pinned_kind(client, gvk)
        .await
        .map_err(|e| format!("looking up {}/{} {}: {e}", gvk.group, gvk.version, gvk.kind))?;
    Ok(Resolved {
        resource,
        namespaced: caps.scope == kube::discovery::Scope::Namespaced,
    })
}

/// What the user typed, via the table or aggregated discovery.
pub async fn resolve(client: &Client, typed: &str) -> Result<Resolved, String> {
    if let Some(r) = known(typed) {
        return Ok(r);
    }
    let lower = typed.to_ascii_lowercase();
    let mut lists = Vec::new();
    let core = client.list_core_api_versions_aggregated().await;
    let apis = client.list_api_groups_aggregated().await;
    match (core, apis) {
        (Ok(c), Ok(a)) => {
            lists.push(c);
            lists.push(a);
        }
        (Err(e), _) | (_, Err(e)) => return Err(format!("API discovery failed: {e}")),
    }
    for list in &lists {
        for group in &list.items {
            let group_name = group
                .metadata
                .as_ref()
                .and_then(|m| m.name.clone())
                .unwrap_or_default();
            // The first version listed is the preferred one.
            for version in &group.versions {
                let v = version.version.clone().unwrap_or_default();
                for r in &version.resources {
                    let plural = r.resource.clone().unwrap_or_default();
                    let Some(kind) = r.response_kind.as_ref().and_then(|k| k.kind.clone()) else {
                        continue;
                    };
                    if plural.contains('/') {
                        continue;
                    }
                    let singular = r.singular_resource.clone().unwrap_or_default();
                    let shorts: Vec<&str> = r.short_names.iter().map(String::as_str).collect();
                    if matches(&lower, &group_name, &kind, &plural, &singular, &shorts) {
                        return Ok(Resolved {
                            resource: ApiResource::from_gvk_with_plural(
                                &GroupVersionKind::gvk(&group_name, &v, &kind),
                                &plural,
                            ),
                            namespaced: r.scope.as_deref() != Some("Cluster"),
                        });
                    }
                }
            }
        }
    }
    Err(format!(
        "the server doesn't have a resource type \"{typed}\""
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_kinds_resolve_without_the_api() {
        for typed in [
            "deploy",
            "Deployment",
            "deployments",
            "deployment.apps",
            "deployments.apps",
        ] {
            let r = known(typed).unwrap_or_else(|| panic!("{typed}"));
            assert_eq!(
                (r.resource.kind.as_str(), r.resource.plural.as_str()),
                ("Deployment", "deployments")
            );
        }
        assert_eq!(known("cm").unwrap().resource.api_version, "v1");
        assert_eq!(known("chr").unwrap().resource.group, "source.confighub.com");
        assert!(!known("ns").unwrap().namespaced);
        assert!(known("deployment.batch").is_none());
        assert!(known("widgets").is_none());
    }
}
