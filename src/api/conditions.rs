//! Condition types and reasons, following the Flux source conventions so kstatus, `kubectl wait` and
//! `flux` read them as they read source-controller's.

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
pub const FETCH_FAILED: &str = "FetchFailed";
pub const BUILD_FAILED: &str = "BuildFailed";
pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
/// Set by the drift engine alone: True while managed objects differ from the artifact, Unknown while it
/// cannot see a managed kind.
pub const DRIFTED: &str = "Drifted";
pub const REASON_DRIFT_DETECTED: &str = "DriftDetected";
pub const REASON_NO_DRIFT_DETECTED: &str = "NoDriftDetected";
/// Drift of some managed kind cannot be detected (refused or failing calls); the message names them.
pub const REASON_DETECTION_UNAVAILABLE: &str = "DetectionUnavailable";
/// `Drifted=Unknown`: the drift record database cannot be reached, so what is on record is not known.
pub const REASON_RECORD_STORE_UNAVAILABLE: &str = "RecordStoreUnavailable";

pub const REASON_SUCCEEDED: &str = "Succeeded";
pub const REASON_PROGRESSING: &str = "Progressing";
pub const REASON_SUSPENDED: &str = "Suspended";
