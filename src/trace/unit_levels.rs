//! The ConfigHub unit level of a chain (pure): the unit's revision in the cluster, its head and last
//! released revision in ConfigHub, and whether ConfigHub wants a newer one than the object has (and
//! which half of the chain holds it back).

use serde_json::Value;

use super::chain::*;
use super::model::*;
use super::owner::Provenance;

/// The ConfigHub unit level, from the object's provenance and what ConfigHub says.
pub(super) fn unit_level(
    b: &mut Builder,
    p: &Provenance,
    unit: &UnitLookup,
    artifact: &ArtifactLookup,
    mode: &str,
) -> usize {
    let name = if p.space.is_empty() {
        p.unit.clone()
    } else {
        format!("{}/{}", p.space, p.unit)
    };
    let mut level = Level::new("ConfigHubUnit", None, None, &name);
    level.revision = p.revision.map(|r| r.to_string());
    level.detail("space", p.space.clone());
    level.detail("spaceId", p.space_id.clone());
    level.detail("unit", p.unit.clone());
    level.detail("revision", p.revision);
    level.detail("mode", mode.to_string());
    let rev = p
        .revision
        .map_or_else(|| "rev ?".to_string(), |r| format!("rev {r}"));
    match unit {
        UnitLookup::Found {
            head,
            last_released,
        } => {
            level.detail("headRevision", *head);
            level.detail("lastReleasedRevision", *last_released);
            level.summary =
                if mode == "LastReleased" || (*last_released > 0 && last_released != head) {
                    format!("{rev} (head {head}, released {last_released})")
                } else {
                    format!("{rev} (head {head})")
                };
        }
        UnitLookup::Missing => {
            level.mark = Mark::Warn;
            level.summary = format!("{rev} (unit no longer in ConfigHub)");
        }
        UnitLookup::Unreachable(_) => level.summary = format!("{rev} (ConfigHub not reachable)"),
        UnitLookup::NotChecked(_) => level.summary = format!("{rev} (ConfigHub not asked)"),
    }
    match artifact {
        ArtifactLookup::Revision(a) => {
            level.detail("artifactRevision", *a);
            if Some(*a) != p.revision {
                level.summary = level
                    .summary
                    .replacen(" (", &format!(" (artifact {a}, "), 1);
            }
        }
        ArtifactLookup::NotInArtifact => level.detail("inArtifact", false),
        ArtifactLookup::Unreadable(e) => level.detail("artifactError", e.clone()),
        ArtifactLookup::NotChecked => {}
    }
    let idx = b.push(level);
    if *artifact == ArtifactLookup::NotInArtifact {
        b.find(
            FindingType::Unverified,
            Some(idx),
            format!("the current artifact has no file for unit {name}: the unit was deleted or filtered out, and Flux prunes the object when it applies that artifact"),
        );
    }
    match unit {
        UnitLookup::Unreachable(e) => b.find(
            FindingType::Unverified,
            Some(idx),
            format!("ConfigHub could not be asked for the unit's head revision: {e}"),
        ),
        UnitLookup::NotChecked(why) => b.find(
            FindingType::Unverified,
            Some(idx),
            format!("the unit's head revision was not checked: {why}"),
        ),
        UnitLookup::Missing => b.find(
            FindingType::Stale,
            Some(idx),
            format!(
                "unit {name} no longer exists in ConfigHub; the object stays until the artifact without it is applied"
            ),
        ),
        UnitLookup::Found { .. } => {}
    }
    idx
}

/// Whether ConfigHub wants a newer revision than the object has; marks the unit level and names the cause.
pub(super) fn unit_staleness(
    b: &mut Builder,
    unit_idx: usize,
    p: &Provenance,
    g: &Gathered,
    mode: &str,
    repo_idx: Option<usize>,
    owners_end: usize,
) {
    let Some(applied) = p.revision else { return };
    let name = b.levels[unit_idx].name.clone();
    let in_artifact = match g.artifact {
        ArtifactLookup::Revision(r) => Some(r),
        _ => None,
    };
    let wanted = match &g.unit {
        UnitLookup::Found {
            head,
            last_released,
        } => Some(if mode == "LastReleased" {
            (*last_released, "last released")
        } else {
            (*head, "head")
        }),
        _ => None,
    };
    // Which part of the chain holds the change back: ConfigHub → artifact (the repository), or
    // artifact → cluster (the ExternalArtifact/Kustomization).
    let (message, upstream) = match (wanted, in_artifact) {
        (Some((w, word)), Some(a)) if w > a => (
            format!(
                "ConfigHub unit {name} is at {word} revision {w}, the artifact holds revision {a}"
            ),
            true,
        ),
        (_, Some(a)) if a > applied => (
            format!(
                "the artifact holds revision {a} of unit {name}, the cluster runs revision {applied}"
            ),
            false,
        ),
        (Some((w, word)), None) if w > applied => (
            format!(
                "ConfigHub unit {name} is at {word} revision {w}, the cluster runs revision {applied}"
            ),
            false,
        ),
        _ => return,
    };
    b.levels[unit_idx].mark = Mark::Warn;
    b.levels[unit_idx].stale = true;
    // The first level below the unit that is not fine explains it (only below the repository when the
    // artifact already has the change); else the repository has not fetched it yet.
    let from = match (upstream, repo_idx, in_artifact) {
        (false, Some(r), Some(_)) => r + 1,
        _ => unit_idx + 1,
    };
    let culprit = b.levels[from..owners_end]
        .iter()
        .position(|l| l.mark != Mark::Ok || l.stale)
        .map(|i| i + from);
    let cause = match (culprit, repo_idx) {
        (Some(i), _) => {
            let l = &b.levels[i];
            let state = if l.mark == Mark::Fail {
                "is not Ready"
            } else if l.details.get("suspended") == Some(&Value::Bool(true)) {
                "is suspended"
            } else {
                "is behind"
            };
            format!("{} {state}", l.title())
        }
        (None, Some(r)) if upstream || in_artifact.is_none() => {
            let l = &mut b.levels[r];
            l.stale = true;
            l.mark = l.mark.worst(Mark::Warn);
            let since = l.details["artifactUpdated"]
                .as_str()
                .map(|t| {
                    format!(
                        " (artifact from {t}, interval {})",
                        l.details["interval"].as_str().unwrap_or("?")
                    )
                })
                .unwrap_or_default();
            format!("{} has not fetched it yet{since}", l.title())
        }
        (None, Some(_)) => "it has not been applied yet".to_string(),
        (None, None) => "nothing here delivers ConfigHub revisions to it".to_string(),
    };
    b.find(
        FindingType::Stale,
        Some(culprit.or(repo_idx).unwrap_or(unit_idx)),
        format!("{message}: {cause}"),
    );
}
