//! What the I/O layer gathered for one trace: the object, its owners and what ConfigHub and the drift
//! API said. The input of [`super::chain::build`]; plain data.

use std::sync::Arc;

use serde_json::Value;

use super::owner::AppRef;

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
