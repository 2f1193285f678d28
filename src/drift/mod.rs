//! Drift: what changed in the cluster behind Flux's back, how bad it is, and what to do about it.
//!
//! The core is pure — [`normalize`], [`diff`], [`classify`], [`suggest`], [`fix_unit`], [`health`] are
//! functions of data — and the edges are small: [`store`] (SQLite records), [`api`] (REST), [`metrics`].
//! Watches, dry runs, conditions and remediation are wired by the controller (see docs/drift.md).

pub mod api;
pub mod base64;
pub mod classify;
pub mod detect;
pub mod diff;
pub mod fields;
pub mod fix_unit;
pub mod health;
pub mod metrics;
pub mod mode;
pub mod normalize;
pub mod pointer;
pub mod quantity;
pub mod record;
pub mod resources;
pub mod store;
pub mod suggest;
pub mod types;

#[cfg(test)]
mod real;

pub use classify::{classify, classify_item, expected, highest};
pub use detect::{Detection, DetectionContext, detect};
pub use diff::diff;
pub use fields::FieldOwners;
pub use normalize::{normalize, normalize_pair};
pub use record::{DetectionSource, DriftRecord, ObjectRef, RecordStatus};
pub use store::{RecordFilter, RecordStore, Statistics, StoreError, Transition};
pub use types::{ClassifiedItem, DriftItem, DriftType, IgnoreRule, ObjectKey, Severity};
