//! The source reconciler: ConfigHubRepository → fetch → build → store → publish.

mod bulk_fetch;
pub mod cache;
pub mod conditions;
pub(crate) mod context;
pub(crate) mod controller;
pub(crate) mod duration;
pub(crate) mod error;
pub mod fetch;
pub mod metrics;
pub(crate) mod pipeline;
pub mod publish;

pub use context::{Context, ControllerOptions, DEFAULT_CONFIGHUB_CONCURRENT_REQUESTS};
pub use controller::run;
