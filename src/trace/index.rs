//! `trace --all`: everything needed to trace every object of a namespace, read once into maps (owners,
//! ConfigHub units, drift records, Helm records), and the pure step from those maps to one
//! [`Gathered`] per object, so each object gets the same chain and findings as a single trace.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::chain::{
    ArtifactLookup, DriftLookup, Fetched, FluxData, Gathered, HelmRecord, OwnerData, UnitLookup,
};
use super::owner::{self, AppRef, OwnerHint};

/// Objects keyed by (kind, namespace, name).
#[derive(Default, Debug)]
pub struct Index {
    objects: HashMap<(String, String, String), Arc<Value>>,
    /// Applications by name, for tracking ids that do not say their namespace.
    applications_by_name: HashMap<String, Vec<Arc<Value>>>,
    /// Each Kustomization's inventory ids, by (namespace, name).
    inventories: HashMap<(String, String), HashSet<String>>,
    /// Helm release records by (namespace, release).
    pub helm_records: HashMap<(String, String), Vec<HelmRecord>>,
    /// Units by (space id or name, slug): (head, last released). Spaces listed are in `spaces_listed`.
    pub units: HashMap<(String, String), (i64, i64)>,
    /// Spaces whose units were listed, and why the others were not.
    pub spaces_listed: HashMap<String, Result<(), String>>,
    /// Active drift records by id; `None` when the drift API was not available.
    pub drift: Option<HashMap<String, Value>>,
    pub drift_source: String,
    pub drift_error: Option<String>,
    pub argocd_namespace: String,
}

impl Index {
    pub fn new(argocd_namespace: &str) -> Index {
        Index {
            argocd_namespace: argocd_namespace.to_string(),
            ..Default::default()
        }
    }

    pub fn insert(&mut self, obj: Value) {
        let obj = Arc::new(obj);
        let kind = owner::kind_of(&obj).to_string();
        if kind == "Application" && owner::group_of(&obj) == "argoproj.io" {
            self.applications_by_name
                .entry(owner::name_of(&obj).to_string())
                .or_default()
                .push(obj.clone());
        }
        if kind == "Kustomization" && owner::group_of(&obj) == "kustomize.toolkit.fluxcd.io" {
            let ids = obj["status"]["inventory"]["entries"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .filter_map(|e| e["id"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            self.inventories.insert(
                (
                    owner::namespace_of(&obj).to_string(),
                    owner::name_of(&obj).to_string(),
                ),
                ids,
            );
        }
        let key = (
            kind,
            owner::namespace_of(&obj).to_string(),
            owner::name_of(&obj).to_string(),
        );
        self.objects.insert(key, obj);
    }

    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Fetched {
        match self
            .objects
            .get(&(kind.to_string(), namespace.to_string(), name.to_string()))
        {
            Some(v) => Fetched::Found(v.clone()),
            None => Fetched::Missing,
        }
    }

    fn source_ref(&self, r: &Value, default_ns: &str) -> Fetched {
        let ns = r["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(default_ns);
        self.get(
            r["kind"].as_str().unwrap_or_default(),
            ns,
            r["name"].as_str().unwrap_or_default(),
        )
    }

    fn flux(&self, namespace: &str, name: &str, managed: &Value) -> FluxData {
        let kustomization = self.get("Kustomization", namespace, name);
        let id = format!(
            "{}_{}_{}_{}",
            owner::namespace_of(managed),
            owner::name_of(managed),
            owner::group_of(managed),
            owner::kind_of(managed)
        );
        let mut data = FluxData {
            namespace: namespace.to_string(),
            name: name.to_string(),
            kustomization,
            source: None,
            repository: None,
            in_inventory: self
                .inventories
                .get(&(namespace.to_string(), name.to_string()))
                .map(|ids| ids.contains(&id)),
        };
        // The Arc, not the object: a Kustomization's inventory may list thousands of entries.
        let Fetched::Found(ks) = &data.kustomization else {
            return data;
        };
        let ks = Arc::clone(ks);
        let source = self.source_ref(&ks["spec"]["sourceRef"], namespace);
        if let Some(ea) = source.found()
            && owner::kind_of(ea) == "ExternalArtifact"
            && ea["spec"]["sourceRef"]["kind"] == "ConfigHubRepository"
        {
            data.repository =
                Some(self.source_ref(&ea["spec"]["sourceRef"], owner::namespace_of(ea)));
        }
        data.source = Some(source);
        data
    }

    fn argo(&self, app: AppRef, via_label: bool) -> OwnerData {
        let ns = app
            .namespace
            .clone()
            .unwrap_or_else(|| self.argocd_namespace.clone());
        let mut application = self.get("Application", &ns, &app.name);
        if matches!(application, Fetched::Missing)
            && app.namespace.is_none()
            && let Some(found) = self
                .applications_by_name
                .get(&app.name)
                .and_then(|a| a.first())
        {
            application = Fetched::Found(found.clone());
        }
        OwnerData::ArgoCd {
            app,
            via_label,
            application,
        }
    }

    fn owner(&self, managed: &Value) -> OwnerData {
        match owner::detect(managed) {
            OwnerHint::Kustomization { namespace, name } => {
                OwnerData::Flux(self.flux(&namespace, &name, managed))
            }
            OwnerHint::HelmRelease { namespace, name } => {
                let release = self.get("HelmRelease", &namespace, &name);
                let source = release.found().and_then(|hr| {
                    if hr["spec"]["chartRef"].is_object() {
                        Some(self.source_ref(&hr["spec"]["chartRef"], &namespace))
                    } else {
                        let (ns, n) = hr["status"]["helmChart"].as_str()?.split_once('/')?;
                        Some(self.get("HelmChart", ns, n))
                    }
                });
                OwnerData::HelmRelease {
                    namespace,
                    name,
                    release,
                    source,
                }
            }
            OwnerHint::ArgoTracking(app) => self.argo(app, false),
            OwnerHint::Helm { namespace, release } => {
                let records = self
                    .helm_records
                    .get(&(namespace.clone(), release.clone()))
                    .cloned()
                    .unwrap_or_default();
                OwnerData::Helm {
                    namespace,
                    release,
                    records: Ok(records),
                }
            }
            OwnerHint::ArgoInstanceLabel(app) => self.argo(app, true),
            OwnerHint::Controller { .. } | OwnerHint::None => OwnerData::None,
        }
    }

    fn controllers(&self, obj: &Value) -> Vec<Value> {
        let mut chain: Vec<Value> = Vec::new();
        let mut current = obj;
        while chain.len() < 4 {
            let OwnerHint::Controller { kind, name, .. } = owner::detect(current) else {
                break;
            };
            match self.get(&kind, owner::namespace_of(current), &name) {
                Fetched::Found(parent) => chain.push((*parent).clone()),
                _ => break,
            }
            current = chain.last().expect("just pushed");
        }
        chain
    }

    fn unit(&self, managed: &Value, owner: &OwnerData) -> UnitLookup {
        let Some(p) = owner::provenance(managed) else {
            return UnitLookup::NotChecked("the object has no ConfigHub provenance".into());
        };
        let delivered = matches!(owner, OwnerData::Flux(f) if f.repository.as_ref().is_some_and(|r| r.found().is_some()));
        let space = if p.space_id.is_empty() {
            &p.space
        } else {
            &p.space_id
        };
        match self.spaces_listed.get(space) {
            Some(Ok(())) => match self.units.get(&(space.clone(), p.unit.clone())) {
                Some((head, released)) => UnitLookup::Found {
                    head: *head,
                    last_released: *released,
                },
                None => UnitLookup::Missing,
            },
            Some(Err(e)) => UnitLookup::Unreachable(e.clone()),
            None if delivered => UnitLookup::NotChecked("its space was not listed".into()),
            None => UnitLookup::NotChecked(
                "no ConfigHubRepository delivers it and CONFIGHUB_URL is not set".into(),
            ),
        }
    }

    fn drift(&self, managed: &Value, owner: &OwnerData) -> DriftLookup {
        let from_confighub = matches!(owner, OwnerData::Flux(f) if f.repository.is_some())
            || owner::provenance(managed).is_some();
        if !from_confighub {
            return DriftLookup::NotChecked;
        }
        match &self.drift {
            Some(records) => match records.get(&super::gather::record_id(managed)) {
                Some(r) => DriftLookup::Record {
                    source: self.drift_source.clone(),
                    record: r.clone(),
                },
                None => DriftLookup::NoRecord {
                    source: self.drift_source.clone(),
                },
            },
            None => DriftLookup::Unavailable {
                source: self.drift_source.clone(),
                message: self.drift_error.clone().unwrap_or_default(),
            },
        }
    }

    /// Everything [`super::chain::build`] needs for one object, from the maps alone.
    pub fn gathered(&self, obj: &Value) -> Gathered {
        let controllers = match owner::detect(obj) {
            OwnerHint::Controller { .. } => self.controllers(obj),
            _ => Vec::new(),
        };
        let managed = controllers.last().unwrap_or(obj);
        let owner = self.owner(managed);
        let unit = self.unit(managed, &owner);
        let drift = self.drift(managed, &owner);
        Gathered {
            object: obj.clone(),
            controllers,
            owner,
            unit,
            // One archive download per object would defeat the one-pass listing.
            artifact: ArtifactLookup::NotChecked,
            drift,
        }
    }
}

/// One line of `--all` output: what manages the object, in a few words (`ConfigHub acorn/backend@12 →
/// ConfigHubRepository apps/backend → Kustomization flux-system/apps`).
pub fn owner_chain(t: &super::model::Trace) -> String {
    let object_levels = 1 + t
        .levels
        .iter()
        .rev()
        .skip(1)
        .take_while(|l| l.api_version.is_some() && !is_owner_kind(&l.kind))
        .count();
    let owners = &t.levels[..t.levels.len().saturating_sub(object_levels)];
    if owners.is_empty() {
        return "-".to_string();
    }
    owners
        .iter()
        .map(|l| match l.kind.as_str() {
            "ConfigHubUnit" => format!(
                "ConfigHub {}@{}",
                l.name,
                l.revision.as_deref().unwrap_or("?")
            ),
            _ => l.title(),
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

fn is_owner_kind(kind: &str) -> bool {
    matches!(
        kind,
        "Kustomization"
            | "HelmRelease"
            | "Application"
            | "ExternalArtifact"
            | "ConfigHubRepository"
            | "GitRepository"
            | "OCIRepository"
            | "Bucket"
            | "HelmChart"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_are_traced_from_the_maps_alone() {
        let mut index = Index {
            argocd_namespace: "argocd".into(),
            drift: Some(HashMap::new()),
            drift_source: "http://drift".into(),
            ..Default::default()
        };
        index.insert(json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {"sourceRef": {"kind": "ExternalArtifact", "name": "apps"}},
            "status": {"lastAppliedRevision": "head@sha256:aa",
                       "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}],
                       "inventory": {"entries": [{"id": "demo_web_apps_Deployment", "v": "v1"}]}}}));
        index.insert(
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {"sourceRef": {"kind": "ConfigHubRepository", "name": "apps"}},
            "status": {"artifact": {"revision": "head@sha256:aa"}}}),
        );
        index.insert(json!({"apiVersion": "source.confighub.com/v1beta1", "kind": "ConfigHubRepository",
            "metadata": {"name": "apps", "namespace": "flux-system"}, "spec": {"space": "prod"},
            "status": {"artifact": {"revision": "head@sha256:aa"},
                       "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}]}}));
        index.spaces_listed.insert("sp-1".into(), Ok(()));
        index.units.insert(("sp-1".into(), "web".into()), (4, 0));
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo",
                "labels": {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
                           "confighub.com/UnitSlug": "web"},
                "annotations": {"confighub.com/SpaceName": "prod", "confighub.com/SpaceID": "sp-1", "confighub.com/RevisionNum": "4"}},
            "spec": {"replicas": 1}, "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1}});
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-1", "namespace": "demo",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "controller": true}]},
            "spec": {"replicas": 1}, "status": {"replicas": 1, "readyReplicas": 1}});
        index.insert(deploy.clone());
        index.insert(rs.clone());

        let t = super::super::chain::build(&index.gathered(&rs));
        assert!(t.findings.is_empty(), "{:?}", t.findings);
        assert_eq!(t.levels.len(), 6);
        assert_eq!(
            owner_chain(&t),
            "ConfigHub prod/web@4 → ConfigHubRepository flux-system/apps → ExternalArtifact flux-system/apps → Kustomization flux-system/apps"
        );

        let hand = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "demo"}});
        let t = super::super::chain::build(&index.gathered(&hand));
        assert_eq!(owner_chain(&t), "-");
        assert_eq!(t.orphan, Some(super::super::model::Orphan::NeverManaged));
    }
}
