//! The Flux artifact shape (`source.toolkit.fluxcd.io/v1` `Artifact`), shared by the
//! ConfigHubRepository status and the ExternalArtifact status so kustomize-controller reads both alike.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An archive a Flux consumer can fetch: where it is, what it is, and how to verify it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// `<algo>:<hex>` checksum of the compressed archive, checked by kustomize-controller.
    pub digest: String,
    /// Path of the archive relative to the storage root.
    pub path: String,
    /// HTTP address the archive can be fetched from.
    pub url: String,
    /// Human-readable revision, `<mode>@sha256:<hex>`; consumers react when it changes.
    pub revision: String,
    /// When the archive was last written (RFC 3339).
    pub last_update_time: String,
    /// Size of the archive in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Free-form metadata, for example `org.opencontainers.image.revision`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}
