//! What a build consumes: units as fetched from ConfigHub, and where they came from.

/// The ConfigHub toolchain type whose units become files in the artifact. Other toolchains (for example
/// `AppConfig/Properties`) are skipped and reported.
pub const KUBERNETES_YAML: &str = "Kubernetes/YAML";

/// One ConfigHub unit at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitInput {
    /// The unit's slug, unique within its space; becomes the file name and the `confighub.com/UnitSlug` label.
    pub slug: String,
    /// ConfigHub `ToolchainType`, e.g. `Kubernetes/YAML`.
    pub toolchain_type: String,
    /// The revision whose data this is; stamped as `confighub.com/RevisionNum`.
    pub revision_num: i64,
    /// The unit's configuration data (a YAML stream for Kubernetes units).
    pub data: Vec<u8>,
}

impl UnitInput {
    pub fn new(
        slug: impl Into<String>,
        toolchain_type: impl Into<String>,
        revision_num: i64,
        data: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            slug: slug.into(),
            toolchain_type: toolchain_type.into(),
            revision_num,
            data: data.into(),
        }
    }

    /// Whether this unit's data is packed into the artifact.
    pub fn is_kubernetes_yaml(&self) -> bool {
        self.toolchain_type == KUBERNETES_YAML
    }
}

/// Where the units come from; stamped on every object and recorded in the artifact metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildContext {
    /// ConfigHub space name (or slug); `confighub.com/SpaceName`.
    pub space_name: String,
    /// ConfigHub space UUID; `confighub.com/SpaceID`.
    pub space_id: String,
    /// Human-readable revision prefix, `head` or `released` (`RevisionMode::revision_prefix`).
    pub mode_prefix: &'static str,
}
