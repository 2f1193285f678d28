//! The Helm levels of a chain (pure): a Flux HelmRelease and its chart source, or a release installed by the
//! helm CLI, read from Helm's release records.

use serde_json::Value;

use super::chain::{Builder, Fetched, HelmRecord, level_of, short_revision, text};
use super::flux_levels::{artifact_revision, source_level};
use super::model::*;

pub(super) fn helm_release_levels(
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

pub(super) fn helm_levels(
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
