//! The result of a trace: the delivery chain as levels from the source (top) down to the object, the
//! findings that say what is wrong, and the drift section. This is also the JSON output, documented field
//! by field in docs/trace.md; change it only compatibly (add fields, never rename or remove).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Version of the JSON structure; bumped only for incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The state of one level, shown as ✓, ⚠ or ✗.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    Ok,
    Warn,
    Fail,
}

impl Mark {
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::Ok => "✓",
            Mark::Warn => "⚠",
            Mark::Fail => "✗",
        }
    }

    /// The exit status for a worst finding: 0 ok, 2 broken, 3 warnings (1 is for errors).
    pub fn exit_code(self) -> u8 {
        match self {
            Mark::Ok => 0,
            Mark::Fail => 2,
            Mark::Warn => 3,
        }
    }

    /// The worse of two marks.
    pub fn worst(self, other: Mark) -> Mark {
        match (self, other) {
            (Mark::Fail, _) | (_, Mark::Fail) => Mark::Fail,
            (Mark::Warn, _) | (_, Mark::Warn) => Mark::Warn,
            _ => Mark::Ok,
        }
    }
}

/// One link of the chain: a ConfigHub unit, a source, a deployer, or a Kubernetes object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Level {
    /// `ConfigHubUnit`, `HelmRelease` (plain Helm), `GitSource` (Argo CD), or the Kubernetes kind.
    pub kind: String,
    /// The Kubernetes apiVersion; null for levels that are not Kubernetes objects.
    pub api_version: Option<String>,
    pub namespace: Option<String>,
    /// Object name; `<space>/<unit>` for a ConfigHub unit, the release name for Helm, the URL for a Git source.
    pub name: String,
    pub mark: Mark,
    /// The short words after the mark in the text output, e.g. `3/3 ready`, `Applied head@sha256:…`.
    pub summary: String,
    /// The revision this level holds or applied (artifact revision, unit revision, Git commit, Helm revision).
    pub revision: Option<String>,
    /// The Ready (or equivalent) state: true, false, or null when the level has no such notion or it is unknown.
    pub ready: Option<bool>,
    /// The Ready message, or what else explains the mark.
    pub message: Option<String>,
    /// True when the level is behind: it holds an older revision than the level above, or a level above it is
    /// broken so what it runs is the last good state.
    pub stale: bool,
    /// Kind-specific facts (documented in docs/trace.md), e.g. `path`, `mode`, `images`, `headRevision`.
    pub details: BTreeMap<String, Value>,
}

impl Level {
    pub fn new(
        kind: &str,
        api_version: Option<&str>,
        namespace: Option<&str>,
        name: &str,
    ) -> Level {
        Level {
            kind: kind.to_string(),
            api_version: api_version.map(str::to_string),
            namespace: namespace.filter(|n| !n.is_empty()).map(str::to_string),
            name: name.to_string(),
            mark: Mark::Ok,
            summary: String::new(),
            revision: None,
            ready: None,
            message: None,
            stale: false,
            details: BTreeMap::new(),
        }
    }

    /// `Kind ns/name` (or `Kind name`), as the text output and the messages name it.
    pub fn title(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// How the text output names the level: `ConfigHub unit <space>/<unit>`, `Helm release <ns>/<name>`, else
    /// [`Level::title`].
    pub fn display(&self) -> String {
        match (self.kind.as_str(), &self.api_version) {
            ("ConfigHubUnit", _) => format!("ConfigHub unit {}", self.name),
            ("HelmRelease", None) => {
                format!(
                    "Helm release {}",
                    self.title().trim_start_matches("HelmRelease ")
                )
            }
            _ => self.title(),
        }
    }

    pub fn detail(&mut self, key: &str, value: impl Into<Value>) {
        self.details.insert(key.to_string(), value.into());
    }
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingType {
    /// A level holds an older revision than the one above it (or than ConfigHub's head/released revision).
    Stale,
    /// The first level that is not Ready (or has failed).
    Broken,
    /// An active drift record for the object.
    Drifted,
    /// No GitOps owner: never managed, or was managed and is now orphaned.
    Orphan,
    /// The object is not ready yet, with nothing failed (rolling out, waiting for pods).
    Progressing,
    /// Something could not be checked (ConfigHub or an owner unreachable, no permission); not a problem
    /// of the chain itself and not counted in the exit code.
    Unverified,
}

impl FindingType {
    pub fn severity(self) -> Mark {
        match self {
            FindingType::Broken => Mark::Fail,
            FindingType::Unverified => Mark::Ok,
            _ => Mark::Warn,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    #[serde(rename = "type")]
    pub type_: FindingType,
    /// Index into `levels` of the level the finding is about (null when it is about no single level).
    pub level: Option<usize>,
    pub message: String,
}

/// Who manages the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OwnerKind {
    /// A Flux Kustomization applying a ConfigHubRepository's ExternalArtifact.
    Confighub,
    /// A Flux Kustomization with another source (GitRepository, OCIRepository, Bucket, other ExternalArtifact).
    Flux,
    /// A Flux HelmRelease.
    FluxHelm,
    /// A Helm release installed by the helm CLI (or anything else writing Helm's release records).
    Helm,
    /// An Argo CD Application.
    Argocd,
    /// None found.
    None,
}

/// Whether an object without a working owner ever had one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Orphan {
    /// No GitOps owner labels or annotations at all.
    NeverManaged,
    /// It carries an owner's labels, but that owner is gone or no longer lists it.
    WasManaged,
}

/// The drift section: what the drift API says about the object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftSection {
    /// `active`, `resolved` (latest record is resolved), `none` (no record), `unavailable` (API not
    /// reachable or answered an error), `not-checked` (the object is not from a ConfigHubRepository).
    pub state: String,
    /// Where the records were read from (URL, or the Service proxy path).
    pub source: Option<String>,
    pub message: Option<String>,
    /// The record's `id`, `types`, `severity`, `actor`, `fixUnit`, `firstDetected`, `lastSeen`,
    /// `suggestion` and `items` (`path`, `desired`, `live`, `actor`, `type`, `severity`).
    pub record: Option<DriftSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftSummary {
    pub id: String,
    pub types: Vec<String>,
    pub severity: Option<String>,
    pub actor: Option<String>,
    pub fix_unit: Option<String>,
    pub first_detected: Option<String>,
    pub last_seen: Option<String>,
    pub resolved_at: Option<String>,
    pub suggestion: Option<String>,
    pub items: Vec<DriftItem>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftItem {
    pub path: String,
    pub desired: Value,
    pub live: Value,
    pub actor: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub severity: Option<String>,
}

/// The object traced.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// The whole answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    pub schema_version: u32,
    pub object: ObjectRef,
    pub owner: OwnerKind,
    /// Set when `owner` is `none`, or the named owner is gone.
    pub orphan: Option<Orphan>,
    /// Source first, the traced object last.
    pub levels: Vec<Level>,
    pub findings: Vec<Finding>,
    pub drift: DriftSection,
    /// `ok`, `warning` (stale, drifted, orphan, progressing) or `broken`.
    pub status: String,
    /// The closing line: what is wrong, in words, or that all is well.
    pub summary: String,
}

impl Trace {
    /// Worst severity over the findings.
    pub fn worst(&self) -> Mark {
        self.findings
            .iter()
            .fold(Mark::Ok, |m, f| m.worst(f.type_.severity()))
    }

    /// 0 when nothing is wrong, 2 when the chain is broken, 3 for warnings only (1 is for errors).
    pub fn exit_code(&self) -> u8 {
        self.worst().exit_code()
    }
}
