//! `ConfigHubRepository` (`source.confighub.com/v1beta1`): a ConfigHub space, a unit filter and a
//! revision mode, turned by the controller into a Flux artifact.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Artifact;
use super::drift::{DriftType, IgnoreRule, Severity};

/// Default ConfigHub origin; the client appends `/api`, as `cub` does with `CONFIGHUB_URL`.
pub const DEFAULT_URL: &str = "https://hub.confighub.com";
/// Default per-reconcile timeout, as in Flux sources.
pub const DEFAULT_TIMEOUT: &str = "60s";
/// Flux's duration pattern (Go `time.Duration` without negative values or `us`/`ns`).
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Pulls the units of a ConfigHub space into a checksummed tarball that Flux can apply.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "source.confighub.com",
    version = "v1beta1",
    kind = "ConfigHubRepository",
    plural = "confighubrepositories",
    shortname = "chr",
    namespaced,
    status = "ConfigHubRepositoryStatus",
    category = "fluxcd",
    printcolumn = r#"{"name":"Space","type":"string","jsonPath":".spec.space"}"#,
    printcolumn = r#"{"name":"Revision","type":"string","jsonPath":".status.artifact.revision"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ConfigHubRepositorySpec {
    /// ConfigHub origin, without `/api`.
    #[serde(default = "default_url")]
    #[schemars(regex(pattern = r"^https?://[^\s]+$"), length(max = 2048))]
    pub url: String,

    /// Space slug or UUID.
    #[schemars(length(min = 1, max = 128))]
    pub space: String,

    /// ConfigHub `where` expression selecting the units to include (all units when empty). At most
    /// 4,096 characters: it travels in every request's query string.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub where_: Option<String>,

    /// Which revision of each unit to pack.
    #[serde(default)]
    pub revision: RevisionMode,

    /// Secret in the same namespace holding the ConfigHub credentials: key `token` (a static bearer
    /// token), or keys `CONFIGHUB_WORKER_ID` and `CONFIGHUB_WORKER_SECRET` (a worker's credentials,
    /// exchanged for access tokens that are renewed before they expire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,

    /// Secret in the same namespace with TLS settings for ConfigHub, as Flux sources have: key
    /// `ca.crt` (PEM CA certificates trusted in addition to the system roots, for a server behind a
    /// private CA) and/or keys `tls.crt` and `tls.key` (a client certificate for mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<SecretReference>,

    /// Secret in the same namespace naming an HTTP proxy for ConfigHub, as Flux sources have: key
    /// `address` (`http://host:port`) and optionally `username` and `password` (basic auth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<SecretReference>,

    /// How often to check ConfigHub for changes.
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"), length(max = 32))]
    pub interval: String,

    /// Timeout for one reconcile (fetch, build and store).
    #[serde(default = "default_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"), length(max = 32))]
    pub timeout: String,

    /// Stop reconciling; the last artifact keeps being served.
    #[serde(default)]
    pub suspend: bool,

    /// Also pack hidden Units (a non-empty HiddenReason, such as ConfigHub's BackingUnits), which
    /// ConfigHub leaves out of lists unless asked for. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_hidden: bool,

    /// What to do when objects applied from this repository drift in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftSpec>,
}

/// Drift handling for the objects applied from this repository.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftSpec {
    /// Default action for drift: Report (record only), Revert (restore the desired state) or Propose
    /// (write a fix unit with the live values into ConfigHub for review).
    #[serde(default)]
    pub mode: DriftMode,

    /// Per-type and/or per-severity modes; the most specific matching override wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub overrides: Vec<DriftOverride>,

    /// Fields whose drift is expected and never acted on (at most 256 rules; each is matched against
    /// every drifted field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub ignore: Vec<IgnoreRule>,

    /// Space that receives fix units in Propose mode (default `<space>-drift-fixes`, created if missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub fix_space: Option<String>,
}

/// The action taken on drift.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DriftMode {
    #[default]
    Report,
    Revert,
    Propose,
}

/// A mode for drift of one type and/or severity. At least one of `type` and `severity` should be set;
/// an override with neither matches everything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DriftOverride {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub drift_type: Option<DriftType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    pub mode: DriftMode,
}

fn default_url() -> String {
    DEFAULT_URL.to_string()
}

fn default_timeout() -> String {
    DEFAULT_TIMEOUT.to_string()
}

/// `Head` packs each unit's head revision; `LastReleased` its last released one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RevisionMode {
    #[default]
    Head,
    LastReleased,
}

impl RevisionMode {
    /// The human-readable part of an artifact revision, `head` in `head@sha256:...`.
    pub fn revision_prefix(self) -> &'static str {
        match self {
            RevisionMode::Head => "head",
            RevisionMode::LastReleased => "released",
        }
    }
}

/// A reference to a Secret in the object's own namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretReference {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What the controller last observed and produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigHubRepositoryStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions, one per type. `Drifted` is written by the drift engine (field manager
    /// confighub-source-controller-drift), every other condition by the source reconciler.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// The last `reconcile.fluxcd.io/requestedAt` value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}
