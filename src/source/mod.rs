//! The source reconciler: ConfigHubRepository → fetch → build → store → publish.

pub mod cache;
pub mod conditions;
pub mod context;
pub mod controller;
pub mod duration;
pub mod error;
pub mod fetch;
pub mod metrics;
pub mod pipeline;
pub mod publish;

pub use context::{Context, ControllerOptions};
pub use controller::run;
