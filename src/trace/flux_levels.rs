//! The Flux levels of a chain (pure): ConfigHubRepository, the Kustomization's source (ExternalArtifact,
//! GitRepository, OCIRepository, Bucket), the Kustomization, and whether its inventory still lists the object.

use serde_json::Value;

use super::chain::{Builder, Fetched, FluxData, level_of, ready_condition, short_revision, text};
use super::model::*;
use super::owner;

pub(super) fn artifact_revision(obj: &Value) -> Option<String> {
    text(&obj["status"]["artifact"]["revision"])
}

/// The ConfigHubRepository level; returns its index.
fn repository_level(b: &mut Builder, chr: &Value) -> usize {
    let mut level = level_of(chr, "ConfigHubRepository");
    let revision = artifact_revision(chr);
    level.revision = revision.clone();
    level.detail(
        "mode",
        chr["spec"]["revision"]
            .as_str()
            .unwrap_or("Head")
            .to_string(),
    );
    level.detail("space", chr["spec"]["space"].clone());
    level.detail(
        "url",
        chr["spec"]["url"]
            .as_str()
            .unwrap_or(crate::api::repository::DEFAULT_URL)
            .to_string(),
    );
    level.detail("interval", chr["spec"]["interval"].clone());
    level.detail(
        "artifactUpdated",
        chr["status"]["artifact"]["lastUpdateTime"].clone(),
    );
    let idx = b.push(level);
    let summary = revision
        .as_deref()
        .map(short_revision)
        .unwrap_or_else(|| "no artifact".to_string());
    b.flux_ready(idx, chr, summary);
    idx
}

/// A Flux source level (ExternalArtifact, GitRepository, OCIRepository, Bucket, HelmChart, …).
pub(super) fn source_level(b: &mut Builder, src: &Value) -> usize {
    let kind = owner::kind_of(src).to_string();
    let mut level = level_of(src, &kind);
    let revision = artifact_revision(src);
    level.revision = revision.clone();
    if let Some(url) = text(&src["spec"]["url"]) {
        level.detail("url", url);
    }
    let reference = &src["spec"]["ref"];
    for key in ["branch", "tag", "semver", "commit", "digest", "name"] {
        if let Some(v) = text(&reference[key]) {
            level.detail(key, v);
        }
    }
    if let Some(origin) =
        text(&src["status"]["artifact"]["metadata"]["org.opencontainers.image.revision"])
    {
        level.detail("originRevision", origin);
    }
    if let Some(s) = src["spec"]["sourceRef"].as_object() {
        level.detail("sourceRef", Value::Object(s.clone()));
    }
    let idx = b.push(level);
    let summary = revision
        .as_deref()
        .map(short_revision)
        .unwrap_or_else(|| "no artifact".to_string());
    if ready_condition(src).is_none() && revision.is_some() {
        // An ExternalArtifact written by a producer that sets no conditions: the artifact is what counts.
        let l = &mut b.levels[idx];
        l.summary = summary;
        l.ready = Some(true);
    } else {
        b.flux_ready(idx, src, summary);
    }
    if revision.is_none() && b.levels[idx].mark == Mark::Ok {
        b.levels[idx].mark = Mark::Fail;
        b.levels[idx].ready = Some(false);
        b.levels[idx].message = Some("status.artifact is empty".to_string());
    }
    idx
}

fn kustomization_level(b: &mut Builder, ks: &Value, source_revision: Option<&str>) -> usize {
    let mut level = level_of(ks, "Kustomization");
    let applied = text(&ks["status"]["lastAppliedRevision"]);
    level.revision = applied.clone();
    level.detail(
        "path",
        ks["spec"]["path"].as_str().unwrap_or("./").to_string(),
    );
    level.detail("sourceRef", ks["spec"]["sourceRef"].clone());
    level.detail(
        "lastAttemptedRevision",
        ks["status"]["lastAttemptedRevision"].clone(),
    );
    level.detail(
        "lastAppliedOriginRevision",
        ks["status"]["lastAppliedOriginRevision"].clone(),
    );
    if let Some(t) = text(&ks["spec"]["targetNamespace"]) {
        level.detail("targetNamespace", t);
    }
    let idx = b.push(level);
    let summary = match &applied {
        Some(rev) => format!("Applied {}", short_revision(rev)),
        None => "Ready".to_string(),
    };
    b.flux_ready(idx, ks, summary);
    if let (Some(src), Some(applied)) = (source_revision, applied.as_deref())
        && src != applied
    {
        let level = &mut b.levels[idx];
        level.stale = true;
        level.mark = level.mark.worst(Mark::Warn);
        let why = if ks["spec"]["suspend"] == true {
            "it is suspended"
        } else if level.ready == Some(false) {
            "its last attempt failed"
        } else {
            "it has not reconciled the new artifact yet"
        };
        let title = level.title();
        b.find(
            FindingType::Stale,
            Some(idx),
            format!(
                "{title} last applied {}, but its source is at {} ({why})",
                short_revision(applied),
                short_revision(src)
            ),
        );
    } else if source_revision.is_some() && applied.is_none() && b.levels[idx].mark == Mark::Ok {
        b.levels[idx].mark = Mark::Warn;
        b.levels[idx].summary = "nothing applied yet".to_string();
    }
    idx
}

pub(super) fn flux_levels(
    b: &mut Builder,
    f: &FluxData,
    managed: &Value,
) -> (Option<Orphan>, Option<usize>) {
    // Levels from the top: repository, source, Kustomization.
    let mut repo_idx = None;
    if let Some(repo) = &f.repository {
        repo_idx = Some(match repo {
            Fetched::Found(chr) => repository_level(b, chr),
            other => {
                let (ns, name) = f
                    .source
                    .as_ref()
                    .and_then(Fetched::found)
                    .map(|ea| {
                        let r = &ea["spec"]["sourceRef"];
                        (
                            r["namespace"]
                                .as_str()
                                .unwrap_or(owner::namespace_of(ea))
                                .to_string(),
                            r["name"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .unwrap_or_default();
                b.missing(
                    "ConfigHubRepository",
                    "source.confighub.com/v1beta1",
                    &ns,
                    &name,
                    other,
                )
            }
        });
    }
    let mut source_revision = None;
    let ks = match &f.kustomization {
        Fetched::Found(ks) => ks,
        other => {
            let idx = b.missing(
                "Kustomization",
                "kustomize.toolkit.fluxcd.io/v1",
                &f.namespace,
                &f.name,
                other,
            );
            if matches!(other, Fetched::Missing) {
                let l = &mut b.levels[idx];
                l.mark = Mark::Warn;
                let title = l.title();
                b.find(
                    FindingType::Orphan,
                    Some(idx),
                    format!(
                        "was managed, now orphaned: it carries the labels of {title}, which no longer exists"
                    ),
                );
                return (Some(Orphan::WasManaged), Some(idx));
            }
            return (None, Some(idx));
        }
    };
    if let Some(source) = &f.source {
        let sref = &ks["spec"]["sourceRef"];
        let idx = match source {
            Fetched::Found(src) => {
                let idx = source_level(b, src);
                source_revision = artifact_revision(src);
                idx
            }
            other => b.missing(
                sref["kind"].as_str().unwrap_or("Source"),
                sref["apiVersion"]
                    .as_str()
                    .unwrap_or("source.toolkit.fluxcd.io/v1"),
                sref["namespace"]
                    .as_str()
                    .unwrap_or(owner::namespace_of(ks)),
                sref["name"].as_str().unwrap_or_default(),
                other,
            ),
        };
        // The ExternalArtifact should carry the repository's artifact.
        if let (Some(r), Some(chr)) = (repo_idx, f.repository.as_ref().and_then(Fetched::found)) {
            let repo_rev = artifact_revision(chr);
            if repo_rev.is_some() && source_revision.is_some() && repo_rev != source_revision {
                let level = &mut b.levels[idx];
                level.stale = true;
                level.mark = level.mark.worst(Mark::Warn);
                let title = level.title();
                let repo_title = b.levels[r].title();
                b.find(
                    FindingType::Stale,
                    Some(idx),
                    format!(
                        "{title} is at {}, but {repo_title} produced {}",
                        short_revision(source_revision.as_deref().unwrap_or_default()),
                        short_revision(repo_rev.as_deref().unwrap_or_default())
                    ),
                );
            }
        }
    }
    let ks_idx = kustomization_level(b, ks, source_revision.as_deref());
    let count = ks["status"]["inventory"]["entries"]
        .as_array()
        .map_or(0, Vec::len);
    b.levels[ks_idx].detail("inventoryEntries", count);
    if !f
        .in_inventory
        .unwrap_or_else(|| owner::inventory_lists(ks, managed))
    {
        let title = b.levels[ks_idx].title();
        b.find(
            FindingType::Orphan,
            Some(ks_idx),
            format!(
                "was managed, now orphaned: it carries the labels of {title}, but is not in its inventory, so Flux no longer updates or prunes it"
            ),
        );
        return (Some(Orphan::WasManaged), Some(ks_idx));
    }
    (None, repo_idx)
}
