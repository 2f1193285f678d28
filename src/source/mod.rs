//! The source reconciler: ConfigHubRepository → fetch → build → store → publish.

pub mod cache;
pub mod conditions;
pub mod duration;
