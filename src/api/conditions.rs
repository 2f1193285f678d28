//! Condition types and reasons, following the Flux source conventions so kstatus, `kubectl wait` and
//! `flux` read them as they read source-controller's.

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
pub const FETCH_FAILED: &str = "FetchFailed";
pub const BUILD_FAILED: &str = "BuildFailed";
pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
/// Set by the drift engine: True while managed objects differ from the artifact.
pub const DRIFTED: &str = "Drifted";

pub const REASON_SUCCEEDED: &str = "Succeeded";
pub const REASON_PROGRESSING: &str = "Progressing";
pub const REASON_SUSPENDED: &str = "Suspended";
