//! The Argo CD levels of a chain (pure): the Application's source and the Application (sync revision, sync
//! status, health), and whether its `status.resources` still lists the object.

use serde_json::Value;

use super::chain::{Builder, Fetched, level_of, short_revision, text};
use super::model::*;
use super::owner::{self, AppRef};

pub(super) fn argo_levels(
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
