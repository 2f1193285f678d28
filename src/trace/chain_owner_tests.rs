//! Findings of the other owners on JSON fixtures: Argo CD Applications, plain Helm releases, Flux
//! HelmReleases and sources, and workloads traced through their controllers.

use serde_json::{Value, json};

use super::chain::*;
use super::chain_tests::*;
use super::model::*;
use super::render;

fn argo_object() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "guestbook-ui", "namespace": "guestbook",
            "annotations": {"argocd.argoproj.io/tracking-id": "guestbook:apps/Deployment:guestbook/guestbook-ui"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "ui", "image": "gcr.io/heptio-images/ks-guestbook-demo:0.2"}]}}},
        "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1}})
}

fn application(sync: &str, health: &str) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "guestbook", "namespace": "argocd"},
        "spec": {"project": "default", "source": {"repoURL": "https://git.example.invalid/argocd-example-apps.git",
                 "path": "guestbook", "targetRevision": "HEAD"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"}},
        "status": {"sync": {"status": sync, "revision": "53e28ff20cc530b9ada2173fbbd64d48338583ba"},
                   "health": {"status": health},
                   "resources": [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "guestbook",
                                  "name": "guestbook-ui", "status": sync, "health": {"status": health}}]}})
}

fn argo(app: Fetched) -> Gathered {
    Gathered {
        object: argo_object(),
        controllers: vec![],
        owner: OwnerData::ArgoCd {
            app: super::owner::AppRef::parse("guestbook"),
            via_label: false,
            application: app,
        },
        unit: UnitLookup::NotChecked("no provenance".into()),
        artifact: ArtifactLookup::NotChecked,
        drift: DriftLookup::NotChecked,
    }
}

#[test]
fn argo_cd_applications_show_sync_revision_status_and_health() {
    let t = build(&argo(Fetched::Found(
        application("Synced", "Healthy").into(),
    )));
    assert_eq!(t.owner, OwnerKind::Argocd);
    let kinds: Vec<&str> = t.levels.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(kinds, ["Source", "Application", "Deployment"]);
    assert_eq!(marks(&t), vec![Mark::Ok; 3]);
    assert_eq!(t.levels[1].summary, "Synced, Healthy at 53e28ff2…");
    assert_eq!(t.levels[1].details["syncStatus"], "Synced");
    assert_eq!(
        t.levels[1].revision.as_deref(),
        Some("53e28ff20cc530b9ada2173fbbd64d48338583ba")
    );
    assert_eq!(t.levels[0].details["path"], "guestbook");
    assert!(t.findings.is_empty());

    let t = build(&argo(Fetched::Found(
        application("OutOfSync", "Healthy").into(),
    )));
    assert_eq!(types(&t), [FindingType::Stale]);
    assert!(
        t.summary
            .contains("Application argocd/guestbook is OutOfSync"),
        "{}",
        t.summary
    );

    let mut degraded = application("Synced", "Degraded");
    degraded["status"]["health"]["message"] = json!("Deployment has minimum availability false");
    let t = build(&argo(Fetched::Found(degraded.into())));
    assert_eq!(types(&t)[0], FindingType::Broken);
    assert!(t.summary.contains("minimum availability"), "{}", t.summary);

    let t = build(&argo(Fetched::Missing));
    assert_eq!(t.orphan, Some(Orphan::WasManaged));
    assert!(
        t.summary
            .contains("tracking id names Application guestbook"),
        "{}",
        t.summary
    );
}

fn helm_object() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "redis", "namespace": "data",
            "labels": {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "redis"},
            "annotations": {"meta.helm.sh/release-name": "redis", "meta.helm.sh/release-namespace": "data"}}})
}

fn helm(records: Result<Vec<HelmRecord>, String>) -> Gathered {
    Gathered {
        object: helm_object(),
        controllers: vec![],
        owner: OwnerData::Helm {
            namespace: "data".into(),
            release: "redis".into(),
            records,
        },
        unit: UnitLookup::NotChecked("no provenance".into()),
        artifact: ArtifactLookup::NotChecked,
        drift: DriftLookup::NotChecked,
    }
}

#[test]
fn plain_helm_releases_read_from_release_records() {
    let rec = |version, status: &str| HelmRecord {
        version,
        status: status.into(),
    };
    let t = build(&helm(Ok(vec![rec(1, "superseded"), rec(2, "deployed")])));
    assert_eq!(t.owner, OwnerKind::Helm);
    assert_eq!(t.levels[0].summary, "revision 2 deployed");
    assert!(t.findings.is_empty());
    assert!(render::text(&t).starts_with("Helm release data/redis"));

    let t = build(&helm(Ok(vec![rec(2, "deployed"), rec(3, "failed")])));
    assert_eq!(types(&t), [FindingType::Broken]);

    let t = build(&helm(Ok(vec![])));
    assert_eq!(t.orphan, Some(Orphan::WasManaged));
}

#[test]
fn flux_helm_releases_and_other_flux_sources() {
    let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": "web",
            "labels": {"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "web"}},
        "spec": {"replicas": 1}, "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1}});
    let hr = json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "web"},
        "spec": {"chartRef": {"kind": "OCIRepository", "name": "podinfo"}},
        "status": {"conditions": conditions("True", "InstallSucceeded", "Helm install succeeded"),
                   "lastAttemptedRevision": "6.7.0+0123456789ab",
                   "history": [{"chartName": "podinfo", "chartVersion": "6.7.0", "version": 1}]}});
    let oci = json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
        "metadata": {"name": "podinfo", "namespace": "web"},
        "spec": {"url": "oci://ghcr.io/stefanprodan/charts/podinfo", "ref": {"semver": "6.x"}},
        "status": {"conditions": conditions("True", "Succeeded", "stored"), "artifact": {"revision": "6.7.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}});
    let t = build(&Gathered {
        object: obj,
        controllers: vec![],
        owner: OwnerData::HelmRelease {
            namespace: "web".into(),
            name: "podinfo".into(),
            release: Fetched::Found(hr.into()),
            source: Some(Fetched::Found(oci.into())),
        },
        unit: UnitLookup::NotChecked("no provenance".into()),
        artifact: ArtifactLookup::NotChecked,
        drift: DriftLookup::NotChecked,
    });
    assert_eq!(t.owner, OwnerKind::FluxHelm);
    let kinds: Vec<&str> = t.levels.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(kinds, ["OCIRepository", "HelmRelease", "Deployment"]);
    assert_eq!(t.levels[1].summary, "Released podinfo@6.7.0");
    assert!(t.findings.is_empty(), "{:?}", t.findings);

    // A Kustomization over a GitRepository.
    let git = json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system"},
        "spec": {"url": "https://git.example.invalid/org/fleet", "ref": {"branch": "main"}},
        "status": {"conditions": conditions("True", "Succeeded", "stored"), "artifact": {"revision": "main@sha1:0123456789abcdef0123456789abcdef01234567"}}});
    let mut k = ks(
        "main@sha1:0123456789abcdef0123456789abcdef01234567",
        "True",
        "Applied",
        INVENTORY,
    );
    k["spec"]["sourceRef"] = json!({"kind": "GitRepository", "name": "flux-system"});
    let mut object = deployment(3);
    let labels = object["metadata"]["labels"].as_object_mut().unwrap();
    labels.remove("confighub.com/UnitSlug");
    let t = build(&Gathered {
        object,
        controllers: vec![],
        owner: OwnerData::Flux(FluxData {
            namespace: "flux-system".into(),
            name: "apps".into(),
            kustomization: Fetched::Found(k.into()),
            source: Some(Fetched::Found(git.into())),
            repository: None,
            in_inventory: None,
        }),
        unit: UnitLookup::NotChecked("no provenance".into()),
        artifact: ArtifactLookup::NotChecked,
        drift: DriftLookup::NotChecked,
    });
    assert_eq!(t.owner, OwnerKind::Flux);
    assert_eq!(t.levels[0].kind, "GitRepository");
    assert_eq!(t.levels[0].details["branch"], "main");
    assert_eq!(t.levels[0].summary, "main@sha1:01234567…");
    assert!(t.findings.is_empty(), "{:?}", t.findings);
}

#[test]
fn pods_are_traced_through_their_controllers() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "backend-7d-x", "namespace": "demo",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "backend-7d", "controller": true}]},
        "spec": {"containers": [{"name": "app", "image": "backend:1.4.2"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "app", "ready": true}]}});
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "backend-7d", "namespace": "demo",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend", "controller": true}]},
        "spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 3}});
    let mut g = healthy();
    g.object = pod;
    g.controllers = vec![rs, deployment(3)];
    let t = build(&g);
    let kinds: Vec<&str> = t.levels.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ConfigHubUnit",
            "ConfigHubRepository",
            "ExternalArtifact",
            "Kustomization",
            "Deployment",
            "ReplicaSet",
            "Pod"
        ]
    );
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    assert_eq!(t.object.kind, "Pod");
    assert_eq!(t.levels[6].summary, "Running, 1/1 containers ready");
}

#[test]
fn a_helm_release_behind_its_chart_source_is_stale() {
    let hr = json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "web"},
        "status": {"conditions": conditions("True", "UpgradeSucceeded", "ok"), "lastAttemptedRevision": "6.6.0+aaaaaaaaaaaa"}});
    let oci = json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
        "metadata": {"name": "podinfo", "namespace": "web"},
        "status": {"conditions": conditions("True", "Succeeded", "stored"),
                   "artifact": {"revision": "6.7.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}});
    let obj = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "podinfo", "namespace": "web",
        "labels": {"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "web"}}});
    let t = build(&Gathered {
        object: obj,
        controllers: vec![],
        owner: OwnerData::HelmRelease {
            namespace: "web".into(),
            name: "podinfo".into(),
            release: Fetched::Found(hr.into()),
            source: Some(Fetched::Found(oci.into())),
        },
        unit: UnitLookup::NotChecked("no provenance".into()),
        artifact: ArtifactLookup::NotChecked,
        drift: DriftLookup::NotChecked,
    });
    assert_eq!(types(&t), [FindingType::Stale]);
    assert!(
        t.summary.contains("last attempted 6.6.0+aaaaaaaaaaaa"),
        "{}",
        t.summary
    );
}
