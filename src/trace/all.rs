//! `trace --all -n <ns>`: every object of a namespace in one pass. List calls, all concurrent: one per
//! namespaced resource type (from aggregated discovery, two requests), one per owner kind across all
//! namespaces (Kustomization, ExternalArtifact, ConfigHubRepository, Flux sources, HelmRelease, Argo CD
//! Application), Helm's release Secrets as metadata, one unit list per ConfigHub space, and one request for
//! the namespace's active drift records. Then each object is traced from those maps (pure).

use std::collections::HashMap;

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::chain::HelmRecord;
use super::gather::Options;
use super::index::Index;
use super::owner;

/// Resource types never worth listing: events are records about objects, not objects anyone deploys.
const SKIP: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// Owner kinds, listed across all namespaces (a Kustomization usually lives in flux-system).
const OWNER_KINDS: &[(&str, &str, &str, &str)] = &[
    (
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "ExternalArtifact",
        "externalartifacts",
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
        "gitrepositories",
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "OCIRepository",
        "ocirepositories",
    ),
    ("source.toolkit.fluxcd.io", "v1", "Bucket", "buckets"),
    ("source.toolkit.fluxcd.io", "v1", "HelmChart", "helmcharts"),
    (
        "source.confighub.com",
        "v1beta1",
        "ConfigHubRepository",
        "confighubrepositories",
    ),
    (
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
    ),
    ("argoproj.io", "v1alpha1", "Application", "applications"),
];

/// Namespaced, listable resource types at their preferred version.
async fn namespaced_types(client: &Client) -> Result<Vec<ApiResource>, String> {
    let core = client
        .list_core_api_versions_aggregated()
        .await
        .map_err(|e| format!("API discovery failed: {e}"))?;
    let apis = client
        .list_api_groups_aggregated()
        .await
        .map_err(|e| format!("API discovery failed: {e}"))?;
    let mut out = Vec::new();
    for group in core.items.iter().chain(apis.items.iter()) {
        let group_name = group
            .metadata
            .as_ref()
            .and_then(|m| m.name.clone())
            .unwrap_or_default();
        // The first version listed is the preferred one; take each resource once, from there.
        let mut seen = std::collections::HashSet::new();
        for version in &group.versions {
            let v = version.version.clone().unwrap_or_default();
            for r in &version.resources {
                let plural = r.resource.clone().unwrap_or_default();
                if plural.contains('/')
                    || r.scope.as_deref() == Some("Cluster")
                    || !r.verbs.iter().any(|v| v == "list")
                    || SKIP.contains(&(group_name.as_str(), plural.as_str()))
                    || !seen.insert(plural.clone())
                {
                    continue;
                }
                let Some(kind) = r.response_kind.as_ref().and_then(|k| k.kind.clone()) else {
                    continue;
                };
                out.push(ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk(&group_name, &v, &kind),
                    &plural,
                ));
            }
        }
    }
    Ok(out)
}

fn typed(list: Vec<DynamicObject>, r: &ApiResource) -> Vec<Value> {
    list.into_iter()
        .filter_map(|o| {
            let mut v = serde_json::to_value(o).ok()?;
            v["apiVersion"] = Value::String(r.api_version.clone());
            v["kind"] = Value::String(r.kind.clone());
            Some(v)
        })
        .collect()
}

/// Lists one type; a type that cannot be listed (not installed, forbidden) yields nothing and a note.
async fn list(client: &Client, r: ApiResource, ns: Option<&str>) -> (Vec<Value>, Option<String>) {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &r),
        None => Api::all_with(client.clone(), &r),
    };
    match api.list(&ListParams::default()).await {
        Ok(l) => (typed(l.items, &r), None),
        Err(kube::Error::Api(s)) if s.code == 404 => (Vec::new(), None),
        Err(e) => (Vec::new(), Some(format!("listing {}: {e}", r.plural))),
    }
}

async fn helm_records(client: &Client, ns: &str) -> HashMap<(String, String), Vec<HelmRecord>> {
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    let mut out: HashMap<(String, String), Vec<HelmRecord>> = HashMap::new();
    if let Ok(list) = api
        .list_metadata(&ListParams::default().labels("owner=helm"))
        .await
    {
        for s in list.items {
            let Some(labels) = s.metadata.labels else {
                continue;
            };
            let (Some(name), Some(Ok(version))) = (
                labels.get("name"),
                labels.get("version").map(|v| v.parse::<i64>()),
            ) else {
                continue;
            };
            out.entry((ns.to_string(), name.clone()))
                .or_default()
                .push(HelmRecord {
                    version,
                    status: labels.get("status").cloned().unwrap_or_default(),
                });
        }
    }
    out
}

/// One unit list per space that objects of the namespace came from, through the repository that delivers
/// them (its URL and token), else `--confighub-url`.
async fn units(client: &Client, objects: &[Value], index: &mut Index, opts: &Options) {
    // space key (id or name) → (origin, token, space ref)
    let mut spaces: HashMap<String, (String, Option<crate::confighub::Credentials>, String)> =
        HashMap::new();
    for obj in objects {
        let Some(p) = owner::provenance(obj) else {
            continue;
        };
        let key = if p.space_id.is_empty() {
            p.space.clone()
        } else {
            p.space_id.clone()
        };
        if spaces.contains_key(&key) {
            continue;
        }
        let g = index.gathered(obj);
        let chr = match &g.owner {
            super::chain::OwnerData::Flux(f) => {
                f.repository.as_ref().and_then(|r| r.found().cloned())
            }
            _ => None,
        };
        let origin = match (&chr, &opts.confighub_url) {
            (Some(chr), _) => chr["spec"]["url"]
                .as_str()
                .unwrap_or(crate::api::repository::DEFAULT_URL)
                .to_string(),
            (None, Some(url)) => url.clone(),
            (None, None) => continue,
        };
        let token = match &chr {
            Some(chr) => {
                super::gather::repository_credentials(client, chr, opts.confighub_token.as_deref())
                    .await
            }
            None => opts
                .confighub_token
                .as_deref()
                .map(|t| crate::confighub::Credentials::Token(crate::confighub::Token::new(t))),
        };
        spaces.insert(key.clone(), (origin, token, key));
    }
    for (key, (origin, token, space_ref)) in spaces {
        let options = crate::confighub::ClientOptions {
            timeout: opts.timeout,
            max_retries: 1,
            ..Default::default()
        };
        let result = async {
            let hub = crate::confighub::Client::with_credentials(&origin, token, options)
                .map_err(|e| e.to_string())?;
            let space_id = if uuid::Uuid::parse_str(&space_ref).is_ok() {
                space_ref.clone()
            } else {
                hub.resolve_space(&space_ref)
                    .await
                    .map_err(|e| e.to_string())?
                    .space_id
            };
            hub.list_units(&space_id, None, &[])
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(list) => {
                for u in list {
                    index.units.insert(
                        (key.clone(), u.slug.clone()),
                        (u.head_revision_num, u.last_released_revision_num),
                    );
                }
                index.spaces_listed.insert(key, Ok(()));
            }
            Err(e) => {
                index.spaces_listed.insert(key, Err(e));
            }
        }
    }
}

/// The namespace's active drift records.
async fn drift(client: &Client, ns: &str, index: &mut Index, opts: &Options) {
    let path = format!("/api/v1/drift-records/active?namespace={ns}");
    let body: Result<Value, String> = match &opts.drift_url {
        Some(base) => {
            let url = format!("{}{path}", base.trim_end_matches('/'));
            index.drift_source = url.clone();
            async {
                let http = reqwest::Client::builder()
                    .timeout(opts.timeout)
                    .build()
                    .map_err(|e| e.to_string())?;
                let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
                if !resp.status().is_success() {
                    return Err(format!("HTTP {}", resp.status()));
                }
                resp.json().await.map_err(|e| e.to_string())
            }
            .await
        }
        None => {
            let proxy = format!(
                "/api/v1/namespaces/{}/services/{}:http/proxy{path}",
                opts.controller_namespace, opts.controller_service
            );
            index.drift_source = proxy.clone();
            match axum::http::Request::get(&proxy).body(Vec::new()) {
                Ok(req) => {
                    match tokio::time::timeout(opts.timeout, client.request::<Value>(req)).await {
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(_) => Err("timed out".into()),
                    }
                }
                Err(e) => Err(e.to_string()),
            }
        }
    };
    match body {
        Ok(v) => {
            let records = v["records"]
                .as_array()
                .map(|rs| {
                    rs.iter()
                        .filter_map(|r| Some((r["id"].as_str()?.to_string(), r.clone())))
                        .collect()
                })
                .unwrap_or_default();
            index.drift = Some(records);
        }
        Err(e) => index.drift_error = Some(e),
    }
}

/// What one list job returns: the items, a note when it failed, whether they are objects of the namespace,
/// and the namespace listed (`None` for cluster-wide owner lists).
type Listed = (Vec<Value>, Option<String>, bool, Option<String>);

/// Lists everything; returns the namespace's objects (sorted by kind and name), the index and notes about
/// what could not be listed.
pub async fn gather_all(
    client: &Client,
    opts: &Options,
) -> Result<(Vec<Value>, Index, Vec<String>), String> {
    let ns = opts.namespace.as_str();
    let types = namespaced_types(client).await?;
    let mut index = Index::new(&opts.argocd_namespace);
    let mut notes = Vec::new();
    let owner_types: Vec<ApiResource> = OWNER_KINDS
        .iter()
        .map(|(g, v, k, p)| ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, k), p))
        .collect();
    let owner_set: std::collections::HashSet<(String, String)> = owner_types
        .iter()
        .map(|r| (r.group.clone(), r.kind.clone()))
        .collect();
    // Owners everywhere, and the namespace's objects, eight lists in flight at a time.
    let mut jobs: Vec<(ApiResource, Option<String>, bool)> =
        owner_types.into_iter().map(|r| (r, None, false)).collect();
    // Owner kinds are listed cluster-wide already; their objects in the namespace are taken from there.
    jobs.extend(
        types
            .into_iter()
            .filter(|r| !owner_set.contains(&(r.group.clone(), r.kind.clone())))
            .map(|r| (r, Some(ns.to_string()), true)),
    );
    let results: Vec<Listed> = futures::stream::iter(jobs)
        .map(|(r, namespace, object_list)| {
            let client = client.clone();
            async move {
                let (items, note) = list(&client, r, namespace.as_deref()).await;
                (items, note, object_list, namespace)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut objects = Vec::new();
    for (items, note, object_list, namespace) in results {
        notes.extend(note);
        for item in items {
            // Owner kinds are listed cluster-wide; those in the namespace are objects too.
            if namespace.is_none() && owner::namespace_of(&item) == ns {
                objects.push(item.clone());
            }
            if object_list {
                objects.push(item.clone());
            }
            index.insert(item);
        }
    }
    index.helm_records = helm_records(client, ns).await;
    units(client, &objects, &mut index, opts).await;
    drift(client, ns, &mut index, opts).await;
    objects.sort_by(|a, b| {
        (owner::kind_of(a), owner::name_of(a)).cmp(&(owner::kind_of(b), owner::name_of(b)))
    });
    Ok((objects, index, notes))
}
