//! The source reconciler: ConfigHubRepository → fetch → build → store → publish.

pub mod conditions;
pub mod duration;
