//! Builds the [`Trace`] from what the I/O layer gathered (pure): one level per link of the chain, the marks,
//! and the findings (stale, broken, drifted, orphan, progressing). Unit-tested on JSON fixtures.

use std::sync::Arc;

use serde_json::Value;

use super::health::object_health;
use super::model::*;
use super::owner::{self, AppRef, Provenance};

/// The outcome of reading one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Fetched {
    /// Shared: `--all` hands the same owner objects to thousands of traces.
    Found(Arc<Value>),
    Missing,
    /// Could not be read (no permission, its CRD not installed, the API unreachable).
    Error(String),
}

impl Fetched {
    pub fn found(&self) -> Option<&Value> {
        match self {
            Fetched::Found(v) => Some(v),
            _ => None,
        }
    }
}

/// What ConfigHub says about the unit.
#[derive(Clone, Debug, PartialEq)]
pub enum UnitLookup {
    /// Not asked (no provenance, or no ConfigHub URL known); the reason.
    NotChecked(String),
    Found {
        head: i64,
        last_released: i64,
    },
    /// The unit no longer exists in the space.
    Missing,
    Unreachable(String),
}

/// The unit's revision inside the artifact the Kustomization is given.
#[derive(Clone, Debug, PartialEq)]
pub enum ArtifactLookup {
    NotChecked,
    Revision(i64),
    /// The archive has no file for the unit.
    NotInArtifact,
    /// The archive could not be fetched or read (often: its URL is only reachable in the cluster).
    Unreadable(String),
}

/// What the drift API says about the object.
#[derive(Clone, Debug, PartialEq)]
pub enum DriftLookup {
    NotChecked,
    Unavailable { source: String, message: String },
    NoRecord { source: String },
    Record { source: String, record: Value },
}

/// A Flux Kustomization and what it applies.
#[derive(Clone, Debug, PartialEq)]
pub struct FluxData {
    pub namespace: String,
    pub name: String,
    pub kustomization: Fetched,
    /// The Kustomization's `spec.sourceRef` object (None when the Kustomization was not found).
    pub source: Option<Fetched>,
    /// The ConfigHubRepository an ExternalArtifact source points back at.
    pub repository: Option<Fetched>,
    /// Whether the Kustomization's inventory lists the object, when already known (`--all` indexes
    /// inventories once); `None`: read it from the Kustomization.
    pub in_inventory: Option<bool>,
}

/// A Helm release record, from the labels of Helm's release Secrets.
#[derive(Clone, Debug, PartialEq)]
pub struct HelmRecord {
    pub version: i64,
    pub status: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OwnerData {
    Flux(FluxData),
    HelmRelease {
        namespace: String,
        name: String,
        release: Fetched,
        /// The chart's source (`spec.chartRef`, or the HelmChart in `status.helmChart`).
        source: Option<Fetched>,
    },
    Helm {
        namespace: String,
        release: String,
        records: Result<Vec<HelmRecord>, String>,
    },
    ArgoCd {
        app: AppRef,
        /// True when only the `app.kubernetes.io/instance` label pointed here.
        via_label: bool,
        application: Fetched,
    },
    None,
}

/// Everything the I/O layer read, the input of [`build`].
#[derive(Clone, Debug, PartialEq)]
pub struct Gathered {
    /// The object asked about.
    pub object: Value,
    /// Its controllers, nearest first (a Pod's ReplicaSet, then the Deployment). The last one, or the object
    /// itself when empty, is the managed object whose owner is traced.
    pub controllers: Vec<Value>,
    pub owner: OwnerData,
    pub unit: UnitLookup,
    /// The unit's revision in the current artifact (ConfigHubRepository chains only).
    pub artifact: ArtifactLookup,
    pub drift: DriftLookup,
}

/// `head@sha256:3f2a9c1b…` for the text output; anything else unchanged.
pub fn short_revision(revision: &str) -> String {
    if let Some(at) = revision.find(':') {
        let hex = &revision[at + 1..];
        if hex.len() > 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return format!("{}{}…", &revision[..=at], &hex[..8]);
        }
    }
    if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        return format!("{}…", &revision[..8]);
    }
    revision.to_string()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// The Ready condition as (status, reason, message).
fn ready_condition(obj: &Value) -> Option<(String, String, String)> {
    let c = obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    Some((
        c["status"].as_str().unwrap_or("Unknown").to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
        c["message"].as_str().unwrap_or_default().to_string(),
    ))
}

fn level_of(obj: &Value, kind: &str) -> Level {
    let ns = owner::namespace_of(obj);
    Level::new(
        kind,
        obj["apiVersion"].as_str(),
        Some(ns),
        owner::name_of(obj),
    )
}

struct Builder {
    levels: Vec<Level>,
    findings: Vec<Finding>,
}

impl Builder {
    fn push(&mut self, level: Level) -> usize {
        self.levels.push(level);
        self.levels.len() - 1
    }

    fn find(&mut self, type_: FindingType, level: Option<usize>, message: String) {
        self.findings.push(Finding {
            type_,
            level,
            message,
        });
    }

    /// Marks a Flux-style object (Ready condition, `spec.suspend`) and fills revision/ready/message.
    fn flux_ready(&mut self, idx: usize, obj: &Value, ok_summary: String) {
        let level = &mut self.levels[idx];
        let suspended = obj["spec"]["suspend"] == true;
        level.detail("suspended", suspended);
        match ready_condition(obj) {
            Some((status, _, message)) if status == "True" => {
                level.ready = Some(true);
                level.summary = ok_summary;
                if !message.is_empty() {
                    level.message = Some(message);
                }
            }
            Some((status, reason, message)) if status == "False" => {
                level.ready = Some(false);
                level.mark = Mark::Fail;
                level.summary = if reason.is_empty() {
                    "Not ready".to_string()
                } else {
                    format!("Not ready: {reason}")
                };
                level.message = Some(message);
            }
            other => {
                level.ready = None;
                level.mark = Mark::Warn;
                level.summary = "Reconciling".to_string();
                level.message = other.map(|(_, _, m)| m).filter(|m| !m.is_empty());
            }
        }
        if suspended {
            level.mark = level.mark.worst(Mark::Warn);
            level.summary = format!("{} (suspended)", level.summary);
        }
    }

    fn missing(
        &mut self,
        kind: &str,
        api_version: &str,
        ns: &str,
        name: &str,
        what: &Fetched,
    ) -> usize {
        let mut level = Level::new(kind, Some(api_version), Some(ns), name);
        match what {
            Fetched::Error(e) => {
                level.mark = Mark::Warn;
                level.summary = "could not be read".to_string();
                level.message = Some(e.clone());
            }
            _ => {
                level.mark = Mark::Fail;
                level.summary = "not found".to_string();
                level.ready = Some(false);
            }
        }
        let idx = self.push(level);
        if let Fetched::Error(e) = what {
            let title = self.levels[idx].title();
            self.find(
                FindingType::Unverified,
                Some(idx),
                format!("{title} could not be read: {e}"),
            );
        }
        idx
    }
}

fn artifact_revision(obj: &Value) -> Option<String> {
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
fn source_level(b: &mut Builder, src: &Value) -> usize {
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

fn flux_levels(b: &mut Builder, f: &FluxData, managed: &Value) -> (Option<Orphan>, Option<usize>) {
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

/// The ConfigHub unit level, from the object's provenance and what ConfigHub says.
fn unit_level(
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
fn unit_staleness(
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

fn helm_release_levels(
    b: &mut Builder,
    namespace: &str,
    name: &str,
    release: &Fetched,
    source: Option<&Fetched>,
) -> Option<Orphan> {
    let mut source_revision = None;
    if let Some(src) = source {
        match src {
            Fetched::Found(s) => {
                source_level(b, s);
                source_revision = artifact_revision(s);
            }
            Fetched::Missing | Fetched::Error(_) => {}
        }
    }
    let hr = match release {
        Fetched::Found(hr) => hr,
        other => {
            let idx = b.missing(
                "HelmRelease",
                "helm.toolkit.fluxcd.io/v2",
                namespace,
                name,
                other,
            );
            if matches!(other, Fetched::Missing) {
                b.levels[idx].mark = Mark::Warn;
                let title = b.levels[idx].title();
                b.find(
                    FindingType::Orphan,
                    Some(idx),
                    format!("was managed, now orphaned: it carries the labels of {title}, which no longer exists"),
                );
                return Some(Orphan::WasManaged);
            }
            return None;
        }
    };
    let mut level = level_of(hr, "HelmRelease");
    let chart = &hr["spec"]["chart"]["spec"];
    if let Some(c) = text(&chart["chart"]) {
        level.detail("chart", c);
    }
    if let Some(v) = text(&chart["version"]) {
        level.detail("version", v);
    }
    if let Some(r) = hr["spec"]["chartRef"].as_object() {
        level.detail("chartRef", Value::Object(r.clone()));
    }
    let latest = &hr["status"]["history"][0];
    let applied = text(&latest["chartVersion"])
        .map(|v| format!("{}@{v}", latest["chartName"].as_str().unwrap_or("chart")))
        .or_else(|| text(&hr["status"]["lastAppliedRevision"]));
    level.revision = applied.clone();
    level.detail(
        "lastAttemptedRevision",
        hr["status"]["lastAttemptedRevision"].clone(),
    );
    if let Some(v) = latest["version"].as_i64() {
        level.detail("releaseVersion", v);
    }
    let idx = b.push(level);
    let summary = match &applied {
        Some(r) => format!("Released {}", short_revision(r)),
        None => "Ready".to_string(),
    };
    b.flux_ready(idx, hr, summary);
    let attempted = text(&hr["status"]["lastAttemptedRevision"]);
    if let (Some(src), Some(att)) = (source_revision, attempted)
        && !helm_revision_matches(&src, &att)
    {
        let l = &mut b.levels[idx];
        l.stale = true;
        l.mark = l.mark.worst(Mark::Warn);
        let title = l.title();
        b.find(
            FindingType::Stale,
            Some(idx),
            format!("{title} last attempted {att}, but its chart source is at {src}"),
        );
    }
    None
}

/// Whether a HelmRelease's `lastAttemptedRevision` is its chart source's artifact revision. A HelmChart's
/// revision is the chart version (`6.7.0`); an OCIRepository's is `6.7.0@sha256:<hex>`, which helm-controller
/// records as `6.7.0+<first 12 hex>`.
fn helm_revision_matches(source: &str, attempted: &str) -> bool {
    let (src_version, src_digest) = match source.split_once('@') {
        Some((v, d)) => (v, d.rsplit(':').next().unwrap_or(d)),
        None => (source, ""),
    };
    let (att_version, att_digest) = attempted.split_once('+').unwrap_or((attempted, ""));
    src_version == att_version
        && (src_digest.is_empty() || att_digest.is_empty() || src_digest.starts_with(att_digest))
}

fn helm_levels(
    b: &mut Builder,
    namespace: &str,
    release: &str,
    records: &Result<Vec<HelmRecord>, String>,
) -> Option<Orphan> {
    let mut level = Level::new("HelmRelease", None, Some(namespace), release);
    level.detail("manager", "helm");
    let latest = records
        .as_ref()
        .ok()
        .and_then(|r| r.iter().max_by_key(|r| r.version));
    match (records, latest) {
        (Err(e), _) => {
            level.mark = Mark::Warn;
            level.summary = "release records could not be read".to_string();
            level.message = Some(e.clone());
            let idx = b.push(level);
            b.find(
                FindingType::Unverified,
                Some(idx),
                format!(
                    "Helm release {namespace}/{release}: release records could not be read: {e}"
                ),
            );
            None
        }
        (Ok(_), None) => {
            level.mark = Mark::Warn;
            level.summary = "no release record".to_string();
            let idx = b.push(level);
            b.find(
                FindingType::Orphan,
                Some(idx),
                format!(
                    "was managed, now orphaned: it carries the annotations of Helm release {namespace}/{release}, which has no release record left (uninstalled?)"
                ),
            );
            Some(Orphan::WasManaged)
        }
        (Ok(_), Some(r)) => {
            level.revision = Some(r.version.to_string());
            level.detail("status", r.status.clone());
            level.summary = format!("revision {} {}", r.version, r.status);
            let (mark, ready) = match r.status.as_str() {
                "deployed" | "superseded" => (Mark::Ok, Some(true)),
                "failed" => (Mark::Fail, Some(false)),
                _ => (Mark::Warn, None),
            };
            level.mark = mark;
            level.ready = ready;
            if mark == Mark::Fail {
                level.message = Some(format!(
                    "the last Helm operation on release {release} failed"
                ));
            }
            b.push(level);
            None
        }
    }
}

fn argo_levels(
    b: &mut Builder,
    app_ref: &AppRef,
    via_label: bool,
    application: &Fetched,
    managed: &Value,
) -> Option<Orphan> {
    let app = match application {
        Fetched::Found(a) => a,
        Fetched::Missing => {
            let name = match &app_ref.namespace {
                Some(ns) => format!("{ns}/{}", app_ref.name),
                None => app_ref.name.clone(),
            };
            return if via_label {
                b.find(
                    FindingType::Orphan,
                    None,
                    format!(
                        "never managed by a GitOps tool found here: no Flux, Helm or Argo CD owner (its label app.kubernetes.io/instance={} names no Argo CD Application)",
                        app_ref.name
                    ),
                );
                Some(Orphan::NeverManaged)
            } else {
                let mut level = Level::new(
                    "Application",
                    Some("argoproj.io/v1alpha1"),
                    app_ref.namespace.as_deref(),
                    &app_ref.name,
                );
                level.mark = Mark::Warn;
                level.summary = "not found".to_string();
                let idx = b.push(level);
                b.find(
                    FindingType::Orphan,
                    Some(idx),
                    format!("was managed, now orphaned: its Argo CD tracking id names Application {name}, which no longer exists"),
                );
                Some(Orphan::WasManaged)
            };
        }
        Fetched::Error(e) => {
            let mut level = Level::new(
                "Application",
                Some("argoproj.io/v1alpha1"),
                app_ref.namespace.as_deref(),
                &app_ref.name,
            );
            level.mark = Mark::Warn;
            level.summary = "could not be read".to_string();
            level.message = Some(e.clone());
            let idx = b.push(level);
            b.find(
                FindingType::Unverified,
                Some(idx),
                format!("the Argo CD Application could not be read: {e}"),
            );
            return None;
        }
    };
    // The source: spec.source, or the first of spec.sources.
    let spec_source = if app["spec"]["source"].is_object() {
        app["spec"]["source"].clone()
    } else {
        app["spec"]["sources"][0].clone()
    };
    let sync = &app["status"]["sync"];
    let revision = text(&sync["revision"]).or_else(|| text(&sync["revisions"][0]));
    if let Some(repo) = text(&spec_source["repoURL"]) {
        let mut level = Level::new("Source", None, None, &repo);
        level.revision = revision.clone();
        for key in ["path", "chart", "targetRevision", "ref"] {
            if let Some(v) = text(&spec_source[key]) {
                level.detail(key, v);
            }
        }
        if let Some(sources) = app["spec"]["sources"].as_array() {
            level.detail("sources", sources.len());
        }
        level.summary = format!(
            "{} @ {}",
            spec_source["targetRevision"].as_str().unwrap_or("HEAD"),
            revision
                .as_deref()
                .map(short_revision)
                .unwrap_or_else(|| "?".to_string())
        );
        b.push(level);
    }
    let mut level = level_of(app, "Application");
    level.revision = revision.clone();
    let sync_status = sync["status"].as_str().unwrap_or("Unknown").to_string();
    let health = app["status"]["health"]["status"]
        .as_str()
        .unwrap_or("Unknown")
        .to_string();
    level.detail("syncStatus", sync_status.clone());
    level.detail("health", health.clone());
    level.detail("project", app["spec"]["project"].clone());
    let op = &app["status"]["operationState"];
    if let Some(phase) = text(&op["phase"]) {
        level.detail("operationPhase", phase);
    }
    let error_condition = app["status"]["conditions"].as_array().and_then(|cs| {
        cs.iter()
            .find(|c| c["type"].as_str().is_some_and(|t| t.ends_with("Error")))
    });
    level.summary = format!(
        "{sync_status}, {health}{}",
        revision
            .as_deref()
            .map(|r| format!(" at {}", short_revision(r)))
            .unwrap_or_default()
    );
    let op_failed = matches!(op["phase"].as_str(), Some("Failed" | "Error"));
    if matches!(health.as_str(), "Degraded" | "Missing") || op_failed || error_condition.is_some() {
        level.mark = Mark::Fail;
        level.ready = Some(false);
        level.message = error_condition
            .and_then(|c| {
                text(&c["message"])
                    .map(|m| format!("{}: {m}", c["type"].as_str().unwrap_or_default()))
            })
            .or_else(|| op_failed.then(|| text(&op["message"])).flatten())
            .or_else(|| text(&app["status"]["health"]["message"]))
            .or_else(|| Some(format!("health is {health}")));
    } else if sync_status == "Synced" && health == "Healthy" {
        level.ready = Some(true);
    } else {
        level.mark = Mark::Warn;
        level.ready = Some(false);
    }
    let idx = b.push(level);
    if sync_status == "OutOfSync" {
        let l = &mut b.levels[idx];
        l.stale = true;
        let title = l.title();
        b.find(
            FindingType::Stale,
            Some(idx),
            format!(
                "{title} is OutOfSync: the cluster differs from revision {}",
                revision
                    .as_deref()
                    .map(short_revision)
                    .unwrap_or_else(|| "?".to_string())
            ),
        );
    } else if b.levels[idx].mark == Mark::Warn && health != "Healthy" {
        let title = b.levels[idx].title();
        b.find(
            FindingType::Progressing,
            Some(idx),
            format!("{title} is {health}"),
        );
    }
    // The Application lists every object it manages in status.resources.
    let resources = app["status"]["resources"].as_array();
    let entry = resources.and_then(|rs| {
        rs.iter().find(|r| {
            r["kind"].as_str() == Some(owner::kind_of(managed))
                && r["name"].as_str() == Some(owner::name_of(managed))
                && r["namespace"].as_str().unwrap_or_default() == owner::namespace_of(managed)
                && r["group"].as_str().unwrap_or_default() == owner::group_of(managed)
        })
    });
    if let Some(e) = entry {
        let l = &mut b.levels[idx];
        l.detail("resourceStatus", e["status"].clone());
        l.detail("resourceHealth", e["health"]["status"].clone());
        return None;
    }
    if resources.is_none_or(|rs| rs.is_empty()) {
        return None;
    }
    let title = b.levels[idx].title();
    if via_label {
        b.find(
            FindingType::Orphan,
            Some(idx),
            format!(
                "never managed by Argo CD: its label app.kubernetes.io/instance names {title}, which does not list it"
            ),
        );
        Some(Orphan::NeverManaged)
    } else {
        b.find(
            FindingType::Orphan,
            Some(idx),
            format!("was managed, now orphaned: it carries the tracking id of {title}, which no longer lists it"),
        );
        Some(Orphan::WasManaged)
    }
}

/// The object levels: the managed object first, then down the controllers to the object asked about.
fn object_levels(b: &mut Builder, g: &Gathered) -> Vec<usize> {
    let mut chain: Vec<&Value> = g.controllers.iter().rev().collect();
    chain.push(&g.object);
    chain
        .into_iter()
        .map(|obj| {
            let health = object_health(obj);
            let mut level = level_of(obj, owner::kind_of(obj));
            level.mark = health.mark;
            level.summary = health.summary;
            level.ready = health.ready;
            level.message = health.message;
            if !health.images.is_empty() {
                level.detail("images", health.images);
            }
            if let Some(rev) = owner::annotation(obj, owner::REVISION_NUM_ANNOTATION) {
                level.revision = Some(rev.to_string());
            }
            b.push(level)
        })
        .collect()
}

fn drift_section(d: &DriftLookup) -> DriftSection {
    let none = |state: &str, source: Option<&String>, message: Option<String>| DriftSection {
        state: state.to_string(),
        source: source.cloned(),
        message,
        record: None,
    };
    match d {
        DriftLookup::NotChecked => none("not-checked", None, None),
        DriftLookup::Unavailable { source, message } => {
            none("unavailable", Some(source), Some(message.clone()))
        }
        DriftLookup::NoRecord { source } => none("none", Some(source), None),
        DriftLookup::Record { source, record } => {
            let items = record["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|i| DriftItem {
                            path: i["path"].as_str().unwrap_or_default().to_string(),
                            desired: i["desired"].clone(),
                            live: i["live"].clone(),
                            actor: text(&i["actor"]),
                            type_: text(&i["type"]),
                            severity: text(&i["severity"]),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let state = if record["status"] == "active" {
                "active"
            } else {
                "resolved"
            };
            DriftSection {
                state: state.to_string(),
                source: Some(source.clone()),
                message: None,
                record: Some(DriftSummary {
                    id: record["id"].as_str().unwrap_or_default().to_string(),
                    types: record["types"]
                        .as_array()
                        .map(|t| t.iter().filter_map(text).collect())
                        .unwrap_or_default(),
                    severity: text(&record["severity"]),
                    actor: text(&record["actor"]),
                    fix_unit: text(&record["fix_unit"]),
                    first_detected: text(&record["first_detected"]),
                    last_seen: text(&record["last_seen"]),
                    resolved_at: text(&record["resolved_at"]),
                    suggestion: text(&record["suggestion"]),
                    items,
                }),
            }
        }
    }
}

fn object_ref(obj: &Value) -> ObjectRef {
    ObjectRef {
        api_version: obj["apiVersion"].as_str().unwrap_or_default().to_string(),
        kind: owner::kind_of(obj).to_string(),
        namespace: Some(owner::namespace_of(obj).to_string()).filter(|n| !n.is_empty()),
        name: owner::name_of(obj).to_string(),
    }
}

/// Builds the chain, the marks and the findings.
pub fn build(g: &Gathered) -> Trace {
    let managed = g.controllers.last().unwrap_or(&g.object);
    let mut b = Builder {
        levels: Vec::new(),
        findings: Vec::new(),
    };
    let provenance = owner::provenance(managed);
    let mode = match &g.owner {
        OwnerData::Flux(f) => f
            .repository
            .as_ref()
            .and_then(Fetched::found)
            .and_then(|chr| text(&chr["spec"]["revision"]))
            .unwrap_or_else(|| "Head".to_string()),
        _ => "Head".to_string(),
    };
    let unit_idx = provenance
        .as_ref()
        .map(|p| unit_level(&mut b, p, &g.unit, &g.artifact, &mode));

    let (owner_kind, mut orphan, repo_idx) = match &g.owner {
        OwnerData::Flux(f) => {
            let kind = if f.repository.is_some() {
                OwnerKind::Confighub
            } else {
                OwnerKind::Flux
            };
            let (orphan, repo_idx) = flux_levels(&mut b, f, managed);
            (
                kind,
                orphan,
                if f.repository.is_some() {
                    repo_idx
                } else {
                    None
                },
            )
        }
        OwnerData::HelmRelease {
            namespace,
            name,
            release,
            source,
        } => (
            OwnerKind::FluxHelm,
            helm_release_levels(&mut b, namespace, name, release, source.as_ref()),
            None,
        ),
        OwnerData::Helm {
            namespace,
            release,
            records,
        } => (
            OwnerKind::Helm,
            helm_levels(&mut b, namespace, release, records),
            None,
        ),
        OwnerData::ArgoCd {
            app,
            via_label,
            application,
        } => {
            let orphan = argo_levels(&mut b, app, *via_label, application, managed);
            let kind = if orphan == Some(Orphan::NeverManaged) {
                OwnerKind::None
            } else {
                OwnerKind::Argocd
            };
            (kind, orphan, None)
        }
        OwnerData::None => (OwnerKind::None, None, None),
    };
    if matches!(g.owner, OwnerData::None) {
        let was = owner::has_gitops_marks(managed);
        let mut message = if was {
            "was managed, now orphaned: it carries GitOps labels, but no owner was found"
                .to_string()
        } else {
            "never managed: no Flux, Helm or Argo CD labels or annotations".to_string()
        };
        if let Some(p) = &provenance {
            message.push_str(&format!(
                "; it carries ConfigHub provenance (unit {}, revision {}), so it was applied from ConfigHub by something other than Flux",
                p.unit,
                p.revision.map_or("?".to_string(), |r| r.to_string())
            ));
        }
        b.find(FindingType::Orphan, None, message);
        orphan = Some(if was {
            Orphan::WasManaged
        } else {
            Orphan::NeverManaged
        });
    }

    let object_idx = object_levels(&mut b, g);
    let managed_idx = object_idx[0];

    if let (Some(u), Some(p)) = (unit_idx, &provenance) {
        unit_staleness(&mut b, u, p, g, &mode, repo_idx, managed_idx);
    }

    // Drift on the managed object.
    let drift = drift_section(&g.drift);
    if drift.state == "active"
        && let Some(r) = &drift.record
    {
        let l = &mut b.levels[managed_idx];
        l.mark = l.mark.worst(Mark::Warn);
        l.summary = format!("{} (drifted)", l.summary);
        let title = l.title();
        b.find(
            FindingType::Drifted,
            Some(managed_idx),
            format!(
                "{title} has drifted from its desired state: {} ({}) by {}{}",
                if r.types.is_empty() {
                    "changed".to_string()
                } else {
                    r.types.join(", ")
                },
                r.severity.as_deref().unwrap_or("?"),
                r.actor.as_deref().unwrap_or("unknown actor"),
                r.fix_unit
                    .as_deref()
                    .map(|u| format!("; fix unit {u} proposed"))
                    .unwrap_or_default()
            ),
        );
    }

    // Broken: every level that failed; everything below the first one runs the last good state.
    if let Some(first) = b.levels.iter().position(|l| l.mark == Mark::Fail) {
        let failed: Vec<usize> = (first..b.levels.len())
            .filter(|&i| b.levels[i].mark == Mark::Fail)
            .collect();
        for i in failed {
            let l = &b.levels[i];
            let message = l
                .message
                .clone()
                .filter(|m| !m.is_empty())
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            let what = if l.summary == "not found" {
                "is missing".to_string()
            } else if let Some(reason) = l.summary.strip_prefix("Not ready: ") {
                format!("is not ready ({reason})")
            } else {
                format!("is not ready ({})", l.summary)
            };
            let text = format!("{} {what}{message}", l.title());
            b.find(FindingType::Broken, Some(i), text);
        }
        let upstream = b.levels[first].title();
        for l in b.levels[first + 1..].iter_mut() {
            if l.mark == Mark::Ok {
                l.mark = Mark::Warn;
            }
            if !l.stale {
                l.stale = true;
                if l.message.is_none() {
                    l.message = Some(format!("stale: {upstream} above is not ready"));
                }
            }
        }
    }

    // Objects not ready yet, with nothing failed.
    for &i in &object_idx {
        let l = &b.levels[i];
        if l.mark == Mark::Warn && l.ready == Some(false) && !l.stale {
            let title = l.title();
            let detail = l
                .message
                .clone()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            let summary = l.summary.trim_end_matches(" (drifted)").to_string();
            b.find(
                FindingType::Progressing,
                Some(i),
                format!("{title} is not ready yet ({summary}){detail}"),
            );
        }
    }

    b.findings.sort_by_key(|f| {
        (
            match f.type_ {
                FindingType::Broken => 0,
                FindingType::Stale => 1,
                FindingType::Drifted => 2,
                FindingType::Orphan => 3,
                FindingType::Progressing => 4,
                FindingType::Unverified => 5,
            },
            f.level,
        )
    });
    let mut trace = Trace {
        schema_version: SCHEMA_VERSION,
        object: object_ref(&g.object),
        owner: owner_kind,
        orphan: orphan.take(),
        levels: b.levels,
        findings: b.findings,
        drift,
        status: String::new(),
        summary: String::new(),
    };
    trace.status = match trace.worst() {
        Mark::Ok => "ok",
        Mark::Warn => "warning",
        Mark::Fail => "broken",
    }
    .to_string();
    trace.summary = summary(&trace);
    trace
}

/// The closing line.
fn summary(t: &Trace) -> String {
    let problems: Vec<&Finding> = t
        .findings
        .iter()
        .filter(|f| f.type_ != FindingType::Unverified)
        .collect();
    if problems.is_empty() {
        let object = t.levels.last().map(Level::display).unwrap_or_default();
        let top = t.levels.first().map(Level::display).unwrap_or_default();
        return format!("OK: {object} is up to date with {top}, and every level is ready.");
    }
    problems
        .iter()
        .map(|f| {
            let word = match f.type_ {
                FindingType::Broken => "Broken",
                FindingType::Stale => "Stale",
                FindingType::Drifted => "Drifted",
                FindingType::Orphan => "Orphan",
                FindingType::Progressing => "Progressing",
                FindingType::Unverified => "Unverified",
            };
            format!("{word}: {}.", f.message.trim_end_matches('.'))
        })
        .collect::<Vec<_>>()
        .join(" ")
}
