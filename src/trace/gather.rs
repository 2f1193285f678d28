//! The I/O edge of `trace`: reads the object, its controllers, its owner chain, the unit in ConfigHub and
//! the drift record, and hands plain JSON to [`super::chain::build`]. A handful of requests per trace:
//! the object (and its controllers), the owner, its source, the repository, one ConfigHub list, one
//! drift GET.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

use super::chain::{
    ArtifactLookup, DriftLookup, Fetched, FluxData, Gathered, HelmRecord, OwnerData, UnitLookup,
};
use super::owner::{self, AppRef, OwnerHint};
use super::resolve::{self, Resolved};

/// Where to look for the things that are not in the object itself.
#[derive(Clone, Debug)]
pub struct Options {
    /// Namespace for namespaced objects.
    pub namespace: String,
    /// Argo CD's own namespace, where Applications named without a namespace live.
    pub argocd_namespace: String,
    /// The drift API base URL (the controller's `--http-addr`); without it, the controller's Service is
    /// reached through the API server's service proxy.
    pub drift_url: Option<String>,
    pub controller_namespace: String,
    pub controller_service: String,
    /// ConfigHub origin for objects not delivered by a ConfigHubRepository (`CONFIGHUB_URL`).
    pub confighub_url: Option<String>,
    /// Token used when the repository has no readable Secret (`CONFIGHUB_TOKEN`).
    pub confighub_token: Option<String>,
    /// Per-request timeout for ConfigHub and the drift API.
    pub timeout: Duration,
}

/// How deep to follow controller ownerReferences (Pod → ReplicaSet → Deployment is two).
const MAX_CONTROLLERS: usize = 4;

fn short_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

async fn get(client: &Client, r: &Resolved, ns: &str, name: &str) -> Fetched {
    let api: Api<DynamicObject> = if r.namespaced {
        Api::namespaced_with(client.clone(), ns, &r.resource)
    } else {
        Api::all_with(client.clone(), &r.resource)
    };
    match api.get_opt(name).await {
        Ok(Some(obj)) => match serde_json::to_value(&obj) {
            Ok(mut v) => {
                // Objects read through a typed path may lack TypeMeta; the chain needs it.
                if v["apiVersion"].is_null() {
                    v["apiVersion"] = Value::String(r.resource.api_version.clone());
                    v["kind"] = Value::String(r.resource.kind.clone());
                }
                Fetched::Found(v.into())
            }
            Err(e) => Fetched::Error(e.to_string()),
        },
        Ok(None) => Fetched::Missing,
        // A 404 for the whole resource type (CRD not installed) means the owner cannot exist here.
        Err(kube::Error::Api(s)) if s.code == 404 => Fetched::Missing,
        Err(e) => Fetched::Error(short_error(&e)),
    }
}

async fn get_gvk(client: &Client, api_version: &str, kind: &str, ns: &str, name: &str) -> Fetched {
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    match resolve::for_gvk(client, &GroupVersionKind::gvk(group, version, kind)).await {
        Ok(r) => get(client, &r, ns, name).await,
        Err(e) => Fetched::Error(e),
    }
}

/// Reads the object the user named.
pub async fn target(
    client: &Client,
    typed_kind: &str,
    name: &str,
    ns: &str,
) -> Result<Value, String> {
    let r = resolve::resolve(client, typed_kind).await?;
    match get(client, &r, ns, name).await {
        Fetched::Found(v) => Ok(std::sync::Arc::unwrap_or_clone(v)),
        Fetched::Missing if r.namespaced => Err(format!(
            "{} \"{name}\" not found in namespace \"{ns}\"",
            r.resource.kind
        )),
        Fetched::Missing => Err(format!("{} \"{name}\" not found", r.resource.kind)),
        Fetched::Error(e) => Err(format!("reading {} \"{name}\": {e}", r.resource.kind)),
    }
}

/// Follows controller ownerReferences up from the object while no stronger owner hint is present.
async fn controllers(client: &Client, obj: &Value) -> Vec<Value> {
    let mut chain: Vec<Value> = Vec::new();
    let mut current = obj.clone();
    while chain.len() < MAX_CONTROLLERS {
        let OwnerHint::Controller {
            api_version,
            kind,
            name,
        } = owner::detect(&current)
        else {
            break;
        };
        let ns = owner::namespace_of(&current).to_string();
        match get_gvk(client, &api_version, &kind, &ns, &name).await {
            Fetched::Found(parent) => {
                let parent = std::sync::Arc::unwrap_or_clone(parent);
                chain.push(parent.clone());
                current = parent;
            }
            _ => break,
        }
    }
    chain
}

fn reference(r: &Value, default_ns: &str) -> (String, String, String, String) {
    (
        r["apiVersion"].as_str().unwrap_or_default().to_string(),
        r["kind"].as_str().unwrap_or_default().to_string(),
        r["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(default_ns)
            .to_string(),
        r["name"].as_str().unwrap_or_default().to_string(),
    )
}

/// The default apiVersion of a Flux source kind named in a `sourceRef` without one.
fn source_api_version(kind: &str) -> &'static str {
    match kind {
        "ConfigHubRepository" => "source.confighub.com/v1beta1",
        _ => "source.toolkit.fluxcd.io/v1",
    }
}

/// [`reference`] with the API version of a Flux source (or our repository) filled in when left out.
fn source_reference(r: &Value, namespace: &str) -> (String, String, String, String) {
    let (api_version, kind, ns, name) = reference(r, namespace);
    let api_version = if api_version.is_empty() {
        source_api_version(&kind).to_string()
    } else {
        api_version
    };
    (api_version, kind, ns, name)
}

async fn flux(client: &Client, namespace: &str, name: &str) -> FluxData {
    let kustomization = get_gvk(
        client,
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        namespace,
        name,
    )
    .await;
    let mut data = FluxData {
        namespace: namespace.to_string(),
        name: name.to_string(),
        kustomization,
        source: None,
        repository: None,
        in_inventory: None,
    };
    let Some(ks) = data.kustomization.found().cloned() else {
        return data;
    };
    let (api_version, kind, ns, src_name) = source_reference(&ks["spec"]["sourceRef"], namespace);
    let source = get_gvk(client, &api_version, &kind, &ns, &src_name).await;
    if kind == "ExternalArtifact"
        && let Some(ea) = source.found()
        && ea["spec"]["sourceRef"]["kind"] == "ConfigHubRepository"
    {
        let (api_version, kind, rns, rname) = source_reference(&ea["spec"]["sourceRef"], &ns);
        data.repository = Some(get_gvk(client, &api_version, &kind, &rns, &rname).await);
    }
    data.source = Some(source);
    data
}

async fn helm_release(client: &Client, namespace: &str, name: &str) -> OwnerData {
    let release = get_gvk(
        client,
        "helm.toolkit.fluxcd.io/v2",
        "HelmRelease",
        namespace,
        name,
    )
    .await;
    let source = match release.found() {
        Some(hr) if hr["spec"]["chartRef"].is_object() => {
            let (api_version, kind, ns, n) = reference(&hr["spec"]["chartRef"], namespace);
            let api_version = if api_version.is_empty() {
                source_api_version(&kind).to_string()
            } else {
                api_version
            };
            Some(get_gvk(client, &api_version, &kind, &ns, &n).await)
        }
        Some(hr) => match hr["status"]["helmChart"]
            .as_str()
            .and_then(|c| c.split_once('/'))
        {
            Some((ns, n)) => {
                Some(get_gvk(client, "source.toolkit.fluxcd.io/v1", "HelmChart", ns, n).await)
            }
            None => None,
        },
        None => None,
    };
    OwnerData::HelmRelease {
        namespace: namespace.to_string(),
        name: name.to_string(),
        release,
        source,
    }
}

/// Helm's release records: Secrets labelled `owner=helm,name=<release>`, read as metadata only (the
/// release payload is never downloaded).
async fn helm(client: &Client, namespace: &str, release: &str) -> OwnerData {
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), namespace);
    let lp = ListParams::default().labels(&format!("owner=helm,name={release}"));
    let records = match api.list_metadata(&lp).await {
        Ok(list) => Ok(list
            .items
            .iter()
            .filter_map(|s| {
                let labels = s.metadata.labels.as_ref()?;
                Some(HelmRecord {
                    version: labels.get("version")?.parse().ok()?,
                    status: labels.get("status").cloned().unwrap_or_default(),
                })
            })
            .collect()),
        Err(e) => Err(short_error(&e)),
    };
    OwnerData::Helm {
        namespace: namespace.to_string(),
        release: release.to_string(),
        records,
    }
}

async fn argo(client: &Client, app: AppRef, via_label: bool, opts: &Options) -> OwnerData {
    let ns = app
        .namespace
        .clone()
        .unwrap_or_else(|| opts.argocd_namespace.clone());
    let mut application = get_gvk(
        client,
        "argoproj.io/v1alpha1",
        "Application",
        &ns,
        &app.name,
    )
    .await;
    if matches!(application, Fetched::Missing) && app.namespace.is_none() {
        // Not in Argo CD's namespace: look for an Application of that name anywhere.
        if let Ok(r) = resolve::for_gvk(
            client,
            &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application"),
        )
        .await
        {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &r.resource);
            let lp = ListParams::default().fields(&format!("metadata.name={}", app.name));
            if let Ok(list) = api.list(&lp).await
                && let Some(found) = list.items.into_iter().next()
                && let Ok(mut v) = serde_json::to_value(&found)
            {
                if v["apiVersion"].is_null() {
                    v["apiVersion"] = Value::String("argoproj.io/v1alpha1".into());
                    v["kind"] = Value::String("Application".into());
                }
                application = Fetched::Found(v.into());
            }
        }
    }
    OwnerData::ArgoCd {
        app,
        via_label,
        application,
    }
}

async fn owner_data(client: &Client, managed: &Value, opts: &Options) -> OwnerData {
    match owner::detect(managed) {
        OwnerHint::Kustomization { namespace, name } => {
            OwnerData::Flux(flux(client, &namespace, &name).await)
        }
        OwnerHint::HelmRelease { namespace, name } => helm_release(client, &namespace, &name).await,
        OwnerHint::ArgoTracking(app) => argo(client, app, false, opts).await,
        OwnerHint::Helm { namespace, release } => helm(client, &namespace, &release).await,
        OwnerHint::ArgoInstanceLabel(app) => argo(client, app, true, opts).await,
        OwnerHint::Controller { .. } | OwnerHint::None => OwnerData::None,
    }
}

/// The repository's ConfigHub credentials, read as the controller reads them (its Secret's `token`, or
/// `CONFIGHUB_WORKER_ID` + `CONFIGHUB_WORKER_SECRET`), else `CONFIGHUB_TOKEN`.
pub async fn repository_credentials(
    client: &Client,
    chr: &Value,
    fallback: Option<&str>,
) -> Option<crate::confighub::Credentials> {
    if let Some(name) = chr["spec"]["secretRef"]["name"].as_str() {
        let secret_ref = crate::api::SecretReference {
            name: name.to_string(),
        };
        if let Ok(Some(found)) =
            crate::connection::read_credentials(client, owner::namespace_of(chr), Some(&secret_ref))
                .await
        {
            return Some(found.credentials);
        }
    }
    fallback.map(|t| crate::confighub::Credentials::Token(crate::confighub::Token::new(t)))
}

/// The repository's CA, client certificate and proxy (`certSecretRef`, `proxySecretRef`), read as the
/// controller reads them; an unreadable Secret is the message of an unreachable ConfigHub.
async fn repository_transport(
    client: &Client,
    chr: &Value,
) -> Result<crate::confighub::Transport, String> {
    let reference = |field: &str| {
        chr["spec"][field]["name"]
            .as_str()
            .map(|name| crate::api::SecretReference {
                name: name.to_string(),
            })
    };
    crate::connection::read_transport(
        client,
        owner::namespace_of(chr),
        reference("certSecretRef").as_ref(),
        reference("proxySecretRef").as_ref(),
    )
    .await
    .map_err(|e| e.message)
}

async fn unit(client: &Client, managed: &Value, owner: &OwnerData, opts: &Options) -> UnitLookup {
    let Some(p) = owner::provenance(managed) else {
        return UnitLookup::NotChecked("the object has no ConfigHub provenance".into());
    };
    let chr = match owner {
        OwnerData::Flux(f) => f.repository.as_ref().and_then(Fetched::found),
        _ => None,
    };
    let (origin, token) = match (chr, &opts.confighub_url) {
        (Some(chr), _) => (
            chr["spec"]["url"]
                .as_str()
                .unwrap_or(crate::api::repository::DEFAULT_URL)
                .to_string(),
            repository_credentials(client, chr, opts.confighub_token.as_deref()).await,
        ),
        (None, Some(url)) => (
            url.clone(),
            opts.confighub_token
                .as_deref()
                .map(|t| crate::confighub::Credentials::Token(crate::confighub::Token::new(t))),
        ),
        (None, None) => {
            return UnitLookup::NotChecked(
                "no ConfigHubRepository delivers it and CONFIGHUB_URL is not set".into(),
            );
        }
    };
    let transport = match chr {
        Some(chr) => match repository_transport(client, chr).await {
            Ok(transport) => transport,
            Err(message) => return UnitLookup::Unreachable(message),
        },
        None => Default::default(),
    };
    let options = crate::confighub::ClientOptions {
        timeout: opts.timeout,
        max_retries: 1,
        transport,
        ..Default::default()
    };
    let hub = match crate::confighub::Client::with_credentials(&origin, token, options) {
        Ok(c) => c,
        Err(e) => return UnitLookup::Unreachable(e.to_string()),
    };
    let space_ref = if !p.space_id.is_empty() {
        p.space_id.clone()
    } else if let Some(space) = chr.and_then(|c| c["spec"]["space"].as_str()) {
        space.to_string()
    } else {
        p.space.clone()
    };
    let space_id = if uuid::Uuid::parse_str(&space_ref).is_ok() {
        space_ref
    } else {
        match hub.resolve_space(&space_ref).await {
            Ok(s) => s.space_id,
            Err(e) => return UnitLookup::Unreachable(e.to_string()),
        }
    };
    let filter = match crate::confighub::Where::new().eq("Slug", &p.unit).build() {
        Ok(w) => w,
        Err(e) => return UnitLookup::Unreachable(e.to_string()),
    };
    match hub.list_units(&space_id, Some(&filter), &[]).await {
        Ok(units) => match units.into_iter().find(|u| u.slug == p.unit) {
            Some(u) => UnitLookup::Found {
                head: u.head_revision_num,
                last_released: u.last_released_revision_num,
            },
            None => UnitLookup::Missing,
        },
        Err(crate::confighub::Error::NotFound { .. }) => UnitLookup::Missing,
        Err(e) => UnitLookup::Unreachable(e.to_string()),
    }
}

/// The object's drift record id, as the drift engine keys it ([`crate::drift::ObjectKey::id`]: the group
/// is part of it for kinds outside Kubernetes' own groups).
pub fn record_id(obj: &Value) -> String {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    crate::drift::ObjectKey::with_group(
        group,
        owner::kind_of(obj),
        owner::namespace_of(obj),
        owner::name_of(obj),
    )
    .id()
}

fn drift_answer(source: String, status: u16, body: &[u8]) -> DriftLookup {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match (status, parsed) {
        (200, Some(record)) if record["id"].is_string() => DriftLookup::Record { source, record },
        // The drift API's own 404 is `{"message": ...}`; the API server's (no such Service) is a Status.
        (404, Some(v)) if v["kind"] != "Status" => DriftLookup::NoRecord { source },
        (code, v) => DriftLookup::Unavailable {
            source,
            message: v
                .as_ref()
                .and_then(|v| v["message"].as_str())
                .map(|m| format!("{code}: {m}"))
                .unwrap_or_else(|| format!("HTTP {code}")),
        },
    }
}

async fn drift(client: &Client, managed: &Value, owner: &OwnerData, opts: &Options) -> DriftLookup {
    let from_confighub = matches!(owner, OwnerData::Flux(f) if f.repository.is_some())
        || owner::provenance(managed).is_some();
    if !from_confighub {
        return DriftLookup::NotChecked;
    }
    let id = record_id(managed);
    let path = format!(
        "/api/v1/drift-records/{}",
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    );
    if let Some(base) = &opts.drift_url {
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let http = match reqwest::Client::builder().timeout(opts.timeout).build() {
            Ok(h) => h,
            Err(e) => {
                return DriftLookup::Unavailable {
                    source: url,
                    message: e.to_string(),
                };
            }
        };
        return match http.get(&url).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.bytes().await.unwrap_or_default();
                drift_answer(url, status, &body)
            }
            Err(e) => DriftLookup::Unavailable {
                source: url,
                message: e.to_string(),
            },
        };
    }
    let proxy = format!(
        "/api/v1/namespaces/{}/services/{}:http/proxy{path}",
        opts.controller_namespace, opts.controller_service
    );
    let request = match axum::http::Request::get(&proxy).body(Vec::new()) {
        Ok(r) => r,
        Err(e) => {
            return DriftLookup::Unavailable {
                source: proxy,
                message: e.to_string(),
            };
        }
    };
    match tokio::time::timeout(opts.timeout, client.request_text(request)).await {
        Ok(Ok(body)) => drift_answer(proxy, 200, body.as_bytes()),
        // Passed through from the drift API: its `{"message": ...}` parses as a Status without a code.
        // The status code is lost on that path, so the drift API's 404 is known by its message.
        Ok(Err(kube::Error::Api(s))) if s.code == 0 && s.message.starts_with("no drift record") => {
            DriftLookup::NoRecord { source: proxy }
        }
        Ok(Err(e)) => DriftLookup::Unavailable {
            source: proxy,
            message: short_error(&e),
        },
        Err(_) => DriftLookup::Unavailable {
            source: proxy,
            message: "timed out".into(),
        },
    }
}

/// The unit's revision in the artifact the ExternalArtifact serves, for objects a ConfigHubRepository
/// delivers.
async fn artifact(managed: &Value, owner: &OwnerData, opts: &Options) -> ArtifactLookup {
    let (Some(p), OwnerData::Flux(f)) = (owner::provenance(managed), owner) else {
        return ArtifactLookup::NotChecked;
    };
    if f.repository.is_none() {
        return ArtifactLookup::NotChecked;
    }
    let Some(url) = f
        .source
        .as_ref()
        .and_then(Fetched::found)
        .and_then(|ea| ea["status"]["artifact"]["url"].as_str())
    else {
        return ArtifactLookup::NotChecked;
    };
    super::artifact_read::lookup(url, &p.unit, opts.timeout).await
}

/// Reads everything the chain needs, for an object already read.
pub async fn gather(client: &Client, object: Value, opts: &Options) -> Gathered {
    // Follow controllers only when the object itself names no owner.
    let controllers = match owner::detect(&object) {
        OwnerHint::Controller { .. } => controllers(client, &object).await,
        _ => Vec::new(),
    };
    let managed = controllers.last().unwrap_or(&object).clone();
    let owner = owner_data(client, &managed, opts).await;
    let (unit, artifact, drift) = tokio::join!(
        unit(client, &managed, &owner, opts),
        artifact(&managed, &owner, opts),
        drift(client, &managed, &owner, opts)
    );
    Gathered {
        object,
        controllers,
        owner,
        unit,
        artifact,
        drift,
    }
}

#[cfg(test)]
#[path = "gather_tests.rs"]
mod tests;
