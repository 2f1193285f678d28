//! Wire-level names shared by several layers: the provenance keys the artifact stamps on every object
//! (read back by drift and trace), Flux's labels and annotations, and the field managers. One place, so a
//! key cannot be spelled two ways.

/// Label carrying the unit slug (the key ConfigHub's own apply uses).
pub const LABEL_UNIT_SLUG: &str = "confighub.com/UnitSlug";
/// Annotation carrying the unit revision number, decimal.
pub const ANNOTATION_REVISION_NUM: &str = "confighub.com/RevisionNum";
/// Annotation carrying the space name.
pub const ANNOTATION_SPACE_NAME: &str = "confighub.com/SpaceName";
/// Annotation carrying the space UUID.
pub const ANNOTATION_SPACE_ID: &str = "confighub.com/SpaceID";
/// Label a resolved fix unit carries in ConfigHub (it is kept, never deleted).
pub const LABEL_FIX_STATUS: &str = "confighub.com/DriftStatus";

/// Label kustomize-controller puts on everything it applies: the Kustomization's name...
pub const FLUX_NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
/// ...and its namespace.
pub const FLUX_NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";
/// Flux's "reconcile now" annotation (`flux reconcile`), honoured by us and by kustomize-controller.
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// kustomize-controller's field manager.
pub const FLUX_MANAGER: &str = "kustomize-controller";
/// Field manager of the source reconciler: the ExternalArtifact and the repository status (all but
/// the `Drifted` condition).
pub const SOURCE_MANAGER: &str = "confighub-source-controller";
/// Field manager of the drift engine: the repository's `Drifted` condition, nothing else.
pub const DRIFT_MANAGER: &str = "confighub-source-controller-drift";
