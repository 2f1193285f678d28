//! Drift vocabulary the `ConfigHubRepository` CRD uses (`spec.drift`): drift types, severities and
//! ignore rules. The drift engine classifies with these; they live here so the API types depend on nothing.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What kind of change a drift item is. Names are part of the API and the CRD.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum DriftType {
    Scaling,
    VersionChange,
    ResourceChange,
    ConfigurationChange,
    LabelChange,
    AnnotationChange,
    PortChange,
    VolumeChange,
    SecretChange,
    ConfigMapChange,
    Deleted,
    Other,
}

impl DriftType {
    pub const ALL: [DriftType; 12] = [
        DriftType::Scaling,
        DriftType::VersionChange,
        DriftType::ResourceChange,
        DriftType::ConfigurationChange,
        DriftType::LabelChange,
        DriftType::AnnotationChange,
        DriftType::PortChange,
        DriftType::VolumeChange,
        DriftType::SecretChange,
        DriftType::ConfigMapChange,
        DriftType::Deleted,
        DriftType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DriftType::Scaling => "Scaling",
            DriftType::VersionChange => "VersionChange",
            DriftType::ResourceChange => "ResourceChange",
            DriftType::ConfigurationChange => "ConfigurationChange",
            DriftType::LabelChange => "LabelChange",
            DriftType::AnnotationChange => "AnnotationChange",
            DriftType::PortChange => "PortChange",
            DriftType::VolumeChange => "VolumeChange",
            DriftType::SecretChange => "SecretChange",
            DriftType::ConfigMapChange => "ConfigMapChange",
            DriftType::Deleted => "Deleted",
            DriftType::Other => "Other",
        }
    }
}

impl std::fmt::Display for DriftType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a drift is. Ordered, so `max()` gives the highest.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
        }
    }

    /// Case-insensitive parse, for query strings.
    pub fn parse(s: &str) -> Option<Self> {
        [Severity::Low, Severity::Medium, Severity::High]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Fields of managed objects whose drift is expected and never acted on (for example fields another
/// controller owns). `paths` are JSON pointers matched as prefixes on whole segments; a `*` segment
/// matches any one segment; no paths means the whole object. `kind` and `name` narrow the rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IgnoreRule {
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(max = 1024)))]
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub name: Option<String>,
}
