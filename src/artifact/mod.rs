//! Turning ConfigHub units into a Flux artifact: a reproducible tar.gz with one YAML file per unit.
//!
//! Everything here except [`storage`] and [`pack`] is pure (no I/O, no clock), so the same units always
//! give the same bytes and the same digest, and it is all unit-tested without a cluster.
//! See `docs/artifacts.md` for the format.

mod archive;
mod build;
mod error;
pub(crate) mod manifest;
pub(crate) mod names;
pub mod pack;
mod par;
pub(crate) mod process;
pub mod served;
pub mod storage;
pub(crate) mod textual;
mod unit;
mod yaml;

#[cfg(test)]
mod golden_tests;

pub use archive::{GZIP_LEVEL, write_tar_gz};
pub use build::{
    BuiltArtifact, META_OCI_REVISION, META_SPACE, META_UNIT_COUNT, build, input_fingerprint,
};
pub use error::BuildError;
pub use manifest::{
    ANNOTATION_REVISION_NUM, ANNOTATION_SPACE_ID, ANNOTATION_SPACE_NAME, LABEL_UNIT_SLUG,
    MAX_UNIT_BYTES, ObjectKey,
};
pub use names::{file_name_for, is_safe_entry_name};
pub use storage::{Storage, StorageError, StoredArtifact};
pub use unit::{BuildContext, KUBERNETES_YAML, UnitInput};
