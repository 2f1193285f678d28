//! Builds the [`Trace`] from what the I/O layer gathered (pure): one level per link of the chain, the marks,
//! and the findings (stale, broken, drifted, orphan, progressing). Unit-tested on JSON fixtures.

use serde_json::Value;

use super::argo_levels::argo_levels;
use super::flux_levels::flux_levels;
use super::health::object_health;
use super::helm_levels::{helm_levels, helm_release_levels};
use super::model::*;
use super::owner;
use super::unit_levels::{unit_level, unit_staleness};

pub use super::input::*;

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

pub(super) fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// The Ready condition as (status, reason, message).
pub(super) fn ready_condition(obj: &Value) -> Option<(String, String, String)> {
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

pub(super) fn level_of(obj: &Value, kind: &str) -> Level {
    let ns = owner::namespace_of(obj);
    Level::new(
        kind,
        obj["apiVersion"].as_str(),
        Some(ns),
        owner::name_of(obj),
    )
}

pub(super) struct Builder {
    pub(super) levels: Vec<Level>,
    pub(super) findings: Vec<Finding>,
}

impl Builder {
    pub(super) fn push(&mut self, level: Level) -> usize {
        self.levels.push(level);
        self.levels.len() - 1
    }

    pub(super) fn find(&mut self, type_: FindingType, level: Option<usize>, message: String) {
        self.findings.push(Finding {
            type_,
            level,
            message,
        });
    }

    /// Marks a Flux-style object (Ready condition, `spec.suspend`) and fills revision/ready/message.
    pub(super) fn flux_ready(&mut self, idx: usize, obj: &Value, ok_summary: String) {
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

    pub(super) fn missing(
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
