//! A drift record: one episode of drift on one object, from first detection to resolution.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::detect::Detection;
use super::suggest::{Subject, suggest};
use super::types::{ClassifiedItem, DriftType, Severity};
pub use super::types::{DetectionSource, ObjectRef};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Active,
    Resolved,
}

impl RecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Active => "active",
            RecordStatus::Resolved => "resolved",
        }
    }

    /// Case-insensitive parse, for query strings.
    pub fn parse(s: &str) -> Option<Self> {
        [RecordStatus::Active, RecordStatus::Resolved]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

/// One drift episode. `id` is `<Kind>:<namespace>:<name>`; an object has at most one active record,
/// and every later episode gets a new record with the next `episode` number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftRecord {
    pub id: String,
    pub episode: u32,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub status: RecordStatus,
    pub first_detected: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub items: Vec<ClassifiedItem>,
    /// Distinct types of all items, sorted.
    pub types: Vec<DriftType>,
    /// Highest severity of the items that are not expected (of all items when every one is expected).
    pub severity: Severity,
    /// Every item is expected drift: recorded, never acted on.
    pub expected: bool,
    /// The field manager behind the most severe unexpected item.
    pub actor: Option<String>,
    pub source: DetectionSource,
    pub unit_slug: Option<String>,
    pub revision: Option<String>,
    pub repository: Option<ObjectRef>,
    /// The Kustomization that applies the object (from its `kustomize.toolkit.fluxcd.io/*` labels).
    pub kustomization: Option<ObjectRef>,
    /// Slug of the fix unit written for this record, if any.
    pub fix_unit: Option<String>,
    pub suggestion: String,
}

impl DriftRecord {
    /// A new active record for `det`, numbered `episode`.
    pub fn start(det: &Detection, episode: u32) -> Self {
        let mut record = Self {
            id: det.key.id(),
            episode,
            kind: det.key.kind.clone(),
            namespace: det.key.namespace.clone(),
            name: det.key.name.clone(),
            status: RecordStatus::Active,
            first_detected: det.detected_at,
            last_seen: det.detected_at,
            resolved_at: None,
            items: Vec::new(),
            types: Vec::new(),
            severity: Severity::Low,
            expected: false,
            actor: None,
            source: det.source,
            unit_slug: None,
            revision: None,
            repository: None,
            kustomization: None,
            fix_unit: None,
            suggestion: String::new(),
        };
        record.apply(det);
        record
    }

    /// Folds a repeated detection into this record; true when anything but `last_seen` changed.
    pub fn update(&mut self, det: &Detection) -> bool {
        let before = self.clone();
        self.apply(det);
        let mut unchanged = before;
        unchanged.last_seen = self.last_seen;
        unchanged != *self
    }

    fn apply(&mut self, det: &Detection) {
        self.last_seen = self.last_seen.max(det.detected_at);
        self.items = det.items.clone();
        let mut types: Vec<DriftType> = self.items.iter().map(|i| i.drift_type).collect();
        types.sort();
        types.dedup();
        self.types = types;
        self.expected = !self.items.is_empty() && self.items.iter().all(|i| i.expected);
        let acted: Vec<&ClassifiedItem> = self
            .items
            .iter()
            .filter(|i| self.expected || !i.expected)
            .collect();
        self.severity = acted
            .iter()
            .map(|i| i.severity)
            .max()
            .unwrap_or(Severity::Low);
        self.actor = acted
            .iter()
            .filter(|i| i.severity == self.severity)
            .find_map(|i| i.item.actor.clone())
            .or_else(|| acted.iter().find_map(|i| i.item.actor.clone()));
        self.source = det.source;
        self.unit_slug = det.unit_slug.clone().or(self.unit_slug.take());
        self.revision = det.revision.clone().or(self.revision.take());
        self.repository = det.repository.clone().or(self.repository.take());
        self.kustomization = det.kustomization.clone().or(self.kustomization.take());
        self.suggestion = suggest(&self.subject());
    }

    /// What a suggestion is about.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            kind: &self.kind,
            name: &self.name,
            kustomization: self.kustomization.as_ref(),
            unit_slug: self.unit_slug.as_deref(),
            expected: self.expected,
            primary: self.primary_item(),
            acted: self.items.iter().filter(|i| !i.expected).count(),
        }
    }

    /// The most severe item that is acted on (expected items only when all are expected).
    pub fn primary_item(&self) -> Option<&ClassifiedItem> {
        self.items
            .iter()
            .filter(|i| self.expected || !i.expected)
            .max_by(|a, b| {
                a.severity
                    .cmp(&b.severity)
                    .then(std::cmp::Ordering::Greater)
            })
    }

    /// Seconds from first detection to resolution.
    pub fn time_to_resolve(&self) -> Option<f64> {
        let resolved = self.resolved_at?;
        Some((resolved - self.first_detected).num_milliseconds() as f64 / 1000.0)
    }
}
