//! Why a build was refused. Every variant names the unit(s) involved, because the message ends up in the
//! ConfigHubRepository status where a person has to find the unit to fix.

/// A build failure. Builds are all-or-nothing: one bad unit fails the whole artifact, so a half-built
/// artifact never reaches the cluster (kustomize-controller would prune what is missing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The unit's data exceeds [`crate::artifact::MAX_UNIT_BYTES`].
    #[error("unit {unit:?}: {size} bytes of YAML exceeds the limit of {limit} bytes")]
    UnitTooLarge {
        unit: String,
        size: usize,
        limit: usize,
    },
    /// A line starts with `---` but is not a document marker (`---` must be followed by a space or
    /// the end of the line). YAML would read it as text; kustomize-controller refuses the file
    /// (`---name: x`) or splits documents there (`---#`): either way the objects differ.
    #[error(
        "unit {unit:?}: line {line} starts with `---` but is not a document marker; put a space after `---` or indent the line"
    )]
    NotADocumentMarker { unit: String, line: usize },
    /// The YAML stream could not be parsed (syntax, duplicate keys, nesting too deep, ...).
    #[error("unit {unit:?}: document {document}: invalid YAML: {message}")]
    InvalidYaml {
        unit: String,
        /// 1-based position in the unit's `---` stream.
        document: usize,
        message: String,
    },
    /// Anchors/aliases expand to far more data than the unit holds ("billion laughs").
    #[error(
        "unit {unit:?}: document {document}: YAML aliases expand beyond {limit} nodes+bytes; refusing a possible alias bomb"
    )]
    AliasExpansion {
        unit: String,
        document: usize,
        limit: u64,
    },
    /// A document parsed but is not a Kubernetes object.
    #[error("unit {unit:?}: document {document}: {reason}")]
    InvalidObject {
        unit: String,
        document: usize,
        reason: String,
    },
    /// Two units (or one unit twice) define the same object; kustomize would refuse the artifact.
    #[error("object {object} is defined by both unit {first_unit:?} and unit {second_unit:?}")]
    DuplicateObject {
        object: String,
        first_unit: String,
        second_unit: String,
    },
    /// Two inputs carry the same unit slug.
    #[error("unit {unit:?} appears more than once in the input")]
    DuplicateUnit { unit: String },
    /// Two slugs map to the same archive file name after sanitising.
    #[error("units {first_unit:?} and {second_unit:?} both map to archive file {file:?}")]
    FileNameCollision {
        file: String,
        first_unit: String,
        second_unit: String,
    },
    /// Writing the in-memory archive failed (only possible on allocation-level failures).
    #[error("writing the archive: {0}")]
    Archive(String),
}
