//! Findings on JSON fixtures, without a cluster: healthy, stale, broken, drifted, orphan (never and was
//! managed), Argo CD, Helm, HelmRelease, other Flux sources, controllers.

use serde_json::{Value, json};

use super::chain::*;
use super::model::*;
use super::render;

pub(super) const REV_A: &str =
    "head@sha256:3f2a9c1b00000000000000000000000000000000000000000000000000000000";
pub(super) const REV_B: &str =
    "head@sha256:77aa00ff00000000000000000000000000000000000000000000000000000000";

pub(super) fn conditions(status: &str, reason: &str, message: &str) -> Value {
    json!([{"type": "Ready", "status": status, "reason": reason, "message": message}])
}

pub(super) fn chr(revision: &str, ready: &str, message: &str, suspend: bool) -> Value {
    json!({"apiVersion": "source.confighub.com/v1beta1", "kind": "ConfigHubRepository",
        "metadata": {"name": "backend", "namespace": "apps"},
        "spec": {"space": "acorn-bear-prod", "url": "http://hub", "interval": "5m", "suspend": suspend},
        "status": {"conditions": conditions(ready, if ready == "True" {"Succeeded"} else {"FetchFailed"}, message),
                   "artifact": {"revision": revision, "lastUpdateTime": "2026-12-01T00:00:00Z"}}})
}

pub(super) fn ea(revision: &str) -> Value {
    json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
        "metadata": {"name": "backend", "namespace": "apps"},
        "spec": {"sourceRef": {"apiVersion": "source.confighub.com/v1beta1", "kind": "ConfigHubRepository", "name": "backend"}},
        "status": {"conditions": conditions("True", "Succeeded", "stored"), "artifact": {"revision": revision}}})
}

pub(super) fn ks(applied: &str, ready: &str, message: &str, inventory: &[&str]) -> Value {
    let entries: Vec<Value> = inventory
        .iter()
        .map(|id| json!({"id": id, "v": "v1"}))
        .collect();
    json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {"path": "./", "sourceRef": {"kind": "ExternalArtifact", "name": "backend", "namespace": "apps"}},
        "status": {"lastAppliedRevision": applied,
                   "conditions": conditions(ready, if ready == "True" {"ReconciliationSucceeded"} else {"ArtifactFailed"}, message),
                   "inventory": {"entries": entries}}})
}

pub(super) fn deployment(ready: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "backend", "namespace": "demo", "generation": 1,
            "labels": {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
                       "confighub.com/UnitSlug": "backend"},
            "annotations": {"confighub.com/SpaceName": "acorn-bear-prod", "confighub.com/SpaceID": "sp-1",
                            "confighub.com/RevisionNum": "12"}},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": "backend:1.4.2"}]}}},
        "status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": ready, "updatedReplicas": 3}})
}

pub(super) const INVENTORY: &[&str] = &["demo_backend_apps_Deployment"];

pub(super) fn confighub_chain(
    repo: Value,
    source: Value,
    kustomization: Value,
    head: i64,
) -> Gathered {
    Gathered {
        object: deployment(3),
        controllers: vec![],
        owner: OwnerData::Flux(FluxData {
            namespace: "flux-system".into(),
            name: "apps".into(),
            kustomization: Fetched::Found(kustomization.into()),
            source: Some(Fetched::Found(source.into())),
            repository: Some(Fetched::Found(repo.into())),
            in_inventory: None,
        }),
        unit: UnitLookup::Found {
            head,
            last_released: 0,
        },
        artifact: ArtifactLookup::NotChecked,
        drift: DriftLookup::NoRecord {
            source: "http://drift".into(),
        },
    }
}

pub(super) fn healthy() -> Gathered {
    confighub_chain(
        chr(REV_A, "True", "stored artifact", false),
        ea(REV_A),
        ks(REV_A, "True", "Applied revision", INVENTORY),
        12,
    )
}

pub(super) fn types(t: &Trace) -> Vec<FindingType> {
    t.findings.iter().map(|f| f.type_).collect()
}

pub(super) fn marks(t: &Trace) -> Vec<Mark> {
    t.levels.iter().map(|l| l.mark).collect()
}

#[test]
fn a_healthy_chain_is_all_ticks() {
    let t = build(&healthy());
    let kinds: Vec<&str> = t.levels.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ConfigHubUnit",
            "ConfigHubRepository",
            "ExternalArtifact",
            "Kustomization",
            "Deployment"
        ]
    );
    assert_eq!(marks(&t), vec![Mark::Ok; 5]);
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    assert_eq!(
        (t.owner, t.status.as_str(), t.exit_code()),
        (OwnerKind::Confighub, "ok", 0)
    );
    assert_eq!(t.levels[0].summary, "rev 12 (head 12)");
    assert_eq!(t.levels[0].name, "acorn-bear-prod/backend");
    assert_eq!(t.levels[3].summary, "Applied head@sha256:3f2a9c1b…");
    assert_eq!(t.levels[4].summary, "3/3 ready");
    assert_eq!(t.levels[4].details["images"], json!(["backend:1.4.2"]));

    let text = render::text(&t);
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ConfigHub unit acorn-bear-prod/backend"),
        "{text}"
    );
    assert!(lines[0].ends_with("✓ rev 12 (head 12)"), "{text}");
    assert!(
        lines[1].starts_with("  └─▶ ConfigHubRepository apps/backend"),
        "{text}"
    );
    assert!(
        text.contains("      └─▶ ExternalArtifact apps/backend"),
        "{text}"
    );
    assert!(text.contains("└─▶ Deployment demo/backend"), "{text}");
    assert!(text.contains("image backend:1.4.2"), "{text}");
    assert!(
        text.trim_end().ends_with("and every level is ready."),
        "{text}"
    );
    // Marks line up in one column.
    let columns: Vec<usize> = lines
        .iter()
        .filter_map(|l| l.chars().position(|c| c == '✓'))
        .collect();
    assert_eq!(columns.len(), 6, "{text}");
    let columns = &columns[..5];
    assert!(columns.windows(2).all(|w| w[0] == w[1]), "{text}");

    let v: Value = serde_json::from_str(&render::json(&t)).unwrap();
    assert_eq!(v["schemaVersion"], 1);
    assert_eq!(v["owner"], "confighub");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["levels"][0]["details"]["headRevision"], 12);
    assert_eq!(v["levels"][1]["revision"], REV_A);
    assert_eq!(v["levels"][1]["mark"], "ok");
    assert_eq!(v["drift"]["state"], "none");
    assert_eq!(v["object"]["kind"], "Deployment");
}

#[test]
fn a_newer_head_than_the_artifact_is_stale_at_the_repository() {
    let t = build(&confighub_chain(
        chr(REV_A, "True", "stored", false),
        ea(REV_A),
        ks(REV_A, "True", "Applied", INVENTORY),
        13,
    ));
    assert_eq!(types(&t), [FindingType::Stale]);
    assert_eq!(t.findings[0].level, Some(1));
    assert!(
        t.findings[0]
            .message
            .contains("head revision 13, the cluster runs revision 12")
            && t.findings[0].message.contains("has not fetched it yet"),
        "{}",
        t.findings[0].message
    );
    assert_eq!(t.levels[0].summary, "rev 12 (head 13)");
    assert_eq!(marks(&t)[..2], [Mark::Warn, Mark::Warn]);
    assert_eq!(t.exit_code(), 3);

    // Suspended, the repository is named as the cause.
    let t = build(&confighub_chain(
        chr(REV_A, "True", "stored", true),
        ea(REV_A),
        ks(REV_A, "True", "Applied", INVENTORY),
        13,
    ));
    assert!(
        t.summary
            .contains("ConfigHubRepository apps/backend is suspended"),
        "{}",
        t.summary
    );
    assert!(t.summary.starts_with("Stale:"), "{}", t.summary);
}

#[test]
fn a_kustomization_behind_its_artifact_is_stale() {
    let t = build(&confighub_chain(
        chr(REV_B, "True", "stored", false),
        ea(REV_B),
        ks(REV_A, "True", "Applied", INVENTORY),
        12,
    ));
    assert_eq!(types(&t), [FindingType::Stale]);
    assert_eq!(t.findings[0].level, Some(3));
    assert!(t.findings[0].message.contains(
        "last applied head@sha256:3f2a9c1b…, but its source is at head@sha256:77aa00ff…"
    ));
    assert!(t.levels[3].stale);
    assert_eq!(t.levels[3].mark, Mark::Warn);
}

#[test]
fn the_first_level_not_ready_is_broken_and_later_levels_stale() {
    let t = build(&confighub_chain(
        chr(
            REV_A,
            "False",
            "ConfigHub unavailable: connection refused",
            false,
        ),
        ea(REV_A),
        ks(REV_A, "True", "Applied", INVENTORY),
        12,
    ));
    assert_eq!(types(&t), [FindingType::Broken]);
    assert_eq!(t.findings[0].level, Some(1));
    assert!(t.findings[0].message.contains("connection refused"));
    assert_eq!(
        marks(&t),
        [Mark::Ok, Mark::Fail, Mark::Warn, Mark::Warn, Mark::Warn]
    );
    assert!(t.levels[2..].iter().all(|l| l.stale));
    assert_eq!((t.status.as_str(), t.exit_code()), ("broken", 2));
    let text = render::text(&t);
    assert!(text.contains("✗ Not ready: FetchFailed"), "{text}");
    assert!(
        text.contains("✗ Broken: ConfigHubRepository apps/backend is not ready"),
        "{text}"
    );

    // A Kustomization that cannot build its path.
    let t = build(&confighub_chain(
        chr(REV_A, "True", "stored", false),
        ea(REV_A),
        ks(
            REV_A,
            "False",
            "kustomization path not found: lstat /tmp/x/missing: no such file or directory",
            INVENTORY,
        ),
        12,
    ));
    assert_eq!(types(&t), [FindingType::Broken]);
    assert_eq!(t.findings[0].level, Some(3));
    assert!(t.summary.contains("path not found"), "{}", t.summary);
    assert!(t.levels[4].stale);
}

#[test]
fn an_active_drift_record_is_named_with_its_details() {
    let mut g = healthy();
    g.drift = DriftLookup::Record {
        source: "http://drift/api/v1/drift-records/Deployment%3Ademo%3Abackend".into(),
        record: json!({"id": "Deployment:demo:backend", "status": "active", "types": ["Scaling"],
            "severity": "High", "actor": "kubectl", "fix_unit": "backend-fix-1",
            "first_detected": "2026-12-01T00:00:00Z",
            "items": [{"path": "/spec/replicas", "desired": 3, "live": 5, "actor": "kubectl", "type": "Scaling", "severity": "High"}]}),
    };
    let t = build(&g);
    assert_eq!(types(&t), [FindingType::Drifted]);
    assert_eq!(t.levels[4].mark, Mark::Warn);
    assert_eq!(t.drift.state, "active");
    let r = t.drift.record.as_ref().unwrap();
    assert_eq!(
        (r.fix_unit.as_deref(), r.actor.as_deref()),
        (Some("backend-fix-1"), Some("kubectl"))
    );
    let text = render::text(&t);
    assert!(
        text.contains("Drift (active): Scaling — severity High, by kubectl"),
        "{text}"
    );
    assert!(
        text.contains("/spec/replicas: desired 3, live 5 (kubectl)"),
        "{text}"
    );
    assert!(text.contains("fix unit: backend-fix-1"), "{text}");
    let v: Value = serde_json::from_str(&render::json(&t)).unwrap();
    assert_eq!(v["drift"]["record"]["items"][0]["live"], 5);
    assert_eq!(v["findings"][0]["type"], "drifted");
}

#[test]
fn an_object_nobody_manages_was_never_managed() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "by-hand", "namespace": "demo"}});
    let t = build(&Gathered {
        object: obj,
        controllers: vec![],
        owner: OwnerData::None,
        unit: UnitLookup::NotChecked("no provenance".into()),
        artifact: ArtifactLookup::NotChecked,
        drift: DriftLookup::NotChecked,
    });
    assert_eq!(
        (t.owner, t.orphan),
        (OwnerKind::None, Some(Orphan::NeverManaged))
    );
    assert_eq!(types(&t), [FindingType::Orphan]);
    assert!(
        t.summary.starts_with("Orphan: never managed"),
        "{}",
        t.summary
    );
    assert_eq!(t.levels.len(), 1);
    assert_eq!(t.exit_code(), 3);
}

#[test]
fn flux_labels_without_an_owner_that_lists_it_was_managed() {
    // The Kustomization is gone.
    let mut g = healthy();
    if let OwnerData::Flux(f) = &mut g.owner {
        f.kustomization = Fetched::Missing;
        f.source = None;
        f.repository = None;
    }
    let t = build(&g);
    assert_eq!(t.orphan, Some(Orphan::WasManaged));
    assert!(types(&t).contains(&FindingType::Orphan));
    assert!(
        t.summary.contains("was managed, now orphaned"),
        "{}",
        t.summary
    );
    assert!(
        t.summary
            .contains("Kustomization flux-system/apps, which no longer exists"),
        "{}",
        t.summary
    );

    // The Kustomization exists but no longer lists it.
    let g = confighub_chain(
        chr(REV_A, "True", "stored", false),
        ea(REV_A),
        ks(REV_A, "True", "Applied", &["demo_other_apps_Deployment"]),
        12,
    );
    let t = build(&g);
    assert_eq!(t.orphan, Some(Orphan::WasManaged));
    assert!(
        t.summary.contains("is not in its inventory"),
        "{}",
        t.summary
    );
}

#[test]
fn an_unreachable_confighub_is_a_note_not_a_problem() {
    let mut g = healthy();
    g.unit = UnitLookup::Unreachable("connection refused".into());
    let t = build(&g);
    assert_eq!(types(&t), [FindingType::Unverified]);
    assert_eq!(t.exit_code(), 0);
    assert_eq!(t.levels[0].summary, "rev 12 (ConfigHub not reachable)");
    assert!(render::text(&t).contains("note: ConfigHub could not be asked"));

    let mut g = healthy();
    g.unit = UnitLookup::Missing;
    let t = build(&g);
    assert_eq!(types(&t), [FindingType::Stale]);
    assert!(t.summary.contains("no longer exists in ConfigHub"));
}

#[test]
fn a_workload_rolling_out_is_progressing() {
    let mut g = healthy();
    g.object = deployment(1);
    let t = build(&g);
    assert_eq!(types(&t), [FindingType::Progressing]);
    assert!(t.summary.contains("1/3 ready"), "{}", t.summary);
}

#[test]
fn in_last_released_mode_only_a_newer_release_is_stale() {
    let mut repo = chr(REV_A, "True", "stored", false);
    repo["spec"]["revision"] = json!("LastReleased");
    let mut g = confighub_chain(repo, ea(REV_A), ks(REV_A, "True", "Applied", INVENTORY), 14);
    g.unit = UnitLookup::Found {
        head: 14,
        last_released: 12,
    };
    let t = build(&g);
    assert!(
        t.findings.is_empty(),
        "an unreleased head is not stale: {:?}",
        t.findings
    );
    assert_eq!(t.levels[0].summary, "rev 12 (head 14, released 12)");
    assert_eq!(t.levels[0].details["mode"], "LastReleased");

    g.unit = UnitLookup::Found {
        head: 14,
        last_released: 13,
    };
    let t = build(&g);
    assert_eq!(types(&t), [FindingType::Stale]);
    assert!(
        t.summary
            .contains("last released revision 13, the cluster runs revision 12"),
        "{}",
        t.summary
    );
}

#[test]
fn the_artifact_revision_says_which_half_of_the_chain_holds_a_change_back() {
    // ConfigHub 13, artifact 13, cluster 12: the Kustomization has not applied it.
    let mut g = healthy();
    g.unit = UnitLookup::Found {
        head: 13,
        last_released: 0,
    };
    g.artifact = ArtifactLookup::Revision(13);
    let t = build(&g);
    assert_eq!(types(&t), [FindingType::Stale]);
    assert_eq!(t.levels[0].summary, "rev 12 (artifact 13, head 13)");
    assert!(
        t.summary.contains("the artifact holds revision 13 of unit acorn-bear-prod/backend, the cluster runs revision 12"),
        "{}",
        t.summary
    );
    assert!(!t.levels[1].stale, "the repository did its part");

    // ConfigHub 14, artifact 13: the repository has not fetched it.
    g.unit = UnitLookup::Found {
        head: 14,
        last_released: 0,
    };
    let t = build(&g);
    assert!(
        t.summary
            .contains("is at head revision 14, the artifact holds revision 13")
            && t.summary
                .contains("ConfigHubRepository apps/backend has not fetched it yet"),
        "{}",
        t.summary
    );
    assert!(t.levels[1].stale);

    // All the same revision: nothing to say; a unit missing from the artifact is a note.
    g.unit = UnitLookup::Found {
        head: 12,
        last_released: 0,
    };
    g.artifact = ArtifactLookup::Revision(12);
    assert!(build(&g).findings.is_empty());
    g.artifact = ArtifactLookup::NotInArtifact;
    let t = build(&g);
    assert_eq!(types(&t), [FindingType::Unverified]);
    assert_eq!(t.levels[0].details["inArtifact"], false);
}
